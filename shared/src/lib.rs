//! fleetguard: the domain, its ports and the AWS adapters shared by every Lambda and by `fleetctl`.
//!
//! Where to find a capability:
//! - [`domain`]: validated identifiers (`Serial`, `CertificateId`, `RecordId`), device states, audit entries.
//! - [`ports`]: the small traits the domain talks through (registry, audit, IoT control).
//! - [`authorizer`]: the AWS IoT custom authorizer (operators by JWT, password devices), scoped policies.
//! - [`provisioning`]: just-in-time provisioning, and the validator it shares with claim provisioning.
//! - [`fleet_provisioning`]: fleet provisioning by claim (the pre-provisioning hook).
//! - [`enrollment`]: enrollment proofs (factory key, one-time secret): parsing and verification.
//! - [`delete_record`]: the delete-record decision (principal must own the serial; soft delete).
//! - [`records`]: restoring soft-deleted records (CLI and revocation rollback).
//! - [`revocation`]: revoke / quarantine / release, triggers, rollback of a compromised device's deletes.
//! - [`x509`]: certificate parsing and chain validation.
//! - [`policy`]: the offline AWS IoT policy evaluator, linter and A ≠ B proof.
//! - [`adapters`]: DynamoDB and AWS IoT implementations of the ports (the only place the AWS SDK is used).
//! - [`config`], [`telemetry`], [`error`]: cold-start configuration, JSON logs, typed errors.

#[cfg(feature = "aws")]
pub mod adapters;
pub mod authorizer;
pub mod cache;
pub mod config;
pub mod delete_record;
pub mod domain;
pub mod enrollment;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod fleet_provisioning;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod handshake;
pub mod password_devices;
pub mod policy;
pub mod ports;
pub mod provisioning;
pub mod records;
pub mod revocation;
pub mod telemetry;
pub mod x509;

pub use error::{Error, Result};
