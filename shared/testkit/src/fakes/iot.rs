//! AWS IoT in memory: the control plane, the data plane (recorded publishes) and live sessions.

use super::*;

/// Publishes into a list. Clones share it.
#[derive(Default, Clone)]
pub struct RecordingPublisher {
    pub(super) published: std::sync::Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl RecordingPublisher {
    pub fn published(&self) -> Vec<(String, serde_json::Value)> {
        lock(&self.published).clone()
    }
}

impl Publisher for RecordingPublisher {
    async fn publish(&self, topic: &str, payload: &serde_json::Value) -> Result<()> {
        lock(&self.published).push((topic.to_owned(), payload.clone()));
        Ok(())
    }
}

/// The AWS IoT control plane: registered certificates and CAs, things, attachments, groups. Clones
/// share one control plane (two function instances see the same account).
#[derive(Default, Clone)]
pub struct InMemoryIot {
    pub(super) certificates: Arc<Mutex<HashMap<CertificateId, IotCertificate>>>,
    pub(super) cas: Arc<Mutex<HashMap<CertificateId, IotCertificate>>>,
    /// Thing name → attached certificate ARNs.
    pub(super) things: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// Certificate ARN → attached policies.
    pub(super) policies: Arc<Mutex<HashMap<String, Vec<String>>>>,
    pub(super) groups: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl InMemoryIot {
    /// Registers a CA (ACTIVE) and returns its id (SHA-256 of its DER, as AWS names it).
    pub fn register_ca(&self, pem: &str) -> Result<CertificateId> {
        let id = pem_id(pem)?;
        lock(&self.cas).insert(
            id.clone(),
            iot_certificate(&id, pem, CertificateStatus::Active),
        );
        Ok(id)
    }

    /// Registers a device certificate as auto-registration does (PENDING_ACTIVATION).
    pub fn register_certificate(&self, pem: &str) -> Result<CertificateId> {
        let id = pem_id(pem)?;
        lock(&self.certificates).insert(
            id.clone(),
            iot_certificate(&id, pem, CertificateStatus::PendingActivation),
        );
        Ok(id)
    }

    pub fn status(&self, id: &CertificateId) -> Option<CertificateStatus> {
        lock(&self.certificates).get(id).map(|c| c.status)
    }

    pub fn thing_principals(&self, thing: &str) -> Vec<String> {
        lock(&self.things).get(thing).cloned().unwrap_or_default()
    }

    pub fn attached_policies(&self, cert_arn: &str) -> Vec<String> {
        lock(&self.policies)
            .get(cert_arn)
            .cloned()
            .unwrap_or_default()
    }

    pub fn group_members(&self, group: &str) -> Vec<String> {
        lock(&self.groups).get(group).cloned().unwrap_or_default()
    }
}

impl IotControl for InMemoryIot {
    async fn describe_certificate(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        Ok(lock(&self.certificates).get(id).cloned())
    }

    async fn describe_ca_certificate(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        Ok(lock(&self.cas).get(id).cloned())
    }

    async fn ensure_thing(&self, name: &Serial) -> Result<()> {
        lock(&self.things).entry(name.to_string()).or_default();
        Ok(())
    }

    async fn attach_policy(&self, policy: &str, cert_arn: &str) -> Result<()> {
        add(
            lock(&self.policies).entry(cert_arn.to_owned()).or_default(),
            policy,
        );
        Ok(())
    }

    async fn attach_thing_principal(&self, thing: &Serial, cert_arn: &str) -> Result<()> {
        match lock(&self.things).get_mut(thing.as_str()) {
            Some(principals) => {
                add(principals, cert_arn);
                Ok(())
            }
            None => Err(Error::aws(
                "iot:AttachThingPrincipal",
                AwsErrorKind::NotFound,
                "no such thing",
            )),
        }
    }

    async fn set_certificate_status(
        &self,
        id: &CertificateId,
        status: CertificateStatus,
    ) -> Result<()> {
        match lock(&self.certificates).get_mut(id) {
            // AWS refuses to leave REVOKED.
            Some(c) if c.status == CertificateStatus::Revoked && status != c.status => Err(
                Error::aws("iot:UpdateCertificate", AwsErrorKind::Other, "revoked"),
            ),
            Some(c) => {
                c.status = status;
                Ok(())
            }
            None => Err(Error::aws(
                "iot:UpdateCertificate",
                AwsErrorKind::NotFound,
                "no such certificate",
            )),
        }
    }

    async fn detach_policy(&self, policy: &str, cert_arn: &str) -> Result<()> {
        if let Some(list) = lock(&self.policies).get_mut(cert_arn) {
            list.retain(|p| p != policy);
        }
        Ok(())
    }

    async fn detach_thing_principal(&self, thing: &Serial, cert_arn: &str) -> Result<()> {
        if let Some(list) = lock(&self.things).get_mut(thing.as_str()) {
            list.retain(|p| p != cert_arn);
        }
        Ok(())
    }

    async fn register_certificate(
        &self,
        pem: &str,
        _ca_pem: Option<&str>,
        status: CertificateStatus,
    ) -> Result<(IotCertificate, bool)> {
        let id = pem_id(pem)?;
        let mut certificates = lock(&self.certificates);
        if let Some(c) = certificates.get(&id) {
            return Ok((c.clone(), false));
        }
        let c = iot_certificate(&id, pem, status);
        certificates.insert(id, c.clone());
        Ok((c, true))
    }

    async fn ca_certificates(&self) -> Result<Vec<IotCertificate>> {
        Ok(lock(&self.cas).values().cloned().collect())
    }

    async fn set_group_membership(&self, group: &str, thing: &Serial, member: bool) -> Result<()> {
        let mut groups = lock(&self.groups);
        let list = groups.entry(group.to_owned()).or_default();
        if member {
            add(list, thing.as_str());
        } else {
            list.retain(|t| t != thing.as_str());
        }
        Ok(())
    }
}

/// Live sessions: records every forced disconnect.
#[derive(Default, Clone)]
pub struct RecordingConnections {
    pub(super) disconnected: std::sync::Arc<Mutex<Vec<String>>>,
}

impl RecordingConnections {
    pub fn disconnected(&self) -> Vec<String> {
        lock(&self.disconnected).clone()
    }
}

impl Connections for RecordingConnections {
    async fn disconnect(&self, client_id: &str) -> Result<()> {
        lock(&self.disconnected).push(client_id.to_owned());
        Ok(())
    }
}
