//! The lost race over the in-memory fakes: another writer commits between our read and our write.
use fleetguard_domain::delete_record::*;
use fleetguard_domain::domain::{AuditEntry, Outcome, Principal, Reason, Record, RecordId, Serial};
use fleetguard_domain::domain::{CertificateId, CertificateRecord};
use fleetguard_domain::ports::{DeleteContext, RestoreResult};
use fleetguard_domain::ports::{
    Entitlement, PrincipalFacts, Records, SoftDelete, SoftDeleteResult,
};
use fleetguard_domain::Result;
use fleetguard_testkit::fakes::{InMemoryAudit, InMemoryRecords, RecordingPublisher};
use std::sync::atomic::{AtomicBool, Ordering};

const CERT: &str = "a906a7fb5acc1f81d510846a59086c87c0f346ebf5a14293a71ebf9bff206404";

/// Records where a competing delete commits just before our first soft delete.
struct Racing {
    inner: InMemoryRecords,
    raced: AtomicBool,
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
    async fn deleted_by(&self, s: &Serial, p: &str, since: &str) -> Result<Vec<Record>> {
        self.inner.deleted_by(s, p, since).await
    }
    async fn soft_delete(
        &self,
        request: &SoftDelete,
        expected_version: u64,
        entitlement: &Entitlement,
        audit: &AuditEntry,
    ) -> Result<SoftDeleteResult> {
        if !self.raced.swap(true, Ordering::SeqCst) {
            let mut winner = request.clone();
            winner.request_key = "the-winner".into();
            let r = self
                .inner
                .soft_delete(&winner, expected_version, entitlement, audit)
                .await?;
            assert!(matches!(r, SoftDeleteResult::Deleted { .. }));
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
        only: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<RestoreResult> {
        self.inner.restore(s, r, actor, only, audit).await
    }
}

#[tokio::test]
async fn a_lost_race_is_answered_at_once_with_the_winners_state() {
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
            updated_at: "t".into(),
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
            raced: AtomicBool::new(false),
        },
        audit,
        publisher: publisher.clone(),
        security_topic: "s".into(),
    };
    let d = service
        .handle(
            serde_json::json!({"serial": "SN0001", "record_id": "r1", "principal": CERT,
            "received_at": 1, "request_id": "the-loser"}),
        )
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
