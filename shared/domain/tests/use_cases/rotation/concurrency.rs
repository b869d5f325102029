//! Rotation meeting isolation, lost races and faults at every call: each converges.

use super::*;

/// A revoke or a quarantine during a rotation isolates both certificates; the new one cannot confirm.
#[tokio::test]
async fn an_isolation_during_a_rotation_isolates_both_certificates() {
    for (action, status, reason) in [
        (Action::Revoke, CertificateStatus::Revoked, "serial_revoked"),
        (
            Action::Quarantine,
            CertificateStatus::Inactive,
            "device_quarantined",
        ),
    ] {
        let f = Fleet::new().await;
        let (s, cert, _) = f.device("SN1").await;
        let (_, csr) = new_csr("SN1");
        f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
        let next = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
        f.isolate(&s, action).await;
        for c in [&cert, &next] {
            assert_eq!(f.iot.inner.status(c), Some(status), "{reason}");
            assert!(f.iot.inner.attached_policies(&Fleet::arn(c)).is_empty());
            let rec = f.registry.get_certificate(c).await.unwrap().unwrap();
            assert!(rec.denied || rec.held, "{reason}");
        }
        let d = f.send("confirm", &s, next.as_str(), None).await;
        assert_eq!(d["reason"], reason);
        assert_eq!(f.device_now(&s).await.certificate_id, Some(cert));
    }
}

#[tokio::test]
async fn a_revoke_between_the_registry_write_and_the_registration_wins() {
    let f = Fleet::new().await;
    let (s, cert, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    *f.iot.hook.0.lock().unwrap() = Some("register");
    assert!(f
        .service
        .handle(
            json!({"action": "rotate", "serial": "SN1", "principal": cert.as_str(),
            "received_at": 1, "csr": csr})
        )
        .await
        .is_err());
    let next = f.device_now(&s).await.rotation.unwrap().next_certificate_id;
    assert_eq!(
        f.iot.inner.status(&next),
        None,
        "issued, not registered yet"
    );
    f.isolate(&s, Action::Revoke).await;
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Revoked));
    // The retried invocation finds it taken: refused, never ACTIVE.
    let d = f.send_at("rotate", &s, cert.as_str(), Some(&csr), 1).await;
    assert_eq!(d["reason"], "serial_revoked");
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Revoked));
    assert!(f.iot.inner.attached_policies(&Fleet::arn(&next)).is_empty());
}

/// The rotator failed after its registry write, before registering the certificate: whoever then
/// cuts the certificate off (the sweep, a revoke by its id) registers it cut off first, so a late
/// retry of the rotator can never make it ACTIVE.
#[tokio::test]
async fn an_issued_certificate_never_registered_is_registered_cut_off_before_it_is_forgotten() {
    for by in ["sweep", "revoke by id"] {
        let f = Fleet::new().await;
        let (s, cert, _) = f.device("SN1").await;
        let (_, csr) = new_csr("SN1");
        *f.iot.hook.0.lock().unwrap() = Some("register");
        let event = json!({"action": "rotate", "serial": "SN1", "principal": cert.as_str(),
            "received_at": 1, "csr": csr});
        assert!(f.service.handle(event.clone()).await.is_err());
        let next = f.device_now(&s).await.rotation.unwrap().next_certificate_id;
        assert_eq!(f.iot.inner.status(&next), None);
        if by == "sweep" {
            f.sweep()
                .sweep(OffsetDateTime::now_utc() + Duration::hours(25))
                .await
                .unwrap();
            assert_eq!(
                f.iot.inner.status(&next),
                Some(CertificateStatus::Inactive),
                "{by}"
            );
        } else {
            f.revoker()
                .command(
                    Command {
                        action: Action::Revoke,
                        serial: None,
                        certificate_id: Some(next.clone()),
                        principal: None,
                        reason: None,
                        compromised_since: None,
                        rollback: false,
                        actor: Some("ops".into()),
                    },
                    OffsetDateTime::now_utc(),
                )
                .await
                .unwrap();
            assert_eq!(
                f.iot.inner.status(&next),
                Some(CertificateStatus::Revoked),
                "{by}"
            );
        }
        // The rotator's late retry: never ACTIVE, never attached.
        let d = f.service.handle(event).await.expect("retry");
        assert_ne!(
            d.outcome,
            fleetguard_domain::model::Outcome::Accepted,
            "{by}: {d:?}"
        );
        assert_ne!(
            f.iot.inner.status(&next),
            Some(CertificateStatus::Active),
            "{by}"
        );
        assert!(
            f.iot.inner.attached_policies(&Fleet::arn(&next)).is_empty(),
            "{by}"
        );
        assert_eq!(
            f.iot.inner.status(&cert),
            Some(CertificateStatus::Active),
            "{by}"
        );
    }
}

#[tokio::test]
async fn a_fault_at_any_call_converges_on_replay() {
    for call in ["describe", "register", "attach_policy", "attach_thing"] {
        let f = Fleet::new().await;
        let (s, cert, _) = f.device("SN1").await;
        let (_, csr) = new_csr("SN1");
        *f.iot.hook.0.lock().unwrap() = Some(call);
        let event = json!({"action": "rotate", "serial": "SN1", "principal": cert.as_str(),
            "received_at": 1, "csr": csr});
        assert!(f.service.handle(event.clone()).await.is_err(), "{call}");
        let d = f.service.handle(event).await.expect("replay");
        assert_eq!(d.reason, Reason::CertificateIssued, "{call}");
        let next = CertificateId::parse(d.certificate_id.as_deref().unwrap()).unwrap();
        assert_eq!(
            f.iot.inner.status(&next),
            Some(CertificateStatus::Active),
            "{call}"
        );
        assert_eq!(
            f.iot.inner.attached_policies(&Fleet::arn(&next)),
            [POLICY],
            "{call}"
        );
        assert!(
            f.iot
                .inner
                .thing_principals("SN1")
                .contains(&Fleet::arn(&next)),
            "{call}"
        );
        assert_eq!(
            f.device_now(&s).await.rotation.unwrap().next_certificate_id,
            next
        );
        assert_eq!(
            f.reasons(),
            [Reason::CertificateIssued],
            "{call}: audited once"
        );
    }
    // The sweep: a fault while retiring leaves the retirement for the next sweep.
    let f = Fleet::new().await;
    let (s, cert, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    let next = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
    f.send("confirm", &s, next.as_str(), None).await;
    *f.iot.hook.0.lock().unwrap() = Some("status");
    let later = OffsetDateTime::now_utc() + Duration::hours(25);
    assert!(f.sweep().sweep(later).await.is_err());
    assert_eq!(
        f.device_now(&s).await.previous_certificate_id,
        Some(cert.clone())
    );
    let r = f.sweep().sweep(later).await.unwrap();
    assert_eq!(r.retired, 1);
    assert_eq!(f.iot.inner.status(&cert), Some(CertificateStatus::Inactive));
}
