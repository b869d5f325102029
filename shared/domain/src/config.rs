//! Configuration: each setting's name, default and check, defined once, over a [`Vars`] source.
//!
//! The domain never reads the process environment: each function reads its own settings struct once
//! at cold start (`fleetguard_aws::settings`), and tests pass a map.

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
    pub fn from_vars(v: &dyn Vars) -> Result<Self> {
        Ok(Self {
            registry: var(v, "FLEETGUARD_REGISTRY_TABLE")?,
            audit: var(v, "FLEETGUARD_AUDIT_TABLE")?,
            records: var(v, "FLEETGUARD_RECORDS_TABLE")?,
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
    /// Default of `FLEETGUARD_CA_CACHE_SECONDS`.
    pub const DEFAULT_CA_CACHE_SECONDS: u32 = 60;

    pub fn from_vars(v: &dyn Vars) -> Result<Self> {
        let trusted_cas = certificate_ids(v, "FLEETGUARD_CA_CERTIFICATE_IDS")?;
        if trusted_cas.is_empty() {
            return Err(Error::Config(
                "FLEETGUARD_CA_CERTIFICATE_IDS is not set".into(),
            ));
        }
        Ok(Self {
            fleet_policy: var(v, "FLEETGUARD_FLEET_POLICY")?,
            refused_status: choice(
                v,
                "FLEETGUARD_REFUSED_CERT_STATUS",
                &[
                    ("REVOKED", CertificateStatus::Revoked),
                    ("INACTIVE", CertificateStatus::Inactive),
                ],
            )?,
            ca_cache: std::time::Duration::from_secs(u64::from(opt_u32(
                v,
                "FLEETGUARD_CA_CACHE_SECONDS",
                Self::DEFAULT_CA_CACHE_SECONDS,
            )?)),
            quarantine_group: optional(v, "FLEETGUARD_QUARANTINE_GROUP"),
            trusted_cas,
        })
    }
}

/// Where settings come from: the process environment in the functions and fleetctl
/// (`fleetguard_aws::settings::Environment`), a map in tests.
pub trait Vars {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

impl Vars for std::collections::HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).map(|v| (*v).to_owned())
    }
}

/// `name`'s value, or `None` when unset or blank.
pub fn optional(v: &dyn Vars, name: &str) -> Option<String> {
    v.get(name).filter(|s| !s.trim().is_empty())
}

/// One of a closed set of codes; unset is the first.
pub fn choice<T: Copy>(v: &dyn Vars, name: &str, codes: &[(&str, T)]) -> Result<T> {
    let Some(value) = optional(v, name) else {
        return codes
            .first()
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::Config(format!("{name}: no choices")));
    };
    codes
        .iter()
        .find(|(code, _)| *code == value)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let allowed: Vec<&str> = codes.iter().map(|(c, _)| *c).collect();
            Error::Config(format!(
                "{name} must be one of {}, not {value:?}",
                allowed.join(", ")
            ))
        })
}

/// A comma-separated list of certificate ids in variable `name` (empty when unset).
pub fn certificate_ids(v: &dyn Vars, name: &str) -> Result<Vec<CertificateId>> {
    v.get(name)
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

/// A required setting.
pub fn var(v: &dyn Vars, name: &str) -> Result<String> {
    optional(v, name).ok_or_else(|| Error::Config(format!("{name} is not set")))
}

/// A non-negative integer setting with its default.
pub fn opt_u32(v: &dyn Vars, name: &str, default: u32) -> Result<u32> {
    match v.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Error::Config(format!("{name} must be a non-negative integer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn provisioning_defaults_and_refusals() {
        let mut v = HashMap::from([
            ("FLEETGUARD_FLEET_POLICY", "fleet"),
            ("FLEETGUARD_CA_CERTIFICATE_IDS", CA),
        ]);
        let c = ProvisioningConfig::from_vars(&v).unwrap();
        assert_eq!(c.refused_status, CertificateStatus::Revoked);
        assert_eq!(c.ca_cache, std::time::Duration::from_secs(60));
        assert_eq!(c.quarantine_group, None);
        v.insert("FLEETGUARD_REFUSED_CERT_STATUS", "ACTIVE");
        let err = ProvisioningConfig::from_vars(&v).unwrap_err().to_string();
        assert!(err.contains("REVOKED, INACTIVE"), "{err}");
        v.insert("FLEETGUARD_REFUSED_CERT_STATUS", "INACTIVE");
        v.insert("FLEETGUARD_CA_CACHE_SECONDS", "-1");
        assert!(ProvisioningConfig::from_vars(&v).is_err());
        v.remove("FLEETGUARD_CA_CACHE_SECONDS");
        v.insert("FLEETGUARD_CA_CERTIFICATE_IDS", " ");
        assert!(ProvisioningConfig::from_vars(&v).is_err(), "no trusted CA");
    }

    #[test]
    fn a_blank_required_setting_is_unset() {
        let v = HashMap::from([("FLEETGUARD_REGISTRY_TABLE", "  ")]);
        assert!(Tables::from_vars(&v).is_err());
    }
}
