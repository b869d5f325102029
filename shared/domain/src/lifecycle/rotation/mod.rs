//! Certificate rotation, owned by the device's current certificate.
//!
//! 1. **Rotate**: the device publishes a CSR on `P/<serial>/certificates/rotate`; the rule forwards it
//!    with `principal()`. The principal must be the serial's current certificate, the device active, no
//!    rotation or retirement pending, the last rotation older than the rate limit; the CSR valid (see
//!    [`crate::lifecycle::csr`]) with a new key and a subject naming the serial. The fleet CA (KMS) signs a fresh
//!    certificate; the registry records it as the next certificate (with the audit entry, in one
//!    transaction); AWS IoT registers it ACTIVE with the fleet policy and the thing. The certificate
//!    goes back on `.../rotate/accepted`.
//! 2. **Confirm**: the device connects with the new certificate and publishes on
//!    `P/<serial>/certificates/confirm`: the TLS handshake proved it holds the new key. The registry
//!    binds the serial to the new certificate; the old one stays ACTIVE for a grace period.
//! 3. **Sweep** (scheduled): a rotation unconfirmed by its deadline is abandoned (its certificate cut
//!    off, the old one stays); a replaced certificate past its grace period is retired (INACTIVE,
//!    detached, deny-listed).
//!
//! Every step is idempotent: a replayed request gets the same certificate (kept in the registry), a
//! replayed confirm the same answer, a replayed sweep finds nothing left to do. An isolation
//! (revoke, quarantine) cuts off every certificate of the device, the next and previous ones included
//! (see [`crate::lifecycle::revocation`]).
//!
//! # Behaviour
//!
//! A device renews its own certificate before it expires; the fleet CA's key lives in AWS KMS and never
//! leaves it. Two functions: `rotator` (rules on `P/+/certificates/rotate` and `P/+/certificates/confirm`) and
//! `certificate-watch` (a schedule, hourly by default).
//!
//! 1. **Rotate.** The device publishes `{"csr": "<PEM>", "request_id": "..."}` on
//!    `P/<serial>/certificates/rotate`. The rule forwards `'rotate' AS action, topic(2) AS serial,
//!    principal() AS principal, clientid(), timestamp(), csr, request_id`. Refused, each with its reason on
//!    `.../rotate/rejected` and an audit entry, nothing else written: a principal that is not the serial's
//!    current certificate (`not_current_certificate`; a password device or operator: `principal_mismatch`),
//!    a device quarantined, revoked or unknown, a CSR that is malformed or over 8 KB (`malformed_csr`), not
//!    self-signed by its key (`csr_signature_invalid`), not P-256 or RSA ≥ 2048 (`csr_key_not_allowed`),
//!    carrying the current key (`csr_key_reused`), whose subject does not name the serial (`serial_mismatch`),
//!    a rotation or a retirement still pending (`rotation_in_flight`), or one sooner than
//!    `FLEETGUARD_ROTATION_MIN_INTERVAL_HOURS` (24) after the last (`rotation_rate_limited`), or one that is
//!    not due (`rotation_not_due`): a device rotates on its own only once its certificate expires within
//!    `FLEETGUARD_EXPIRY_WINDOW_DAYS` (30), earlier only after `fleetctl devices request-rotation <serial>`
//!    (which tells it on `.../rotate/required`), so a thief holding the current key cannot buy a 365-day
//!    certificate of its own and rotate the owner out. A certificate whose expiry fleetguard does not know
//!    (claim-provisioned) rotates only on request. Accepted: a new
//!    certificate built from fresh parameters (subject serialNumber and CN = the serial; the CSR's subject and
//!    extensions are never copied), `FLEETGUARD_CERT_VALIDITY_DAYS` (365), client authentication only, signed
//!    by the KMS key (`FLEETGUARD_CA_KEY_ID`) under the registered CA (`FLEETGUARD_CA_CERTIFICATE_ID`) and
//!    checked against it before use. The registry records it as the device's next certificate (one transaction,
//!    conditional on the device's version, with the certificate's record and the audit entry); then AWS IoT
//!    registers it ACTIVE with the fleet policy and the thing, and it goes back on `.../rotate/accepted`
//!    (`certificate_pem`, `certificate_id`, `not_after`, `confirm_by`). The same CSR again (a retry) gets the
//!    same certificate, kept in the registry; nothing is signed twice.
//! 2. **Confirm.** The device connects with the new certificate (same client id) and publishes on
//!    `P/<serial>/certificates/confirm`: the TLS handshake proved it holds the new key. The registry binds the
//!    serial to the new certificate; the old one stays ACTIVE for `FLEETGUARD_ROTATION_GRACE_HOURS` (24) but
//!    cannot delete (refused `not_current_certificate`, and that certificate is then cut off alone) nor send a tamper report (the
//!    revoker refuses it and revokes that replaced certificate alone). While a rotation is pending only its new certificate confirms it: the current one's
//!    confirm is answered `no_rotation` on `.../confirm/rejected`, so a device never drops its bound key on a
//!    misread `accepted`. A replayed confirm answers the same, writes nothing. The replaced key can
//!    still connect as the serial in the grace period and, only after `fleetctl devices request-rotation`,
//!    ask for a rotation again (a device that lost its new key before storing it; the lost certificate is cut
//!    off when the new one is confirmed, and a key either certificate has is refused `csr_key_reused`),
//!    but **two parties holding the serial are noticed**: the current and the replaced certificate can only
//!    connect as the same client id, so one takes the other's session and AWS IoT says so in its presence
//!    events (`DUPLICATE_CLIENTID`, `PresenceRule` → revoker). The serial is then quarantined, every
//!    certificate cut off, and the audit (`serial_shared`) names both certificates and sessions, in either
//!    order of delivery and once however often delivered (`SharedSerialAction=alert`: audit only). A device
//!    reconnecting with its own certificate, or falling back to the old one after its session ended, is no
//!    signal. Outside a grace period a presence event costs the revoker one read and no write (tested).
//! 3. **Sweep** (`certificate-watch`). A rotation unconfirmed after `FLEETGUARD_ROTATION_CONFIRM_HOURS` (24)
//!    expires: its certificate is set INACTIVE, detached and deny-listed, the old one stays. After the grace
//!    period the replaced certificate is retired the same way. AWS IoT first, then the registry, so a fault
//!    leaves the work for the next sweep.
//! 4. **Isolation mid-rotation.** A revoke or quarantine cuts off every certificate of the device: the current
//!    one, a rotation's next one and a replaced one in its grace period. A next certificate the rotator has
//!    not registered yet is registered by the revoker, cut off, so the rotator's own registration finds it
//!    taken and answers `serial_revoked` / `device_quarantined`.
//! 5. **Expiry watch** (`certificate-watch`, after the sweep): active devices whose certificate expires within
//!    `FLEETGUARD_EXPIRY_WINDOW_DAYS` (30) are nudged on `P/<serial>/certificates/rotate/required` and audited
//!    (`certificate_expiring`, once a day however often the watch runs); CA certificates expiring within
//!    `FLEETGUARD_CA_EXPIRY_WINDOW_DAYS` (90) are audited (`ca_expiring`); a summary goes to
//!    `FLEETGUARD_ALERTS_TOPIC` (`fleetguard/<stack>/alerts/certificates`). Devices are found through the
//!    registry's sparse index `by_expiry` (partition `expiry_month`, one Query per month of the window), which
//!    holds the certificates fleetguard validated at provisioning (JITR: the factory certificate) or issued;
//!    the CA's notAfter is read from its PEM.
//!    `fleetctl certificates expiring --within 30d [--ca-within 90d] [--json]` shows the same, read-only.
//!    Certificates AWS IoT issues in fleet provisioning by claim are valid until 2049-12-31 and are not tracked.
//!
//! The fleet policy (and every policy the authorizer renders) denies publishing on every reply topic and
//! anything below one (`.../rotate/accepted*|rejected*|required*`, `.../confirm/accepted*|rejected*`,
//! `.../deleterecords/*/accepted*|rejected*`), so no device can forge an answer, or a topic under one, that
//! another subscriber trusts (the policy prover checks `.../accepted/x`).

use crate::lifecycle::ca::{self, IssueRequest};
use crate::lifecycle::csr::{self, ValidCsr};
use crate::model::{
    now, AuditEntry, CertificateId, CertificateRecord, CertificateStatus, Device, DeviceStatus,
    Outcome, Reason, Rotation, Serial,
};
use crate::model::{AuditAction, Timestamp};
use crate::ports::{AuditLog, CaSigner, IotControl, Publisher, Registry, Rotations};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

mod confirm;
mod request;
mod rotate;
mod sweep;

pub use request::{due, request_rotation};
pub use sweep::{RotationSweep, SweepReport, SWEEP_LIMIT};

/// What the rotation functions need (environment, read once at cold start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationConfig {
    /// `FLEETGUARD_FLEET_POLICY`: attached to every issued certificate.
    pub fleet_policy: String,
    /// `FLEETGUARD_CERT_VALIDITY_DAYS` (default 365).
    pub validity_days: u32,
    /// `FLEETGUARD_ROTATION_CONFIRM_HOURS` (default 24): an unconfirmed rotation expires after this.
    pub confirm_hours: u32,
    /// `FLEETGUARD_ROTATION_GRACE_HOURS` (default 24): the replaced certificate stays ACTIVE this long.
    pub grace_hours: u32,
    /// `FLEETGUARD_ROTATION_MIN_INTERVAL_HOURS` (default 24): at most one rotation per device per interval.
    pub min_interval_hours: u32,
    /// `FLEETGUARD_EXPIRY_WINDOW_DAYS` (default 30): a device may rotate on its own once its
    /// certificate expires within this window; earlier only when an operator asked it to.
    pub expiry_window_days: u32,
}

impl RotationConfig {
    /// Default of `FLEETGUARD_EXPIRY_WINDOW_DAYS` (the expiry watch's device window too).
    pub const DEFAULT_EXPIRY_WINDOW_DAYS: u32 = 30;

    pub fn from_vars(v: &dyn crate::config::Vars) -> Result<Self> {
        use crate::config::{opt_u32, var};
        Ok(Self {
            fleet_policy: var(v, "FLEETGUARD_FLEET_POLICY")?,
            validity_days: opt_u32(v, "FLEETGUARD_CERT_VALIDITY_DAYS", 365)?,
            confirm_hours: opt_u32(v, "FLEETGUARD_ROTATION_CONFIRM_HOURS", 24)?,
            grace_hours: opt_u32(v, "FLEETGUARD_ROTATION_GRACE_HOURS", 24)?,
            min_interval_hours: opt_u32(v, "FLEETGUARD_ROTATION_MIN_INTERVAL_HOURS", 24)?,
            expiry_window_days: opt_u32(
                v,
                "FLEETGUARD_EXPIRY_WINDOW_DAYS",
                Self::DEFAULT_EXPIRY_WINDOW_DAYS,
            )?,
        })
    }
}

/// The event the rotation rules forward. Identity comes only from computed fields (`topic(2)`,
/// `principal()`); `action` is a literal of the rule; the payload contributes `csr` and `request_id`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RotationEvent {
    /// `rotate` or `confirm`.
    pub action: String,
    pub serial: String,
    pub principal: String,
    #[serde(default)]
    pub client_id: Option<String>,
    pub received_at: i64,
    #[serde(default)]
    pub csr: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// The largest event looked at: a CSR is under 8 KB, the rest a few hundred bytes.
pub const MAX_EVENT_BYTES: usize = 12 * 1024;
const MAX_REQUEST_ID: usize = 128;

/// The answer on `P/<serial>/certificates/<rotate|confirm>/<accepted|rejected>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationReply {
    pub outcome: Outcome,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// The issued certificate (public), on `rotate/accepted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// Confirm from a connection with the new certificate before this, or the rotation expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl RotationReply {
    /// A refusal: the reason, and the request's id when it had one.
    fn rejected(reason: Reason, request_id: Option<String>) -> Self {
        Self {
            outcome: Outcome::Rejected,
            reason,
            certificate_id: None,
            certificate_pem: None,
            not_after: None,
            confirm_by: None,
            request_id,
        }
    }
}

/// What the function returns (logs, tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationDecision {
    pub outcome: Outcome,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
}

const ACTOR: &str = "rotator";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Rotate,
    Confirm,
}

impl Step {
    fn topic(self) -> &'static str {
        match self {
            Self::Rotate => "rotate",
            Self::Confirm => "confirm",
        }
    }
    fn action(self) -> AuditAction {
        match self {
            Self::Rotate => AuditAction::RotateCertificate,
            Self::Confirm => AuditAction::ConfirmRotation,
        }
    }
}

struct Valid {
    step: Step,
    serial: Serial,
    principal: CertificateId,
    request_id: Option<String>,
    csr: Option<String>,
    /// Dedupe key and time of the audit entry (the message's): one entry per message, however often
    /// it is replayed.
    key: String,
    at: Timestamp,
}

/// The rotation use cases over their ports.
pub struct RotationService<R, W, C, S, P, A> {
    pub registry: R,
    pub rotations: W,
    pub control: C,
    pub signer: S,
    pub publisher: P,
    pub audit: A,
    pub config: RotationConfig,
    /// The fleet CA certificate (PEM) the signer's key belongs to, as registered with AWS IoT.
    pub ca_pem: String,
}

/// The certificate that asked for rotation `r`: the replaced one when it was asked in its grace
/// period, else the current one.
fn requested_by<'a>(device: &'a Device, r: &Rotation) -> Option<&'a CertificateId> {
    if r.cuts_off.is_some() {
        device.previous_certificate_id.as_ref()
    } else {
        device.certificate_id.as_ref()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Cuts a certificate of `serial` off in AWS IoT: INACTIVE (a REVOKED one stays so), detached from the
/// fleet policy and the thing. Idempotent; a certificate AWS IoT does not know is already gone. Used
/// by the sweep (a replaced certificate retires) and by a confirm (the lost certificate of a
/// rotation the replaced one asked for).
async fn cut_off_in_iot<C: IotControl>(
    control: &C,
    fleet_policy: &str,
    serial: &Serial,
    cert: &CertificateId,
) -> Result<()> {
    let Some(c) = control.describe_certificate(cert).await? else {
        return Ok(());
    };
    if c.status != CertificateStatus::Revoked && c.status != CertificateStatus::Inactive {
        crate::provisioning::jitr::set_status_unless_revoked(
            control,
            cert,
            CertificateStatus::Inactive,
        )
        .await?;
    }
    control.detach_policy(fleet_policy, &c.arn).await?;
    control.detach_thing_principal(serial, &c.arn).await
}

/// Whether `at` is at or before `now`. (A stored time that is no RFC 3339 never gets this far: the
/// item does not decode, and the invocation fails as corrupt.)
fn passed(at: &Timestamp, now: OffsetDateTime) -> bool {
    at.instant() <= now
}

impl<R, W, C, S, P, A> RotationService<R, W, C, S, P, A>
where
    R: Registry,
    W: Rotations,
    C: IotControl,
    S: CaSigner,
    P: Publisher,
    A: AuditLog,
{
    /// Handles one forwarded message. `Err` only for infrastructure failures (the rule's asynchronous
    /// invoke retries; a replay gives the same answer).
    pub async fn handle(&self, raw: serde_json::Value) -> Result<RotationDecision> {
        let address = reply_address(&raw);
        let v = match validate(raw) {
            Ok(v) => v,
            Err((reason, serial, detail)) => {
                let mut entry = AuditEntry::new(
                    ACTOR,
                    AuditAction::RotateCertificate,
                    Outcome::Rejected,
                    reason,
                )
                .detail(detail);
                if let Some(s) = serial {
                    entry = entry.serial(s.as_str());
                }
                crate::ports::record_decision(&self.audit, &entry).await?;
                // Answered on the step's reply topic when the serial and the step are valid (an
                // operator or password device asking, an oversize CSR); never on a topic built from
                // invalid parts.
                return match address {
                    Some((serial, step, request_id)) => {
                        self.answer_to(&serial, step, RotationReply::rejected(reason, request_id))
                            .await
                    }
                    None => Ok(RotationDecision {
                        outcome: Outcome::Rejected,
                        reason,
                        reply_topic: None,
                        certificate_id: None,
                    }),
                };
            }
        };
        let device = self.registry.get_device(&v.serial).await?;
        match v.step {
            Step::Rotate => self.rotate(&v, device).await,
            Step::Confirm => self.confirm(&v, device).await,
        }
    }

    async fn confirmed(&self, v: &Valid) -> Result<RotationDecision> {
        let reply = RotationReply {
            outcome: Outcome::Accepted,
            reason: Reason::RotationConfirmed,
            certificate_id: Some(v.principal.to_string()),
            certificate_pem: None,
            not_after: None,
            confirm_by: None,
            request_id: v.request_id.clone(),
        };
        self.answer(v, reply).await
    }

    fn entry(&self, v: &Valid, outcome: Outcome, reason: Reason) -> AuditEntry {
        let mut e = AuditEntry::new(ACTOR, v.step.action(), outcome, reason)
            .principal(v.principal.as_str())
            .serial(v.serial.as_str());
        e.at = v.at.clone();
        e.dedupe = Some(v.key.clone());
        e
    }

    async fn reject(&self, v: &Valid, reason: Reason, detail: &str) -> Result<RotationDecision> {
        let entry = self.entry(v, Outcome::Rejected, reason).detail(detail);
        crate::ports::record_decision(&self.audit, &entry).await?;
        self.answer(v, RotationReply::rejected(reason, v.request_id.clone()))
            .await
    }

    async fn answer(&self, v: &Valid, reply: RotationReply) -> Result<RotationDecision> {
        self.answer_to(&v.serial, v.step, reply).await
    }

    /// Publishes `reply` on the step's accepted or rejected topic of `serial`.
    async fn answer_to(
        &self,
        serial: &Serial,
        step: Step,
        reply: RotationReply,
    ) -> Result<RotationDecision> {
        let verdict = if reply.outcome == Outcome::Accepted {
            "accepted"
        } else {
            "rejected"
        };
        let topic = format!("P/{serial}/certificates/{}/{verdict}", step.topic());
        let payload = serde_json::to_value(&reply).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.publisher.publish(&topic, &payload).await?;
        Ok(RotationDecision {
            outcome: reply.outcome,
            reason: reply.reason,
            reply_topic: Some(topic),
            certificate_id: reply.certificate_id,
        })
    }
}

/// Why a device cannot take a rotation step at all, if it cannot.
fn refusal(device: Option<&Device>) -> Option<(Reason, &'static str)> {
    let Some(d) = device else {
        return Some((Reason::UnknownDevice, "serial not in the registry"));
    };
    match d.status {
        DeviceStatus::Active => None,
        DeviceStatus::Revoked => Some((Reason::SerialRevoked, "device revoked")),
        DeviceStatus::Quarantined => Some((Reason::DeviceQuarantined, "device quarantined")),
        DeviceStatus::Manufactured => Some((Reason::DeviceNotActive, "device not provisioned")),
    }
}

type Invalid = (Reason, Option<Serial>, String);

/// Where a request that does not validate is answered: its serial (from the topic, by the rule) and
/// step (a literal of the rule) when both are valid, with its `request_id` when that is short enough.
fn reply_address(raw: &serde_json::Value) -> Option<(Serial, Step, Option<String>)> {
    let field = |k: &str| raw.get(k).and_then(serde_json::Value::as_str);
    let serial = Serial::parse(field("serial")?).ok()?;
    let step = match field("action")? {
        "rotate" => Step::Rotate,
        "confirm" => Step::Confirm,
        _ => return None,
    };
    let request_id = field("request_id")
        .filter(|r| r.len() <= MAX_REQUEST_ID)
        .map(str::to_owned);
    Some((serial, step, request_id))
}

fn validate(raw: serde_json::Value) -> std::result::Result<Valid, Invalid> {
    let size = serde_json::to_vec(&raw)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err((Reason::MalformedEvent, None, "event too large".into()));
    }
    let event: RotationEvent = serde_json::from_value(raw)
        .map_err(|e| (Reason::MalformedEvent, None, format!("event: {e}")))?;
    let serial = Serial::parse(&event.serial)
        .map_err(|e| (Reason::InvalidTopic, None, format!("serial: {e}")))?;
    let step = match event.action.as_str() {
        "rotate" => Step::Rotate,
        "confirm" => Step::Confirm,
        other => {
            return Err((
                Reason::MalformedEvent,
                Some(serial),
                format!(
                    "unknown action {:?}",
                    crate::model::truncate_utf8(other, 32)
                ),
            ))
        }
    };
    // Only a certificate principal can own a certificate rotation (a password device or an operator
    // has none to rotate).
    let principal = CertificateId::parse(&event.principal).map_err(|_| {
        (
            Reason::PrincipalMismatch,
            Some(serial.clone()),
            "the principal is not a certificate".to_owned(),
        )
    })?;
    if event
        .request_id
        .as_ref()
        .is_some_and(|r| r.len() > MAX_REQUEST_ID)
    {
        return Err((
            Reason::InvalidPayload,
            Some(serial),
            "request_id longer than 128 bytes".into(),
        ));
    }
    if step == Step::Rotate && event.csr.is_none() {
        return Err((
            Reason::MalformedCsr,
            Some(serial),
            "no csr in the payload".into(),
        ));
    }
    let key = format!(
        "{}:{}:{}:{}",
        step.topic(),
        principal,
        event.received_at,
        event.request_id.as_deref().unwrap_or("-")
    );
    let at = crate::model::epoch_ms_timestamp(event.received_at).ok_or_else(|| {
        (
            Reason::MalformedEvent,
            None,
            "received_at out of range".to_owned(),
        )
    })?;
    Ok(Valid {
        step,
        serial,
        principal,
        request_id: event.request_id,
        csr: event.csr,
        key,
        at,
    })
}
