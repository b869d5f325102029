//! The lost race over the in-memory fakes: another writer commits between our read and our write.
use fleetguard_domain::model::{AuditEntry, Outcome, Principal, Reason, Record, RecordId, Serial};
use fleetguard_domain::model::{CertificateId, CertificateRecord};
use fleetguard_domain::ports::{DeleteContext, RestoreResult};
use fleetguard_domain::ports::{
    Entitlement, PrincipalFacts, Records, SoftDelete, SoftDeleteResult,
};
use fleetguard_domain::records::delete::*;
use fleetguard_domain::Result;
use fleetguard_testkit::fakes::{InMemoryAudit, InMemoryRecords, RecordingPublisher};
use std::sync::atomic::{AtomicU32, Ordering};

const CERT: &str = "a906a7fb5acc1f81d510846a59086c87c0f346ebf5a14293a71ebf9bff206404";

/// Records where a competing delete commits just before each of our first `races` soft deletes
/// (and, with `then_restore`, an operator restores the record right after it).
struct Racing {
    inner: InMemoryRecords,
    races: AtomicU32,
    then_restore: bool,
}

impl Records for Racing {
    async fn get(&self, s: &Serial, r: &RecordId) -> Result<Option<Record>> {
        self.inner.get(s, r).await
    }
    async fn put(&self, record: &Record) -> Result<()> {
        self.inner.put(record).await
    }
    async fn load_for_delete(
        &self,
        p: &Principal,
        s: &Serial,
        r: &RecordId,
    ) -> Result<DeleteContext> {
        self.inner.load_for_delete(p, s, r).await
    }
    async fn deleted_by(
        &self,
        s: &Serial,
        p: &fleetguard_domain::model::Principal,
        since: &fleetguard_domain::model::Timestamp,
    ) -> Result<Vec<Record>> {
        self.inner.deleted_by(s, p, since).await
    }
    async fn soft_delete(
        &self,
        request: &SoftDelete,
        expected_version: u64,
        entitlement: &Entitlement,
        audit: &AuditEntry,
    ) -> Result<SoftDeleteResult> {
        if self
            .races
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let mut winner = request.clone();
            winner.request_key = "the-winner".into();
            let r = self
                .inner
                .soft_delete(&winner, expected_version, entitlement, audit)
                .await?;
            assert!(matches!(r, SoftDeleteResult::Deleted { .. }));
            if self.then_restore {
                let r = self
                    .inner
                    .restore(&request.serial, &request.record_id, "operator", None, audit)
                    .await?;
                assert!(matches!(r, RestoreResult::Restored { .. }));
            }
        }
        self.inner
            .soft_delete(request, expected_version, entitlement, audit)
            .await
    }
    async fn restore(
        &self,
        s: &Serial,
        r: &RecordId,
        actor: &str,
        only: Option<&fleetguard_domain::model::Principal>,
        audit: &AuditEntry,
    ) -> Result<RestoreResult> {
        self.inner.restore(s, r, actor, only, audit).await
    }
}

/// The delete service over records that race `races` times, for the record `SN0001/r1`.
async fn service(
    races: u32,
    then_restore: bool,
) -> (
    DeleteRecordService<Racing, InMemoryAudit, RecordingPublisher>,
    RecordingPublisher,
) {
    let audit = InMemoryAudit::default();
    let inner = InMemoryRecords::new(audit.clone());
    let serial = Serial::parse("SN0001").unwrap();
    inner.set_facts(
        &Principal::parse(CERT).unwrap(),
        PrincipalFacts::Certificate(CertificateRecord {
            certificate_id: CertificateId::parse(CERT).unwrap(),
            serial: serial.clone(),
            denied: false,
            held: false,
            updated_at: fleetguard_domain::model::Timestamp::now(),
        }),
    );
    let record: Record =
        serde_json::from_value(serde_json::json!({"serial": "SN0001", "record_id": "r1",
            "version": 1}))
        .unwrap();
    inner.put(&record).await.unwrap();
    let publisher = RecordingPublisher::default();
    let service = DeleteRecordService {
        records: Racing {
            inner,
            races: AtomicU32::new(races),
            then_restore,
        },
        audit,
        publisher: publisher.clone(),
        security_topic: "s".into(),
    };
    (service, publisher)
}

fn delete_message() -> serde_json::Value {
    serde_json::json!({"serial": "SN0001", "record_id": "r1", "principal": CERT,
        "received_at": 1, "request_id": "the-loser"})
}

#[tokio::test]
async fn a_lost_race_is_answered_at_once_with_the_winners_state() {
    let (service, publisher) = service(1, false).await;
    let d = service
        .handle(delete_message())
        .await
        .expect("a lost race is an answer, not a Lambda error");
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::AlreadyDeleted)
    );
    assert_eq!(d.version, Some(2));
    let (topic, reply) = publisher.published().pop().unwrap();
    assert_eq!(topic, "P/SN0001/deleterecords/r1/rejected");
    assert_eq!(reply["reason"], "already_deleted");
}

#[tokio::test]
async fn a_record_restored_meanwhile_is_deleted_on_the_second_try() {
    let (service, _) = service(1, true).await;
    let d = service.handle(delete_message()).await.expect("an answer");
    assert_eq!((d.outcome, d.reason), (Outcome::Accepted, Reason::Deleted));
    assert_eq!(d.version, Some(4));
}

#[tokio::test]
async fn a_second_loss_in_a_row_is_answered_record_busy_not_an_error() {
    let (service, publisher) = service(2, true).await;
    let d = service.handle(delete_message()).await.expect("an answer");
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::RecordBusy)
    );
    let (topic, reply) = publisher.published().pop().unwrap();
    assert_eq!(topic, "P/SN0001/deleterecords/r1/rejected");
    assert_eq!(reply["reason"], "record_busy");
    // Nothing of ours was written but the refusal: the record is as the competitors left it.
    let record = service
        .records
        .get(
            &Serial::parse("SN0001").unwrap(),
            &RecordId::parse("r1").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!record.is_deleted());
}
