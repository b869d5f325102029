//! Faults at every step: for provisioning, delete-record, restore and revocation, each AWS call of the
//! fault-free run (every call, not every kind: the second GetItem is a step of its own) is made to fail
//! in turn (500 on every SDK attempt), then the same event is replayed, as Lambda's retry of an
//! asynchronous invoke would. The end state must equal the fault-free run's: every change made once,
//! every decision that changed something audited exactly once, nothing lost. A retry that finds nothing
//! left to do may add its own no-op entry (a record of the retry, not a copy of the decision).
//! One test in this binary, so the emulator-wide DynamoDB faults cannot hit another test.

use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{CertificateId, DeviceStatus, Outcome, Reason, RecordId, Serial};
use fleetguard_domain::ports::{AuditLog, Registry, RestoreResult};
use fleetguard_domain::records::restore::restore_record;
use fleetguard_tests::{delete_event, jitr_event, unique, Stack, TestCa};
use std::collections::BTreeMap;
use time::OffsetDateTime;

fn diff(before: &serde_json::Value, after: &serde_json::Value) -> BTreeMap<String, u64> {
    fleetguard_tests::call_diff(before, after)
}

/// Every call of a run as (operation, n-th call of it).
fn steps(ops: &BTreeMap<String, u64>) -> Vec<(String, u32)> {
    ops.iter()
        .flat_map(|(op, n)| (1..=*n as u32).map(move |k| (op.clone(), k)))
        .collect()
}

/// Audit entries of `serial` for `action` with `outcome` (and, if given, for one record).
async fn entries(
    stack: &Stack,
    serial: &Serial,
    action: &str,
    outcome: Outcome,
    record: Option<&str>,
) -> usize {
    stack
        .audit()
        .for_serial(serial.as_str(), 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| {
            e.action == action
                && e.outcome == outcome
                && record.is_none_or(|r| e.record_id.as_deref() == Some(r))
        })
        .count()
}

#[tokio::test]
async fn a_fault_at_any_step_then_a_replay_ends_as_the_fault_free_run() {
    let stack = Stack::new().await;
    let ca = TestCa::new("fleetguard faults CA");
    let ca_id = stack.register_ca(&ca).await;
    provisioning(&stack, &ca, &ca_id).await;
    delete_and_restore(&stack, &ca, &ca_id).await;
    revocation(&stack, &ca, &ca_id).await;
}

/// A device that is allow-listed and has a registered, not yet provisioned certificate.
async fn pending_device(stack: &Stack, ca: &TestCa) -> (Serial, String) {
    let serial = Serial::parse(&unique("SN")).unwrap();
    stack.registry().import_serial(&serial).await.unwrap();
    let cert = stack.auto_register(&ca.issue(serial.as_str()), ca).await;
    (serial, cert)
}

async fn assert_provisioned(stack: &Stack, serial: &Serial, cert: &str, step: &str) {
    assert_eq!(
        stack.certificate_status(cert).await,
        CertificateStatus::Active,
        "{step}"
    );
    let arn = stack.certificate_arn(cert).await;
    assert_eq!(
        stack.thing_principals(serial.as_str()).await,
        vec![arn.clone()],
        "{step}"
    );
    assert_eq!(
        stack.principal_policies(&arn).await,
        vec![stack.fleet_policy.clone()],
        "{step}"
    );
    let device = stack.registry().get_device(serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Active, "{step}");
    assert_eq!(
        device.certificate_id.map(|c| c.to_string()).as_deref(),
        Some(cert),
        "{step}"
    );
    // One entry for the registration event: accepted, written once whichever attempt got there.
    let audit = stack
        .audit()
        .for_serial(serial.as_str(), 100)
        .await
        .unwrap();
    let provision: Vec<_> = audit.iter().filter(|e| e.action == "provision").collect();
    assert_eq!(provision.len(), 1, "{step}: {provision:?}");
    assert_eq!(
        (provision[0].outcome, provision[0].reason),
        (Outcome::Accepted, Reason::Provisioned),
        "{step}"
    );
}

/// JITR: a cold instance each time (a Lambda retry may land anywhere), so the CA lookup is a step too.
async fn provisioning(stack: &Stack, ca: &TestCa, ca_id: &str) {
    let (serial, cert) = pending_device(stack, ca).await;
    let before = stack.emulator.calls();
    let d = stack.jitr(&cert, ca_id).await;
    let ops = diff(&before, &stack.emulator.calls());
    assert_eq!(d.reason, Reason::Provisioned);
    assert_provisioned(stack, &serial, &cert, "fault-free").await;
    let all = steps(&ops);
    eprintln!("{} steps: {all:?}", all.len());
    assert!(all.len() >= 9, "{all:?}");
    // A warm instance (CA description cached): 5 control-plane calls per accepted device
    // (DescribeCertificate, CreateThing, AttachPolicy, AttachThingPrincipal, UpdateCertificate).
    let warm = stack.provisioner();
    for round in 0..2 {
        let (serial, cert) = pending_device(stack, ca).await;
        let before = stack.emulator.calls();
        warm.handle(jitr_event(&cert, ca_id), OffsetDateTime::now_utc())
            .await
            .unwrap();
        let control: u64 = diff(&before, &stack.emulator.calls())
            .iter()
            .filter(|(op, _)| op.starts_with("iot:"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(control, if round == 0 { 6 } else { 5 }, "round {round}");
        assert_provisioned(stack, &serial, &cert, "warm").await;
    }

    for (op, nth) in all {
        let step = format!("provision {op} #{nth}");
        let (serial, cert) = pending_device(stack, ca).await;
        let event = jitr_event(&cert, ca_id);
        stack.emulator.inject_fault(&op, "", nth, 3, 500);
        let failed = stack
            .provisioner()
            .handle(event.clone(), OffsetDateTime::now_utc())
            .await;
        stack.emulator.clear_faults();
        assert!(failed.is_err(), "{step}: {failed:?}");
        assert_ne!(
            stack.certificate_status(&cert).await,
            CertificateStatus::Revoked,
            "{step}: a fault is never a refusal"
        );
        let replay = stack
            .provisioner()
            .handle(event, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert!(
            matches!(
                replay.reason,
                Reason::Provisioned | Reason::AlreadyProvisioned
            ),
            "{step}: {replay:?}"
        );
        assert_provisioned(stack, &serial, &cert, &step).await;
    }
}

async fn delete_and_restore(stack: &Stack, ca: &TestCa, ca_id: &str) {
    let (serial, cert) = stack.provision_device(ca, ca_id).await;
    let svc = stack.delete_service();
    let (records, audit) = (stack.records(), stack.audit());

    // The fault-free runs, and the calls they make.
    stack.seed_record(&serial, "base").await;
    let before = stack.emulator.calls();
    let clean = svc
        .handle(delete_event(
            serial.as_str(),
            "base",
            &cert,
            1_763_900_100_000,
        ))
        .await
        .unwrap();
    let delete_ops = diff(&before, &stack.emulator.calls());
    let base = RecordId::parse("base").unwrap();
    let before = stack.emulator.calls();
    let restored = restore_record(&records, &audit, &serial, &base, "fleetctl", None)
        .await
        .unwrap();
    let restore_ops = diff(&before, &stack.emulator.calls());
    assert_eq!(clean.outcome, Outcome::Accepted);
    assert_eq!(restored, RestoreResult::Restored { version: 3 });
    assert!(
        delete_ops.len() >= 3,
        "read, transaction, reply: {delete_ops:?}"
    );
    assert!(!restore_ops.is_empty());

    for (i, (op, nth)) in steps(&delete_ops).into_iter().enumerate() {
        let id = format!("rec-{i}");
        let rid = stack.seed_record(&serial, &id).await;
        let event = delete_event(serial.as_str(), &id, &cert, 1_763_900_200_000 + i as i64);
        // Every attempt of the SDK's retries fails.
        stack.emulator.inject_fault(&op, "", nth, 3, 500);
        let failed = svc.handle(event.clone()).await;
        stack.emulator.clear_faults();
        assert!(
            failed.is_err(),
            "{op}: a failed step is an error (retried), got {failed:?}"
        );
        let replay = svc.handle(event).await.unwrap();
        assert_eq!(
            (replay.outcome, replay.version),
            (clean.outcome, clean.version),
            "{op}"
        );
        let record = stack.record(&serial, &rid).await.unwrap();
        assert!(
            record.is_deleted() && record.version == 2,
            "{op}: {record:?}"
        );
        assert_eq!(
            entries(
                stack,
                &serial,
                "delete_record",
                Outcome::Accepted,
                Some(&id)
            )
            .await,
            1,
            "{op}"
        );
        let replies = stack
            .published_on(&format!("P/{serial}/deleterecords/{id}/accepted"))
            .len();
        assert!(replies >= 1, "{op}: the device got its answer");

        // Restore the same record with a fault at each of its steps.
        for (rop, rnth) in steps(&restore_ops) {
            stack.emulator.inject_fault(&rop, "", rnth, 3, 500);
            let failed = restore_record(&records, &audit, &serial, &rid, "fleetctl", None).await;
            stack.emulator.clear_faults();
            assert!(failed.is_err(), "restore {rop}: {failed:?}");
            assert!(
                stack.record(&serial, &rid).await.unwrap().is_deleted(),
                "restore {rop}"
            );
        }
        let done = restore_record(&records, &audit, &serial, &rid, "fleetctl", None)
            .await
            .unwrap();
        assert_eq!(done, RestoreResult::Restored { version: 3 }, "{op}");
        assert_eq!(
            entries(
                stack,
                &serial,
                "restore_record",
                Outcome::Accepted,
                Some(&id)
            )
            .await,
            1,
            "{op}"
        );
    }
}

/// A device, provisioned, that deleted one record: what a revoke with rollback has to undo.
async fn hijacked_device(stack: &Stack, ca: &TestCa, ca_id: &str) -> (Serial, String, RecordId) {
    let (serial, cert) = stack.provision_device(ca, ca_id).await;
    let rid = stack.seed_record(&serial, "stolen").await;
    let at = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let d = stack
        .delete_service()
        .handle(delete_event(serial.as_str(), "stolen", &cert, at))
        .await
        .unwrap();
    assert_eq!(d.outcome, Outcome::Accepted);
    (serial, cert, rid)
}

fn revoke(serial: &Serial) -> serde_json::Value {
    serde_json::json!({"action": "revoke", "serial": serial.as_str(), "reason": "stolen key",
        "actor": "alice", "rollback": true})
}

async fn assert_revoked(stack: &Stack, serial: &Serial, cert: &str, rid: &RecordId, step: &str) {
    assert_eq!(
        stack.certificate_status(cert).await,
        CertificateStatus::Revoked,
        "{step}"
    );
    let arn = stack.certificate_arn(cert).await;
    assert!(stack.principal_policies(&arn).await.is_empty(), "{step}");
    assert!(
        stack.thing_principals(serial.as_str()).await.is_empty(),
        "{step}"
    );
    let group = format!("{}-quarantine", stack.prefix);
    assert!(
        stack
            .group_members(&group)
            .await
            .contains(&serial.to_string()),
        "{step}"
    );
    assert!(
        stack.emulator.disconnects().contains(&serial.to_string()),
        "{step}"
    );
    let registry = stack.registry();
    let device = registry.get_device(serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Revoked, "{step}");
    let binding = registry
        .get_certificate(&CertificateId::parse(cert).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(binding.denied, "{step}");
    let record = stack.record(serial, rid).await.unwrap();
    assert!(
        !record.is_deleted(),
        "{step}: the hijacked delete is undone"
    );
    assert_eq!(record.version, 3, "{step}: restored once");
    for (action, n) in [("revoke", 1), ("restore_record", 1)] {
        assert_eq!(
            entries(stack, serial, action, Outcome::Accepted, None).await,
            n,
            "{step}: {action}"
        );
    }
    // One summary of the rollback: `restored` by the run that restored, or, when a fault stopped
    // that run after its restores and before its summary, `nothing_to_roll_back` by the replay (the
    // restore itself is audited once either way, above).
    let summaries = entries(stack, serial, "rollback", Outcome::Accepted, None).await
        + entries(stack, serial, "rollback", Outcome::Noop, None).await;
    assert_eq!(summaries, 1, "{step}: rollback summary");
}

async fn revocation(stack: &Stack, ca: &TestCa, ca_id: &str) {
    let revoker = stack.revoker();
    // The first revocation of a stack also creates its quarantine group: warm that up, then count.
    let (serial, cert, rid) = hijacked_device(stack, ca, ca_id).await;
    revoker
        .handle(revoke(&serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_revoked(stack, &serial, &cert, &rid, "first").await;
    let (serial, cert, rid) = hijacked_device(stack, ca, ca_id).await;
    let before = stack.emulator.calls();
    let r = revoker
        .handle(revoke(&serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    let ops = diff(&before, &stack.emulator.calls());
    assert_eq!((r[0].outcome, r[0].restored), (Outcome::Accepted, 1));
    assert_revoked(stack, &serial, &cert, &rid, "fault-free").await;
    let all = steps(&ops);
    eprintln!("{} steps: {all:?}", all.len());
    assert!(all.len() >= 10, "{all:?}");

    for (op, nth) in all {
        let step = format!("revoke {op} #{nth}");
        let (serial, cert, rid) = hijacked_device(stack, ca, ca_id).await;
        stack.emulator.inject_fault(&op, "", nth, 3, 500);
        let failed = revoker
            .handle(revoke(&serial), OffsetDateTime::now_utc())
            .await;
        stack.emulator.clear_faults();
        assert!(failed.is_err(), "{step}: {failed:?}");
        revoker
            .handle(revoke(&serial), OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_revoked(stack, &serial, &cert, &rid, &step).await;
    }
}
