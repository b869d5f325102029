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
//! period quarantine it, `serial_shared`; see the rotation module (`crate::rotation`)). **Topics carry signals, never commands**: every rule that
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

use crate::delete_record::SecurityEvent;
use crate::domain::{
    rfc3339, AuditEntry, CertificateId, CertificateStatus, Device, DeviceStatus, Outcome,
    Principal, Reason, Serial,
};
use crate::ports::{AuditLog, AuthorizerPrincipal, Connections, IotControl, Records, Registry};
use crate::provisioning::set_status_unless_revoked;
use crate::Result;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
    pub serial: Option<String>,
    #[serde(default)]
    pub certificate_id: Option<String>,
    /// Any principal: a certificate id, a password device's or an operator's principal id (`dv…`, `op…`).
    #[serde(default)]
    pub principal: Option<String>,
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
    /// For commands about operators only (no fleet policy or thing group is touched): defaults
    /// without the device settings.
    pub fn operators_only() -> Self {
        Self {
            fleet_policy: String::new(),
            quarantine_group: String::new(),
            defender_action: Action::Quarantine,
            violation_threshold: 1,
            violation_window: time::Duration::minutes(60),
            rollback_lookback: time::Duration::hours(24),
            shared_serial_action: SharedSerialAction::Quarantine,
        }
    }

    pub fn from_env() -> Result<Self> {
        use crate::config::{opt_u32, var};
        Ok(Self {
            fleet_policy: var("FLEETGUARD_FLEET_POLICY")?,
            quarantine_group: var("FLEETGUARD_QUARANTINE_GROUP")?,
            defender_action: match std::env::var("FLEETGUARD_DEFENDER_ACTION").as_deref() {
                Ok("revoke") => Action::Revoke,
                Err(_) | Ok("quarantine") => Action::Quarantine,
                Ok(other) => {
                    return Err(crate::Error::Config(format!(
                        "FLEETGUARD_DEFENDER_ACTION must be quarantine or revoke, not {other:?}"
                    )))
                }
            },
            violation_threshold: opt_u32("FLEETGUARD_VIOLATION_THRESHOLD", 1)?.max(1),
            violation_window: time::Duration::minutes(i64::from(opt_u32(
                "FLEETGUARD_VIOLATION_WINDOW_MINUTES",
                60,
            )?)),
            rollback_lookback: time::Duration::hours(i64::from(opt_u32(
                "FLEETGUARD_ROLLBACK_LOOKBACK_HOURS",
                24,
            )?)),
            shared_serial_action: match std::env::var("FLEETGUARD_SHARED_SERIAL_ACTION").as_deref()
            {
                Err(_) | Ok("quarantine") => SharedSerialAction::Quarantine,
                Ok("alert") => SharedSerialAction::Alert,
                Ok(other) => {
                    return Err(crate::Error::Config(format!(
                        "FLEETGUARD_SHARED_SERIAL_ACTION must be quarantine or alert, not {other:?}"
                    )))
                }
            },
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
    fn principal(&self) -> String {
        match &self.cert {
            Some(c) => c.to_string(),
            None => crate::authorizer::device_principal(&self.serial).to_string(),
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
    Operator { id: String, serials: Vec<Serial> },
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
                        if e.kind == crate::delete_record::CROSS_SERIAL
                            || e.kind == crate::delete_record::REPLACED_CERTIFICATE_USE =>
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
        let since = match cmd.compromised_since.as_deref().map(parse_time) {
            Some(Ok(t)) => Some(t),
            Some(Err(())) => return self.malformed("compromised_since is not RFC 3339").await,
            None => None,
        };
        let Some(subject) = self
            .subject(
                cmd.serial.as_deref(),
                cmd.certificate_id.as_deref(),
                cmd.principal.as_deref(),
            )
            .await?
        else {
            // A certificate of no device that AWS IoT knows (a batch's leaked claim certificate):
            // revoked, so it can connect nowhere, and with it call RegisterThing no more.
            if cmd.action == Action::Revoke {
                let named = cmd
                    .certificate_id
                    .as_deref()
                    .or(cmd.principal.as_deref())
                    .and_then(|c| CertificateId::parse(c).ok());
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
                (report, cert.to_string(), vec![serial.clone()], serial)
            }
            Subject::Operator { id, serials } => {
                let report = self.operator(&id, cmd.action, &actor, &detail).await?;
                let mut serials = serials;
                // Also every serial the audit log says it deleted on (a grant may have been withdrawn
                // since); the records table is still what decides what is restored.
                let from = since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
                for e in self.audit.for_principal(&id, &rfc3339(from)).await? {
                    if e.action == "delete_record" && e.reason == Reason::Deleted {
                        if let Some(Ok(s)) = e.serial.as_deref().map(Serial::parse) {
                            if !serials.contains(&s) {
                                serials.push(s);
                            }
                        }
                    }
                }
                return self
                    .finish_rollback(report, &cmd, &[id], serials, None, since, &actor, now)
                    .await;
            }
        };
        if report.principal.is_none() {
            report.principal = Some(principal.clone());
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

    /// Revokes a certificate AWS IoT knows that is no device's (REVOKED is final), audited.
    async fn revoke_certificate_of_no_device(
        &self,
        cert: &CertificateId,
        actor: &str,
        cmd: &Command,
    ) -> Result<Report> {
        self.control
            .set_certificate_status(cert, CertificateStatus::Revoked)
            .await?;
        let entry = AuditEntry::new(actor, "revoke", Outcome::Accepted, Reason::Revoked)
            .principal(cert.as_str())
            .detail(format!(
                "certificate of no device (a claim certificate?): {}",
                cmd.reason.as_deref().unwrap_or("")
            ));
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, Some(cert)))
    }

    /// Every identity `serial` has had, `current` first: the certificates and the password principal
    /// its audit trail shows acting as it (provisioned, rotated to, deleting its records), never an
    /// operator, never another serial's certificate (a refused cross-serial attempt is not accepted).
    async fn identities(&self, serial: &Serial, current: &str) -> Result<Vec<String>> {
        let mut out = vec![current.to_owned()];
        for e in self.audit.for_serial(serial.as_str(), usize::MAX).await? {
            let Some(p) = e.principal.as_deref() else {
                continue;
            };
            let device = match Principal::parse(p) {
                Ok(Principal::Certificate(_)) => true,
                Ok(Principal::Authorizer(id)) => id.starts_with("dv"),
                Err(_) => false,
            };
            if device && e.outcome == Outcome::Accepted && !out.iter().any(|o| o == p) {
                out.push(p.to_owned());
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_rollback(
        &self,
        mut report: Report,
        cmd: &Command,
        principals: &[String],
        serials: Vec<Serial>,
        audit_serial: Option<&Serial>,
        since: Option<OffsetDateTime>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Report> {
        // A refused command (e.g. releasing a revoked device) rolls nothing back.
        if cmd.rollback && cmd.action != Action::Release && report.outcome != Outcome::Rejected {
            let done = self
                .rollback(principals, &serials, audit_serial, since, actor, now)
                .await?;
            report.restored = done.restored;
            report.rolled_back_since = Some(done.since);
            report.rollback = Some(done.reason);
        }
        Ok(report)
    }

    async fn defender(&self, v: ViolationEvent, _now: OffsetDateTime) -> Result<Report> {
        let actor = "device-defender";
        let Ok(serial) = Serial::parse(&v.thing_name) else {
            return self
                .reject(
                    actor,
                    None,
                    Reason::InvalidSerial,
                    "thingName is not a valid serial",
                )
                .await;
        };
        if v.violation_event_type != "in-alarm" {
            // alarm-cleared / alarm-invalidated: never undo an isolation automatically; audit only.
            let entry = AuditEntry::new(
                actor,
                "defender_violation",
                Outcome::Noop,
                Reason::DefenderAlarmCleared,
            )
            .serial(serial.as_str())
            .detail(format!("{} {}", v.violation_event_type, v.violation_id));
            crate::ports::record_decision(&self.audit, &entry).await?;
            return Ok(report(&entry, None));
        }
        let Some(target) = self.resolve(Some(serial.as_str()), None).await? else {
            return self
                .reject(
                    actor,
                    Some(&serial),
                    Reason::UnknownDevice,
                    "Defender alarm for an unknown thing",
                )
                .await;
        };
        let mut signal = AuditEntry::new(
            actor,
            "defender_violation",
            Outcome::Accepted,
            Reason::DefenderInAlarm,
        )
        .serial(serial.as_str())
        .detail(format!(
            "{} profile={}",
            v.violation_id,
            v.security_profile_name.as_deref().unwrap_or("-")
        ));
        if let Some(c) = &target.cert {
            signal = signal.principal(c.as_str());
        }
        // SNS delivers at least once: one entry per violation, keyed by the violation, not the clock.
        if let Some(at) = v
            .violation_event_time
            .and_then(crate::domain::epoch_ms_rfc3339)
        {
            signal.at = at;
            signal.dedupe = Some(format!("defender:{}", v.violation_id));
        }
        crate::ports::record_decision(&self.audit, &signal).await?;
        self.isolate(&target, self.config.defender_action, actor, &v.violation_id)
            .await
    }

    async fn tamper(&self, t: TamperReport, _now: OffsetDateTime) -> Result<Report> {
        let actor = "tamper-report";
        let Ok(serial) = Serial::parse(&t.serial) else {
            return self
                .reject(
                    actor,
                    None,
                    Reason::InvalidTopic,
                    "tamper topic serial is invalid",
                )
                .await;
        };
        // Only the device's own certificate may report its tampering: anyone else could use a forged
        // report to knock a healthy device offline.
        let Ok(Principal::Certificate(cert)) = Principal::parse(&t.principal) else {
            return self
                .reject(
                    actor,
                    Some(&serial),
                    Reason::UnknownPrincipal,
                    "tamper report not from a certificate",
                )
                .await;
        };
        let owner = self.registry.get_certificate(&cert).await?;
        if owner.as_ref().is_none_or(|o| o.serial != serial) {
            return self
                .reject(
                    actor,
                    Some(&serial),
                    Reason::PrincipalMismatch,
                    "tamper report from another device's certificate",
                )
                .await;
        }
        // A replaced certificate (still in its grace period) is the device's no longer: whoever
        // holds the old key must not be able to knock the device offline with it. Its use is a
        // signal against that certificate alone: refused, and it is cut off (revoked), the device
        // and its current certificate untouched.
        let device = self.registry.get_device(&serial).await?;
        if device.and_then(|d| d.certificate_id) != Some(cert.clone()) {
            self.reject(
                actor,
                Some(&serial),
                Reason::NotCurrentCertificate,
                "tamper report from a replaced certificate",
            )
            .await?;
            return self
                .isolate_old_certificate(
                    &serial,
                    &cert,
                    None,
                    Action::Revoke,
                    actor,
                    "used after it was replaced (a tamper report): cut off alone",
                )
                .await;
        }
        let signal = AuditEntry::new(
            actor,
            "tamper_report",
            Outcome::Accepted,
            Reason::TamperReported,
        )
        .serial(serial.as_str())
        .principal(cert.as_str());
        crate::ports::record_decision(&self.audit, &signal).await?;
        let target = Target {
            serial,
            cert: Some(cert),
        };
        self.isolate(
            &target,
            Action::Quarantine,
            actor,
            "device reported tampering",
        )
        .await
    }

    async fn security_event(&self, e: SecurityEvent, now: OffsetDateTime) -> Result<Report> {
        // Acted on only if delete-record's refusal it reports is in the audit log: the same serial,
        // time and request key, that principal, that record. A forged event changes nothing.
        let at = crate::domain::epoch_ms(e.received_at).map(rfc3339);
        let reported = match &at {
            Some(at) => {
                self.audit
                    .find(&e.target_serial, at, &e.request_key)
                    .await?
            }
            None => None,
        };
        let replaced = e.kind == crate::delete_record::REPLACED_CERTIFICATE_USE;
        let refusal = if replaced {
            Reason::NotCurrentCertificate
        } else {
            Reason::PrincipalMismatch
        };
        let genuine = reported.is_some_and(|r| {
            r.action == "delete_record"
                && r.reason == refusal
                && r.principal.as_deref() == Some(e.principal.as_str())
                && r.record_id.as_deref() == Some(e.record_id.as_str())
        });
        if !genuine {
            let entry = AuditEntry::new(
                "tripwire",
                "security_violation",
                Outcome::Rejected,
                Reason::UnverifiedSignal,
            )
            .principal(&e.principal)
            .detail(format!(
                "no delete-record refusal of {} on {}/{} at {}",
                e.principal,
                e.target_serial,
                e.record_id,
                at.as_deref().unwrap_or("?")
            ));
            crate::ports::record_decision(&self.audit, &entry).await?;
            return Ok(report(&entry, None));
        }
        if replaced {
            // The serial's replaced certificate, still used: cut off alone, the device untouched.
            if let (Ok(Principal::Certificate(cert)), Ok(serial)) = (
                Principal::parse(&e.principal),
                Serial::parse(&e.target_serial),
            ) {
                return self
                    .isolate_old_certificate(
                        &serial,
                        &cert,
                        None,
                        Action::Revoke,
                        "tripwire",
                        "used after it was replaced (a delete): cut off alone",
                    )
                    .await;
            }
            return self
                .malformed("replaced certificate use without a certificate")
                .await;
        }
        let signal = Signal {
            principal: &e.principal,
            record: Some(e.record_id.as_str()),
            detail: format!("target_serial={}", e.target_serial),
            dedupe: e.request_key.clone(),
            received: crate::domain::epoch_ms(e.received_at).unwrap_or(now),
            why: "cross-serial delete attempt",
        };
        self.tripwire(signal).await
    }

    /// A device AWS IoT disconnected for acting outside its policy: a tripwire signal like a
    /// cross-serial delete attempt (a device reaching for another serial's topics never gets as far
    /// as a delete: the broker refuses it first). Other principals (an operator refused at a refresh)
    /// are not devices: nothing to count.
    async fn authorization_failure(
        &self,
        e: AuthorizationFailure,
        now: OffsetDateTime,
    ) -> Result<Report> {
        if !matches!(
            Principal::parse(&e.principal),
            Ok(Principal::Certificate(_))
        ) {
            let entry = AuditEntry::new(
                "tripwire",
                "security_violation",
                Outcome::Noop,
                Reason::UnknownPrincipal,
            )
            .principal(&e.principal)
            .detail("authorization failure of a principal that is not a certificate");
            return Ok(report(&entry, None));
        }
        let signal = Signal {
            principal: &e.principal,
            record: None,
            detail: format!(
                "authorization_failure client_id={}",
                e.client_id.as_deref().unwrap_or("")
            ),
            dedupe: e.session.clone(),
            received: e
                .received_at
                .and_then(crate::domain::epoch_ms)
                .unwrap_or(now),
            why: "disconnected for acting outside its policy",
        };
        self.tripwire(signal).await
    }

    /// Two parties holding one serial, seen in AWS IoT's presence events during a rotation's grace
    /// period: the replaced and the current certificate each connect as the serial (client id), so
    /// one connection takes the session from the other (`DUPLICATE_CLIENTID`). Whichever of the two
    /// events arrives second sees the other's session in the registry (`live_session`, newest
    /// `versionNumber` wins) and the serial is quarantined, or only audited under
    /// `FLEETGUARD_SHARED_SERIAL_ACTION=alert`. A device reconnecting with its own certificate, or
    /// falling back to its old one after its session ended, takes no session from another
    /// certificate: nothing happens. Outside a grace period the event costs one read and no write.
    async fn presence(&self, e: PresenceEvent, now: OffsetDateTime) -> Result<Report> {
        let quiet = |detail: &str| {
            let entry =
                AuditEntry::new("tripwire", "presence", Outcome::Noop, Reason::PresenceNoted)
                    .principal(&e.principal)
                    .detail(detail.to_owned());
            Ok(report(&entry, None))
        };
        let (Ok(Principal::Certificate(cert)), Ok(serial)) =
            (Principal::parse(&e.principal), Serial::parse(&e.client_id))
        else {
            return quiet("not a certificate session of a serial");
        };
        let Some(device) = self.registry.get_device(&serial).await? else {
            return quiet("unknown serial");
        };
        let Some(previous) = device.previous_certificate_id.clone() else {
            return quiet("no replaced certificate in its grace period");
        };
        let ours = [device.certificate_id.as_ref(), Some(&previous)];
        if !ours.contains(&Some(&cert)) {
            return quiet("neither the current nor the replaced certificate");
        }
        let taken_over = e.event == "disconnected"
            && e.disconnect_reason.as_deref() == Some("DUPLICATE_CLIENTID");
        let live = device.live_session.as_ref();
        let other = match (e.event.as_str(), live) {
            // This connection took the session of another certificate of the serial.
            ("connected", Some(l))
                if l.taken_over && l.certificate_id != cert && l.version < e.version =>
            {
                Some(l)
            }
            // This session was taken by a newer one of another certificate, already recorded.
            ("disconnected", Some(l))
                if taken_over && l.certificate_id != cert && l.version > e.version =>
            {
                Some(l)
            }
            _ => None,
        };
        if let Some(other) = other {
            return self
                .shared_serial(&serial, &device, &cert, other, &e, now)
                .await;
        }
        let session = crate::domain::LiveSession {
            certificate_id: cert.clone(),
            session: e.session.clone(),
            version: e.version,
            taken_over,
        };
        match e.event.as_str() {
            "connected" => {
                self.registry.note_session(&serial, &session).await?;
            }
            "disconnected" if taken_over => {
                self.registry.note_session(&serial, &session).await?;
            }
            "disconnected" => self.registry.end_session(&serial, &e.session).await?,
            _ => return quiet("unknown presence event"),
        }
        quiet("session noted")
    }

    async fn shared_serial(
        &self,
        serial: &Serial,
        device: &Device,
        cert: &CertificateId,
        other: &crate::domain::LiveSession,
        e: &PresenceEvent,
        now: OffsetDateTime,
    ) -> Result<Report> {
        let actor = "tripwire";
        let mut signal = AuditEntry::new(
            actor,
            "security_violation",
            Outcome::Accepted,
            Reason::SerialShared,
        )
        .serial(serial.as_str())
        .principal(cert.as_str())
        .detail(format!(
            "two parties hold the serial: certificates {} (session {}, version {}) and {} (session {}, version {}) took its session from each other",
            cert, e.session, e.version, other.certificate_id, other.session, other.version
        ));
        signal.at = rfc3339(
            e.received_at
                .and_then(crate::domain::epoch_ms)
                .unwrap_or(now),
        );
        signal.dedupe = Some(format!("shared:{}:{}", e.session, other.session));
        crate::ports::record_decision(&self.audit, &signal).await?;
        if self.config.shared_serial_action == SharedSerialAction::Alert {
            return Ok(report(&signal, Some(cert)));
        }
        let target = Target {
            serial: serial.clone(),
            cert: device.certificate_id.clone(),
        };
        self.isolate(
            &target,
            Action::Quarantine,
            actor,
            "two parties hold the serial",
        )
        .await
    }

    /// Records a signal against a certificate's device and quarantines it once the window holds
    /// `violation_threshold` of them.
    async fn tripwire(&self, s: Signal<'_>) -> Result<Report> {
        let actor = "tripwire";
        let Ok(Principal::Certificate(cert)) = Principal::parse(s.principal) else {
            // Authorizer principals are cut off by disabling the operator/device in the registry.
            return self
                .reject(
                    actor,
                    None,
                    Reason::UnknownPrincipal,
                    "security event without a certificate principal",
                )
                .await;
        };
        let Some(owner) = self.registry.get_certificate(&cert).await? else {
            return self
                .reject(
                    actor,
                    None,
                    Reason::UnknownPrincipal,
                    "certificate not in the registry",
                )
                .await;
        };
        let mut signal = AuditEntry::new(
            actor,
            "security_violation",
            Outcome::Accepted,
            Reason::SecurityViolation,
        )
        .serial(owner.serial.as_str())
        .principal(cert.as_str())
        .detail(s.detail);
        if let Some(record) = s.record {
            signal = signal.record(record);
        }
        // Once per original message, however often or late the event is redelivered: the entry's key is
        // the message's own (its time and request key), never the clock's.
        // The window is counted back from the message's own time, for the same reason.
        signal.at = rfc3339(s.received);
        signal.dedupe = Some(s.dedupe);
        crate::ports::record_decision(&self.audit, &signal).await?;
        let window_start = rfc3339(s.received - self.config.violation_window);
        let earlier: Vec<AuditEntry> = self
            .audit
            .for_principal(cert.as_str(), &window_start)
            .await?
            .into_iter()
            .filter(|x| x.action == "security_violation")
            .collect();
        // The by-principal index is only eventually consistent: the signal just written (or
        // written by this message's first delivery) counts whether the index shows it yet or not.
        let shown = earlier
            .iter()
            .any(|x| x.at == signal.at && x.detail == signal.detail);
        let count = earlier.len() + usize::from(!shown);
        if count < self.config.violation_threshold as usize {
            let entry = AuditEntry::new(actor, "quarantine", Outcome::Noop, Reason::BelowThreshold)
                .serial(owner.serial.as_str())
                .principal(cert.as_str())
                .detail(format!("{count} of {}", self.config.violation_threshold));
            crate::ports::record_decision(&self.audit, &entry).await?;
            return Ok(report(&entry, Some(&cert)));
        }
        let target = Target {
            serial: owner.serial,
            cert: Some(cert),
        };
        self.isolate(&target, Action::Quarantine, actor, s.why)
            .await
    }

    /// What a command names: a serial, a certificate id, or any principal id.
    async fn subject(
        &self,
        serial: Option<&str>,
        cert: Option<&str>,
        principal: Option<&str>,
    ) -> Result<Option<Subject>> {
        let cert = match principal.map(Principal::parse) {
            Some(Ok(Principal::Certificate(c))) => Some(c.to_string()),
            Some(Ok(Principal::Authorizer(id))) => {
                return Ok(match self.registry.get_principal(&id).await? {
                    Some(AuthorizerPrincipal::Operator { serials, .. }) => {
                        Some(Subject::Operator { id, serials })
                    }
                    Some(AuthorizerPrincipal::Device { serial }) => self
                        .resolve(Some(serial.as_str()), None)
                        .await?
                        .map(Subject::Device),
                    None => None,
                });
            }
            Some(Err(_)) => return Ok(None),
            None => cert.map(str::to_owned),
        };
        if let Some(c) = cert.as_deref() {
            let Ok(id) = CertificateId::parse(c) else {
                return Ok(None);
            };
            let Some(rec) = self.registry.get_certificate(&id).await? else {
                return Ok(None);
            };
            let device = self.registry.get_device(&rec.serial).await?;
            let current = device
                .as_ref()
                .is_some_and(|d| d.certificate_id.as_ref() == Some(&id));
            // A rotation's certificate, perhaps not registered yet: its PEM, to register it cut off.
            let unregistered = device
                .and_then(|d| d.rotation)
                .filter(|r| r.next_certificate_id == id)
                .map(|r| r.certificate_pem);
            return Ok(Some(if current {
                Subject::Device(Target {
                    serial: rec.serial,
                    cert: Some(id),
                })
            } else {
                Subject::OldCertificate {
                    serial: rec.serial,
                    cert: id,
                    pem: unregistered,
                }
            }));
        }
        Ok(self.resolve(serial, None).await?.map(Subject::Device))
    }

    /// Revoke or quarantine a certificate its serial no longer uses: that certificate is denied (on
    /// revoke), set REVOKED or INACTIVE and detached, and the serial's session is cut in case the old
    /// key is the one connected. The serial's current certificate and its registry entry are left as
    /// they are (the device reconnects with its current certificate).
    async fn isolate_old_certificate(
        &self,
        serial: &Serial,
        cert: &CertificateId,
        pem: Option<&str>,
        action: Action,
        actor: &str,
        detail: &str,
    ) -> Result<Report> {
        if action == Action::Release {
            return self
                .reject(
                    actor,
                    Some(serial),
                    Reason::NotCurrentCertificate,
                    "a replaced certificate is never released",
                )
                .await;
        }
        let revoke = action == Action::Revoke;
        let cut = self.cut_off(cert, serial, revoke, pem).await?;
        if cut.is_none() {
            self.connections.disconnect(serial.as_str()).await?;
        }
        let changed = cut == Some(true);
        let (name, reason) = if revoke {
            ("revoke", Reason::Revoked)
        } else {
            ("quarantine", Reason::Quarantined)
        };
        let outcome = if changed {
            Outcome::Accepted
        } else {
            Outcome::Noop
        };
        let entry = AuditEntry::new(actor, name, outcome, reason)
            .serial(serial.as_str())
            .principal(cert.as_str())
            .detail(format!("replaced certificate; {detail}"));
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, Some(cert)))
    }

    /// Cuts the device off: every certificate of it (the one the command named, and those the
    /// registry holds now: the current one, so a provisioning that bound the serial after the command
    /// was resolved is cut off too, a rotation's next one and a replaced one in its grace period), its
    /// session, and its thing into the quarantine group.
    async fn cut_off_device(
        &self,
        t: &Target,
        device: Option<&Device>,
        revoke: bool,
    ) -> Result<()> {
        let mut certs: Vec<&CertificateId> = t.cert.iter().collect();
        for c in device.map(Device::certificates).unwrap_or_default() {
            if !certs.contains(&c) {
                certs.push(c);
            }
        }
        let mut in_iot = false;
        for cert in certs {
            // A rotation's certificate the rotator has not registered yet: registered here, cut off,
            // so the rotator's own registration finds it taken and it never becomes usable.
            let unregistered = device
                .and_then(|d| d.rotation.as_ref())
                .filter(|r| &r.next_certificate_id == cert)
                .map(|r| r.certificate_pem.as_str());
            in_iot |= self
                .cut_off(cert, &t.serial, revoke, unregistered)
                .await?
                .is_some();
        }
        if in_iot {
            self.control
                .set_group_membership(&self.config.quarantine_group, &t.serial, true)
                .await
        } else {
            // Not in AWS IoT (any more): still cut whatever session holds the serial.
            self.connections.disconnect(t.serial.as_str()).await
        }
    }

    /// Cuts one certificate of `serial` off: denied (revoke) or held (quarantine) in the registry,
    /// REVOKED or INACTIVE in AWS IoT, its session cut, its policy and thing detached. Returns whether
    /// its status in AWS IoT had to change, or `None` if AWS IoT does not know it (and `pem`, a
    /// certificate issued but not yet registered, is not given). A quarantine that meets a certificate
    /// a racing revocation made REVOKED leaves it so (REVOKED is final, and stronger).
    async fn cut_off(
        &self,
        cert: &CertificateId,
        serial: &Serial,
        revoke: bool,
        pem: Option<&str>,
    ) -> Result<Option<bool>> {
        if revoke {
            self.registry.deny_certificate(cert, serial).await?;
        } else {
            self.registry.hold_certificate(cert, serial, true).await?;
        }
        let wanted = if revoke {
            CertificateStatus::Revoked
        } else {
            CertificateStatus::Inactive
        };
        let c = match (self.control.describe_certificate(cert).await?, pem) {
            (Some(c), _) => c,
            (None, Some(pem)) => {
                self.control
                    .register_certificate(pem, None, wanted)
                    .await?
                    .0
            }
            (None, None) => return Ok(None),
        };
        // REVOKED is final on AWS: never touch it again.
        let change = c.status != CertificateStatus::Revoked && c.status != wanted;
        if change {
            set_status_unless_revoked(&self.control, cert, wanted).await?;
        }
        self.connections.disconnect(serial.as_str()).await?;
        self.control
            .detach_policy(&self.config.fleet_policy, &c.arn)
            .await?;
        self.control.detach_thing_principal(serial, &c.arn).await?;
        Ok(Some(change))
    }

    /// Revoke, quarantine (`fleetctl operators disable`) or release (`enable`) an operator: its status,
    /// then its live session (client id = principal id) is cut. Its deletes are refused from the
    /// status change on: the delete transaction checks the operator is active.
    async fn operator(
        &self,
        id: &str,
        action: Action,
        actor: &str,
        detail: &str,
    ) -> Result<Report> {
        use crate::authorizer::OperatorStatus as S;
        let (name, from, to, reason): (&str, &[S], S, Reason) = match action {
            Action::Revoke => (
                "revoke",
                &[S::Active, S::Disabled],
                S::Revoked,
                Reason::Revoked,
            ),
            Action::Quarantine => ("quarantine", &[S::Active], S::Disabled, Reason::Quarantined),
            Action::Release => ("release", &[S::Disabled], S::Active, Reason::Released),
        };
        let changed = self.registry.set_operator_status(id, from, to).await?;
        let current = match self.registry.get_principal(id).await? {
            Some(AuthorizerPrincipal::Operator { status, .. }) => Some(status),
            _ => None,
        };
        let (outcome, reason) = match (changed, current) {
            (true, _) => (Outcome::Accepted, reason),
            // Already there (a replay): converge, record a no-op.
            (false, Some(s)) if s == to => (Outcome::Noop, reason),
            (false, Some(S::Revoked)) => (Outcome::Rejected, Reason::RevokedIsFinal),
            (false, _) if action == Action::Release => (Outcome::Noop, Reason::NotQuarantined),
            (false, _) => (Outcome::Noop, reason),
        };
        if action != Action::Release && current != Some(S::Active) {
            // Whatever the status write came to, the session goes: the authorizer's answer lives
            // as long as the connection.
            self.connections.disconnect(id).await?;
        }
        let entry = AuditEntry::new(actor, name, outcome, reason)
            .principal(id)
            .detail(detail);
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, None))
    }

    async fn resolve(&self, serial: Option<&str>, cert: Option<&str>) -> Result<Option<Target>> {
        if let Some(c) = cert {
            let Ok(cert) = CertificateId::parse(c) else {
                return Ok(None);
            };
            return Ok(self
                .registry
                .get_certificate(&cert)
                .await?
                .map(|rec| Target {
                    serial: rec.serial,
                    cert: Some(cert),
                }));
        }
        let Some(Ok(serial)) = serial.map(Serial::parse) else {
            return Ok(None);
        };
        Ok(self.registry.get_device(&serial).await?.map(|d| Target {
            serial,
            cert: d.certificate_id,
        }))
    }

    /// Revoke or quarantine: same isolation; revoke is final (REVOKED certificate, deny-list).
    async fn isolate(
        &self,
        t: &Target,
        action: Action,
        actor: &str,
        detail: &str,
    ) -> Result<Report> {
        let revoke = action == Action::Revoke;
        let (to, from): (DeviceStatus, &[DeviceStatus]) = if revoke {
            (
                DeviceStatus::Revoked,
                &[
                    DeviceStatus::Manufactured,
                    DeviceStatus::Active,
                    DeviceStatus::Quarantined,
                ],
            )
        } else {
            (
                DeviceStatus::Quarantined,
                &[DeviceStatus::Manufactured, DeviceStatus::Active],
            )
        };
        let changed = self.registry.transition(&t.serial, from, to).await?;
        let device = self.registry.get_device(&t.serial).await?;
        if !revoke
            && device
                .as_ref()
                .is_some_and(|d| d.status == DeviceStatus::Revoked)
        {
            // Quarantine never softens a revocation.
            let entry = AuditEntry::new(actor, "quarantine", Outcome::Noop, Reason::RevokedIsFinal)
                .serial(t.serial.as_str());
            crate::ports::record_decision(&self.audit, &entry).await?;
            return Ok(report(&entry, t.cert.as_ref()));
        }
        self.cut_off_device(t, device.as_ref(), revoke).await?;
        let (name, reason) = if revoke {
            ("revoke", Reason::Revoked)
        } else {
            ("quarantine", Reason::Quarantined)
        };
        let mut entry = AuditEntry::new(actor, name, Outcome::Accepted, reason)
            .serial(t.serial.as_str())
            .principal(t.principal())
            .detail(detail);
        // Keyed by the state change, so the isolation is recorded exactly once: by this call, or by
        // its retry when a fault stopped it after the registry changed (then `changed` is false).
        let keyed = match device.as_ref().filter(|d| d.status == to) {
            Some(d) => {
                entry.at = d.updated_at.clone();
                entry.dedupe = Some(format!("{name}:v{}", d.version));
                true
            }
            None => false,
        };
        let recorded = (keyed || changed) && self.audit.record(&entry).await?;
        if !recorded {
            // Nothing left to do: recorded as this caller's no-op.
            entry.outcome = Outcome::Noop;
            entry.at = crate::domain::now_rfc3339();
            entry.dedupe = None;
            self.audit.record(&entry).await?;
        }
        // Logged once, as what it came to.
        entry.log();
        Ok(report(&entry, t.cert.as_ref()))
    }

    /// Undo a quarantine. A revoked device stays revoked (a replacement certificate is the way back).
    async fn release(&self, t: &Target, actor: &str, detail: &str) -> Result<Report> {
        let device = self.registry.get_device(&t.serial).await?;
        match device.as_ref().map(|d| d.status) {
            Some(DeviceStatus::Revoked) => {
                return self
                    .reject(
                        actor,
                        Some(&t.serial),
                        Reason::RevokedIsFinal,
                        "revoked devices are never released",
                    )
                    .await
            }
            Some(DeviceStatus::Quarantined) => {}
            _ => {
                let entry =
                    AuditEntry::new(actor, "release", Outcome::Noop, Reason::NotQuarantined)
                        .serial(t.serial.as_str());
                crate::ports::record_decision(&self.audit, &entry).await?;
                return Ok(report(&entry, t.cert.as_ref()));
            }
        }
        if let Some(cert) = &t.cert {
            let Some(c) = self.control.describe_certificate(cert).await? else {
                return self
                    .reject(
                        actor,
                        Some(&t.serial),
                        Reason::CertificateNotFound,
                        "certificate missing in AWS IoT",
                    )
                    .await;
            };
            if c.status == CertificateStatus::Revoked {
                return self
                    .reject(
                        actor,
                        Some(&t.serial),
                        Reason::RevokedIsFinal,
                        "certificate is REVOKED",
                    )
                    .await;
            }
            self.control
                .attach_policy(&self.config.fleet_policy, &c.arn)
                .await?;
            self.control
                .attach_thing_principal(&t.serial, &c.arn)
                .await?;
            self.control
                .set_group_membership(&self.config.quarantine_group, &t.serial, false)
                .await?;
            if c.status != CertificateStatus::Active
                && !set_status_unless_revoked(&self.control, cert, CertificateStatus::Active)
                    .await?
            {
                let now = self.registry.get_device(&t.serial).await?;
                return self.release_lost_to_revoke(t, now.as_ref(), actor).await;
            }
            self.registry
                .hold_certificate(cert, &t.serial, false)
                .await?;
        }
        // Last: the registry is what lets deletes through again.
        let released = self
            .registry
            .transition(
                &t.serial,
                &[DeviceStatus::Quarantined],
                DeviceStatus::Active,
            )
            .await?;
        if !released {
            // Someone got there between our read and our write: answer from what they left.
            let now = self.registry.get_device(&t.serial).await?;
            if now.as_ref().map(|d| d.status) == Some(DeviceStatus::Revoked) {
                return self.release_lost_to_revoke(t, now.as_ref(), actor).await;
            }
            let entry = AuditEntry::new(actor, "release", Outcome::Noop, Reason::NotQuarantined)
                .serial(t.serial.as_str())
                .detail("released by someone else meanwhile");
            crate::ports::record_decision(&self.audit, &entry).await?;
            return Ok(report(&entry, t.cert.as_ref()));
        }
        let entry = AuditEntry::new(actor, "release", Outcome::Accepted, Reason::Released)
            .serial(t.serial.as_str())
            .principal(t.principal())
            .detail(detail);
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(report(&entry, t.cert.as_ref()))
    }

    /// A revocation won the race against this release: whatever the release re-attached before it
    /// lost is cut off again (the revocation may have finished before our attaches), and the release
    /// is answered as refused. `device` is the registry's entry as read after losing.
    async fn release_lost_to_revoke(
        &self,
        t: &Target,
        device: Option<&Device>,
        actor: &str,
    ) -> Result<Report> {
        self.cut_off_device(t, device, true).await?;
        self.reject(
            actor,
            Some(&t.serial),
            Reason::RevokedIsFinal,
            "revoked while the release was in flight",
        )
        .await
    }

    /// Restores every record soft-deleted by `principal` (a certificate, a password device or an
    /// operator) on `serials` at or after `since`; other principals' deletes are never touched.
    /// Default `since`: `rollback_lookback` before the first security signal recorded about the
    /// principal since it was last admitted (provisioned, released, enabled), or before now if there
    /// is none, and never before that admission: a false alarm released in January does not widen
    /// June's rollback.
    ///
    /// The candidates come from the records table, read consistently per serial, not from the audit
    /// log's by-principal index: that index is eventually consistent on AWS, and a delete committed
    /// just before the revoke must still be rolled back.
    async fn rollback(
        &self,
        principals: &[String],
        serials: &[Serial],
        audit_serial: Option<&Serial>,
        since: Option<OffsetDateTime>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Rollback> {
        // The default window opens at the earliest signal against any of the identities.
        let since = match since {
            Some(s) => s,
            None => {
                let mut earliest = now;
                for p in principals {
                    earliest = earliest.min(self.default_since(p, now).await?);
                }
                earliest
            }
        };
        let since_text = rfc3339(since);
        let mut restored = 0;
        let mut found = 0;
        let who = principals.join(", ");
        // Collected first: a lazy flat_map held across the awaits would make the future's Send
        // bound depend on a closure lifetime the compiler cannot generalise.
        let pairs: Vec<(&Serial, &str)> = serials
            .iter()
            .flat_map(|s| principals.iter().map(move |p| (s, p.as_str())))
            .collect();
        for (serial, principal) in pairs {
            let deleted = self
                .records
                .deleted_by(serial, principal, &since_text)
                .await?;
            found += deleted.len();
            let batch: Vec<_> = deleted
                .into_iter()
                .map(|record| {
                    let entry = AuditEntry::new(
                        actor,
                        "restore_record",
                        Outcome::Accepted,
                        Reason::Restored,
                    )
                    .serial(record.serial.as_str())
                    .record(record.record_id.as_str())
                    .principal(principal)
                    .detail("rollback");
                    (record, entry)
                })
                .collect();
            restored += self
                .records
                .restore_deleted_by(&batch, actor, principal)
                .await?;
        }
        let (outcome, reason, detail) = if restored > 0 {
            (
                Outcome::Accepted,
                Reason::Restored,
                format!("restored {restored} record(s) deleted by {who} since {since_text}"),
            )
        } else if found > 0 {
            (
                Outcome::Noop,
                Reason::NothingToRollBack,
                format!("{found} delete(s) by {who} since {since_text} were restored by someone else meanwhile"),
            )
        } else {
            (
                Outcome::Noop,
                Reason::NothingToRollBack,
                format!("no record deleted by {who} since {since_text} is still deleted"),
            )
        };
        // Under the principal the command named (the serial's current one): its history shows it.
        let mut entry = AuditEntry::new(actor, "rollback", outcome, reason).detail(detail);
        if let Some(p) = principals.first() {
            entry = entry.principal(p);
        }
        if let Some(s) = audit_serial {
            entry = entry.serial(s.as_str());
        }
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(Rollback {
            restored,
            since: since_text,
            reason,
        })
    }

    /// The default start of a rollback window (see [`Self::rollback`]).
    async fn default_since(&self, principal: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
        let history = self.audit.for_principal(principal, "0").await?;
        let last = |reasons: &[Reason]| {
            history
                .iter()
                .filter(|e| e.outcome == Outcome::Accepted && reasons.contains(&e.reason))
                .filter_map(|e| parse_time(&e.at).ok())
                .max()
        };
        // Signals count from the principal's last admission on.
        let admitted = last(&[
            Reason::Provisioned,
            Reason::Released,
            Reason::OperatorAdded,
            Reason::PasswordActivated,
        ]);
        let first_signal = history
            .iter()
            .filter(|e| {
                matches!(
                    e.reason,
                    Reason::SecurityViolation
                        | Reason::TamperReported
                        | Reason::DefenderInAlarm
                        | Reason::PrincipalMismatch
                )
            })
            .filter_map(|e| parse_time(&e.at).ok())
            .filter(|t| admitted.is_none_or(|a| *t >= a))
            .min()
            .unwrap_or(now);
        let since = first_signal - self.config.rollback_lookback;
        // Never before a release: the principal was isolated until then, and what it did before its
        // isolation was judged when it was released. (Not clamped to a provisioning: the rules
        // engine's clock and ours may disagree by a little, and nothing precedes a first admission.)
        Ok(last(&[Reason::Released]).map_or(since, |r| since.max(r)))
    }

    async fn reject(
        &self,
        actor: &str,
        serial: Option<&Serial>,
        reason: Reason,
        detail: &str,
    ) -> Result<Report> {
        let mut entry =
            AuditEntry::new(actor, "revocation", Outcome::Rejected, reason).detail(detail);
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

fn parse_time(s: &str) -> std::result::Result<OffsetDateTime, ()> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| ())
}
