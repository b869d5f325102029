//! fleetguard's domain: validated identifiers, the use cases and the ports they talk through. No AWS
//! SDK here (the compiler enforces "SDK only in adapters": see the crate `fleetguard-aws`).
//!
//! Its contexts, each a module (the specifications are their modules' docs):
//! - [`provisioning`]: first contact: [`provisioning::jitr`], [`provisioning::claim`] and the
//!   enrollment proofs.
//! - [`authorization`]: the TLS handshake check, the custom authorizer, operators, password devices.
//! - [`lifecycle`]: revocation, rotation, replacement, the expiry watch, the CA.
//! - [`records`]: deleting records (soft) and restoring them.
//!
//! And what they share: [`model`] (validated identifiers, device states, audit entries), [`ports`]
//! (the small traits the domain talks through: registry, audit, IoT control), [`x509`] (certificate
//! parsing and chain validation), [`config`] and [`error`] (configuration, typed errors), [`cache`].
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod authorization;
pub mod cache;
pub mod config;
pub mod error;
pub mod lifecycle;
pub mod model;
pub mod ports;
pub mod provisioning;
pub mod records;
pub mod x509;

pub use error::{Error, Result};
