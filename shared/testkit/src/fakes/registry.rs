//! The registry in memory: conditional imports, bindings and transitions; REVOKED is final.

use super::*;

/// The device registry. Clones share one registry.
#[derive(Default, Clone)]
pub struct InMemoryRegistry {
    pub(super) devices: Arc<Mutex<HashMap<Serial, Device>>>,
    pub(super) certificates: Arc<Mutex<HashMap<CertificateId, CertificateRecord>>>,
    pub(super) principals: Arc<Mutex<HashMap<String, AuthorizerPrincipal>>>,
}

impl InMemoryRegistry {
    /// Stores a custom-authorizer principal (what `fleetctl operators add` / `devices set-password` write).
    pub fn put_principal(&self, id: &str, principal: AuthorizerPrincipal) {
        lock(&self.principals).insert(id.to_owned(), principal);
    }
}

impl Registry for InMemoryRegistry {
    async fn get_device(&self, serial: &Serial) -> Result<Option<Device>> {
        Ok(lock(&self.devices).get(serial).cloned())
    }

    async fn note_session(
        &self,
        serial: &Serial,
        session: &fleetguard_domain::model::LiveSession,
    ) -> Result<bool> {
        let mut devices = lock(&self.devices);
        let Some(d) = devices.get_mut(serial) else {
            return Ok(false);
        };
        let newer_known = d
            .live_session
            .as_ref()
            .is_some_and(|l| l.version > session.version);
        if d.previous_certificate_id.is_none() || newer_known {
            return Ok(false);
        }
        // Like the adapter: not a version-counted change.
        d.live_session = Some(session.clone());
        Ok(true)
    }

    async fn end_session(&self, serial: &Serial, session: &str) -> Result<()> {
        if let Some(d) = lock(&self.devices).get_mut(serial) {
            if d.live_session
                .as_ref()
                .is_some_and(|l| l.session == session)
            {
                d.live_session = None;
            }
        }
        Ok(())
    }

    async fn get_certificate(&self, id: &CertificateId) -> Result<Option<CertificateRecord>> {
        Ok(lock(&self.certificates).get(id).cloned())
    }

    async fn import_device(&self, device: &Device) -> Result<bool> {
        let mut devices = lock(&self.devices);
        if devices.contains_key(&device.serial) {
            return Ok(false);
        }
        devices.insert(device.serial.clone(), device.clone());
        Ok(true)
    }

    async fn bind_certificate(
        &self,
        serial: &Serial,
        cert: &CertificateId,
        replaces: Option<&CertificateId>,
        facts: Option<&fleetguard_domain::model::CertificateFacts>,
    ) -> Result<()> {
        // Both locks for the whole check-and-set: all or nothing, like the transaction.
        let mut devices = lock(&self.devices);
        let mut certificates = lock(&self.certificates);
        let device_ok = devices.get(serial).is_some_and(|d| {
            d.status == DeviceStatus::Manufactured
                || (d.status == DeviceStatus::Active && d.certificate_id.as_ref() == Some(cert))
                // An active password device: its first certificate.
                || (d.status == DeviceStatus::Active && d.certificate_id.is_none())
                || d.replacement_approved
                || (replaces.is_some()
                    && d.status == DeviceStatus::Active
                    && d.certificate_id.as_ref() == replaces
                    && d.binding_pending)
        });
        if !(certificate_bindable(&certificates, serial, cert) && device_ok) {
            return Err(condition_failed("bind"));
        }
        let now = Timestamp::now();
        certificates.insert(cert.clone(), bound_record(serial, cert, &now));
        if let Some(stale) = replaces {
            deny_in(&mut certificates, stale, serial);
        }
        if let Some(d) = devices.get_mut(serial) {
            d.status = DeviceStatus::Active;
            d.certificate_id = Some(cert.clone());
            d.replacement_approved = false;
            d.binding_pending = false;
            d.set_certificate_facts(facts);
            d.clear_rotation_state();
            d.updated_at = now;
            d.version += 1;
        }
        Ok(())
    }

    async fn confirm_binding(&self, serial: &Serial, cert: &CertificateId) -> Result<()> {
        if let Some(d) = lock(&self.devices).get_mut(serial) {
            if d.certificate_id.as_ref() == Some(cert) && d.binding_pending {
                d.binding_pending = false;
                d.version += 1;
            }
        }
        Ok(())
    }

    async fn transition(
        &self,
        serial: &Serial,
        from: &[DeviceStatus],
        to: DeviceStatus,
    ) -> Result<bool> {
        Ok(match lock(&self.devices).get_mut(serial) {
            Some(d) if from.contains(&d.status) => {
                d.status = to;
                d.updated_at = Timestamp::now();
                d.version += 1;
                true
            }
            _ => false,
        })
    }

    async fn deny_certificate(&self, cert: &CertificateId, serial: &Serial) -> Result<()> {
        deny_in(&mut lock(&self.certificates), cert, serial);
        Ok(())
    }

    async fn approve_replacement(&self, serial: &Serial) -> Result<bool> {
        Ok(match lock(&self.devices).get_mut(serial) {
            Some(d) if d.status == DeviceStatus::Revoked => {
                d.replacement_approved = true;
                d.version += 1;
                true
            }
            _ => false,
        })
    }

    async fn hold_certificate(
        &self,
        cert: &CertificateId,
        serial: &Serial,
        held: bool,
    ) -> Result<()> {
        let mut certificates = lock(&self.certificates);
        let entry = certificates
            .entry(cert.clone())
            .or_insert_with(|| bound_record(serial, cert, &Timestamp::now()));
        entry.held = held;
        Ok(())
    }

    async fn get_principal(&self, id: &PrincipalId) -> Result<Option<AuthorizerPrincipal>> {
        Ok(lock(&self.principals).get(id.as_str()).cloned())
    }

    async fn set_operator_status(
        &self,
        id: &PrincipalId,
        from: &[OperatorStatus],
        to: OperatorStatus,
    ) -> Result<bool> {
        Ok(match lock(&self.principals).get_mut(id.as_str()) {
            Some(AuthorizerPrincipal::Operator { status, active, .. }) if from.contains(status) => {
                *status = to;
                *active = to == OperatorStatus::Active;
                true
            }
            _ => false,
        })
    }
}
