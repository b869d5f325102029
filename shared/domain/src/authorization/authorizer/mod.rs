//! The AWS IoT Core custom authorizer: who may connect without a device certificate, and with
//! which policy.
//!
//! Two kinds of callers (see [`identity`]):
//! * **Operators** present a JWT from the IdP (in `token`, an `Authorization: Bearer` header, the
//!   HTTP query string's `token` parameter, or the MQTT password). It is verified against the
//!   JWKS ([`jwt`]: RS256/ES256 only, `kid` selects the key, issuer, audience, `exp`, `nbf`,
//!   `iat`; [`keys`]: a JWKS from a URL is cached and refreshed), then the operator is read with one
//!   `get_identity(operator_principal(iss, sub))`. The policy ([`render::operator_policy`]) lets
//!   it connect only with its principal id as client id and use only
//!   `P/<serial>/deleterecords/*` of the serials the registry lists for it. The connection never
//!   outlives the token (`disconnectAfterInSeconds` = min(86400, exp − now), at least 300).
//! * **Password devices/services** present MQTT username = serial (an SDK's `?SDK=...` suffix is
//!   dropped) and their secret ([`secret`]: at least 128 bits, compared as a digest in constant
//!   time). The right secret is accepted every time, whatever else arrives: nothing is locked,
//!   wrong ones are audited and counted, and a burst of them is a security signal
//!   ([`identity::BurstPolicy`]). The policy ([`render::device_policy`]) is the fleet policy's
//!   scope made concrete for that serial.
//!
//! Every decision is a [`Decision`] with a stable [`Reason`]; everything else (malformed
//! input, store errors, the [`AuthorizerConfig::deadline`] passing) is a deny. Secrets (token,
//! password, hash) never appear in a reason, a detail or a `Debug` output.
//!
//! Caching: operator identities that are found active are cached per principal id for
//! [`AuthorizerConfig::cache_ttl`] (bounded by [`AuthorizerConfig::cache_capacity`]), so a
//! reconnect storm costs at most one read per uncached decision. Password-device identities are
//! never cached: a revoke or a new secret must reach the next decision, so each one reads fresh (a
//! right secret costs that one read and nothing else; a wrong one adds one counting write).
//!
//! The module refers to the rest of the crate only through `crate::` paths and to its own
//! submodules through `super::`.
//!
//! # Behaviour
//!
//! `functions/authorizer` is an AWS IoT custom authorizer (signing disabled: it verifies the JWT itself).
//! Operators put an IdP-signed JWT (RS256/ES256) in the MQTT password, the `token` field, an
//! `Authorization: Bearer` header or the HTTP query string's `token` parameter (MQTT over WebSocket). Keys come
//! from `FLEETGUARD_JWKS_URL` (https; fetched at cold start — an instance that cannot fetch them never starts —
//! cached across invocations, refreshed every `FLEETGUARD_JWKS_TTL_SECONDS` (600) and on an unknown `kid`, at
//! most once a minute; a failed refresh keeps the current keys until `FLEETGUARD_JWKS_MAX_AGE_SECONDS` (86400,
//! TTL..7 days) after the last successful one, then every operator token is refused, `keys_stale`, until a refresh
//! succeeds) or else `FLEETGUARD_JWKS_FILE` /
//! `FLEETGUARD_JWKS` (loaded once); `iss`
//! (`FLEETGUARD_JWT_ISSUER`), `aud` (`FLEETGUARD_JWT_AUDIENCE`), `exp` and `nbf` are checked. The operator is
//! the registry item `PRINCIPAL#op<40 hex of SHA-256(iss, sub)>` (`fleetctl operators add`); they connect with
//! that principal id as client id and may publish `P/<serial>/deleterecords/*` (and receive the replies) only
//! for their granted serials. `disconnectAfterInSeconds` never outlives the token. Every error is a deny;
//! every decision is audited (an allow that cannot be audited becomes a deny); tokens and passwords are never
//! logged. One consistent DynamoDB read per decision: no identity is cached by default, so a revoked or
//! disabled operator is refused on every instance at once (`FLEETGUARD_AUTH_CACHE_SECONDS`, 0..=30, caches
//! active operators that long and is then the bound); password devices are never cached. An
//! operator with more serials than fit in 10 × 2,048 characters (117 thirteen-character serials in eu-west-1,
//! 108 in cn-north-1, 98 in us-gov-west-1) is denied with `policy_too_large` rather than given wider rights.
//! ARNs in rendered policies use the deployment's partition (`aws-cn` for `cn-*`, `aws-us-gov` for
//! `us-gov-*`, …).
//!
//! **Password devices** (no certificate) use username = serial and a machine-generated secret as password:
//!
//! ```sh
//! fleetctl devices import serials.csv                      # the serial, without proof columns
//! fleetctl devices set-password SN0042 --generate --activate   # prints the secret once, on its first line
//! ```
//!
//! Only a device without a certificate and without claim proof material can have a secret, and storing a
//! secret never makes a `manufactured` device usable: `--activate` does, explicitly (without it the digest is
//! stored and the device stays unusable; on an active device the command replaces the secret). The password
//! identity (`PRINCIPAL#dv<40 hex of SHA-256(serial)>`) follows the registry's device status, so revoke,
//! quarantine and release reach it exactly as they reach a certificate. It is written only if the device still
//! has the status read and no certificate (one transaction), each status change reaches it only if the
//! device still has that status, and binding a certificate to the serial removes it: a device that gets a
//! certificate (JITR or claim, manufactured or already active with a password) is bound to it and signs in
//! with it, never also with a password (tested).
//!
//! **The right secret gets in every time**, however many wrong ones arrive (tested: 100 guesses around
//! the device's own connections, and 20 at once). A secret is at least 128 bits: `--generate` makes 256, a
//! supplied one (stdin) is refused `weak_secret` below 128 by the estimate length × log2(alphabet). Since it
//! cannot be guessed, nothing is locked or delayed and no slow hash is needed: the registry keeps
//! SHA-256(context, serial, secret) and the authorizer compares in constant time (microseconds, so a flood
//! costs only the invocations AWS bills anyway). A right secret costs one read and no write, so a refresh
//! never competes with guesses. Every wrong one is audited (`bad_password`) and counted (one conditional
//! update); `FLEETGUARD_AUTH_BURST_FAILURES` (20) within `FLEETGUARD_AUTH_BURST_SECONDS` (600) for one serial
//! is a security signal: one `password_burst` audit entry per window and the `<stack>-password-burst`
//! alarm on `AlarmsTopic`, never a lockout. Refusals before the check (unknown serial, inactive device) run
//! the same digest, so timing does not tell which serials exist. Argon2id hashes stored by earlier versions
//! are still verified, at argon2's cost; `set-password --generate` moves a device to the digest.
//!
//! **X.509 custom authentication** (domain configuration `CUSTOM_AUTH_X509`, page custom-auth-509cert): AWS
//! sends the client certificate AWS authenticated at the handshake (`protocolData.tls.x509CertificatePem`,
//! `principalId` = its certificate id). The connection's identity is that certificate: its id must be SHA-256
//! of the DER and equal `principalId`, it must be in date and in the registry, neither denied nor held, the
//! client id must be its serial, and the answer echoes the certificate id with that serial's policy. A token
//! or password beside the certificate elevates nothing. One read. (On such an endpoint AWS adds the returned
//! policies to those attached to the certificate; they cannot narrow them.)
//!
//! Measured: see `docs/performance.md` (a cached operator's whole decision 320 µs with 1 serial).

mod config;
pub mod identity;
pub mod jwt;
pub mod keys;
pub mod render;
pub mod request;
pub mod response;
pub mod secret;

pub use config::AuthorizerConfig;
pub use identity::{
    device_principal, hash_password, operator_principal, Identity, IdentityKind, IdentityStore,
    OperatorStatus, PrincipalId,
};
pub use jwt::{Jwks, TokenRules, VerifiedToken};
pub use keys::{KeyRing, KeySource, RefetchCause};
pub use render::ArnScope;
pub use request::{strip_sdk_suffix, AuthorizerRequest, Credential};
pub use response::{validate_response, AuthorizerResponse};

use crate::model::AuditAction;
use crate::model::{DeviceStatus, Reason, Serial};
use crate::{Error, Result};
use identity::MAX_PASSWORD_BYTES;
use secrecy::{ExposeSecret, SecretSlice};
use secret::SecretCheck;

use std::sync::Arc;
use time::OffsetDateTime;

/// Cached identity reads, per principal id, for a short TTL.
type IdentityCache = crate::cache::TtlCache<PrincipalId, Arc<Identity>>;

/// The authorizer engine: configuration, JWKS and the identity cache. Built once per Lambda
/// instance and shared by every invocation.
pub struct Authorizer {
    config: AuthorizerConfig,
    keys: KeyRing,
    rules: TokenRules,
    cache: IdentityCache,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("config", &self.config)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// An authorizer with fixed keys.
    pub fn new(config: AuthorizerConfig, jwks: Jwks) -> Result<Self> {
        Self::with_keys(config, KeyRing::fixed(jwks))
    }

    /// An authorizer with the given key ring (e.g. [`KeyRing::fetched`] from a URL).
    pub fn with_keys(config: AuthorizerConfig, keys: KeyRing) -> Result<Self> {
        config.validate()?;
        let rules = TokenRules {
            issuer: config.issuer.clone(),
            audiences: config.audiences.clone(),
            leeway_secs: config.leeway_secs,
        };
        let cache = IdentityCache::new(config.cache_ttl, config.cache_capacity);
        Ok(Self {
            config,
            keys,
            rules,
            cache,
        })
    }

    /// The keys operator tokens are verified with.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn config(&self) -> &AuthorizerConfig {
        &self.config
    }

    /// Number of identities currently cached.
    pub fn cached_identities(&self) -> usize {
        self.cache.len()
    }
}

/// `FLEETGUARD_JWKS_TTL_SECONDS` (default 600) and `FLEETGUARD_JWKS_MAX_AGE_SECONDS` (default
/// 86400), checked with [`KeyRing::check_max_age`] before anything is fetched.
/// One decision, for the Lambda to return (`response`) and audit (the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub response: AuthorizerResponse,
    pub reason: Reason,
    /// The principal the decision is about, once known (a verified operator, or the device
    /// principal of a valid serial).
    pub principal_id: Option<String>,
    /// The serial of a password device, when valid.
    pub serial: Option<String>,
    /// Short detail for the audit (internal errors); never a token, password or hash.
    pub detail: Option<String>,
    /// This wrong password made the serial's count reach the burst threshold (the count).
    pub burst: Option<u32>,
}

impl Decision {
    pub fn is_authenticated(&self) -> bool {
        self.response.is_authenticated
    }

    /// The decision as the audit table and the log line record it.
    pub fn audit_entry(&self) -> crate::model::AuditEntry {
        use crate::model::{AuditEntry, Outcome};
        let outcome = if self.is_authenticated() {
            Outcome::Accepted
        } else {
            Outcome::Rejected
        };
        let mut entry = AuditEntry::new("authorizer", AuditAction::Authorize, outcome, self.reason);
        if let Some(p) = &self.principal_id {
            entry = entry.principal(p.clone());
        }
        if let Some(s) = &self.serial {
            entry = entry.serial(s.clone());
        }
        if let Some(d) = &self.detail {
            entry = entry.detail(d.clone());
        }
        entry
    }

    /// The security signal this decision raises, if any: a burst of wrong passwords for one serial
    /// (audited and logged with reason `password_burst`, which the template's alarm counts).
    pub fn signal_entry(&self) -> Option<crate::model::AuditEntry> {
        use crate::model::{AuditEntry, Outcome};
        let n = self.burst?;
        let mut entry = AuditEntry::new(
            "authorizer",
            AuditAction::PasswordBurst,
            Outcome::Rejected,
            Reason::PasswordBurst,
        )
        .detail(format!(
            "{n} wrong passwords in the burst window; nothing is locked"
        ));
        if let Some(p) = &self.principal_id {
            entry = entry.principal(p.clone());
        }
        if let Some(s) = &self.serial {
            entry = entry.serial(s.clone());
        }
        Some(entry)
    }
}

#[derive(Default)]
struct Trace {
    principal_id: Option<String>,
    serial: Option<String>,
    detail: Option<String>,
    burst: Option<u32>,
}

impl Trace {
    fn internal(&mut self, what: &str, e: &Error) -> Reason {
        let d = format!("{what}: {e}");
        self.detail = Some(crate::model::truncate_utf8(&d, 256).to_owned());
        Reason::InternalError
    }
}

struct Grant {
    principal_id: crate::model::Principal,
    disconnect_after: u32,
    refresh_after: u32,
    policies: Vec<String>,
}

/// Decides one authorizer request. Never fails and never panics on input: anything that is not a
/// clean allow is a deny with its reason. The whole decision runs under the configured deadline,
/// so it must be called inside a Tokio runtime with the time driver enabled (the Lambda
/// runtime's is).
pub async fn authorize<S: IdentityStore>(
    engine: &Authorizer,
    store: &S,
    raw: serde_json::Value,
    now: OffsetDateTime,
) -> Decision {
    let mut trace = Trace::default();
    let result = tokio::time::timeout(
        engine.config.deadline,
        decide(engine, store, raw, now, &mut trace),
    )
    .await
    .unwrap_or(Err(Reason::Timeout));
    let (response, reason) = match result {
        Ok(grant) => {
            let response = AuthorizerResponse {
                is_authenticated: true,
                principal_id: grant.principal_id.to_string(),
                disconnect_after_in_seconds: grant.disconnect_after,
                refresh_after_in_seconds: grant.refresh_after,
                policy_documents: grant.policies,
            };
            // Last line of defence: a response outside the contract is a deny.
            match response::check_response(&response, false) {
                Ok(()) => (response, Reason::Authorized),
                Err(problem) => {
                    trace.detail = Some(format!("response rejected: {problem}"));
                    (AuthorizerResponse::deny(), Reason::InternalError)
                }
            }
        }
        Err(reason) => (AuthorizerResponse::deny(), reason),
    };
    Decision {
        response,
        reason,
        principal_id: trace.principal_id,
        serial: trace.serial,
        detail: trace.detail,
        burst: trace.burst,
    }
}

/// Decides one request and audits it, as the Lambda answers AWS IoT: the decision's audit entry is
/// written first, and an answer that cannot be audited is a deny (fail closed); then the log line;
/// then, for a burst of wrong secrets, its signal (audited and logged; the decision stands whatever
/// becomes of that write).
pub async fn authorize_and_audit<S: IdentityStore, A: crate::ports::AuditLog>(
    engine: &Authorizer,
    store: &S,
    audit: &A,
    raw: serde_json::Value,
    now: OffsetDateTime,
) -> AuthorizerResponse {
    let decision = authorize(engine, store, raw, now).await;
    let entry = decision.audit_entry();
    if let Err(e) = audit.record(&entry).await {
        let principal = entry.principal.as_deref().unwrap_or("-");
        tracing::error!(error = %e, reason = "internal_error", principal, "audit write failed; denying");
        return AuthorizerResponse::deny();
    }
    entry.log();
    if let Some(signal) = decision.signal_entry() {
        if let Err(e) = audit.record(&signal).await {
            tracing::error!(error = %e, reason = "internal_error", "signal audit write failed");
        }
        signal.log();
    }
    decision.response
}

fn has_forbidden(s: &str) -> bool {
    s.contains(render::FORBIDDEN)
}

/// A client id other than `expected`: injection when it carries metacharacters, else a mismatch.
fn check_client_id(request: &AuthorizerRequest, expected: &str) -> std::result::Result<(), Reason> {
    match request.client_id() {
        Some(c) if c != expected => Err(if has_forbidden(c) {
            Reason::WildcardInjection
        } else {
            Reason::ClientIdMismatch
        }),
        _ => Ok(()),
    }
}

async fn decide<S: IdentityStore>(
    engine: &Authorizer,
    store: &S,
    raw: serde_json::Value,
    now: OffsetDateTime,
    trace: &mut Trace,
) -> std::result::Result<Grant, Reason> {
    let request = AuthorizerRequest::parse(raw)?;
    match request.credential()? {
        Credential::Jwt(token) => {
            decide_operator(engine, store, &request, token.expose_secret(), now, trace).await
        }
        Credential::Password { username, password } => {
            decide_device(engine, store, &request, &username, password, now, trace).await
        }
        Credential::Certificate { pem, principal_id } => {
            decide_certificate(engine, store, &request, &pem, principal_id, now, trace).await
        }
    }
}

/// An X.509 custom-auth connection (custom-auth-509cert): AWS IoT authenticated the certificate at
/// the handshake; the registry says whose it is and whether it may still be used, as the handshake
/// validator does (one read). The identity is the certificate's: principal = certificate id (AWS
/// requires the answer to echo it), client id = its serial, the policy that serial's.
async fn decide_certificate<S: IdentityStore>(
    engine: &Authorizer,
    store: &S,
    request: &AuthorizerRequest,
    pem: &str,
    principal_id: Option<String>,
    now: OffsetDateTime,
    trace: &mut Trace,
) -> std::result::Result<Grant, Reason> {
    let der = crate::x509::pem_to_der(pem).map_err(|_| Reason::MalformedCertificate)?;
    let id = crate::x509::presented_certificate_id(&der, now).map_err(|e| match e.reason {
        crate::model::Reason::CertificateExpired => Reason::CertificateExpired,
        crate::model::Reason::CertificateNotYetValid => Reason::CertificateNotYetValid,
        _ => Reason::MalformedCertificate,
    })?;
    trace.principal_id = Some(id.to_string());
    if principal_id.as_deref().is_some_and(|p| p != id.as_str()) {
        return Err(Reason::CertificateIdMismatch);
    }
    let record = store
        .get_certificate(&id)
        .await
        .map_err(|e| trace.internal("get_certificate", &e))?
        .ok_or(Reason::UnknownIdentity)?;
    trace.serial = Some(record.serial.to_string());
    if record.denied {
        return Err(Reason::CertificateRevoked);
    }
    if record.held {
        return Err(Reason::CertificateHeld);
    }
    check_client_id(request, record.serial.as_str())?;
    let principal = crate::model::Principal::Certificate(id);
    let cfg = &engine.config;
    let policies = render::device_policy(&cfg.scope, &record.serial)?;
    Ok(Grant {
        principal_id: principal,
        disconnect_after: cfg.device_disconnect_after_secs,
        refresh_after: cfg.refresh_after_secs.min(cfg.device_disconnect_after_secs),
        policies,
    })
}

async fn decide_operator<S: IdentityStore>(
    engine: &Authorizer,
    store: &S,
    request: &AuthorizerRequest,
    token: &str,
    now: OffsetDateTime,
    trace: &mut Trace,
) -> std::result::Result<Grant, Reason> {
    // Keys past their max age without a successful refresh: every token is refused (keys_stale).
    let jwks = engine.keys.for_decision(now).await?;
    let verified = match jwt::verify(&jwks, &engine.rules, token, now) {
        // The IdP may have rotated keys since we fetched them: refetch (rate-limited) and retry once.
        Err(Reason::UnknownKey) => match engine.keys.refetch(now, RefetchCause::UnknownKid).await {
            Some(fresh) => jwt::verify(&fresh, &engine.rules, token, now)?,
            None => return Err(Reason::UnknownKey),
        },
        other => other?,
    };
    let principal = operator_principal(&verified.issuer, &verified.sub);
    trace.principal_id = Some(principal.to_string());
    check_client_id(request, principal.as_str())?;

    // The connection never outlives the token, and must last the minimum AWS accepts.
    let remaining = verified.expires_at.saturating_sub(now.unix_timestamp());
    let disconnect_after = remaining.min(i64::from(response::MAX_DURATION_SECS));
    if disconnect_after < i64::from(response::MIN_DURATION_SECS) {
        return Err(Reason::TokenExpiring);
    }
    let disconnect_after = u32::try_from(disconnect_after).map_err(|_| Reason::InternalError)?;

    let identity = match engine.cache.get(&principal, now) {
        Some(hit) => hit,
        None => {
            let read = store
                .get_identity(&principal)
                .await
                .map_err(|e| trace.internal("get_identity", &e))?;
            let Some(identity) = read else {
                return Err(Reason::UnknownIdentity);
            };
            let identity = Arc::new(identity);
            if matches!(
                identity.kind,
                IdentityKind::Operator {
                    status: OperatorStatus::Active,
                    ..
                }
            ) && identity.principal_id == principal
            {
                engine
                    .cache
                    .put(identity.principal_id.clone(), identity.clone(), now);
            }
            identity
        }
    };
    if identity.principal_id != principal {
        trace.detail = Some("store returned another principal".to_owned());
        return Err(Reason::InternalError);
    }
    let IdentityKind::Operator {
        serials, status, ..
    } = &identity.kind
    else {
        return Err(Reason::UnknownIdentity);
    };
    if *status != OperatorStatus::Active {
        return Err(Reason::IdentityDisabled);
    }
    let policies = render::operator_policy(&engine.config.scope, principal.as_str(), serials)?;
    Ok(Grant {
        principal_id: principal.into(),
        disconnect_after,
        refresh_after: engine.config.refresh_after_secs.min(disconnect_after),
        policies,
    })
}

async fn decide_device<S: IdentityStore>(
    engine: &Authorizer,
    store: &S,
    request: &AuthorizerRequest,
    username: &str,
    password: SecretSlice<u8>,
    now: OffsetDateTime,
    trace: &mut Trace,
) -> std::result::Result<Grant, Reason> {
    if has_forbidden(username) {
        return Err(Reason::WildcardInjection);
    }
    let serial = Serial::parse(username).map_err(|_| Reason::InvalidSerial)?;
    let principal = device_principal(&serial);
    trace.serial = Some(serial.to_string());
    trace.principal_id = Some(principal.to_string());
    check_client_id(request, serial.as_str())?;
    if password.expose_secret().len() > MAX_PASSWORD_BYTES {
        return Err(Reason::MalformedRequest);
    }

    // Never cached: a revoke or a new secret reaches the next decision.
    let read = store
        .get_identity(&principal)
        .await
        .map_err(|e| trace.internal("get_identity", &e))?;
    let cfg = &engine.config;
    // Every refusal before the check still costs one: an unknown serial and a disabled device take
    // as long as a wrong secret, so timing does not tell which serials exist.
    let refuse = |reason| {
        secret::decoy(&serial, password.expose_secret());
        Err(reason)
    };
    let Some(identity) = read else {
        return refuse(Reason::UnknownIdentity);
    };
    let IdentityKind::Device {
        serial: stored_serial,
        password_hash,
        status,
    } = &identity.kind
    else {
        return refuse(Reason::UnknownIdentity);
    };
    if identity.principal_id != principal || *stored_serial != serial {
        trace.detail = Some("store returned another identity".to_owned());
        return Err(Reason::InternalError);
    }
    if *status != DeviceStatus::Active {
        return refuse(Reason::DeviceNotActive);
    }
    // No attempt limit gates this: the right secret gets in whatever else arrives.
    let check = if secret::is_legacy(password_hash) {
        // argon2 is CPU-bound (tens of ms): off the executor, so the deadline still applies.
        let (serial, hash) = (serial.clone(), password_hash.clone());
        tokio::task::spawn_blocking(move || {
            secret::verify(&serial, password.expose_secret(), &hash)
        })
        .await
        .map_err(|_| Reason::InternalError)?
    } else {
        secret::verify(&serial, password.expose_secret(), password_hash)
    };
    match check {
        SecretCheck::Match => {}
        SecretCheck::Mismatch => {
            count_failure(store, &principal, &cfg.burst_policy(), now, trace).await;
            return Err(Reason::BadPassword);
        }
        SecretCheck::BadHash => {
            trace.detail =
                Some("stored secret is neither a digest nor an argon2id hash".to_owned());
            return Err(Reason::InternalError);
        }
    }
    let policies = render::device_policy(&cfg.scope, &serial)?;
    Ok(Grant {
        principal_id: principal.into(),
        disconnect_after: cfg.device_disconnect_after_secs,
        refresh_after: cfg.refresh_after_secs.min(cfg.device_disconnect_after_secs),
        policies,
    })
}

/// Counts a wrong secret; the count reaching the threshold is a burst (one per window). A store
/// error leaves the refusal a refusal (noted in the detail): the count gates nothing.
async fn count_failure<S: IdentityStore>(
    store: &S,
    principal: &PrincipalId,
    policy: &identity::BurstPolicy,
    now: OffsetDateTime,
    trace: &mut Trace,
) {
    let cutoff = crate::model::Timestamp::at(now - policy.window);
    match store
        .count_failure(principal, &crate::model::Timestamp::at(now), &cutoff)
        .await
    {
        Ok(Some(n)) if n == policy.threshold => trace.burst = Some(n),
        Ok(_) => {}
        Err(e) => {
            let d = format!("count_failure: {e}");
            trace.detail = Some(crate::model::truncate_utf8(&d, 256).to_owned());
        }
    }
}
