//! The expiry watch: device certificates expiring within N days and CA certificates within M days.
//! Each expiring device is nudged on `P/<serial>/certificates/rotate/required` and audited (once per
//! day, however often the watch runs); a summary goes to the alerts topic.
//!
//! Devices are found through the registry's sparse expiry index (only certificates fleetguard knows
//! the expiry of: those it issued or validated at provisioning), one query per calendar month of the
//! window, so a watch reads only the devices inside it. Certificates AWS IoT issued in fleet
//! provisioning by claim are valid until 2049-12-31 and never show up.

use crate::model::{rfc3339, AuditEntry, Device, DeviceStatus, Outcome, Reason};
use crate::model::{AuditAction, Timestamp};
use crate::ports::{AuditLog, IotControl, Publisher, Rotations};
use crate::{Error, Result};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// One certificate inside the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiring {
    /// `device` or `ca`.
    pub kind: &'static str,
    /// The serial (device) or the CA certificate id.
    pub subject: String,
    pub certificate_id: String,
    pub not_after: String,
}

/// What one watch found (the summary published to the alerts topic, and `fleetctl certificates
/// expiring --json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExpiryReport {
    pub checked_at: String,
    pub device_window_days: u32,
    pub ca_window_days: u32,
    pub devices: Vec<Expiring>,
    pub cas: Vec<Expiring>,
    /// Read capacity the device query consumed (units).
    pub read_capacity_units: f64,
}

/// Finds the certificates expiring inside the windows.
pub async fn find<W: Rotations, C: IotControl>(
    rotations: &W,
    control: &C,
    now: OffsetDateTime,
    device_days: u32,
    ca_days: u32,
) -> Result<ExpiryReport> {
    let to = now + Duration::days(i64::from(device_days));
    let (devices, rcu) = rotations
        .expiring(&Timestamp::at(now), &Timestamp::at(to))
        .await?;
    let devices = devices
        .into_iter()
        .filter(|d| d.status == DeviceStatus::Active)
        .filter_map(|d| device_entry(&d))
        .collect();
    let ca_to = now + Duration::days(i64::from(ca_days));
    let mut cas = Vec::new();
    for ca in control.ca_certificates().await? {
        let Some(not_after) = not_after(&ca.pem) else {
            continue;
        };
        if not_after <= ca_to {
            cas.push(Expiring {
                kind: "ca",
                subject: ca.id.to_string(),
                certificate_id: ca.id.to_string(),
                not_after: rfc3339(not_after),
            });
        }
    }
    Ok(ExpiryReport {
        checked_at: rfc3339(now),
        device_window_days: device_days,
        ca_window_days: ca_days,
        devices,
        cas,
        read_capacity_units: rcu,
    })
}

fn device_entry(d: &Device) -> Option<Expiring> {
    Some(Expiring {
        kind: "device",
        subject: d.serial.to_string(),
        certificate_id: d.certificate_id.as_ref()?.to_string(),
        not_after: d.certificate_not_after.as_ref()?.to_string(),
    })
}

/// A certificate's notAfter, read from its PEM (AWS IoT's description is not relied on: the emulator
/// makes its validity up).
fn not_after(pem: &str) -> Option<OffsetDateTime> {
    let der = crate::x509::pem_to_der(pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.to_datetime())
}

/// Publishes the nudges, audits each (once per day), then the summary.
pub async fn notify<P: Publisher, A: AuditLog>(
    publisher: &P,
    audit: &A,
    alerts_topic: &str,
    report: &ExpiryReport,
) -> Result<()> {
    let day: String = report.checked_at.chars().take(10).collect();
    // One entry per certificate per day, however often the watch runs that day.
    let midnight =
        Timestamp::parse(&format!("{day}T00:00:00Z")).unwrap_or_else(|_| Timestamp::now());
    for e in &report.devices {
        let topic = format!("P/{}/certificates/rotate/required", e.subject);
        let payload = serde_json::json!({
            "reason": Reason::CertificateExpiring,
            "certificate_id": e.certificate_id,
            "not_after": e.not_after,
        });
        publisher.publish(&topic, &payload).await?;
        let mut entry = AuditEntry::new(
            "certificate-watch",
            AuditAction::ExpiryWatch,
            Outcome::Accepted,
            Reason::CertificateExpiring,
        )
        .serial(e.subject.as_str())
        .principal(e.certificate_id.as_str())
        .detail(format!("expires {}; rotation requested", e.not_after));
        entry.at = midnight.clone();
        entry.dedupe = Some(format!("expiry:{}:{day}", e.certificate_id));
        crate::ports::record_decision(audit, &entry).await?;
    }
    for e in &report.cas {
        let mut entry = AuditEntry::new(
            "certificate-watch",
            AuditAction::ExpiryWatch,
            Outcome::Accepted,
            Reason::CaExpiring,
        )
        .principal(e.certificate_id.as_str())
        .detail(format!("CA expires {}", e.not_after));
        entry.at = midnight.clone();
        entry.dedupe = Some(format!("expiry:{}:{day}", e.certificate_id));
        crate::ports::record_decision(audit, &entry).await?;
    }
    if report.devices.is_empty() && report.cas.is_empty() {
        return Ok(());
    }
    let summary = serde_json::to_value(report).map_err(|e| Error::Corrupt(e.to_string()))?;
    publisher.publish(alerts_topic, &summary).await
}
