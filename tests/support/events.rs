//! AWS-shaped events and requests the functions receive.

use super::*;

/// Now, as a topic rule's `timestamp()` gives it (epoch milliseconds).
pub fn now_ms() -> i64 {
    (fleetguard_domain::model::now().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The certificate id AWS computes: SHA-256 over the DER.
pub fn certificate_id_of(pem: &str) -> String {
    fleetguard_testkit::pki::certificate_id(pem).to_string()
}

/// The event the delete-record rule forwards (see infra: SELECT by name, never `*`).
pub fn delete_event(
    serial: &str,
    record_id: &str,
    principal: &str,
    received_at: i64,
) -> serde_json::Value {
    serde_json::json!({
        "serial": serial,
        "record_id": record_id,
        "principal": principal,
        "client_id": serial,
        "received_at": received_at,
        "reason": "operator cleanup"
    })
}

/// A JITR event as AWS publishes it (developerguide/auto-register-device-cert.html).
pub fn jitr_event(cert_id: &str, ca_id: &str) -> serde_json::Value {
    serde_json::json!({
        "certificateId": cert_id,
        "caCertificateId": ca_id,
        "timestamp": 1_700_000_000_000_i64,
        "certificateStatus": "PENDING_ACTIVATION",
        "awsAccountId": "123456789012",
        "certificateRegistrationTimestamp": "1700000000000"
    })
}

/// An authorizer request as AWS IoT Core sends it for an MQTT CONNECT (custom-auth-lambda).
pub fn mqtt_connect(username: &str, password: &[u8], client_id: &str) -> serde_json::Value {
    serde_json::json!({
        "signatureVerified": false,
        "protocols": ["tls", "mqtt"],
        "protocolData": {
            "tls": {"serverName": "example-ats.iot.us-east-1.amazonaws.com"},
            "mqtt": {"username": username,
                     "password": base64::engine::general_purpose::STANDARD.encode(password),
                     "clientId": client_id}
        },
        "connectionMetadata": {"id": "e56f08c3-c559-490f-aa9f-7e8427d0f57b"}
    })
}
