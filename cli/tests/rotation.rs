//! A certificate device's whole life across a rotation, with the README's `fleetctl` commands against
//! the local emulator and the real rotator and delete-record code in between: provisioned → acts →
//! rotates (CA in KMS) → proves the new key → acts with it, the old one refused → seen by
//! `certificates expiring` → revoked with rollback → both certificates cut off → its deletes undone.
//! And `ca init-kms` as a fleet starting with its CA in KMS runs it.

use fleetguard_domain::domain::Reason;
use fleetguard_testkit::pki::csr_pem;
use fleetguard_tests::{delete_event, now_ms, unique, Stack, TestCa};

const FLEETCTL: &str = env!("CARGO_BIN_EXE_fleetctl");

#[tokio::test]
async fn a_certificate_device_rotates_acts_with_the_new_key_and_is_revoked_with_both() {
    let stack = Stack::new().await;
    let ca = TestCa::new("factory CA");
    let ca_id = stack.register_ca(&ca).await;
    let (serial, old) = stack.provision_device(&ca, &ca_id).await;
    let (other, _) = stack.provision_device(&ca, &ca_id).await;
    stack.seed_record(&serial, "r1").await;
    stack.seed_record(&serial, "r2").await;
    stack.seed_record(&other, "r9").await;
    let deletes = stack.delete_service();
    let rotation = stack.rotation().await;

    // Acts with its first certificate.
    let d = deletes
        .handle(delete_event(serial.as_str(), "r1", &old, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);

    // Not due: its factory certificate is far from expiry, so a rotation request (what a thief with
    // the current key would send to get a long-lived certificate of its own) is refused, nothing
    // signed. An operator asks for it; then it is served.
    let early = rotation
        .handle(Stack::rotation_event(
            "rotate",
            &serial,
            &old,
            Some(&csr_pem(
                &rcgen::KeyPair::generate().unwrap(),
                serial.as_str(),
            )),
            now_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(early.reason, Reason::RotationNotDue);
    stack
        .fleetctl(
            FLEETCTL,
            &["devices", "request-rotation", serial.as_str()],
            None,
        )
        .expect_code(0);

    // Rotates: a CSR for a new key, answered with a certificate of the KMS CA.
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = csr_pem(&key, serial.as_str());
    let d = rotation
        .handle(Stack::rotation_event(
            "rotate",
            &serial,
            &old,
            Some(&csr),
            now_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::CertificateIssued);
    let next = d.certificate_id.unwrap();
    // Proves the new key by connecting with it and confirming.
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
    assert_eq!(d.reason, Reason::RotationConfirmed);

    // Acts with the new certificate; the old one and another serial's record are refused.
    let d = deletes
        .handle(delete_event(serial.as_str(), "r2", &next, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);
    let d = deletes
        .handle(delete_event(serial.as_str(), "r2", &old, now_ms()))
        .await
        .unwrap();
    assert_ne!(d.reason, Reason::Deleted);
    let d = deletes
        .handle(delete_event(other.as_str(), "r9", &next, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::PrincipalMismatch, "{d:?}");

    // The replaced key cannot knock the device offline: its tamper report (through the template's
    // rule, as AWS IoT forwards it) is refused and quarantines nothing.
    let report = fleetguard_tests::through_rule(
        "TamperRule",
        &format!("P/{serial}/tamper"),
        &serde_json::json!({}),
        Some((&old, serial.as_str())),
    )
    .expect("the tamper rule");
    let r = stack
        .revoker()
        .handle(report, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (r[0].outcome, r[0].reason),
        (
            fleetguard_domain::domain::Outcome::Rejected,
            Reason::NotCurrentCertificate
        )
    );
    assert_eq!(stack.certificate_status(&next).await, "ACTIVE");

    // The expiry watch, on demand: a 365-day certificate is inside a 400-day window only.
    let run = stack.fleetctl(
        FLEETCTL,
        &["certificates", "expiring", "--within", "400d", "--json"],
        None,
    );
    let report: serde_json::Value = serde_json::from_str(&run.expect_code(0).out).unwrap();
    assert!(report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["certificate_id"] == next.as_str() && e["subject"] == serial.as_str()));
    let run = stack.fleetctl(FLEETCTL, &["certificates", "expiring", "--json"], None);
    let report: serde_json::Value = serde_json::from_str(&run.expect_code(0).out).unwrap();
    assert!(!report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["certificate_id"] == next.as_str()));

    // Revoked with rollback: both certificates cut off, the deletes of both undone (the serial's
    // whole identity history: a thief who rotated the stolen key cannot hide r1 behind the rotation).
    let run = stack.fleetctl(
        FLEETCTL,
        &[
            "revoke",
            serial.as_str(),
            "--rollback",
            "--reason",
            "stolen",
        ],
        None,
    );
    let out = run.expect_code(0).out;
    for c in [&old, &next] {
        assert_eq!(stack.certificate_status(c).await, "REVOKED", "{c}");
    }
    for r in ["r1", "r2"] {
        let id = fleetguard_domain::domain::RecordId::parse(r).unwrap();
        assert!(
            !stack.record(&serial, &id).await.unwrap().is_deleted(),
            "{r}: {out}"
        );
    }
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["restored"], 2, "{out}");
    let d = deletes
        .handle(delete_event(serial.as_str(), "r2", &next, now_ms()))
        .await
        .unwrap();
    assert_ne!(d.reason, Reason::Deleted);
}

#[tokio::test]
async fn ca_init_kms_registers_the_fleet_ca_once() {
    let stack = Stack::new().await;
    let alias = format!("alias/{}", unique("fleet-ca"));
    let run = stack.fleetctl(
        FLEETCTL,
        &["ca", "init-kms", "--create-alias", &alias, "--json"],
        None,
    );
    let first: serde_json::Value = serde_json::from_str(&run.expect_code(0).out).unwrap();
    assert_eq!(first["created"], true);
    let id = first["ca_certificate_id"].as_str().unwrap().to_owned();
    let run = stack.fleetctl(
        FLEETCTL,
        &["ca", "init-kms", "--key-id", &alias, "--json"],
        None,
    );
    let again: serde_json::Value = serde_json::from_str(&run.expect_code(0).out).unwrap();
    assert_eq!(
        (
            again["created"].as_bool(),
            again["ca_certificate_id"].as_str()
        ),
        (Some(false), Some(id.as_str()))
    );
    let run = stack.fleetctl(FLEETCTL, &["ca", "init-kms"], None);
    assert_eq!(run.expect_code(2).code, 2);
}
