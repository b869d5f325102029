//! Signals: what the revoker acts on by itself (Device Defender, tamper reports, the tripwire, the
//! security topic, presence), and what it refuses to take as a command.

use super::*;

#[tokio::test]
async fn defender_in_alarm_quarantines_and_cleared_does_nothing() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let sns = |kind: &str| {
        let message = serde_json::json!({
            "violationId": "v-1", "thingName": serial.as_str(), "securityProfileName": "fleet",
            "behavior": {"name": "msgs", "metric": "aws:num-messages-sent", "criteria": {}},
            "metricValue": {"count": 5000}, "violationEventType": kind, "violationEventTime": 1700000000000_i64
        });
        serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": message.to_string()}}]})
    };
    let r = f.stack.revoker();
    let cleared = r
        .handle(sns("alarm-cleared"), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (cleared[0].outcome, cleared[0].reason),
        (Outcome::Noop, Reason::DefenderAlarmCleared)
    );
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Active
    );

    let alarm = r
        .handle(sns("in-alarm"), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (alarm[0].outcome, alarm[0].reason),
        (Outcome::Accepted, Reason::Quarantined)
    );
    assert_isolated(
        &f,
        serial,
        cert,
        CertificateStatus::Inactive,
        DeviceStatus::Quarantined,
    )
    .await;
    // A later alarm-cleared does not release it either.
    r.handle(sns("alarm-cleared"), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Inactive
    );

    // Release (operator) restores access.
    let rel = r
        .handle(command("release", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(rel[0].reason, Reason::Released);
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Active
    );
    let arn = f.stack.certificate_arn(cert).await;
    assert_eq!(
        f.stack.principal_policies(&arn).await,
        vec![f.stack.fleet_policy.clone()]
    );
    assert!(!f
        .stack
        .group_members(&group(&f))
        .await
        .contains(&serial.to_string()));
    assert_eq!(
        f.stack
            .registry()
            .get_device(serial)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Active
    );
}

#[tokio::test]
async fn tamper_only_from_the_devices_own_certificate() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let (_, other_cert) = &f.b;
    let tamper = |principal: &str| serde_json::json!({"trigger": "tamper", "serial": serial.as_str(), "principal": principal, "received_at": 1});
    let r = f.stack.revoker();
    let forged = r
        .handle(tamper(other_cert), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (forged[0].outcome, forged[0].reason),
        (Outcome::Rejected, Reason::PrincipalMismatch)
    );
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Active
    );
    let own = r
        .handle(tamper(cert), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(own[0].reason, Reason::Quarantined);
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Inactive
    );
}

/// Device b tries to delete device a's record: the security event delete-record publishes.
async fn cross_serial_event(f: &Fleet) -> serde_json::Value {
    let (victim, _) = &f.a;
    f.stack.seed_record(victim, "rec-1").await;
    f.stack
        .delete_service()
        .handle(delete_event(
            victim.as_str(),
            "rec-1",
            &f.b.1,
            1_763_900_000_000,
        ))
        .await
        .unwrap();
    let published = f
        .stack
        .published_on(&f.stack.security_topic)
        .pop()
        .expect("security event");
    fleetguard_tests::security_rule_event(&published)
}

#[tokio::test]
async fn tripwire_quarantines_a_device_guessing_serials() {
    let f = Fleet::new().await;
    let event = cross_serial_event(&f).await;
    assert_tripped(&f, &f.stack.revoker(), event).await;
}

/// `event` quarantines device b (the attacker); its redelivery changes nothing.
async fn assert_tripped(
    f: &Fleet,
    r: &fleetguard_aws::services::AwsRevoker,
    event: serde_json::Value,
) {
    let (attacker, attacker_cert) = &f.b;
    let reports = r
        .handle(event.clone(), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (reports[0].outcome, reports[0].reason),
        (Outcome::Accepted, Reason::Quarantined)
    );
    assert_eq!(reports[0].serial.as_deref(), Some(attacker.as_str()));
    assert_isolated(
        f,
        attacker,
        attacker_cert,
        CertificateStatus::Inactive,
        DeviceStatus::Quarantined,
    )
    .await;
    // Redelivery of the same event: counted once, state unchanged.
    let again = r.handle(event, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(again[0].outcome, Outcome::Noop);
}

#[tokio::test]
async fn malformed_triggers_are_refused() {
    let f = Fleet::new().await;
    let r = f.stack.revoker();
    for event in [
        serde_json::json!(null),
        serde_json::json!({"action": "explode", "serial": "SN1"}),
        serde_json::json!({"action": "revoke", "serial": "SN1", "compromised_since": "yesterday"}),
        serde_json::json!({"action": "revoke", "serial": "+"}),
        serde_json::json!({"Records": [{"Sns": {"Message": "not json"}}]}),
        serde_json::json!({"kind": "cross_serial_attempt"}),
        serde_json::json!({"trigger": "tamper"}),
        serde_json::json!({"trigger": "release", "action": "release", "serial": "SN1"}),
    ] {
        let reports = r
            .handle(event.clone(), OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(reports[0].outcome, Outcome::Rejected, "{event}");
    }
    assert_eq!(
        f.stack.certificate_status(&f.a.1).await,
        CertificateStatus::Active
    );
}

/// Anything published on the security topic reaches the revoker as a signal, never as a command:
/// a release published there releases nothing; a forged cross-serial event (no refusal of
/// delete-record behind it) quarantines nobody and is itself audited.
#[tokio::test]
async fn the_security_topic_carries_signals_never_commands() {
    let f = Fleet::new().await;
    let r = f.stack.revoker();
    let (victim, victim_cert) = &f.a;
    r.handle(
        serde_json::json!({"action": "quarantine", "serial": victim.as_str(), "reason": "test",
            "actor": "ops"}),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let published = |payload: serde_json::Value| fleetguard_tests::security_rule_event(&payload);
    let release = published(
        serde_json::json!({"action": "release", "serial": victim.as_str(),
        "actor": "alice"}),
    );
    let reports = r.handle(release, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(reports[0].outcome, Outcome::Rejected);
    let device = f
        .stack
        .registry()
        .get_device(victim)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        device.status,
        DeviceStatus::Quarantined,
        "still quarantined"
    );

    // A forged cross-serial event naming device b's certificate: nothing happens to b.
    let (other, other_cert) = &f.b;
    let forged = published(serde_json::json!({"kind": "cross_serial_attempt",
        "principal": other_cert, "principal_serial": other.as_str(), "target_serial": victim.as_str(),
        "record_id": "rec-1", "client_id": other.as_str(), "received_at": 1_763_900_000_000i64,
        "request_key": "00112233445566778899aabbccddeeff"}));
    let reports = r.handle(forged, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(
        (reports[0].outcome, reports[0].reason),
        (Outcome::Rejected, Reason::UnverifiedSignal)
    );
    assert_eq!(
        f.stack.certificate_status(other_cert).await,
        CertificateStatus::Active
    );
    let b = f.stack.registry().get_device(other).await.unwrap().unwrap();
    assert_eq!(b.status, DeviceStatus::Active);
    assert_ne!(victim_cert, other_cert);
}

/// AWS IoT's presence event for a session it ended (life-cycle-events.html), through the template's
/// AuthorizationFailureRule: the revoker's event, or `None` where the rule's WHERE leaves it out.
fn through_the_rule(principal: &str, client_id: &str, reason: &str) -> Option<serde_json::Value> {
    let presence = serde_json::json!({
        "clientId": client_id, "timestamp": 1_763_900_000_000i64, "eventType": "disconnected",
        "sessionIdentifier": "00000000-0000-0000-0000-000000000000", "principalIdentifier": principal,
        "clientInitiatedDisconnect": false, "disconnectReason": reason, "versionNumber": 0});
    fleetguard_tests::through_rule(
        "AuthorizationFailureRule",
        &format!("$aws/events/presence/disconnected/{client_id}"),
        &presence,
        None,
    )
}

/// A device that publishes into another serial's topics never reaches delete-record: AWS IoT refuses
/// the publish and disconnects it (AUTH_ERROR). That presence event trips the wire: quarantined, once
/// however often the event is delivered. Other disconnects, and principals that are not devices (an
/// operator refused at a refresh), are no signal.
#[tokio::test]
async fn a_device_disconnected_for_acting_outside_its_policy_trips_the_wire() {
    let f = Fleet::new().await;
    let (attacker, attacker_cert) = &f.b;
    assert_eq!(
        through_the_rule(
            attacker_cert,
            attacker.as_str(),
            "CLIENT_INITIATED_DISCONNECT"
        ),
        None
    );
    let r = f.stack.revoker();
    let operator = through_the_rule("opabc123", "opabc123", "AUTH_ERROR").unwrap();
    let reports = r.handle(operator, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(reports[0].outcome, Outcome::Noop);
    let event = through_the_rule(attacker_cert, attacker.as_str(), "AUTH_ERROR").unwrap();
    assert_eq!(event["trigger"], "authorization_failure");
    assert_tripped(&f, &r, event).await;
    let signals = f
        .stack
        .audit()
        .for_principal(
            &fleetguard_domain::model::Principal::parse(attacker_cert).unwrap(),
            &fleetguard_domain::model::Timestamp::epoch(),
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "security_violation")
        .count();
    assert_eq!(signals, 1, "one signal per session");
}

/// A redelivered security event counts once even when it arrives later (its audit entry is keyed by
/// the message's time and request key, not by the clock): below a threshold of 2, two deliveries of
/// one message quarantine nothing.
#[tokio::test]
async fn a_redelivered_security_event_counts_once_towards_the_threshold() {
    let f = Fleet::new().await;
    let (attacker, attacker_cert) = &f.b;
    let event = cross_serial_event(&f).await;
    let mut r = f.stack.revoker();
    r.config.violation_threshold = 2;
    for delivery in 0..2 {
        let reports = r
            .handle(event.clone(), OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(
            reports[0].reason,
            Reason::BelowThreshold,
            "delivery {delivery}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        f.stack.certificate_status(attacker_cert).await,
        CertificateStatus::Active
    );
    let device = f
        .stack
        .registry()
        .get_device(attacker)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device.status, DeviceStatus::Active);
}

/// SNS delivers at least once: the same in-alarm violation twice is one audit signal.
#[tokio::test]
async fn a_redelivered_defender_alarm_is_one_signal() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let message = serde_json::json!({
        "violationId": "v-dup", "thingName": serial.as_str(), "securityProfileName": "fleet",
        "behavior": {"name": "msgs", "metric": "aws:num-messages-sent", "criteria": {}},
        "metricValue": {"count": 5000}, "violationEventType": "in-alarm",
        "violationEventTime": 1_764_000_000_000_i64
    });
    let sns = serde_json::json!({"Records": [{"EventSource": "aws:sns",
        "Sns": {"Type": "Notification", "Message": message.to_string()}}]});
    let r = f.stack.revoker();
    for _ in 0..2 {
        r.handle(sns.clone(), OffsetDateTime::now_utc())
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let signals = f
        .stack
        .audit()
        .for_principal(
            &fleetguard_domain::model::Principal::parse(cert).unwrap(),
            &fleetguard_domain::model::Timestamp::epoch(),
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "defender_violation")
        .count();
    assert_eq!(signals, 1);
}

/// The attacker holds a device's replaced key (the grace period after a rotation): connecting with it
/// as the serial takes the session of the device's current certificate, AWS IoT says so in its
/// presence events, and the serial is quarantined with every certificate cut off; the audit names
/// both certificates.
#[tokio::test]
async fn the_replaced_key_used_while_the_new_one_is_connected_quarantines_the_serial() {
    let f = Fleet::new().await;
    let s = &f.stack;
    let (serial, current) = &f.a;
    let replaced = in_grace(&f).await;

    let r = s.revoker();
    let now = OffsetDateTime::now_utc();
    let event =
        fleetguard_tests::through_presence("connected", current, serial.as_str(), "s1", 1, None);
    assert_eq!(event["trigger"], "presence");
    assert_eq!(
        r.handle(event, now).await.unwrap()[0].outcome,
        Outcome::Noop
    );
    for event in [
        fleetguard_tests::through_presence(
            "disconnected",
            current,
            serial.as_str(),
            "s1",
            1,
            Some("DUPLICATE_CLIENTID"),
        ),
        fleetguard_tests::through_presence("connected", &replaced, serial.as_str(), "s2", 2, None),
    ] {
        r.handle(event, now).await.unwrap();
    }
    let d = s.registry().get_device(serial).await.unwrap().unwrap();
    assert_eq!(d.status, DeviceStatus::Quarantined);
    assert_eq!(
        s.certificate_status(current).await,
        CertificateStatus::Inactive
    );
    assert_eq!(
        s.certificate_status(&replaced).await,
        CertificateStatus::Inactive
    );
    let shared: Vec<_> = s
        .audit()
        .for_serial(serial.as_str(), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.reason == Reason::SerialShared)
        .collect();
    assert_eq!(shared.len(), 1);
    let detail = shared[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains(current.as_str()) && detail.contains(&replaced),
        "{detail}"
    );
}

/// Device a mid-grace: a certificate of its serial, registered in AWS IoT, that was its own until a
/// confirmed rotation (returned).
async fn in_grace(f: &Fleet) -> String {
    use fleetguard_domain::ports::Rotations;
    let s = &f.stack;
    let (serial, _) = &f.a;
    let replaced = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let mut device = s.registry().get_device(serial).await.unwrap().unwrap();
    let v = device.version;
    device.previous_certificate_id = Some(CertificateId::parse(&replaced).unwrap());
    device.version = v + 1;
    let entry = fleetguard_domain::model::AuditEntry::new(
        "test",
        AuditAction::ConfirmRotation,
        Outcome::Accepted,
        Reason::RotationConfirmed,
    )
    .serial(serial.as_str());
    // Its registry record, as its binding wrote it.
    let record = fleetguard_domain::model::CertificateRecord {
        certificate_id: CertificateId::parse(&replaced).unwrap(),
        serial: serial.clone(),
        denied: false,
        held: false,
        updated_at: fleetguard_domain::model::Timestamp::now(),
    };
    assert!(s
        .services
        .rotations()
        .save(&device, v, Some(&record), &entry)
        .await
        .unwrap());
    replaced
}

/// A delete from the serial's replaced certificate is refused `not_current_certificate` on its reply
/// topic and is a security signal against that certificate alone: through the security rule the
/// revoker (which finds delete-record's refusal in the audit) revokes it; the device and its current
/// certificate are untouched.
#[tokio::test]
async fn a_delete_from_the_replaced_certificate_cuts_off_that_certificate_alone() {
    let f = Fleet::new().await;
    let s = &f.stack;
    let (serial, current) = &f.a;
    let replaced = in_grace(&f).await;
    let rid = s.seed_record(serial, "rec-1").await;
    let d = s
        .delete_service()
        .handle(delete_event(serial.as_str(), "rec-1", &replaced, now_ms()))
        .await
        .unwrap();
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::NotCurrentCertificate)
    );
    assert!(d.security_event);
    assert!(!s.record(serial, &rid).await.unwrap().is_deleted());
    let events = s.published_on(&s.security_topic);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "replaced_certificate_use");
    let reports = s
        .revoker()
        .handle(
            fleetguard_tests::security_rule_event(&events[0]),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(reports[0].reason, Reason::Revoked, "{reports:?}");
    assert_eq!(
        s.certificate_status(&replaced).await,
        CertificateStatus::Revoked
    );
    assert_eq!(
        s.certificate_status(current).await,
        CertificateStatus::Active
    );
    let device = s.registry().get_device(serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Active);
    // The current certificate still deletes.
    let d = s
        .delete_service()
        .handle(delete_event(serial.as_str(), "rec-1", current, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);
}
