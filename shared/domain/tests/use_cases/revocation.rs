use fleetguard_domain::authorization::authorizer::{device_principal, OperatorStatus};
use fleetguard_domain::lifecycle::revocation::*;
use fleetguard_domain::model::{AuditEntry, DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::model::{Device, Enrollment, PrincipalId, Record, RecordId};
use fleetguard_domain::ports::{AuditLog, AuthorizerPrincipal, Records, Registry};
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
    async fn for_principal(
        &self,
        _: &fleetguard_domain::model::Principal,
        _: &fleetguard_domain::model::Timestamp,
    ) -> Result<Vec<AuditEntry>> {
        Ok(Vec::new())
    }
    async fn find(
        &self,
        serial: &str,
        at: &fleetguard_domain::model::Timestamp,
        dedupe: &str,
    ) -> Result<Option<AuditEntry>> {
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
        deleted_at: Some(fleetguard_domain::model::Timestamp::at(at)),
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
    let mut device = Device::manufactured(
        serial.clone(),
        Enrollment::default(),
        fleetguard_domain::model::Timestamp::now(),
    );
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
                serial: Some(Serial::parse("PW1").expect("serial")),
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
        principal: Some(fleetguard_domain::model::Principal::parse(&op).expect("principal")),
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
        r.registry
            .get_principal(&PrincipalId::parse(&op).expect("minted"))
            .await
            .expect("get"),
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
    let cert = fleetguard_domain::model::CertificateId::parse(&"ab".repeat(32)).expect("cert");
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

/// A serial in a rotation's grace period: its current certificate `new`, its replaced one `old`.
async fn in_grace(
    action: SharedSerialAction,
) -> (
    Revoker<InMemoryRegistry, InMemoryIot, RecordingConnections, InMemoryRecords, LaggingIndex>,
    Serial,
    String,
    String,
) {
    use fleetguard_domain::model::CertificateId;
    let audit = LaggingIndex::default();
    let registry = InMemoryRegistry::default();
    let serial = Serial::parse("SN9").expect("serial");
    let (old, new) = (
        CertificateId::parse(&"0a".repeat(32)).expect("cert"),
        CertificateId::parse(&"0b".repeat(32)).expect("cert"),
    );
    let mut device = Device::manufactured(
        serial.clone(),
        Enrollment::default(),
        fleetguard_domain::model::Timestamp::now(),
    );
    device.status = DeviceStatus::Active;
    device.certificate_id = Some(new.clone());
    device.previous_certificate_id = Some(old.clone());
    assert!(registry.import_device(&device).await.expect("import"));
    let records = InMemoryRecords::new(audit.0.clone());
    let mut r = revoker(registry, records, audit);
    r.config.shared_serial_action = action;
    (r, serial, old.to_string(), new.to_string())
}

/// What the template's PresenceRule forwards for one presence event.
fn presence(
    event: &str,
    cert: &str,
    session: &str,
    version: u64,
    reason: Option<&str>,
) -> serde_json::Value {
    let mut e = serde_json::json!({"trigger": "presence", "event": event, "client_id": "SN9",
        "principal": cert, "session": session, "version": version,
        "received_at": 1_763_900_000_000i64 + version as i64});
    if let Some(r) = reason {
        e["disconnect_reason"] = r.into();
    }
    e
}

async fn status(
    r: &Revoker<InMemoryRegistry, InMemoryIot, RecordingConnections, InMemoryRecords, LaggingIndex>,
    serial: &Serial,
) -> DeviceStatus {
    r.registry
        .get_device(serial)
        .await
        .expect("get")
        .expect("device")
        .status
}

#[tokio::test]
async fn the_replaced_key_taking_the_session_of_the_current_one_quarantines_the_serial() {
    let now = OffsetDateTime::now_utc();
    // The current certificate is connected; the replaced one connects as the serial: AWS IoT ends the
    // current session (DUPLICATE_CLIENTID). In either order of delivery, and delivered twice.
    for order in [0, 1] {
        let (r, serial, old, new) = in_grace(SharedSerialAction::Quarantine).await;
        r.handle(presence("connected", &new, "s1", 1, None), now)
            .await
            .expect("connected");
        assert_eq!(status(&r, &serial).await, DeviceStatus::Active);
        let kicked = presence("disconnected", &new, "s1", 1, Some("DUPLICATE_CLIENTID"));
        let taker = presence("connected", &old, "s2", 2, None);
        let events = if order == 0 {
            [kicked, taker]
        } else {
            [taker, kicked]
        };
        let mut last = Vec::new();
        for e in events.iter().chain(events.iter()) {
            last = r.handle(e.clone(), now).await.expect("presence");
        }
        assert_eq!(
            status(&r, &serial).await,
            DeviceStatus::Quarantined,
            "order {order}"
        );
        let shared: Vec<AuditEntry> = r
            .audit
            .for_serial("SN9", 100)
            .await
            .expect("audit")
            .into_iter()
            .filter(|e| e.reason == Reason::SerialShared)
            .collect();
        assert_eq!(shared.len(), 1, "one signal however often delivered");
        let detail = shared[0].detail.clone().unwrap_or_default();
        assert!(detail.contains(&old) && detail.contains(&new), "{detail}");
        assert!(!last.is_empty());
    }
}

#[tokio::test]
async fn reconnects_and_a_fallback_after_a_session_ended_are_no_signal() {
    let now = OffsetDateTime::now_utc();
    let (r, serial, old, new) = in_grace(SharedSerialAction::Quarantine).await;
    // The current certificate takes over its own half-open session.
    for e in [
        presence("connected", &new, "s1", 1, None),
        presence("disconnected", &new, "s1", 1, Some("DUPLICATE_CLIENTID")),
        presence("connected", &new, "s2", 2, None),
        // Its session ends; the device falls back to the replaced certificate.
        presence("disconnected", &new, "s2", 2, Some("CONNECTION_LOST")),
        presence("connected", &old, "s3", 3, None),
        presence(
            "disconnected",
            &old,
            "s3",
            3,
            Some("CLIENT_INITIATED_DISCONNECT"),
        ),
        // A certificate that is neither, and an operator: ignored.
        presence("connected", &"0c".repeat(32), "s4", 4, None),
        presence("connected", "opabc", "s5", 5, None),
    ] {
        let reports = r.handle(e, now).await.expect("presence");
        assert_eq!(reports[0].outcome, Outcome::Noop);
    }
    assert_eq!(status(&r, &serial).await, DeviceStatus::Active);
}

#[tokio::test]
async fn under_alert_only_two_holders_are_audited_not_quarantined() {
    let now = OffsetDateTime::now_utc();
    let (r, serial, old, new) = in_grace(SharedSerialAction::Alert).await;
    for e in [
        presence("connected", &old, "s1", 1, None),
        presence("disconnected", &old, "s1", 1, Some("DUPLICATE_CLIENTID")),
        presence("connected", &new, "s2", 2, None),
    ] {
        r.handle(e, now).await.expect("presence");
    }
    assert_eq!(status(&r, &serial).await, DeviceStatus::Active);
    let shared = r
        .audit
        .for_serial("SN9", 100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.reason == Reason::SerialShared)
        .count();
    assert_eq!(shared, 1);
}

#[tokio::test]
async fn outside_a_grace_period_presence_writes_nothing() {
    let audit = LaggingIndex::default();
    let registry = InMemoryRegistry::default();
    let serial = Serial::parse("SN9").expect("serial");
    assert!(registry.import_serial(&serial).await.expect("import"));
    let cert = fleetguard_domain::model::CertificateId::parse(&"0b".repeat(32)).expect("cert");
    registry
        .bind_certificate(&serial, &cert, None, None)
        .await
        .expect("bind");
    let records = InMemoryRecords::new(audit.0.clone());
    let r = revoker(registry, records, audit);
    let before = r.registry.get_device(&serial).await.expect("get");
    for e in [
        presence("connected", cert.as_str(), "s1", 1, None),
        presence(
            "disconnected",
            cert.as_str(),
            "s1",
            1,
            Some("DUPLICATE_CLIENTID"),
        ),
        presence("connected", cert.as_str(), "s2", 2, None),
    ] {
        r.handle(e, OffsetDateTime::now_utc())
            .await
            .expect("presence");
    }
    assert_eq!(r.registry.get_device(&serial).await.expect("get"), before);
    assert!(r
        .audit
        .for_serial("SN9", 100)
        .await
        .expect("audit")
        .is_empty());
}

/// A direct invoke's ids are parsed as the command is read: one that is no serial, certificate id or
/// principal is refused as malformed (the detail names the field), and nothing is cut off.
#[tokio::test]
async fn a_command_naming_an_invalid_id_is_refused_as_malformed() {
    let audit = LaggingIndex::default();
    let r = revoker(
        InMemoryRegistry::default(),
        InMemoryRecords::new(audit.0.clone()),
        audit,
    );
    let now = OffsetDateTime::now_utc();
    for (field, bad) in [
        ("serial", "a/b"),
        ("certificate_id", "nothex"),
        ("principal", "opnobody"),
    ] {
        let raw = serde_json::json!({"action": "revoke", field: bad, "actor": "ops"});
        let reports = r.handle(raw, now).await.expect("an answer");
        assert_eq!(reports.len(), 1);
        assert_eq!(
            (reports[0].outcome, reports[0].reason),
            (Outcome::Rejected, Reason::MalformedEvent),
            "{field}"
        );
    }
    assert!(r.connections.disconnected().is_empty());
}
