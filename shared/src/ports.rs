//! Ports: the small traits the domain talks through. Adapters implement them over AWS (see
//! [`crate::adapters`]); unit tests use the in-memory fakes (feature `fakes`).

use crate::domain::{
    AuditEntry, CertificateId, CertificateRecord, CertificateStatus, Device, Serial,
};
use crate::Result;
use std::future::Future;

/// The device registry (DynamoDB): allow-list, device states, certificate bindings, deny-list.
pub trait Registry: Send + Sync {
    fn get_device(&self, serial: &Serial) -> impl Future<Output = Result<Option<Device>>> + Send;

    fn get_certificate(
        &self,
        id: &CertificateId,
    ) -> impl Future<Output = Result<Option<CertificateRecord>>> + Send;

    /// Adds a serial to the allow-list (status `manufactured`) unless it already exists.
    /// Returns whether it was added.
    fn import_serial(&self, serial: &Serial) -> impl Future<Output = Result<bool>> + Send;

    /// Atomically binds `cert` to `serial` and marks the device active. Conditional: the device exists
    /// and is `manufactured`, or already active with this certificate, or has a replacement approved;
    /// the certificate is not denied and not bound to another serial. A failed condition is
    /// `Error::Aws { kind: ConditionFailed, .. }`.
    fn bind_certificate(
        &self,
        serial: &Serial,
        cert: &CertificateId,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// The append-only audit log.
pub trait AuditLog: Send + Sync {
    fn record(&self, entry: &AuditEntry) -> impl Future<Output = Result<()>> + Send;

    /// Entries for a serial, newest first.
    fn for_serial(
        &self,
        serial: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;
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
}
