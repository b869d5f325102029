//! Who may authenticate through the custom authorizer: operators (JWT) and password devices, the
//! deterministic principal ids that key them, the one-read store port and password hashing.

use crate::model::{DeviceStatus, Serial, Timestamp};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use time::Duration;

pub use crate::model::{IdentityKindTag, InvalidPrincipalId, PrincipalId};

/// The principal id of an operator ([`PrincipalId::operator`]).
pub fn operator_principal(issuer: &str, sub: &str) -> PrincipalId {
    PrincipalId::operator(issuer, sub)
}

/// The principal id of a password device ([`PrincipalId::device`]).
pub fn device_principal(serial: &Serial) -> PrincipalId {
    PrincipalId::device(serial)
}

/// Whether an operator may still sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorStatus {
    Active,
    /// Quarantined (`fleetctl operators disable`): `operators enable` (a release) undoes it.
    Disabled,
    /// Revoked: no release brings it back; only `fleetctl operators add` (a deliberate re-enrolment,
    /// e.g. after the IdP account was recovered) does.
    Revoked,
}

/// An operator's status as stored; anything but a known status reads as disabled (fail closed).
fn operator_status<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<OperatorStatus, D::Error> {
    let text = String::deserialize(d)?;
    Ok(match text.as_str() {
        "active" => OperatorStatus::Active,
        "revoked" => OperatorStatus::Revoked,
        _ => OperatorStatus::Disabled,
    })
}

impl OperatorStatus {
    fn disabled() -> Self {
        Self::Disabled
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Revoked => "revoked",
        }
    }
}

/// What an identity is. The password hash is redacted from `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdentityKind {
    /// A human operator (or an operator service) signing in with a JWT from the IdP.
    Operator {
        /// Display name, for audit and `fleetctl`; never placed in a policy.
        #[serde(default)]
        operator_id: String,
        /// The serials the operator may act on (delete records of).
        #[serde(default)]
        serials: Vec<Serial>,
        /// A status this code does not know (or none) is not active: fail closed.
        #[serde(
            default = "OperatorStatus::disabled",
            deserialize_with = "operator_status"
        )]
        status: OperatorStatus,
    },
    /// A device or service without a certificate, signing in with MQTT username = serial and a password.
    Device {
        serial: Serial,
        /// PHC string, argon2id.
        password_hash: String,
        /// Mirrors the registry: only `Active` may connect.
        status: DeviceStatus,
    },
}

impl fmt::Debug for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Operator {
                operator_id,
                serials,
                status,
            } => f
                .debug_struct("Operator")
                .field("operator_id", operator_id)
                .field("serials", &serials.len())
                .field("status", status)
                .finish(),
            Self::Device { serial, status, .. } => f
                .debug_struct("Device")
                .field("serial", serial)
                .field("password_hash", &"<redacted>")
                .field("status", status)
                .finish(),
        }
    }
}

/// One identity as stored under its principal id, with its count of recent wrong passwords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub principal_id: PrincipalId,
    #[serde(flatten)]
    pub kind: IdentityKind,
    /// Wrong passwords since `failures_since` (see [`BurstPolicy`]); gates nothing.
    #[serde(default)]
    pub failed_attempts: u32,
    /// RFC 3339: when the current count of wrong passwords began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_since: Option<Timestamp>,
}

/// When wrong passwords for one serial are a security signal. Nothing is ever locked: a stranger
/// who knows a serial could otherwise keep the real device out, and the secret is too strong to
/// guess (see [`super::secret`]). `threshold` wrong ones within `window` raise one signal (an
/// audit entry and a log line the template's alarm counts); the count starts again after `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstPolicy {
    pub threshold: u32,
    pub window: Duration,
}

impl Identity {
    /// An active operator.
    pub fn operator(issuer: &str, sub: &str, operator_id: &str, serials: Vec<Serial>) -> Self {
        Self {
            principal_id: operator_principal(issuer, sub),
            kind: IdentityKind::Operator {
                operator_id: operator_id.to_owned(),
                serials,
                status: OperatorStatus::Active,
            },
            failed_attempts: 0,
            failures_since: None,
        }
    }

    /// An active password device.
    pub fn device(serial: Serial, password_hash: String) -> Self {
        Self {
            principal_id: device_principal(&serial),
            kind: IdentityKind::Device {
                serial,
                password_hash,
                status: DeviceStatus::Active,
            },
            failed_attempts: 0,
            failures_since: None,
        }
    }
}

/// The identity store (the registry table): one read per uncached decision, plus the count of
/// wrong passwords.
pub trait IdentityStore: Send + Sync {
    /// One read: the identity stored under this principal id.
    fn get_identity(
        &self,
        principal_id: &PrincipalId,
    ) -> impl Future<Output = Result<Option<Identity>>> + Send;

    /// Counts one wrong password (one conditional update, no read): adds one to the count when it
    /// began after `cutoff`, else starts a new count of one at `now` (both RFC 3339). The new count,
    /// or `None` when the identity does not exist. Concurrent wrong passwords are each counted.
    fn count_failure(
        &self,
        principal_id: &PrincipalId,
        now: &Timestamp,
        cutoff: &Timestamp,
    ) -> impl Future<Output = Result<Option<u32>>> + Send;

    /// Creates or replaces an identity (`fleetctl operators add --re-enrol`, `devices set-password`).
    fn put_identity(&self, identity: &Identity) -> impl Future<Output = Result<()>> + Send;

    /// Creates an identity, or replaces one that is still active (one conditional write): an operator
    /// disabled or revoked a moment after it was read is never revived. `Ok(false)` when it is not.
    fn put_identity_unless_inactive(
        &self,
        identity: &Identity,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Stores a password device's identity only if its device still has `device_status` and no
    /// certificate (one transaction): a revoke or a certificate binding that lands meanwhile is never
    /// overwritten with a usable password. `Ok(false)` when the device changed.
    fn put_device_identity(
        &self,
        identity: &Identity,
        device_status: crate::model::DeviceStatus,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// One read: a certificate's registry entry (X.509 custom authentication).
    fn get_certificate(
        &self,
        id: &crate::model::CertificateId,
    ) -> impl Future<Output = Result<Option<crate::model::CertificateRecord>>> + Send;
}

/// Longest password accepted (bytes). Longer ones are refused before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes a device password with argon2id (default parameters: 19 MiB, 2 passes, 1 lane) and a
/// random salt, as a PHC string. For `fleetctl devices set-password`.
pub fn hash_password(pw: &str) -> Result<String> {
    hash_password_with(pw.as_bytes(), argon2::Params::default())
}

pub fn hash_password_with(pw: &[u8], params: argon2::Params) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    if pw.is_empty() || pw.len() > MAX_PASSWORD_BYTES {
        return Err(Error::Config(format!(
            "password must be 1..={MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(pw, &salt)
        .map(|h| h.to_string())
        .map_err(|_| Error::Config("password hashing failed".to_owned()))
}

/// Upper bounds on the parameters of a stored hash, so a planted hash cannot make one
/// verification eat the Lambda's memory or time.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Match,
    Mismatch,
    /// The stored hash is not an argon2id PHC string within bounds.
    BadHash,
}

/// Checks `pw` against an argon2id PHC string. CPU-bound: run it off the async executor.
pub fn verify_password(pw: &[u8], phc: &str) -> PasswordCheck {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Ok(hash) = PasswordHash::new(phc) else {
        return PasswordCheck::BadHash;
    };
    if hash.algorithm != argon2::Algorithm::Argon2id.ident() {
        return PasswordCheck::BadHash;
    }
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return PasswordCheck::BadHash;
    };
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return PasswordCheck::BadHash;
    }
    match argon2::Argon2::default().verify_password(pw, &hash) {
        Ok(()) => PasswordCheck::Match,
        Err(argon2::password_hash::Error::Password) => PasswordCheck::Mismatch,
        Err(_) => PasswordCheck::BadHash,
    }
}
