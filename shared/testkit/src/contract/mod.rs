//! Contract suites: one per port, run against the in-memory fake (`shared/testkit/tests/`) and
//! against the DynamoDB adapter on the emulator (`tests/contracts.rs`). The same assertions on both
//! sides keep the fakes honest: a fake that drifts from what the adapter (and so AWS) does fails
//! here, not in a use-case test that trusted it.
//!
//! A [`World`] is one port set sharing state, as the tables do on AWS: the registry, the records
//! (whose entitlement checks read the registry), the audit log (which the records' transactions
//! write to) and the authorizer's identity store (whose items the registry reads as principals).

use fleetguard_domain::authorizer::{
    Identity, IdentityKind, IdentityStore, OperatorStatus, PrincipalId,
};
use fleetguard_domain::domain::{
    AuditEntry, CertificateId, DeviceStatus, Outcome, Principal, Reason, Record, RecordId, Serial,
};
use fleetguard_domain::domain::{CertificateStatus, Enrollment};
use fleetguard_domain::enrollment::secret_hash;
use fleetguard_domain::ports::{
    AuditLog, AuthorizerPrincipal, Connections, Enrollments, Entitlement, IotControl,
    PendingBinding, PrincipalFacts, ProofSpend, Publisher, Records, Registry, RestoreResult,
    Rotations, SoftDelete, SoftDeleteResult,
};
use std::future::Future;

/// One set of ports sharing state.
pub trait World: Send + Sync {
    type Registry: Registry;
    type Records: Records;
    type Audit: AuditLog;
    type Identities: IdentityStore;
    type Enrollments: Enrollments;
    type Rotations: Rotations;
    fn registry(&self) -> &Self::Registry;
    /// The registry as rotation uses it (same table).
    fn rotations(&self) -> &Self::Rotations;
    /// The registry as the pre-provisioning hook uses it (same table).
    fn enrollments(&self) -> &Self::Enrollments;
    fn records(&self) -> &Self::Records;
    fn audit(&self) -> &Self::Audit;
    fn identities(&self) -> &Self::Identities;
    /// Stores an authorizer identity where both the authorizer and the registry read it (one item
    /// on AWS).
    fn put_identity(&self, identity: &Identity) -> impl Future<Output = ()> + Send;
    /// A name no other case of this run uses (worlds may share one emulator).
    fn unique(&self, prefix: &str) -> String;
}

fn serial<W: World>(w: &W) -> Serial {
    Serial::parse(&w.unique("SN")).expect("serial")
}

/// A certificate id no other case uses: SHA-256 of a fresh name.
fn cert_id<W: World>(w: &W) -> CertificateId {
    CertificateId::parse(&secret_hash(w.unique("cert").as_bytes())).expect("certificate id")
}

async fn manufactured<W: World>(w: &W) -> Serial {
    let s = serial(w);
    assert!(w.registry().import_serial(&s).await.expect("import"));
    s
}

async fn active<W: World>(w: &W) -> (Serial, CertificateId) {
    let s = manufactured(w).await;
    let c = cert_id(w);
    w.registry()
        .bind_certificate(&s, &c, None, None)
        .await
        .expect("bind");
    (s, c)
}

fn operator(w: &impl World, serials: Vec<Serial>, status: OperatorStatus) -> Identity {
    let mut identity = Identity::operator(
        "https://idp.example.com/",
        &w.unique("sub"),
        "contract-operator",
        serials,
    );
    if let IdentityKind::Operator { status: s, .. } = &mut identity.kind {
        *s = status;
    }
    identity
}

/// The registry: conditional imports, bindings, transitions, deny-list, hold, replacement approval,
/// operator status.
pub async fn registry_contract<W: World>(w: &W) {
    let r = w.registry();
    // Import is conditional: the second import of a serial changes nothing.
    let s = serial(w);
    assert_eq!(r.get_device(&s).await.expect("get"), None, "unknown serial");
    assert!(r.import_serial(&s).await.expect("import"), "first import");
    assert!(!r.import_serial(&s).await.expect("import"), "second import");
    let d = r.get_device(&s).await.expect("get").expect("device");
    assert_eq!(d.status, DeviceStatus::Manufactured);
    assert_eq!(d.certificate_id, None);

    // Binding a manufactured serial makes it active with a certificate record.
    let c = cert_id(w);
    r.bind_certificate(&s, &c, None, None).await.expect("bind");
    let d = r.get_device(&s).await.expect("get").expect("device");
    assert_eq!(d.status, DeviceStatus::Active);
    assert_eq!(d.certificate_id.as_ref(), Some(&c));
    assert!(d.version >= 1, "a binding counts as a version");
    let rec = r.get_certificate(&c).await.expect("get").expect("record");
    assert_eq!(
        (rec.serial.clone(), rec.denied, rec.held),
        (s.clone(), false, false)
    );
    // The same binding again is a no-op; a second certificate for an active serial is refused.
    r.bind_certificate(&s, &c, None, None)
        .await
        .expect("rebind same");
    let other = cert_id(w);
    let err = r
        .bind_certificate(&s, &other, None, None)
        .await
        .expect_err("second certificate");
    assert!(err.is_condition_failed(), "{err}");
    assert_eq!(
        r.get_certificate(&other).await.expect("get"),
        None,
        "all or nothing"
    );
    // An active device without a certificate (a password device) takes its first certificate.
    let pw = manufactured(w).await;
    assert!(r
        .transition(&pw, &[DeviceStatus::Manufactured], DeviceStatus::Active)
        .await
        .expect("activate"));
    let first = cert_id(w);
    r.bind_certificate(&pw, &first, None, None)
        .await
        .expect("password device gets a certificate");
    let d = r.get_device(&pw).await.expect("get").expect("device");
    assert_eq!(
        (d.status, d.certificate_id.as_ref()),
        (DeviceStatus::Active, Some(&first))
    );
    // Binding an unknown serial is refused.
    let err = r
        .bind_certificate(&serial(w), &cert_id(w), None, None)
        .await
        .expect_err("unknown serial");
    assert!(err.is_condition_failed(), "{err}");

    // Transitions are conditional on the current status.
    assert!(r
        .transition(&s, &[DeviceStatus::Active], DeviceStatus::Quarantined)
        .await
        .expect("quarantine"));
    assert!(!r
        .transition(&s, &[DeviceStatus::Active], DeviceStatus::Quarantined)
        .await
        .expect("again"));
    assert!(!r
        .transition(&serial(w), &[DeviceStatus::Active], DeviceStatus::Revoked)
        .await
        .expect("unknown"));
    assert!(r
        .transition(
            &s,
            &[DeviceStatus::Active, DeviceStatus::Quarantined],
            DeviceStatus::Revoked
        )
        .await
        .expect("revoke"));

    // Replacement: only a revoked device, and then exactly one new certificate binds.
    let (live, _) = active(w).await;
    assert!(
        !r.approve_replacement(&live).await.expect("approve"),
        "active device"
    );
    assert!(
        r.approve_replacement(&s).await.expect("approve"),
        "revoked device"
    );
    let replacement = cert_id(w);
    r.bind_certificate(&s, &replacement, None, None)
        .await
        .expect("approved replacement binds");
    let d = r.get_device(&s).await.expect("get").expect("device");
    assert_eq!(
        (d.status, d.certificate_id.as_ref(), d.replacement_approved),
        (DeviceStatus::Active, Some(&replacement), false)
    );

    // The deny-list: a denied certificate is never bound again, even to its own serial.
    r.deny_certificate(&c, &s).await.expect("deny");
    let rec = r.get_certificate(&c).await.expect("get").expect("record");
    assert!(rec.denied);
    assert_eq!(rec.serial, s);
    let fresh = manufactured(w).await;
    let denied_elsewhere = cert_id(w);
    r.deny_certificate(&denied_elsewhere, &fresh)
        .await
        .expect("deny");
    let err = r
        .bind_certificate(&fresh, &denied_elsewhere, None, None)
        .await
        .expect_err("denied certificate");
    assert!(err.is_condition_failed(), "{err}");

    // Hold and release a certificate.
    r.hold_certificate(&replacement, &s, true)
        .await
        .expect("hold");
    assert!(
        r.get_certificate(&replacement)
            .await
            .expect("get")
            .expect("rec")
            .held
    );
    r.hold_certificate(&replacement, &s, false)
        .await
        .expect("release");
    assert!(
        !r.get_certificate(&replacement)
            .await
            .expect("get")
            .expect("rec")
            .held
    );

    // Operators: read as principals; status changes are conditional.
    assert_eq!(r.get_principal("opnobody").await.expect("get"), None);
    let op = operator(w, vec![s.clone()], OperatorStatus::Active);
    let id = op.principal_id.as_str().to_owned();
    w.put_identity(&op).await;
    match r.get_principal(&id).await.expect("get") {
        Some(AuthorizerPrincipal::Operator {
            active,
            status,
            serials,
            ..
        }) => assert_eq!(
            (active, status, serials),
            (true, OperatorStatus::Active, vec![s.clone()])
        ),
        other => panic!("operator expected, got {other:?}"),
    }
    assert!(r
        .set_operator_status(&id, &[OperatorStatus::Active], OperatorStatus::Disabled)
        .await
        .expect("disable"));
    assert!(!r
        .set_operator_status(&id, &[OperatorStatus::Active], OperatorStatus::Revoked)
        .await
        .expect("not active any more"));
    assert!(!r
        .set_operator_status(
            "opnobody",
            &[OperatorStatus::Active],
            OperatorStatus::Revoked
        )
        .await
        .expect("unknown"));
    assert!(!r
        .set_operator_status(&id, &[], OperatorStatus::Revoked)
        .await
        .expect("empty from"));
}

fn record(serial: &Serial, id: &str) -> Record {
    Record {
        serial: serial.clone(),
        record_id: RecordId::parse(id).expect("record id"),
        version: 1,
        data: Some("{\"reading\":42}".into()),
        deleted_at: None,
        deleted_by: None,
        delete_reason: None,
        delete_request: None,
        restored_at: None,
        restored_by: None,
    }
}

fn delete_of(record: &Record, principal: &str, at: &str) -> SoftDelete {
    SoftDelete {
        serial: record.serial.clone(),
        record_id: record.record_id.clone(),
        principal: principal.to_owned(),
        reason: None,
        request_key: format!("req-{}", record.record_id),
        at: at.to_owned(),
    }
}

fn delete_entry(record: &Record, principal: &str) -> AuditEntry {
    AuditEntry::new(
        "contract",
        "delete_record",
        Outcome::Accepted,
        Reason::Deleted,
    )
    .principal(principal)
    .serial(record.serial.as_str())
    .record(record.record_id.as_str())
}

/// The records: soft delete conditional on version and entitlement (all or nothing with its audit
/// entry), the principal's facts read with the record, deletes by principal, restores.
pub async fn records_contract<W: World>(w: &W) {
    let d = w.records();
    let (s, c) = active(w).await;
    let cert = Principal::Certificate(c.clone());
    let rec = record(&s, "r1");
    assert_eq!(d.get(&s, &rec.record_id).await.expect("get"), None);
    d.put(&rec).await.expect("put");
    assert_eq!(
        d.get(&s, &rec.record_id).await.expect("get"),
        Some(rec.clone())
    );

    // One read: the principal's registry facts and the record.
    let ctx = d
        .load_for_delete(&cert, &s, &rec.record_id)
        .await
        .expect("load");
    match ctx.principal {
        Some(PrincipalFacts::Certificate(cr)) => {
            assert_eq!((cr.serial, cr.denied), (s.clone(), false))
        }
        other => panic!("certificate facts expected, got {other:?}"),
    }
    assert_eq!(ctx.record, Some(rec.clone()));
    let nobody = Principal::Certificate(cert_id(w));
    let ctx = d
        .load_for_delete(&nobody, &s, &RecordId::parse("missing").expect("id"))
        .await
        .expect("load");
    assert_eq!((ctx.principal, ctx.record), (None, None));

    let entitled = Entitlement::Certificate {
        serial: s.clone(),
        certificate: c.clone(),
    };
    let at = fleetguard_domain::domain::now_rfc3339();
    let del = delete_of(&rec, cert.as_str(), &at);
    // A stale version changes nothing.
    assert_eq!(
        d.soft_delete(&del, 7, &entitled, &delete_entry(&rec, cert.as_str()))
            .await
            .expect("stale"),
        SoftDeleteResult::Changed
    );
    // A certificate that is not the serial's current one is not entitled.
    let wrong = Entitlement::Certificate {
        serial: s.clone(),
        certificate: cert_id(w),
    };
    assert_eq!(
        d.soft_delete(&del, 1, &wrong, &delete_entry(&rec, cert.as_str()))
            .await
            .expect("wrong cert"),
        SoftDeleteResult::NotEntitled
    );
    assert!(!d
        .get(&s, &rec.record_id)
        .await
        .expect("get")
        .expect("rec")
        .is_deleted());
    assert!(
        w.audit()
            .for_serial(s.as_str(), 10)
            .await
            .expect("audit")
            .is_empty(),
        "refused writes leave no audit entry"
    );
    // The entitled delete at the current version: version + 1, with its audit entry.
    assert_eq!(
        d.soft_delete(&del, 1, &entitled, &delete_entry(&rec, cert.as_str()))
            .await
            .expect("delete"),
        SoftDeleteResult::Deleted { version: 2 }
    );
    let now = d.get(&s, &rec.record_id).await.expect("get").expect("rec");
    assert!(now.is_deleted());
    assert_eq!(
        (now.version, now.deleted_by.as_deref()),
        (2, Some(cert.as_str()))
    );
    let entries = w.audit().for_serial(s.as_str(), 10).await.expect("audit");
    assert_eq!(entries.len(), 1, "one audit entry with the delete");
    assert_eq!(entries[0].reason, Reason::Deleted);
    // Deleting it again: already changed.
    assert_eq!(
        d.soft_delete(&del, 2, &entitled, &delete_entry(&rec, cert.as_str()))
            .await
            .expect("again"),
        SoftDeleteResult::Changed
    );
    // A record that does not exist: changed (the condition on the record fails).
    let ghost = record(&s, "ghost");
    assert_eq!(
        d.soft_delete(
            &delete_of(&ghost, cert.as_str(), &at),
            1,
            &entitled,
            &delete_entry(&ghost, cert.as_str())
        )
        .await
        .expect("ghost"),
        SoftDeleteResult::Changed
    );

    // Deletes by principal, consistent, in the window.
    let found = d
        .deleted_by(&s, cert.as_str(), "0")
        .await
        .expect("deleted_by");
    assert_eq!(found.len(), 1);
    assert!(d
        .deleted_by(&s, cert.as_str(), "9999")
        .await
        .expect("later")
        .is_empty());
    assert!(d
        .deleted_by(&s, "someone-else", "0")
        .await
        .expect("other")
        .is_empty());

    // Restores: only a deleted record, only by the principal named.
    let restore_entry = AuditEntry::new(
        "contract",
        "restore_record",
        Outcome::Accepted,
        Reason::Restored,
    )
    .serial(s.as_str())
    .record(rec.record_id.as_str());
    assert_eq!(
        d.restore(
            &s,
            &rec.record_id,
            "ops",
            Some("someone-else"),
            &restore_entry
        )
        .await
        .expect("restore other"),
        RestoreResult::NotDeleted { version: 2 }
    );
    assert_eq!(
        d.restore(
            &s,
            &rec.record_id,
            "ops",
            Some(cert.as_str()),
            &restore_entry
        )
        .await
        .expect("restore"),
        RestoreResult::Restored { version: 3 }
    );
    let now = d.get(&s, &rec.record_id).await.expect("get").expect("rec");
    assert!(!now.is_deleted());
    assert_eq!(now.restored_by.as_deref(), Some("ops"));
    assert_eq!(
        d.restore(&s, &rec.record_id, "ops", None, &restore_entry)
            .await
            .expect("restore live"),
        RestoreResult::NotDeleted { version: 3 }
    );
    assert_eq!(
        d.restore(&s, &ghost.record_id, "ops", None, &restore_entry)
            .await
            .expect("restore ghost"),
        RestoreResult::NotFound
    );

    // Restore in batches: each only if still deleted by that principal at the version read.
    let mut batch = Vec::new();
    for i in 0..3 {
        let r = record(&s, &format!("b{i}"));
        d.put(&r).await.expect("put");
        let del = delete_of(&r, cert.as_str(), &at);
        assert_eq!(
            d.soft_delete(&del, 1, &entitled, &delete_entry(&r, cert.as_str()))
                .await
                .expect("delete"),
            SoftDeleteResult::Deleted { version: 2 }
        );
        let deleted = d.get(&s, &r.record_id).await.expect("get").expect("rec");
        let entry = AuditEntry::new(
            "contract",
            "restore_record",
            Outcome::Accepted,
            Reason::Restored,
        )
        .serial(s.as_str())
        .record(r.record_id.as_str());
        batch.push((deleted, entry));
    }
    assert_eq!(
        d.restore_deleted_by(&batch, "ops", cert.as_str())
            .await
            .expect("batch"),
        3
    );
    assert_eq!(
        d.restore_deleted_by(&batch, "ops", cert.as_str())
            .await
            .expect("batch again"),
        0,
        "a replayed batch restores nothing"
    );

    // A revoked device is no longer entitled, inside the same write.
    let r2 = record(&s, "r2");
    d.put(&r2).await.expect("put");
    assert!(w
        .registry()
        .transition(&s, &[DeviceStatus::Active], DeviceStatus::Revoked)
        .await
        .expect("revoke"));
    assert_eq!(
        d.soft_delete(
            &delete_of(&r2, cert.as_str(), &at),
            1,
            &entitled,
            &delete_entry(&r2, cert.as_str())
        )
        .await
        .expect("revoked"),
        SoftDeleteResult::NotEntitled
    );

    // Operators: entitled while active and granted the serial.
    let (s2, _) = active(w).await;
    let op = operator(w, vec![s2.clone()], OperatorStatus::Active);
    w.put_identity(&op).await;
    let pid = op.principal_id.as_str().to_owned();
    let ctx = d
        .load_for_delete(&Principal::Authorizer(pid.clone()), &s2, &r2.record_id)
        .await
        .expect("load");
    assert!(
        matches!(
            ctx.principal,
            Some(PrincipalFacts::Authorizer(AuthorizerPrincipal::Operator {
                active: true,
                ..
            }))
        ),
        "{:?}",
        ctx.principal
    );
    let r3 = record(&s2, "r3");
    d.put(&r3).await.expect("put");
    let not_granted = Entitlement::Operator {
        principal_id: pid.clone(),
        serial: s.clone(),
    };
    assert_eq!(
        d.soft_delete(
            &delete_of(&r3, &pid, &at),
            1,
            &not_granted,
            &delete_entry(&r3, &pid)
        )
        .await
        .expect("not granted"),
        SoftDeleteResult::NotEntitled
    );
    let granted = Entitlement::Operator {
        principal_id: pid.clone(),
        serial: s2.clone(),
    };
    assert_eq!(
        d.soft_delete(
            &delete_of(&r3, &pid, &at),
            1,
            &granted,
            &delete_entry(&r3, &pid)
        )
        .await
        .expect("granted"),
        SoftDeleteResult::Deleted { version: 2 }
    );
    // A password device's entitlement needs an active device without a certificate.
    let pw = manufactured(w).await;
    assert!(w
        .registry()
        .transition(&pw, &[DeviceStatus::Manufactured], DeviceStatus::Active)
        .await
        .expect("activate"));
    let r4 = record(&pw, "r4");
    d.put(&r4).await.expect("put");
    let dv = format!("dv{}", w.unique("x"));
    assert_eq!(
        d.soft_delete(
            &delete_of(&r4, &dv, &at),
            1,
            &Entitlement::PasswordDevice { serial: s2.clone() },
            &delete_entry(&r4, &dv)
        )
        .await
        .expect("has a certificate"),
        SoftDeleteResult::NotEntitled
    );
    assert_eq!(
        d.soft_delete(
            &delete_of(&r4, &dv, &at),
            1,
            &Entitlement::PasswordDevice { serial: pw.clone() },
            &delete_entry(&r4, &dv)
        )
        .await
        .expect("password device"),
        SoftDeleteResult::Deleted { version: 2 }
    );
}

/// The audit log: written once per idempotency key, read by serial (newest first, bounded) and by
/// principal (since a time).
pub async fn audit_contract<W: World>(w: &W) {
    let a = w.audit();
    let s = serial(w);
    let principal = w.unique("pr");
    let mut times = Vec::new();
    for i in 0..3 {
        let e = AuditEntry::new("contract", "act", Outcome::Accepted, Reason::Provisioned)
            .serial(s.as_str())
            .principal(principal.as_str())
            .detail(format!("n={i}"));
        times.push(e.at.clone());
        assert!(a.record(&e).await.expect("record"));
        // Distinct timestamps (nanoseconds; the order is the text order).
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let newest = a.for_serial(s.as_str(), 2).await.expect("for_serial");
    assert_eq!(newest.len(), 2, "bounded");
    assert_eq!(newest[0].detail.as_deref(), Some("n=2"), "newest first");
    assert_eq!(newest[1].detail.as_deref(), Some("n=1"));
    assert!(a
        .for_serial(serial(w).as_str(), 10)
        .await
        .expect("none")
        .is_empty());
    let since = by_principal_eventually(a, &principal, &times[1], 2).await;
    let mut details: Vec<_> = since.iter().filter_map(|e| e.detail.clone()).collect();
    details.sort();
    assert_eq!(details, vec!["n=1".to_owned(), "n=2".to_owned()]);
    assert_eq!(
        by_principal_eventually(a, &principal, "0", 3).await.len(),
        3
    );

    // Idempotency: the same time and key are written once.
    let mut e = AuditEntry::new("contract", "act", Outcome::Noop, Reason::AlreadyProvisioned)
        .serial(s.as_str());
    e.dedupe = Some("message-1".into());
    assert!(a.record(&e).await.expect("first"));
    assert!(
        !a.record(&e).await.expect("replay"),
        "a replay writes nothing"
    );
    // Found by its key, consistently; another key finds nothing.
    let found = a.find(s.as_str(), &e.at, "message-1").await.expect("find");
    assert_eq!(found.map(|x| x.reason), Some(Reason::AlreadyProvisioned));
    assert_eq!(
        a.find(s.as_str(), &e.at, "message-2").await.expect("find"),
        None
    );
    let same = a.for_serial(s.as_str(), 10).await.expect("for_serial");
    assert_eq!(
        same.iter()
            .filter(|x| x.reason == Reason::AlreadyProvisioned)
            .count(),
        1
    );
    // Round trip of every field.
    let full = AuditEntry::new(
        "contract",
        "delete_record",
        Outcome::Rejected,
        Reason::PrincipalMismatch,
    )
    .serial(s.as_str())
    .principal("p")
    .record("rec-1")
    .detail("why");
    assert!(a.record(&full).await.expect("record"));
    let back = a.for_serial(s.as_str(), 1).await.expect("read");
    assert_eq!(back[0], full);
    // Entries without a serial are found by principal.
    let lone = w.unique("lone");
    let e = AuditEntry::new(
        "contract",
        "authorize",
        Outcome::Rejected,
        Reason::BadSignature,
    )
    .principal(lone.as_str());
    assert!(a.record(&e).await.expect("record"));
    let back = by_principal_eventually(a, &lone, "0", 1).await;
    assert_eq!(back, vec![e]);
}

/// The entries of `principal` since `since`, read until `want` are there: the index behind this read
/// is eventually consistent on AWS (a GSI), so a write is not promised to be visible at once.
async fn by_principal_eventually<A: AuditLog>(
    a: &A,
    principal: &str,
    since: &str,
    want: usize,
) -> Vec<AuditEntry> {
    for _ in 0..50 {
        let got = a
            .for_principal(principal, since)
            .await
            .expect("for_principal");
        if got.len() >= want {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    a.for_principal(principal, since)
        .await
        .expect("for_principal")
}

/// The authorizer's identity store: reads, and the count of wrong passwords.
pub async fn identity_store_contract<W: World>(w: &W) {
    let st = w.identities();
    let op = operator(w, vec![], OperatorStatus::Active);
    let pid = op.principal_id.clone();
    let missing = PrincipalId::parse(&format!("op{}", w.unique("missing"))).expect("pid");
    assert_eq!(st.get_identity(&missing).await.expect("get"), None);
    st.put_identity(&op).await.expect("put");
    assert_eq!(st.get_identity(&pid).await.expect("get"), Some(op.clone()));

    // Wrong passwords are counted in a window, without a read; a count older than the cutoff
    // starts again at one; a missing identity counts nothing.
    let t = |m: u32| format!("2030-01-01T00:{m:02}:00Z");
    let before = "2029-12-31T23:50:00Z";
    assert_eq!(
        st.count_failure(&pid, &t(0), before).await.expect("first"),
        Some(1)
    );
    assert_eq!(
        st.count_failure(&pid, &t(1), before).await.expect("second"),
        Some(2)
    );
    assert_eq!(
        st.count_failure(&pid, &t(2), before).await.expect("third"),
        Some(3)
    );
    assert_eq!(
        st.count_failure(&pid, &t(20), &t(10))
            .await
            .expect("after the window"),
        Some(1)
    );
    assert_eq!(
        st.count_failure(&missing, &t(20), &t(10))
            .await
            .expect("missing"),
        None
    );
    let got = st.get_identity(&pid).await.expect("get").expect("identity");
    assert_eq!(
        (got.failed_attempts, got.failures_since.as_deref()),
        (1, Some(t(20).as_str()))
    );
    // A conditional put: an active or absent identity is written, an inactive one never revived.
    assert!(st
        .put_identity_unless_inactive(&op)
        .await
        .expect("put active"));
    let disabled = operator(w, vec![], OperatorStatus::Disabled);
    st.put_identity(&disabled).await.expect("put disabled");
    let revived = Identity {
        kind: op.kind.clone(),
        ..disabled.clone()
    };
    assert!(!st
        .put_identity_unless_inactive(&revived)
        .await
        .expect("refused"));
    assert_eq!(
        st.get_identity(&disabled.principal_id).await.expect("get"),
        Some(disabled.clone()),
        "still disabled"
    );
    // Replacing an identity keeps one item.
    let mut again = op.clone();
    if let IdentityKind::Operator { operator_id, .. } = &mut again.kind {
        *operator_id = "renamed".into();
    }
    st.put_identity(&again).await.expect("replace");
    assert_eq!(st.get_identity(&pid).await.expect("get"), Some(again));
    // A device identity's kind survives the round trip.
    let s = manufactured(w).await;
    let device = Identity {
        principal_id: fleetguard_domain::authorizer::device_principal(&s),
        kind: IdentityKind::Device {
            serial: s.clone(),
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            status: DeviceStatus::Manufactured,
        },
        failed_attempts: 0,
        failures_since: None,
    };
    st.put_identity(&device).await.expect("put device");
    assert_eq!(
        st.get_identity(&device.principal_id).await.expect("get"),
        Some(device)
    );
}

/// The registry as the pre-provisioning hook uses it: one read of device and certificate, one
/// conditional pending binding that spends the proof, with its audit entry.
pub async fn enrollments_contract<W: World>(w: &W) {
    let e = w.enrollments();
    let s = serial(w);
    let hash = secret_hash(w.unique("secret").as_bytes());
    let device = fleetguard_domain::domain::Device::manufactured(
        s.clone(),
        Enrollment {
            secret_sha256: Some(hash.clone()),
            ..Enrollment::default()
        },
        fleetguard_domain::domain::now_rfc3339(),
    );
    assert!(w.registry().import_device(&device).await.expect("import"));
    let c = cert_id(w);
    let ctx = e.load(&s, &c).await.expect("load");
    let read = ctx.device.expect("device");
    assert_eq!(
        (read.status, ctx.certificate),
        (DeviceStatus::Manufactured, None)
    );
    let binding = PendingBinding {
        serial: s.clone(),
        certificate: c.clone(),
        expected_version: read.version,
        spend: ProofSpend::Secret { hash: hash.clone() },
        replaces: None,
    };
    let entry = AuditEntry::new(
        "contract",
        "provision",
        Outcome::Accepted,
        Reason::Provisioned,
    )
    .serial(s.as_str());
    // A stale version loses.
    let stale = PendingBinding {
        expected_version: read.version + 5,
        ..binding.clone()
    };
    assert!(!e.bind_pending(&stale, &entry).await.expect("stale"));
    // A wrong secret loses.
    let wrong = PendingBinding {
        spend: ProofSpend::Secret {
            hash: secret_hash(b"wrong"),
        },
        ..binding.clone()
    };
    assert!(!e.bind_pending(&wrong, &entry).await.expect("wrong secret"));
    assert!(w
        .audit()
        .for_serial(s.as_str(), 10)
        .await
        .expect("audit")
        .is_empty());
    // The binding: active, pending, the secret spent on this certificate, audited with it.
    assert!(e.bind_pending(&binding, &entry).await.expect("bind"));
    let ctx = e.load(&s, &c).await.expect("load");
    let d = ctx.device.expect("device");
    assert_eq!(
        (d.status, d.certificate_id.as_ref(), d.binding_pending),
        (DeviceStatus::Active, Some(&c), true)
    );
    assert_eq!(d.enrollment.secret_used_by.as_ref(), Some(&c));
    assert_eq!(ctx.certificate.expect("record").serial, s);
    assert_eq!(
        w.audit()
            .for_serial(s.as_str(), 10)
            .await
            .expect("audit")
            .len(),
        1
    );
    // A replay of the same binding loses (the version moved on).
    assert!(!e.bind_pending(&binding, &entry).await.expect("replay"));
    // A stale pending certificate is replaced (the secret may be presented again for it) and denied.
    let next = cert_id(w);
    let replacing = PendingBinding {
        serial: s.clone(),
        certificate: next.clone(),
        expected_version: d.version,
        spend: ProofSpend::Secret { hash },
        replaces: Some(c.clone()),
    };
    assert!(e.bind_pending(&replacing, &entry).await.expect("replace"));
    assert!(
        w.registry()
            .get_certificate(&c)
            .await
            .expect("get")
            .expect("rec")
            .denied
    );
    // Confirming the binding clears the pending mark; confirming another certificate does nothing.
    e.confirm(&s, &c).await.expect("confirm other");
    assert!(
        w.registry()
            .get_device(&s)
            .await
            .expect("get")
            .expect("d")
            .binding_pending
    );
    let pending = w.registry().get_device(&s).await.expect("get").expect("d");
    e.confirm(&s, &next).await.expect("confirm");
    let confirmed = w.registry().get_device(&s).await.expect("get").expect("d");
    assert!(!confirmed.binding_pending);
    // A device write like any other: the version moves (a whole-item write on the old version loses).
    assert_eq!(confirmed.version, pending.version + 1);
    e.confirm(&s, &next).await.expect("confirm again");
    let again = w.registry().get_device(&s).await.expect("get").expect("d");
    assert_eq!(
        again.version, confirmed.version,
        "a repeated confirm writes nothing"
    );
}

/// The AWS IoT control plane as the functions use it, with what the world can observe of it.
pub trait IotWorld: Send + Sync {
    type Iot: IotControl;
    type Publisher: Publisher;
    type Connections: Connections;
    fn iot(&self) -> &Self::Iot;
    fn publisher(&self) -> &Self::Publisher;
    fn connections(&self) -> &Self::Connections;
    /// Registers a CA, ACTIVE with auto-registration.
    fn register_ca(&self, pem: &str) -> impl Future<Output = CertificateId> + Send;
    /// Registers a device certificate PENDING_ACTIVATION, as auto-registration does.
    fn register_certificate(
        &self,
        pem: &str,
        ca_pem: &str,
    ) -> impl Future<Output = CertificateId> + Send;
    /// Creates an IoT policy (the template's job on AWS; attaching needs it to exist there).
    fn create_policy(&self, name: &str) -> impl Future<Output = ()> + Send;
    fn thing_principals(&self, thing: &str) -> impl Future<Output = Vec<String>> + Send;
    fn attached_policies(&self, cert_arn: &str) -> impl Future<Output = Vec<String>> + Send;
    fn group_members(&self, group: &str) -> impl Future<Output = Vec<String>> + Send;
    fn unique(&self, prefix: &str) -> String;
}

/// The IoT control plane: descriptions, idempotent attachments, status changes (REVOKED is
/// final), thing groups; the data plane: publishes and forced disconnects.
pub async fn iot_contract<W: IotWorld>(w: &W) {
    let iot = w.iot();
    let ca = crate::pki::TestCa::new(&w.unique("contract CA "));
    let unknown = CertificateId::parse(&secret_hash(w.unique("none").as_bytes())).expect("id");
    assert_eq!(
        iot.describe_certificate(&unknown).await.expect("describe"),
        None
    );
    assert_eq!(
        iot.describe_ca_certificate(&unknown)
            .await
            .expect("describe"),
        None
    );
    let ca_id = w.register_ca(&ca.pem()).await;
    assert_eq!(
        ca_id,
        crate::pki::certificate_id(&ca.pem()),
        "a CA's id is SHA-256 of its DER"
    );
    let described = iot
        .describe_ca_certificate(&ca_id)
        .await
        .expect("describe")
        .expect("CA");
    assert_eq!(described.status, CertificateStatus::Active);
    let serial = Serial::parse(&w.unique("SN")).expect("serial");
    let pem = ca.issue(serial.as_str());
    let id = w.register_certificate(&pem, &ca.pem()).await;
    assert_eq!(
        id,
        crate::pki::certificate_id(&pem),
        "an id is SHA-256 of the DER"
    );
    let cert = iot
        .describe_certificate(&id)
        .await
        .expect("describe")
        .expect("certificate");
    assert_eq!(cert.status, CertificateStatus::PendingActivation);
    assert!(cert.arn.ends_with(&format!("cert/{id}")), "{}", cert.arn);
    assert_eq!(
        crate::pki::certificate_id(&cert.pem),
        id,
        "the PEM AWS holds"
    );

    // Things and attachments: each call idempotent.
    iot.ensure_thing(&serial).await.expect("thing");
    iot.ensure_thing(&serial).await.expect("thing again");
    iot.attach_thing_principal(&serial, &cert.arn)
        .await
        .expect("attach");
    iot.attach_thing_principal(&serial, &cert.arn)
        .await
        .expect("attach again");
    assert_eq!(
        w.thing_principals(serial.as_str()).await,
        vec![cert.arn.clone()]
    );
    let missing = Serial::parse(&w.unique("SN")).expect("serial");
    assert!(
        iot.attach_thing_principal(&missing, &cert.arn)
            .await
            .is_err(),
        "no such thing"
    );
    let policy = w.unique("policy");
    w.create_policy(&policy).await;
    iot.attach_policy(&policy, &cert.arn).await.expect("policy");
    iot.attach_policy(&policy, &cert.arn)
        .await
        .expect("policy again");
    assert_eq!(w.attached_policies(&cert.arn).await, vec![policy.clone()]);
    iot.detach_policy(&policy, &cert.arn).await.expect("detach");
    iot.detach_policy(&policy, &cert.arn)
        .await
        .expect("detach again");
    assert!(w.attached_policies(&cert.arn).await.is_empty());
    iot.detach_thing_principal(&serial, &cert.arn)
        .await
        .expect("detach thing");
    iot.detach_thing_principal(&serial, &cert.arn)
        .await
        .expect("detach thing again");
    assert!(w.thing_principals(serial.as_str()).await.is_empty());

    // Status: ACTIVE, INACTIVE, back, REVOKED; REVOKED is final.
    for status in [
        CertificateStatus::Active,
        CertificateStatus::Inactive,
        CertificateStatus::Active,
        CertificateStatus::Revoked,
    ] {
        iot.set_certificate_status(&id, status)
            .await
            .expect("status");
        let now = iot.describe_certificate(&id).await.expect("d").expect("c");
        assert_eq!(now.status, status);
    }
    assert!(
        iot.set_certificate_status(&id, CertificateStatus::Active)
            .await
            .is_err(),
        "a revoked certificate never becomes active again"
    );
    assert_eq!(
        iot.describe_certificate(&id)
            .await
            .expect("d")
            .expect("c")
            .status,
        CertificateStatus::Revoked
    );
    assert!(
        iot.set_certificate_status(&unknown, CertificateStatus::Inactive)
            .await
            .is_err(),
        "no such certificate"
    );

    // Thing groups: created on first use, membership idempotent both ways.
    let group = w.unique("group");
    iot.set_group_membership(&group, &serial, true)
        .await
        .expect("join");
    iot.set_group_membership(&group, &serial, true)
        .await
        .expect("join again");
    assert_eq!(w.group_members(&group).await, vec![serial.to_string()]);
    iot.set_group_membership(&group, &serial, false)
        .await
        .expect("leave");
    iot.set_group_membership(&group, &serial, false)
        .await
        .expect("leave again");
    assert!(w.group_members(&group).await.is_empty());

    // RegisterCertificate (rotation): registered with the status asked; again, the status stands.
    let rotated = ca.issue(serial.as_str());
    let (c, created) = iot
        .register_certificate(&rotated, Some(&ca.pem()), CertificateStatus::Active)
        .await
        .expect("register");
    assert!(created);
    assert_eq!(
        (c.id.clone(), c.status),
        (
            crate::pki::certificate_id(&rotated),
            CertificateStatus::Active
        )
    );
    assert!(c.arn.ends_with(&format!("cert/{}", c.id)), "{}", c.arn);
    iot.set_certificate_status(&c.id, CertificateStatus::Revoked)
        .await
        .expect("revoke");
    let (again, created) = iot
        .register_certificate(&rotated, Some(&ca.pem()), CertificateStatus::Active)
        .await
        .expect("register again");
    assert!(!created, "registered already");
    assert_eq!(
        (again.status, again.arn),
        (CertificateStatus::Revoked, c.arn)
    );
    // An isolation registers a certificate it must keep from ever being usable: cut off.
    let preempted = ca.issue(serial.as_str());
    let (p, _) = iot
        .register_certificate(&preempted, None, CertificateStatus::Revoked)
        .await
        .expect("register revoked");
    assert_eq!(p.status, CertificateStatus::Revoked);
    assert!(iot
        .ca_certificates()
        .await
        .expect("CAs")
        .iter()
        .any(|c| c.id == ca_id && crate::pki::certificate_id(&c.pem) == ca_id));

    // Data plane: a reply publishes; cutting a client that is not connected is done.
    w.publisher()
        .publish(
            &format!("P/{serial}/deleterecords/r1/accepted"),
            &serde_json::json!({"outcome": "accepted"}),
        )
        .await
        .expect("publish");
    w.connections()
        .disconnect(serial.as_str())
        .await
        .expect("disconnect");
}

/// The registry as rotation writes and queries it: the device written whole, conditional on its
/// version, with the certificate record and the audit entry, all or nothing; the sparse indexes.
pub async fn rotations_contract<W: World>(w: &W) {
    use fleetguard_domain::domain::{rfc3339, CertificateRecord, Device, Rotation};
    let r = w.rotations();
    let now = time::OffsetDateTime::now_utc();
    let s = manufactured(w).await;
    let current = cert_id(w);
    // A binding records what was read of the certificate: its expiry (indexed) and key.
    let facts = fleetguard_domain::domain::CertificateFacts {
        not_after: rfc3339(now + time::Duration::days(20)),
        key_sha256: secret_hash(b"current key"),
    };
    w.registry()
        .bind_certificate(&s, &current, None, Some(&facts))
        .await
        .expect("bind");
    let read = w
        .registry()
        .get_device(&s)
        .await
        .expect("get")
        .expect("device");
    assert_eq!(
        (
            read.certificate_not_after.as_deref(),
            read.certificate_key_sha256.as_deref()
        ),
        (
            Some(facts.not_after.as_str()),
            Some(facts.key_sha256.as_str())
        )
    );
    assert_eq!(read.expiry_month, Some(facts.not_after[..7].to_owned()));
    let next = cert_id(w);
    let mut device = read.clone();
    device.rotation = Some(Rotation {
        next_certificate_id: next.clone(),
        certificate_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        request_sha256: secret_hash(b"csr"),
        key_sha256: secret_hash(b"key"),
        not_after: rfc3339(now + time::Duration::days(365)),
        requested_at: rfc3339(now),
        expires_at: rfc3339(now - time::Duration::minutes(1)),
        cuts_off: None,
    });
    device.last_rotation_at = Some(rfc3339(now));
    device.set_certificate_not_after(&rfc3339(now + time::Duration::days(10)));
    device.refresh_deadline();
    device.version = read.version + 1;
    let record = CertificateRecord {
        certificate_id: next.clone(),
        serial: s.clone(),
        denied: false,
        held: false,
        updated_at: rfc3339(now),
    };
    let entry = |key: &str| {
        let mut e = AuditEntry::new(
            "contract",
            "rotate_certificate",
            Outcome::Accepted,
            Reason::CertificateIssued,
        )
        .serial(s.as_str());
        e.at = rfc3339(now);
        e.dedupe = Some(key.to_owned());
        e
    };
    let audited = || async {
        w.audit()
            .for_serial(s.as_str(), 10)
            .await
            .expect("audit")
            .len()
    };

    // A stale version loses, and writes nothing.
    assert!(!r
        .save(&device, read.version + 7, Some(&record), &entry("a"))
        .await
        .expect("stale"));
    assert_eq!(
        w.registry().get_device(&s).await.expect("get"),
        Some(read.clone())
    );
    assert_eq!(
        w.registry().get_certificate(&next).await.expect("get"),
        None
    );
    assert_eq!(audited().await, 0);
    // The write: every field back as written, the record, the entry.
    assert!(r
        .save(&device, read.version, Some(&record), &entry("a"))
        .await
        .expect("save"));
    assert_eq!(
        w.registry().get_device(&s).await.expect("get"),
        Some(device.clone())
    );
    let rec = w
        .registry()
        .get_certificate(&next)
        .await
        .expect("get")
        .expect("record");
    assert_eq!((rec.serial.clone(), rec.denied), (s.clone(), false));
    assert_eq!(audited().await, 1);
    // The same audit entry again fails the whole write (a replay writes nothing twice).
    let mut later = device.clone();
    later.version += 1;
    assert!(!r
        .save(&later, device.version, None, &entry("a"))
        .await
        .expect("same entry"));
    assert_eq!(
        w.registry().get_device(&s).await.expect("get"),
        Some(device.clone())
    );
    // A certificate bound to another serial cannot be recorded for this one.
    let other = manufactured(w).await;
    let foreign = CertificateRecord {
        serial: other.clone(),
        ..record.clone()
    };
    assert!(!r
        .save(&later, device.version, Some(&foreign), &entry("b"))
        .await
        .expect("foreign"));
    // Deny-listing a certificate with the write.
    let denied = CertificateRecord {
        denied: true,
        ..record.clone()
    };
    assert!(r
        .save(&later, device.version, Some(&denied), &entry("c"))
        .await
        .expect("deny"));
    assert!(
        w.registry()
            .get_certificate(&next)
            .await
            .expect("get")
            .expect("record")
            .denied
    );

    // The sweep's index: due devices only.
    let due = r.due(&rfc3339(now), 1000).await.expect("due");
    assert!(
        due.iter().any(|d| d.serial == s),
        "a passed deadline is due"
    );
    let due = r
        .due(&rfc3339(now - time::Duration::hours(1)), 1000)
        .await
        .expect("due");
    assert!(
        !due.iter().any(|d| d.serial == s),
        "not yet due an hour ago"
    );
    assert!(!r
        .due(&rfc3339(now), 1000)
        .await
        .expect("due")
        .iter()
        .any(|d| d.serial == other));

    // The expiry index: inside the window (across a month boundary), nothing outside it.
    let mut far = Device::manufactured(other.clone(), Enrollment::default(), rfc3339(now));
    far.set_certificate_not_after(&rfc3339(now + time::Duration::days(45)));
    let v = w
        .registry()
        .get_device(&other)
        .await
        .expect("get")
        .expect("device")
        .version;
    far.version = v + 1;
    assert!(r.save(&far, v, None, &entry("d")).await.expect("save"));
    let window = |days: i64| (rfc3339(now), rfc3339(now + time::Duration::days(days)));
    let found = |(from, to): (String, String)| async move {
        r.expiring(&from, &to)
            .await
            .expect("expiring")
            .0
            .into_iter()
            .map(|d| d.serial)
            .collect::<Vec<_>>()
    };
    let in30 = found(window(30)).await;
    assert!(in30.contains(&s) && !in30.contains(&other), "{in30:?}");
    let in60 = found(window(60)).await;
    assert!(in60.contains(&s) && in60.contains(&other), "{in60:?}");
    assert!(!found(window(5)).await.contains(&s));

    // Presence: a session is noted only in a grace period, the newest version wins, and it is not a
    // version-counted change (rotation's conditional writes must not lose to it).
    use fleetguard_domain::domain::LiveSession;
    let g = manufactured(w).await;
    let a = cert_id(w);
    w.registry()
        .bind_certificate(&g, &a, None, None)
        .await
        .expect("bind");
    let session = |id: &str, version: u64| LiveSession {
        certificate_id: a.clone(),
        session: id.to_owned(),
        version,
        taken_over: false,
    };
    assert!(!w
        .registry()
        .note_session(&g, &session("s0", 1))
        .await
        .expect("note"));
    let mut grace = w
        .registry()
        .get_device(&g)
        .await
        .expect("get")
        .expect("device");
    let v = grace.version;
    grace.previous_certificate_id = Some(cert_id(w));
    grace.version = v + 1;
    assert!(r.save(&grace, v, None, &entry("g")).await.expect("save"));
    assert!(w
        .registry()
        .note_session(&g, &session("s2", 2))
        .await
        .expect("note"));
    assert!(!w
        .registry()
        .note_session(&g, &session("s1", 1))
        .await
        .expect("older"));
    let noted = w
        .registry()
        .get_device(&g)
        .await
        .expect("get")
        .expect("device");
    assert_eq!(noted.live_session, Some(session("s2", 2)));
    assert_eq!(noted.version, v + 1, "not version-counted");
    w.registry().end_session(&g, "s1").await.expect("end other");
    assert!(w
        .registry()
        .get_device(&g)
        .await
        .expect("get")
        .expect("device")
        .live_session
        .is_some());
    w.registry().end_session(&g, "s2").await.expect("end");
    assert_eq!(
        w.registry()
            .get_device(&g)
            .await
            .expect("get")
            .expect("device")
            .live_session,
        None
    );
}
