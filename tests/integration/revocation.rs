//! Revocation through the real adapters against the emulator: stop a compromised device now, keep it
//! out, undo what it did.

use fleetguard_domain::model::AuditAction;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{CertificateId, DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::ports::{AuditLog, Registry};
use fleetguard_tests::{delete_event, jitr_event, Fleet};
use time::OffsetDateTime;

mod handshake;

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn group(f: &Fleet) -> String {
    format!("{}-quarantine", f.stack.prefix)
}

/// The device is cut off: certificate status, policy and thing detached, in the quarantine group,
/// session closed, registry status.
async fn assert_isolated(
    f: &Fleet,
    serial: &Serial,
    cert: &str,
    cert_status: CertificateStatus,
    device: DeviceStatus,
) {
    let s = &f.stack;
    assert_eq!(s.certificate_status(cert).await, cert_status);
    let arn = s.certificate_arn(cert).await;
    assert!(
        s.principal_policies(&arn).await.is_empty(),
        "fleet policy detached"
    );
    assert!(
        s.thing_principals(serial.as_str()).await.is_empty(),
        "thing principal detached"
    );
    assert!(s
        .group_members(&group(f))
        .await
        .contains(&serial.to_string()));
    assert!(
        s.emulator.disconnects().contains(&serial.to_string()),
        "live session cut"
    );
    assert_eq!(
        s.registry()
            .get_device(serial)
            .await
            .unwrap()
            .unwrap()
            .status,
        device
    );
}

fn command(action: &str, serial: &Serial) -> serde_json::Value {
    serde_json::json!({"action": action, "serial": serial.as_str(), "reason": "stolen key", "actor": "alice"})
}

#[tokio::test]
async fn revoke_isolates_the_device_and_replays_converge() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let r = f.stack.revoker();
    let reports = r
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (reports[0].outcome, reports[0].reason),
        (Outcome::Accepted, Reason::Revoked)
    );
    assert_isolated(
        &f,
        serial,
        cert,
        CertificateStatus::Revoked,
        DeviceStatus::Revoked,
    )
    .await;
    let deny = f
        .stack
        .registry()
        .get_certificate(&CertificateId::parse(cert).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(deny.denied, "certificate on the deny-list");
    let audit = f
        .stack
        .audit()
        .for_serial(serial.as_str(), 20)
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "revoke" && e.actor == "operator:alice"));

    // Replay: no error, same state.
    let again = r
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (again[0].outcome, again[0].reason),
        (Outcome::Noop, Reason::Revoked)
    );
    assert_isolated(
        &f,
        serial,
        cert,
        CertificateStatus::Revoked,
        DeviceStatus::Revoked,
    )
    .await;
    // The other device is untouched.
    let (other, other_cert) = &f.b;
    assert_eq!(
        f.stack.certificate_status(other_cert).await,
        CertificateStatus::Active
    );
    assert_eq!(
        f.stack
            .registry()
            .get_device(other)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Active
    );
    // Quarantine and release never soften a revocation.
    let q = r
        .handle(command("quarantine", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(q[0].reason, Reason::RevokedIsFinal);
    let rel = r
        .handle(command("release", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (rel[0].outcome, rel[0].reason),
        (Outcome::Rejected, Reason::RevokedIsFinal)
    );
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Revoked
    );
}

#[tokio::test]
async fn fault_after_certificate_update_then_replay_converges() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    // The step after UpdateCertificate is the forced disconnect: make it fail on every retry.
    f.stack
        .emulator
        .inject_fault("DELETE /connections/{id}", serial.as_str(), 1, 3, 500);
    let r = f.stack.revoker();
    let err = r
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await;
    assert!(err.is_err());
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Revoked,
        "certificate already stopped"
    );
    let reports = r
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(reports[0].reason, Reason::Revoked);
    assert_isolated(
        &f,
        serial,
        cert,
        CertificateStatus::Revoked,
        DeviceStatus::Revoked,
    )
    .await;
}

#[tokio::test]
async fn rollback_restores_exactly_the_principals_deletes_since_t() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let s = &f.stack;
    let now = OffsetDateTime::now_utc();
    let before = now - time::Duration::hours(3);
    let after = now - time::Duration::hours(1);
    let since = now - time::Duration::hours(2);
    let old = s.seed_record(serial, "old").await;
    let recent = s.seed_record(serial, "recent").await;
    let by_operator = s.seed_record(serial, "by-operator").await;
    let svc = s.delete_service();
    svc.handle(delete_event(serial.as_str(), "old", cert, ms(before)))
        .await
        .unwrap();
    svc.handle(delete_event(serial.as_str(), "recent", cert, ms(after)))
        .await
        .unwrap();
    let op = format!("op{}", "ef".repeat(20));
    s.put_operator(&op, true, &[serial]).await;
    svc.handle(delete_event(serial.as_str(), "by-operator", &op, ms(after)))
        .await
        .unwrap();

    let mut cmd = command("revoke", serial);
    cmd["rollback"] = true.into();
    cmd["compromised_since"] = fleetguard_domain::model::rfc3339(since).into();
    let reports = f.stack.revoker().handle(cmd.clone(), now).await.unwrap();
    assert_eq!(reports[0].restored, 1);
    assert!(
        !s.record(serial, &recent).await.unwrap().is_deleted(),
        "deleted by the principal after T: restored"
    );
    assert!(
        s.record(serial, &old).await.unwrap().is_deleted(),
        "before T: left alone"
    );
    assert!(
        s.record(serial, &by_operator).await.unwrap().is_deleted(),
        "another principal's delete: left alone"
    );
    // Replay restores nothing more.
    let again = f.stack.revoker().handle(cmd, now).await.unwrap();
    assert_eq!(again[0].restored, 0);
}

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
async fn provisioning_refuses_the_revoked_serial_until_a_replacement_is_approved() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let s = &f.stack;
    s.revoker()
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    let p = s.provisioner();
    // The old certificate's registration event replayed: nothing re-activates it.
    let old = p
        .handle(jitr_event(cert, &f.ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(old.outcome, Outcome::Noop);
    assert_eq!(s.certificate_status(cert).await, CertificateStatus::Revoked);
    // A new certificate for the revoked serial: refused.
    let new1 = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = p
        .handle(jitr_event(&new1, &f.ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::SerialRevoked);
    // An operator approves one replacement.
    assert!(s.registry().approve_replacement(serial).await.unwrap());
    let new2 = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = p
        .handle(jitr_event(&new2, &f.ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Provisioned);
    assert_eq!(s.certificate_status(&new2).await, CertificateStatus::Active);
    let device = s.registry().get_device(serial).await.unwrap().unwrap();
    assert_eq!(
        (device.status, device.certificate_id.unwrap().to_string()),
        (DeviceStatus::Active, new2.clone())
    );
    // Only once.
    let new3 = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = p
        .handle(jitr_event(&new3, &f.ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::SerialBoundToOtherCertificate);
    let audit = s.audit().for_serial(serial.as_str(), 50).await.unwrap();
    assert!(audit.iter().any(|e| e.reason == Reason::SerialRevoked));
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

fn now_ms() -> i64 {
    ms(OffsetDateTime::now_utc())
}

#[tokio::test]
async fn a_released_false_alarm_does_not_widen_a_later_rollback() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let s = &f.stack;
    let r = s.revoker();
    let tamper = || {
        serde_json::json!({"trigger": "tamper", "serial": serial.as_str(), "principal": cert,
            "received_at": now_ms()})
    };
    let first = s.seed_record(serial, "january").await;
    let second = s.seed_record(serial, "june").await;
    let svc = s.delete_service();
    // A legitimate delete, then a false alarm: quarantined, looked at, released.
    svc.handle(delete_event(serial.as_str(), "january", cert, now_ms()))
        .await
        .unwrap();
    let q = r.handle(tamper(), OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(q[0].reason, Reason::Quarantined);
    let rel = r
        .handle(command("release", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(rel[0].reason, Reason::Released);
    // Later the real compromise: a delete, a signal, a revoke with the default window.
    svc.handle(delete_event(serial.as_str(), "june", cert, now_ms()))
        .await
        .unwrap();
    r.handle(tamper(), OffsetDateTime::now_utc()).await.unwrap();
    let mut cmd = command("revoke", serial);
    cmd["rollback"] = true.into();
    let reports = r.handle(cmd, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(
        (reports[0].restored, reports[0].rollback),
        (1, Some(Reason::Restored))
    );
    assert!(!s.record(serial, &second).await.unwrap().is_deleted());
    assert!(
        s.record(serial, &first).await.unwrap().is_deleted(),
        "the delete before the released false alarm stays"
    );
}

#[tokio::test]
async fn revoking_a_replaced_certificate_leaves_the_new_one_live() {
    let f = Fleet::new().await;
    let (serial, old) = &f.a;
    let s = &f.stack;
    let r = s.revoker();
    let stolen = s.seed_record(serial, "stolen").await;
    s.delete_service()
        .handle(delete_event(serial.as_str(), "stolen", old, now_ms()))
        .await
        .unwrap();
    // Revoked (without rollback), replaced with a new certificate: it leaves the quarantine group.
    r.handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(s
        .group_members(&group(&f))
        .await
        .contains(&serial.to_string()));
    assert!(s.registry().approve_replacement(serial).await.unwrap());
    let new = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = s.jitr(&new, &f.ca_id).await;
    assert_eq!(d.reason, Reason::Provisioned);
    assert!(!s
        .group_members(&group(&f))
        .await
        .contains(&serial.to_string()));

    // Forensics later: revoke the old certificate by id, with rollback of what it did.
    let reports = r
        .handle(
            serde_json::json!({"action": "revoke", "certificate_id": old, "rollback": true,
                "compromised_since": "2020-01-01T00:00:00Z", "actor": "alice"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(reports[0].restored, 1, "{reports:?}");
    assert!(!s.record(serial, &stolen).await.unwrap().is_deleted());
    // The serial's current certificate and device are untouched.
    assert_eq!(s.certificate_status(&new).await, CertificateStatus::Active);
    let device = s.registry().get_device(serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Active);
    assert_eq!(device.certificate_id.unwrap().as_str(), new);
    assert!(!s
        .group_members(&group(&f))
        .await
        .contains(&serial.to_string()));
    let arn = s.certificate_arn(&new).await;
    assert!(
        !s.principal_policies(&arn).await.is_empty(),
        "new certificate keeps its policy"
    );
    // And the new certificate still deletes.
    let d = s
        .delete_service()
        .handle(delete_event(serial.as_str(), "stolen", &new, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);
}

#[tokio::test]
async fn a_client_that_is_not_connected_counts_as_cut_off() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    // AWS answers DeleteConnection for a client id that is not connected with a 404
    // ResourceNotFoundException: the revoke goes on and succeeds.
    f.stack.emulator.inject_error(
        "DELETE /connections/{id}",
        serial.as_str(),
        404,
        "ResourceNotFoundException",
    );
    let reports = f
        .stack
        .revoker()
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (reports[0].outcome, reports[0].reason),
        (Outcome::Accepted, Reason::Revoked)
    );
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Revoked
    );
    assert!(
        !f.stack.emulator.disconnects().contains(&serial.to_string()),
        "the emulator answered the 404, it recorded no disconnect"
    );
}

/// Rollback of N deletes by one principal (N = `FLEETGUARD_ROLLBACK_N`, default 10,000): the time and
/// the DynamoDB calls, printed for the README's performance table (never asserted: against moto this
/// measures moto). `scripts/bench.sh` runs it:
/// `cargo test -p fleetguard-tests --test revocation -- --ignored --nocapture rollback_of_many`.
#[tokio::test]
#[ignore]
async fn rollback_of_many_deletes_by_one_principal() {
    use aws_sdk_dynamodb::types::{AttributeValue as V, PutRequest, WriteRequest};
    let n: usize = std::env::var("FLEETGUARD_ROLLBACK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let s = fleetguard_tests::Stack::new().await;
    let serial = Serial::parse(&fleetguard_tests::unique("PW")).unwrap();
    let registry = s.registry();
    registry.import_serial(&serial).await.unwrap();
    registry
        .transition(&serial, &[DeviceStatus::Manufactured], DeviceStatus::Active)
        .await
        .unwrap();
    let principal =
        fleetguard_domain::authorization::authorizer::device_principal(&serial).to_string();
    let at = fleetguard_domain::model::now_rfc3339();
    let records: Vec<WriteRequest> = (0..n)
        .map(|i| {
            let item = [
                ("serial", V::S(serial.to_string())),
                ("record_id", V::S(format!("r{i:06}"))),
                ("version", V::N("2".into())),
                ("deleted_at", V::S(at.clone())),
                ("deleted_by", V::S(principal.clone())),
                ("delete_request", V::S(format!("k{i}"))),
            ];
            let put = PutRequest::builder()
                .set_item(Some(
                    item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                ))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in records.chunks(25) {
        s.ddb
            .batch_write_item()
            .request_items(&s.tables.records, chunk.to_vec())
            .send()
            .await
            .unwrap();
    }
    let before = s.emulator.calls_matching(&s.prefix);
    let t = std::time::Instant::now();
    let report = s
        .revoker()
        .handle(
            serde_json::json!({"action": "revoke", "serial": serial.as_str(), "rollback": true,
                "compromised_since": "2020-01-01T00:00:00Z", "actor": "bench"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let elapsed = t.elapsed();
    let calls = fleetguard_tests::call_diff(&before, &s.emulator.calls_matching(&s.prefix));
    assert_eq!(report[0].restored, n);
    println!("rollback of {n} deletes by one principal: {elapsed:.1?}; calls {calls:?}");
}

/// A password stored for a manufactured device that is then provisioned with a certificate never
/// becomes usable: the binding removes the password identity, and later transitions (quarantine,
/// release) have nothing to bring back.
#[tokio::test]
async fn a_device_that_gets_a_certificate_never_keeps_a_password() {
    use fleetguard_domain::authorization::authorizer::{
        authorize, device_principal, hash_password, IdentityStore,
    };
    use fleetguard_domain::authorization::password_devices::{set_password, PasswordResult};
    let f = Fleet::new().await;
    let s = &f.stack;
    let serial = Serial::parse(&fleetguard_tests::unique("SN")).unwrap();
    let registry = s.registry();
    registry.import_serial(&serial).await.unwrap();
    let store = s.services.identities();
    let hash = hash_password("correct horse").unwrap();
    let stored = set_password(&registry, &store, &s.audit(), &serial, hash, false, "test")
        .await
        .unwrap();
    assert_eq!(
        stored,
        PasswordResult::Stored {
            status: DeviceStatus::Manufactured
        }
    );
    let cert = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = s.jitr(&cert, &f.ca_id).await;
    assert_eq!(d.reason, Reason::Provisioned);
    let pid = device_principal(&serial);
    assert!(
        store.get_identity(&pid).await.unwrap().is_none(),
        "password identity removed"
    );
    let r = s.revoker();
    r.handle(command("quarantine", &serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    r.handle(command("release", &serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(store.get_identity(&pid).await.unwrap().is_none());
    let engine =
        fleetguard_tests::TestIdp::new("https://login.example.test/", "fleetguard").authorizer();
    let attempt =
        fleetguard_tests::mqtt_connect(serial.as_str(), b"correct horse", serial.as_str());
    let d = authorize(&engine, &store, attempt, OffsetDateTime::now_utc()).await;
    assert!(!d.is_authenticated());
    // And the password path is refused from now on.
    let again = set_password(
        &registry,
        &store,
        &s.audit(),
        &serial,
        hash_password("x").unwrap(),
        true,
        "test",
    )
    .await
    .unwrap();
    assert!(matches!(
        again,
        PasswordResult::Refused {
            reason: Reason::HasCertificate,
            ..
        }
    ));
}

/// An active password device that is given a certificate (JITR, CA-signed) is bound to it, as the
/// README says: it then signs in with the certificate and its password is refused. (It was refused
/// `registry_conflict` and its certificate REVOKED.)
#[tokio::test]
async fn an_active_password_device_is_bound_to_its_first_certificate() {
    use fleetguard_domain::authorization::authorizer::{
        authorize, device_principal, secret::DeviceSecret, IdentityStore,
    };
    use fleetguard_domain::authorization::password_devices::{set_password, PasswordResult};
    let f = Fleet::new().await;
    let s = &f.stack;
    let serial = Serial::parse(&fleetguard_tests::unique("SN")).unwrap();
    let registry = s.registry();
    registry.import_serial(&serial).await.unwrap();
    let store = s.services.identities();
    let secret = DeviceSecret::generate().unwrap();
    let set = set_password(
        &registry,
        &store,
        &s.audit(),
        &serial,
        secret.digest(&serial),
        true,
        "test",
    )
    .await
    .unwrap();
    assert_eq!(set, PasswordResult::Active);
    let cert = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = s.jitr(&cert, &f.ca_id).await;
    assert_eq!(d.reason, Reason::Provisioned);
    let device = registry.get_device(&serial).await.unwrap().unwrap();
    assert_eq!(
        (
            device.status,
            device.certificate_id.as_ref().map(|c| c.as_str())
        ),
        (DeviceStatus::Active, Some(cert.as_str()))
    );
    assert!(store
        .get_identity(&device_principal(&serial))
        .await
        .unwrap()
        .is_none());
    let engine =
        fleetguard_tests::TestIdp::new("https://login.example.test/", "fleetguard").authorizer();
    let attempt = fleetguard_tests::mqtt_connect(
        serial.as_str(),
        secret.expose().as_bytes(),
        serial.as_str(),
    );
    let d = authorize(&engine, &store, attempt, OffsetDateTime::now_utc()).await;
    assert_eq!(d.reason.as_str(), "unknown_identity");
}

/// A batch's claim certificate is no device's, yet a leaked one must be stoppable through fleetguard:
/// `revoke` by its id sets it REVOKED (it can connect nowhere, so it calls RegisterThing no more),
/// audited. Anything else on an unknown certificate is still `unknown_device`.
#[tokio::test]
async fn a_leaked_claim_certificate_can_be_revoked() {
    let f = Fleet::new().await;
    let claim_ca = fleetguard_tests::TestCa::new("AWS IoT issuer (test)");
    let pem = claim_ca.issue("AWS IoT Certificate");
    let claim = f
        .stack
        .iot
        .register_certificate_without_ca()
        .certificate_pem(&pem)
        .status(aws_sdk_iot::types::CertificateStatus::Active)
        .send()
        .await
        .unwrap()
        .certificate_id
        .unwrap();
    let r = f.stack.revoker();
    let quarantine = r
        .handle(
            serde_json::json!({"action": "quarantine", "certificate_id": claim, "actor": "ops"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(quarantine[0].reason, Reason::UnknownDevice);
    let revoke = r
        .handle(
            serde_json::json!({"action": "revoke", "certificate_id": claim, "actor": "ops",
                "reason": "claim leaked"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(
        (revoke[0].outcome, revoke[0].reason),
        (Outcome::Accepted, Reason::Revoked)
    );
    assert_eq!(
        f.stack.certificate_status(&claim).await,
        CertificateStatus::Revoked
    );
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
