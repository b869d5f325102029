//! `fleetctl` run as a user runs it, with the README's commands, against the emulator and the real
//! functions' code: the lifecycles of every kind of principal, rotation and the attacker's story, the
//! claim import. One test binary.

mod claim_import;
mod lifecycles;
mod rotation;
