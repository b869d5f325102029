//! An operator's request for a rotation, and when a rotation is due.

use super::*;
use crate::model::AuditAction;

/// Whether `device` may rotate now: an operator asked for it, or its certificate expires within
/// `window_days` (a certificate whose expiry fleetguard does not know is never due on its own).
pub fn due(device: &Device, window_days: u32, now: OffsetDateTime) -> bool {
    if device.rotation_requested_at.is_some() {
        return true;
    }
    device
        .certificate_not_after
        .as_ref()
        .is_some_and(|not_after| {
            not_after.instant() - Duration::days(i64::from(window_days)) <= now
        })
}

/// An operator asks a device to rotate (`fleetctl devices request-rotation`): its next rotation is
/// due whatever its certificate's expiry, and it is told so on `P/<serial>/certificates/rotate/required`.
/// `Ok(false)`: no active device with a certificate (or it kept changing under three attempts).
pub async fn request_rotation<R, W, P>(
    registry: &R,
    rotations: &W,
    publisher: &P,
    serial: &Serial,
    actor: &str,
    now: OffsetDateTime,
) -> Result<bool>
where
    R: Registry,
    W: Rotations,
    P: Publisher,
{
    for _ in 0..3 {
        let Some(device) = registry.get_device(serial).await? else {
            return Ok(false);
        };
        if device.status != DeviceStatus::Active || device.certificate_id.is_none() {
            return Ok(false);
        }
        let expected = device.version;
        let mut next = device;
        next.rotation_requested_at = Some(Timestamp::at(now));
        next.version = expected + 1;
        next.updated_at = Timestamp::at(now);
        let entry = AuditEntry::new(
            actor,
            AuditAction::RequestRotation,
            Outcome::Accepted,
            Reason::RotationRequested,
        )
        .serial(serial.as_str());
        // Conditional on the version read: a write meanwhile (a delete's, a rotation's) is kept.
        if rotations.save(&next, expected, None, &entry).await? {
            entry.log();
            let topic = format!("P/{serial}/certificates/rotate/required");
            publisher
                .publish(&topic, &serde_json::json!({"reason": "operator_request"}))
                .await?;
            return Ok(true);
        }
    }
    Ok(false)
}
