//! Each function's settings: one struct per function, read from the environment once at cold start.
//! The template sets them (docs/deploy.md lists the optional ones and their defaults); each setting's
//! name, default and check is defined once, beside the type it configures (`fleetguard_domain::config`
//! and the use cases' `from_vars`). This is the only place a function reads its environment.

use crate::http::HttpClient;
use crate::jwks::HttpJwks;
use fleetguard_domain::authorization::authorizer::{AuthorizerConfig, Jwks, KeyRing};
use fleetguard_domain::authorization::handshake::HandshakeConfig;
use fleetguard_domain::config::{opt_u32, optional, var, ProvisioningConfig, Tables, Vars};
use fleetguard_domain::lifecycle::revocation::RevocationConfig;
use fleetguard_domain::lifecycle::rotation::RotationConfig;
use fleetguard_domain::provisioning::claim::DEFAULT_PROOF_WINDOW_SECONDS;
use fleetguard_domain::{Error, Result};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The process environment.
pub struct Environment;

impl Vars for Environment {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Default days an audit entry is kept (`FLEETGUARD_AUDIT_RETENTION_DAYS`).
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 400;

/// What every function's AWS side needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub tables: Tables,
    /// `FLEETGUARD_AUDIT_RETENTION_DAYS` (default 400; 0 keeps entries forever).
    pub audit_retention_days: u32,
    /// `FLEETGUARD_IOT_DATA_ENDPOINT`: the data plane's URL when it is not the SDK's (the local
    /// gateway).
    pub iot_data_endpoint: Option<String>,
}

impl Common {
    pub fn from_vars(v: &dyn Vars) -> Result<Self> {
        Ok(Self {
            tables: Tables::from_vars(v)?,
            audit_retention_days: opt_u32(
                v,
                "FLEETGUARD_AUDIT_RETENTION_DAYS",
                DEFAULT_AUDIT_RETENTION_DAYS,
            )?,
            iot_data_endpoint: optional(v, "FLEETGUARD_IOT_DATA_ENDPOINT"),
        })
    }
}

/// The provisioner (JITR).
#[derive(Debug, Clone)]
pub struct Provisioner {
    pub common: Common,
    pub provisioning: ProvisioningConfig,
}

impl Provisioner {
    pub fn from_env() -> Result<Self> {
        let v = &Environment;
        Ok(Self {
            common: Common::from_vars(v)?,
            provisioning: ProvisioningConfig::from_vars(v)?,
        })
    }
}

/// The pre-provisioning hook (claim).
#[derive(Debug, Clone)]
pub struct ProvisioningHook {
    pub common: Common,
    /// `FLEETGUARD_PROOF_WINDOW_SECONDS` (default 300): how old an enrollment statement may be.
    pub proof_window_seconds: i64,
    /// `FLEETGUARD_QUARANTINE_GROUP`: the group an approved replacement's thing leaves.
    pub quarantine_group: Option<String>,
}

impl ProvisioningHook {
    pub fn from_env() -> Result<Self> {
        let v = &Environment;
        let default = u32::try_from(DEFAULT_PROOF_WINDOW_SECONDS).unwrap_or(u32::MAX);
        Ok(Self {
            common: Common::from_vars(v)?,
            proof_window_seconds: opt_u32(v, "FLEETGUARD_PROOF_WINDOW_SECONDS", default)?.into(),
            quarantine_group: optional(v, "FLEETGUARD_QUARANTINE_GROUP"),
        })
    }
}

/// Delete-record.
#[derive(Debug, Clone)]
pub struct DeleteRecord {
    pub common: Common,
    /// `FLEETGUARD_SECURITY_TOPIC`: where cross-serial attempts are reported.
    pub security_topic: String,
}

impl DeleteRecord {
    pub fn from_env() -> Result<Self> {
        let v = &Environment;
        Ok(Self {
            common: Common::from_vars(v)?,
            security_topic: var(v, "FLEETGUARD_SECURITY_TOPIC")?,
        })
    }
}

/// The revoker.
#[derive(Debug, Clone)]
pub struct Revoker {
    pub common: Common,
    pub revocation: RevocationConfig,
}

impl Revoker {
    pub fn from_env() -> Result<Self> {
        let v = &Environment;
        Ok(Self {
            common: Common::from_vars(v)?,
            revocation: RevocationConfig::from_vars(v)?,
        })
    }
}

/// The TLS handshake validator.
#[derive(Debug, Clone)]
pub struct HandshakeValidator {
    pub common: Common,
    pub handshake: HandshakeConfig,
}

impl HandshakeValidator {
    pub fn from_env() -> Result<Self> {
        let v = &Environment;
        Ok(Self {
            common: Common::from_vars(v)?,
            handshake: HandshakeConfig::from_vars(v)?,
        })
    }
}

/// The rotator.
#[derive(Debug, Clone)]
pub struct Rotator {
    pub common: Common,
    pub rotation: RotationConfig,
    /// `FLEETGUARD_CA_KEY_ID`: the KMS key that signs device certificates.
    pub ca_key_id: String,
    /// `FLEETGUARD_CA_CERTIFICATE_ID`: that key's CA certificate in AWS IoT.
    pub ca_certificate_id: String,
}

impl Rotator {
    pub fn from_env() -> Result<Self> {
        let v = &Environment;
        Ok(Self {
            common: Common::from_vars(v)?,
            rotation: RotationConfig::from_vars(v)?,
            ca_key_id: var(v, "FLEETGUARD_CA_KEY_ID")?,
            ca_certificate_id: var(v, "FLEETGUARD_CA_CERTIFICATE_ID")?,
        })
    }
}

/// The certificate watch (expiry watch and rotation sweep).
#[derive(Debug, Clone)]
pub struct CertificateWatch {
    pub common: Common,
    /// `FLEETGUARD_FLEET_POLICY`: what the sweep detaches from a cut-off certificate.
    pub fleet_policy: String,
    /// `FLEETGUARD_EXPIRY_WINDOW_DAYS` (default 30, as rotation's).
    pub device_window_days: u32,
    /// `FLEETGUARD_CA_EXPIRY_WINDOW_DAYS` (default 90).
    pub ca_window_days: u32,
    /// `FLEETGUARD_ALERTS_TOPIC`: where expiring certificates are announced.
    pub alerts_topic: String,
}

impl CertificateWatch {
    pub fn from_env() -> Result<Self> {
        let v = &Environment;
        Ok(Self {
            common: Common::from_vars(v)?,
            fleet_policy: var(v, "FLEETGUARD_FLEET_POLICY")?,
            device_window_days: opt_u32(
                v,
                "FLEETGUARD_EXPIRY_WINDOW_DAYS",
                RotationConfig::DEFAULT_EXPIRY_WINDOW_DAYS,
            )?,
            ca_window_days: opt_u32(v, "FLEETGUARD_CA_EXPIRY_WINDOW_DAYS", 90)?,
            alerts_topic: var(v, "FLEETGUARD_ALERTS_TOPIC")?,
        })
    }
}

/// Where the operators' signing keys come from.
pub enum KeySettings {
    /// `FLEETGUARD_JWKS_URL`: fetched at cold start, refreshed every `ttl`
    /// (`FLEETGUARD_JWKS_TTL_SECONDS`, default 600), refused `max_age` after the last successful
    /// fetch (`FLEETGUARD_JWKS_MAX_AGE_SECONDS`, default 86400, from the TTL to 7 days).
    Url {
        url: String,
        ttl: Duration,
        max_age: Duration,
    },
    /// `FLEETGUARD_JWKS_FILE` (a path) or inline `FLEETGUARD_JWKS`: fixed for the instance's life.
    Fixed(Jwks),
}

/// How long one JWKS fetch may take.
const JWKS_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl KeySettings {
    pub fn from_vars(v: &dyn Vars) -> Result<Self> {
        if let Some(url) = optional(v, "FLEETGUARD_JWKS_URL") {
            let seconds = |d: Duration| u32::try_from(d.whole_seconds()).unwrap_or(u32::MAX);
            let ttl = Duration::seconds(opt_u32(v, "FLEETGUARD_JWKS_TTL_SECONDS", 600)?.into());
            let max_age = Duration::seconds(
                opt_u32(
                    v,
                    "FLEETGUARD_JWKS_MAX_AGE_SECONDS",
                    seconds(KeyRing::DEFAULT_MAX_AGE),
                )?
                .into(),
            );
            KeyRing::check_max_age(ttl, max_age)?;
            return Ok(Self::Url {
                url: url.trim().to_owned(),
                ttl,
                max_age,
            });
        }
        if let Some(path) = optional(v, "FLEETGUARD_JWKS_FILE") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::Config(format!("cannot read FLEETGUARD_JWKS_FILE: {e}")))?;
            return Jwks::from_json(&text).map(Self::Fixed);
        }
        Jwks::from_json(&var(v, "FLEETGUARD_JWKS")?).map(Self::Fixed)
    }

    /// The key ring. A URL is fetched now: an instance that cannot get keys fails its init and
    /// never allows anyone.
    pub async fn key_ring(self, now: OffsetDateTime) -> Result<KeyRing> {
        match self {
            Self::Url { url, ttl, max_age } => {
                let source = HttpJwks::new(HttpClient::new()?, &url, JWKS_FETCH_TIMEOUT)?;
                Ok(KeyRing::fetched(Arc::new(source), ttl, now)
                    .await?
                    .with_max_age(max_age))
            }
            Self::Fixed(jwks) => Ok(KeyRing::fixed(jwks)),
        }
    }
}

/// The custom authorizer.
pub struct Authorizer {
    pub common: Common,
    pub config: AuthorizerConfig,
    pub keys: KeySettings,
}

impl Authorizer {
    pub fn from_env() -> Result<Self> {
        let v = &Environment;
        Ok(Self {
            common: Common::from_vars(v)?,
            config: AuthorizerConfig::from_vars(v)?,
            keys: KeySettings::from_vars(v)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn common_defaults() {
        let v = HashMap::from([
            ("FLEETGUARD_REGISTRY_TABLE", "r"),
            ("FLEETGUARD_AUDIT_TABLE", "a"),
            ("FLEETGUARD_RECORDS_TABLE", "d"),
        ]);
        let c = Common::from_vars(&v).unwrap();
        assert_eq!(c.audit_retention_days, DEFAULT_AUDIT_RETENTION_DAYS);
        assert_eq!(c.iot_data_endpoint, None);
    }

    #[test]
    fn a_jwks_url_takes_its_timing_and_refuses_a_max_age_under_the_ttl() {
        let mut v = HashMap::from([("FLEETGUARD_JWKS_URL", "https://idp.example/jwks")]);
        match KeySettings::from_vars(&v).unwrap() {
            KeySettings::Url { ttl, max_age, .. } => {
                assert_eq!(ttl, Duration::seconds(600));
                assert_eq!(max_age, KeyRing::DEFAULT_MAX_AGE);
            }
            KeySettings::Fixed(_) => panic!("a URL is fetched"),
        }
        v.insert("FLEETGUARD_JWKS_MAX_AGE_SECONDS", "60");
        assert!(KeySettings::from_vars(&v).is_err());
    }

    #[test]
    fn no_keys_at_all_is_a_config_error() {
        let v: HashMap<&str, &str> = HashMap::new();
        assert!(matches!(KeySettings::from_vars(&v), Err(Error::Config(_))));
    }
}
