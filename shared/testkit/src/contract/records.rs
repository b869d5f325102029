//! The records contract.

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
        AuditAction::DeleteRecord,
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
    let at = fleetguard_domain::model::now_rfc3339();
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
        AuditAction::RestoreRecord,
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
            AuditAction::RestoreRecord,
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
