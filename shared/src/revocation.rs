//! Revocation: stop a compromised device now, keep it out, and undo what it did.
//!
//! Triggers (one Lambda, the event's shape tells which): an operator command, a Device Defender Detect
//! violation delivered by SNS, a tamper report from the device's own topic, and the delete-record
//! handler's cross-serial security events (the serial-guessing tripwire).
//!
//! Every step checks or tolerates current state, so a replay or a retry after a partial failure
//! converges. Order for revoke/quarantine: registry first (the delete-record transaction checks it, so
//! deletes stop at once), then the certificate status and a forced disconnect (what stops the device on
//! AWS, where policy changes take minutes to propagate), then policy/principal detachment and the
//! quarantine group.

use crate::delete_record::SecurityEvent;
use crate::domain::{
    rfc3339, AuditEntry, CertificateId, CertificateStatus, DeviceStatus, Outcome, Principal,
    Reason, RecordId, Serial,
};
use crate::ports::{AuditLog, Connections, IotControl, Records, Registry, RestoreResult};
use crate::records::restore_record;
use crate::Result;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Revoke,
    Quarantine,
    Release,
}

/// Operator command (direct invoke or `fleetctl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub action: Action,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub certificate_id: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339; deletes by the device's certificate at or after it are rolled back.
    #[serde(default)]
    pub compromised_since: Option<String>,
    #[serde(default)]
    pub rollback: bool,
    /// Who asked (defaults to `operator`).
    #[serde(default)]
    pub actor: Option<String>,
}

/// Device Defender Detect violation (the SNS `Message`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationEvent {
    pub violation_id: String,
    pub thing_name: String,
    #[serde(default)]
    pub security_profile_name: Option<String>,
    #[serde(default)]
    pub behavior: Option<serde_json::Value>,
    #[serde(default)]
    pub metric_value: Option<serde_json::Value>,
    pub violation_event_type: String,
    #[serde(default)]
    pub violation_event_time: Option<i64>,
}

/// Tamper report forwarded by the rule on `P/+/tamper` with `principal()`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TamperReport {
    pub trigger: String,
    pub serial: String,
    pub principal: String,
    #[serde(default)]
    pub received_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationConfig {
    pub fleet_policy: String,
    pub quarantine_group: String,
    /// What a Defender `in-alarm` does (quarantine by default).
    pub defender_action: Action,
    /// Cross-serial attempts by one principal within the window before it is quarantined.
    pub violation_threshold: u32,
    pub violation_window: time::Duration,
    /// Default rollback window: this long before the first security signal about the principal.
    pub rollback_lookback: time::Duration,
}

impl RevocationConfig {
    pub fn from_env() -> Result<Self> {
        use crate::config::{opt_u32, var};
        Ok(Self {
            fleet_policy: var("FLEETGUARD_FLEET_POLICY")?,
            quarantine_group: var("FLEETGUARD_QUARANTINE_GROUP")?,
            defender_action: match std::env::var("FLEETGUARD_DEFENDER_ACTION").as_deref() {
                Ok("revoke") => Action::Revoke,
                Err(_) | Ok("quarantine") => Action::Quarantine,
                Ok(other) => {
                    return Err(crate::Error::Config(format!(
                        "FLEETGUARD_DEFENDER_ACTION must be quarantine or revoke, not {other:?}"
                    )))
                }
            },
            violation_threshold: opt_u32("FLEETGUARD_VIOLATION_THRESHOLD", 1)?.max(1),
            violation_window: time::Duration::minutes(i64::from(opt_u32(
                "FLEETGUARD_VIOLATION_WINDOW_MINUTES",
                60,
            )?)),
            rollback_lookback: time::Duration::hours(i64::from(opt_u32(
                "FLEETGUARD_ROLLBACK_LOOKBACK_HOURS",
                24,
            )?)),
        })
    }
}

/// What one trigger came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// Records restored by a rollback.
    pub restored: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_since: Option<String>,
}

pub struct Revoker<R, C, N, D, A> {
    pub registry: R,
    pub control: C,
    pub connections: N,
    pub records: D,
    pub audit: A,
    pub config: RevocationConfig,
}

struct Target {
    serial: Serial,
    cert: Option<CertificateId>,
}

impl<R, C, N, D, A> Revoker<R, C, N, D, A>
where
    R: Registry,
    C: IotControl,
    N: Connections,
    D: Records,
    A: AuditLog,
{
    /// Handles any trigger. `Err` only for infrastructure failures (the invocation is retried and
    /// converges).
    pub async fn handle(&self, raw: serde_json::Value, now: OffsetDateTime) -> Result<Vec<Report>> {
        if let Some(records) = raw.get("Records").and_then(|r| r.as_array()) {
            let mut reports = Vec::new();
            for record in records {
                let message = record
                    .pointer("/Sns/Message")
                    .and_then(|m| m.as_str())
                    .and_then(|m| serde_json::from_str::<ViolationEvent>(m).ok());
                reports.push(match message {
                    Some(v) => self.defender(v, now).await?,
                    None => {
                        self.malformed("SNS record without a Defender violation")
                            .await?
                    }
                });
            }
            return Ok(reports);
        }
        if raw.get("kind").and_then(|k| k.as_str()) == Some("cross_serial_attempt") {
            return Ok(vec![match serde_json::from_value::<SecurityEvent>(raw) {
                Ok(e) => self.security_event(e, now).await?,
                Err(_) => self.malformed("malformed security event").await?,
            }]);
        }
        if raw.get("trigger").and_then(|k| k.as_str()) == Some("tamper") {
            return Ok(vec![match serde_json::from_value::<TamperReport>(raw) {
                Ok(t) => self.tamper(t, now).await?,
                Err(_) => self.malformed("malformed tamper report").await?,
            }]);
        }
        Ok(vec![match serde_json::from_value::<Command>(raw) {
            Ok(c) => self.command(c, now).await?,
            Err(e) => self.malformed(&e.to_string()).await?,
        }])
    }

    /// An operator command.
    pub async fn command(&self, cmd: Command, now: OffsetDateTime) -> Result<Report> {
        let actor = format!("operator:{}", cmd.actor.as_deref().unwrap_or("unknown"));
        let since = match cmd.compromised_since.as_deref().map(parse_time) {
            Some(Ok(t)) => Some(t),
            Some(Err(())) => return self.malformed("compromised_since is not RFC 3339").await,
            None => None,
        };
        let Some(target) = self
            .resolve(cmd.serial.as_deref(), cmd.certificate_id.as_deref())
            .await?
        else {
            return self
                .reject(
                    &actor,
                    None,
                    Reason::UnknownDevice,
                    "no such device or certificate",
                )
                .await;
        };
        let detail = cmd.reason.clone().unwrap_or_default();
        let mut report = match cmd.action {
            Action::Revoke => {
                self.isolate(&target, Action::Revoke, &actor, &detail)
                    .await?
            }
            Action::Quarantine => {
                self.isolate(&target, Action::Quarantine, &actor, &detail)
                    .await?
            }
            Action::Release => self.release(&target, &actor, &detail).await?,
        };
        if cmd.rollback && cmd.action != Action::Release {
            let (restored, since) = self.rollback(&target, since, &actor, now).await?;
            report.restored = restored;
            report.rolled_back_since = Some(since);
        }
        Ok(report)
    }

    async fn defender(&self, v: ViolationEvent, _now: OffsetDateTime) -> Result<Report> {
        let actor = "device-defender";
        let Ok(serial) = Serial::parse(&v.thing_name) else {
            return self
                .reject(
                    actor,
                    None,
                    Reason::InvalidSerial,
                    "thingName is not a valid serial",
                )
                .await;
        };
        if v.violation_event_type != "in-alarm" {
            // alarm-cleared / alarm-invalidated: never undo an isolation automatically; audit only.
            let entry = AuditEntry::new(
                actor,
                "defender_violation",
                Outcome::Noop,
                Reason::DefenderAlarmCleared,
            )
            .serial(serial.as_str())
            .detail(format!("{} {}", v.violation_event_type, v.violation_id));
            self.audit.record(&entry).await?;
            return Ok(report(&entry, None));
        }
        let Some(target) = self.resolve(Some(serial.as_str()), None).await? else {
            return self
                .reject(
                    actor,
                    Some(&serial),
                    Reason::UnknownDevice,
                    "Defender alarm for an unknown thing",
                )
                .await;
        };
        let mut signal = AuditEntry::new(
            actor,
            "defender_violation",
            Outcome::Accepted,
            Reason::DefenderInAlarm,
        )
        .serial(serial.as_str())
        .detail(format!(
            "{} profile={}",
            v.violation_id,
            v.security_profile_name.as_deref().unwrap_or("-")
        ));
        if let Some(c) = &target.cert {
            signal = signal.principal(c.as_str());
        }
        // SNS delivers at least once: one entry per violation, keyed by the violation, not the clock.
        if let Some(at) = v
            .violation_event_time
            .and_then(crate::domain::epoch_ms_rfc3339)
        {
            signal.at = at;
            signal.dedupe = Some(format!("defender:{}", v.violation_id));
        }
        self.audit.record(&signal).await?;
        self.isolate(&target, self.config.defender_action, actor, &v.violation_id)
            .await
    }

    async fn tamper(&self, t: TamperReport, _now: OffsetDateTime) -> Result<Report> {
        let actor = "tamper-report";
        let Ok(serial) = Serial::parse(&t.serial) else {
            return self
                .reject(
                    actor,
                    None,
                    Reason::InvalidTopic,
                    "tamper topic serial is invalid",
                )
                .await;
        };
        // Only the device's own certificate may report its tampering: anyone else could use a forged
        // report to knock a healthy device offline.
        let Ok(Principal::Certificate(cert)) = Principal::parse(&t.principal) else {
            return self
                .reject(
                    actor,
                    Some(&serial),
                    Reason::UnknownPrincipal,
                    "tamper report not from a certificate",
                )
                .await;
        };
        let owner = self.registry.get_certificate(&cert).await?;
        if owner.as_ref().is_none_or(|o| o.serial != serial) {
            return self
                .reject(
                    actor,
                    Some(&serial),
                    Reason::PrincipalMismatch,
                    "tamper report from another device's certificate",
                )
                .await;
        }
        let signal = AuditEntry::new(
            actor,
            "tamper_report",
            Outcome::Accepted,
            Reason::TamperReported,
        )
        .serial(serial.as_str())
        .principal(cert.as_str());
        self.audit.record(&signal).await?;
        let target = Target {
            serial,
            cert: Some(cert),
        };
        self.isolate(
            &target,
            Action::Quarantine,
            actor,
            "device reported tampering",
        )
        .await
    }

    async fn security_event(&self, e: SecurityEvent, now: OffsetDateTime) -> Result<Report> {
        let actor = "tripwire";
        let Ok(Principal::Certificate(cert)) = Principal::parse(&e.principal) else {
            // Authorizer principals are cut off by disabling the operator/device in the registry.
            return self
                .reject(
                    actor,
                    None,
                    Reason::UnknownPrincipal,
                    "security event without a certificate principal",
                )
                .await;
        };
        let Some(owner) = self.registry.get_certificate(&cert).await? else {
            return self
                .reject(
                    actor,
                    None,
                    Reason::UnknownPrincipal,
                    "certificate not in the registry",
                )
                .await;
        };
        let mut signal = AuditEntry::new(
            actor,
            "security_violation",
            Outcome::Accepted,
            Reason::SecurityViolation,
        )
        .serial(owner.serial.as_str())
        .principal(cert.as_str())
        .record(e.record_id.as_str())
        .detail(format!("target_serial={}", e.target_serial));
        // Once per original message, however often or late the event is redelivered: the entry's key is
        // the message's own (its time and request key), never the clock's.
        // The window is counted back from the message's own time, for the same reason.
        let received = crate::domain::epoch_ms(e.received_at).unwrap_or(now);
        signal.at = rfc3339(received);
        signal.dedupe = Some(e.request_key.clone());
        self.audit.record(&signal).await?;
        let window_start = rfc3339(received - self.config.violation_window);
        let count = self
            .audit
            .for_principal(cert.as_str(), &window_start)
            .await?
            .iter()
            .filter(|x| x.action == "security_violation")
            .count();
        if count < self.config.violation_threshold as usize {
            let entry = AuditEntry::new(actor, "quarantine", Outcome::Noop, Reason::BelowThreshold)
                .serial(owner.serial.as_str())
                .principal(cert.as_str())
                .detail(format!("{count} of {}", self.config.violation_threshold));
            self.audit.record(&entry).await?;
            return Ok(report(&entry, Some(&cert)));
        }
        let target = Target {
            serial: owner.serial,
            cert: Some(cert),
        };
        self.isolate(
            &target,
            Action::Quarantine,
            actor,
            "cross-serial delete attempt",
        )
        .await
    }

    async fn resolve(&self, serial: Option<&str>, cert: Option<&str>) -> Result<Option<Target>> {
        if let Some(c) = cert {
            let Ok(cert) = CertificateId::parse(c) else {
                return Ok(None);
            };
            return Ok(self
                .registry
                .get_certificate(&cert)
                .await?
                .map(|rec| Target {
                    serial: rec.serial,
                    cert: Some(cert),
                }));
        }
        let Some(Ok(serial)) = serial.map(Serial::parse) else {
            return Ok(None);
        };
        Ok(self.registry.get_device(&serial).await?.map(|d| Target {
            serial,
            cert: d.certificate_id,
        }))
    }

    /// Revoke or quarantine: same isolation; revoke is final (REVOKED certificate, deny-list).
    async fn isolate(
        &self,
        t: &Target,
        action: Action,
        actor: &str,
        detail: &str,
    ) -> Result<Report> {
        let revoke = action == Action::Revoke;
        let (to, from): (DeviceStatus, &[DeviceStatus]) = if revoke {
            (
                DeviceStatus::Revoked,
                &[
                    DeviceStatus::Manufactured,
                    DeviceStatus::Active,
                    DeviceStatus::Quarantined,
                ],
            )
        } else {
            (
                DeviceStatus::Quarantined,
                &[DeviceStatus::Manufactured, DeviceStatus::Active],
            )
        };
        let changed = self.registry.transition(&t.serial, from, to).await?;
        let device = self.registry.get_device(&t.serial).await?;
        if !revoke
            && device
                .as_ref()
                .is_some_and(|d| d.status == DeviceStatus::Revoked)
        {
            // Quarantine never softens a revocation.
            let entry = AuditEntry::new(actor, "quarantine", Outcome::Noop, Reason::RevokedIsFinal)
                .serial(t.serial.as_str());
            self.audit.record(&entry).await?;
            return Ok(report(&entry, t.cert.as_ref()));
        }
        if let Some(cert) = &t.cert {
            if revoke {
                self.registry.deny_certificate(cert, &t.serial).await?;
            }
            if let Some(c) = self.control.describe_certificate(cert).await? {
                let wanted = if revoke {
                    CertificateStatus::Revoked
                } else {
                    CertificateStatus::Inactive
                };
                // REVOKED is final on AWS: never touch it again.
                if c.status != CertificateStatus::Revoked && c.status != wanted {
                    self.control.set_certificate_status(cert, wanted).await?;
                }
                self.connections.disconnect(t.serial.as_str()).await?;
                self.control
                    .detach_policy(&self.config.fleet_policy, &c.arn)
                    .await?;
                self.control
                    .detach_thing_principal(&t.serial, &c.arn)
                    .await?;
                self.control
                    .set_group_membership(&self.config.quarantine_group, &t.serial, true)
                    .await?;
            }
        } else {
            self.connections.disconnect(t.serial.as_str()).await?;
        }
        let (name, reason) = if revoke {
            ("revoke", Reason::Revoked)
        } else {
            ("quarantine", Reason::Quarantined)
        };
        let mut entry = AuditEntry::new(actor, name, Outcome::Accepted, reason)
            .serial(t.serial.as_str())
            .detail(detail);
        if let Some(c) = &t.cert {
            entry = entry.principal(c.as_str());
        }
        // Keyed by the state change, so the isolation is recorded exactly once: by this call, or by
        // its retry when a fault stopped it after the registry changed (then `changed` is false).
        let keyed = match device.as_ref().filter(|d| d.status == to) {
            Some(d) => {
                entry.at = d.updated_at.clone();
                entry.dedupe = Some(format!("{name}:v{}", d.version));
                true
            }
            None => false,
        };
        let recorded = (keyed || changed) && self.audit.record(&entry).await?;
        if !recorded {
            // Nothing left to do: recorded as this caller's no-op.
            entry.outcome = Outcome::Noop;
            entry.at = crate::domain::now_rfc3339();
            entry.dedupe = None;
            self.audit.record(&entry).await?;
        }
        let outcome = entry.outcome;
        tracing::warn!(action = name, outcome = outcome.as_str(), reason = reason.as_str(), serial = %t.serial, "device isolated");
        Ok(report(&entry, t.cert.as_ref()))
    }

    /// Undo a quarantine. A revoked device stays revoked (a replacement certificate is the way back).
    async fn release(&self, t: &Target, actor: &str, detail: &str) -> Result<Report> {
        let device = self.registry.get_device(&t.serial).await?;
        match device.as_ref().map(|d| d.status) {
            Some(DeviceStatus::Revoked) => {
                return self
                    .reject(
                        actor,
                        Some(&t.serial),
                        Reason::RevokedIsFinal,
                        "revoked devices are never released",
                    )
                    .await
            }
            Some(DeviceStatus::Quarantined) => {}
            _ => {
                let entry =
                    AuditEntry::new(actor, "release", Outcome::Noop, Reason::NotQuarantined)
                        .serial(t.serial.as_str());
                self.audit.record(&entry).await?;
                return Ok(report(&entry, t.cert.as_ref()));
            }
        }
        if let Some(cert) = &t.cert {
            let Some(c) = self.control.describe_certificate(cert).await? else {
                return self
                    .reject(
                        actor,
                        Some(&t.serial),
                        Reason::CertificateNotFound,
                        "certificate missing in AWS IoT",
                    )
                    .await;
            };
            if c.status == CertificateStatus::Revoked {
                return self
                    .reject(
                        actor,
                        Some(&t.serial),
                        Reason::RevokedIsFinal,
                        "certificate is REVOKED",
                    )
                    .await;
            }
            self.control
                .attach_policy(&self.config.fleet_policy, &c.arn)
                .await?;
            self.control
                .attach_thing_principal(&t.serial, &c.arn)
                .await?;
            self.control
                .set_group_membership(&self.config.quarantine_group, &t.serial, false)
                .await?;
            if c.status != CertificateStatus::Active {
                self.control
                    .set_certificate_status(cert, CertificateStatus::Active)
                    .await?;
            }
        }
        // Last: the registry is what lets deletes through again.
        self.registry
            .transition(
                &t.serial,
                &[DeviceStatus::Quarantined],
                DeviceStatus::Active,
            )
            .await?;
        let mut entry = AuditEntry::new(actor, "release", Outcome::Accepted, Reason::Released)
            .serial(t.serial.as_str())
            .detail(detail);
        if let Some(c) = &t.cert {
            entry = entry.principal(c.as_str());
        }
        self.audit.record(&entry).await?;
        Ok(report(&entry, t.cert.as_ref()))
    }

    /// Restores every record soft-deleted by the device's certificate at or after `since`.
    /// Default `since`: `rollback_lookback` before the first security signal recorded about this
    /// principal (cross-serial attempt, tamper report, Defender alarm), or before now if there is none.
    async fn rollback(
        &self,
        t: &Target,
        since: Option<OffsetDateTime>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(usize, String)> {
        let Some(cert) = &t.cert else {
            return Ok((0, rfc3339(since.unwrap_or(now))));
        };
        let since = match since {
            Some(s) => s,
            None => {
                let history = self.audit.for_principal(cert.as_str(), "0").await?;
                let first_signal = history
                    .iter()
                    .filter(|e| {
                        matches!(
                            e.reason,
                            Reason::SecurityViolation
                                | Reason::TamperReported
                                | Reason::DefenderInAlarm
                                | Reason::PrincipalMismatch
                        )
                    })
                    .filter_map(|e| parse_time(&e.at).ok())
                    .min()
                    .unwrap_or(now);
                first_signal - self.config.rollback_lookback
            }
        };
        let since_text = rfc3339(since);
        let mut seen = std::collections::BTreeSet::new();
        let mut restored = 0;
        for e in self.audit.for_principal(cert.as_str(), &since_text).await? {
            if e.action != "delete_record" || e.reason != Reason::Deleted {
                continue;
            }
            let (Some(Ok(serial)), Some(Ok(record))) = (
                e.serial.as_deref().map(Serial::parse),
                e.record_id.as_deref().map(RecordId::parse),
            ) else {
                continue;
            };
            if !seen.insert((serial.clone(), record.clone())) {
                continue;
            }
            let r = restore_record(
                &self.records,
                &self.audit,
                &serial,
                &record,
                actor,
                Some(cert.as_str()),
            )
            .await?;
            if matches!(r, RestoreResult::Restored { .. }) {
                restored += 1;
            }
        }
        let entry = AuditEntry::new(actor, "rollback", Outcome::Accepted, Reason::Restored)
            .serial(t.serial.as_str())
            .principal(cert.as_str())
            .detail(format!(
                "restored {restored} record(s) deleted since {since_text}"
            ));
        self.audit.record(&entry).await?;
        Ok((restored, since_text))
    }

    async fn reject(
        &self,
        actor: &str,
        serial: Option<&Serial>,
        reason: Reason,
        detail: &str,
    ) -> Result<Report> {
        let mut entry =
            AuditEntry::new(actor, "revocation", Outcome::Rejected, reason).detail(detail);
        if let Some(s) = serial {
            entry = entry.serial(s.as_str());
        }
        self.audit.record(&entry).await?;
        tracing::warn!(
            outcome = "rejected",
            reason = reason.as_str(),
            detail,
            "revocation trigger refused"
        );
        Ok(report(&entry, None))
    }

    async fn malformed(&self, detail: &str) -> Result<Report> {
        self.reject("revoker", None, Reason::MalformedEvent, detail)
            .await
    }
}

fn report(entry: &AuditEntry, cert: Option<&CertificateId>) -> Report {
    Report {
        outcome: entry.outcome,
        reason: entry.reason,
        serial: entry.serial.clone(),
        certificate_id: cert.map(|c| c.to_string()),
        restored: 0,
        rolled_back_since: None,
    }
}

fn parse_time(s: &str) -> std::result::Result<OffsetDateTime, ()> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| ())
}
