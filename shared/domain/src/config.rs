//! Configuration from environment variables, read once at cold start.

use crate::model::{CertificateId, CertificateStatus};
use crate::{Error, Result};

/// The three DynamoDB tables. Names come from the environment so one account can hold several stacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// `FLEETGUARD_REGISTRY_TABLE`: devices, certificate bindings, operators.
    pub registry: String,
    /// `FLEETGUARD_AUDIT_TABLE`: every decision.
    pub audit: String,
    /// `FLEETGUARD_RECORDS_TABLE`: the records devices delete from.
    pub records: String,
}

impl Tables {
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            registry: var("FLEETGUARD_REGISTRY_TABLE")?,
            audit: var("FLEETGUARD_AUDIT_TABLE")?,
            records: var("FLEETGUARD_RECORDS_TABLE")?,
        })
    }

    /// Table names with a common prefix (the local demo and tests).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            registry: format!("{prefix}-registry"),
            audit: format!("{prefix}-audit"),
            records: format!("{prefix}-records"),
        }
    }
}

/// What the provisioning functions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningConfig {
    /// `FLEETGUARD_FLEET_POLICY`: the one fleet device policy (it uses policy variables; no per-device policies).
    pub fleet_policy: String,
    /// `FLEETGUARD_REFUSED_CERT_STATUS`: REVOKED (default) or INACTIVE for a refused certificate.
    pub refused_status: CertificateStatus,
    /// `FLEETGUARD_CA_CACHE_SECONDS`: how long an ACTIVE CA's description is reused (default 60; 0: never).
    pub ca_cache: std::time::Duration,
    /// `FLEETGUARD_QUARANTINE_GROUP`: a replacement certificate takes its thing out of this group.
    pub quarantine_group: Option<String>,
    /// `FLEETGUARD_CA_CERTIFICATE_IDS` (required): the device CAs whose JITR events are provisioned.
    /// The role may describe only these (the template's `CaCertificateId`), so any other CA is
    /// refused before a call AWS would deny.
    pub trusted_cas: Vec<CertificateId>,
}

impl ProvisioningConfig {
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            fleet_policy: var("FLEETGUARD_FLEET_POLICY")?,
            refused_status: match std::env::var("FLEETGUARD_REFUSED_CERT_STATUS").as_deref() {
                Err(_) | Ok("REVOKED") => CertificateStatus::Revoked,
                Ok("INACTIVE") => CertificateStatus::Inactive,
                Ok(other) => {
                    return Err(Error::Config(format!(
                        "FLEETGUARD_REFUSED_CERT_STATUS must be REVOKED or INACTIVE, not {other:?}"
                    )))
                }
            },
            ca_cache: std::time::Duration::from_secs(u64::from(opt_u32(
                "FLEETGUARD_CA_CACHE_SECONDS",
                60,
            )?)),
            quarantine_group: std::env::var("FLEETGUARD_QUARANTINE_GROUP")
                .ok()
                .filter(|g| !g.is_empty()),
            trusted_cas: {
                let ids = certificate_ids("FLEETGUARD_CA_CERTIFICATE_IDS")?;
                if ids.is_empty() {
                    return Err(Error::Config(
                        "FLEETGUARD_CA_CERTIFICATE_IDS is not set".into(),
                    ));
                }
                ids
            },
        })
    }
}

/// A comma-separated list of certificate ids in variable `name` (empty when unset).
pub fn certificate_ids(name: &str) -> Result<Vec<CertificateId>> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            CertificateId::parse(s)
                .map_err(|_| Error::Config(format!("{name}: {s:?} is not a certificate id")))
        })
        .collect()
}

pub fn var(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(Error::Config(format!("{name} is not set"))),
    }
}

pub fn opt_u32(name: &str, default: u32) -> Result<u32> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse()
            .map_err(|_| Error::Config(format!("{name} must be a non-negative integer"))),
    }
}
