//! The records table in memory: soft deletes conditional on version and entitlement, all or nothing.

use super::*;

/// Records plus the registry facts delete-record reads about principals.
#[derive(Default)]
pub struct InMemoryRecords {
    pub(super) records: Mutex<HashMap<(String, String), Record>>,
    pub(super) facts: Mutex<HashMap<String, PrincipalFacts>>,
    /// Entitlements that no longer hold (a revocation racing the delete).
    pub(super) revoked: Mutex<Vec<String>>,
    pub(super) audit: InMemoryAudit,
    /// When set, principals' facts and entitlements are read from this registry, as the DynamoDB
    /// adapter reads them from the registry table (the contract suites run that way).
    pub(super) registry: Option<InMemoryRegistry>,
}

impl InMemoryRecords {
    /// Records whose transactional audit entries go to `audit`.
    pub fn new(audit: InMemoryAudit) -> Self {
        Self {
            audit,
            ..Self::default()
        }
    }

    /// Records that read principals and check entitlements in `registry`, with their audit entries
    /// in `audit`: the shape of the DynamoDB adapter (records table + registry table + audit table).
    pub fn with_registry(audit: InMemoryAudit, registry: InMemoryRegistry) -> Self {
        Self {
            audit,
            registry: Some(registry),
            ..Self::default()
        }
    }

    /// Whether `entitlement` holds in the linked registry (the transaction's condition check).
    fn entitled(&self, entitlement: &Entitlement) -> bool {
        let Some(registry) = &self.registry else {
            return !lock(&self.revoked)
                .iter()
                .any(|s| s == entitled_serial(entitlement).as_str());
        };
        let device = |serial: &Serial| lock(&registry.devices).get(serial).cloned();
        match entitlement {
            Entitlement::Certificate {
                serial,
                certificate,
            } => device(serial).is_some_and(|d| {
                d.status == DeviceStatus::Active && d.certificate_id.as_ref() == Some(certificate)
            }),
            Entitlement::PasswordDevice { serial } => device(serial)
                .is_some_and(|d| d.status == DeviceStatus::Active && d.certificate_id.is_none()),
            Entitlement::Operator {
                principal_id,
                serial,
            } => matches!(
                lock(&registry.principals).get(principal_id.as_str()),
                Some(AuthorizerPrincipal::Operator { status: OperatorStatus::Active, serials, .. })
                    if serials.contains(serial)
            ),
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
        let facts = match (&self.registry, principal) {
            (None, _) => lock(&self.facts).get(principal.as_str()).cloned(),
            (Some(r), Principal::Certificate(c)) => lock(&r.certificates)
                .get(c)
                .cloned()
                .map(PrincipalFacts::Certificate),
            (Some(r), Principal::Authorizer(p)) => lock(&r.principals)
                .get(p.as_str())
                .cloned()
                .map(PrincipalFacts::Authorizer),
        };
        let replaced_certificate = self.registry.as_ref().and_then(|r| {
            lock(&r.devices)
                .get(serial)
                .and_then(|d| d.previous_certificate_id.clone())
        });
        Ok(DeleteContext {
            principal: facts,
            record: lock(&self.records).get(&key(serial, record_id)).cloned(),
            replaced_certificate,
        })
    }

    async fn soft_delete(
        &self,
        request: &SoftDelete,
        expected_version: u64,
        entitlement: &Entitlement,
        audit: &AuditEntry,
    ) -> Result<SoftDeleteResult> {
        if !self.entitled(entitlement) {
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

    async fn deleted_by(
        &self,
        serial: &Serial,
        principal: &Principal,
        since: &Timestamp,
    ) -> Result<Vec<Record>> {
        let since = since.as_str();
        let principal = principal.as_str();
        let mut found: Vec<Record> = lock(&self.records)
            .values()
            .filter(|r| {
                &r.serial == serial
                    && r.deleted_by.as_deref() == Some(principal)
                    && r.deleted_at.as_ref().is_some_and(|at| at.as_str() >= since)
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| a.record_id.as_str().cmp(b.record_id.as_str()));
        Ok(found)
    }

    async fn restore(
        &self,
        serial: &Serial,
        record_id: &RecordId,
        actor: &str,
        only_if_deleted_by: Option<&Principal>,
        audit: &AuditEntry,
    ) -> Result<RestoreResult> {
        let only_if_deleted_by = only_if_deleted_by.map(Principal::as_str);
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
        record.restored_at = Some(Timestamp::now());
        record.restored_by = Some(actor.to_owned());
        self.audit.push(audit.clone());
        Ok(RestoreResult::Restored {
            version: record.version,
        })
    }
}
