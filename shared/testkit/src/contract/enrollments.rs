//! The claim hook's enrollments contract: the registry as the pre-provisioning hook uses it, one
//! read of device and certificate, one conditional pending binding that spends the proof, with its
//! audit entry.

use super::*;
use fleetguard_domain::model::{AuditAction, Device};

/// A manufactured serial enrolled with a secret, as the hook reads it for a fresh certificate, and
/// the pending binding that spends the secret on that certificate.
struct Enrolled {
    s: Serial,
    c: CertificateId,
    hash: String,
    read: Device,
    certificate: Option<fleetguard_domain::model::CertificateRecord>,
    binding: PendingBinding,
    entry: AuditEntry,
}

async fn enrolled<W: World>(w: &W) -> Enrolled {
    let s = serial(w);
    let hash = secret_hash(w.unique("secret").as_bytes());
    let device = Device::manufactured(
        s.clone(),
        Enrollment {
            secret_sha256: Some(hash.clone()),
            ..Enrollment::default()
        },
        Timestamp::now(),
    );
    assert!(w.registry().import_device(&device).await.expect("import"));
    let c = cert_id(w);
    let ctx = w.enrollments().load(&s, &c).await.expect("load");
    let read = ctx.device.expect("device");
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
    Enrolled {
        s,
        c,
        hash,
        read,
        certificate: ctx.certificate,
        binding,
        entry,
    }
}

/// As [`enrolled`], the binding made.
async fn bound<W: World>(w: &W) -> Enrolled {
    let e = enrolled(w).await;
    assert!(w
        .enrollments()
        .bind_pending(&e.binding, &e.entry)
        .await
        .expect("bind"));
    e
}

/// One read: the device and the certificate's record (none yet).
pub async fn one_read_loads_the_device_and_its_certificate<W: World>(w: &W) {
    let e = enrolled(w).await;
    assert_eq!(
        (e.read.status, e.certificate),
        (DeviceStatus::Manufactured, None)
    );
}

/// A stale version loses, and writes nothing.
pub async fn a_stale_version_binds_nothing<W: World>(w: &W) {
    let e = enrolled(w).await;
    let stale = PendingBinding {
        expected_version: e.read.version + 5,
        ..e.binding.clone()
    };
    assert!(!w
        .enrollments()
        .bind_pending(&stale, &e.entry)
        .await
        .expect("stale"));
    assert_eq!(audited(w, &e.s).await, 0);
}

/// A wrong secret loses, and writes nothing.
pub async fn a_wrong_secret_binds_nothing<W: World>(w: &W) {
    let e = enrolled(w).await;
    let wrong = PendingBinding {
        spend: ProofSpend::Secret {
            hash: secret_hash(b"wrong"),
        },
        ..e.binding.clone()
    };
    assert!(!w
        .enrollments()
        .bind_pending(&wrong, &e.entry)
        .await
        .expect("wrong secret"));
    assert_eq!(audited(w, &e.s).await, 0);
}

/// The binding: active, pending, the secret spent on this certificate, audited with it.
pub async fn the_binding_activates_spends_the_secret_and_is_audited<W: World>(w: &W) {
    let e = bound(w).await;
    let ctx = w.enrollments().load(&e.s, &e.c).await.expect("load");
    let d = ctx.device.expect("device");
    assert_eq!(
        (d.status, d.certificate_id.as_ref(), d.binding_pending),
        (DeviceStatus::Active, Some(&e.c), true)
    );
    assert_eq!(d.enrollment.secret_used_by.as_ref(), Some(&e.c));
    assert_eq!(ctx.certificate.expect("record").serial, e.s);
    assert_eq!(audited(w, &e.s).await, 1);
}

/// A replay of the same binding loses (the version moved on).
pub async fn a_replayed_binding_loses<W: World>(w: &W) {
    let e = bound(w).await;
    assert!(!w
        .enrollments()
        .bind_pending(&e.binding, &e.entry)
        .await
        .expect("replay"));
}

/// As [`bound`], the pending certificate then replaced by a fresh one (returned).
async fn replaced<W: World>(w: &W, e: &Enrolled) -> CertificateId {
    let d = w
        .registry()
        .get_device(&e.s)
        .await
        .expect("get")
        .expect("d");
    let next = cert_id(w);
    let replacing = PendingBinding {
        serial: e.s.clone(),
        certificate: next.clone(),
        expected_version: d.version,
        spend: ProofSpend::Secret {
            hash: e.hash.clone(),
        },
        replaces: Some(e.c.clone()),
    };
    assert!(w
        .enrollments()
        .bind_pending(&replacing, &e.entry)
        .await
        .expect("replace"));
    next
}

/// A stale pending certificate is replaced (the secret may be presented again for it) and denied.
pub async fn a_stale_pending_certificate_is_replaced_and_denied<W: World>(w: &W) {
    let e = bound(w).await;
    replaced(w, &e).await;
    assert!(
        w.registry()
            .get_certificate(&e.c)
            .await
            .expect("get")
            .expect("rec")
            .denied
    );
}

/// Confirming the binding clears the pending mark; confirming another certificate does nothing.
pub async fn confirming_clears_the_pending_mark_once<W: World>(w: &W) {
    let e = bound(w).await;
    let next = replaced(w, &e).await;
    let s = &e.s;
    w.enrollments()
        .confirm(s, &e.c)
        .await
        .expect("confirm other");
    assert!(
        w.registry()
            .get_device(s)
            .await
            .expect("get")
            .expect("d")
            .binding_pending
    );
    let pending = w.registry().get_device(s).await.expect("get").expect("d");
    w.enrollments().confirm(s, &next).await.expect("confirm");
    let confirmed = w.registry().get_device(s).await.expect("get").expect("d");
    assert!(!confirmed.binding_pending);
    // A device write like any other: the version moves (a whole-item write on the old version loses).
    assert_eq!(confirmed.version, pending.version + 1);
    w.enrollments()
        .confirm(s, &next)
        .await
        .expect("confirm again");
    let again = w.registry().get_device(s).await.expect("get").expect("d");
    assert_eq!(
        again.version, confirmed.version,
        "a repeated confirm writes nothing"
    );
}
