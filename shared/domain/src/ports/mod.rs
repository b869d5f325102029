//! Ports: the small traits the domain talks through. Adapters implement them over AWS (see
//! the crate `fleetguard-aws`); tests use the in-memory fakes of `fleetguard-testkit`.

use crate::authorization::authorizer::OperatorStatus;
use crate::model::{
    AuditEntry, CertificateId, CertificateRecord, CertificateStatus, Device, DeviceStatus,
    Enrollment, Principal, PrincipalId, Record, RecordId, Serial, Timestamp,
};
use crate::Result;
use std::future::Future;

mod audit;
mod enrollments;
mod iot;
mod records;
mod registry;
mod rotation;

pub use audit::*;
pub use enrollments::*;
pub use iot::*;
pub use records::*;
pub use registry::*;
pub use rotation::*;
