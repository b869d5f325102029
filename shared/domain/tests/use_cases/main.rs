//! The use cases over the in-memory fakes: seconds, no AWS SDK, no emulator. One test binary.

mod authorizer;
mod claim;
mod csr;
mod delete_record;
mod handshake;
mod jitr;
mod lifecycles;
mod races;
mod restore;
mod revocation;
mod rotation;
