//! The registry as fleet provisioning by claim uses it: one read, one pending binding.

use super::*;

/// What the pre-provisioning hook reads, in one round trip: the serial's entry and the new
/// certificate's record (deny-list).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnrollmentContext {
    pub device: Option<Device>,
    pub certificate: Option<CertificateRecord>,
}

/// The proof a pending binding spends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofSpend {
    /// A factory-key statement of this time: only newer ones are accepted afterwards.
    FactoryKey { timestamp: i64 },
    /// The one-time secret with this hash, now spent on the new certificate.
    Secret { hash: String },
}

/// A binding the pre-provisioning hook commits: pending until its certificate is seen ACTIVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBinding {
    pub serial: Serial,
    pub certificate: CertificateId,
    /// The device's version when the decision was made: the commit holds only if nothing changed.
    pub expected_version: u64,
    pub spend: ProofSpend,
    /// A stale pending certificate (never became ACTIVE) that this binding replaces and denies.
    pub replaces: Option<CertificateId>,
}

/// The registry as fleet provisioning by claim uses it.
pub trait Enrollments: Send + Sync {
    fn load(
        &self,
        serial: &Serial,
        cert: &CertificateId,
    ) -> impl Future<Output = Result<EnrollmentContext>> + Send;

    /// One transaction: the device (at `expected_version`, proof unspent) becomes active and bound,
    /// pending, to the certificate; the proof is spent; a replaced stale certificate is denied; the
    /// audit entry is written with it. `Ok(false)` when a condition failed (another writer won).
    fn bind_pending(
        &self,
        binding: &PendingBinding,
        audit: &AuditEntry,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// As [`Registry::confirm_binding`].
    fn confirm(
        &self,
        serial: &Serial,
        cert: &CertificateId,
    ) -> impl Future<Output = Result<()>> + Send;
}
