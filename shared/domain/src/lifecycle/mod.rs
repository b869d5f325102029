//! Lifecycle: a device identity after provisioning, until it is revoked or replaced.
//!
//! - [`revocation`]: revoke / quarantine / release, the signals that trigger them, rollback.
//! - [`rotation`]: certificate rotation (request, rotate, confirm, the sweep), with [`csr`] (a
//!   rotation CSR: key proven, kind, new) and [`ca`] (issuing with the CA key held in KMS).
//! - [`replacement`]: approving a replacement certificate for a revoked device.
//! - [`expiry`]: the expiry watch (device and CA certificates expiring soon).

pub mod ca;
pub mod csr;
pub mod expiry;
pub mod replacement;
pub mod revocation;
pub mod rotation;
