//! The registry as rotation uses it, in memory.

use super::*;

/// The registry as rotation uses it: shares its state with an [`InMemoryRegistry`], and writes the
/// decision's audit entry in the same step, as the transaction does.
#[derive(Default, Clone)]
pub struct InMemoryRotations {
    pub registry: InMemoryRegistry,
    pub audit: InMemoryAudit,
}

impl Rotations for InMemoryRotations {
    async fn save(
        &self,
        device: &Device,
        expected_version: u64,
        certificate: Option<&CertificateRecord>,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let mut devices = lock(&self.registry.devices);
        let mut certificates = lock(&self.registry.certificates);
        if devices.get(&device.serial).map(|d| d.version) != Some(expected_version) {
            return Ok(false);
        }
        if certificate.is_some_and(|c| {
            !c.denied && !certificate_bindable(&certificates, &c.serial, &c.certificate_id)
        }) {
            return Ok(false);
        }
        // The audit entry's own condition (written once) is part of the transaction.
        if !self.audit.push(audit.clone()) {
            return Ok(false);
        }
        match certificate {
            Some(c) if c.denied => deny_in(&mut certificates, &c.certificate_id, &c.serial),
            Some(c) => {
                certificates.insert(c.certificate_id.clone(), c.clone());
            }
            None => {}
        }
        devices.insert(device.serial.clone(), device.clone());
        Ok(true)
    }

    async fn due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Device>> {
        let mut due: Vec<Device> = lock(&self.registry.devices)
            .values()
            .filter(|d| d.deadline_kind.is_some() && d.deadline.as_ref().is_some_and(|t| t <= now))
            .cloned()
            .collect();
        due.sort_by(|a, b| a.deadline.cmp(&b.deadline));
        due.truncate(limit);
        Ok(due)
    }

    async fn expiring(&self, from: &Timestamp, to: &Timestamp) -> Result<(Vec<Device>, f64)> {
        let mut found: Vec<Device> = lock(&self.registry.devices)
            .values()
            .filter(|d| {
                d.expiry_month.is_some()
                    && d.certificate_not_after
                        .as_ref()
                        .is_some_and(|t| t >= from && t <= to)
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| a.certificate_not_after.cmp(&b.certificate_not_after));
        Ok((found, 0.0))
    }
}
