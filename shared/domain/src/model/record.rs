//! A record devices delete from. Deletes are soft: the item stays, with who, when, why and a version.

use super::{RecordId, Serial};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub serial: Serial,
    pub record_id: RecordId,
    #[serde(default)]
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<super::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_reason: Option<String>,
    /// Idempotency key of the message that deleted it (replays are recognised by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<super::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_by: Option<String>,
    /// The record's own content, opaque to fleetguard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Record {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}
