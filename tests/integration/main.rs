//! The emulator's integration tests: one binary, one emulator, every stack isolated (unique tables,
//! policies and roles per test), so the modules run in parallel as the separate binaries did. Kept
//! apart, each with an emulator of its own: `faults` and `rotation` (they count the emulator's calls),
//! `e2e`, `races` and `gateway_story` (functions through `cargo lambda watch`, deadlines the
//! shared emulator's load would break), and `load` (run by `scripts/load.sh`).

mod authorizer;
mod claim;
mod contracts;
mod delete_record;
mod expiry_scale;
mod fixtures;
mod hostile;
mod jitr;
mod policy_gate;
mod revocation;
mod template;
