//! Lifecycle events as AWS IoT publishes them (life-cycle-events): `connected` and `disconnected` on
//! `$aws/events/presence/{connected,disconnected}/<clientId>`, with the session's id, the principal,
//! the connection's `versionNumber` (the same for a connect and its disconnect, growing per client
//! id) and, on disconnect, why. Client ids holding `+` or `#` get none, as on AWS.

use serde_json::{json, Value};
use time::OffsetDateTime;

/// One session as its lifecycle events name it.
#[derive(Debug, Clone)]
pub struct Presence {
    pub client_id: String,
    pub session_identifier: String,
    pub principal_identifier: String,
    pub ip_address: String,
    pub version_number: u64,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Presence {
    fn publishable(&self) -> bool {
        !self.client_id.contains(['+', '#'])
    }

    /// The `connected` event: topic and payload.
    pub fn connected(&self) -> Option<(String, Value)> {
        self.publishable().then(|| {
            (
                format!("$aws/events/presence/connected/{}", self.client_id),
                json!({
                    "clientId": self.client_id,
                    "timestamp": now_ms(),
                    "eventType": "connected",
                    "sessionIdentifier": self.session_identifier,
                    "principalIdentifier": self.principal_identifier,
                    "ipAddress": self.ip_address,
                    "versionNumber": self.version_number,
                }),
            )
        })
    }

    /// The `disconnected` event for a session that ended for `reason` (AWS's `disconnectReason`).
    pub fn disconnected(&self, reason: &str) -> Option<(String, Value)> {
        self.publishable().then(|| {
            (
                format!("$aws/events/presence/disconnected/{}", self.client_id),
                json!({
                    "clientId": self.client_id,
                    "timestamp": now_ms(),
                    "eventType": "disconnected",
                    "sessionIdentifier": self.session_identifier,
                    "principalIdentifier": self.principal_identifier,
                    "clientInitiatedDisconnect": reason == "CLIENT_INITIATED_DISCONNECT",
                    "disconnectReason": reason,
                    "versionNumber": self.version_number,
                }),
            )
        })
    }
}
