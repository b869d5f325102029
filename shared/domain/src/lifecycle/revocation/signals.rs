//! The revoker's triggers that are signals, never commands: Device Defender alarms, tamper reports,
//! delete-record's security events, AWS IoT's presence events (authorization failures, two parties
//! on one serial), and the tripwire that counts them.

use super::*;
use crate::model::AuditAction;

impl<R, C, N, D, A> Revoker<R, C, N, D, A>
where
    R: Registry,
    C: IotControl,
    N: Connections,
    D: Records,
    A: AuditLog,
{
    pub(super) async fn defender(&self, v: ViolationEvent, _now: OffsetDateTime) -> Result<Report> {
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
                AuditAction::DefenderViolation,
                Outcome::Noop,
                Reason::DefenderAlarmCleared,
            )
            .serial(serial.as_str())
            .detail(format!("{} {}", v.violation_event_type, v.violation_id));
            crate::ports::record_decision(&self.audit, &entry).await?;
            return Ok(report(&entry, None));
        }
        let Some(target) = self.resolve(&serial).await? else {
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
            AuditAction::DefenderViolation,
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
            .and_then(crate::model::epoch_ms_timestamp)
        {
            signal.at = at;
            signal.dedupe = Some(format!("defender:{}", v.violation_id));
        }
        crate::ports::record_decision(&self.audit, &signal).await?;
        self.isolate(&target, self.config.defender_action, actor, &v.violation_id)
            .await
    }

    pub(super) async fn tamper(&self, t: TamperReport, _now: OffsetDateTime) -> Result<Report> {
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
            AuditAction::TamperReport,
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

    pub(super) async fn security_event(
        &self,
        e: SecurityEvent,
        now: OffsetDateTime,
    ) -> Result<Report> {
        // Acted on only if delete-record's refusal it reports is in the audit log: the same serial,
        // time and request key, that principal, that record. A forged event changes nothing.
        let at = crate::model::epoch_ms_timestamp(e.received_at);
        let reported = match &at {
            Some(at) => {
                self.audit
                    .find(&e.target_serial, at, &e.request_key)
                    .await?
            }
            None => None,
        };
        let replaced = e.kind == crate::records::delete::REPLACED_CERTIFICATE_USE;
        let refusal = if replaced {
            Reason::NotCurrentCertificate
        } else {
            Reason::PrincipalMismatch
        };
        let genuine = reported.is_some_and(|r| {
            r.action == AuditAction::DeleteRecord
                && r.reason == refusal
                && r.principal.as_deref() == Some(e.principal.as_str())
                && r.record_id.as_deref() == Some(e.record_id.as_str())
        });
        if !genuine {
            let entry = AuditEntry::new(
                "tripwire",
                AuditAction::SecurityViolation,
                Outcome::Rejected,
                Reason::UnverifiedSignal,
            )
            .principal(&e.principal)
            .detail(format!(
                "no delete-record refusal of {} on {}/{} at {}",
                e.principal,
                e.target_serial,
                e.record_id,
                at.as_ref().map_or("?", Timestamp::as_str)
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
            received: crate::model::epoch_ms(e.received_at).unwrap_or(now),
            why: "cross-serial delete attempt",
        };
        self.tripwire(signal).await
    }

    /// A device AWS IoT disconnected for acting outside its policy: a tripwire signal like a
    /// cross-serial delete attempt (a device reaching for another serial's topics never gets as far
    /// as a delete: the broker refuses it first). Other principals (an operator refused at a refresh)
    /// are not devices: nothing to count.
    pub(super) async fn authorization_failure(
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
                AuditAction::SecurityViolation,
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
                .and_then(crate::model::epoch_ms)
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
    pub(super) async fn presence(&self, e: PresenceEvent, now: OffsetDateTime) -> Result<Report> {
        let quiet = |detail: &str| {
            let entry = AuditEntry::new(
                "tripwire",
                AuditAction::Presence,
                Outcome::Noop,
                Reason::PresenceNoted,
            )
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
        let session = crate::model::LiveSession {
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

    pub(super) async fn shared_serial(
        &self,
        serial: &Serial,
        device: &Device,
        cert: &CertificateId,
        other: &crate::model::LiveSession,
        e: &PresenceEvent,
        now: OffsetDateTime,
    ) -> Result<Report> {
        let actor = "tripwire";
        let mut signal = AuditEntry::new(
            actor,
            AuditAction::SecurityViolation,
            Outcome::Accepted,
            Reason::SerialShared,
        )
        .serial(serial.as_str())
        .principal(cert.as_str())
        .detail(format!(
            "two parties hold the serial: certificates {} (session {}, version {}) and {} (session {}, version {}) took its session from each other",
            cert, e.session, e.version, other.certificate_id, other.session, other.version
        ));
        signal.at = Timestamp::at(
            e.received_at
                .and_then(crate::model::epoch_ms)
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
    pub(super) async fn tripwire(&self, s: Signal<'_>) -> Result<Report> {
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
            AuditAction::SecurityViolation,
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
        signal.at = Timestamp::at(s.received);
        signal.dedupe = Some(s.dedupe);
        crate::ports::record_decision(&self.audit, &signal).await?;
        let window_start = Timestamp::at(s.received - self.config.violation_window);
        let earlier: Vec<AuditEntry> = self
            .audit
            .for_principal(&Principal::Certificate(cert.clone()), &window_start)
            .await?
            .into_iter()
            .filter(|x| x.action == AuditAction::SecurityViolation)
            .collect();
        // The by-principal index is only eventually consistent: the signal just written (or
        // written by this message's first delivery) counts whether the index shows it yet or not.
        let shown = earlier
            .iter()
            .any(|x| x.at == signal.at && x.detail == signal.detail);
        let count = earlier.len() + usize::from(!shown);
        if count < self.config.violation_threshold as usize {
            let entry = AuditEntry::new(
                actor,
                AuditAction::Quarantine,
                Outcome::Noop,
                Reason::BelowThreshold,
            )
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
}
