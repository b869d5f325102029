//! Faults at every step: for delete-record and restore, each AWS call of the fault-free run is made
//! to fail in turn (500 on every SDK attempt), then the same event is replayed, as Lambda's retry of
//! the IoT rule's asynchronous invoke would. The end state must equal the fault-free run's: the record
//! deleted (or restored) once, at the same version, one audit entry for it, nothing lost. One test
//! per binary run, so the emulator-wide DynamoDB faults cannot hit another test.

use fleetguard::domain::{Outcome, RecordId, Serial};
use fleetguard::ports::{AuditLog, RestoreResult};
use fleetguard::records::restore_record;
use fleetguard_tests::{delete_event, Stack, TestCa};
use std::collections::BTreeMap;

fn diff(before: &serde_json::Value, after: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (op, n) in after.as_object().unwrap() {
        let d = n.as_u64().unwrap() - before.get(op).and_then(|b| b.as_u64()).unwrap_or(0);
        if d > 0 {
            out.insert(op.clone(), d);
        }
    }
    out
}

async fn accepted_entries(stack: &Stack, serial: &Serial, record: &str, action: &str) -> usize {
    stack
        .audit()
        .for_serial(serial.as_str(), 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| {
            e.record_id.as_deref() == Some(record)
                && e.action == action
                && e.outcome == Outcome::Accepted
        })
        .count()
}

#[tokio::test]
async fn a_fault_at_any_step_then_a_replay_ends_as_the_fault_free_run() {
    let stack = Stack::new().await;
    let ca = TestCa::new("fleetguard faults CA");
    let ca_id = stack.register_ca(&ca).await;
    let (serial, cert) = stack.provision_device(&ca, &ca_id).await;
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

    for (i, op) in delete_ops.keys().enumerate() {
        let id = format!("rec-{i}");
        let rid = stack.seed_record(&serial, &id).await;
        let event = delete_event(serial.as_str(), &id, &cert, 1_763_900_200_000 + i as i64);
        // Every attempt of the SDK's retries fails.
        stack.emulator.inject_fault(op, "", 1, 3, 500);
        let failed = svc.handle(event.clone()).await;
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
            accepted_entries(&stack, &serial, &id, "delete_record").await,
            1,
            "{op}"
        );
        let replies = stack
            .published_on(&format!("P/{serial}/deleterecords/{id}/accepted"))
            .len();
        assert!(replies >= 1, "{op}: the device got its answer");

        // Restore the same record with a fault at each of its steps.
        for rop in restore_ops.keys() {
            stack.emulator.inject_fault(rop, "", 1, 3, 500);
            let failed = restore_record(&records, &audit, &serial, &rid, "fleetctl", None).await;
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
            accepted_entries(&stack, &serial, &id, "restore_record").await,
            1,
            "{op}"
        );
    }
}
