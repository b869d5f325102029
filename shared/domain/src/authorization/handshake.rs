//! Custom client certificate validation: AWS IoT calls this for every client certificate during the
//! TLS handshake on a domain configuration with `ClientCertificateConfig` (developer guide,
//! customize-client-auth), before any MQTT packet, whatever AWS itself still caches about the
//! certificate. The registry decides: a revocation or quarantine holds on the very next connection.
//!
//! Request `{connectionMetadata: {id}, principalId, serverName, clientCertificateChain: [..]}`;
//! answer `{isAuthenticated}`. AWS does not document the chain's encoding, so a PEM block or base64
//! DER is accepted for the leaf (the first element); anything else is a refusal.
//!
//! Allowed: a certificate in date whose registry entry is neither denied (revoked, replaced) nor held
//! (quarantined); or, not yet in the registry, one a registered ACTIVE fleet CA issued, because its
//! first connection is what makes AWS raise the JITR event that provisions it (JITR then checks it
//! fully). Everything else, and every error, is a refusal. One DynamoDB read per handshake; an allow
//! is reused by a warm instance for at most `cache_ttl` (default 5 s), the bound within which a
//! revocation wins. Refusals are audited; allows are logged (one per connection: the audit table is
//! for decisions that change or stop something).
//!
//! # Behaviour
//!
//! `functions/handshake-validator` is AWS IoT's *custom client certificate validation* Lambda (developer
//! guide, customize-client-auth): AWS calls it for each client certificate during the TLS handshake on the
//! stack's domain configurations (`<stack>-devices`, AWS_X509; `<stack>-x509auth`, CUSTOM_AUTH_X509). The
//! registry decides, so a revocation holds on the very next connection attempt whatever AWS still caches:
//!
//! - refused: a certificate deny-listed (revoked or replaced), held (its device quarantined), out of its
//!   validity window, malformed, or whose `principalId` names another certificate;
//! - refused: a certificate not in the registry unless a registered ACTIVE fleet CA
//!   (`FLEETGUARD_CA_CERTIFICATE_IDS`) issued it — the one case let through unprovisioned, because its first
//!   connection is what makes AWS raise the JITR event (JITR then checks it fully);
//! - every error is a refusal (`{"isAuthenticated": false}`, never a function error).
//!
//! One DynamoDB read (GetItem of the certificate's registry entry) per handshake. A warm instance reuses an
//! allow for `FLEETGUARD_HANDSHAKE_CACHE_SECONDS` (5; 0 turns it off): a revocation wins within that bound
//! (tested with a clock). The fleet CAs are described on the first unknown certificate and kept 60 s.
//! Refusals are audited (`handshake`, with the reason); allows are logged only (one per connection). AWS does
//! not document the encoding of `clientCertificateChain`: the leaf (first element) may be PEM or base64 DER.
//! Devices must connect to the domain configuration's endpoint (with SNI) for the check to apply; the
//! default `iot:Data-ATS` endpoint is not checked, and the feature is not offered in GovCloud
//! (`HandshakeValidation=disabled`).

use crate::cache::TtlCache;
use crate::model::AuditAction;
use crate::model::{AuditEntry, CertificateId, CertificateStatus, Outcome, Reason, Serial};
use crate::ports::{AuditLog, IotControl, Registry};
use crate::x509::{issued_by, pem_to_der, presented_certificate_id, MAX_PEM_LEN};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The event AWS IoT sends (every field optional here: a missing one is a refusal, not a crash).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HandshakeRequest {
    pub connection_metadata: Option<ConnectionMetadata>,
    pub principal_id: Option<String>,
    pub server_name: Option<String>,
    pub client_certificate_chain: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ConnectionMetadata {
    pub id: Option<String>,
}

/// The answer AWS IoT expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandshakeResponse {
    pub is_authenticated: bool,
}

/// Most certificates accepted in a chain: a client chain is a leaf and perhaps an intermediate or two.
pub const MAX_CHAIN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// The fleet CAs (`FLEETGUARD_CA_CERTIFICATE_IDS`): an unknown certificate passes only if one issued it.
    pub ca_ids: Vec<CertificateId>,
    /// How long a warm instance reuses an allow (`FLEETGUARD_HANDSHAKE_CACHE_SECONDS`, default 5).
    pub cache_ttl: Duration,
    /// How long the fleet CAs' descriptions are reused (60 s).
    pub ca_cache_ttl: Duration,
}

impl HandshakeConfig {
    pub fn from_vars(v: &dyn crate::config::Vars) -> crate::Result<Self> {
        use crate::config::opt_u32;
        let ca_ids = crate::config::certificate_ids(v, "FLEETGUARD_CA_CERTIFICATE_IDS")?;
        let ttl = opt_u32(v, "FLEETGUARD_HANDSHAKE_CACHE_SECONDS", 5)?;
        if ttl > 60 {
            return Err(crate::Error::Config(
                "FLEETGUARD_HANDSHAKE_CACHE_SECONDS must be at most 60".into(),
            ));
        }
        Ok(Self {
            ca_ids,
            cache_ttl: Duration::seconds(ttl.into()),
            ca_cache_ttl: Duration::seconds(60),
        })
    }
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeDecision {
    pub allowed: bool,
    pub reason: Reason,
    pub certificate_id: Option<CertificateId>,
    pub serial: Option<Serial>,
    /// Short detail for the audit and logs (never a certificate).
    pub detail: String,
}

impl HandshakeDecision {
    pub fn response(&self) -> HandshakeResponse {
        HandshakeResponse {
            is_authenticated: self.allowed,
        }
    }

    fn refuse(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            allowed: false,
            reason,
            certificate_id: None,
            serial: None,
            detail: detail.into(),
        }
    }
}

pub struct HandshakeValidator<R, C, A> {
    pub registry: R,
    pub control: C,
    pub audit: A,
    config: HandshakeConfig,
    allows: TtlCache<CertificateId, Option<Serial>>,
    cas: TtlCache<(), Vec<String>>,
}

/// The leaf certificate's DER: a PEM block, or base64 of the DER.
pub fn leaf_der(text: &str) -> Result<Vec<u8>, crate::x509::CertError> {
    let malformed = |d: &str| crate::x509::CertError {
        reason: Reason::MalformedCertificate,
        detail: d.to_owned(),
    };
    if text.len() > MAX_PEM_LEN {
        return Err(malformed("certificate too large"));
    }
    let trimmed = text.trim();
    if trimmed.starts_with("-----BEGIN") {
        return pem_to_der(trimmed);
    }
    base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .map_err(|_| malformed("neither PEM nor base64 DER"))
}

impl<R: Registry, C: IotControl, A: AuditLog> HandshakeValidator<R, C, A> {
    pub fn new(registry: R, control: C, audit: A, config: HandshakeConfig) -> Self {
        Self {
            registry,
            control,
            audit,
            allows: TtlCache::new(config.cache_ttl, 10_000),
            cas: TtlCache::new(config.ca_cache_ttl, 1),
            config,
        }
    }

    /// Decides and records one handshake. Never fails: any error is a refusal.
    pub async fn handle(&self, raw: serde_json::Value, now: OffsetDateTime) -> HandshakeDecision {
        let decision = match serde_json::from_value::<HandshakeRequest>(raw) {
            Ok(request) => self.decide(&request, now).await.unwrap_or_else(|e| {
                HandshakeDecision::refuse(Reason::InternalError, e.to_string())
            }),
            Err(_) => HandshakeDecision::refuse(Reason::MalformedEvent, "not a handshake event"),
        };
        let outcome = if decision.allowed {
            Outcome::Accepted
        } else {
            Outcome::Rejected
        };
        let mut entry = AuditEntry::new(
            "handshake",
            AuditAction::Handshake,
            outcome,
            decision.reason,
        )
        .detail(decision.detail.clone());
        if let Some(c) = &decision.certificate_id {
            entry = entry.principal(c.as_str());
        }
        if let Some(s) = &decision.serial {
            entry = entry.serial(s.as_str());
        }
        entry.log();
        if decision.allowed {
            // Allows are the hot path of every TLS handshake: logged, not audited.
            return decision;
        }
        if let Err(e) = self.audit.record(&entry).await {
            // Already a refusal: nothing to fail closed on, but say so.
            tracing::error!(error = %e, "handshake refusal not audited");
        }
        decision
    }

    async fn decide(
        &self,
        request: &HandshakeRequest,
        now: OffsetDateTime,
    ) -> crate::Result<HandshakeDecision> {
        let chain = &request.client_certificate_chain;
        let Some(leaf) = chain.first() else {
            return Ok(HandshakeDecision::refuse(
                Reason::MalformedEvent,
                "no client certificate",
            ));
        };
        if chain.len() > MAX_CHAIN {
            return Ok(HandshakeDecision::refuse(
                Reason::MalformedEvent,
                "chain too long",
            ));
        }
        let checked = leaf_der(leaf).and_then(|der| {
            let id = presented_certificate_id(&der, now)?;
            Ok((der, id))
        });
        let (der, id) = match checked {
            Ok(x) => x,
            Err(e) => return Ok(HandshakeDecision::refuse(e.reason, e.detail)),
        };
        let decided = |allowed, reason, serial: Option<Serial>, detail: &str| HandshakeDecision {
            allowed,
            reason,
            certificate_id: Some(id.clone()),
            serial,
            detail: detail.to_owned(),
        };
        // AWS's principal for an X.509 client is the certificate id: if it names another, refuse.
        if let Some(p) = request.principal_id.as_deref() {
            if CertificateId::parse(p).is_ok_and(|p| p != id) {
                return Ok(decided(
                    false,
                    Reason::CertificateIdMismatch,
                    None,
                    "principalId is not the presented certificate's id",
                ));
            }
        }
        if let Some(serial) = self.allows.get(&id, now) {
            return Ok(decided(true, Reason::HandshakeAllowed, serial, "cached"));
        }
        match self.registry.get_certificate(&id).await? {
            Some(rec) if rec.denied => Ok(decided(
                false,
                Reason::CertificateRevoked,
                Some(rec.serial),
                "certificate is deny-listed",
            )),
            Some(rec) if rec.held => Ok(decided(
                false,
                Reason::CertificateHeld,
                Some(rec.serial),
                "its device is quarantined",
            )),
            Some(rec) => {
                self.allows.put(id.clone(), Some(rec.serial.clone()), now);
                Ok(decided(
                    true,
                    Reason::HandshakeAllowed,
                    Some(rec.serial),
                    "",
                ))
            }
            None => {
                // Not provisioned yet: only a fleet CA's certificate, so that JITR can provision it.
                let mut last = None;
                for ca in self.fleet_cas(now).await? {
                    match issued_by(&der, &ca, now) {
                        Ok(()) => {
                            return Ok(decided(
                                true,
                                Reason::FirstConnect,
                                None,
                                "issued by a fleet CA; JITR decides",
                            ))
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let detail = last.map_or_else(
                    || "no ACTIVE fleet CA is configured".to_owned(),
                    |e| e.detail,
                );
                Ok(decided(false, Reason::NotSignedByCa, None, &detail))
            }
        }
    }

    /// The PEMs of the ACTIVE fleet CAs, described at most once per `ca_cache_ttl`.
    async fn fleet_cas(&self, now: OffsetDateTime) -> crate::Result<Vec<String>> {
        if let Some(pems) = self.cas.get(&(), now) {
            return Ok(pems);
        }
        let mut pems = Vec::new();
        for id in &self.config.ca_ids {
            if let Some(ca) = self.control.describe_ca_certificate(id).await? {
                if ca.status == CertificateStatus::Active {
                    pems.push(ca.pem);
                }
            }
        }
        self.cas.put((), pems.clone(), now);
        Ok(pems)
    }
}
