//! Records: what devices delete, and how a delete is undone.
//!
//! - [`delete`]: the delete-record decision (the principal must own the serial; soft delete).
//! - [`restore`]: restoring soft-deleted records (`fleetctl records restore`, revocation rollback).

pub mod delete;
pub mod restore;
