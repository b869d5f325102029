//! Delete-record through the real adapters against the emulator: a principal may delete only its own
//! serial's records; deletes are soft, replay-safe and restorable.

use fleetguard_domain::model::{AuditAction, Outcome, Reason, Serial};
use fleetguard_domain::ports::{AuditLog, RestoreResult};
use fleetguard_domain::records::delete::SecurityEvent;
use fleetguard_domain::records::restore::restore_record;
use fleetguard_tests::{delete_event, Fleet};

fn topic(serial: &Serial, record: &str, suffix: &str) -> String {
    format!("P/{serial}/deleterecords/{record}/{suffix}")
}

#[tokio::test]
async fn own_serial_is_soft_deleted_and_accepted() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let rid = f.stack.seed_record(serial, "rec-1").await;
    let d = f
        .stack
        .delete_service()
        .handle(delete_event(
            serial.as_str(),
            "rec-1",
            cert,
            1_763_900_000_000,
        ))
        .await
        .unwrap();
    assert_eq!(
        (d.outcome, d.reason, d.version),
        (Outcome::Accepted, Reason::Deleted, Some(2))
    );
    let record = f
        .stack
        .record(serial, &rid)
        .await
        .expect("item kept: soft delete");
    assert!(record.is_deleted());
    assert_eq!(record.deleted_by.as_deref(), Some(cert.as_str()));
    assert_eq!(record.delete_reason.as_deref(), Some("operator cleanup"));
    assert_eq!(record.version, 2);
    assert_eq!(record.data.as_deref(), Some("payload"));
    let replies = f.stack.published_on(&topic(serial, "rec-1", "accepted"));
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["outcome"], "accepted");
    assert_eq!(replies[0]["version"], 2);
    assert_eq!(replies[0]["record_id"], "rec-1");
    let audit = f
        .stack
        .audit()
        .for_serial(serial.as_str(), 10)
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "delete_record"
        && e.reason == Reason::Deleted
        && e.principal.as_deref() == Some(cert.as_str())
        && e.record_id.as_deref() == Some("rec-1")));
}

#[tokio::test]
async fn another_devices_serial_is_refused_and_reported() {
    let f = Fleet::new().await;
    let (victim, _) = &f.a;
    let (attacker, attacker_cert) = &f.b;
    let rid = f.stack.seed_record(victim, "rec-1").await;
    let d = f
        .stack
        .delete_service()
        .handle(delete_event(
            victim.as_str(),
            "rec-1",
            attacker_cert,
            1_763_900_000_001,
        ))
        .await
        .unwrap();
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::PrincipalMismatch)
    );
    assert!(d.security_event);
    let record = f.stack.record(victim, &rid).await.unwrap();
    assert!(!record.is_deleted());
    assert_eq!(record.version, 1);
    let rejected = f.stack.published_on(&topic(victim, "rec-1", "rejected"));
    assert_eq!(rejected[0]["reason"], "principal_mismatch");
    let events: Vec<SecurityEvent> = f
        .stack
        .published_on(&f.stack.security_topic)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "cross_serial_attempt");
    assert_eq!(&events[0].principal, attacker_cert);
    assert_eq!(
        events[0].principal_serial.as_deref(),
        Some(attacker.as_str())
    );
    assert_eq!(events[0].target_serial, victim.as_str());
}

#[tokio::test]
async fn unknown_principal_is_refused() {
    let f = Fleet::new().await;
    let (serial, _) = &f.a;
    let rid = f.stack.seed_record(serial, "rec-1").await;
    for principal in [
        "e".repeat(64),
        format!("op{}", "1".repeat(40)),
        "n/a".into(),
        "".into(),
    ] {
        let d = f
            .stack
            .delete_service()
            .handle(delete_event(
                serial.as_str(),
                "rec-1",
                &principal,
                1_763_900_000_002,
            ))
            .await
            .unwrap();
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Rejected, Reason::UnknownPrincipal),
            "{principal}"
        );
        assert!(!d.security_event);
    }
    assert!(!f.stack.record(serial, &rid).await.unwrap().is_deleted());
}

#[tokio::test]
async fn quarantined_or_revoked_device_cannot_delete() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let rid = f.stack.seed_record(serial, "rec-1").await;
    for (i, status) in ["quarantined", "revoked"].into_iter().enumerate() {
        f.stack.set_device_status(serial, status).await;
        let d = f
            .stack
            .delete_service()
            .handle(delete_event(
                serial.as_str(),
                "rec-1",
                cert,
                1_763_900_000_010 + i as i64,
            ))
            .await
            .unwrap();
        // Caught inside the delete transaction: a revocation racing the delete wins.
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Rejected, Reason::DeviceNotActive),
            "{status}"
        );
    }
    assert!(!f.stack.record(serial, &rid).await.unwrap().is_deleted());
}

#[tokio::test]
async fn operator_may_delete_only_granted_serials() {
    let f = Fleet::new().await;
    let (granted, _) = &f.a;
    let (other, _) = &f.b;
    let op = format!("op{}", "ab".repeat(20));
    f.stack.put_operator(&op, true, &[granted]).await;
    f.stack.seed_record(granted, "rec-1").await;
    let rid_other = f.stack.seed_record(other, "rec-1").await;
    let svc = f.stack.delete_service();
    let ok = svc
        .handle(delete_event(
            granted.as_str(),
            "rec-1",
            &op,
            1_763_900_000_020,
        ))
        .await
        .unwrap();
    assert_eq!(
        (ok.outcome, ok.reason),
        (Outcome::Accepted, Reason::Deleted)
    );
    let no = svc
        .handle(delete_event(
            other.as_str(),
            "rec-1",
            &op,
            1_763_900_000_021,
        ))
        .await
        .unwrap();
    assert_eq!(
        (no.outcome, no.reason),
        (Outcome::Rejected, Reason::SerialNotGranted)
    );
    assert!(!f
        .stack
        .record(other, &rid_other)
        .await
        .unwrap()
        .is_deleted());

    let disabled = format!("op{}", "cd".repeat(20));
    f.stack.put_operator(&disabled, false, &[other]).await;
    let d = svc
        .handle(delete_event(
            other.as_str(),
            "rec-1",
            &disabled,
            1_763_900_000_022,
        ))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::OperatorNotActive);
}

#[tokio::test]
async fn replay_changes_nothing_and_gives_the_same_answer() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let rid = f.stack.seed_record(serial, "rec-1").await;
    let svc = f.stack.delete_service();
    let event = delete_event(serial.as_str(), "rec-1", cert, 1_763_900_000_030);
    let first = svc.handle(event.clone()).await.unwrap();
    let audit_items = f.stack.count(&f.stack.tables.audit).await;
    let before = f.stack.record(serial, &rid).await.unwrap();
    let again = svc.handle(event).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(f.stack.record(serial, &rid).await.unwrap(), before);
    assert_eq!(
        f.stack.count(&f.stack.tables.audit).await,
        audit_items,
        "no duplicate audit entry"
    );

    // Same request_id at a different time is the same message too.
    let rid2 = f.stack.seed_record(serial, "rec-2").await;
    let mut e1 = delete_event(serial.as_str(), "rec-2", cert, 1_763_900_000_040);
    e1["request_id"] = "req-42".into();
    let mut e2 = e1.clone();
    e2["received_at"] = 1_763_900_009_999_i64.into();
    let a = svc.handle(e1).await.unwrap();
    let b = svc.handle(e2).await.unwrap();
    assert_eq!((a.reason, a.version), (b.reason, b.version));
    assert_eq!(f.stack.record(serial, &rid2).await.unwrap().version, 2);
}

#[tokio::test]
async fn already_deleted_and_missing_records_are_outcomes() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    f.stack.seed_record(serial, "rec-1").await;
    let svc = f.stack.delete_service();
    svc.handle(delete_event(
        serial.as_str(),
        "rec-1",
        cert,
        1_763_900_000_050,
    ))
    .await
    .unwrap();
    let second = svc
        .handle(delete_event(
            serial.as_str(),
            "rec-1",
            cert,
            1_763_900_000_051,
        ))
        .await
        .unwrap();
    assert_eq!(
        (second.outcome, second.reason, second.version),
        (Outcome::Rejected, Reason::AlreadyDeleted, Some(2))
    );

    let missing = svc
        .handle(delete_event(
            serial.as_str(),
            "no-such-record",
            cert,
            1_763_900_000_052,
        ))
        .await
        .unwrap();
    assert_eq!(missing.reason, Reason::NotFound);
    let replies = f
        .stack
        .published_on(&topic(serial, "no-such-record", "rejected"));
    assert_eq!(replies[0]["outcome"], "not_found");
    assert!(f
        .stack
        .record(
            serial,
            &fleetguard_domain::model::RecordId::parse("no-such-record").unwrap()
        )
        .await
        .is_none());
}

#[tokio::test]
async fn malformed_events_change_nothing_and_are_answered_only_on_a_valid_topic() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let rid = f.stack.seed_record(serial, "rec-1").await;
    let svc = f.stack.delete_service();
    // Tests share the emulator: count only publishes about this test's serial.
    let mine = || {
        f.stack
            .emulator
            .published()
            .into_iter()
            .filter(|(t, _)| t.contains(serial.as_str()))
            .count()
    };
    let published_before = mine();
    let mut cases = vec![
        (serde_json::json!(null), Reason::MalformedEvent),
        (serde_json::json!([1, 2]), Reason::MalformedEvent),
        (
            serde_json::json!({"serial": serial.as_str()}),
            Reason::MalformedEvent,
        ),
        (delete_event("+", "rec-1", cert, 1), Reason::InvalidTopic),
        (delete_event("#", "rec-1", cert, 1), Reason::InvalidTopic),
        (
            delete_event(serial.as_str(), "+", cert, 1),
            Reason::InvalidTopic,
        ),
        (
            delete_event(serial.as_str(), "*", cert, 1),
            Reason::InvalidTopic,
        ),
        (
            delete_event(&"S".repeat(65), "rec-1", cert, 1),
            Reason::InvalidTopic,
        ),
        (
            delete_event(serial.as_str(), &"r".repeat(129), cert, 1),
            Reason::InvalidTopic,
        ),
        (
            delete_event(serial.as_str(), "rec-1", cert, -5),
            Reason::MalformedEvent,
        ),
    ];
    let mut big = delete_event(serial.as_str(), "rec-1", cert, 1);
    big["reason"] = "x".repeat(20_000).into();
    cases.push((big, Reason::InvalidPayload));
    let mut bad_req = delete_event(serial.as_str(), "rec-1", cert, 1);
    bad_req["request_id"] = "a/b".into();
    cases.push((bad_req, Reason::InvalidPayload));
    let mut ctl = delete_event(serial.as_str(), "rec-1", cert, 1);
    ctl["reason"] = "line\nbreak".into();
    cases.push((ctl, Reason::InvalidPayload));
    // Serial and record id valid (from the topic): answered on its rejected topic, oversize included.
    // Either invalid: no topic can be built from it, audited only.
    let rejected = format!("P/{serial}/deleterecords/rec-1/rejected");
    let mut answered = 0;
    for (event, reason) in cases {
        let d = svc.handle(event.clone()).await.unwrap();
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Rejected, reason),
            "{event}"
        );
        let addressable = event["serial"] == serial.as_str() && event["record_id"] == "rec-1";
        if addressable {
            assert_eq!(d.reply_topic.as_deref(), Some(rejected.as_str()), "{event}");
            answered += 1;
        } else {
            assert!(d.reply_topic.is_none(), "{event}");
        }
    }
    assert_eq!(
        answered, 4,
        "the oversize, request-id, reason and time cases"
    );
    assert_eq!(mine(), published_before + answered, "no other reply");
    let record = f.stack.record(serial, &rid).await.unwrap();
    assert!(!record.is_deleted());
    assert_eq!(record.version, 1);
}

#[tokio::test]
async fn restore_undoes_a_soft_delete_once() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let rid = f.stack.seed_record(serial, "rec-1").await;
    f.stack
        .delete_service()
        .handle(delete_event(
            serial.as_str(),
            "rec-1",
            cert,
            1_763_900_000_060,
        ))
        .await
        .unwrap();
    let (records, audit) = (f.stack.records(), f.stack.audit());

    // Rollback limited to another principal's deletes leaves it alone.
    let other = restore_record(
        &records,
        &audit,
        serial,
        &rid,
        "fleetctl",
        Some(&fleetguard_domain::model::Principal::parse(&"0".repeat(64)).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(other, RestoreResult::NotDeleted { version: 2 });

    let first = restore_record(
        &records,
        &audit,
        serial,
        &rid,
        "fleetctl",
        Some(&fleetguard_domain::model::Principal::parse(cert).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(first, RestoreResult::Restored { version: 3 });
    let record = f.stack.record(serial, &rid).await.unwrap();
    assert!(!record.is_deleted());
    assert_eq!(record.restored_by.as_deref(), Some("fleetctl"));
    assert!(record.deleted_by.is_none());

    let second = restore_record(&records, &audit, serial, &rid, "fleetctl", None)
        .await
        .unwrap();
    assert_eq!(second, RestoreResult::NotDeleted { version: 3 });
    assert_eq!(f.stack.record(serial, &rid).await.unwrap().version, 3);

    let missing = restore_record(
        &records,
        &audit,
        serial,
        &fleetguard_domain::model::RecordId::parse("nope").unwrap(),
        "fleetctl",
        None,
    )
    .await
    .unwrap();
    assert_eq!(missing, RestoreResult::NotFound);

    let history: Vec<_> = audit
        .for_serial(serial.as_str(), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.record_id.as_deref() == Some("rec-1"))
        .map(|e| (e.action, e.reason))
        .collect();
    assert!(history.contains(&(AuditAction::DeleteRecord, Reason::Deleted)));
    assert!(history.contains(&(AuditAction::RestoreRecord, Reason::Restored)));
    assert!(history.contains(&(AuditAction::RestoreRecord, Reason::NotDeleted)));
    // The deleted device can delete it again after the restore (a fresh message).
    let d = f
        .stack
        .delete_service()
        .handle(delete_event(
            serial.as_str(),
            "rec-1",
            cert,
            1_763_900_000_070,
        ))
        .await
        .unwrap();
    assert_eq!((d.reason, d.version), (Reason::Deleted, Some(4)));
}

/// Four deletes of one record at once, with distinct request ids (as four instances of the function
/// would run them): one is deleted, every loser is answered `already_deleted` at once, none is a Lambda
/// error, the record's version went up once, and the delete is audited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deletes_of_one_record_have_one_winner_and_no_error() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let rid = f.stack.seed_record(serial, "rec-race").await;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let svc = f.stack.delete_service();
            let mut event = delete_event(serial.as_str(), "rec-race", cert, 1_763_900_000_000 + i);
            event["request_id"] = format!("req-{i}").into();
            tokio::spawn(async move { svc.handle(event).await })
        })
        .collect();
    let mut deleted = 0;
    for t in tasks {
        let d = t
            .await
            .unwrap()
            .expect("a lost race is an answer, not an error");
        match d.reason {
            Reason::Deleted => deleted += 1,
            Reason::AlreadyDeleted => assert_eq!(d.outcome, Outcome::Rejected),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(deleted, 1);
    assert_eq!(f.stack.record(serial, &rid).await.unwrap().version, 2);
    let entries = f
        .stack
        .audit()
        .for_serial(serial.as_str(), 50)
        .await
        .unwrap();
    let accepted = entries
        .iter()
        .filter(|e| e.reason == Reason::Deleted && e.record_id.as_deref() == Some("rec-race"))
        .count();
    assert_eq!(accepted, 1);
    assert_eq!(
        f.stack
            .published_on(&topic(serial, "rec-race", "rejected"))
            .len(),
        3
    );
}
