//! fleetguard's domain: validated identifiers, the use cases and the ports they talk through. No AWS
//! SDK here (the compiler enforces "SDK only in adapters": see the crate `fleetguard-aws`).
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
//! - [`operators`]: adding operators (sign-in by JWT); [`password_devices`]: devices without a certificate.
//! - [`replacement`]: approving a replacement certificate for a revoked device.
//! - [`revocation`]: revoke / quarantine / release, triggers, rollback of a compromised device's deletes.
//! - [`x509`]: certificate parsing and chain validation; [`csr`]: rotation CSRs (key proven, kind, new).
//! - [`rotation`]: certificate rotation (rotate, confirm, the sweep); [`ca`]: issuing with the KMS CA key.
//! - [`expiry`]: the expiry watch (device and CA certificates expiring soon).
//! - [`config`], [`error`]: cold-start configuration, typed errors (JSON logs: `fleetguard_aws::telemetry`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod authorizer;
pub mod ca;
pub mod cache;
pub mod config;
pub mod csr;
pub mod delete_record;
pub mod domain;
pub mod enrollment;
pub mod error;
pub mod expiry;
pub mod fleet_provisioning;
pub mod handshake;
pub mod operators;
pub mod password_devices;
pub mod ports;
pub mod provisioning;
pub mod records;
pub mod replacement;
pub mod revocation;
pub mod rotation;
pub mod x509;

pub use error::{Error, Result};
