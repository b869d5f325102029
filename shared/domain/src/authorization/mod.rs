//! Authorization: who may connect and act, decided at the handshake and at connect.
//!
//! - [`handshake`]: the TLS handshake check of the devices' domain configurations.
//! - [`authorizer`]: the AWS IoT custom authorizer (operators by JWT, password devices) and the
//!   scoped policies it returns.
//! - [`operators`]: enrolling operators; [`password_devices`]: devices without a certificate.

pub mod authorizer;
pub mod handshake;
pub mod operators;
pub mod password_devices;
