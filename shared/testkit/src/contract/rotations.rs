//! The registry as rotation writes and queries it: the device written whole, conditional on its
//! version, with the certificate record and the audit entry, all or nothing; the sparse indexes;
//! presence.

use super::*;
use fleetguard_domain::model::{
    AuditAction, CertificateFacts, CertificateRecord, Device, LiveSession, Rotation,
};
use time::{Duration, OffsetDateTime};

/// A rotation's audit entry for `s` at `now`, with idempotency key `key`.
fn entry(s: &Serial, now: OffsetDateTime, key: &str) -> AuditEntry {
    let mut e = AuditEntry::new(
        "contract",
        AuditAction::RotateCertificate,
        Outcome::Accepted,
        Reason::CertificateIssued,
    )
    .serial(s.as_str());
    e.at = Timestamp::at(now);
    e.dedupe = Some(key.to_owned());
    e
}

/// A device bound to a certificate expiring in 20 days (`facts`, as read at the binding), as read
/// (`read`), and what a rotation writes of it: `device` (the next certificate `next` issued, its
/// confirmation already overdue, the current certificate expiring in 10 days) and `record`.
struct Rotating {
    s: Serial,
    now: OffsetDateTime,
    facts: CertificateFacts,
    read: Device,
    next: CertificateId,
    device: Device,
    record: CertificateRecord,
}

async fn rotating<W: World>(w: &W) -> Rotating {
    let now = OffsetDateTime::now_utc();
    let s = manufactured(w).await;
    let current = cert_id(w);
    let facts = CertificateFacts {
        not_after: Timestamp::at(now + Duration::days(20)),
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
    let next = cert_id(w);
    let mut device = read.clone();
    device.rotation = Some(Rotation {
        next_certificate_id: next.clone(),
        certificate_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        request_sha256: secret_hash(b"csr"),
        key_sha256: secret_hash(b"key"),
        not_after: Timestamp::at(now + Duration::days(365)),
        requested_at: Timestamp::at(now),
        expires_at: Timestamp::at(now - Duration::minutes(1)),
        cuts_off: None,
    });
    device.last_rotation_at = Some(Timestamp::at(now));
    device.set_certificate_not_after(&Timestamp::at(now + Duration::days(10)));
    device.refresh_deadline();
    device.version = read.version + 1;
    let record = CertificateRecord {
        certificate_id: next.clone(),
        serial: s.clone(),
        denied: false,
        held: false,
        updated_at: Timestamp::at(now),
    };
    Rotating {
        s,
        now,
        facts,
        read,
        next,
        device,
        record,
    }
}

/// As [`rotating`], the rotation written (audit entry `a`).
async fn saved<W: World>(w: &W) -> Rotating {
    let r = rotating(w).await;
    assert!(w
        .rotations()
        .save(
            &r.device,
            r.read.version,
            Some(&r.record),
            &entry(&r.s, r.now, "a")
        )
        .await
        .expect("save"));
    r
}

/// A binding records what was read of the certificate: its expiry (indexed) and key.
pub async fn a_binding_records_the_certificate_facts<W: World>(w: &W) {
    let Rotating { read, facts, .. } = rotating(w).await;
    assert_eq!(
        (
            read.certificate_not_after.as_ref(),
            read.certificate_key_sha256.as_deref()
        ),
        (Some(&facts.not_after), Some(facts.key_sha256.as_str()))
    );
    assert_eq!(
        read.expiry_month,
        Some(facts.not_after.as_str()[..7].to_owned())
    );
}

/// A stale version loses, and writes nothing.
pub async fn a_stale_version_writes_nothing<W: World>(w: &W) {
    let r = rotating(w).await;
    assert!(!w
        .rotations()
        .save(
            &r.device,
            r.read.version + 7,
            Some(&r.record),
            &entry(&r.s, r.now, "a")
        )
        .await
        .expect("stale"));
    assert_eq!(
        w.registry().get_device(&r.s).await.expect("get"),
        Some(r.read.clone())
    );
    assert_eq!(
        w.registry().get_certificate(&r.next).await.expect("get"),
        None
    );
    assert_eq!(audited(w, &r.s).await, 0);
}

/// The write: every field back as written, the record, the entry.
pub async fn the_write_is_read_back_with_its_record_and_entry<W: World>(w: &W) {
    let r = saved(w).await;
    assert_eq!(
        w.registry().get_device(&r.s).await.expect("get"),
        Some(r.device.clone())
    );
    let rec = w
        .registry()
        .get_certificate(&r.next)
        .await
        .expect("get")
        .expect("record");
    assert_eq!((rec.serial.clone(), rec.denied), (r.s.clone(), false));
    assert_eq!(audited(w, &r.s).await, 1);
}

/// The next write after [`saved`]'s, at the version it wrote.
fn later(r: &Rotating) -> Device {
    let mut later = r.device.clone();
    later.version += 1;
    later
}

/// The same audit entry again fails the whole write (a replay writes nothing twice).
pub async fn a_replayed_audit_entry_fails_the_whole_write<W: World>(w: &W) {
    let r = saved(w).await;
    assert!(!w
        .rotations()
        .save(&later(&r), r.device.version, None, &entry(&r.s, r.now, "a"))
        .await
        .expect("same entry"));
    assert_eq!(
        w.registry().get_device(&r.s).await.expect("get"),
        Some(r.device.clone())
    );
}

/// A certificate bound to another serial cannot be recorded for this one.
pub async fn a_certificate_of_another_serial_is_not_recorded<W: World>(w: &W) {
    let r = saved(w).await;
    let other = manufactured(w).await;
    let foreign = CertificateRecord {
        serial: other,
        ..r.record.clone()
    };
    assert!(!w
        .rotations()
        .save(
            &later(&r),
            r.device.version,
            Some(&foreign),
            &entry(&r.s, r.now, "b")
        )
        .await
        .expect("foreign"));
}

/// Deny-listing a certificate with the write.
pub async fn a_certificate_is_deny_listed_with_the_write<W: World>(w: &W) {
    let r = saved(w).await;
    let denied = CertificateRecord {
        denied: true,
        ..r.record.clone()
    };
    assert!(w
        .rotations()
        .save(
            &later(&r),
            r.device.version,
            Some(&denied),
            &entry(&r.s, r.now, "c")
        )
        .await
        .expect("deny"));
    assert!(
        w.registry()
            .get_certificate(&r.next)
            .await
            .expect("get")
            .expect("record")
            .denied
    );
}

/// The sweep's index: due devices only.
pub async fn the_sweep_index_holds_due_devices_only<W: World>(w: &W) {
    let rot = w.rotations();
    let r = saved(w).await;
    let other = manufactured(w).await;
    let due = rot.due(&Timestamp::at(r.now), 1000).await.expect("due");
    assert!(
        due.iter().any(|d| d.serial == r.s),
        "a passed deadline is due"
    );
    let due = rot
        .due(&Timestamp::at(r.now - Duration::hours(1)), 1000)
        .await
        .expect("due");
    assert!(
        !due.iter().any(|d| d.serial == r.s),
        "not yet due an hour ago"
    );
    assert!(!rot
        .due(&Timestamp::at(r.now), 1000)
        .await
        .expect("due")
        .iter()
        .any(|d| d.serial == other));
}

/// The expiry index: inside the window (across a month boundary), nothing outside it.
pub async fn the_expiry_index_finds_a_window_across_months<W: World>(w: &W) {
    let rot = w.rotations();
    let r = saved(w).await;
    let (s, now) = (&r.s, r.now);
    let other = manufactured(w).await;
    let mut far = Device::manufactured(other.clone(), Enrollment::default(), Timestamp::at(now));
    far.set_certificate_not_after(&Timestamp::at(now + Duration::days(45)));
    let v = w
        .registry()
        .get_device(&other)
        .await
        .expect("get")
        .expect("device")
        .version;
    far.version = v + 1;
    assert!(rot
        .save(&far, v, None, &entry(s, now, "d"))
        .await
        .expect("save"));
    let window = |days: i64| {
        (
            Timestamp::at(now),
            Timestamp::at(now + Duration::days(days)),
        )
    };
    let found = |(from, to): (Timestamp, Timestamp)| async move {
        rot.expiring(&from, &to)
            .await
            .expect("expiring")
            .0
            .into_iter()
            .map(|d| d.serial)
            .collect::<Vec<_>>()
    };
    let in30 = found(window(30)).await;
    assert!(in30.contains(s) && !in30.contains(&other), "{in30:?}");
    let in60 = found(window(60)).await;
    assert!(in60.contains(s) && in60.contains(&other), "{in60:?}");
    assert!(!found(window(5)).await.contains(s));
}

// Presence: a session is noted only in a grace period, the newest version wins, and it is not a
// version-counted change (rotation's conditional writes must not lose to it).

/// An active device `g` on certificate `a`; its sessions on `a` by id and version.
struct Present {
    g: Serial,
    a: CertificateId,
}

impl Present {
    fn session(&self, id: &str, version: u64) -> LiveSession {
        LiveSession {
            certificate_id: self.a.clone(),
            session: id.to_owned(),
            version,
            taken_over: false,
        }
    }
}

async fn present<W: World>(w: &W) -> Present {
    let (g, a) = active(w).await;
    Present { g, a }
}

/// As [`present`], the device then in a grace period (a previous certificate) by a rotation's
/// write. Returns the version written.
async fn in_grace<W: World>(w: &W, p: &Present) -> u64 {
    let mut grace = w
        .registry()
        .get_device(&p.g)
        .await
        .expect("get")
        .expect("device");
    let v = grace.version;
    grace.previous_certificate_id = Some(cert_id(w));
    grace.version = v + 1;
    let now = OffsetDateTime::now_utc();
    assert!(w
        .rotations()
        .save(&grace, v, None, &entry(&p.g, now, "g"))
        .await
        .expect("save"));
    v + 1
}

/// A session is noted only in a grace period.
pub async fn a_session_is_noted_only_in_a_grace_period<W: World>(w: &W) {
    let p = present(w).await;
    assert!(!w
        .registry()
        .note_session(&p.g, &p.session("s0", 1))
        .await
        .expect("note"));
    in_grace(w, &p).await;
    assert!(w
        .registry()
        .note_session(&p.g, &p.session("s2", 2))
        .await
        .expect("note"));
}

/// The newest session wins, and noting it is not a version-counted change.
pub async fn the_newest_session_wins_and_is_not_version_counted<W: World>(w: &W) {
    let p = present(w).await;
    let version = in_grace(w, &p).await;
    assert!(w
        .registry()
        .note_session(&p.g, &p.session("s2", 2))
        .await
        .expect("note"));
    assert!(!w
        .registry()
        .note_session(&p.g, &p.session("s1", 1))
        .await
        .expect("older"));
    let noted = w
        .registry()
        .get_device(&p.g)
        .await
        .expect("get")
        .expect("device");
    assert_eq!(noted.live_session, Some(p.session("s2", 2)));
    assert_eq!(noted.version, version, "not version-counted");
}

/// Ending a session ends only the session named.
pub async fn only_the_session_named_ends<W: World>(w: &W) {
    let p = present(w).await;
    in_grace(w, &p).await;
    assert!(w
        .registry()
        .note_session(&p.g, &p.session("s2", 2))
        .await
        .expect("note"));
    w.registry()
        .end_session(&p.g, "s1")
        .await
        .expect("end other");
    assert!(w
        .registry()
        .get_device(&p.g)
        .await
        .expect("get")
        .expect("device")
        .live_session
        .is_some());
    w.registry().end_session(&p.g, "s2").await.expect("end");
    assert_eq!(
        w.registry()
            .get_device(&p.g)
            .await
            .expect("get")
            .expect("device")
            .live_session,
        None
    );
}
