//! The claim hook's enrollments contract.

use super::*;
use fleetguard_domain::model::AuditAction;

/// The registry as the pre-provisioning hook uses it: one read of device and certificate, one
/// conditional pending binding that spends the proof, with its audit entry.
pub async fn enrollments_contract<W: World>(w: &W) {
    let e = w.enrollments();
    let s = serial(w);
    let hash = secret_hash(w.unique("secret").as_bytes());
    let device = fleetguard_domain::model::Device::manufactured(
        s.clone(),
        Enrollment {
            secret_sha256: Some(hash.clone()),
            ..Enrollment::default()
        },
        fleetguard_domain::model::now_rfc3339(),
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
        AuditAction::Provision,
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
