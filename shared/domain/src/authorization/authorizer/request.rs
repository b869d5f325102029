//! The event AWS IoT Core sends the authorizer Lambda (custom-auth-lambda), and the credential it
//! carries. Every field may be absent; an event that is not this shape is `malformed_request`.

use super::jwt::looks_like_jwt;
use crate::model::Reason;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The authorizer request. Unknown fields are ignored (AWS may add some). The token, the MQTT
/// password, HTTP header values and the query string are secrets: `Debug` redacts them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthorizerRequest {
    pub token: Option<SecretString>,
    pub signature_verified: Option<bool>,
    pub protocols: Option<Vec<String>>,
    pub protocol_data: Option<ProtocolData>,
    pub connection_metadata: Option<ConnectionMetadata>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProtocolData {
    pub tls: Option<TlsData>,
    pub http: Option<HttpData>,
    pub mqtt: Option<MqttData>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsData {
    pub server_name: Option<String>,
    /// Custom authentication with X.509 client certificates (custom-auth-509cert): the certificate
    /// AWS IoT authenticated in the TLS handshake, and its id.
    pub x509_certificate_pem: Option<String>,
    pub principal_id: Option<String>,
}

/// HTTP request data. Header values and the query string may carry credentials: `Debug` shows
/// header names only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpData {
    pub headers: Option<BTreeMap<String, SecretString>>,
    pub query_string: Option<SecretString>,
}

/// MQTT CONNECT fields. `password` is base64 (as AWS sends it), a secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MqttData {
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConnectionMetadata {
    pub id: Option<String>,
}

/// What the connection presents. The token and the password are secrets; `Debug` also leaves out
/// the certificate (logs never carry a whole certificate), hence its own `Debug`.
#[derive(Clone)]
pub enum Credential {
    /// A JWT (from `token`, an `Authorization: Bearer` header or the MQTT password).
    Jwt(SecretString),
    /// MQTT username (the `?SDK=...` suffix stripped) and the decoded password bytes.
    Password {
        username: String,
        password: SecretSlice<u8>,
    },
    /// The client certificate AWS IoT authenticated at the TLS handshake (custom-auth-509cert), with
    /// the `principalId` AWS gave it.
    Certificate {
        pem: String,
        principal_id: Option<String>,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Jwt(token) => f.debug_tuple("Jwt").field(token).finish(),
            Self::Password { username, password } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", password)
                .finish(),
            Self::Certificate { principal_id, .. } => f
                .debug_struct("Certificate")
                .field("principal_id", principal_id)
                .finish_non_exhaustive(),
        }
    }
}

/// The query-string parameter that may carry an operator token.
pub const QUERY_TOKEN_PARAM: &str = "token";

/// The MQTT username without what AWS device SDKs append (`?SDK=...&Version=...`): everything
/// from the first `?` is dropped.
pub fn strip_sdk_suffix(username: &str) -> &str {
    username.split('?').next().unwrap_or_default()
}

impl AuthorizerRequest {
    /// Parses the raw event.
    pub fn parse(raw: serde_json::Value) -> Result<Self, Reason> {
        serde_json::from_value(raw).map_err(|_| Reason::MalformedRequest)
    }

    fn mqtt(&self) -> Option<&MqttData> {
        self.protocol_data.as_ref()?.mqtt.as_ref()
    }

    /// The MQTT client id, when the client sent one.
    pub fn client_id(&self) -> Option<&str> {
        self.mqtt()?.client_id.as_deref()
    }

    fn bearer(&self) -> Option<&str> {
        let headers = self
            .protocol_data
            .as_ref()?
            .http
            .as_ref()?
            .headers
            .as_ref()?;
        let value = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.expose_secret().trim())?;
        let (scheme, rest) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim())
            .filter(|t| !t.is_empty())
    }

    /// A JWT in the HTTP query string's `token` parameter (MQTT over WebSocket or HTTPS with token
    /// signing off, where AWS passes the query string as sent). A JWT is base64url and dots, so
    /// the value is taken as is: anything percent-encoded is not a JWT and is ignored.
    fn query_token(&self) -> Option<&str> {
        let query = self
            .protocol_data
            .as_ref()?
            .http
            .as_ref()?
            .query_string
            .as_ref()?
            .expose_secret();
        query
            .trim_start_matches('?')
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == QUERY_TOKEN_PARAM)
            .map(|(_, v)| v)
            .filter(|v| looks_like_jwt(v))
    }

    /// The credential, in order of precedence: the client certificate of an X.509 custom-auth
    /// connection (the certificate is the identity: a token or password beside it elevates nothing),
    /// then `token`, `Authorization: Bearer`, the query string's `token`, then the MQTT password,
    /// which is a JWT when it has the JWS compact shape and a device password otherwise (with the
    /// username as the serial).
    pub fn credential(&self) -> Result<Credential, Reason> {
        use base64::Engine;
        if let Some(tls) = self.protocol_data.as_ref().and_then(|p| p.tls.as_ref()) {
            if let Some(pem) = tls.x509_certificate_pem.as_deref() {
                return Ok(Credential::Certificate {
                    pem: pem.to_owned(),
                    principal_id: tls.principal_id.clone(),
                });
            }
        }
        if let Some(t) = self
            .token
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .filter(|t| !t.is_empty())
        {
            return Ok(Credential::Jwt(t.into()));
        }
        if let Some(t) = self.bearer() {
            return Ok(Credential::Jwt(t.into()));
        }
        if let Some(t) = self.query_token() {
            return Ok(Credential::Jwt(t.into()));
        }
        let Some(mqtt) = self.mqtt() else {
            return Err(Reason::MalformedRequest);
        };
        let Some(encoded) = mqtt
            .password
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .filter(|p| !p.is_empty())
        else {
            return Err(Reason::MalformedRequest);
        };
        // Bounded before decoding: a password is at most MAX_PASSWORD_BYTES, a token MAX_TOKEN_BYTES.
        if encoded.len() > (super::jwt::MAX_TOKEN_BYTES * 4).div_ceil(3) + 4 {
            return Err(Reason::MalformedRequest);
        }
        let password = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Reason::MalformedRequest)?;
        let password = SecretSlice::from(password);
        if let Ok(text) = std::str::from_utf8(password.expose_secret()) {
            if looks_like_jwt(text) {
                return Ok(Credential::Jwt(text.into()));
            }
        }
        let username = mqtt
            .username
            .as_deref()
            .map(strip_sdk_suffix)
            .filter(|u| !u.is_empty())
            .ok_or(Reason::MalformedRequest)?;
        Ok(Credential::Password {
            username: username.to_owned(),
            password,
        })
    }
}
