//! A certificate device's whole life across a rotation, with the README's `fleetctl` commands against
//! the local emulator and the real rotator and delete-record code in between: provisioned → acts →
//! rotates (CA in KMS) → proves the new key → acts with it, the old one refused → seen by
//! `certificates expiring` → revoked with rollback → both certificates cut off → its deletes undone.
//! And `ca init-kms` as a fleet starting with its CA in KMS runs it.

use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::Reason;
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
    // Proves the new key by connecting with it and confirming.
    let next = rotate_and_confirm(&rotation, &serial, &old, &csr).await;

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
    // rule, as AWS IoT forwards it) is refused and quarantines nothing; its use cuts off that
    // replaced certificate alone.
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
        (r[0].reason, r[0].certificate_id.as_deref()),
        (Reason::Revoked, Some(old.as_str()))
    );
    assert_eq!(
        stack.certificate_status(&next).await,
        CertificateStatus::Active
    );
    assert_eq!(
        stack.certificate_status(&old).await,
        CertificateStatus::Revoked
    );
    let refusals = stack
        .audit()
        .for_serial(serial.as_str(), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "tamper_report" || e.reason == Reason::NotCurrentCertificate)
        .count();
    assert!(refusals >= 1, "the refusal is audited");
    use fleetguard_domain::ports::{AuditLog, Registry};
    assert_eq!(
        stack
            .registry()
            .get_device(&serial)
            .await
            .unwrap()
            .unwrap()
            .status,
        fleetguard_domain::model::DeviceStatus::Active
    );

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
        assert_eq!(
            stack.certificate_status(c).await,
            CertificateStatus::Revoked,
            "{c}"
        );
    }
    for r in ["r1", "r2"] {
        let id = fleetguard_domain::model::RecordId::parse(r).unwrap();
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

/// A presence event through the template's PresenceRule; a disconnect is a takeover
/// (`DUPLICATE_CLIENTID`).
fn presence(
    event: &str,
    principal: &str,
    serial: &str,
    session: &str,
    version: u64,
) -> serde_json::Value {
    let reason = (event == "disconnected").then_some("DUPLICATE_CLIENTID");
    fleetguard_tests::through_presence(event, principal, serial, session, version, reason)
}

/// The attacker's whole story, with the README's `fleetctl` commands for everything the operator
/// does and the template's rules for everything the attacker sends: a thief with a device's key
/// deletes a record, cannot rotate on its own, cannot command the revoker through the security
/// topic, races the owner's requested rotation and wins it, deletes again with its own certificate —
/// and the owner's next connection with its replaced key shows two parties on the serial: quarantined
/// at once. The operator revokes with rollback from before the theft (both deletes undone, across
/// both certificates), approves a replacement, and the device is back with a new certificate.
#[tokio::test]
async fn the_attackers_whole_story_and_its_undoing() {
    use fleetguard_domain::model::{DeviceStatus, RecordId};
    use fleetguard_domain::ports::Registry;
    let stack = Stack::new().await;
    let ca = TestCa::new("factory CA");
    let ca_id = stack.register_ca(&ca).await;
    let (serial, stolen) = stack.provision_device(&ca, &ca_id).await;
    let (other, other_cert) = stack.provision_device(&ca, &ca_id).await;
    for r in ["r1", "r2"] {
        stack.seed_record(&serial, r).await;
    }
    stack.seed_record(&other, "r9").await;
    let before_theft = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let deletes = stack.delete_service();
    let rotation = stack.rotation().await;
    let revoker = stack.revoker();
    let now = time::OffsetDateTime::now_utc;

    // 1. With the stolen key the thief deletes r1: the device's own record, accepted.
    let d = deletes
        .handle(delete_event(serial.as_str(), "r1", &stolen, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);

    // 2. It cannot buy a certificate of its own: rotation is not due.
    let thief_key = rcgen::KeyPair::generate().unwrap();
    let thief_csr = csr_pem(&thief_key, serial.as_str());
    let d = rotation
        .handle(Stack::rotation_event(
            "rotate",
            &serial,
            &stolen,
            Some(&thief_csr),
            now_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::RotationNotDue);

    // 3. The security topic carries signals, never commands: a release or a revoke published there,
    // and a forged security event against another device, change nothing.
    for forged in [
        serde_json::json!({"action": "release", "serial": other.as_str(), "actor": "alice"}),
        serde_json::json!({"action": "revoke", "serial": other.as_str(), "rollback": true}),
        serde_json::json!({"kind": "cross_serial_attempt", "principal": other_cert,
            "principal_serial": other.as_str(), "target_serial": serial.as_str(), "record_id": "r1",
            "received_at": now_ms(), "request_key": "forged"}),
    ] {
        let reports = revoker
            .handle(fleetguard_tests::security_rule_event(&forged), now())
            .await
            .unwrap();
        assert_ne!(
            reports[0].outcome,
            fleetguard_domain::model::Outcome::Accepted,
            "{forged}"
        );
    }
    let other_device = stack.registry().get_device(&other).await.unwrap().unwrap();
    assert_eq!(other_device.status, DeviceStatus::Active);

    // 4. The owner's operator asks for a rotation; the thief, holding the current key, gets there
    // first and confirms with its own certificate, then deletes r2 with it.
    stack
        .fleetctl(
            FLEETCTL,
            &["devices", "request-rotation", serial.as_str()],
            None,
        )
        .expect_code(0);
    let thief_cert = rotate_and_confirm(&rotation, &serial, &stolen, &thief_csr).await;
    revoker
        .handle(
            presence("connected", &thief_cert, serial.as_str(), "thief", 7),
            now(),
        )
        .await
        .unwrap();
    let d = deletes
        .handle(delete_event(serial.as_str(), "r2", &thief_cert, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);

    // 5. The owner still holds the replaced key and connects with it as the serial: AWS IoT ends
    // the thief's session (DUPLICATE_CLIENTID). Two parties hold the serial: quarantined, every
    // certificate cut off.
    for e in [
        presence("disconnected", &thief_cert, serial.as_str(), "thief", 7),
        presence("connected", &stolen, serial.as_str(), "owner", 8),
    ] {
        revoker.handle(e, now()).await.unwrap();
    }
    let device = stack.registry().get_device(&serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Quarantined);
    for c in [&stolen, &thief_cert] {
        assert_eq!(
            stack.certificate_status(c).await,
            CertificateStatus::Inactive,
            "{c}"
        );
    }
    let d = deletes
        .handle(delete_event(serial.as_str(), "r1", &thief_cert, now_ms()))
        .await
        .unwrap();
    assert_ne!(d.reason, Reason::Deleted);

    // 6. The operator revokes with rollback from before the theft: both deletes undone, across
    // both certificates the serial had.
    let run = stack.fleetctl(
        FLEETCTL,
        &[
            "revoke",
            serial.as_str(),
            "--since",
            &fleetguard_domain::model::rfc3339(before_theft),
            "--reason",
            "key stolen",
        ],
        None,
    );
    let out = run.expect_code(0).out;
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["restored"], 2, "{out}");
    for r in ["r1", "r2"] {
        let id = RecordId::parse(r).unwrap();
        assert!(
            !stack.record(&serial, &id).await.unwrap().is_deleted(),
            "{r}"
        );
    }
    for c in [&stolen, &thief_cert] {
        assert_eq!(
            stack.certificate_status(c).await,
            CertificateStatus::Revoked,
            "{c}"
        );
    }

    // 7. Undone: a replacement approved, the device provisioned with a new certificate, acting again.
    stack
        .fleetctl(
            FLEETCTL,
            &["devices", "approve-replacement", serial.as_str()],
            None,
        )
        .expect_code(0);
    let fresh = stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    let d = stack
        .provisioner()
        .handle(fleetguard_tests::jitr_event(&fresh, &ca_id), now())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Provisioned);
    let d = deletes
        .handle(delete_event(serial.as_str(), "r1", &fresh, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);
    for c in [&stolen, &thief_cert] {
        let d = deletes
            .handle(delete_event(serial.as_str(), "r2", c, now_ms()))
            .await
            .unwrap();
        assert_ne!(d.reason, Reason::Deleted, "{c} stays out");
    }
}

/// Rotates `serial` from certificate `from` with `csr`, then confirms from the issued certificate, as
/// a device does: the new certificate's id.
async fn rotate_and_confirm(
    rotation: &fleetguard_aws::services::AwsRotation,
    serial: &fleetguard_domain::model::Serial,
    from: &str,
    csr: &str,
) -> String {
    let d = rotation
        .handle(Stack::rotation_event(
            "rotate",
            serial,
            from,
            Some(csr),
            now_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::CertificateIssued);
    let next = d.certificate_id.unwrap();
    let d = rotation
        .handle(Stack::rotation_event(
            "confirm",
            serial,
            &next,
            None,
            now_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::RotationConfirmed);
    next
}

/// A device that lost its new key after confirming asks again with the replaced one, once an
/// operator asked for it (`fleetctl devices request-rotation`): served under the rotator's own role,
/// and the lost certificate is cut off (INACTIVE) when the new one is confirmed.
#[tokio::test]
async fn the_replaced_certificate_rotates_again_on_request_and_the_lost_one_is_cut_off() {
    let stack = Stack::new().await;
    let ca = TestCa::new("factory CA");
    let ca_id = stack.register_ca(&ca).await;
    let (serial, old) = stack.provision_device(&ca, &ca_id).await;
    let rotation = stack.rotation().await;
    let request = || {
        stack
            .fleetctl(
                FLEETCTL,
                &["devices", "request-rotation", serial.as_str()],
                None,
            )
            .expect_code(0);
    };
    request();
    let key = rcgen::KeyPair::generate().unwrap();
    let lost = rotate_and_confirm(&rotation, &serial, &old, &csr_pem(&key, serial.as_str())).await;
    request();
    let again = rcgen::KeyPair::generate().unwrap();
    let fresh =
        rotate_and_confirm(&rotation, &serial, &old, &csr_pem(&again, serial.as_str())).await;
    use fleetguard_domain::model::CertificateStatus;
    assert_eq!(
        stack.certificate_status(&lost).await,
        CertificateStatus::Inactive
    );
    assert_eq!(
        stack.certificate_status(&fresh).await,
        CertificateStatus::Active
    );
    assert_eq!(
        stack.certificate_status(&old).await,
        CertificateStatus::Active
    );
}
