//! Restoring soft-deleted records: the shared operation behind `fleetctl records restore` and the
//! revoker's rollback. Conditional, audited, idempotent.

use crate::model::AuditAction;
use crate::model::{AuditEntry, Outcome, Principal, Reason, RecordId, Serial};
use crate::ports::{AuditLog, Records, RestoreResult};
use crate::Result;

/// Restores one record. `only_if_deleted_by` limits it to deletes by that principal (rollback must not
/// undo other principals' deletes). A record that is not deleted is a no-op, audited as such.
pub async fn restore_record<D: Records, A: AuditLog>(
    records: &D,
    audit: &A,
    serial: &Serial,
    record_id: &RecordId,
    actor: &str,
    only_if_deleted_by: Option<&Principal>,
) -> Result<RestoreResult> {
    let entry = AuditEntry::new(
        actor,
        AuditAction::RestoreRecord,
        Outcome::Accepted,
        Reason::Restored,
    )
    .serial(serial.as_str())
    .record(record_id.as_str());
    let result = records
        .restore(serial, record_id, actor, only_if_deleted_by, &entry)
        .await?;
    let (outcome, reason) = match &result {
        // Written in the restore transaction already.
        RestoreResult::Restored { .. } => {
            entry.log();
            return Ok(result);
        }
        RestoreResult::NotDeleted { .. } => (Outcome::Noop, Reason::NotDeleted),
        RestoreResult::NotFound => (Outcome::Rejected, Reason::NotFound),
    };
    let entry = AuditEntry::new(actor, AuditAction::RestoreRecord, outcome, reason)
        .serial(serial.as_str())
        .record(record_id.as_str());
    crate::ports::record_decision(audit, &entry).await?;
    Ok(result)
}
