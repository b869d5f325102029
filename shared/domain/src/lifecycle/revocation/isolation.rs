//! Cutting off and letting back: what a command or a signal names, isolation (revoke, quarantine) of a
//! device, a replaced certificate, an operator or a certificate of no device, and release.

use super::*;
use crate::model::AuditAction;

impl<R, C, N, D, A> Revoker<R, C, N, D, A>
where
    R: Registry,
    C: IotControl,
    N: Connections,
    D: Records,
    A: AuditLog,
{
    /// Revokes a certificate AWS IoT knows that is no device's (REVOKED is final), audited.
    pub(super) async fn revoke_certificate_of_no_device(
        &self,
        cert: &CertificateId,
        actor: &str,
        cmd: &Command,
    ) -> Result<Report> {
        self.control
            .set_certificate_status(cert, CertificateStatus::Revoked)
            .await?;
        let entry = AuditEntry::new(
            actor,
            AuditAction::Revoke,
            Outcome::Accepted,
            Reason::Revoked,
        )
        .principal(cert.as_str())
        .detail(format!(
            "certificate of no device (a claim certificate?): {}",
            cmd.reason.as_deref().unwrap_or("")
        ));
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, Some(cert)))
    }

    /// What a command names: a serial, a certificate id, or any principal (all parsed already).
    pub(super) async fn subject(
        &self,
        serial: Option<&Serial>,
        cert: Option<&CertificateId>,
        principal: Option<&Principal>,
    ) -> Result<Option<Subject>> {
        let cert = match principal {
            Some(Principal::Certificate(c)) => Some(c.clone()),
            Some(Principal::Authorizer(id)) => {
                return Ok(match self.registry.get_principal(id).await? {
                    Some(AuthorizerPrincipal::Operator { serials, .. }) => {
                        Some(Subject::Operator {
                            id: id.clone(),
                            serials,
                        })
                    }
                    Some(AuthorizerPrincipal::Device { serial }) => {
                        self.resolve(&serial).await?.map(Subject::Device)
                    }
                    None => None,
                });
            }
            None => cert.cloned(),
        };
        if let Some(id) = cert {
            let Some(rec) = self.registry.get_certificate(&id).await? else {
                return Ok(None);
            };
            let device = self.registry.get_device(&rec.serial).await?;
            let current = device
                .as_ref()
                .is_some_and(|d| d.certificate_id.as_ref() == Some(&id));
            // A rotation's certificate, perhaps not registered yet: its PEM, to register it cut off.
            let unregistered = device
                .and_then(|d| d.rotation)
                .filter(|r| r.next_certificate_id == id)
                .map(|r| r.certificate_pem);
            return Ok(Some(if current {
                Subject::Device(Target {
                    serial: rec.serial,
                    cert: Some(id),
                })
            } else {
                Subject::OldCertificate {
                    serial: rec.serial,
                    cert: id,
                    pem: unregistered,
                }
            }));
        }
        match serial {
            Some(serial) => Ok(self.resolve(serial).await?.map(Subject::Device)),
            None => Ok(None),
        }
    }

    /// Revoke or quarantine a certificate its serial no longer uses: that certificate is denied (on
    /// revoke), set REVOKED or INACTIVE and detached, and the serial's session is cut in case the old
    /// key is the one connected. The serial's current certificate and its registry entry are left as
    /// they are (the device reconnects with its current certificate).
    pub(super) async fn isolate_old_certificate(
        &self,
        serial: &Serial,
        cert: &CertificateId,
        pem: Option<&str>,
        action: Action,
        actor: &str,
        detail: &str,
    ) -> Result<Report> {
        if action == Action::Release {
            return self
                .reject(
                    actor,
                    Some(serial),
                    Reason::NotCurrentCertificate,
                    "a replaced certificate is never released",
                )
                .await;
        }
        let revoke = action == Action::Revoke;
        let cut = self.cut_off(cert, serial, revoke, pem).await?;
        if cut.is_none() {
            self.connections.disconnect(serial.as_str()).await?;
        }
        let changed = cut == Some(true);
        let (name, reason) = if revoke {
            (AuditAction::Revoke, Reason::Revoked)
        } else {
            (AuditAction::Quarantine, Reason::Quarantined)
        };
        let outcome = if changed {
            Outcome::Accepted
        } else {
            Outcome::Noop
        };
        let entry = AuditEntry::new(actor, name, outcome, reason)
            .serial(serial.as_str())
            .principal(cert.as_str())
            .detail(format!("replaced certificate; {detail}"));
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, Some(cert)))
    }

    /// Cuts the device off: every certificate of it (the one the command named, and those the
    /// registry holds now: the current one, so a provisioning that bound the serial after the command
    /// was resolved is cut off too, a rotation's next one and a replaced one in its grace period), its
    /// session, and its thing into the quarantine group.
    pub(super) async fn cut_off_device(
        &self,
        t: &Target,
        device: Option<&Device>,
        revoke: bool,
    ) -> Result<()> {
        let mut certs: Vec<&CertificateId> = t.cert.iter().collect();
        for c in device.map(Device::certificates).unwrap_or_default() {
            if !certs.contains(&c) {
                certs.push(c);
            }
        }
        let mut in_iot = false;
        for cert in certs {
            // A rotation's certificate the rotator has not registered yet: registered here, cut off,
            // so the rotator's own registration finds it taken and it never becomes usable.
            let unregistered = device
                .and_then(|d| d.rotation.as_ref())
                .filter(|r| &r.next_certificate_id == cert)
                .map(|r| r.certificate_pem.as_str());
            in_iot |= self
                .cut_off(cert, &t.serial, revoke, unregistered)
                .await?
                .is_some();
        }
        if in_iot {
            self.control
                .set_group_membership(&self.config.quarantine_group, &t.serial, true)
                .await
        } else {
            // Not in AWS IoT (any more): still cut whatever session holds the serial.
            self.connections.disconnect(t.serial.as_str()).await
        }
    }

    /// Cuts one certificate of `serial` off: denied (revoke) or held (quarantine) in the registry,
    /// REVOKED or INACTIVE in AWS IoT, its session cut, its policy and thing detached. Returns whether
    /// its status in AWS IoT had to change, or `None` if AWS IoT does not know it (and `pem`, a
    /// certificate issued but not yet registered, is not given). A quarantine that meets a certificate
    /// a racing revocation made REVOKED leaves it so (REVOKED is final, and stronger).
    pub(super) async fn cut_off(
        &self,
        cert: &CertificateId,
        serial: &Serial,
        revoke: bool,
        pem: Option<&str>,
    ) -> Result<Option<bool>> {
        if revoke {
            self.registry.deny_certificate(cert, serial).await?;
        } else {
            self.registry.hold_certificate(cert, serial, true).await?;
        }
        let wanted = if revoke {
            CertificateStatus::Revoked
        } else {
            CertificateStatus::Inactive
        };
        let c = match (self.control.describe_certificate(cert).await?, pem) {
            (Some(c), _) => c,
            (None, Some(pem)) => {
                self.control
                    .register_certificate(pem, None, wanted)
                    .await?
                    .0
            }
            (None, None) => return Ok(None),
        };
        // REVOKED is final on AWS: never touch it again.
        let change = c.status != CertificateStatus::Revoked && c.status != wanted;
        if change {
            set_status_unless_revoked(&self.control, cert, wanted).await?;
        }
        self.connections.disconnect(serial.as_str()).await?;
        self.control
            .detach_policy(&self.config.fleet_policy, &c.arn)
            .await?;
        self.control.detach_thing_principal(serial, &c.arn).await?;
        Ok(Some(change))
    }

    /// Revoke, quarantine (`fleetctl operators disable`) or release (`enable`) an operator: its status,
    /// then its live session (client id = principal id) is cut. Its deletes are refused from the
    /// status change on: the delete transaction checks the operator is active.
    pub(super) async fn operator(
        &self,
        id: &PrincipalId,
        action: Action,
        actor: &str,
        detail: &str,
    ) -> Result<Report> {
        use crate::authorization::authorizer::OperatorStatus as S;
        let (name, from, to, reason): (AuditAction, &[S], S, Reason) = match action {
            Action::Revoke => (
                AuditAction::Revoke,
                &[S::Active, S::Disabled],
                S::Revoked,
                Reason::Revoked,
            ),
            Action::Quarantine => (
                AuditAction::Quarantine,
                &[S::Active],
                S::Disabled,
                Reason::Quarantined,
            ),
            Action::Release => (
                AuditAction::Release,
                &[S::Disabled],
                S::Active,
                Reason::Released,
            ),
        };
        let changed = self.registry.set_operator_status(id, from, to).await?;
        let current = match self.registry.get_principal(id).await? {
            Some(AuthorizerPrincipal::Operator { status, .. }) => Some(status),
            _ => None,
        };
        let (outcome, reason) = match (changed, current) {
            (true, _) => (Outcome::Accepted, reason),
            // Already there (a replay): converge, record a no-op.
            (false, Some(s)) if s == to => (Outcome::Noop, reason),
            (false, Some(S::Revoked)) => (Outcome::Rejected, Reason::RevokedIsFinal),
            (false, _) if action == Action::Release => (Outcome::Noop, Reason::NotQuarantined),
            (false, _) => (Outcome::Noop, reason),
        };
        if action != Action::Release && current != Some(S::Active) {
            // Whatever the status write came to, the session goes: the authorizer's answer lives
            // as long as the connection.
            self.connections.disconnect(id.as_str()).await?;
        }
        let entry = AuditEntry::new(actor, name, outcome, reason)
            .principal(id.as_str())
            .detail(detail);
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, None))
    }

    pub(super) async fn resolve(&self, serial: &Serial) -> Result<Option<Target>> {
        let serial = serial.clone();
        Ok(self.registry.get_device(&serial).await?.map(|d| Target {
            serial,
            cert: d.certificate_id,
        }))
    }

    /// Revoke or quarantine: same isolation; revoke is final (REVOKED certificate, deny-list).
    pub(super) async fn isolate(
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
            let entry = AuditEntry::new(
                actor,
                AuditAction::Quarantine,
                Outcome::Noop,
                Reason::RevokedIsFinal,
            )
            .serial(t.serial.as_str());
            crate::ports::record_decision(&self.audit, &entry).await?;
            return Ok(report(&entry, t.cert.as_ref()));
        }
        self.cut_off_device(t, device.as_ref(), revoke).await?;
        let (name, reason) = if revoke {
            (AuditAction::Revoke, Reason::Revoked)
        } else {
            (AuditAction::Quarantine, Reason::Quarantined)
        };
        let mut entry = AuditEntry::new(actor, name, Outcome::Accepted, reason)
            .serial(t.serial.as_str())
            .principal(t.principal())
            .detail(detail);
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
            entry.at = Timestamp::now();
            entry.dedupe = None;
            self.audit.record(&entry).await?;
        }
        // Logged once, as what it came to.
        entry.log();
        Ok(report(&entry, t.cert.as_ref()))
    }

    /// Undo a quarantine. A revoked device stays revoked (a replacement certificate is the way back).
    pub(super) async fn release(&self, t: &Target, actor: &str, detail: &str) -> Result<Report> {
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
                let entry = AuditEntry::new(
                    actor,
                    AuditAction::Release,
                    Outcome::Noop,
                    Reason::NotQuarantined,
                )
                .serial(t.serial.as_str());
                crate::ports::record_decision(&self.audit, &entry).await?;
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
            if c.status != CertificateStatus::Active
                && !set_status_unless_revoked(&self.control, cert, CertificateStatus::Active)
                    .await?
            {
                let now = self.registry.get_device(&t.serial).await?;
                return self.release_lost_to_revoke(t, now.as_ref(), actor).await;
            }
            self.registry
                .hold_certificate(cert, &t.serial, false)
                .await?;
        }
        // Last: the registry is what lets deletes through again.
        let released = self
            .registry
            .transition(
                &t.serial,
                &[DeviceStatus::Quarantined],
                DeviceStatus::Active,
            )
            .await?;
        if !released {
            // Someone got there between our read and our write: answer from what they left.
            let now = self.registry.get_device(&t.serial).await?;
            if now.as_ref().map(|d| d.status) == Some(DeviceStatus::Revoked) {
                return self.release_lost_to_revoke(t, now.as_ref(), actor).await;
            }
            let entry = AuditEntry::new(
                actor,
                AuditAction::Release,
                Outcome::Noop,
                Reason::NotQuarantined,
            )
            .serial(t.serial.as_str())
            .detail("released by someone else meanwhile");
            crate::ports::record_decision(&self.audit, &entry).await?;
            return Ok(report(&entry, t.cert.as_ref()));
        }
        let entry = AuditEntry::new(
            actor,
            AuditAction::Release,
            Outcome::Accepted,
            Reason::Released,
        )
        .serial(t.serial.as_str())
        .principal(t.principal())
        .detail(detail);
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, t.cert.as_ref()))
    }

    /// A revocation won the race against this release: whatever the release re-attached before it
    /// lost is cut off again (the revocation may have finished before our attaches), and the release
    /// is answered as refused. `device` is the registry's entry as read after losing.
    pub(super) async fn release_lost_to_revoke(
        &self,
        t: &Target,
        device: Option<&Device>,
        actor: &str,
    ) -> Result<Report> {
        self.cut_off_device(t, device, true).await?;
        self.reject(
            actor,
            Some(&t.serial),
            Reason::RevokedIsFinal,
            "revoked while the release was in flight",
        )
        .await
    }
}
