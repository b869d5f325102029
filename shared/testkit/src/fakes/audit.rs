//! The audit log in memory: one entry per idempotency key, reads by serial and principal.

use super::*;

/// The audit log. Clones share one log. Entries with a `dedupe` key are written once, like the
/// DynamoDB adapter's conditional put.
#[derive(Default, Clone)]
pub struct InMemoryAudit {
    entries: std::sync::Arc<Mutex<AuditState>>,
}

#[derive(Default)]
struct AuditState {
    entries: Vec<AuditEntry>,
    /// (serial, time, idempotency key): the DynamoDB item's key is the serial and `<time>#<key>`.
    keys: std::collections::HashSet<(Option<String>, Timestamp, String)>,
}

impl InMemoryAudit {
    pub(super) fn push(&self, entry: AuditEntry) -> bool {
        let mut state = lock(&self.entries);
        if let Some(d) = &entry.dedupe {
            if !state
                .keys
                .insert((entry.serial.clone(), entry.at.clone(), d.clone()))
            {
                return false;
            }
        }
        state.entries.push(entry);
        true
    }

    /// Every entry written, oldest first.
    pub fn entries(&self) -> Vec<AuditEntry> {
        lock(&self.entries).entries.clone()
    }
}

impl AuditLog for InMemoryAudit {
    async fn record(&self, entry: &AuditEntry) -> Result<bool> {
        Ok(self.push(entry.clone()))
    }

    async fn for_serial(&self, serial: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut out: Vec<AuditEntry> = lock(&self.entries)
            .entries
            .iter()
            .filter(|e| e.serial.as_deref() == Some(serial))
            .cloned()
            .collect();
        out.reverse();
        out.truncate(limit);
        Ok(out)
    }

    async fn for_principal(
        &self,
        principal: &Principal,
        since: &Timestamp,
    ) -> Result<Vec<AuditEntry>> {
        let principal = principal.as_str();
        Ok(lock(&self.entries)
            .entries
            .iter()
            .filter(|e| e.principal.as_deref() == Some(principal) && &e.at >= since)
            .cloned()
            .collect())
    }

    async fn find(&self, serial: &str, at: &Timestamp, dedupe: &str) -> Result<Option<AuditEntry>> {
        Ok(lock(&self.entries)
            .entries
            .iter()
            .find(|e| {
                e.serial.as_deref() == Some(serial)
                    && &e.at == at
                    && e.dedupe.as_deref() == Some(dedupe)
            })
            .map(|e| AuditEntry {
                // As the table gives it back: the key is not an attribute of its own.
                dedupe: None,
                ..e.clone()
            }))
    }
}
