//! In-memory fakes of every port (feature `fakes`), for unit tests, the hostile-input corpus, the
//! fuzz targets and the benchmarks. They keep AWS's semantics where the domain relies on them: the
//! soft delete is conditional on the version and the entitlement, all or nothing; the certificate
//! binding is conditional as the DynamoDB transaction is; REVOKED is final.

use fleetguard_domain::authorization::authorizer::OperatorStatus;
use fleetguard_domain::error::AwsErrorKind;
use fleetguard_domain::model::{
    AuditEntry, CertificateId, CertificateRecord, CertificateStatus, Device, DeviceStatus,
    Principal, PrincipalId, Record, RecordId, Serial, Timestamp,
};
use fleetguard_domain::ports::{
    AuditLog, AuthorizerPrincipal, Connections, DeleteContext, EnrollmentContext, Enrollments,
    Entitlement, IotCertificate, IotControl, PendingBinding, PrincipalFacts, ProofSpend, Publisher,
    Records, Registry, RestoreResult, Rotations, SoftDelete, SoftDeleteResult,
};
use fleetguard_domain::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    /// When set, principals' facts and entitlements are read from this registry, as the DynamoDB
    /// adapter reads them from the registry table (the contract suites run that way).
    registry: Option<InMemoryRegistry>,
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
    fn push(&self, entry: AuditEntry) -> bool {
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

/// The device registry. Clones share one registry.
#[derive(Default, Clone)]
pub struct InMemoryRegistry {
    devices: Arc<Mutex<HashMap<Serial, Device>>>,
    certificates: Arc<Mutex<HashMap<CertificateId, CertificateRecord>>>,
    principals: Arc<Mutex<HashMap<String, AuthorizerPrincipal>>>,
}

impl InMemoryRegistry {
    /// Stores a custom-authorizer principal (what `fleetctl operators add` / `devices set-password` write).
    pub fn put_principal(&self, id: &str, principal: AuthorizerPrincipal) {
        lock(&self.principals).insert(id.to_owned(), principal);
    }
}

/// Binding conditions, as the DynamoDB transaction states them: the certificate is new or already this
/// serial's and not denied.
fn certificate_bindable(
    certificates: &HashMap<CertificateId, CertificateRecord>,
    serial: &Serial,
    cert: &CertificateId,
) -> bool {
    certificates
        .get(cert)
        .is_none_or(|c| &c.serial == serial && !c.denied)
}

fn bound_record(serial: &Serial, cert: &CertificateId, now: &Timestamp) -> CertificateRecord {
    CertificateRecord {
        certificate_id: cert.clone(),
        serial: serial.clone(),
        denied: false,
        held: false,
        updated_at: now.clone(),
    }
}

fn deny_in(
    certificates: &mut HashMap<CertificateId, CertificateRecord>,
    cert: &CertificateId,
    serial: &Serial,
) {
    let entry = certificates
        .entry(cert.clone())
        .or_insert_with(|| CertificateRecord {
            certificate_id: cert.clone(),
            serial: serial.clone(),
            denied: true,
            held: false,
            updated_at: Timestamp::now(),
        });
    entry.denied = true;
    entry.updated_at = Timestamp::now();
}

fn condition_failed(op: &'static str) -> Error {
    Error::aws(
        op,
        AwsErrorKind::ConditionFailed,
        "device or certificate binding condition failed",
    )
}

impl Registry for InMemoryRegistry {
    async fn get_device(&self, serial: &Serial) -> Result<Option<Device>> {
        Ok(lock(&self.devices).get(serial).cloned())
    }

    async fn note_session(
        &self,
        serial: &Serial,
        session: &fleetguard_domain::model::LiveSession,
    ) -> Result<bool> {
        let mut devices = lock(&self.devices);
        let Some(d) = devices.get_mut(serial) else {
            return Ok(false);
        };
        let newer_known = d
            .live_session
            .as_ref()
            .is_some_and(|l| l.version > session.version);
        if d.previous_certificate_id.is_none() || newer_known {
            return Ok(false);
        }
        // Like the adapter: not a version-counted change.
        d.live_session = Some(session.clone());
        Ok(true)
    }

    async fn end_session(&self, serial: &Serial, session: &str) -> Result<()> {
        if let Some(d) = lock(&self.devices).get_mut(serial) {
            if d.live_session
                .as_ref()
                .is_some_and(|l| l.session == session)
            {
                d.live_session = None;
            }
        }
        Ok(())
    }

    async fn get_certificate(&self, id: &CertificateId) -> Result<Option<CertificateRecord>> {
        Ok(lock(&self.certificates).get(id).cloned())
    }

    async fn import_device(&self, device: &Device) -> Result<bool> {
        let mut devices = lock(&self.devices);
        if devices.contains_key(&device.serial) {
            return Ok(false);
        }
        devices.insert(device.serial.clone(), device.clone());
        Ok(true)
    }

    async fn bind_certificate(
        &self,
        serial: &Serial,
        cert: &CertificateId,
        replaces: Option<&CertificateId>,
        facts: Option<&fleetguard_domain::model::CertificateFacts>,
    ) -> Result<()> {
        // Both locks for the whole check-and-set: all or nothing, like the transaction.
        let mut devices = lock(&self.devices);
        let mut certificates = lock(&self.certificates);
        let device_ok = devices.get(serial).is_some_and(|d| {
            d.status == DeviceStatus::Manufactured
                || (d.status == DeviceStatus::Active && d.certificate_id.as_ref() == Some(cert))
                // An active password device: its first certificate.
                || (d.status == DeviceStatus::Active && d.certificate_id.is_none())
                || d.replacement_approved
                || (replaces.is_some()
                    && d.status == DeviceStatus::Active
                    && d.certificate_id.as_ref() == replaces
                    && d.binding_pending)
        });
        if !(certificate_bindable(&certificates, serial, cert) && device_ok) {
            return Err(condition_failed("bind"));
        }
        let now = Timestamp::now();
        certificates.insert(cert.clone(), bound_record(serial, cert, &now));
        if let Some(stale) = replaces {
            deny_in(&mut certificates, stale, serial);
        }
        if let Some(d) = devices.get_mut(serial) {
            d.status = DeviceStatus::Active;
            d.certificate_id = Some(cert.clone());
            d.replacement_approved = false;
            d.binding_pending = false;
            d.set_certificate_facts(facts);
            d.clear_rotation_state();
            d.updated_at = now;
            d.version += 1;
        }
        Ok(())
    }

    async fn confirm_binding(&self, serial: &Serial, cert: &CertificateId) -> Result<()> {
        if let Some(d) = lock(&self.devices).get_mut(serial) {
            if d.certificate_id.as_ref() == Some(cert) && d.binding_pending {
                d.binding_pending = false;
                d.version += 1;
            }
        }
        Ok(())
    }

    async fn transition(
        &self,
        serial: &Serial,
        from: &[DeviceStatus],
        to: DeviceStatus,
    ) -> Result<bool> {
        Ok(match lock(&self.devices).get_mut(serial) {
            Some(d) if from.contains(&d.status) => {
                d.status = to;
                d.updated_at = Timestamp::now();
                d.version += 1;
                true
            }
            _ => false,
        })
    }

    async fn deny_certificate(&self, cert: &CertificateId, serial: &Serial) -> Result<()> {
        deny_in(&mut lock(&self.certificates), cert, serial);
        Ok(())
    }

    async fn approve_replacement(&self, serial: &Serial) -> Result<bool> {
        Ok(match lock(&self.devices).get_mut(serial) {
            Some(d) if d.status == DeviceStatus::Revoked => {
                d.replacement_approved = true;
                d.version += 1;
                true
            }
            _ => false,
        })
    }

    async fn hold_certificate(
        &self,
        cert: &CertificateId,
        serial: &Serial,
        held: bool,
    ) -> Result<()> {
        let mut certificates = lock(&self.certificates);
        let entry = certificates
            .entry(cert.clone())
            .or_insert_with(|| bound_record(serial, cert, &Timestamp::now()));
        entry.held = held;
        Ok(())
    }

    async fn get_principal(&self, id: &PrincipalId) -> Result<Option<AuthorizerPrincipal>> {
        Ok(lock(&self.principals).get(id.as_str()).cloned())
    }

    async fn set_operator_status(
        &self,
        id: &PrincipalId,
        from: &[OperatorStatus],
        to: OperatorStatus,
    ) -> Result<bool> {
        Ok(match lock(&self.principals).get_mut(id.as_str()) {
            Some(AuthorizerPrincipal::Operator { status, active, .. }) if from.contains(status) => {
                *status = to;
                *active = to == OperatorStatus::Active;
                true
            }
            _ => false,
        })
    }
}

/// The registry as the pre-provisioning hook uses it: shares its state with an [`InMemoryRegistry`],
/// and writes the accepted decision's audit entry in the same step, as the transaction does.
#[derive(Default, Clone)]
pub struct InMemoryEnrollments {
    pub registry: InMemoryRegistry,
    pub audit: InMemoryAudit,
}

impl Enrollments for InMemoryEnrollments {
    async fn load(&self, serial: &Serial, cert: &CertificateId) -> Result<EnrollmentContext> {
        Ok(EnrollmentContext {
            device: lock(&self.registry.devices).get(serial).cloned(),
            certificate: lock(&self.registry.certificates).get(cert).cloned(),
        })
    }

    async fn bind_pending(&self, b: &PendingBinding, audit: &AuditEntry) -> Result<bool> {
        let mut devices = lock(&self.registry.devices);
        let mut certificates = lock(&self.registry.certificates);
        let Some(d) = devices.get_mut(&b.serial) else {
            return Ok(false);
        };
        let e = &d.enrollment;
        let unspent = match &b.spend {
            ProofSpend::FactoryKey { timestamp } => e.proof_last_ts.is_none_or(|t| t < *timestamp),
            ProofSpend::Secret { hash } => {
                e.secret_sha256.as_ref() == Some(hash)
                    && (e.secret_used_by.is_none() || e.secret_used_by == b.replaces)
            }
        };
        if d.version != b.expected_version
            || !unspent
            || !certificate_bindable(&certificates, &b.serial, &b.certificate)
        {
            return Ok(false);
        }
        let now = Timestamp::now();
        certificates.insert(
            b.certificate.clone(),
            bound_record(&b.serial, &b.certificate, &now),
        );
        if let Some(stale) = &b.replaces {
            deny_in(&mut certificates, stale, &b.serial);
        }
        match &b.spend {
            ProofSpend::FactoryKey { timestamp } => d.enrollment.proof_last_ts = Some(*timestamp),
            ProofSpend::Secret { .. } => d.enrollment.secret_used_by = Some(b.certificate.clone()),
        }
        d.status = DeviceStatus::Active;
        d.certificate_id = Some(b.certificate.clone());
        // Nothing was read of an AWS-issued certificate: none of its predecessor's facts.
        d.set_certificate_facts(None);
        d.clear_rotation_state();
        d.binding_pending = true;
        d.replacement_approved = false;
        d.updated_at = now;
        d.version += 1;
        self.audit.push(audit.clone());
        Ok(true)
    }

    async fn confirm(&self, serial: &Serial, cert: &CertificateId) -> Result<()> {
        self.registry.confirm_binding(serial, cert).await
    }
}

/// The registry as rotation uses it: shares its state with an [`InMemoryRegistry`], and writes the
/// decision's audit entry in the same step, as the transaction does.
#[derive(Default, Clone)]
pub struct InMemoryRotations {
    pub registry: InMemoryRegistry,
    pub audit: InMemoryAudit,
}

impl Rotations for InMemoryRotations {
    async fn save(
        &self,
        device: &Device,
        expected_version: u64,
        certificate: Option<&CertificateRecord>,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let mut devices = lock(&self.registry.devices);
        let mut certificates = lock(&self.registry.certificates);
        if devices.get(&device.serial).map(|d| d.version) != Some(expected_version) {
            return Ok(false);
        }
        if certificate.is_some_and(|c| {
            !c.denied && !certificate_bindable(&certificates, &c.serial, &c.certificate_id)
        }) {
            return Ok(false);
        }
        // The audit entry's own condition (written once) is part of the transaction.
        if !self.audit.push(audit.clone()) {
            return Ok(false);
        }
        match certificate {
            Some(c) if c.denied => deny_in(&mut certificates, &c.certificate_id, &c.serial),
            Some(c) => {
                certificates.insert(c.certificate_id.clone(), c.clone());
            }
            None => {}
        }
        devices.insert(device.serial.clone(), device.clone());
        Ok(true)
    }

    async fn due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Device>> {
        let mut due: Vec<Device> = lock(&self.registry.devices)
            .values()
            .filter(|d| d.deadline_kind.is_some() && d.deadline.as_ref().is_some_and(|t| t <= now))
            .cloned()
            .collect();
        due.sort_by(|a, b| a.deadline.cmp(&b.deadline));
        due.truncate(limit);
        Ok(due)
    }

    async fn expiring(&self, from: &Timestamp, to: &Timestamp) -> Result<(Vec<Device>, f64)> {
        let mut found: Vec<Device> = lock(&self.registry.devices)
            .values()
            .filter(|d| {
                d.expiry_month.is_some()
                    && d.certificate_not_after
                        .as_ref()
                        .is_some_and(|t| t >= from && t <= to)
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| a.certificate_not_after.cmp(&b.certificate_not_after));
        Ok((found, 0.0))
    }
}

/// The AWS IoT control plane: registered certificates and CAs, things, attachments, groups. Clones
/// share one control plane (two function instances see the same account).
#[derive(Default, Clone)]
pub struct InMemoryIot {
    certificates: Arc<Mutex<HashMap<CertificateId, IotCertificate>>>,
    cas: Arc<Mutex<HashMap<CertificateId, IotCertificate>>>,
    /// Thing name → attached certificate ARNs.
    things: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// Certificate ARN → attached policies.
    policies: Arc<Mutex<HashMap<String, Vec<String>>>>,
    groups: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl InMemoryIot {
    /// Registers a CA (ACTIVE) and returns its id (SHA-256 of its DER, as AWS names it).
    pub fn register_ca(&self, pem: &str) -> Result<CertificateId> {
        let id = pem_id(pem)?;
        lock(&self.cas).insert(
            id.clone(),
            iot_certificate(&id, pem, CertificateStatus::Active),
        );
        Ok(id)
    }

    /// Registers a device certificate as auto-registration does (PENDING_ACTIVATION).
    pub fn register_certificate(&self, pem: &str) -> Result<CertificateId> {
        let id = pem_id(pem)?;
        lock(&self.certificates).insert(
            id.clone(),
            iot_certificate(&id, pem, CertificateStatus::PendingActivation),
        );
        Ok(id)
    }

    pub fn status(&self, id: &CertificateId) -> Option<CertificateStatus> {
        lock(&self.certificates).get(id).map(|c| c.status)
    }

    pub fn thing_principals(&self, thing: &str) -> Vec<String> {
        lock(&self.things).get(thing).cloned().unwrap_or_default()
    }

    pub fn attached_policies(&self, cert_arn: &str) -> Vec<String> {
        lock(&self.policies)
            .get(cert_arn)
            .cloned()
            .unwrap_or_default()
    }

    pub fn group_members(&self, group: &str) -> Vec<String> {
        lock(&self.groups).get(group).cloned().unwrap_or_default()
    }
}

fn pem_id(pem: &str) -> Result<CertificateId> {
    let der = fleetguard_domain::x509::pem_to_der(pem).map_err(|e| Error::Config(e.detail))?;
    Ok(CertificateId::of_der(&der))
}

fn iot_certificate(id: &CertificateId, pem: &str, status: CertificateStatus) -> IotCertificate {
    IotCertificate {
        id: id.clone(),
        arn: format!("arn:aws:iot:us-east-1:123456789012:cert/{id}"),
        status,
        pem: pem.to_owned(),
    }
}

fn add(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

impl IotControl for InMemoryIot {
    async fn describe_certificate(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        Ok(lock(&self.certificates).get(id).cloned())
    }

    async fn describe_ca_certificate(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        Ok(lock(&self.cas).get(id).cloned())
    }

    async fn ensure_thing(&self, name: &Serial) -> Result<()> {
        lock(&self.things).entry(name.to_string()).or_default();
        Ok(())
    }

    async fn attach_policy(&self, policy: &str, cert_arn: &str) -> Result<()> {
        add(
            lock(&self.policies).entry(cert_arn.to_owned()).or_default(),
            policy,
        );
        Ok(())
    }

    async fn attach_thing_principal(&self, thing: &Serial, cert_arn: &str) -> Result<()> {
        match lock(&self.things).get_mut(thing.as_str()) {
            Some(principals) => {
                add(principals, cert_arn);
                Ok(())
            }
            None => Err(Error::aws(
                "iot:AttachThingPrincipal",
                AwsErrorKind::NotFound,
                "no such thing",
            )),
        }
    }

    async fn set_certificate_status(
        &self,
        id: &CertificateId,
        status: CertificateStatus,
    ) -> Result<()> {
        match lock(&self.certificates).get_mut(id) {
            // AWS refuses to leave REVOKED.
            Some(c) if c.status == CertificateStatus::Revoked && status != c.status => Err(
                Error::aws("iot:UpdateCertificate", AwsErrorKind::Other, "revoked"),
            ),
            Some(c) => {
                c.status = status;
                Ok(())
            }
            None => Err(Error::aws(
                "iot:UpdateCertificate",
                AwsErrorKind::NotFound,
                "no such certificate",
            )),
        }
    }

    async fn detach_policy(&self, policy: &str, cert_arn: &str) -> Result<()> {
        if let Some(list) = lock(&self.policies).get_mut(cert_arn) {
            list.retain(|p| p != policy);
        }
        Ok(())
    }

    async fn detach_thing_principal(&self, thing: &Serial, cert_arn: &str) -> Result<()> {
        if let Some(list) = lock(&self.things).get_mut(thing.as_str()) {
            list.retain(|p| p != cert_arn);
        }
        Ok(())
    }

    async fn register_certificate(
        &self,
        pem: &str,
        _ca_pem: Option<&str>,
        status: CertificateStatus,
    ) -> Result<(IotCertificate, bool)> {
        let id = pem_id(pem)?;
        let mut certificates = lock(&self.certificates);
        if let Some(c) = certificates.get(&id) {
            return Ok((c.clone(), false));
        }
        let c = iot_certificate(&id, pem, status);
        certificates.insert(id, c.clone());
        Ok((c, true))
    }

    async fn ca_certificates(&self) -> Result<Vec<IotCertificate>> {
        Ok(lock(&self.cas).values().cloned().collect())
    }

    async fn set_group_membership(&self, group: &str, thing: &Serial, member: bool) -> Result<()> {
        let mut groups = lock(&self.groups);
        let list = groups.entry(group.to_owned()).or_default();
        if member {
            add(list, thing.as_str());
        } else {
            list.retain(|t| t != thing.as_str());
        }
        Ok(())
    }
}

/// Live sessions: records every forced disconnect.
#[derive(Default, Clone)]
pub struct RecordingConnections {
    disconnected: std::sync::Arc<Mutex<Vec<String>>>,
}

impl RecordingConnections {
    pub fn disconnected(&self) -> Vec<String> {
        lock(&self.disconnected).clone()
    }
}

impl Connections for RecordingConnections {
    async fn disconnect(&self, client_id: &str) -> Result<()> {
        lock(&self.disconnected).push(client_id.to_owned());
        Ok(())
    }
}
pub use crate::identity_store::InMemoryIdentityStore;
