//! The append-only audit log, and the one way a use case records a decision.

use super::*;

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
