//! Certificate rotation: the CA key that signs, and the registry as rotation uses it.

use super::*;

/// The fleet CA's signing key (AWS KMS: the private key never leaves it).
pub trait CaSigner: Send + Sync {
    /// The key's SubjectPublicKeyInfo (DER), read once at cold start.
    fn public_key(&self) -> &[u8];

    /// An ECDSA P-256 / SHA-256 signature (DER `Ecdsa-Sig-Value`) over `message`, the certificate's
    /// to-be-signed bytes.
    fn sign(&self, message: &[u8]) -> impl Future<Output = Result<Vec<u8>>> + Send;
}

/// The registry as certificate rotation uses it.
pub trait Rotations: Send + Sync {
    /// One transaction: the device item becomes `device` if its version is still `expected_version`
    /// (every device write bumps the version, so nothing written meanwhile is lost), `certificate`
    /// (the new certificate's record: not denied, this serial's) is put, and the audit entry is
    /// written with it. `Ok(false)` when the version moved (another writer won).
    fn save(
        &self,
        device: &Device,
        expected_version: u64,
        certificate: Option<&CertificateRecord>,
        audit: &AuditEntry,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Devices with a rotation deadline at or before `now`: unconfirmed rotations to expire,
    /// replaced certificates to retire. At most `limit`.
    fn due(
        &self,
        now: &Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Device>>> + Send;

    /// Devices whose current certificate expires between `from` and `to`, oldest first.
    /// Also returns the read capacity the query consumed (units), for the watch's report.
    fn expiring(
        &self,
        from: &Timestamp,
        to: &Timestamp,
    ) -> impl Future<Output = Result<(Vec<Device>, f64)>> + Send;
}
