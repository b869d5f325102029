//! The use cases over the in-memory fakes: seconds, no AWS SDK, no emulator. One test binary.

mod authorizer;
mod csr;
mod delete_record;
mod fleet_provisioning;
mod handshake;
mod lifecycles;
mod provisioning;
mod races;
mod records;
mod revocation;
mod rotation;
