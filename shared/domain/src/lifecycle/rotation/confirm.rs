//! Confirm: the new certificate proves its key; the serial is bound to it and the replaced one starts
//! its grace period (or, for a rotation the replaced certificate asked for, the lost one is cut off).

use super::*;

impl<R, W, C, S, P, A> RotationService<R, W, C, S, P, A>
where
    R: Registry,
    W: Rotations,
    C: IotControl,
    S: CaSigner,
    P: Publisher,
    A: AuditLog,
{
    pub(super) async fn confirm(
        &self,
        v: &Valid,
        device: Option<Device>,
    ) -> Result<RotationDecision> {
        if let Some((reason, detail)) = refusal(device.as_ref()) {
            return self.reject(v, reason, detail).await;
        }
        let Some(device) = device else {
            return self.reject(v, Reason::UnknownDevice, "").await;
        };
        if device.certificate_id.as_ref() == Some(&v.principal) && device.rotation.is_none() {
            // Confirmed already (a replay), or nothing to confirm: the certificate in use is current.
            return self.confirmed(v).await;
        }
        // While a rotation is pending, only its new certificate confirms it: an `accepted` to the
        // current one would let the device drop its only bound key while nothing new is bound.
        let Some(r) = device
            .rotation
            .clone()
            .filter(|r| r.next_certificate_id == v.principal)
        else {
            return self
                .reject(
                    v,
                    Reason::NoRotation,
                    "no rotation to this certificate is in flight",
                )
                .await;
        };
        let now = now();
        if passed(&r.expires_at, now) {
            return self
                .reject(
                    v,
                    Reason::RotationExpired,
                    "the rotation was not confirmed in time",
                )
                .await;
        }
        // Asked for by the replaced certificate: the certificate the device lost is cut off now, in
        // AWS IoT first (a lost write of the registry is redone by the confirm's retry), and the
        // replaced one keeps its grace period.
        let lost = r.cuts_off.clone();
        if let Some(lost) = &lost {
            cut_off_in_iot(
                &self.control,
                &self.config.fleet_policy,
                &device.serial,
                lost,
            )
            .await?;
        }
        let expected = device.version;
        let mut next = device;
        if lost.is_some() {
            next.certificate_id = None;
        } else {
            next.previous_certificate_id = next.certificate_id.take();
        }
        // A new grace period: sessions seen before it say nothing about who holds the keys now.
        next.live_session = None;
        next.certificate_id = Some(r.next_certificate_id.clone());
        next.set_certificate_facts(Some(&crate::model::CertificateFacts {
            not_after: r.not_after.clone(),
            key_sha256: r.key_sha256.clone(),
        }));
        next.binding_pending = false;
        next.rotation = None;
        next.retire_at = Some(Timestamp::at(
            now + Duration::hours(i64::from(self.config.grace_hours)),
        ));
        next.refresh_deadline();
        next.version = expected + 1;
        next.updated_at = Timestamp::at(now);
        let entry = self
            .entry(v, Outcome::Accepted, Reason::RotationConfirmed)
            .detail(format!(
                "bound to {}; {} retires at {}",
                r.next_certificate_id,
                next.previous_certificate_id
                    .as_ref()
                    .map(|c| c.as_str())
                    .unwrap_or("-"),
                next.retire_at.as_ref().map_or("-", Timestamp::as_str)
            ));
        let lost_record = lost.as_ref().map(|c| CertificateRecord {
            certificate_id: c.clone(),
            serial: v.serial.clone(),
            denied: true,
            held: false,
            updated_at: Timestamp::at(now),
        });
        if !self
            .rotations
            .save(&next, expected, lost_record.as_ref(), &entry)
            .await?
        {
            let now_device = self.registry.get_device(&v.serial).await?;
            if let Some((reason, detail)) = refusal(now_device.as_ref()) {
                return self.reject(v, reason, detail).await;
            }
            if now_device.and_then(|d| d.certificate_id) == Some(v.principal.clone()) {
                return self.confirmed(v).await;
            }
            return self
                .reject(v, Reason::RotationExpired, "the rotation ended meanwhile")
                .await;
        }
        entry.log();
        self.confirmed(v).await
    }
}
