//! Revocation: stop a compromised device now, keep it out, and undo what it did.
//!
//! Triggers (one Lambda, the event's shape tells which): an operator command, a Device Defender Detect
//! violation delivered by SNS, a tamper report from the device's own topic, and the tripwire's signals:
//! the delete-record handler's cross-serial security events and AWS IoT's presence events of a device
//! disconnected for acting outside its policy (`AUTH_ERROR`), and of two certificates of one serial
//! taking its session from each other in a rotation's grace period (see `presence`).
//!
//! Every step checks or tolerates current state, so a replay or a retry after a partial failure
//! converges. Order for revoke/quarantine: registry first (the delete-record transaction checks it, so
//! deletes stop at once), then the certificate status and a forced disconnect (what stops the device on
//! AWS, where policy changes take minutes to propagate), then policy/principal detachment and the
//! quarantine group.
//!
//! # Behaviour
//!
//! `functions/revoker` takes six triggers, told apart by the event's shape: an operator command
//! (`{action: revoke|quarantine|release, serial|certificate_id|principal, reason, compromised_since, rollback}`,
//! direct invoke or `fleetctl`; `principal` is any principal: a certificate id, a password device's `dv…` or
//! an operator's `op…`), a Device Defender Detect violation in an SNS envelope (`in-alarm` → quarantine, or
//! revoke with `FLEETGUARD_DEFENDER_ACTION=revoke`; `alarm-cleared`/`alarm-invalidated` → audit only, never an
//! automatic release), a tamper report from `P/<serial>/tamper` (accepted only from that device's current
//! certificate: a replaced one in its grace period is refused `not_current_certificate`, quarantines
//! nothing, and its use cuts that replaced certificate off alone, REVOKED), and the tripwire's signals: delete-record's cross-serial security events and AWS IoT's
//! presence events of a device it disconnected for acting outside its policy (`AuthorizationFailureRule`:
//! `disconnectReason` `AUTH_ERROR`; a device reaching for another serial's topic is refused by the broker
//! before any rule sees the message, and only AWS IoT publishes on `$aws/events/`; MQTT 5 clients are
//! refused in the PUBACK and stay connected, so they raise no such event) (quarantine after
//! `FLEETGUARD_VIOLATION_THRESHOLD` attempts, default 1, within `FLEETGUARD_VIOLATION_WINDOW_MINUTES`, default 60,
//! counted back from the message's own time), and AWS IoT's presence events of every session
//! (`PresenceRule`: two certificates of one serial taking its session from each other in a rotation's grace
//! period quarantine it, `serial_shared`; see the rotation module (`crate::lifecycle::rotation`)). **Topics carry signals, never commands**: every rule that
//! reaches the revoker names the fields it forwards and sets `trigger` itself (a template test holds them
//! to it), and an event with a `trigger` is never read as an operator command, so nothing published on
//! any topic can release, revoke or roll back; commands come only from `fleetctl` or a direct invoke. A
//! cross-serial security event is acted on only if delete-record's refusal it reports is in the audit log
//! (a consistent read of that entry: serial, time, request key, principal, record); a forged one changes
//! nothing and is audited `unverified_signal`. A redelivered trigger counts once: the tripwire's signal is
//! keyed by the message (its `received_at` and request key, or the session's id) and a Defender alarm's by its `violationId` and
//! `violationEventTime`, never by the clock.
//!
//! - **revoke**: registry `revoked` (the delete-record transaction sees it at once), certificate on the
//!   deny-list, certificate REVOKED (final: nothing in fleetguard re-activates it), live session cut with the
//!   data plane's DeleteConnection, fleet policy and thing principal detached, thing added to the quarantine
//!   group (`FLEETGUARD_QUARANTINE_GROUP`). Certificate status and the forced disconnect come before policy
//!   detachment because AWS caches policies for minutes.
//! - **quarantine**: the same isolation with the certificate INACTIVE and *held* in the registry (the
//!   handshake validator refuses it) and no deny-list entry; reversible by **release** (never applicable to a
//!   revoked device).
//! - **Password devices**: the same commands by serial; the password identity follows the device's status
//!   (revoked: refused at the next connect, for good), and the session (client id = serial) is cut.
//! - **Operators**: `fleetctl operators revoke --issuer I --subject S [--since T] [--rollback]` (status
//!   `revoked`: only a deliberate `operators add` re-enrols them), `operators disable` (a quarantine) and
//!   `operators enable` (a release). Each cuts the live session (client id = the operator's principal id)
//!   with DeleteConnection; their deletes are refused from the status change on (the delete transaction
//!   checks it). No authorizer instance admits them again: operators are not cached by default (with
//!   `FLEETGUARD_AUTH_CACHE_SECONDS` set, at most that many seconds, and such a session can delete nothing).
//! - **A certificate of no device** that AWS IoT knows (a batch's claim certificate), revoked by its id, is
//!   set REVOKED and audited; quarantine or release of one is `unknown_device`.
//! - **A replaced certificate** (revoked by certificate id after the serial got a new one) is denied, set
//!   REVOKED and detached alone, and its deletes can be rolled back; the serial's current certificate and
//!   device stay live (the serial's session is cut in case the old key is the one connected; the device
//!   reconnects). A replacement provisioned after `approve-replacement` takes the thing out of the
//!   quarantine group.
//! - **rollback** (with revoke/quarantine): one path for every kind of principal. By certificate id or
//!   principal id (`dv…`, `op…`) it restores the records soft-deleted by exactly that principal at or after
//!   `compromised_since`. By serial it restores the deletes of every identity the serial has had: each
//!   certificate and the password principal its audit trail shows acting as it (provisioned, rotated to,
//!   deleting its records; never an operator, never another serial's certificate), so a thief who rotated
//!   the stolen key cannot hide its first deletes behind the rotation (tested: deletes before and after a
//!   rotation, both restored). Other principals' deletes are never touched. Default window:
//!   `FLEETGUARD_ROLLBACK_LOOKBACK_HOURS` (24) before the first security signal (cross-serial attempt,
//!   authorization failure, tamper report, Defender alarm) recorded against any of those identities since it
//!   was last admitted (provisioned, released, enabled), or before now if there is none — and never before
//!   its last release: a false alarm released in January does not widen June's rollback (tested). The
//!   candidates come from a consistent Query of the records table per serial the principal could act on (a
//!   device: its serial; an operator: its granted serials and any serial the audit log shows it deleted on),
//!   not from the audit log's `by_principal` index, which DynamoDB keeps only eventually consistent: a delete
//!   committed a moment before the revoke is still rolled back (tested with an index that has seen nothing).
//!   Restores go in transactions of 50 (each conditional on the record being still deleted by that principal
//!   at the version read, with its audit entry). A rollback that restores nothing says so: `rollback:
//!   "nothing_to_roll_back"`, with why in the audit entry, never a silent success.
//! - Every step checks or tolerates current state, so a replay or a retry after a partial failure converges.
//! - `fleetctl devices approve-replacement <serial>` lets a revoked serial be provisioned once more with a new
//!   certificate; the old certificate stays denied.

use crate::model::{AuditAction, PrincipalId, Timestamp};
use crate::model::{
    AuditEntry, CertificateId, CertificateStatus, Device, DeviceStatus, Outcome, Principal, Reason,
    Serial,
};
use crate::ports::{AuditLog, AuthorizerPrincipal, Connections, IotControl, Records, Registry};
use crate::provisioning::jitr::set_status_unless_revoked;
use crate::records::delete::SecurityEvent;
use crate::Result;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

mod isolation;
mod rollback;
mod signals;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Revoke,
    Quarantine,
    Release,
}

/// Operator command (direct invoke or `fleetctl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub action: Action,
    #[serde(default)]
    pub serial: Option<Serial>,
    #[serde(default)]
    pub certificate_id: Option<CertificateId>,
    /// Any principal: a certificate id, a password device's or an operator's principal id (`dv…`, `op…`).
    #[serde(default)]
    pub principal: Option<Principal>,
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339; deletes by the principal at or after it are rolled back.
    #[serde(default)]
    pub compromised_since: Option<String>,
    #[serde(default)]
    pub rollback: bool,
    /// Who asked (defaults to `operator`).
    #[serde(default)]
    pub actor: Option<String>,
}

/// Device Defender Detect violation (the SNS `Message`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationEvent {
    pub violation_id: String,
    pub thing_name: String,
    #[serde(default)]
    pub security_profile_name: Option<String>,
    #[serde(default)]
    pub behavior: Option<serde_json::Value>,
    #[serde(default)]
    pub metric_value: Option<serde_json::Value>,
    pub violation_event_type: String,
    #[serde(default)]
    pub violation_event_time: Option<i64>,
}

/// Tamper report forwarded by the rule on `P/+/tamper` with `principal()`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TamperReport {
    pub trigger: String,
    pub serial: String,
    pub principal: String,
    #[serde(default)]
    pub received_at: Option<i64>,
}

/// A session AWS IoT ended because its client acted outside its policy (an MQTT 3.1.1 publish or
/// subscribe it is not allowed), forwarded by the rule on the presence events whose
/// `disconnectReason` is `AUTH_ERROR` (developerguide/life-cycle-events.html). Only AWS IoT publishes
/// on `$aws/events/`, so the fields are AWS's, not the device's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuthorizationFailure {
    pub trigger: String,
    /// The session's `principalIdentifier`: a certificate id for a device.
    pub principal: String,
    #[serde(default)]
    pub client_id: Option<String>,
    /// The session's `sessionIdentifier`: one signal per session, however often it is delivered.
    pub session: String,
    #[serde(default)]
    pub received_at: Option<i64>,
}

/// A presence event of AWS IoT (developerguide/life-cycle-events.html), forwarded by the template's
/// PresenceRule with its fields named: only AWS IoT publishes on `$aws/events/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PresenceEvent {
    pub trigger: String,
    /// `connected` or `disconnected`.
    pub event: String,
    pub client_id: String,
    /// `principalIdentifier`: the certificate id of a certificate session.
    pub principal: String,
    pub session: String,
    /// `versionNumber`: orders the sessions of one client id.
    pub version: u64,
    #[serde(default)]
    pub disconnect_reason: Option<String>,
    #[serde(default)]
    pub received_at: Option<i64>,
}

/// What the revoker does when two certificates of one serial take its session from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedSerialAction {
    Quarantine,
    /// Audit only (`serial_shared`); an operator decides.
    Alert,
}

/// One tripwire signal: whose, about what, its own key and time, and what a quarantine says.
struct Signal<'a> {
    principal: &'a str,
    record: Option<&'a str>,
    detail: String,
    dedupe: String,
    received: OffsetDateTime,
    why: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationConfig {
    pub fleet_policy: String,
    pub quarantine_group: String,
    /// What a Defender `in-alarm` does (quarantine by default).
    pub defender_action: Action,
    /// Cross-serial attempts by one principal within the window before it is quarantined.
    pub violation_threshold: u32,
    pub violation_window: time::Duration,
    /// Default rollback window: this long before the first security signal about the principal.
    pub rollback_lookback: time::Duration,
    /// Two certificates of a serial taking its session from each other (default quarantine).
    pub shared_serial_action: SharedSerialAction,
}

impl RevocationConfig {
    /// Default of `FLEETGUARD_VIOLATION_THRESHOLD`.
    pub const DEFAULT_VIOLATION_THRESHOLD: u32 = 1;
    /// Default of `FLEETGUARD_VIOLATION_WINDOW_MINUTES`.
    pub const DEFAULT_VIOLATION_WINDOW_MINUTES: u32 = 60;
    /// Default of `FLEETGUARD_ROLLBACK_LOOKBACK_HOURS`.
    pub const DEFAULT_ROLLBACK_LOOKBACK_HOURS: u32 = 24;

    /// For commands about operators only (no fleet policy or thing group is touched): defaults
    /// without the device settings.
    pub fn operators_only() -> Self {
        Self {
            fleet_policy: String::new(),
            quarantine_group: String::new(),
            defender_action: Action::Quarantine,
            violation_threshold: Self::DEFAULT_VIOLATION_THRESHOLD,
            violation_window: time::Duration::minutes(
                Self::DEFAULT_VIOLATION_WINDOW_MINUTES.into(),
            ),
            rollback_lookback: time::Duration::hours(Self::DEFAULT_ROLLBACK_LOOKBACK_HOURS.into()),
            shared_serial_action: SharedSerialAction::Quarantine,
        }
    }

    pub fn from_vars(v: &dyn crate::config::Vars) -> Result<Self> {
        use crate::config::{choice, opt_u32, var};
        Ok(Self {
            fleet_policy: var(v, "FLEETGUARD_FLEET_POLICY")?,
            quarantine_group: var(v, "FLEETGUARD_QUARANTINE_GROUP")?,
            defender_action: choice(
                v,
                "FLEETGUARD_DEFENDER_ACTION",
                &[
                    ("quarantine", Action::Quarantine),
                    ("revoke", Action::Revoke),
                ],
            )?,
            violation_threshold: opt_u32(
                v,
                "FLEETGUARD_VIOLATION_THRESHOLD",
                Self::DEFAULT_VIOLATION_THRESHOLD,
            )?
            .max(1),
            violation_window: time::Duration::minutes(i64::from(opt_u32(
                v,
                "FLEETGUARD_VIOLATION_WINDOW_MINUTES",
                Self::DEFAULT_VIOLATION_WINDOW_MINUTES,
            )?)),
            rollback_lookback: time::Duration::hours(i64::from(opt_u32(
                v,
                "FLEETGUARD_ROLLBACK_LOOKBACK_HOURS",
                Self::DEFAULT_ROLLBACK_LOOKBACK_HOURS,
            )?)),
            shared_serial_action: choice(
                v,
                "FLEETGUARD_SHARED_SERIAL_ACTION",
                &[
                    ("quarantine", SharedSerialAction::Quarantine),
                    ("alert", SharedSerialAction::Alert),
                ],
            )?,
        })
    }
}

/// What a rollback came to.
struct Rollback {
    restored: usize,
    since: String,
    reason: Reason,
}

/// What one trigger came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// The principal acted on (certificate id, `dv…` or `op…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Records restored by a rollback.
    pub restored: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_since: Option<String>,
    /// Why a rollback restored what it did: `restored`, or `nothing_to_roll_back` (never a silent 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Reason>,
}

pub struct Revoker<R, C, N, D, A> {
    pub registry: R,
    pub control: C,
    pub connections: N,
    pub records: D,
    pub audit: A,
    pub config: RevocationConfig,
}

struct Target {
    serial: Serial,
    cert: Option<CertificateId>,
}

impl Target {
    /// Who acts for this device: its certificate, else its password identity (`dv…`).
    fn principal(&self) -> Principal {
        match &self.cert {
            Some(c) => Principal::Certificate(c.clone()),
            None => Principal::Authorizer(PrincipalId::device(&self.serial)),
        }
    }
}

/// What a command is about.
enum Subject {
    /// A device (by serial, its current certificate or its password principal).
    Device(Target),
    /// A certificate its serial no longer uses (replaced), or does not use yet (a rotation's next
    /// one, with its PEM): only that certificate is acted on.
    OldCertificate {
        serial: Serial,
        cert: CertificateId,
        pem: Option<String>,
    },
    /// A custom-authorizer operator.
    Operator {
        id: PrincipalId,
        serials: Vec<Serial>,
    },
}

impl<R, C, N, D, A> Revoker<R, C, N, D, A>
where
    R: Registry,
    C: IotControl,
    N: Connections,
    D: Records,
    A: AuditLog,
{
    /// Handles any trigger. `Err` only for infrastructure failures (the invocation is retried and
    /// converges).
    pub async fn handle(&self, raw: serde_json::Value, now: OffsetDateTime) -> Result<Vec<Report>> {
        if let Some(records) = raw.get("Records").and_then(|r| r.as_array()) {
            let mut reports = Vec::new();
            for record in records {
                let message = record
                    .pointer("/Sns/Message")
                    .and_then(|m| m.as_str())
                    .and_then(|m| serde_json::from_str::<ViolationEvent>(m).ok());
                reports.push(match message {
                    Some(v) => self.defender(v, now).await?,
                    None => {
                        self.malformed("SNS record without a Defender violation")
                            .await?
                    }
                });
            }
            return Ok(reports);
        }
        // Every topic rule that reaches the revoker sets `trigger` itself (the template's test holds
        // them to it): an event with one is a signal, never a command, whatever else it carries.
        if let Some(trigger) = raw.get("trigger") {
            let report = match trigger.as_str() {
                Some("security_event") => match serde_json::from_value::<SecurityEvent>(raw) {
                    Ok(e)
                        if e.kind == crate::records::delete::CROSS_SERIAL
                            || e.kind == crate::records::delete::REPLACED_CERTIFICATE_USE =>
                    {
                        self.security_event(e, now).await?
                    }
                    _ => self.malformed("malformed security event").await?,
                },
                Some("authorization_failure") => {
                    match serde_json::from_value::<AuthorizationFailure>(raw) {
                        Ok(e) => self.authorization_failure(e, now).await?,
                        Err(_) => self.malformed("malformed authorization failure").await?,
                    }
                }
                Some("presence") => match serde_json::from_value::<PresenceEvent>(raw) {
                    Ok(e) => self.presence(e, now).await?,
                    Err(_) => self.malformed("malformed presence event").await?,
                },
                Some("tamper") => match serde_json::from_value::<TamperReport>(raw) {
                    Ok(t) => self.tamper(t, now).await?,
                    Err(_) => self.malformed("malformed tamper report").await?,
                },
                _ => self.malformed("unknown trigger").await?,
            };
            return Ok(vec![report]);
        }
        // Only a direct invoke (an operator's, with IAM's lambda:InvokeFunction) has no trigger.
        Ok(vec![match serde_json::from_value::<Command>(raw) {
            Ok(c) => self.command(c, now).await?,
            Err(e) => self.malformed(&e.to_string()).await?,
        }])
    }

    /// An operator command.
    pub async fn command(&self, cmd: Command, now: OffsetDateTime) -> Result<Report> {
        let actor = format!("operator:{}", cmd.actor.as_deref().unwrap_or("unknown"));
        let since = match cmd.compromised_since.as_deref().map(Timestamp::parse) {
            Some(Ok(t)) => Some(t.instant()),
            Some(Err(_)) => return self.malformed("compromised_since is not RFC 3339").await,
            None => None,
        };
        let Some(subject) = self
            .subject(
                cmd.serial.as_ref(),
                cmd.certificate_id.as_ref(),
                cmd.principal.as_ref(),
            )
            .await?
        else {
            // A certificate of no device that AWS IoT knows (a batch's leaked claim certificate):
            // revoked, so it can connect nowhere, and with it call RegisterThing no more.
            if cmd.action == Action::Revoke {
                let named = cmd.certificate_id.clone().or(match &cmd.principal {
                    Some(Principal::Certificate(c)) => Some(c.clone()),
                    _ => None,
                });
                if let Some(cert) = named {
                    if self.control.describe_certificate(&cert).await?.is_some() {
                        return self
                            .revoke_certificate_of_no_device(&cert, &actor, &cmd)
                            .await;
                    }
                }
            }
            return self
                .reject(
                    &actor,
                    None,
                    Reason::UnknownDevice,
                    "no such device, certificate or principal",
                )
                .await;
        };
        let detail = cmd.reason.clone().unwrap_or_default();
        let (mut report, principal, serials, audit_serial) = match subject {
            Subject::Device(target) => {
                let report = match cmd.action {
                    Action::Release => self.release(&target, &actor, &detail).await?,
                    action => self.isolate(&target, action, &actor, &detail).await?,
                };
                let principal = target.principal();
                (
                    report,
                    principal,
                    vec![target.serial.clone()],
                    target.serial,
                )
            }
            Subject::OldCertificate { serial, cert, pem } => {
                let report = self
                    .isolate_old_certificate(
                        &serial,
                        &cert,
                        pem.as_deref(),
                        cmd.action,
                        &actor,
                        &detail,
                    )
                    .await?;
                (
                    report,
                    Principal::Certificate(cert),
                    vec![serial.clone()],
                    serial,
                )
            }
            Subject::Operator { id, serials } => {
                let report = self.operator(&id, cmd.action, &actor, &detail).await?;
                let mut serials = serials;
                // Also every serial the audit log says it deleted on (a grant may have been withdrawn
                // since); the records table is still what decides what is restored.
                let from = since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
                let principal = Principal::Authorizer(id);
                for e in self
                    .audit
                    .for_principal(&principal, &Timestamp::at(from))
                    .await?
                {
                    if e.action == AuditAction::DeleteRecord && e.reason == Reason::Deleted {
                        if let Some(Ok(s)) = e.serial.as_deref().map(Serial::parse) {
                            if !serials.contains(&s) {
                                serials.push(s);
                            }
                        }
                    }
                }
                return self
                    .finish_rollback(
                        report,
                        &cmd,
                        &[principal],
                        serials,
                        None,
                        since,
                        &actor,
                        now,
                    )
                    .await;
            }
        };
        if report.principal.is_none() {
            report.principal = Some(principal.to_string());
        }
        // By serial: every identity the serial has had (an attacker may have rotated the key it
        // stole, or the device held a password before its certificate). By certificate: that one.
        let principals = if cmd.serial.is_some() && cmd.rollback {
            self.identities(&audit_serial, &principal).await?
        } else {
            vec![principal]
        };
        self.finish_rollback(
            report,
            &cmd,
            &principals,
            serials,
            Some(&audit_serial),
            since,
            &actor,
            now,
        )
        .await
    }

    async fn reject(
        &self,
        actor: &str,
        serial: Option<&Serial>,
        reason: Reason,
        detail: &str,
    ) -> Result<Report> {
        let mut entry = AuditEntry::new(actor, AuditAction::Revocation, Outcome::Rejected, reason)
            .detail(detail);
        if let Some(s) = serial {
            entry = entry.serial(s.as_str());
        }
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, None))
    }

    async fn malformed(&self, detail: &str) -> Result<Report> {
        self.reject("revoker", None, Reason::MalformedEvent, detail)
            .await
    }
}

fn report(entry: &AuditEntry, cert: Option<&CertificateId>) -> Report {
    Report {
        outcome: entry.outcome,
        reason: entry.reason,
        serial: entry.serial.clone(),
        certificate_id: cert.map(|c| c.to_string()),
        principal: entry.principal.clone(),
        restored: 0,
        rolled_back_since: None,
        rollback: None,
    }
}
