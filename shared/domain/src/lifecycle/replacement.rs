//! Approving a replacement certificate for a revoked device: the operator's deliberate step that
//! lets exactly one new certificate of that serial through its next first connect (JITR or claim).

use crate::model::AuditAction;
use crate::model::{AuditEntry, Outcome, Reason, Serial};
use crate::ports::{AuditLog, Registry};
use crate::Result;

/// Approves one replacement for `serial`. False (nothing written) when the device is not revoked.
pub async fn approve_replacement<R: Registry, A: AuditLog>(
    registry: &R,
    audit: &A,
    serial: &Serial,
    actor: &str,
) -> Result<bool> {
    if !registry.approve_replacement(serial).await? {
        return Ok(false);
    }
    let entry = AuditEntry::new(
        actor,
        AuditAction::ApproveReplacement,
        Outcome::Accepted,
        Reason::ReplacementApproved,
    )
    .serial(serial.as_str());
    crate::ports::record_decision(audit, &entry).await?;
    Ok(true)
}
