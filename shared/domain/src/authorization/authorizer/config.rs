//! The authorizer's settings: each one's default, its check against AWS's contract, and how it is
//! read (`from_vars`, at cold start).

use super::{identity, response, ArnScope};
use crate::{Error, Result};
use time::Duration;

/// Authorizer settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct AuthorizerConfig {
    /// Region and account of every ARN in rendered policies.
    pub scope: ArnScope,
    /// The only accepted `iss`.
    pub issuer: String,
    /// Accepted `aud` values (a token must name at least one).
    pub audiences: Vec<String>,
    /// Clock skew allowed on `nbf`/`iat`, seconds (default 30).
    pub leeway_secs: i64,
    /// `refreshAfterInSeconds` (default 300; capped by the disconnect time).
    pub refresh_after_secs: u32,
    /// `disconnectAfterInSeconds` of password devices (default 86400).
    pub device_disconnect_after_secs: u32,
    /// Wrong passwords for one serial within `burst_window` that raise a security signal (default
    /// 20). See [`identity::BurstPolicy`]: nothing is ever locked.
    pub burst_threshold: u32,
    /// Default 10 minutes.
    pub burst_window: Duration,
    /// How long an operator identity read is reused (default 0: every decision reads; at most 30 s).
    /// It bounds how long a warm instance may still admit an operator revoked or disabled since:
    /// such a session would outlive the revoke's DeleteConnection until its next refresh.
    pub cache_ttl: Duration,
    /// Most cached identities (default 1024).
    pub cache_capacity: usize,
    /// Deadline of a whole decision (default 3 s, under AWS's 5 s Lambda limit).
    pub deadline: std::time::Duration,
}

impl AuthorizerConfig {
    /// Defaults for a region, account, issuer and audiences.
    pub fn new(region: &str, account: &str, issuer: &str, audiences: &[&str]) -> Result<Self> {
        let config = Self {
            scope: ArnScope::new(region, account).map_err(Error::Config)?,
            issuer: issuer.to_owned(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            leeway_secs: 30,
            refresh_after_secs: 300,
            device_disconnect_after_secs: 86_400,
            burst_threshold: 20,
            burst_window: Duration::minutes(10),
            cache_ttl: Duration::ZERO,
            cache_capacity: 1024,
            deadline: std::time::Duration::from_secs(3),
        };
        config.validate()?;
        Ok(config)
    }

    /// From the settings: `AWS_REGION`, `FLEETGUARD_ACCOUNT_ID`, `FLEETGUARD_JWT_ISSUER`,
    /// `FLEETGUARD_JWT_AUDIENCE` (comma-separated), and optionally
    /// `FLEETGUARD_AUTH_REFRESH_SECONDS`, `FLEETGUARD_AUTH_DEVICE_DISCONNECT_SECONDS`,
    /// `FLEETGUARD_AUTH_BURST_FAILURES`, `FLEETGUARD_AUTH_BURST_SECONDS`,
    /// `FLEETGUARD_AUTH_CACHE_SECONDS`, `FLEETGUARD_AUTH_CACHE_ENTRIES`,
    /// `FLEETGUARD_AUTH_DEADLINE_MS`.
    pub fn from_vars(v: &dyn crate::config::Vars) -> Result<Self> {
        use crate::config::{opt_u32, var};
        let audiences = var(v, "FLEETGUARD_JWT_AUDIENCE")?;
        let audiences: Vec<&str> = audiences
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        let mut c = Self::new(
            &var(v, "AWS_REGION")?,
            &var(v, "FLEETGUARD_ACCOUNT_ID")?,
            &var(v, "FLEETGUARD_JWT_ISSUER")?,
            &audiences,
        )?;
        // Each default is `new`'s.
        let seconds = |d: Duration| u32::try_from(d.whole_seconds()).unwrap_or(u32::MAX);
        c.refresh_after_secs = opt_u32(v, "FLEETGUARD_AUTH_REFRESH_SECONDS", c.refresh_after_secs)?;
        c.device_disconnect_after_secs = opt_u32(
            v,
            "FLEETGUARD_AUTH_DEVICE_DISCONNECT_SECONDS",
            c.device_disconnect_after_secs,
        )?;
        c.burst_threshold = opt_u32(v, "FLEETGUARD_AUTH_BURST_FAILURES", c.burst_threshold)?;
        c.burst_window = Duration::seconds(
            opt_u32(v, "FLEETGUARD_AUTH_BURST_SECONDS", seconds(c.burst_window))?.into(),
        );
        c.cache_ttl = Duration::seconds(
            opt_u32(v, "FLEETGUARD_AUTH_CACHE_SECONDS", seconds(c.cache_ttl))?.into(),
        );
        c.cache_capacity = opt_u32(
            v,
            "FLEETGUARD_AUTH_CACHE_ENTRIES",
            u32::try_from(c.cache_capacity).unwrap_or(u32::MAX),
        )? as usize;
        c.deadline = std::time::Duration::from_millis(
            opt_u32(
                v,
                "FLEETGUARD_AUTH_DEADLINE_MS",
                u32::try_from(c.deadline.as_millis()).unwrap_or(u32::MAX),
            )?
            .into(),
        );
        c.validate()?;
        Ok(c)
    }

    /// Checks the settings are within the AWS contract and sane.
    /// When wrong passwords are a security signal.
    pub fn burst_policy(&self) -> identity::BurstPolicy {
        identity::BurstPolicy {
            threshold: self.burst_threshold,
            window: self.burst_window,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let range = response::MIN_DURATION_SECS..=response::MAX_DURATION_SECS;
        let mut bad = Vec::new();
        if self.issuer.is_empty() {
            bad.push("issuer is empty");
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            bad.push("audiences must be non-empty");
        }
        if !(0..=300).contains(&self.leeway_secs) {
            bad.push("leeway must be 0..=300 seconds");
        }
        if !range.contains(&self.refresh_after_secs) {
            bad.push("refresh must be 300..=86400 seconds");
        }
        if !range.contains(&self.device_disconnect_after_secs) {
            bad.push("device disconnect must be 300..=86400 seconds");
        }
        if self.burst_threshold == 0 {
            bad.push("burst failures must be at least 1");
        }
        if self.burst_window <= Duration::ZERO || self.burst_window > Duration::days(1) {
            bad.push("burst window must be 1..=86400 seconds");
        }
        if self.cache_ttl < Duration::ZERO || self.cache_ttl > Duration::seconds(30) {
            bad.push("cache TTL must be 0..=30 seconds");
        }
        if self.cache_capacity > 100_000 {
            bad.push("cache capacity must be at most 100000");
        }
        if self.deadline.is_zero() || self.deadline > std::time::Duration::from_millis(4500) {
            bad.push("deadline must be 1..=4500 ms");
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(format!("authorizer: {}", bad.join(", "))))
        }
    }
}
