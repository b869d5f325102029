//! AWS IoT: the control plane (certificates, things, policies), the data plane (publishes) and live
//! sessions.

use super::*;

/// The IoT data plane: publishes replies and security events (QoS 1).
pub trait Publisher: Send + Sync {
    fn publish(
        &self,
        topic: &str,
        payload: &serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// A certificate as the AWS IoT control plane describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IotCertificate {
    pub id: CertificateId,
    pub arn: String,
    pub status: CertificateStatus,
    pub pem: String,
}

/// The AWS IoT control plane, as far as fleetguard uses it. Every mutating call is idempotent: doing it
/// twice leaves the same state as doing it once, so a replayed event converges.
pub trait IotControl: Send + Sync {
    fn describe_certificate(
        &self,
        id: &CertificateId,
    ) -> impl Future<Output = Result<Option<IotCertificate>>> + Send;

    fn describe_ca_certificate(
        &self,
        id: &CertificateId,
    ) -> impl Future<Output = Result<Option<IotCertificate>>> + Send;

    /// Creates the thing if it does not exist; never replaces an existing one.
    fn ensure_thing(&self, name: &Serial) -> impl Future<Output = Result<()>> + Send;

    fn attach_policy(
        &self,
        policy: &str,
        cert_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    fn attach_thing_principal(
        &self,
        thing: &Serial,
        cert_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    fn set_certificate_status(
        &self,
        id: &CertificateId,
        status: CertificateStatus,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Detaches a policy; "not attached" counts as done (replays converge).
    fn detach_policy(
        &self,
        policy: &str,
        cert_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Detaches the certificate from the thing; "not attached" counts as done.
    fn detach_thing_principal(
        &self,
        thing: &Serial,
        cert_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Registers a certificate signed by a registered CA (`ca_pem`) with `status`. Returns the
    /// certificate and whether this call registered it: when it was registered already, its status is
    /// left as it is (a replay, or an isolation that registered it first, cut off, so that it never
    /// becomes usable).
    fn register_certificate(
        &self,
        pem: &str,
        ca_pem: Option<&str>,
        status: CertificateStatus,
    ) -> impl Future<Output = Result<(IotCertificate, bool)>> + Send;

    /// The CA certificates registered with AWS IoT (for the expiry watch).
    fn ca_certificates(&self) -> impl Future<Output = Result<Vec<IotCertificate>>> + Send;

    /// Adds (`true`) or removes (`false`) the thing from a thing group, creating the group if missing.
    fn set_group_membership(
        &self,
        group: &str,
        thing: &Serial,
        member: bool,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Live MQTT sessions (IoT data plane).
pub trait Connections: Send + Sync {
    /// Force-disconnects a client id; a client that is not connected counts as done.
    fn disconnect(&self, client_id: &str) -> impl Future<Output = Result<()>> + Send;
}
