//! The two functions AWS IoT calls while a client connects, called here as AWS calls them:
//! - the custom authorizer, for a connection without a client certificate (or, on a
//!   `CUSTOM_AUTH_X509` endpoint, with the certificate in `protocolData.tls`): the documented request
//!   (custom-auth-lambda: `protocols`, `protocolData.tls.serverName`, `protocolData.mqtt.{username,
//!   password (base64), clientId}`, `connectionMetadata.id`), its answer held to AWS's limits; its
//!   policies govern the session until `refreshAfterInSeconds` (the function is called again) and the
//!   session ends after `disconnectAfterInSeconds`;
//! - the handshake validator (custom client certificate validation), for a connection with one:
//!   `{connectionMetadata, principalId, serverName, clientCertificateChain}` → `{isAuthenticated}`.
//!
//! Every failure (no runtime, timeout, function error, an answer outside the contract) refuses the
//! connection: fail closed.

use crate::lambda::Lambda;
use base64::Engine as _;
use fleetguard_domain::authorization::authorizer::{validate_response, AuthorizerResponse};
use iot_policy::{ConnectionContext, PolicySet};
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::{json, Value};
use std::time::Duration;

/// AWS IoT's limit for the authorizer's answer (config-custom-auth: Lambda timeout 5 s).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What the client sent for custom authentication. The password is a secret; `Debug` also leaves out
/// the certificate (no whole certificate in a log), hence its own `Debug`.
#[derive(Clone)]
pub struct Login {
    pub server_name: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretSlice<u8>>,
    pub client_id: String,
    pub connection_id: String,
    /// X.509 custom authentication: the certificate AWS IoT authenticated (PEM) and its id.
    pub certificate: Option<(String, String)>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// The request AWS IoT sends the authorizer for an MQTT connection (fields that do not apply
    /// are absent, as AWS leaves them out).
    pub fn request(&self) -> Value {
        let mut mqtt = serde_json::Map::new();
        if let Some(u) = &self.username {
            mqtt.insert("username".into(), json!(u));
        }
        if let Some(p) = &self.password {
            mqtt.insert(
                "password".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(p.expose_secret())),
            );
        }
        mqtt.insert("clientId".into(), json!(self.client_id));
        let mut tls = serde_json::Map::new();
        if let Some(s) = &self.server_name {
            tls.insert("serverName".into(), json!(s));
        }
        // custom-auth-509cert: the certificate and its id beside the TLS data.
        if let Some((pem, id)) = &self.certificate {
            tls.insert("x509CertificatePem".into(), json!(pem));
            tls.insert("principalId".into(), json!(id));
        }
        json!({
            "protocols": ["tls", "mqtt"],
            "protocolData": {"tls": tls, "mqtt": mqtt},
            "connectionMetadata": {"id": self.connection_id},
        })
    }
}

/// What the authorizer granted a session.
#[derive(Debug, Clone)]
pub struct Grant {
    /// What `principal()` gives in the rules.
    pub principal_id: String,
    pub policies: PolicySet,
    pub context: ConnectionContext,
    pub disconnect_after: u32,
    pub refresh_after: u32,
}

/// Calls the authorizer `function` for `login`. `Err` is the reason the connection is refused.
pub async fn authorize(
    lambda: &Lambda,
    function: &str,
    login: &Login,
    region: &str,
    account: &str,
) -> Result<Grant, String> {
    let answer = lambda.invoke(function, &login.request(), TIMEOUT).await?;
    let r: AuthorizerResponse = serde_json::from_value(answer)
        .map_err(|e| format!("authorizer answer outside the contract: {e}"))?;
    validate_response(&r).map_err(|e| format!("authorizer answer outside AWS's limits: {e}"))?;
    if !r.is_authenticated {
        return Err("not authenticated".into());
    }
    let docs: Vec<&str> = r.policy_documents.iter().map(String::as_str).collect();
    let policies = PolicySet::parse(&docs).map_err(|e| format!("authorizer policy: {e}"))?;
    let context = ConnectionContext {
        client_id: Some(login.client_id.clone()),
        principal_id: Some(r.principal_id.clone()),
        ..ConnectionContext::default()
    }
    .in_account(region, account);
    Ok(Grant {
        principal_id: r.principal_id,
        policies,
        context,
        disconnect_after: r.disconnect_after_in_seconds,
        refresh_after: r.refresh_after_in_seconds,
    })
}

/// Calls the handshake validator `function` for a client certificate (PEM) whose id is
/// `certificate_id`. True only for `{"isAuthenticated": true}`.
pub async fn validate_handshake(
    lambda: &Lambda,
    function: &str,
    connection_id: &str,
    certificate_id: &str,
    server_name: Option<&str>,
    certificate_pem: &str,
) -> Result<bool, String> {
    let mut event = json!({
        "connectionMetadata": {"id": connection_id},
        "principalId": certificate_id,
        "clientCertificateChain": [certificate_pem],
    });
    if let Some(s) = server_name {
        event["serverName"] = json!(s);
    }
    let answer = lambda.invoke(function, &event, TIMEOUT).await?;
    Ok(answer["isAuthenticated"] == json!(true))
}

/// A connection id as AWS gives one (a random UUID).
pub fn connection_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_debug_shows_neither_the_password_nor_the_certificate() {
        let login = Login {
            server_name: Some("iot.local".into()),
            username: Some("SN1".into()),
            password: Some(b"s3cret-pw".to_vec().into()),
            client_id: "SN1".into(),
            connection_id: connection_id(),
            certificate: Some(("-----BEGIN CERTIFICATE-----MIIB".into(), "abc".into())),
        };
        let text = format!("{login:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("115, 51"),
            "{text}"
        );
        assert!(!text.contains("MIIB"), "{text}");
        assert!(text.contains("SN1"), "{text}");
        // The request still carries the password, base64 as AWS sends it.
        assert_eq!(
            login.request()["protocolData"]["mqtt"]["password"],
            json!(base64::engine::general_purpose::STANDARD.encode(b"s3cret-pw"))
        );
    }
}
