//! The registry as rotation writes and queries it.

use super::*;
use fleetguard_domain::model::AuditAction;

/// The registry as rotation writes and queries it: the device written whole, conditional on its
/// version, with the certificate record and the audit entry, all or nothing; the sparse indexes.
pub async fn rotations_contract<W: World>(w: &W) {
    use fleetguard_domain::model::{rfc3339, CertificateRecord, Device, Rotation};
    let r = w.rotations();
    let now = time::OffsetDateTime::now_utc();
    let s = manufactured(w).await;
    let current = cert_id(w);
    // A binding records what was read of the certificate: its expiry (indexed) and key.
    let facts = fleetguard_domain::model::CertificateFacts {
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
            AuditAction::RotateCertificate,
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
    use fleetguard_domain::model::LiveSession;
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
