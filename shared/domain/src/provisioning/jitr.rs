//! Just-in-time provisioning (JITR), and the validator it shares with fleet provisioning by claim
//! ([`crate::provisioning::claim`]): everything after the proof (allow-list, deny-list, state, binding).
//!
//! JITR ordering: every step checks current state first, and the certificate is activated LAST, so a
//! crash or throttle anywhere leaves an inactive certificate that a replay of the same event finishes.
//! A device can never be active without its thing, policy and registry mapping.
//!
//! # Behaviour
//!
//! An IoT rule on `$aws/events/certificates/registered/<caCertificateId>` invokes `functions/provisioner`. For
//! a PENDING_ACTIVATION certificate it: checks the deny-list; checks the CA is registered and ACTIVE; parses the
//! certificate and verifies its signature with the CA key (the emulator does not), its validity window and that
//! its id is SHA-256 of its DER; takes the serial from the subject `serialNumber` (else CN); checks the serial
//! is on the manufacturing allow-list, not revoked or quarantined, and not bound to another active certificate.
//! Then it creates the thing (name = serial), attaches the one fleet policy and the thing principal, binds
//! certificate → serial in one conditional transaction (recording the certificate's expiry, for the expiry
//! watch, and its key, which a rotation must change), and **activates the certificate last**. A refused
//! certificate is set REVOKED (or INACTIVE: `FLEETGUARD_REFUSED_CERT_STATUS`) so it stops re-firing. Every
//! decision is audited with a reason code. A crash or throttle at any step leaves an inactive certificate; the
//! retried event finishes the job, and the event's audit entry is written exactly once (keyed by the event). An
//! INACTIVE certificate (possibly quarantined) is never re-activated by a replayed event. A warm instance reuses
//! an ACTIVE CA's description for `FLEETGUARD_CA_CACHE_SECONDS` (default 60; 0 turns it off): AWS raises JITR
//! only for an ACTIVE CA with auto-registration on, so the cache admits nothing AWS had not registered.

use crate::model::AuditAction;
use crate::model::{
    AuditEntry, CertificateId, CertificateStatus, Device, DeviceStatus, Outcome, Reason,
};
use crate::ports::IotCertificate;
use crate::ports::{AuditLog, IotControl, Registry};
use crate::x509::{self, CertError};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The JITR registration event, as published on `$aws/events/certificates/registered/<caCertificateId>`
/// (AWS IoT developer guide, auto-register-device-cert).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JitrEvent {
    pub certificate_id: String,
    pub ca_certificate_id: String,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub certificate_status: Option<String>,
    #[serde(default)]
    pub aws_account_id: Option<String>,
    #[serde(default)]
    pub certificate_registration_timestamp: Option<serde_json::Value>,
}

/// What a provisioning attempt came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
}

const ACTOR: &str = "provisioner";
const ACTION: AuditAction = AuditAction::Provision;

/// The provisioning service over its ports.
pub struct Provisioner<R, C, A> {
    pub registry: R,
    pub control: C,
    pub audit: A,
    pub fleet_policy: String,
    /// Status given to a refused certificate so it stops re-firing JITR (REVOKED or INACTIVE).
    pub refused_status: CertificateStatus,
    /// How long an ACTIVE CA's description is reused by this instance (0: looked up every time).
    pub ca_cache_ttl: Duration,
    ca_cache: Mutex<HashMap<CertificateId, (Instant, IotCertificate)>>,
    /// The revoker's quarantine thing group: a serial's approved replacement leaves it.
    pub quarantine_group: Option<String>,
    /// The device CAs this stack provisions for (empty: any registered CA). Another CA's event is
    /// refused `ca_unknown` without a lookup: the role may describe only these.
    pub trusted_cas: Vec<CertificateId>,
}

/// Default for `FLEETGUARD_CA_CACHE_SECONDS`.
pub const DEFAULT_CA_CACHE: Duration = Duration::from_secs(60);

impl<R, C, A> Provisioner<R, C, A> {
    pub fn new(
        registry: R,
        control: C,
        audit: A,
        fleet_policy: String,
        refused_status: CertificateStatus,
    ) -> Self {
        Self {
            registry,
            control,
            audit,
            fleet_policy,
            refused_status,
            ca_cache_ttl: DEFAULT_CA_CACHE,
            ca_cache: Mutex::default(),
            quarantine_group: None,
            trusted_cas: Vec::new(),
        }
    }

    pub fn with_trusted_cas(mut self, cas: Vec<CertificateId>) -> Self {
        self.trusted_cas = cas;
        self
    }

    pub fn with_quarantine_group(mut self, group: Option<String>) -> Self {
        self.quarantine_group = group;
        self
    }

    pub fn with_ca_cache(mut self, ttl: Duration) -> Self {
        self.ca_cache_ttl = ttl;
        self
    }
}

impl<R: Registry, C: IotControl, A: AuditLog> Provisioner<R, C, A> {
    /// Handles one JITR event (raw JSON, so a malformed event is a decision, not a runtime error).
    /// `Err` only for infrastructure failures: the Lambda then fails and AWS retries the event.
    pub async fn handle(&self, raw: serde_json::Value, now: OffsetDateTime) -> Result<Decision> {
        let event: JitrEvent = match serde_json::from_value(raw) {
            Ok(e) => e,
            Err(e) => {
                return self
                    .finish(
                        None,
                        None,
                        Outcome::Rejected,
                        Reason::MalformedEvent,
                        e.to_string(),
                    )
                    .await
            }
        };
        let (cert_id, ca_id) = match (
            CertificateId::parse(&event.certificate_id),
            CertificateId::parse(&event.ca_certificate_id),
        ) {
            (Ok(c), Ok(a)) => (c, a),
            _ => {
                return self
                    .finish(
                        None,
                        None,
                        Outcome::Rejected,
                        Reason::MalformedEvent,
                        "certificateId or caCertificateId is not 64 hex",
                    )
                    .await
            }
        };

        // One audit entry per registration event, however often it is retried.
        let ev = EventKey {
            cert_id: cert_id.clone(),
            at: event.timestamp.and_then(crate::model::epoch_ms_timestamp),
        };

        let Some(cert) = self.control.describe_certificate(&cert_id).await? else {
            return self
                .finish(
                    Some(&ev),
                    None,
                    Outcome::Rejected,
                    Reason::CertificateNotFound,
                    "no such certificate",
                )
                .await;
        };
        match cert.status {
            CertificateStatus::PendingActivation | CertificateStatus::Active => {}
            // INACTIVE may be a quarantine: a replayed registration event must never undo it.
            other => {
                return self
                    .finish(
                        Some(&ev),
                        None,
                        Outcome::Noop,
                        Reason::CertificateNotPending,
                        other.as_str(),
                    )
                    .await
            }
        }

        // The deny-list wins over everything, including a valid chain.
        if let Some(record) = self.registry.get_certificate(&cert_id).await? {
            if record.denied {
                return self
                    .refuse(
                        &ev,
                        Some(record.serial.as_str()),
                        Reason::CertificateRevoked,
                        "certificate is on the deny-list",
                    )
                    .await;
            }
        }

        if !self.trusted_cas.is_empty() && !self.trusted_cas.contains(&ca_id) {
            return self
                .refuse(
                    &ev,
                    None,
                    Reason::CaUnknown,
                    "CA is not the stack's device CA",
                )
                .await;
        }
        let ca = match self.ca(&ca_id).await? {
            Some(ca) if ca.status == CertificateStatus::Active => ca,
            Some(_) => {
                return self
                    .refuse(&ev, None, Reason::CaInactive, "CA is not ACTIVE")
                    .await
            }
            None => {
                return self
                    .refuse(&ev, None, Reason::CaUnknown, "CA is not registered")
                    .await
            }
        };

        let device_cert = match x509::validate_device_certificate(&cert.pem, &ca.pem, now) {
            Ok(d) => d,
            Err(CertError { reason, detail }) => {
                return self.refuse(&ev, None, reason, detail).await
            }
        };
        // The id AWS gave the certificate must be the hash of what we validated (principal() relies on it).
        if device_cert.id != cert_id {
            return self
                .refuse(
                    &ev,
                    None,
                    Reason::CertificateIdMismatch,
                    "certificate id is not SHA-256 of its DER",
                )
                .await;
        }
        let serial = device_cert.serial;

        let device = self.registry.get_device(&serial).await?;
        let replaces = match check_serial(&self.control, device.as_ref(), &cert_id).await? {
            SerialVerdict::Allow { replaces } => replaces,
            SerialVerdict::Refuse { reason, live } => {
                if let Some(live) = live {
                    self.registry.confirm_binding(&serial, &live).await?;
                }
                return self
                    .refuse(
                        &ev,
                        Some(serial.as_str()),
                        reason,
                        "registry refused the serial",
                    )
                    .await;
            }
        };
        if cert.status == CertificateStatus::Active {
            // Activated earlier by us: everything before activation already succeeded. A retry of the
            // same event re-records its acceptance (written only if a fault lost it after activation).
            let (outcome, reason) = match ev.at {
                Some(_) => (Outcome::Accepted, Reason::Provisioned),
                None => (Outcome::Noop, Reason::AlreadyProvisioned),
            };
            let entry = self
                .record(
                    Some(&ev),
                    Some(serial.as_str()),
                    outcome,
                    reason,
                    "certificate already active",
                )
                .await?;
            return Ok(decision(&entry, Outcome::Noop, Reason::AlreadyProvisioned));
        }

        // Accept. Each call is idempotent; the order matters: activation comes last.
        if let Some(stale) = &replaces {
            retire_stale(&self.control, stale).await?;
        }
        self.control.ensure_thing(&serial).await?;
        self.control
            .attach_policy(&self.fleet_policy, &cert.arn)
            .await?;
        self.control
            .attach_thing_principal(&serial, &cert.arn)
            .await?;
        // An approved replacement after a revocation: the thing is no longer quarantined.
        if let (Some(group), Some(d)) = (&self.quarantine_group, &device) {
            if d.replacement_approved {
                self.control
                    .set_group_membership(group, &serial, false)
                    .await?;
            }
        }
        match self
            .registry
            .bind_certificate(
                &serial,
                &cert_id,
                replaces.as_ref(),
                x509::certificate_facts(&cert.pem).ok().as_ref(),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_condition_failed() => {
                // Lost a race: another certificate bound the serial, or the serial was revoked or
                // quarantined, between our read and our write. The loser's certificate leaves the
                // thing and the policy it was given above, so the serial keeps one principal.
                let decision = self
                    .refuse(
                        &ev,
                        Some(serial.as_str()),
                        Reason::RegistryConflict,
                        "registry changed during provisioning",
                    )
                    .await?;
                self.control
                    .detach_policy(&self.fleet_policy, &cert.arn)
                    .await?;
                self.control
                    .detach_thing_principal(&serial, &cert.arn)
                    .await?;
                return Ok(decision);
            }
            Err(e) => return Err(e),
        }
        if !set_status_unless_revoked(&self.control, &cert_id, CertificateStatus::Active).await? {
            // Revoked after our bind and before our activation: the revocation stands.
            return self
                .finish(
                    Some(&ev),
                    Some(serial.as_str()),
                    Outcome::Rejected,
                    Reason::SerialRevoked,
                    "revoked during provisioning",
                )
                .await;
        }
        // A quarantine between our bind and our activation set the certificate INACTIVE before we set
        // it ACTIVE (AWS has no conditional status update). One read after activation sees it and
        // puts the certificate back where the quarantine left it. Provisioning runs once per device,
        // so the read costs nothing that matters.
        let now_bound = self.registry.get_device(&serial).await?;
        let isolated = match now_bound {
            Some(d) if d.certificate_id.as_ref() == Some(&cert_id) => match d.status {
                DeviceStatus::Quarantined => {
                    Some((Reason::DeviceQuarantined, CertificateStatus::Inactive))
                }
                DeviceStatus::Revoked => Some((Reason::SerialRevoked, CertificateStatus::Revoked)),
                _ => None,
            },
            _ => None,
        };
        if let Some((reason, status)) = isolated {
            set_status_unless_revoked(&self.control, &cert_id, status).await?;
            return self
                .finish(
                    Some(&ev),
                    Some(serial.as_str()),
                    Outcome::Rejected,
                    reason,
                    "isolated during provisioning",
                )
                .await;
        }
        self.finish(
            Some(&ev),
            Some(serial.as_str()),
            Outcome::Accepted,
            Reason::Provisioned,
            "thing, policy, mapping and activation done",
        )
        .await
    }

    /// The CA's description, reused while fresh. A fleet's events name a handful of CAs, so this saves
    /// a control-plane call on almost every provisioning. Only ACTIVE descriptions are kept (a refusal
    /// is always looked up again), and AWS raises JITR only for an ACTIVE CA with auto-registration on,
    /// so a minute of staleness after a CA is deactivated admits nothing AWS had not already registered.
    async fn ca(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        if let Some((at, ca)) = self.cache().get(id) {
            if at.elapsed() < self.ca_cache_ttl {
                return Ok(Some(ca.clone()));
            }
        }
        let ca = self.control.describe_ca_certificate(id).await?;
        match &ca {
            Some(c) if c.status == CertificateStatus::Active && !self.ca_cache_ttl.is_zero() => {
                self.cache().insert(id.clone(), (Instant::now(), c.clone()));
            }
            _ => {
                self.cache().remove(id);
            }
        }
        Ok(ca)
    }

    fn cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<CertificateId, (Instant, IotCertificate)>> {
        // A poisoned lock only means another invocation panicked mid-insert: the map is still valid.
        self.ca_cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn refuse(
        &self,
        ev: &EventKey,
        serial: Option<&str>,
        reason: Reason,
        detail: impl Into<String>,
    ) -> Result<Decision> {
        // Audit first: a retry after a failed status change re-derives the same refusal and its
        // entry is written once, whereas a lost entry after REVOKED could never be written again.
        let entry = self
            .record(Some(ev), serial, Outcome::Rejected, reason, detail)
            .await?;
        // Stop the certificate from re-firing JITR on every connect attempt. REVOKED is final on AWS
        // (a revocation that got there first is as good).
        set_status_unless_revoked(&self.control, &ev.cert_id, self.refused_status).await?;
        Ok(decision(&entry, entry.outcome, entry.reason))
    }

    async fn finish(
        &self,
        ev: Option<&EventKey>,
        serial: Option<&str>,
        outcome: Outcome,
        reason: Reason,
        detail: impl Into<String>,
    ) -> Result<Decision> {
        let entry = self.record(ev, serial, outcome, reason, detail).await?;
        Ok(decision(&entry, outcome, reason))
    }

    async fn record(
        &self,
        ev: Option<&EventKey>,
        serial: Option<&str>,
        outcome: Outcome,
        reason: Reason,
        detail: impl Into<String>,
    ) -> Result<AuditEntry> {
        let mut entry = AuditEntry::new(ACTOR, ACTION, outcome, reason).detail(detail);
        if let Some(ev) = ev {
            entry = entry.principal(ev.cert_id.as_str());
            if let Some(at) = &ev.at {
                entry.at = at.clone();
                entry.dedupe = Some(format!("jitr:{}", ev.cert_id.as_str()));
            }
        }
        if let Some(s) = serial {
            entry = entry.serial(s);
        }
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(entry)
    }
}

/// The registration event's identity: its certificate and, when the event carries one, its time.
struct EventKey {
    cert_id: CertificateId,
    at: Option<crate::model::Timestamp>,
}

fn decision(entry: &AuditEntry, outcome: Outcome, reason: Reason) -> Decision {
    Decision {
        outcome,
        reason,
        serial: entry.serial.clone(),
        certificate_id: entry.principal.clone(),
    }
}

/// The registry's verdict on binding a serial to a certificate, once the flow has checked its own proof
/// (JITR: the CA's signature; claim: the factory key or one-time secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialVerdict {
    /// Bind; `replaces` is a stale pending certificate (never became ACTIVE) to deny and revoke.
    Allow { replaces: Option<CertificateId> },
    /// Refuse; `live` is a pending certificate just seen ACTIVE (the caller records that).
    Refuse {
        reason: Reason,
        live: Option<CertificateId>,
    },
}

fn refuse(reason: Reason) -> SerialVerdict {
    SerialVerdict::Refuse { reason, live: None }
}

/// The one validator after the proof, shared by JITR and the pre-provisioning hook: allow-list, state,
/// and the binding. A serial bound, pending, to a certificate that never became ACTIVE can be taken by a
/// new proven certificate; a serial whose certificate is live never can (without an operator's approval).
pub async fn check_serial<C: IotControl>(
    control: &C,
    device: Option<&Device>,
    cert_id: &CertificateId,
) -> Result<SerialVerdict> {
    let Some(device) = device else {
        return Ok(refuse(Reason::SerialNotAllowed));
    };
    let bound_to_other = device.certificate_id.as_ref().filter(|c| *c != cert_id);
    Ok(match device.status {
        DeviceStatus::Revoked if !device.replacement_approved => refuse(Reason::SerialRevoked),
        DeviceStatus::Quarantined => refuse(Reason::DeviceQuarantined),
        DeviceStatus::Revoked | DeviceStatus::Manufactured => {
            SerialVerdict::Allow { replaces: None }
        }
        DeviceStatus::Active => match bound_to_other {
            None => SerialVerdict::Allow { replaces: None },
            Some(_) if device.replacement_approved => SerialVerdict::Allow { replaces: None },
            Some(other) if device.binding_pending => {
                let live = control
                    .describe_certificate(other)
                    .await?
                    .is_some_and(|c| c.status == CertificateStatus::Active);
                if live {
                    SerialVerdict::Refuse {
                        reason: Reason::SerialBoundToOtherCertificate,
                        live: Some(other.clone()),
                    }
                } else {
                    SerialVerdict::Allow {
                        replaces: Some(other.clone()),
                    }
                }
            }
            Some(_) => refuse(Reason::SerialBoundToOtherCertificate),
        },
    })
}

/// Makes a replaced stale certificate unusable at AWS too (REVOKED is final there), so a provisioning
/// that was still in flight for it can never activate it. A certificate AWS never created is done.
pub async fn retire_stale<C: IotControl>(control: &C, stale: &CertificateId) -> Result<()> {
    match control.describe_certificate(stale).await? {
        Some(c) if c.status != CertificateStatus::Revoked => {
            control
                .set_certificate_status(stale, CertificateStatus::Revoked)
                .await
        }
        _ => Ok(()),
    }
}

/// Sets `cert` to `wanted` unless a revocation made it REVOKED first. AWS refuses every change out of
/// REVOKED, so a writer that lost that race gets an error it cannot retry its way out of: `Ok(false)`
/// tells it to answer from the revocation instead. Any other failure is returned as it came. The
/// describe is made only after a failed update, never on the uncontended path.
pub async fn set_status_unless_revoked<C: IotControl>(
    control: &C,
    cert: &CertificateId,
    wanted: CertificateStatus,
) -> Result<bool> {
    match control.set_certificate_status(cert, wanted).await {
        Ok(()) => Ok(true),
        Err(e) => match control.describe_certificate(cert).await {
            Ok(Some(c)) if c.status == CertificateStatus::Revoked => Ok(false),
            _ => Err(e),
        },
    }
}
