//! Rotate: the request from the current certificate (or, in its grace period and on an operator's
//! request, the replaced one), the CSR's checks, the signature by the fleet CA and the AWS IoT steps.

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
    pub(super) async fn rotate(
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
        let pem = v.csr.as_deref().unwrap_or_default();
        let request_sha256 = match csr::csr_pem_to_der(pem) {
            Ok(der) => sha256_hex(&der),
            Err(e) => return self.reject(v, e.reason, &e.detail).await,
        };
        // The replaced certificate in its grace period may ask again: a device that lost its new
        // key before storing it. Only when an operator asked (below), and the certificate it
        // lost is cut off when the new one is confirmed.
        let by_replaced = device.certificate_id.as_ref() != Some(&v.principal)
            && device.previous_certificate_id.as_ref() == Some(&v.principal);
        // A replay of the request in flight (same CSR, same requesting certificate): the same
        // certificate again, and the AWS IoT steps finished if a fault interrupted them.
        if let Some(r) = &device.rotation {
            if r.request_sha256 == request_sha256 && requested_by(&device, r) == Some(&v.principal)
            {
                return self.finish_issue(v, &device, r).await;
            }
        }
        if device.certificate_id.as_ref() != Some(&v.principal) && !by_replaced {
            return self
                .reject(
                    v,
                    Reason::NotCurrentCertificate,
                    "only the serial's current certificate (or, in its grace period, the replaced one) may rotate",
                )
                .await;
        }
        let now = now();
        if by_replaced {
            return self
                .rotate_replaced(v, device, pem, request_sha256, now)
                .await;
        }
        // One rotation at a time, its grace period included; an expired one waits for the sweep to
        // cut its certificate off before a new one starts.
        if device.rotation.is_some() || device.previous_certificate_id.is_some() {
            return self
                .reject(
                    v,
                    Reason::RotationInFlight,
                    "a rotation or a retirement is pending",
                )
                .await;
        }
        if let Some(last) = &device.last_rotation_at {
            let interval = Duration::hours(i64::from(self.config.min_interval_hours));
            let until = last.instant() + interval;
            if now < until {
                return self
                    .reject(v, Reason::RotationRateLimited, "rotated too recently")
                    .await;
            }
        }
        // Only when due: a stolen current key must not buy a long-lived certificate of its own and
        // rotate the owner out. Due inside the expiry window, or when an operator asked for it.
        if !due(&device, self.config.expiry_window_days, now) {
            return self
                .reject(
                    v,
                    Reason::RotationNotDue,
                    "the certificate is not inside its expiry window and no rotation was requested",
                )
                .await;
        }
        let valid = match self.valid_csr(v, &device, pem).await? {
            Ok(valid) => valid,
            Err((reason, detail)) => return self.reject(v, reason, &detail).await,
        };
        self.issue(v, device, valid, request_sha256, now).await
    }

    /// A rotation asked for by the replaced certificate in its grace period: only one at a time, only
    /// on an operator's request (`fleetctl devices request-rotation`: a stolen old key cannot use it
    /// to rotate the owner out), and with a key neither certificate has.
    pub(super) async fn rotate_replaced(
        &self,
        v: &Valid,
        device: Device,
        pem: &str,
        request_sha256: String,
        now: OffsetDateTime,
    ) -> Result<RotationDecision> {
        if device.rotation.is_some() {
            return self
                .reject(v, Reason::RotationInFlight, "a rotation is pending")
                .await;
        }
        if device.rotation_requested_at.is_none() {
            return self
                .reject(
                    v,
                    Reason::RotationNotDue,
                    "the replaced certificate may rotate only when an operator asked for it",
                )
                .await;
        }
        let valid = match self.valid_csr(v, &device, pem).await? {
            Ok(valid) => valid,
            Err((reason, detail)) => return self.reject(v, reason, &detail).await,
        };
        // valid_csr compared the key with the current certificate's; the requester's own must
        // not come back either.
        let own = match self.control.describe_certificate(&v.principal).await? {
            Some(c) => csr::certificate_public_key(&c.pem)
                .ok()
                .map(|k| sha256_hex(&k)),
            None => None,
        };
        if own.as_deref() == Some(sha256_hex(&valid.public_key).as_str()) {
            return self
                .reject(
                    v,
                    Reason::CsrKeyReused,
                    "the CSR carries the replaced certificate's key",
                )
                .await;
        }
        self.issue(v, device, valid, request_sha256, now).await
    }

    /// The CSR checks: well formed, self-signed, an allowed key, a new key, a subject naming the serial.
    pub(super) async fn valid_csr(
        &self,
        v: &Valid,
        device: &Device,
        pem: &str,
    ) -> Result<std::result::Result<ValidCsr, (Reason, String)>> {
        let refused = |e: crate::x509::CertError| Ok(Err((e.reason, e.detail)));
        let valid = match csr::validate_csr(pem, None) {
            Ok(valid) => valid,
            Err(e) => return refused(e),
        };
        if valid.subject_serial.as_deref() != Some(v.serial.as_str()) {
            return Ok(Err((
                Reason::SerialMismatch,
                "the CSR's subject must name the device's serial".into(),
            )));
        }
        // The current key: kept in the registry once fleetguard issued the certificate, else read
        // from AWS IoT (a device's first rotation).
        let current_key_sha256 = match &device.certificate_key_sha256 {
            Some(k) => k.clone(),
            None => match self.control.describe_certificate(&v.principal).await? {
                Some(c) => match csr::certificate_public_key(&c.pem) {
                    Ok(k) => sha256_hex(&k),
                    Err(e) => return refused(e),
                },
                None => {
                    return Ok(Err((
                        Reason::CertificateNotFound,
                        "the current certificate is not in AWS IoT".into(),
                    )))
                }
            },
        };
        if sha256_hex(&valid.public_key) == current_key_sha256 {
            return Ok(Err((
                Reason::CsrKeyReused,
                "the CSR carries the current certificate's key".into(),
            )));
        }
        Ok(Ok(valid))
    }

    pub(super) async fn issue(
        &self,
        v: &Valid,
        device: Device,
        valid: ValidCsr,
        request_sha256: String,
        now: OffsetDateTime,
    ) -> Result<RotationDecision> {
        let mut serial_number = [0u8; 16];
        serial_number.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..]);
        let not_after = now + Duration::days(i64::from(self.config.validity_days));
        let issued = ca::issue(
            &self.ca_pem,
            &self.signer,
            &IssueRequest {
                serial: &v.serial,
                public_key: &valid.public_key,
                // A few minutes back: a device clock slightly behind still accepts it.
                not_before: now - Duration::minutes(5),
                not_after,
                serial_number,
            },
        )
        .await?;
        let rotation = Rotation {
            next_certificate_id: issued.id.clone(),
            certificate_pem: issued.pem,
            request_sha256,
            key_sha256: sha256_hex(&valid.public_key),
            not_after: Timestamp::at(not_after),
            requested_at: Timestamp::at(now),
            expires_at: Timestamp::at(now + Duration::hours(i64::from(self.config.confirm_hours))),
            cuts_off: device
                .certificate_id
                .clone()
                .filter(|current| *current != v.principal),
        };
        let expected = device.version;
        let mut next = device;
        next.rotation = Some(rotation.clone());
        next.rotation_requested_at = None;
        next.last_rotation_at = Some(Timestamp::at(now));
        next.refresh_deadline();
        next.version = expected + 1;
        next.updated_at = Timestamp::at(now);
        let record = CertificateRecord {
            certificate_id: issued.id.clone(),
            serial: v.serial.clone(),
            denied: false,
            held: false,
            updated_at: Timestamp::at(now),
        };
        let entry = self
            .entry(v, Outcome::Accepted, Reason::CertificateIssued)
            .detail(format!("next certificate {}", issued.id));
        if !self
            .rotations
            .save(&next, expected, Some(&record), &entry)
            .await?
        {
            // Another writer won: answer from what it wrote (one read).
            let now_device = self.registry.get_device(&v.serial).await?;
            if let Some((reason, detail)) = refusal(now_device.as_ref()) {
                return self.reject(v, reason, detail).await;
            }
            if let Some(d) = now_device {
                if let Some(r) = d.rotation.as_ref().filter(|r| {
                    r.request_sha256 == rotation.request_sha256
                        && requested_by(&d, r) == Some(&v.principal)
                }) {
                    return self.finish_issue(v, &d, r).await;
                }
            }
            return self
                .reject(v, Reason::RotationInFlight, "another rotation won")
                .await;
        }
        entry.log();
        self.finish_issue(v, &next, &rotation).await
    }

    /// The AWS IoT steps of an issued rotation (idempotent), then the answer.
    pub(super) async fn finish_issue(
        &self,
        v: &Valid,
        device: &Device,
        r: &Rotation,
    ) -> Result<RotationDecision> {
        let (cert, created) = self
            .control
            .register_certificate(
                &r.certificate_pem,
                Some(&self.ca_pem),
                CertificateStatus::Active,
            )
            .await?;
        if !created && cert.status != CertificateStatus::Active {
            // An isolation registered it first, cut off: it never becomes usable.
            let reason = if cert.status == CertificateStatus::Revoked {
                Reason::SerialRevoked
            } else {
                Reason::DeviceQuarantined
            };
            return self
                .reject(v, reason, "the device was isolated during its rotation")
                .await;
        }
        self.control
            .attach_policy(&self.config.fleet_policy, &cert.arn)
            .await?;
        self.control
            .attach_thing_principal(&device.serial, &cert.arn)
            .await?;
        let reply = RotationReply {
            outcome: Outcome::Accepted,
            reason: Reason::CertificateIssued,
            certificate_id: Some(r.next_certificate_id.to_string()),
            certificate_pem: Some(r.certificate_pem.clone()),
            not_after: Some(r.not_after.to_string()),
            confirm_by: Some(r.expires_at.to_string()),
            request_id: v.request_id.clone(),
        };
        self.answer(v, reply).await
    }
}
