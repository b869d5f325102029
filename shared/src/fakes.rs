//! In-memory fakes of the records, audit and publisher ports (feature `fakes`), for unit tests,
//! the hostile-input corpus and the benchmarks. They keep AWS's semantics where the domain relies
//! on them: the soft delete is conditional on the version and the entitlement, all or nothing.

use crate::domain::{AuditEntry, Principal, Record, RecordId, Serial};
use crate::ports::{
    AuditLog, DeleteContext, Entitlement, PrincipalFacts, Publisher, Records, RestoreResult,
    SoftDelete, SoftDeleteResult,
};
use crate::Result;
use std::collections::HashMap;
use std::sync::Mutex;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records plus the registry facts delete-record reads about principals.
#[derive(Default)]
pub struct InMemoryRecords {
    records: Mutex<HashMap<(String, String), Record>>,
    facts: Mutex<HashMap<String, PrincipalFacts>>,
    /// Entitlements that no longer hold (a revocation racing the delete).
    revoked: Mutex<Vec<String>>,
    audit: InMemoryAudit,
}

impl InMemoryRecords {
    /// Records whose transactional audit entries go to `audit`.
    pub fn new(audit: InMemoryAudit) -> Self {
        Self {
            audit,
            ..Self::default()
        }
    }

    /// What the registry says about `principal`.
    pub fn set_facts(&self, principal: &Principal, facts: PrincipalFacts) {
        lock(&self.facts).insert(principal.as_str().to_owned(), facts);
    }

    /// Makes every entitlement of `serial` fail inside the transaction.
    pub fn revoke_serial(&self, serial: &Serial) {
        lock(&self.revoked).push(serial.as_str().to_owned());
    }

    /// Every record, for assertions.
    pub fn snapshot(&self) -> Vec<Record> {
        let mut all: Vec<Record> = lock(&self.records).values().cloned().collect();
        all.sort_by(|a, b| {
            (a.serial.as_str(), a.record_id.as_str())
                .cmp(&(b.serial.as_str(), b.record_id.as_str()))
        });
        all
    }
}

fn key(serial: &Serial, record_id: &RecordId) -> (String, String) {
    (serial.as_str().to_owned(), record_id.as_str().to_owned())
}

fn entitled_serial(e: &Entitlement) -> &Serial {
    match e {
        Entitlement::Certificate { serial, .. }
        | Entitlement::PasswordDevice { serial }
        | Entitlement::Operator { serial, .. } => serial,
    }
}

impl Records for InMemoryRecords {
    async fn get(&self, serial: &Serial, record_id: &RecordId) -> Result<Option<Record>> {
        Ok(lock(&self.records).get(&key(serial, record_id)).cloned())
    }

    async fn put(&self, record: &Record) -> Result<()> {
        lock(&self.records).insert(key(&record.serial, &record.record_id), record.clone());
        Ok(())
    }

    async fn load_for_delete(
        &self,
        principal: &Principal,
        serial: &Serial,
        record_id: &RecordId,
    ) -> Result<DeleteContext> {
        Ok(DeleteContext {
            principal: lock(&self.facts).get(principal.as_str()).cloned(),
            record: lock(&self.records).get(&key(serial, record_id)).cloned(),
        })
    }

    async fn soft_delete(
        &self,
        request: &SoftDelete,
        expected_version: u64,
        entitlement: &Entitlement,
        audit: &AuditEntry,
    ) -> Result<SoftDeleteResult> {
        if lock(&self.revoked)
            .iter()
            .any(|s| s == entitled_serial(entitlement).as_str())
        {
            return Ok(SoftDeleteResult::NotEntitled);
        }
        let mut records = lock(&self.records);
        let Some(record) = records.get_mut(&key(&request.serial, &request.record_id)) else {
            return Ok(SoftDeleteResult::Changed);
        };
        if record.version != expected_version || record.is_deleted() {
            return Ok(SoftDeleteResult::Changed);
        }
        record.version += 1;
        record.deleted_at = Some(request.at.clone());
        record.deleted_by = Some(request.principal.clone());
        record.delete_reason = request.reason.clone();
        record.delete_request = Some(request.request_key.clone());
        self.audit.push(audit.clone());
        Ok(SoftDeleteResult::Deleted {
            version: record.version,
        })
    }

    async fn restore(
        &self,
        serial: &Serial,
        record_id: &RecordId,
        actor: &str,
        only_if_deleted_by: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<RestoreResult> {
        let mut records = lock(&self.records);
        let Some(record) = records.get_mut(&key(serial, record_id)) else {
            return Ok(RestoreResult::NotFound);
        };
        let by_ok = only_if_deleted_by.is_none_or(|p| record.deleted_by.as_deref() == Some(p));
        if !record.is_deleted() || !by_ok {
            return Ok(RestoreResult::NotDeleted {
                version: record.version,
            });
        }
        record.version += 1;
        record.deleted_at = None;
        record.deleted_by = None;
        record.delete_reason = None;
        record.delete_request = None;
        record.restored_at = Some(crate::domain::now_rfc3339());
        record.restored_by = Some(actor.to_owned());
        self.audit.push(audit.clone());
        Ok(RestoreResult::Restored {
            version: record.version,
        })
    }
}

/// The audit log. Clones share one log. Entries with a `dedupe` key are written once, like the
/// DynamoDB adapter's conditional put.
#[derive(Default, Clone)]
pub struct InMemoryAudit {
    entries: std::sync::Arc<Mutex<AuditState>>,
}

#[derive(Default)]
struct AuditState {
    entries: Vec<AuditEntry>,
    keys: std::collections::HashSet<(Option<String>, String)>,
}

impl InMemoryAudit {
    fn push(&self, entry: AuditEntry) -> bool {
        let mut state = lock(&self.entries);
        if let Some(d) = &entry.dedupe {
            if !state.keys.insert((entry.serial.clone(), d.clone())) {
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

    async fn for_principal(&self, principal: &str, since: &str) -> Result<Vec<AuditEntry>> {
        Ok(lock(&self.entries)
            .entries
            .iter()
            .filter(|e| e.principal.as_deref() == Some(principal) && e.at.as_str() >= since)
            .cloned()
            .collect())
    }
}

/// Publishes into a list. Clones share it.
#[derive(Default, Clone)]
pub struct RecordingPublisher {
    published: std::sync::Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl RecordingPublisher {
    pub fn published(&self) -> Vec<(String, serde_json::Value)> {
        lock(&self.published).clone()
    }
}

impl Publisher for RecordingPublisher {
    async fn publish(&self, topic: &str, payload: &serde_json::Value) -> Result<()> {
        lock(&self.published).push((topic.to_owned(), payload.clone()));
        Ok(())
    }
}
