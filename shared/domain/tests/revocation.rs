use fleetguard_domain::authorizer::{device_principal, OperatorStatus};
use fleetguard_domain::domain::{rfc3339, AuditEntry, DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::domain::{Device, Enrollment, Record, RecordId};
use fleetguard_domain::ports::{AuditLog, AuthorizerPrincipal, Records, Registry};
use fleetguard_domain::revocation::*;
use fleetguard_domain::Result;
use fleetguard_testkit::fakes::{
    InMemoryAudit, InMemoryIot, InMemoryRecords, InMemoryRegistry, RecordingConnections,
};
use time::OffsetDateTime;

/// An audit log whose by-principal index lags: it has seen nothing yet (as a GSI on AWS may
/// not, a moment after a write).
#[derive(Clone, Default)]
struct LaggingIndex(InMemoryAudit);

impl AuditLog for LaggingIndex {
    async fn record(&self, entry: &AuditEntry) -> Result<bool> {
        self.0.record(entry).await
    }
    async fn for_serial(&self, serial: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        self.0.for_serial(serial, limit).await
    }
    async fn for_principal(&self, _: &str, _: &str) -> Result<Vec<AuditEntry>> {
        Ok(Vec::new())
    }
    async fn find(&self, serial: &str, at: &str, dedupe: &str) -> Result<Option<AuditEntry>> {
        self.0.find(serial, at, dedupe).await
    }
}

fn revoker(
    registry: InMemoryRegistry,
    records: InMemoryRecords,
    audit: LaggingIndex,
) -> Revoker<InMemoryRegistry, InMemoryIot, RecordingConnections, InMemoryRecords, LaggingIndex> {
    Revoker {
        registry,
        control: InMemoryIot::default(),
        connections: RecordingConnections::default(),
        records,
        audit,
        config: RevocationConfig::operators_only(),
    }
}

fn deleted(serial: &Serial, id: &str, by: &str, at: OffsetDateTime) -> Record {
    Record {
        serial: serial.clone(),
        record_id: RecordId::parse(id).expect("id"),
        version: 2,
        deleted_at: Some(rfc3339(at)),
        deleted_by: Some(by.to_owned()),
        delete_reason: None,
        delete_request: Some("k".into()),
        restored_at: None,
        restored_by: None,
        data: None,
    }
}

#[tokio::test]
async fn a_delete_the_index_has_not_seen_yet_is_still_rolled_back() {
    let audit = LaggingIndex::default();
    let registry = InMemoryRegistry::default();
    let serial = Serial::parse("PW1").expect("serial");
    let mut device = Device::manufactured(serial.clone(), Enrollment::default(), "t".into());
    device.status = DeviceStatus::Active;
    registry.import_device(&device).await.expect("import");
    let records = InMemoryRecords::new(audit.0.clone());
    let me = device_principal(&serial).to_string();
    let now = OffsetDateTime::now_utc();
    records
        .put(&deleted(&serial, "r1", &me, now))
        .await
        .expect("put");
    records
        .put(&deleted(&serial, "r2", "someone-else", now))
        .await
        .expect("put");
    let r = revoker(registry, records, audit);
    let report = r
        .command(
            Command {
                action: Action::Revoke,
                serial: Some("PW1".into()),
                certificate_id: None,
                principal: None,
                reason: None,
                compromised_since: None,
                rollback: true,
                actor: None,
            },
            now,
        )
        .await
        .expect("revoke");
    assert_eq!(
        (report.restored, report.rollback),
        (1, Some(Reason::Restored))
    );
    assert_eq!(report.principal.as_deref(), Some(me.as_str()));
    let left: Vec<_> = r
        .records
        .snapshot()
        .into_iter()
        .filter(|x| x.is_deleted())
        .map(|x| x.record_id.to_string())
        .collect();
    assert_eq!(left, ["r2"], "other principals' deletes are never touched");
    assert_eq!(r.connections.disconnected(), ["PW1"]);
}

#[tokio::test]
async fn an_operator_is_revoked_cut_off_and_rolled_back_and_stays_revoked() {
    let audit = LaggingIndex::default();
    let registry = InMemoryRegistry::default();
    let op = format!("op{}", "ab".repeat(20));
    let serial = Serial::parse("SN1").expect("serial");
    registry.put_principal(
        &op,
        AuthorizerPrincipal::Operator {
            name: "alice".into(),
            active: true,
            status: OperatorStatus::Active,
            serials: vec![serial.clone()],
        },
    );
    let records = InMemoryRecords::new(audit.0.clone());
    let now = OffsetDateTime::now_utc();
    records
        .put(&deleted(&serial, "r1", &op, now))
        .await
        .expect("put");
    let r = revoker(registry, records, audit);
    let cmd = |action| Command {
        action,
        serial: None,
        certificate_id: None,
        principal: Some(op.clone()),
        reason: None,
        compromised_since: None,
        rollback: action == Action::Revoke,
        actor: None,
    };
    let report = r.command(cmd(Action::Revoke), now).await.expect("revoke");
    assert_eq!(
        (report.outcome, report.reason, report.restored),
        (Outcome::Accepted, Reason::Revoked, 1)
    );
    assert_eq!(r.connections.disconnected(), [op.as_str()]);
    assert!(matches!(
        r.registry.get_principal(&op).await.expect("get"),
        Some(AuthorizerPrincipal::Operator {
            status: OperatorStatus::Revoked,
            active: false,
            ..
        })
    ));
    let again = r.command(cmd(Action::Release), now).await.expect("release");
    assert_eq!(
        (again.outcome, again.reason),
        (Outcome::Rejected, Reason::RevokedIsFinal)
    );
    // A second rollback has nothing left and says so.
    let replay = r.command(cmd(Action::Revoke), now).await.expect("replay");
    assert_eq!(
        (replay.outcome, replay.restored, replay.rollback),
        (Outcome::Noop, 0, Some(Reason::NothingToRollBack))
    );
}

/// The tripwire counts the signal it has just written, though the by-principal index (eventually
/// consistent on AWS) has not seen it yet: at a threshold of 1, the first signal quarantines.
#[tokio::test]
async fn the_tripwire_counts_its_signal_before_the_index_shows_it() {
    let audit = LaggingIndex::default();
    let registry = InMemoryRegistry::default();
    let serial = Serial::parse("SN7").expect("serial");
    assert!(registry.import_serial(&serial).await.expect("import"));
    let cert = fleetguard_domain::domain::CertificateId::parse(&"ab".repeat(32)).expect("cert");
    registry
        .bind_certificate(&serial, &cert, None, None)
        .await
        .expect("bind");
    let records = InMemoryRecords::new(audit.0.clone());
    let r = revoker(registry, records, audit);
    let event = serde_json::json!({"trigger": "authorization_failure", "principal": cert.as_str(),
        "client_id": "SN7", "session": "s-1", "received_at": 1_763_900_000_000i64});
    let reports = r
        .handle(event, OffsetDateTime::now_utc())
        .await
        .expect("signal");
    assert_eq!(
        (reports[0].outcome, reports[0].reason),
        (Outcome::Accepted, Reason::Quarantined)
    );
}
