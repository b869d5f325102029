//! The records table: soft deletes checked against an entitlement in the same transaction, restores.

use super::*;

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
