//! The local IoT gateway, end to end: real MQTT clients over TLS against the gateway, the emulator
//! and the real functions behind it. One test binary; `load` is a load run (ignored; `scripts/load.sh
//! gateway`).

mod common;
mod connect;
mod corpus;
mod hostile;
mod load;
mod mqtt;
mod mqtt5;
mod rules;
