//! The records contract: soft delete conditional on version and entitlement (all or nothing with its
//! audit entry), the principal's facts read with the record, deletes by principal, restores.

use super::*;
use fleetguard_domain::model::AuditAction;

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

fn delete_of(record: &Record, principal: &str, at: &Timestamp) -> SoftDelete {
    SoftDelete {
        serial: record.serial.clone(),
        record_id: record.record_id.clone(),
        principal: principal.to_owned(),
        reason: None,
        request_key: format!("req-{}", record.record_id),
        at: at.clone(),
    }
}

fn delete_entry(record: &Record, principal: &str) -> AuditEntry {
    AuditEntry::new(
        "contract",
        AuditAction::DeleteRecord,
        Outcome::Accepted,
        Reason::Deleted,
    )
    .principal(principal)
    .serial(record.serial.as_str())
    .record(record.record_id.as_str())
}

/// An active device's record `r1`, put; the device's certificate entitled to delete it.
struct Live {
    s: Serial,
    cert: Principal,
    rec: Record,
    entitled: Entitlement,
    at: Timestamp,
}

impl Live {
    fn delete(&self) -> SoftDelete {
        delete_of(&self.rec, self.cert.as_str(), &self.at)
    }
    fn entry(&self) -> AuditEntry {
        delete_entry(&self.rec, self.cert.as_str())
    }
}

async fn live<W: World>(w: &W) -> Live {
    let (s, c) = active(w).await;
    let rec = record(&s, "r1");
    w.records().put(&rec).await.expect("put");
    Live {
        cert: Principal::Certificate(c.clone()),
        entitled: Entitlement::Certificate {
            serial: s.clone(),
            certificate: c.clone(),
        },
        at: Timestamp::now(),
        s,
        rec,
    }
}

/// As [`live`], the record deleted by the certificate (version 2).
async fn deleted<W: World>(w: &W) -> Live {
    let l = live(w).await;
    assert_eq!(
        w.records()
            .soft_delete(&l.delete(), 1, &l.entitled, &l.entry())
            .await
            .expect("delete"),
        SoftDeleteResult::Deleted { version: 2 }
    );
    l
}

/// A record is read back as put; before, it is not there.
pub async fn a_record_is_read_back_as_put<W: World>(w: &W) {
    let d = w.records();
    let (s, _) = active(w).await;
    let rec = record(&s, "r1");
    assert_eq!(d.get(&s, &rec.record_id).await.expect("get"), None);
    d.put(&rec).await.expect("put");
    assert_eq!(
        d.get(&s, &rec.record_id).await.expect("get"),
        Some(rec.clone())
    );
}

/// One read: the principal's registry facts and the record.
pub async fn one_read_loads_the_principal_facts_and_the_record<W: World>(w: &W) {
    let d = w.records();
    let l = live(w).await;
    let ctx = d
        .load_for_delete(&l.cert, &l.s, &l.rec.record_id)
        .await
        .expect("load");
    match ctx.principal {
        Some(PrincipalFacts::Certificate(cr)) => {
            assert_eq!((cr.serial, cr.denied), (l.s.clone(), false))
        }
        other => panic!("certificate facts expected, got {other:?}"),
    }
    assert_eq!(ctx.record, Some(l.rec.clone()));
    let nobody = Principal::Certificate(cert_id(w));
    let ctx = d
        .load_for_delete(&nobody, &l.s, &RecordId::parse("missing").expect("id"))
        .await
        .expect("load");
    assert_eq!((ctx.principal, ctx.record), (None, None));
}

/// The record is still live and the serial has no audit entry: a refused write leaves nothing.
async fn nothing_written<W: World>(w: &W, l: &Live) {
    assert!(!w
        .records()
        .get(&l.s, &l.rec.record_id)
        .await
        .expect("get")
        .expect("rec")
        .is_deleted());
    assert!(
        w.audit()
            .for_serial(l.s.as_str(), 10)
            .await
            .expect("audit")
            .is_empty(),
        "refused writes leave no audit entry"
    );
}

/// A stale version changes nothing.
pub async fn a_stale_version_changes_nothing<W: World>(w: &W) {
    let l = live(w).await;
    assert_eq!(
        w.records()
            .soft_delete(&l.delete(), 7, &l.entitled, &l.entry())
            .await
            .expect("stale"),
        SoftDeleteResult::Changed
    );
    nothing_written(w, &l).await;
}

/// A certificate that is not the serial's current one is not entitled.
pub async fn a_certificate_not_current_is_not_entitled<W: World>(w: &W) {
    let l = live(w).await;
    let wrong = Entitlement::Certificate {
        serial: l.s.clone(),
        certificate: cert_id(w),
    };
    assert_eq!(
        w.records()
            .soft_delete(&l.delete(), 1, &wrong, &l.entry())
            .await
            .expect("wrong cert"),
        SoftDeleteResult::NotEntitled
    );
    nothing_written(w, &l).await;
}

/// The entitled delete at the current version: version + 1, with its audit entry.
pub async fn an_entitled_delete_moves_the_version_with_its_audit_entry<W: World>(w: &W) {
    let d = w.records();
    let l = deleted(w).await;
    let now = d
        .get(&l.s, &l.rec.record_id)
        .await
        .expect("get")
        .expect("rec");
    assert!(now.is_deleted());
    assert_eq!(
        (now.version, now.deleted_by.as_deref()),
        (2, Some(l.cert.as_str()))
    );
    let entries = w.audit().for_serial(l.s.as_str(), 10).await.expect("audit");
    assert_eq!(entries.len(), 1, "one audit entry with the delete");
    assert_eq!(entries[0].reason, Reason::Deleted);
}

/// Deleting a deleted record again: already changed.
pub async fn a_deleted_record_is_not_deleted_again<W: World>(w: &W) {
    let l = deleted(w).await;
    assert_eq!(
        w.records()
            .soft_delete(&l.delete(), 2, &l.entitled, &l.entry())
            .await
            .expect("again"),
        SoftDeleteResult::Changed
    );
}

/// A record that does not exist: changed (the condition on the record fails).
pub async fn a_missing_record_is_not_deleted<W: World>(w: &W) {
    let l = live(w).await;
    let ghost = record(&l.s, "ghost");
    assert_eq!(
        w.records()
            .soft_delete(
                &delete_of(&ghost, l.cert.as_str(), &l.at),
                1,
                &l.entitled,
                &delete_entry(&ghost, l.cert.as_str())
            )
            .await
            .expect("ghost"),
        SoftDeleteResult::Changed
    );
}

/// Deletes by principal, consistent, in the window.
pub async fn deletes_are_found_by_principal_in_the_window<W: World>(w: &W) {
    let d = w.records();
    let l = deleted(w).await;
    let found = d
        .deleted_by(&l.s, &l.cert, &Timestamp::epoch())
        .await
        .expect("deleted_by");
    assert_eq!(found.len(), 1);
    assert!(d
        .deleted_by(&l.s, &l.cert, &far_future())
        .await
        .expect("later")
        .is_empty());
    assert!(d
        .deleted_by(
            &l.s,
            &unique_principal(w, "someone-else"),
            &Timestamp::epoch()
        )
        .await
        .expect("other")
        .is_empty());
}

fn restore_entry(s: &Serial, record_id: &RecordId) -> AuditEntry {
    AuditEntry::new(
        "contract",
        AuditAction::RestoreRecord,
        Outcome::Accepted,
        Reason::Restored,
    )
    .serial(s.as_str())
    .record(record_id.as_str())
}

/// Restores: only a deleted record, only by the principal named.
pub async fn a_restore_needs_a_record_deleted_by_the_principal_named<W: World>(w: &W) {
    let d = w.records();
    let l = deleted(w).await;
    let (s, id) = (&l.s, &l.rec.record_id);
    let restore_entry = restore_entry(s, id);
    assert_eq!(
        d.restore(
            s,
            id,
            "ops",
            Some(&unique_principal(w, "someone-else")),
            &restore_entry
        )
        .await
        .expect("restore other"),
        RestoreResult::NotDeleted { version: 2 }
    );
    assert_eq!(
        d.restore(s, id, "ops", Some(&l.cert), &restore_entry)
            .await
            .expect("restore"),
        RestoreResult::Restored { version: 3 }
    );
    let now = d.get(s, id).await.expect("get").expect("rec");
    assert!(!now.is_deleted());
    assert_eq!(now.restored_by.as_deref(), Some("ops"));
    assert_eq!(
        d.restore(s, id, "ops", None, &restore_entry)
            .await
            .expect("restore live"),
        RestoreResult::NotDeleted { version: 3 }
    );
    let ghost = RecordId::parse("ghost").expect("id");
    assert_eq!(
        d.restore(s, &ghost, "ops", None, &restore_entry)
            .await
            .expect("restore ghost"),
        RestoreResult::NotFound
    );
}

/// Restore in batches: each only if still deleted by that principal at the version read.
pub async fn a_batch_restores_only_what_is_still_deleted_by_the_principal<W: World>(w: &W) {
    let d = w.records();
    let l = live(w).await;
    let mut batch = Vec::new();
    for i in 0..3 {
        let r = record(&l.s, &format!("b{i}"));
        d.put(&r).await.expect("put");
        let del = delete_of(&r, l.cert.as_str(), &l.at);
        assert_eq!(
            d.soft_delete(&del, 1, &l.entitled, &delete_entry(&r, l.cert.as_str()))
                .await
                .expect("delete"),
            SoftDeleteResult::Deleted { version: 2 }
        );
        let deleted = d.get(&l.s, &r.record_id).await.expect("get").expect("rec");
        batch.push((deleted, restore_entry(&l.s, &r.record_id)));
    }
    assert_eq!(
        d.restore_deleted_by(&batch, "ops", &l.cert)
            .await
            .expect("batch"),
        3
    );
    assert_eq!(
        d.restore_deleted_by(&batch, "ops", &l.cert)
            .await
            .expect("batch again"),
        0,
        "a replayed batch restores nothing"
    );
}

/// A revoked device is no longer entitled, inside the same write.
pub async fn a_revoked_device_is_not_entitled<W: World>(w: &W) {
    let d = w.records();
    let l = live(w).await;
    let r2 = record(&l.s, "r2");
    d.put(&r2).await.expect("put");
    assert!(w
        .registry()
        .transition(&l.s, &[DeviceStatus::Active], DeviceStatus::Revoked)
        .await
        .expect("revoke"));
    assert_eq!(
        d.soft_delete(
            &delete_of(&r2, l.cert.as_str(), &l.at),
            1,
            &l.entitled,
            &delete_entry(&r2, l.cert.as_str())
        )
        .await
        .expect("revoked"),
        SoftDeleteResult::NotEntitled
    );
}

/// Operators: entitled while active and granted the serial.
pub async fn an_operator_is_entitled_to_granted_serials_only<W: World>(w: &W) {
    let d = w.records();
    let at = Timestamp::now();
    let (s, _) = active(w).await;
    let (s2, _) = active(w).await;
    let op = operator(w, vec![s2.clone()], OperatorStatus::Active);
    w.put_identity(&op).await;
    let pid = op.principal_id.clone();
    let ctx = d
        .load_for_delete(
            &Principal::Authorizer(pid.clone()),
            &s2,
            &RecordId::parse("r2").expect("id"),
        )
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
            &delete_of(&r3, pid.as_str(), &at),
            1,
            &not_granted,
            &delete_entry(&r3, pid.as_str())
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
            &delete_of(&r3, pid.as_str(), &at),
            1,
            &granted,
            &delete_entry(&r3, pid.as_str())
        )
        .await
        .expect("granted"),
        SoftDeleteResult::Deleted { version: 2 }
    );
}

/// A password device's entitlement needs an active device without a certificate.
pub async fn a_password_device_is_entitled_without_a_certificate<W: World>(w: &W) {
    let d = w.records();
    let at = Timestamp::now();
    let (with_certificate, _) = active(w).await;
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
            &Entitlement::PasswordDevice {
                serial: with_certificate
            },
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

/// A time after every delete of this run.
fn far_future() -> Timestamp {
    Timestamp::parse("9999-01-01T00:00:00Z").expect("a time")
}
