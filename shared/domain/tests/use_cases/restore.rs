//! Restoring soft deletes (fleetctl records restore, revocation rollback) over the fakes.

use fleetguard_domain::model::{Outcome, Principal, Reason, Record, RecordId, Serial};
use fleetguard_domain::ports::{Records, RestoreResult};
use fleetguard_domain::records::restore::restore_record;
use fleetguard_testkit::fakes::{InMemoryAudit, InMemoryRecords};

const CERT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CERT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn record(serial: &Serial, id: &str, deleted_by: Option<&str>) -> Record {
    Record {
        serial: serial.clone(),
        record_id: RecordId::parse(id).expect("id"),
        version: 2,
        deleted_at: deleted_by.map(|_| {
            fleetguard_domain::model::Timestamp::parse("2026-01-01T00:00:00Z").expect("time")
        }),
        deleted_by: deleted_by.map(str::to_owned),
        delete_reason: None,
        delete_request: deleted_by.map(|_| "req".into()),
        restored_at: None,
        restored_by: None,
        data: None,
    }
}

#[tokio::test]
async fn a_deleted_record_is_restored_once_and_every_outcome_is_audited() {
    let audit = InMemoryAudit::default();
    let records = InMemoryRecords::new(audit.clone());
    let serial = Serial::parse("SN1").expect("serial");
    let deleted = record(&serial, "r1", Some(CERT_A));
    records.put(&deleted).await.expect("put");
    let r = restore_record(
        &records,
        &audit,
        &serial,
        &deleted.record_id,
        "fleetctl:ops",
        None,
    )
    .await
    .expect("restore");
    assert_eq!(r, RestoreResult::Restored { version: 3 });
    let now = records
        .get(&serial, &deleted.record_id)
        .await
        .expect("get")
        .expect("record");
    assert!(!now.is_deleted());
    assert_eq!(now.restored_by.as_deref(), Some("fleetctl:ops"));
    // Again: nothing to do, audited as a no-op.
    let r = restore_record(
        &records,
        &audit,
        &serial,
        &deleted.record_id,
        "fleetctl:ops",
        None,
    )
    .await
    .expect("restore");
    assert_eq!(r, RestoreResult::NotDeleted { version: 3 });
    // A record that does not exist: refused.
    let missing = RecordId::parse("nope").expect("id");
    let r = restore_record(&records, &audit, &serial, &missing, "fleetctl:ops", None)
        .await
        .expect("restore");
    assert_eq!(r, RestoreResult::NotFound);
    let outcomes: Vec<_> = audit
        .entries()
        .iter()
        .map(|e| (e.outcome, e.reason))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (Outcome::Accepted, Reason::Restored),
            (Outcome::Noop, Reason::NotDeleted),
            (Outcome::Rejected, Reason::NotFound),
        ]
    );
}

#[tokio::test]
async fn a_rollback_restores_only_the_deletes_of_the_principal_named() {
    let audit = InMemoryAudit::default();
    let records = InMemoryRecords::new(audit.clone());
    let serial = Serial::parse("SN2").expect("serial");
    let by_other = record(&serial, "r2", Some(CERT_B));
    records.put(&by_other).await.expect("put");
    let r = restore_record(
        &records,
        &audit,
        &serial,
        &by_other.record_id,
        "revoker",
        Some(&Principal::parse(CERT_A).expect("principal")),
    )
    .await
    .expect("restore");
    assert_eq!(r, RestoreResult::NotDeleted { version: 2 });
    assert!(records
        .get(&serial, &by_other.record_id)
        .await
        .expect("get")
        .expect("record")
        .is_deleted());
}
