//! Delete-record: a message on `P/<serial>/deleterecords/<record_id>` soft-deletes a record, but only if
//! the sender's principal owns the serial. A device principal asking for another serial is a security
//! event (the serial-guessing tripwire), published for the revoker to act on.
//!
//! Round trips on the accepted path: one read (principal facts + record), one transaction (entitlement
//! check + conditional soft delete + audit entry). The principal mapping is not cached: the entitlement
//! is re-checked inside the transaction, so a revocation takes effect on the very next message.
//!
//! # Behaviour
//!
//! An IoT rule forwards `P/+/deleterecords/+` to `functions/delete-record` with
//! `SELECT topic(2) AS serial, topic(4) AS record_id, principal() AS principal, clientid() AS client_id,
//! timestamp() AS received_at, request_id, reason` (payload fields by name, never `*`, so a payload cannot
//! supply its own `principal`). The principal must be a certificate id bound to that serial with the device
//! active, or a fleetguard authorizer principal (operator granted the serial, or the password device itself).
//!
//! - One read (BatchGetItem: principal mapping + record) and one transaction (entitlement condition check +
//!   conditional soft delete setting `deleted_at`, `deleted_by`, `delete_reason`, `version`+1 + the audit
//!   entry). The mapping is not cached: the entitlement is re-checked inside the transaction, so a revocation
//!   wins even against a delete already in flight.
//! - A lost race is an answer, not an error: when another writer commits between the read and the transaction
//!   (four instances deleting one record at once), the loser reads the record once more and answers from what
//!   the winner left — `already_deleted` with the version on `/rejected`, or `not_found` — or, if the record is
//!   live again (restored meanwhile), tries once more. A second loss in a row is answered `record_busy` (send
//!   again) without another read. No Lambda error, so no asynchronous retry minutes later. The uncontended
//!   path is unchanged (no extra read). See [Concurrency and failure](#concurrency-and-failure).
//! - Only delete-record publishes replies: `*` in a policy also matches `/`, so `P/<serial>/deleterecords/*`
//!   would cover `…/accepted`; the fleet policy and every authorizer policy therefore explicitly deny
//!   `iot:Publish` on `P/*/deleterecords/*/accepted` and `/rejected` (for every serial). Devices and operators
//!   still subscribe to and receive their own replies; the policy prover checks both.
//! - Replays (same `request_id`, or same serial + record + `received_at`) change nothing and get the same answer;
//!   the audit entry is keyed by the message, so it is written once.
//! - Replies `{outcome, reason, record_id, version}` go to `P/<serial>/deleterecords/<record_id>/accepted` or
//!   `/rejected` (QoS 1). A missing record is the outcome `not_found`. A request whose serial and record id are
//!   valid is answered on its `/rejected` topic whatever else is wrong with it (an oversize or malformed
//!   payload, a bad `request_id`); wildcard, oversize or missing ids get no reply (no topic can be built from
//!   them). Either way nothing changes but the audit log. The rotation topics answer the same way, for every
//!   principal kind (an operator's or password device's rotate request is `principal_mismatch` on
//!   `.../rotate/rejected`).
//! - A valid device principal acting on another serial is a security event, published to
//!   `FLEETGUARD_SECURITY_TOPIC` for the revoker. So is a delete from the serial's replaced certificate in its
//!   grace period (`not_current_certificate`, kind `replaced_certificate_use`): the revoker cuts that
//!   certificate off alone, REVOKED, the device untouched (the device item is read in the same BatchGetItem). The function never calls the IoT control plane.
//! - `fleetctl records restore <serial> <record_id>` undoes a soft delete (conditional, audited, idempotent);
//!   `fleetctl records history <serial> <record_id>` shows the record and its audit trail.

use crate::model::AuditAction;
use crate::model::{
    truncate_utf8, AuditEntry, Outcome, Principal, Reason, Record, RecordId, Serial,
};
use crate::ports::{
    AuditLog, AuthorizerPrincipal, Entitlement, PrincipalFacts, Publisher, Records, SoftDelete,
    SoftDeleteResult,
};
use crate::Result;
use serde::{Deserialize, Serialize};

/// The event the IoT rule forwards. Identity comes only from the rule's computed fields; the payload
/// contributes `request_id` and `reason`, selected by name (never `SELECT *`, which would let a payload
/// key named `principal` compete with `principal()`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DeleteRecordEvent {
    pub serial: String,
    pub record_id: String,
    pub principal: String,
    #[serde(default)]
    pub client_id: Option<String>,
    /// `timestamp()`: epoch milliseconds when IoT Core received the message.
    pub received_at: i64,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The largest event we look at; an IoT message is at most 128 KB, ours are a few hundred bytes.
pub const MAX_EVENT_BYTES: usize = 8 * 1024;
const MAX_REQUEST_ID: usize = 128;
const MAX_REASON: usize = 256;

/// The answer published on `.../accepted` or `.../rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `accepted`, `rejected` or `not_found`.
    pub outcome: String,
    pub reason: Reason,
    pub record_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What the handler decided (returned by the Lambda, for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteDecision {
    pub outcome: Outcome,
    pub reason: Reason,
    /// Topic the reply went to, if the topic was valid enough to answer on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub security_event: bool,
}

pub struct DeleteRecordService<D, A, P> {
    pub records: D,
    pub audit: A,
    pub publisher: P,
    /// Where cross-serial attempts are published (`FLEETGUARD_SECURITY_TOPIC`).
    pub security_topic: String,
}

const ACTOR: &str = "delete-record";
const ACTION: AuditAction = AuditAction::DeleteRecord;

struct Valid {
    serial: Serial,
    record_id: RecordId,
    principal: Principal,
    event: DeleteRecordEvent,
    request_key: String,
    at: crate::model::Timestamp,
}

impl<D: Records, A: AuditLog, P: Publisher> DeleteRecordService<D, A, P> {
    /// Handles one forwarded message. `Err` only for infrastructure failures (the invocation is retried;
    /// a replay gives the same answer and writes nothing twice).
    pub async fn handle(&self, raw: serde_json::Value) -> Result<DeleteDecision> {
        let address = reply_address(&raw);
        let v = match validate(raw) {
            Ok(v) => v,
            Err((reason, serial, detail)) => {
                let mut entry =
                    AuditEntry::new(ACTOR, ACTION, Outcome::Rejected, reason).detail(detail);
                if let Some(s) = serial {
                    entry = entry.serial(s.as_str());
                }
                crate::ports::record_decision(&self.audit, &entry).await?;
                // Answered on the request's own reply topic when its serial and record id are
                // valid (an oversize or malformed payload included); never on a topic built from
                // invalid parts.
                let reply_topic = match address {
                    Some((serial, record_id, request_id)) => Some(
                        self.reply_to(&serial, &record_id, "rejected", reason, None, request_id)
                            .await?,
                    ),
                    None => None,
                };
                return Ok(DeleteDecision {
                    outcome: Outcome::Rejected,
                    reason,
                    reply_topic,
                    version: None,
                    security_event: false,
                });
            }
        };

        let ctx = self
            .records
            .load_for_delete(&v.principal, &v.serial, &v.record_id)
            .await?;
        let entitlement = match self
            .entitlement(&v, ctx.principal, ctx.replaced_certificate.as_ref())
            .await?
        {
            Ok(e) => e,
            Err((reason, security_event)) => {
                return self.reject(&v, reason, None, security_event).await;
            }
        };
        let request = SoftDelete {
            serial: v.serial.clone(),
            record_id: v.record_id.clone(),
            principal: v.principal.as_str().to_owned(),
            reason: v.event.reason.clone(),
            request_key: v.request_key.clone(),
            at: v.at.clone(),
        };
        let entry = self.entry(&v, Outcome::Accepted, Reason::Deleted);
        let mut record = ctx.record;
        let mut lost_race = false;
        loop {
            let Some(current) = record else {
                return self.reject(&v, Reason::NotFound, None, false).await;
            };
            if current.is_deleted() {
                if current.delete_request.as_deref() == Some(v.request_key.as_str()) {
                    // The same message again (or its twin won the race): same answer, nothing written.
                    return self.accepted(&v, current.version, false).await;
                }
                return self
                    .reject(&v, Reason::AlreadyDeleted, Some(current.version), false)
                    .await;
            }
            match self
                .records
                .soft_delete(&request, current.version, &entitlement, &entry)
                .await?
            {
                SoftDeleteResult::Deleted { version } => {
                    return self.accepted(&v, version, true).await
                }
                SoftDeleteResult::NotEntitled => {
                    let reason = match entitlement {
                        Entitlement::Operator { .. } => Reason::OperatorNotActive,
                        _ => Reason::DeviceNotActive,
                    };
                    return self.reject(&v, reason, None, false).await;
                }
                // Another writer won between our read and our write: read what it left and answer
                // from that at once (already deleted, gone), or try once more if the record is live
                // again (restored meanwhile). A second loss in a row (the record restored and
                // deleted again around us) is answered `record_busy` without another read: the
                // device may send again at once. Never a Lambda error: AWS's retry of the rule's
                // invoke would answer minutes later.
                SoftDeleteResult::Changed if !lost_race => {
                    lost_race = true;
                    record = self.records.get(&v.serial, &v.record_id).await?;
                }
                SoftDeleteResult::Changed => {
                    return self.reject(&v, Reason::RecordBusy, None, false).await;
                }
            }
        }
    }

    /// Ok(entitlement) or Err((reason, is_security_event)).
    async fn entitlement(
        &self,
        v: &Valid,
        facts: Option<PrincipalFacts>,
        replaced: Option<&crate::model::CertificateId>,
    ) -> Result<std::result::Result<Entitlement, (Reason, bool)>> {
        Ok(match (&v.principal, facts) {
            (Principal::Certificate(cert), Some(PrincipalFacts::Certificate(rec))) => {
                if rec.denied {
                    Err((Reason::DeviceNotActive, false))
                } else if rec.serial != v.serial {
                    self.security_event(v, Some(&rec.serial), CROSS_SERIAL)
                        .await?;
                    Err((Reason::PrincipalMismatch, true))
                } else if replaced == Some(cert) {
                    // The serial's replaced certificate: the device's no longer. A signal against
                    // that certificate alone (the revoker cuts it off), never against the device.
                    self.security_event(v, Some(&rec.serial), REPLACED_CERTIFICATE_USE)
                        .await?;
                    Err((Reason::NotCurrentCertificate, true))
                } else {
                    Ok(Entitlement::Certificate {
                        serial: v.serial.clone(),
                        certificate: cert.clone(),
                    })
                }
            }
            (Principal::Authorizer(pid), Some(PrincipalFacts::Authorizer(p))) => match p {
                AuthorizerPrincipal::Operator { active: false, .. } => {
                    Err((Reason::OperatorNotActive, false))
                }
                AuthorizerPrincipal::Operator { serials, .. } => {
                    if serials.contains(&v.serial) {
                        Ok(Entitlement::Operator {
                            principal_id: pid.clone(),
                            serial: v.serial.clone(),
                        })
                    } else {
                        Err((Reason::SerialNotGranted, false))
                    }
                }
                AuthorizerPrincipal::Device { serial } if serial != v.serial => {
                    self.security_event(v, Some(&serial), CROSS_SERIAL).await?;
                    Err((Reason::PrincipalMismatch, true))
                }
                AuthorizerPrincipal::Device { .. } => Ok(Entitlement::PasswordDevice {
                    serial: v.serial.clone(),
                }),
            },
            _ => Err((Reason::UnknownPrincipal, false)),
        })
    }

    fn entry(&self, v: &Valid, outcome: Outcome, reason: Reason) -> AuditEntry {
        let mut e = AuditEntry::new(ACTOR, ACTION, outcome, reason)
            .principal(v.principal.as_str())
            .serial(v.serial.as_str())
            .record(v.record_id.as_str());
        // Keyed by the message, so a replay writes the same entry once.
        e.at = v.at.clone();
        e.dedupe = Some(v.request_key.clone());
        if let Some(c) = &v.event.client_id {
            e = e.detail(format!("client_id={}", truncate_utf8(c, 128)));
        }
        e
    }

    async fn accepted(&self, v: &Valid, version: u64, fresh: bool) -> Result<DeleteDecision> {
        let entry = self.entry(v, Outcome::Accepted, Reason::Deleted);
        if !fresh {
            tracing::info!(reason = "deleted", serial = %v.serial, record_id = %v.record_id, "replayed delete: same answer");
        } else {
            entry.log();
        }
        let topic = self
            .reply(v, "accepted", Reason::Deleted, Some(version))
            .await?;
        Ok(DeleteDecision {
            outcome: Outcome::Accepted,
            reason: Reason::Deleted,
            reply_topic: Some(topic),
            version: Some(version),
            security_event: false,
        })
    }

    async fn reject(
        &self,
        v: &Valid,
        reason: Reason,
        version: Option<u64>,
        security_event: bool,
    ) -> Result<DeleteDecision> {
        let entry = self.entry(v, Outcome::Rejected, reason);
        crate::ports::record_decision(&self.audit, &entry).await?;
        let label = if reason == Reason::NotFound {
            "not_found"
        } else {
            "rejected"
        };
        let topic = self.reply(v, label, reason, version).await?;
        Ok(DeleteDecision {
            outcome: Outcome::Rejected,
            reason,
            reply_topic: Some(topic),
            version,
            security_event,
        })
    }

    async fn reply(
        &self,
        v: &Valid,
        outcome: &str,
        reason: Reason,
        version: Option<u64>,
    ) -> Result<String> {
        let request_id = v.event.request_id.clone();
        self.reply_to(
            &v.serial,
            &v.record_id,
            outcome,
            reason,
            version,
            request_id,
        )
        .await
    }

    /// Publishes the answer on `P/<serial>/deleterecords/<record_id>/<accepted|rejected>`.
    async fn reply_to(
        &self,
        serial: &Serial,
        record_id: &RecordId,
        outcome: &str,
        reason: Reason,
        version: Option<u64>,
        request_id: Option<String>,
    ) -> Result<String> {
        let suffix = if outcome == "accepted" {
            "accepted"
        } else {
            "rejected"
        };
        let topic = format!("P/{serial}/deleterecords/{record_id}/{suffix}");
        let reply = Reply {
            outcome: outcome.to_owned(),
            reason,
            record_id: record_id.to_string(),
            version,
            request_id,
        };
        let payload = serde_json::to_value(&reply)
            .map_err(|e| crate::Error::Corrupt(format!("reply: {e}")))?;
        self.publisher.publish(&topic, &payload).await?;
        Ok(topic)
    }

    async fn security_event(
        &self,
        v: &Valid,
        principal_serial: Option<&Serial>,
        kind: &str,
    ) -> Result<()> {
        let event = SecurityEvent {
            kind: kind.into(),
            principal: v.principal.as_str().to_owned(),
            principal_serial: principal_serial.map(|s| s.to_string()),
            target_serial: v.serial.to_string(),
            record_id: v.record_id.to_string(),
            client_id: v
                .event
                .client_id
                .as_deref()
                .map(|c| truncate_utf8(c, 128).to_owned()),
            received_at: v.event.received_at,
            request_key: v.request_key.clone(),
        };
        tracing::warn!(
            kind,
            principal = %event.principal,
            principal_serial = event.principal_serial.as_deref().unwrap_or("-"),
            target_serial = %event.target_serial,
            "security event"
        );
        let payload = serde_json::to_value(&event)
            .map_err(|e| crate::Error::Corrupt(format!("security event: {e}")))?;
        self.publisher.publish(&self.security_topic, &payload).await
    }
}

/// Published on the security topic when a valid device principal acts on another serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// `cross_serial_attempt`.
    pub kind: String,
    pub principal: String,
    pub principal_serial: Option<String>,
    pub target_serial: String,
    pub record_id: String,
    pub client_id: Option<String>,
    pub received_at: i64,
    pub request_key: String,
}

type Refusal = (Reason, Option<Serial>, String);

/// The kinds of security event delete-record publishes: a principal acting on another serial, and a
/// serial's replaced certificate still used.
pub const CROSS_SERIAL: &str = "cross_serial_attempt";
pub const REPLACED_CERTIFICATE_USE: &str = "replaced_certificate_use";

/// Where a request that does not validate is answered: its serial and record id (from the topic,
/// by the rule) when both are valid, with its `request_id` when that is well formed.
fn reply_address(raw: &serde_json::Value) -> Option<(Serial, RecordId, Option<String>)> {
    let field = |k: &str| raw.get(k).and_then(serde_json::Value::as_str);
    let serial = Serial::parse(field("serial")?).ok()?;
    let record_id = RecordId::parse(field("record_id")?).ok()?;
    let request_id = field("request_id")
        .filter(|id| valid_request_id(id))
        .map(str::to_owned);
    Some((serial, record_id, request_id))
}

fn valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

fn validate(raw: serde_json::Value) -> std::result::Result<Valid, Refusal> {
    let size = serde_json::to_string(&raw)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err((
            Reason::InvalidPayload,
            None,
            format!("event of {size} bytes"),
        ));
    }
    let event: DeleteRecordEvent = serde_json::from_value(raw).map_err(|e| {
        (
            Reason::MalformedEvent,
            None,
            truncate_utf8(&e.to_string(), 200).to_owned(),
        )
    })?;
    let serial =
        Serial::parse(&event.serial).map_err(|e| (Reason::InvalidTopic, None, e.to_string()))?;
    let record_id = RecordId::parse(&event.record_id)
        .map_err(|e| (Reason::InvalidTopic, Some(serial.clone()), e.to_string()))?;
    let principal = Principal::parse(&event.principal).map_err(|e| {
        (
            Reason::UnknownPrincipal,
            Some(serial.clone()),
            e.to_string(),
        )
    })?;
    let received =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(event.received_at) * 1_000_000)
            .map_err(|_| {
                (
                    Reason::MalformedEvent,
                    Some(serial.clone()),
                    "received_at out of range".to_owned(),
                )
            })?;
    if event.received_at <= 0 {
        return Err((
            Reason::MalformedEvent,
            Some(serial),
            "received_at must be positive".into(),
        ));
    }
    if let Some(id) = &event.request_id {
        if !valid_request_id(id) {
            return Err((
                Reason::InvalidPayload,
                Some(serial),
                "request_id must match [A-Za-z0-9_.:-]{1,128}".into(),
            ));
        }
    }
    if let Some(r) = &event.reason {
        if r.chars().count() > MAX_REASON || r.chars().any(char::is_control) {
            return Err((
                Reason::InvalidPayload,
                Some(serial),
                "reason must be at most 256 printable characters".into(),
            ));
        }
    }
    // Same request_id, or same serial + record + received_at: the same message.
    let request_key = {
        use sha2::Digest;
        let basis = match &event.request_id {
            Some(id) => format!("{serial}\n{record_id}\n{}\nreq:{id}", principal.as_str()),
            None => format!(
                "{serial}\n{record_id}\n{}\nat:{}",
                principal.as_str(),
                event.received_at
            ),
        };
        hex::encode(&sha2::Sha256::digest(basis.as_bytes())[..16])
    };
    Ok(Valid {
        serial,
        record_id,
        principal,
        at: crate::model::Timestamp::at(received),
        request_key,
        event,
    })
}

/// Kept public for the records CLI and the revoker: the live/deleted view of a record.
pub fn describe(record: &Record) -> String {
    match &record.deleted_at {
        Some(at) => format!(
            "deleted at {at} by {} (version {})",
            record.deleted_by.as_deref().unwrap_or("?"),
            record.version
        ),
        None => format!("live (version {})", record.version),
    }
}
