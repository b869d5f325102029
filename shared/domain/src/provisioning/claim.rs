//! Fleet provisioning by claim: the pre-provisioning hook (AWS IoT developer guide,
//! pre-provisioning-hook.html; provision-wo-cert.html).
//!
//! The device connects with its batch's claim certificate, gets a new certificate from AWS, and calls
//! RegisterThing with the template parameters `SerialNumber` and its enrollment proof (see
//! [`crate::provisioning::enrollment`]). AWS asks this hook before it creates anything. The hook allows only when:
//! the request is well formed and the certificate id is SHA-256 of the certificate; the proof parses and
//! is fresh; the client id, if any, names the serial (`claim.<serial>`); the serial is on the allow-list with proof material of
//! that kind; the claim is one the entry allows; the proof verifies for that serial and that new
//! certificate and has not been spent; and the shared validator ([`check_serial`]) allows the binding.
//! The certificate's subject is never read.
//!
//! Reads: one BatchGetItem. Writes on allow: one transaction (pending binding, proof spent, stale
//! certificate denied, audit entry). A refusal writes only its audit entry. Any error is a deny.
//! The answer is the same `{"allowProvisioning": false}` for every refusal, and an unknown serial costs
//! the same proof check as a known one, so a stranger learns nothing about which serials exist.
//!
//! # Behaviour
//!
//! A device that ships with its batch's claim certificate connects (client id `claim.<serial>`: the claim
//! policy allows nothing else, and a dot cannot be in a thing name, so a leaked claim can never connect as a
//! device and knock it off), gets a new certificate from AWS (CreateKeysAndCertificate or
//! CreateCertificateFromCsr) and calls RegisterThing on the template `<stack>-claim`. AWS asks
//! `functions/provisioning-hook` first. The certificate's subject is **never** a source of identity here: the
//! device wrote it in its CSR. The device proves who it is with what manufacturing gave it, one kind per
//! device:
//!
//! | proof | at manufacturing (`fleetctl devices import`) | the device sends in RegisterThing's `parameters` |
//! |---|---|---|
//! | factory key | the P-256 attestation public key (e.g. the secure element's birth key; the private key never leaves the chip) | `SerialNumber`, `ProofTimestamp` (Unix seconds), `ProofSignature`: base64 ECDSA-P256-SHA256 signature (DER, or raw `r‖s` as secure elements give it) over the bytes `fleetguard-enroll-v1\|<serial>\|<new certificateId>\|<ProofTimestamp>` |
//! | one-time secret | the hex SHA-256 of a random secret of ≥ 128 bits (only the hash is stored) | `SerialNumber`, `EnrollmentSecret`: the secret, base64 |
//!
//! The hook allows only when: the request is well formed and `certificateId` is SHA-256 of `certificatePem`;
//! the parameters parse (bounded; exactly one proof kind); the `clientId`, if sent, is `claim.<serial>` or
//! the serial; the statement's time is within `FLEETGUARD_PROOF_WINDOW_SECONDS` (300) of the hook's clock;
//! the serial is on the allow-list with proof material of that kind; the claim certificate is one the entry
//! allows (its batch's, if the entry names any); the signature verifies for that serial **and that new
//! certificate**, or the secret matches; the proof is unspent (a factory statement must be newer than the last
//! accepted one; a secret is spent once); and the validator JITR uses too allows the binding (not revoked or
//! quarantined, not bound to a live certificate, not deny-listed). Then it answers
//! `{"allowProvisioning": true, "parameterOverrides": {"SerialNumber": "<serial>"}}`, so the template names
//! the thing after the proven serial. Any error or a decision over 4 s of AWS's 5 s budget is a deny.
//!
//! - **Bindings that cannot brick a serial.** The hook's binding is *pending* until its certificate is seen
//!   ACTIVE. If AWS fails after the hook (template error, throttling, the device reboots before storing its
//!   certificate), the certificate never becomes active; the device simply retries with a fresh proof (a
//!   one-time secret may be presented again for exactly this): the stale certificate is deny-listed and set
//!   REVOKED, and the serial bound to the new one. A serial whose certificate is ACTIVE is never taken over
//!   this way (refused `serial_bound_to_other_certificate`, and the binding recorded as confirmed); replacing
//!   it takes an operator (`fleetctl devices approve-replacement` after a revoke). JITR shares the validator,
//!   so a device that gave up on claim provisioning can come back through JITR.
//! - **Refusals** are audited with their own code — `proof_missing`, `malformed_proof`, `proof_invalid`,
//!   `proof_replayed`, `proof_expired`, `proof_kind_mismatch`, `no_enrollment_proof`, `claim_not_allowed`,
//!   `client_id_mismatch`, `serial_not_allowed`, … — and all answer the same bare
//!   `{"allowProvisioning": false}`; an unknown serial costs the same signature check as a known one, so a
//!   stranger learns nothing about which serials exist. A refusal writes only its audit entry.
//! - **Round trips**: one BatchGetItem (device + the new certificate's deny-list entry) and, on allow, one
//!   TransactWriteItems (certificate binding, device pending + proof spent, stale certificate denied, audit
//!   entry): two, asserted in `tests/integration/claim.rs`. Replacing a stale binding adds DescribeCertificate
//!   and UpdateCertificate.
//!
//! Manufacturing CSV for `fleetctl devices import` (header row optional; empty columns allowed):
//!
//! ```csv
//! serial,attestation_key,secret_sha256,claims
//! SN0001,MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...,,
//! SN0002,,9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,c1a1...c1a1;b2b2...b2b2
//! SN0003
//! ```
//!
//! `attestation_key`: base64 (or PEM) SubjectPublicKeyInfo, or base64 of the 65-byte uncompressed point; any
//! other curve is refused. `secret_sha256`: 64 hex. `claims`: `;`-separated claim certificate ids allowed to
//! provision this device (empty: any claim of the account). A line with a malformed key, hash or claim id is
//! reported with its line number and nothing of it is written. A device without proof material (SN0003) can be
//! provisioned by JITR or given a password, never by claim. `fleetctl devices show` says which proof kind a
//! device has and whether it was used; no key, hash or secret is ever printed or logged.

use crate::model::AuditAction;
use crate::model::{AuditEntry, CertificateId, Device, Outcome, ProofKind, Reason, Serial};
use crate::ports::{AuditLog, Enrollments, IotControl, PendingBinding, ProofSpend};
use crate::provisioning::enrollment::{self, ClaimParameters, Presented, ProofError};
use crate::provisioning::jitr::{check_serial, retire_stale, SerialVerdict};
use crate::x509;
use crate::Result;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Request to a pre-provisioning hook (pre-provisioning-hook.html).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRequest {
    pub claim_certificate_id: String,
    pub certificate_id: String,
    pub certificate_pem: String,
    pub template_arn: String,
    /// The MQTT client id of the claim connection; absent when not sent.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// Response of a pre-provisioning hook. Any failure on AWS's side is ACCESS_DENIED as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookResponse {
    pub allow_provisioning: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameter_overrides: BTreeMap<String, String>,
}

impl HookResponse {
    pub fn deny() -> Self {
        Self {
            allow_provisioning: false,
            parameter_overrides: BTreeMap::new(),
        }
    }
}

/// The claim policy lets a claim certificate connect only with a client id `claim.<serial>`: a dot is
/// not allowed in a thing name, so a leaked claim can never connect as (and disconnect) a device.
pub const CLAIM_CLIENT_PREFIX: &str = "claim.";

/// Whether a claim connection's client id names `serial` (`claim.<serial>`, or the bare serial).
fn client_id_names(client_id: &str, serial: &Serial) -> bool {
    client_id.is_empty()
        || client_id
            .strip_prefix(CLAIM_CLIENT_PREFIX)
            .unwrap_or(client_id)
            == serial.as_str()
}

/// Default for `FLEETGUARD_PROOF_WINDOW_SECONDS`: how far a factory statement's time may be from ours.
pub const DEFAULT_PROOF_WINDOW_SECONDS: i64 = 300;

const ACTOR: &str = "provisioning-hook";
const ACTION: AuditAction = AuditAction::PreProvision;

/// The pre-provisioning hook over its ports.
pub struct ClaimHook<E, C, A> {
    pub enrollments: E,
    pub control: C,
    pub audit: A,
    /// Seconds a factory statement's timestamp may differ from now, either way.
    pub proof_window: i64,
    /// The quarantine thing group an approved replacement's thing leaves (as JITR's does).
    pub quarantine_group: Option<String>,
}

/// What a request came to, before it is audited.
struct Verdict {
    reason: Reason,
    detail: &'static str,
    certificate: Option<CertificateId>,
    serial: Option<Serial>,
}

impl Verdict {
    fn new(
        reason: Reason,
        detail: &'static str,
        certificate: Option<&CertificateId>,
        serial: Option<&Serial>,
    ) -> Self {
        Self {
            reason,
            detail,
            certificate: certificate.cloned(),
            serial: serial.cloned(),
        }
    }
}

impl<E: Enrollments, C: IotControl, A: AuditLog> ClaimHook<E, C, A> {
    pub fn new(enrollments: E, control: C, audit: A, proof_window: i64) -> Self {
        Self {
            enrollments,
            control,
            audit,
            proof_window,
            quarantine_group: None,
        }
    }

    pub fn with_quarantine_group(mut self, group: Option<String>) -> Self {
        self.quarantine_group = group;
        self
    }

    /// Decides one request (raw JSON: a malformed request is an audited refusal). Fails closed.
    pub async fn handle(&self, raw: serde_json::Value, now: OffsetDateTime) -> HookResponse {
        let verdict = match self.decide(raw, now).await {
            Ok(Ok(serial)) => return allow(serial),
            Ok(Err(verdict)) => verdict,
            Err(e) => {
                tracing::error!(error = %e, "pre-provisioning hook failed; denying");
                Verdict::new(Reason::InternalError, "infrastructure error", None, None)
            }
        };
        let entry = entry(Outcome::Rejected, &verdict);
        if let Err(e) = self.audit.record(&entry).await {
            tracing::error!(error = %e, "audit write failed");
        }
        entry.log();
        HookResponse::deny()
    }

    /// `Ok(Ok(serial))`: allowed, bound and audited. `Ok(Err(_))`: refused (not yet audited).
    async fn decide(
        &self,
        raw: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Serial, Verdict>> {
        let refuse = |reason, detail, cert: Option<&CertificateId>, serial: Option<&Serial>| {
            Ok(Err(Verdict::new(reason, detail, cert, serial)))
        };
        let Ok(req) = serde_json::from_value::<HookRequest>(raw) else {
            return refuse(Reason::MalformedEvent, "not a hook request", None, None);
        };
        let (Ok(cert_id), Ok(claim)) = (
            CertificateId::parse(&req.certificate_id),
            CertificateId::parse(&req.claim_certificate_id),
        ) else {
            return refuse(
                Reason::MalformedEvent,
                "certificate ids are not 64 hex",
                None,
                None,
            );
        };
        let cert = Some(&cert_id);
        match x509::issued_certificate_id(&req.certificate_pem, now) {
            Ok(id) if id == cert_id => {}
            Ok(_) => {
                return refuse(
                    Reason::CertificateIdMismatch,
                    "certificate id is not SHA-256 of its DER",
                    cert,
                    None,
                )
            }
            Err(e) => return refuse(e.reason, "certificate refused", cert, None),
        }
        let ClaimParameters { serial, proof } = match enrollment::parse_parameters(&req.parameters)
        {
            Ok(p) => p,
            Err(ProofError { reason, detail }) => return refuse(reason, detail, cert, None),
        };
        let s = Some(&serial);
        if req
            .client_id
            .as_deref()
            .is_some_and(|c| !client_id_names(c, &serial))
        {
            return refuse(
                Reason::ClientIdMismatch,
                "client id is not the serial",
                cert,
                s,
            );
        }
        if let Presented::FactoryKey { timestamp, .. } = &proof {
            if (now.unix_timestamp() - timestamp).abs() > self.proof_window {
                return refuse(
                    Reason::ProofExpired,
                    "statement time outside the window",
                    cert,
                    s,
                );
            }
        }

        let context = self.enrollments.load(&serial, &cert_id).await?;
        if context.certificate.as_ref().is_some_and(|c| c.denied) {
            return refuse(
                Reason::CertificateRevoked,
                "certificate is on the deny-list",
                cert,
                s,
            );
        }
        let Some(device) = context.device else {
            enrollment::equalize_timing(&proof);
            return refuse(
                Reason::SerialNotAllowed,
                "serial is not on the allow-list",
                cert,
                s,
            );
        };
        if !device.enrollment.claims.is_empty() && !device.enrollment.claims.contains(&claim) {
            enrollment::equalize_timing(&proof);
            return refuse(
                Reason::ClaimNotAllowed,
                "claim is not of this device's batch",
                cert,
                s,
            );
        }
        let spend = match verify(&device, &serial, &cert_id, &proof) {
            Ok(spend) => spend,
            Err(ProofError { reason, detail }) => return refuse(reason, detail, cert, s),
        };

        let replaces = match check_serial(&self.control, Some(&device), &cert_id).await? {
            SerialVerdict::Allow { replaces } => replaces,
            SerialVerdict::Refuse { reason, live } => {
                if let Some(live) = live {
                    self.enrollments.confirm(&serial, &live).await?;
                }
                return refuse(reason, "registry refused the serial", cert, s);
            }
        };
        // A one-time secret is spent once; it may be presented again only to replace the stale
        // certificate it was spent on (that provisioning failed after the hook).
        if let (ProofSpend::Secret { .. }, Some(used)) = (&spend, &device.enrollment.secret_used_by)
        {
            if replaces.as_ref() != Some(used) {
                return refuse(
                    Reason::ProofReplayed,
                    "one-time secret already spent",
                    cert,
                    s,
                );
            }
        }
        if let Some(stale) = &replaces {
            retire_stale(&self.control, stale).await?;
        }
        let binding = PendingBinding {
            serial: serial.clone(),
            certificate: cert_id.clone(),
            expected_version: device.version,
            spend,
            replaces,
        };
        let accepted = Verdict::new(
            Reason::Provisioned,
            "pending until the certificate is seen ACTIVE",
            cert,
            s,
        );
        let entry = entry(Outcome::Accepted, &accepted);
        if !self.enrollments.bind_pending(&binding, &entry).await? {
            // Another request changed the device or spent the proof between our read and write.
            return refuse(
                Reason::RegistryConflict,
                "registry changed during the decision",
                cert,
                s,
            );
        }
        entry.log();
        // An approved replacement after a revocation: the thing is no longer quarantined.
        if let (Some(group), true) = (&self.quarantine_group, device.replacement_approved) {
            self.control
                .set_group_membership(group, &serial, false)
                .await?;
        }
        Ok(Ok(serial))
    }
}

/// Verifies the presented proof against the device's material; returns what it spends.
fn verify(
    device: &Device,
    serial: &Serial,
    cert: &CertificateId,
    proof: &Presented,
) -> std::result::Result<ProofSpend, ProofError> {
    let e = &device.enrollment;
    let refused = |reason, detail| {
        // As long as a real check, so the refusal's time says nothing about the entry.
        enrollment::equalize_timing(proof);
        Err(ProofError { reason, detail })
    };
    match (e.kind(), proof) {
        (ProofKind::None, _) => refused(
            Reason::NoEnrollmentProof,
            "device has no enrollment proof material",
        ),
        (
            ProofKind::FactoryKey,
            Presented::FactoryKey {
                timestamp,
                signature,
            },
        ) => {
            let key = e.attestation_key.as_deref().unwrap_or_default();
            enrollment::verify_factory_proof(
                key,
                serial,
                cert,
                *timestamp,
                signature.expose_secret(),
            )?;
            if e.proof_last_ts.is_some_and(|last| *timestamp <= last) {
                return Err(ProofError {
                    reason: Reason::ProofReplayed,
                    detail: "statement not newer than the last one accepted",
                });
            }
            Ok(ProofSpend::FactoryKey {
                timestamp: *timestamp,
            })
        }
        (ProofKind::OneTimeSecret, Presented::Secret { secret }) => {
            let hash = e.secret_sha256.as_deref().unwrap_or_default();
            enrollment::verify_secret(hash, secret.expose_secret())?;
            Ok(ProofSpend::Secret {
                hash: hash.to_owned(),
            })
        }
        (ProofKind::FactoryKey, Presented::Secret { .. })
        | (ProofKind::OneTimeSecret, Presented::FactoryKey { .. }) => refused(
            Reason::ProofKindMismatch,
            "device enrolled with another proof kind",
        ),
    }
}

fn entry(outcome: Outcome, v: &Verdict) -> AuditEntry {
    let mut entry = AuditEntry::new(ACTOR, ACTION, outcome, v.reason).detail(v.detail);
    if let Some(c) = &v.certificate {
        entry = entry.principal(c.as_str());
    }
    if let Some(s) = &v.serial {
        entry = entry.serial(s.as_str());
    }
    entry
}

fn allow(serial: Serial) -> HookResponse {
    // The template names the thing after the proven serial, whatever the request said.
    HookResponse {
        allow_provisioning: true,
        parameter_overrides: BTreeMap::from([(
            enrollment::PARAM_SERIAL.to_owned(),
            serial.as_str().to_owned(),
        )]),
    }
}
