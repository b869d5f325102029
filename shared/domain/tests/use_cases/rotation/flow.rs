//! A rotation from request to retirement: issue, prove, bind, retire; replays, expiry of an
//! unconfirmed rotation, when a rotation is due, and the replaced certificate asked to rotate again.

use super::*;

#[tokio::test]
async fn a_rotation_issues_binds_after_proof_and_retires_the_old_certificate() {
    let f = Fleet::new().await;
    let (s, old, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");

    let d = f.send("rotate", &s, old.as_str(), Some(&csr)).await;
    assert_eq!(d["reason"], "certificate_issued", "{d}");
    let (topic, reply) = f.last_reply();
    assert_eq!(topic, "P/SN1/certificates/rotate/accepted");
    let pem = reply["certificate_pem"].as_str().unwrap();
    let next = certificate_id(pem);
    // Signed by the fleet CA, for this serial, with the new key; ACTIVE, with the policy and thing.
    let cert = fleetguard_domain::x509::validate_device_certificate(
        pem,
        &f.service.ca_pem,
        OffsetDateTime::now_utc(),
    )
    .expect("chains to the fleet CA");
    assert_eq!((cert.serial.as_str(), &cert.id), ("SN1", &next));
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Active));
    assert_eq!(f.iot.inner.attached_policies(&Fleet::arn(&next)), [POLICY]);
    assert!(f
        .iot
        .inner
        .thing_principals("SN1")
        .contains(&Fleet::arn(&next)));
    let dev = f.device_now(&s).await;
    assert_eq!(
        dev.certificate_id.as_ref(),
        Some(&old),
        "not bound before proof"
    );
    assert_eq!(dev.rotation.as_ref().unwrap().next_certificate_id, next);

    // The old certificate cannot confirm; the new one can.
    let d = f.send("confirm", &s, old.as_str(), None).await;
    assert_eq!(
        d["reason"], "no_rotation",
        "the current certificate's confirm is refused while a rotation is pending"
    );
    assert_eq!(f.last_reply().0, "P/SN1/certificates/confirm/rejected");
    assert_eq!(f.device_now(&s).await.certificate_id.as_ref(), Some(&old));
    let d = f.send("confirm", &s, next.as_str(), None).await;
    assert_eq!(d["reason"], "rotation_confirmed");
    assert_eq!(f.last_reply().0, "P/SN1/certificates/confirm/accepted");
    let dev = f.device_now(&s).await;
    assert_eq!(dev.certificate_id.as_ref(), Some(&next));
    assert_eq!(dev.previous_certificate_id.as_ref(), Some(&old));
    assert_eq!(
        dev.certificate_not_after,
        Some(
            fleetguard_domain::model::Timestamp::parse(reply["not_after"].as_str().unwrap())
                .unwrap()
        )
    );
    assert_eq!(
        f.iot.inner.status(&old),
        Some(CertificateStatus::Active),
        "grace period"
    );

    // A replayed confirm changes nothing.
    let entries = f.audit.entries().len();
    let d = f.send("confirm", &s, next.as_str(), None).await;
    assert_eq!(d["reason"], "rotation_confirmed");
    assert_eq!(f.audit.entries().len(), entries);
    assert_eq!(f.device_now(&s).await, dev);

    // Before the grace period ends the sweep leaves it; after, the old certificate is retired.
    let r = f.sweep().sweep(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((r.expired, r.retired), (0, 0));
    let later = OffsetDateTime::now_utc() + Duration::hours(25);
    let r = f.sweep().sweep(later).await.unwrap();
    assert_eq!((r.expired, r.retired), (0, 1));
    assert_eq!(f.iot.inner.status(&old), Some(CertificateStatus::Inactive));
    assert!(f.iot.inner.attached_policies(&Fleet::arn(&old)).is_empty());
    assert!(!f
        .iot
        .inner
        .thing_principals("SN1")
        .contains(&Fleet::arn(&old)));
    assert!(
        f.registry
            .get_certificate(&old)
            .await
            .unwrap()
            .unwrap()
            .denied
    );
    let dev = f.device_now(&s).await;
    assert_eq!((dev.previous_certificate_id, dev.deadline), (None, None));
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Active));
    // A second sweep finds nothing.
    let r = f.sweep().sweep(later).await.unwrap();
    assert_eq!((r.expired, r.retired, r.skipped), (0, 0, 0));
    assert_eq!(
        f.reasons(),
        [
            Reason::CertificateIssued,
            // The old certificate's confirm, refused.
            Reason::NoRotation,
            Reason::RotationConfirmed,
            Reason::CertificateRetired
        ]
    );
}

#[tokio::test]
async fn a_replayed_request_gets_the_same_certificate_and_a_second_one_waits() {
    let f = Fleet::new().await;
    let (s, cert, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    let first = f.last_reply().1;
    f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    let again = f.last_reply().1;
    assert_eq!(first, again, "the same certificate, not a second one");
    assert_eq!(f.reasons(), [Reason::CertificateIssued]);
    // Another CSR while this rotation is in flight, then after it is confirmed (rate limit).
    let (_, other) = new_csr("SN1");
    let d = f
        .send_at("rotate", &s, cert.as_str(), Some(&other), 5)
        .await;
    assert_eq!(d["reason"], "rotation_in_flight");
    let next = CertificateId::parse(first["certificate_id"].as_str().unwrap()).unwrap();
    f.send("confirm", &s, next.as_str(), None).await;
    f.sweep()
        .sweep(OffsetDateTime::now_utc() + Duration::hours(25))
        .await
        .unwrap();
    let d = f
        .send_at("rotate", &s, next.as_str(), Some(&other), 6)
        .await;
    assert_eq!(d["reason"], "rotation_rate_limited");
}

#[tokio::test]
async fn an_unconfirmed_rotation_expires_and_the_old_certificate_stays() {
    let f = Fleet::new().await;
    let (s, cert, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    let next = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
    let later = OffsetDateTime::now_utc() + Duration::hours(25);
    let r = f.sweep().sweep(later).await.unwrap();
    assert_eq!((r.expired, r.retired), (1, 1));
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Inactive));
    assert!(f.iot.inner.attached_policies(&Fleet::arn(&next)).is_empty());
    assert!(
        f.registry
            .get_certificate(&next)
            .await
            .unwrap()
            .unwrap()
            .denied
    );
    assert_eq!(f.iot.inner.status(&cert), Some(CertificateStatus::Active));
    let dev = f.device_now(&s).await;
    assert_eq!(dev.certificate_id.as_ref(), Some(&cert));
    assert!(dev.rotation.is_none() && dev.previous_certificate_id.is_none());
    let d = f.send("confirm", &s, next.as_str(), None).await;
    assert_eq!(d["reason"], "no_rotation");
}

/// A stolen current key must not buy a long-lived certificate of its own: a device rotates on its own
/// only inside its certificate's expiry window. Outside it, `rotation_not_due` on /rejected and nothing
/// signed; once an operator asks (the device is told on rotate/required), the rotation is served.
#[tokio::test]
async fn a_rotation_that_is_not_due_is_refused_and_nothing_is_signed() {
    let f = Fleet::new().await;
    let (s, cert, _) = f.bound("SN1").await;
    let (_, csr) = new_csr("SN1");
    let d = f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    assert_eq!(d["reason"], "rotation_not_due", "{d}");
    assert_eq!(f.last_reply().0, "P/SN1/certificates/rotate/rejected");
    assert!(f.device_now(&s).await.rotation.is_none(), "nothing issued");
    // Inside the window it is due on its own.
    let now = time::OffsetDateTime::now_utc();
    let mut device = f.device_now(&s).await;
    device.certificate_not_after = Some(fleetguard_domain::model::Timestamp::at(
        now + time::Duration::days(10),
    ));
    assert!(fleetguard_domain::lifecycle::rotation::due(
        &device, 30, now
    ));
    device.certificate_not_after = Some(fleetguard_domain::model::Timestamp::at(
        now + time::Duration::days(300),
    ));
    assert!(!fleetguard_domain::lifecycle::rotation::due(
        &device, 30, now
    ));
    // An operator asks: told on rotate/required, and the next request is served.
    assert!(fleetguard_domain::lifecycle::rotation::request_rotation(
        &f.registry,
        &f.rotations,
        &f.publisher,
        &s,
        "fleetctl:alice",
        now,
    )
    .await
    .unwrap());
    assert_eq!(f.last_reply().0, "P/SN1/certificates/rotate/required");
    let d = f
        .send_at("rotate", &s, cert.as_str(), Some(&csr), 1_764_000_000_001)
        .await;
    assert_eq!(d["reason"], "certificate_issued", "{d}");
    assert_eq!(
        f.device_now(&s).await.rotation_requested_at,
        None,
        "used up"
    );
}

/// A device that lost its new key after confirming (before storing it) still holds the replaced
/// one: in the grace period that certificate may ask again, but only on an operator's request (a
/// stolen old key cannot use it to rotate the owner out), and with a key neither certificate has.
/// Once the new rotation is confirmed the lost certificate is cut off at once; the replaced one
/// keeps its grace period.
#[tokio::test]
async fn the_replaced_certificate_may_rotate_again_when_an_operator_asks() {
    let f = Fleet::new().await;
    let (s, old, old_key) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    let d = f.send("rotate", &s, old.as_str(), Some(&csr)).await;
    let lost = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
    assert_eq!(d["reason"], "certificate_issued");
    let d = f.send("confirm", &s, lost.as_str(), None).await;
    assert_eq!(d["reason"], "rotation_confirmed");

    // Without an operator's request: refused, nothing signed.
    let (_, again) = new_csr("SN1");
    let d = f.send_at("rotate", &s, old.as_str(), Some(&again), 2).await;
    assert_eq!(d["reason"], "rotation_not_due");
    assert_eq!(f.last_reply().0, "P/SN1/certificates/rotate/rejected");
    assert!(f.device_now(&s).await.rotation.is_none());

    // Asked: served, but never with a key either certificate already has.
    let asked = fleetguard_domain::lifecycle::rotation::request_rotation(
        &f.registry,
        &f.rotations,
        &f.publisher,
        &s,
        "fleetctl:test",
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert!(asked);
    let reused = rcgen::CertificateParams::new(vec![])
        .map(|mut p| {
            p.distinguished_name.push(rcgen::DnType::CommonName, "SN1");
            p.serialize_request(&old_key).unwrap().pem().unwrap()
        })
        .unwrap();
    let d = f
        .send_at("rotate", &s, old.as_str(), Some(&reused), 3)
        .await;
    assert_eq!(d["reason"], "csr_key_reused", "{d}");
    let d = f.send_at("rotate", &s, old.as_str(), Some(&again), 4).await;
    assert_eq!(d["reason"], "certificate_issued", "{d}");
    let fresh = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
    // A replay gets the same certificate.
    let d = f.send_at("rotate", &s, old.as_str(), Some(&again), 4).await;
    assert_eq!(d["reason"], "certificate_issued");
    assert_eq!(
        certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap()),
        fresh
    );
    assert_eq!(f.device_now(&s).await.certificate_id.as_ref(), Some(&lost));

    // Confirmed from the fresh certificate: bound; the lost one cut off now, deny-listed; the
    // replaced one keeps its grace period.
    let d = f.send_at("confirm", &s, fresh.as_str(), None, 5).await;
    assert_eq!(d["reason"], "rotation_confirmed");
    let dev = f.device_now(&s).await;
    assert_eq!(dev.certificate_id.as_ref(), Some(&fresh));
    assert_eq!(dev.previous_certificate_id.as_ref(), Some(&old));
    assert_eq!(f.iot.inner.status(&lost), Some(CertificateStatus::Inactive));
    assert!(!f
        .iot
        .inner
        .thing_principals("SN1")
        .contains(&Fleet::arn(&lost)));
    let record = f.registry.get_certificate(&lost).await.unwrap().unwrap();
    assert!(record.denied);
    assert_eq!(f.iot.inner.status(&old), Some(CertificateStatus::Active));
}
