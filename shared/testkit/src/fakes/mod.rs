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

mod audit;
mod enrollments;
mod iot;
mod records;
mod registry;
mod rotations;

pub use crate::identity_store::InMemoryIdentityStore;
pub use audit::InMemoryAudit;
pub use enrollments::InMemoryEnrollments;
pub use iot::{InMemoryIot, RecordingConnections, RecordingPublisher};
pub use records::InMemoryRecords;
pub use registry::InMemoryRegistry;
pub use rotations::InMemoryRotations;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
