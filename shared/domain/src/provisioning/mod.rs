//! Provisioning: how a device first becomes known, always on a proof it cannot fake.
//!
//! - [`jitr`]: just-in-time registration (a certificate signed by a registered device CA), and the
//!   validator it shares with claim provisioning.
//! - [`claim`]: fleet provisioning by claim (the pre-provisioning hook).
//! - [`enrollment`]: the proofs a claim device presents (factory-key signature, one-time secret).

pub mod claim;
pub mod enrollment;
pub mod jitr;
