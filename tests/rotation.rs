//! Certificate rotation through the real adapters on the emulator: the CA key in KMS (moto signs and
//! verifies), RegisterCertificate, the registry's transaction and sparse indexes, the reply on the
//! data plane. A happy rotation end to end with its AWS call count, faults at every call of it
//! converging on replay, a revoke during a rotation, the sweep and the expiry watch.
//! One test in this binary: the faults are emulator-wide.

use fleetguard_domain::lifecycle::expiry;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{CertificateId, Outcome, Reason, Serial};
use fleetguard_domain::ports::{AuditLog, Registry};
use fleetguard_testkit::pki::csr_pem;
use fleetguard_tests::{call_diff, delete_event, now_ms, Stack, TestCa};
use rcgen::KeyPair;
use time::{Duration, OffsetDateTime};

fn steps(ops: &std::collections::BTreeMap<String, u64>) -> Vec<(String, u32)> {
    ops.iter()
        .flat_map(|(op, n)| (1..=*n as u32).map(move |k| (op.clone(), k)))
        .collect()
}

async fn rotate(
    stack: &Stack,
    serial: &Serial,
    cert: &str,
    at: i64,
) -> (serde_json::Value, String) {
    let csr = csr_pem(&KeyPair::generate().unwrap(), serial.as_str());
    let event = Stack::rotation_event("rotate", serial, cert, Some(&csr), at);
    let d = stack.rotation().await.handle(event).await.expect("rotate");
    assert_eq!(d.reason, Reason::CertificateIssued, "{d:?}");
    let topic = format!("P/{serial}/certificates/rotate/accepted");
    let reply = stack.published_on(&topic).pop().expect("reply");
    (reply, csr)
}

#[tokio::test]
async fn rotation_on_the_emulator() {
    let stack = Stack::new().await;
    let ca = TestCa::new("factory CA");
    let ca_id = stack.register_ca(&ca).await;
    let rotation = stack.rotation().await;

    // ---- happy rotation, end to end, counted
    let (serial, old) = stack.provision_device(&ca, &ca_id).await;
    // Provisioning indexed the factory certificate's expiry (365 days): the watch sees it.
    // As the certificate-watch function runs it, under its role.
    let watch = stack.function("certificate-watch");
    let (rotations, iot) = (watch.rotations(), watch.iot());
    let report = expiry::find(&rotations, &iot, OffsetDateTime::now_utc(), 366, 90)
        .await
        .unwrap();
    assert!(report.devices.iter().any(|e| e.certificate_id == old));
    // The watch nudges the device on its rotate/required topic, under its own role.
    let alerts = format!("fleetguard/{}/alerts/certificates", stack.prefix);
    expiry::notify(&watch.iot_data(), &watch.audit(), &alerts, &report)
        .await
        .unwrap();
    let nudged = stack.published_on(&format!("P/{serial}/certificates/rotate/required"));
    assert_eq!(nudged.len(), 1, "{nudged:?}");
    // Its certificate is 365 days from expiry, outside the 30-day window: an operator asks.
    stack.request_rotation(&serial).await;
    let record = stack.seed_record(&serial, "r1").await;
    let csr = csr_pem(&KeyPair::generate().unwrap(), serial.as_str());
    let at = now_ms();
    let before = stack.emulator.calls();
    let d = rotation
        .handle(Stack::rotation_event(
            "rotate",
            &serial,
            &old,
            Some(&csr),
            at,
        ))
        .await
        .unwrap();
    let ops = call_diff(&before, &stack.emulator.calls());
    assert_eq!(d.reason, Reason::CertificateIssued, "{d:?}");
    let calls: u64 = ops.values().sum();
    eprintln!("accepted rotation: {calls} AWS calls: {ops:?}");
    // Provisioning recorded the factory certificate's key: no DescribeCertificate to compare it.
    assert!(!ops.contains_key("iot:GET /certificates/{id}"), "{ops:?}");
    assert_eq!(calls, 7, "{ops:?}");
    let reply = stack
        .published_on(&format!("P/{serial}/certificates/rotate/accepted"))
        .pop()
        .unwrap();
    let pem = reply["certificate_pem"].as_str().unwrap();
    let next = reply["certificate_id"].as_str().unwrap().to_owned();
    // Signed by the KMS key: the CA certificate carries the key KMS reports, and the new
    // certificate verifies against it.
    let kms_key = stack
        .services
        .kms_signer(&stack.fleet_ca.key_id)
        .await
        .unwrap();
    assert_eq!(
        fleetguard_domain::lifecycle::csr::certificate_public_key(
            &stack.fleet_ca.ca_certificate_pem
        )
        .unwrap(),
        fleetguard_domain::ports::CaSigner::public_key(&kms_key)
    );
    let cert = fleetguard_domain::x509::validate_device_certificate(
        pem,
        &stack.fleet_ca.ca_certificate_pem,
        OffsetDateTime::now_utc(),
    )
    .expect("chains to the KMS CA");
    assert_eq!(cert.serial, serial);
    assert_eq!(
        stack.certificate_status(&next).await,
        CertificateStatus::Active
    );
    let next_arn = stack.certificate_arn(&next).await;
    assert_eq!(
        stack.principal_policies(&next_arn).await,
        [stack.fleet_policy.as_str()]
    );
    assert!(stack
        .thing_principals(serial.as_str())
        .await
        .contains(&next_arn));
    // Proof of possession: the confirm comes from a connection made with the new certificate.
    let confirm = Stack::rotation_event("confirm", &serial, &next, None, now_ms());
    assert_eq!(
        rotation.handle(confirm.clone()).await.unwrap().reason,
        Reason::RotationConfirmed
    );
    assert_eq!(
        rotation.handle(confirm).await.unwrap().reason,
        Reason::RotationConfirmed
    );
    let device = stack.registry().get_device(&serial).await.unwrap().unwrap();
    assert_eq!(
        device.certificate_id.as_ref().map(|c| c.as_str()),
        Some(next.as_str())
    );
    // The new certificate acts; the old one (still ACTIVE, in its grace period) no longer does.
    let by_old = stack
        .delete_service()
        .handle(delete_event(
            serial.as_str(),
            record.as_str(),
            &old,
            now_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(by_old.outcome, Outcome::Rejected);
    let by_new = stack
        .delete_service()
        .handle(delete_event(
            serial.as_str(),
            record.as_str(),
            &next,
            now_ms() + 1,
        ))
        .await
        .unwrap();
    assert_eq!(by_new.outcome, Outcome::Accepted, "{by_new:?}");
    // The expiry watch sees the new certificate through the index (365 days).
    let now = OffsetDateTime::now_utc();
    let report = expiry::find(&rotations, &iot, now, 366, 90).await.unwrap();
    assert!(report.devices.iter().any(|e| e.certificate_id == next));
    let report = expiry::find(&rotations, &iot, now, 300, 90).await.unwrap();
    assert!(!report.devices.iter().any(|e| e.certificate_id == next));
    // The sweep retires the old certificate after the grace period.
    let sweep = stack
        .function("certificate-watch")
        .rotation_sweep(&stack.fleet_policy);
    let later = now + Duration::hours(25);
    let r = sweep.sweep(later).await.unwrap();
    assert!(r.retired >= 1, "{r:?}");
    assert_eq!(
        stack.certificate_status(&old).await,
        CertificateStatus::Inactive
    );
    let old_arn = stack.certificate_arn(&old).await;
    assert!(stack.principal_policies(&old_arn).await.is_empty());
    let old_id = CertificateId::parse(&old).unwrap();
    assert!(
        stack
            .registry()
            .get_certificate(&old_id)
            .await
            .unwrap()
            .unwrap()
            .denied
    );

    // ---- faults at every call of an accepted rotation converge on replay
    for (op, nth) in steps(&ops) {
        let step = format!("{op} #{nth}");
        let (serial, cert) = stack.provision_device(&ca, &ca_id).await;
        // Its factory certificate is far from expiry: an operator asks for the rotation.
        stack.request_rotation(&serial).await;
        let csr = csr_pem(&KeyPair::generate().unwrap(), serial.as_str());
        let event = Stack::rotation_event("rotate", &serial, &cert, Some(&csr), now_ms());
        stack.emulator.inject_fault(&op, "", nth, 3, 500);
        let failed = rotation.handle(event.clone()).await;
        stack.emulator.clear_faults();
        assert!(failed.is_err(), "{step}: {failed:?}");
        let d = rotation.handle(event).await.expect("replay");
        assert_eq!(d.reason, Reason::CertificateIssued, "{step}");
        let next = d.certificate_id.unwrap();
        assert_eq!(
            stack.certificate_status(&next).await,
            CertificateStatus::Active,
            "{step}"
        );
        let arn = stack.certificate_arn(&next).await;
        assert_eq!(
            stack.principal_policies(&arn).await,
            [stack.fleet_policy.as_str()],
            "{step}"
        );
        let device = stack.registry().get_device(&serial).await.unwrap().unwrap();
        assert_eq!(
            device.rotation.map(|r| r.next_certificate_id.to_string()),
            Some(next),
            "{step}"
        );
        let issued = stack
            .audit()
            .for_serial(serial.as_str(), 50)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.reason == Reason::CertificateIssued)
            .count();
        assert_eq!(issued, 1, "{step}: audited once");
    }

    // ---- a revoke during a rotation isolates both certificates
    let (serial, cert) = stack.provision_device(&ca, &ca_id).await;
    // Its factory certificate is far from expiry: an operator asks for the rotation.
    stack.request_rotation(&serial).await;
    let (reply, _) = rotate(&stack, &serial, &cert, now_ms()).await;
    let next = reply["certificate_id"].as_str().unwrap().to_owned();
    let report = stack
        .revoker()
        .handle(
            serde_json::json!({"action": "revoke", "serial": serial.as_str(), "actor": "ops"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(report[0].reason, Reason::Revoked, "{report:?}");
    for c in [&cert, &next] {
        assert_eq!(
            stack.certificate_status(c).await,
            CertificateStatus::Revoked
        );
        let arn = stack.certificate_arn(c).await;
        assert!(stack.principal_policies(&arn).await.is_empty());
    }
    let d = rotation
        .handle(Stack::rotation_event(
            "confirm",
            &serial,
            &next,
            None,
            now_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::SerialRevoked);

    // ---- an unconfirmed rotation expires: its certificate cut off, the old one stays
    let (serial, cert) = stack.provision_device(&ca, &ca_id).await;
    // Its factory certificate is far from expiry: an operator asks for the rotation.
    stack.request_rotation(&serial).await;
    let (reply, _) = rotate(&stack, &serial, &cert, now_ms()).await;
    let next = reply["certificate_id"].as_str().unwrap().to_owned();
    sweep.sweep(later).await.unwrap();
    assert_eq!(
        stack.certificate_status(&next).await,
        CertificateStatus::Inactive
    );
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Active
    );
    let device = stack.registry().get_device(&serial).await.unwrap().unwrap();
    assert!(device.rotation.is_none() && device.previous_certificate_id.is_none());
}
