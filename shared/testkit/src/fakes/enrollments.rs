//! The registry as the pre-provisioning hook uses it, in memory.

use super::*;

/// The registry as the pre-provisioning hook uses it: shares its state with an [`InMemoryRegistry`],
/// and writes the accepted decision's audit entry in the same step, as the transaction does.
#[derive(Default, Clone)]
pub struct InMemoryEnrollments {
    pub registry: InMemoryRegistry,
    pub audit: InMemoryAudit,
}

impl Enrollments for InMemoryEnrollments {
    async fn load(&self, serial: &Serial, cert: &CertificateId) -> Result<EnrollmentContext> {
        Ok(EnrollmentContext {
            device: lock(&self.registry.devices).get(serial).cloned(),
            certificate: lock(&self.registry.certificates).get(cert).cloned(),
        })
    }

    async fn bind_pending(&self, b: &PendingBinding, audit: &AuditEntry) -> Result<bool> {
        let mut devices = lock(&self.registry.devices);
        let mut certificates = lock(&self.registry.certificates);
        let Some(d) = devices.get_mut(&b.serial) else {
            return Ok(false);
        };
        let e = &d.enrollment;
        let unspent = match &b.spend {
            ProofSpend::FactoryKey { timestamp } => e.proof_last_ts.is_none_or(|t| t < *timestamp),
            ProofSpend::Secret { hash } => {
                e.secret_sha256.as_ref() == Some(hash)
                    && (e.secret_used_by.is_none() || e.secret_used_by == b.replaces)
            }
        };
        if d.version != b.expected_version
            || !unspent
            || !certificate_bindable(&certificates, &b.serial, &b.certificate)
        {
            return Ok(false);
        }
        let now = Timestamp::now();
        certificates.insert(
            b.certificate.clone(),
            bound_record(&b.serial, &b.certificate, &now),
        );
        if let Some(stale) = &b.replaces {
            deny_in(&mut certificates, stale, &b.serial);
        }
        match &b.spend {
            ProofSpend::FactoryKey { timestamp } => d.enrollment.proof_last_ts = Some(*timestamp),
            ProofSpend::Secret { .. } => d.enrollment.secret_used_by = Some(b.certificate.clone()),
        }
        d.status = DeviceStatus::Active;
        d.certificate_id = Some(b.certificate.clone());
        // Nothing was read of an AWS-issued certificate: none of its predecessor's facts.
        d.set_certificate_facts(None);
        d.clear_rotation_state();
        d.binding_pending = true;
        d.replacement_approved = false;
        d.updated_at = now;
        d.version += 1;
        self.audit.push(audit.clone());
        Ok(true)
    }

    async fn confirm(&self, serial: &Serial, cert: &CertificateId) -> Result<()> {
        self.registry.confirm_binding(serial, cert).await
    }
}
