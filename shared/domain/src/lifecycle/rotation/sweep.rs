//! The scheduled half of rotation: unconfirmed rotations expire, replaced certificates retire.

use super::*;
use crate::model::AuditAction;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Unconfirmed rotations abandoned (their certificate cut off).
    pub expired: usize,
    /// Replaced certificates retired after their grace period.
    pub retired: usize,
    /// Devices left for the next sweep (another writer moved them meanwhile).
    pub skipped: usize,
}

/// The scheduled half of rotation: expires unconfirmed rotations and retires replaced certificates.
pub struct RotationSweep<R, W, C, A> {
    pub registry: R,
    pub rotations: W,
    pub control: C,
    pub audit: A,
    pub fleet_policy: String,
}

const SWEEP_ACTOR: &str = "certificate-watch";
/// Devices handled per sweep; the rest wait for the next one.
pub const SWEEP_LIMIT: usize = 500;

impl<R: Registry, W: Rotations, C: IotControl, A: AuditLog> RotationSweep<R, W, C, A> {
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        for due in self.rotations.due(&Timestamp::at(now), SWEEP_LIMIT).await? {
            // The index is eventually consistent: act on the device as it is now.
            let Some(mut device) = self.registry.get_device(&due.serial).await? else {
                continue;
            };
            if let Some(r) = device
                .rotation
                .clone()
                .filter(|r| passed(&r.expires_at, now))
            {
                // A certificate issued but never registered (the rotator failed after its registry
                // write) is registered INACTIVE first: once the registry forgets it, a late retry of
                // the rotator finds it taken and can never make it ACTIVE.
                if self
                    .control
                    .describe_certificate(&r.next_certificate_id)
                    .await?
                    .is_none()
                {
                    self.control
                        .register_certificate(&r.certificate_pem, None, CertificateStatus::Inactive)
                        .await?;
                }
                // Abandoned: the next certificate becomes one to retire now; the current one stays.
                let expected = device.version;
                device.rotation = None;
                device.previous_certificate_id = Some(r.next_certificate_id.clone());
                device.retire_at = Some(Timestamp::at(now));
                device.refresh_deadline();
                device.version = expected + 1;
                device.updated_at = Timestamp::at(now);
                let entry = self
                    .entry(&device, Reason::RotationExpired)
                    .principal(r.next_certificate_id.as_str())
                    .detail("unconfirmed rotation abandoned; the current certificate stays");
                if !self.rotations.save(&device, expected, None, &entry).await? {
                    report.skipped += 1;
                    continue;
                }
                entry.log();
                report.expired += 1;
            }
            if device.retire_at.as_ref().is_some_and(|t| passed(t, now)) {
                if self.retire(device, now).await? {
                    report.retired += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
        Ok(report)
    }

    /// Cuts a replaced (or abandoned) certificate off in AWS IoT, then forgets it, deny-listed, in
    /// the registry. AWS IoT first: if the registry write loses, the next sweep does it again.
    async fn retire(&self, mut device: Device, now: OffsetDateTime) -> Result<bool> {
        let Some(old) = device.previous_certificate_id.clone() else {
            return Ok(false);
        };
        cut_off_in_iot(&self.control, &self.fleet_policy, &device.serial, &old).await?;
        let expected = device.version;
        device.previous_certificate_id = None;
        device.live_session = None;
        device.retire_at = None;
        device.refresh_deadline();
        device.version = expected + 1;
        device.updated_at = Timestamp::at(now);
        let record = CertificateRecord {
            certificate_id: old.clone(),
            serial: device.serial.clone(),
            denied: true,
            held: false,
            updated_at: Timestamp::at(now),
        };
        let entry = self
            .entry(&device, Reason::CertificateRetired)
            .principal(old.as_str())
            .detail("INACTIVE, detached and deny-listed");
        let saved = self
            .rotations
            .save(&device, expected, Some(&record), &entry)
            .await?;
        if saved {
            entry.log();
        }
        Ok(saved)
    }

    fn entry(&self, device: &Device, reason: Reason) -> AuditEntry {
        AuditEntry::new(
            SWEEP_ACTOR,
            AuditAction::RotationSweep,
            Outcome::Accepted,
            reason,
        )
        .serial(device.serial.as_str())
    }
}
