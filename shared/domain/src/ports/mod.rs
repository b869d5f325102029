//! Ports: the small traits the domain talks through. Adapters implement them over AWS (see
//! the crate `fleetguard-aws`); tests use the in-memory fakes of `fleetguard-testkit`.

use crate::authorization::authorizer::OperatorStatus;
use crate::model::{
    AuditEntry, CertificateId, CertificateRecord, CertificateStatus, Device, DeviceStatus,
    Enrollment, Principal, PrincipalId, Record, RecordId, Serial, Timestamp,
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

    /// Adds a serial without enrollment material to the allow-list (JITR and password devices).
    fn import_serial(&self, serial: &Serial) -> impl Future<Output = Result<bool>> + Send {
        let device = Device::manufactured(serial.clone(), Enrollment::default(), Timestamp::now());
        async move { self.import_device(&device).await }
    }

    /// Adds a device to the allow-list (status `manufactured`) with its enrollment material, unless the
    /// serial already exists. Returns whether it was added.
    fn import_device(&self, device: &Device) -> impl Future<Output = Result<bool>> + Send;

    /// Atomically binds `cert` to `serial` and marks the device active, the binding confirmed, with
    /// `facts` (its expiry and key) if read, else none (never the previous certificate's).
    /// Conditional: the device exists and is `manufactured`, or already active with this certificate,
    /// or has a replacement approved, or (with `replaces`) is still bound, pending, to that stale
    /// certificate, which is then denied in the same transaction; the certificate is not denied and not
    /// bound to another serial. A failed condition is `Error::Aws { kind: ConditionFailed, .. }`.
    fn bind_certificate(
        &self,
        serial: &Serial,
        cert: &CertificateId,
        replaces: Option<&CertificateId>,
        facts: Option<&crate::model::CertificateFacts>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Marks a pending binding confirmed: its certificate was seen ACTIVE. No-op if the serial is
    /// bound to another certificate by now.
    fn confirm_binding(
        &self,
        serial: &Serial,
        cert: &CertificateId,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Records `session` as the device's live one, only while the device has a replaced certificate
    /// in its grace period and only if no newer session (higher `version`) is recorded. Not a
    /// version-counted change: it is a hint the presence events keep, and must not make rotation's
    /// conditional writes lose. Returns whether it was written.
    fn note_session(
        &self,
        serial: &Serial,
        session: &crate::model::LiveSession,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Forgets the live session if it is still `session` (it ended).
    fn end_session(
        &self,
        serial: &Serial,
        session: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Moves a device to `to` if its status is one of `from`. Returns whether it changed.
    fn transition(
        &self,
        serial: &Serial,
        from: &[DeviceStatus],
        to: DeviceStatus,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Puts a certificate on the deny-list (idempotent). Provisioning and the authorizer refuse it forever.
    fn deny_certificate(
        &self,
        cert: &CertificateId,
        serial: &Serial,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Holds (`true`) or lets go (`false`) a certificate while its device is quarantined: the handshake
    /// validator refuses a held certificate. Idempotent.
    fn hold_certificate(
        &self,
        cert: &CertificateId,
        serial: &Serial,
        held: bool,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Lets a revoked serial be provisioned once more with a new certificate. False if not revoked.
    fn approve_replacement(&self, serial: &Serial) -> impl Future<Output = Result<bool>> + Send;

    /// A custom-authorizer principal (item `PRINCIPAL#<id>`): an operator or a password device.
    fn get_principal(
        &self,
        id: &PrincipalId,
    ) -> impl Future<Output = Result<Option<AuthorizerPrincipal>>> + Send;

    /// Moves an operator to `to` if its status is one of `from`. Returns whether it changed.
    fn set_operator_status(
        &self,
        id: &PrincipalId,
        from: &[OperatorStatus],
        to: OperatorStatus,
    ) -> impl Future<Output = Result<bool>> + Send;
}

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

/// What the registry says about a custom-authorizer principal (item `PRINCIPAL#<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizerPrincipal {
    Operator {
        name: String,
        active: bool,
        status: OperatorStatus,
        serials: Vec<Serial>,
    },
    Device {
        serial: Serial,
    },
}

impl From<&crate::authorization::authorizer::Identity> for AuthorizerPrincipal {
    /// The registry's one identity model, as delete-record and revocation see it.
    fn from(identity: &crate::authorization::authorizer::Identity) -> Self {
        use crate::authorization::authorizer::IdentityKind;
        match &identity.kind {
            IdentityKind::Operator {
                operator_id,
                serials,
                status,
            } => Self::Operator {
                name: operator_id.clone(),
                active: *status == OperatorStatus::Active,
                status: *status,
                serials: serials.clone(),
            },
            IdentityKind::Device { serial, .. } => Self::Device {
                serial: serial.clone(),
            },
        }
    }
}

/// Who must still be entitled when a soft delete commits. Checked inside the same transaction, so a
/// revocation racing the delete wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entitlement {
    /// The device is active and bound to this certificate.
    Certificate {
        serial: Serial,
        certificate: CertificateId,
    },
    /// The password device is active.
    PasswordDevice { serial: Serial },
    /// The operator is active and still granted the serial.
    Operator {
        principal_id: PrincipalId,
        serial: Serial,
    },
}

/// A soft-delete request, already authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftDelete {
    pub serial: Serial,
    pub record_id: RecordId,
    pub principal: String,
    pub reason: Option<String>,
    /// Idempotency key of the message.
    pub request_key: String,
    pub at: Timestamp,
}

/// What the registry knows about a principal, read together with the record in one round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalFacts {
    Certificate(CertificateRecord),
    Authorizer(AuthorizerPrincipal),
}

/// Everything the delete decision reads, in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteContext {
    pub principal: Option<PrincipalFacts>,
    pub record: Option<Record>,
    /// The target serial's replaced certificate in its grace period, if any (read with the rest):
    /// a delete from it is refused and is a signal against that certificate.
    pub replaced_certificate: Option<CertificateId>,
}

/// What a soft-delete write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoftDeleteResult {
    Deleted {
        version: u64,
    },
    /// The entitlement no longer held when the transaction ran (e.g. revoked meanwhile).
    NotEntitled,
    /// The record changed between the read and the write; read again.
    Changed,
}

/// What a restore came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreResult {
    Restored { version: u64 },
    NotDeleted { version: u64 },
    NotFound,
}

/// The records table. Deletes are soft and restorable; each write carries its audit entry in the same
/// transaction.
pub trait Records: Send + Sync {
    fn get(
        &self,
        serial: &Serial,
        record_id: &RecordId,
    ) -> impl Future<Output = Result<Option<Record>>> + Send;

    /// Creates or replaces a live record (seeding, tests, demo).
    fn put(&self, record: &Record) -> impl Future<Output = Result<()>> + Send;

    /// One round trip: the principal's registry facts and the record.
    fn load_for_delete(
        &self,
        principal: &Principal,
        serial: &Serial,
        record_id: &RecordId,
    ) -> impl Future<Output = Result<DeleteContext>> + Send;

    /// One transaction: the entitlement still holds, the record is live at `expected_version`, and the
    /// audit entry is written with it.
    fn soft_delete(
        &self,
        request: &SoftDelete,
        expected_version: u64,
        entitlement: &Entitlement,
        audit: &AuditEntry,
    ) -> impl Future<Output = Result<SoftDeleteResult>> + Send;

    /// The records of `serial` that are soft-deleted by `principal` at or after `since` (RFC 3339),
    /// read consistently from the records table itself: a delete committed a moment ago is there,
    /// where an index of the audit log might not have it yet.
    fn deleted_by(
        &self,
        serial: &Serial,
        principal: &Principal,
        since: &Timestamp,
    ) -> impl Future<Output = Result<Vec<Record>>> + Send;

    /// Restores each record if it is still deleted by `principal` at the version given, each with its
    /// audit entry. Returns how many were restored. The default restores one at a time; the DynamoDB
    /// adapter batches them into transactions.
    fn restore_deleted_by(
        &self,
        batch: &[(Record, AuditEntry)],
        actor: &str,
        principal: &Principal,
    ) -> impl Future<Output = Result<usize>> + Send {
        restore_one_by_one(self, batch, actor, principal)
    }

    /// Undoes a soft delete (conditional on it being deleted). `only_if_deleted_by` restricts it to
    /// deletes by one principal (revocation rollback).
    fn restore(
        &self,
        serial: &Serial,
        record_id: &RecordId,
        actor: &str,
        only_if_deleted_by: Option<&Principal>,
        audit: &AuditEntry,
    ) -> impl Future<Output = Result<RestoreResult>> + Send;
}

/// Restores each record of `batch` on its own, if still deleted by `principal`: the default of
/// [`Records::restore_deleted_by`], and the DynamoDB adapter's fallback when a batch was cancelled.
pub async fn restore_one_by_one<D: Records + ?Sized>(
    records: &D,
    batch: &[(Record, AuditEntry)],
    actor: &str,
    principal: &Principal,
) -> Result<usize> {
    let mut restored = 0;
    for (record, entry) in batch {
        let r = records
            .restore(
                &record.serial,
                &record.record_id,
                actor,
                Some(principal),
                entry,
            )
            .await?;
        if matches!(r, RestoreResult::Restored { .. }) {
            restored += 1;
        }
    }
    Ok(restored)
}

/// The IoT data plane: publishes replies and security events (QoS 1).
pub trait Publisher: Send + Sync {
    fn publish(
        &self,
        topic: &str,
        payload: &serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// The append-only audit log.
pub trait AuditLog: Send + Sync {
    /// `Ok(false)` when an entry with the same idempotency key was already written (nothing written).
    fn record(&self, entry: &AuditEntry) -> impl Future<Output = Result<bool>> + Send;

    /// Entries for a serial, newest first.
    fn for_serial(
        &self,
        serial: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;

    /// Entries about a principal at or after `since` (RFC 3339), oldest first.
    fn for_principal(
        &self,
        principal: &Principal,
        since: &Timestamp,
    ) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;

    /// The entry of `serial` written at `at` under the idempotency key `dedupe`, read consistently
    /// (a moment after it was written): how a signal that reports a decision is checked against it.
    fn find(
        &self,
        serial: &str,
        at: &Timestamp,
        dedupe: &str,
    ) -> impl Future<Output = Result<Option<AuditEntry>>> + Send;
}

/// A certificate as the AWS IoT control plane describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IotCertificate {
    pub id: CertificateId,
    pub arn: String,
    pub status: CertificateStatus,
    pub pem: String,
}

/// Records a decision: its audit entry, then its log line with the same fields. The one way a use
/// case records what it decided. A replay whose entry was already written (same idempotency key)
/// logs nothing again.
pub async fn record_decision<A: AuditLog + ?Sized>(audit: &A, entry: &AuditEntry) -> Result<bool> {
    let written = audit.record(entry).await?;
    if written {
        entry.log();
    }
    Ok(written)
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

/// Live MQTT sessions (IoT data plane).
pub trait Connections: Send + Sync {
    /// Force-disconnects a client id; a client that is not connected counts as done.
    fn disconnect(&self, client_id: &str) -> impl Future<Output = Result<()>> + Send;
}
