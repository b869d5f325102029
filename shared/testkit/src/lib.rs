//! fleetguard's test kit: in-memory fakes of every port (with AWS's semantics, checked by the
//! contract suites), the fuzz targets' entry points and a test PKI. Only tests, benches and fuzz
//! targets link it; no product binary does.

pub mod contract;
pub mod fakes;
pub mod fuzzing;
mod identity_store;
pub mod intercept;
pub mod pki;
pub mod world;
