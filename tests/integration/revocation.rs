//! Revocation through the real adapters against the emulator: stop a compromised device now, keep it
//! out, undo what it did.

use fleetguard_domain::model::AuditAction;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{CertificateId, DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::ports::{AuditLog, Registry};
use fleetguard_tests::{delete_event, jitr_event, Fleet};
use time::OffsetDateTime;

mod handshake;
mod rollback;
mod signals;

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn group(f: &Fleet) -> String {
    format!("{}-quarantine", f.stack.prefix)
}

/// The device is cut off: certificate status, policy and thing detached, in the quarantine group,
/// session closed, registry status.
async fn assert_isolated(
    f: &Fleet,
    serial: &Serial,
    cert: &str,
    cert_status: CertificateStatus,
    device: DeviceStatus,
) {
    let s = &f.stack;
    assert_eq!(s.certificate_status(cert).await, cert_status);
    let arn = s.certificate_arn(cert).await;
    assert!(
        s.principal_policies(&arn).await.is_empty(),
        "fleet policy detached"
    );
    assert!(
        s.thing_principals(serial.as_str()).await.is_empty(),
        "thing principal detached"
    );
    assert!(s
        .group_members(&group(f))
        .await
        .contains(&serial.to_string()));
    assert!(
        s.emulator.disconnects().contains(&serial.to_string()),
        "live session cut"
    );
    assert_eq!(
        s.registry()
            .get_device(serial)
            .await
            .unwrap()
            .unwrap()
            .status,
        device
    );
}

fn command(action: &str, serial: &Serial) -> serde_json::Value {
    serde_json::json!({"action": action, "serial": serial.as_str(), "reason": "stolen key", "actor": "alice"})
}

#[tokio::test]
async fn revoke_isolates_the_device_and_replays_converge() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let r = f.stack.revoker();
    let reports = r
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (reports[0].outcome, reports[0].reason),
        (Outcome::Accepted, Reason::Revoked)
    );
    assert_isolated(
        &f,
        serial,
        cert,
        CertificateStatus::Revoked,
        DeviceStatus::Revoked,
    )
    .await;
    let deny = f
        .stack
        .registry()
        .get_certificate(&CertificateId::parse(cert).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(deny.denied, "certificate on the deny-list");
    let audit = f
        .stack
        .audit()
        .for_serial(serial.as_str(), 20)
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "revoke" && e.actor == "operator:alice"));

    // Replay: no error, same state.
    let again = r
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (again[0].outcome, again[0].reason),
        (Outcome::Noop, Reason::Revoked)
    );
    assert_isolated(
        &f,
        serial,
        cert,
        CertificateStatus::Revoked,
        DeviceStatus::Revoked,
    )
    .await;
    // The other device is untouched.
    let (other, other_cert) = &f.b;
    assert_eq!(
        f.stack.certificate_status(other_cert).await,
        CertificateStatus::Active
    );
    assert_eq!(
        f.stack
            .registry()
            .get_device(other)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Active
    );
    // Quarantine and release never soften a revocation.
    let q = r
        .handle(command("quarantine", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(q[0].reason, Reason::RevokedIsFinal);
    let rel = r
        .handle(command("release", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (rel[0].outcome, rel[0].reason),
        (Outcome::Rejected, Reason::RevokedIsFinal)
    );
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Revoked
    );
}

#[tokio::test]
async fn fault_after_certificate_update_then_replay_converges() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    // The step after UpdateCertificate is the forced disconnect: make it fail on every retry.
    f.stack
        .emulator
        .inject_fault("DELETE /connections/{id}", serial.as_str(), 1, 3, 500);
    let r = f.stack.revoker();
    let err = r
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await;
    assert!(err.is_err());
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Revoked,
        "certificate already stopped"
    );
    let reports = r
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(reports[0].reason, Reason::Revoked);
    assert_isolated(
        &f,
        serial,
        cert,
        CertificateStatus::Revoked,
        DeviceStatus::Revoked,
    )
    .await;
}

#[tokio::test]
async fn provisioning_refuses_the_revoked_serial_until_a_replacement_is_approved() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let s = &f.stack;
    s.revoker()
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    let p = s.provisioner();
    // The old certificate's registration event replayed: nothing re-activates it.
    let old = p
        .handle(jitr_event(cert, &f.ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(old.outcome, Outcome::Noop);
    assert_eq!(s.certificate_status(cert).await, CertificateStatus::Revoked);
    // A new certificate for the revoked serial: refused.
    let new1 = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = p
        .handle(jitr_event(&new1, &f.ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::SerialRevoked);
    // An operator approves one replacement.
    assert!(s.registry().approve_replacement(serial).await.unwrap());
    let new2 = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = p
        .handle(jitr_event(&new2, &f.ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Provisioned);
    assert_eq!(s.certificate_status(&new2).await, CertificateStatus::Active);
    let device = s.registry().get_device(serial).await.unwrap().unwrap();
    assert_eq!(
        (device.status, device.certificate_id.unwrap().to_string()),
        (DeviceStatus::Active, new2.clone())
    );
    // Only once.
    let new3 = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = p
        .handle(jitr_event(&new3, &f.ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::SerialBoundToOtherCertificate);
    let audit = s.audit().for_serial(serial.as_str(), 50).await.unwrap();
    assert!(audit.iter().any(|e| e.reason == Reason::SerialRevoked));
}

fn now_ms() -> i64 {
    ms(OffsetDateTime::now_utc())
}

#[tokio::test]
async fn revoking_a_replaced_certificate_leaves_the_new_one_live() {
    let f = Fleet::new().await;
    let (serial, old) = &f.a;
    let s = &f.stack;
    let r = s.revoker();
    let stolen = s.seed_record(serial, "stolen").await;
    s.delete_service()
        .handle(delete_event(serial.as_str(), "stolen", old, now_ms()))
        .await
        .unwrap();
    // Revoked (without rollback), replaced with a new certificate: it leaves the quarantine group.
    r.handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(s
        .group_members(&group(&f))
        .await
        .contains(&serial.to_string()));
    assert!(s.registry().approve_replacement(serial).await.unwrap());
    let new = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = s.jitr(&new, &f.ca_id).await;
    assert_eq!(d.reason, Reason::Provisioned);
    assert!(!s
        .group_members(&group(&f))
        .await
        .contains(&serial.to_string()));

    // Forensics later: revoke the old certificate by id, with rollback of what it did.
    let reports = r
        .handle(
            serde_json::json!({"action": "revoke", "certificate_id": old, "rollback": true,
                "compromised_since": "2020-01-01T00:00:00Z", "actor": "alice"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(reports[0].restored, 1, "{reports:?}");
    assert!(!s.record(serial, &stolen).await.unwrap().is_deleted());
    // The serial's current certificate and device are untouched.
    assert_eq!(s.certificate_status(&new).await, CertificateStatus::Active);
    let device = s.registry().get_device(serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Active);
    assert_eq!(device.certificate_id.unwrap().as_str(), new);
    assert!(!s
        .group_members(&group(&f))
        .await
        .contains(&serial.to_string()));
    let arn = s.certificate_arn(&new).await;
    assert!(
        !s.principal_policies(&arn).await.is_empty(),
        "new certificate keeps its policy"
    );
    // And the new certificate still deletes.
    let d = s
        .delete_service()
        .handle(delete_event(serial.as_str(), "stolen", &new, now_ms()))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);
}

#[tokio::test]
async fn a_client_that_is_not_connected_counts_as_cut_off() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    // AWS answers DeleteConnection for a client id that is not connected with a 404
    // ResourceNotFoundException: the revoke goes on and succeeds.
    f.stack.emulator.inject_error(
        "DELETE /connections/{id}",
        serial.as_str(),
        404,
        "ResourceNotFoundException",
    );
    let reports = f
        .stack
        .revoker()
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (reports[0].outcome, reports[0].reason),
        (Outcome::Accepted, Reason::Revoked)
    );
    assert_eq!(
        f.stack.certificate_status(cert).await,
        CertificateStatus::Revoked
    );
    assert!(
        !f.stack.emulator.disconnects().contains(&serial.to_string()),
        "the emulator answered the 404, it recorded no disconnect"
    );
}

/// A password stored for a manufactured device that is then provisioned with a certificate never
/// becomes usable: the binding removes the password identity, and later transitions (quarantine,
/// release) have nothing to bring back.
#[tokio::test]
async fn a_device_that_gets_a_certificate_never_keeps_a_password() {
    use fleetguard_domain::authorization::authorizer::{
        authorize, device_principal, hash_password, IdentityStore,
    };
    use fleetguard_domain::authorization::password_devices::{set_password, PasswordResult};
    let f = Fleet::new().await;
    let s = &f.stack;
    let serial = Serial::parse(&fleetguard_tests::unique("SN")).unwrap();
    let registry = s.registry();
    registry.import_serial(&serial).await.unwrap();
    let store = s.services.identities();
    let hash = hash_password("correct horse").unwrap();
    let stored = set_password(&registry, &store, &s.audit(), &serial, hash, false, "test")
        .await
        .unwrap();
    assert_eq!(
        stored,
        PasswordResult::Stored {
            status: DeviceStatus::Manufactured
        }
    );
    let cert = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = s.jitr(&cert, &f.ca_id).await;
    assert_eq!(d.reason, Reason::Provisioned);
    let pid = device_principal(&serial);
    assert!(
        store.get_identity(&pid).await.unwrap().is_none(),
        "password identity removed"
    );
    let r = s.revoker();
    r.handle(command("quarantine", &serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    r.handle(command("release", &serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(store.get_identity(&pid).await.unwrap().is_none());
    let engine =
        fleetguard_tests::TestIdp::new("https://login.example.test/", "fleetguard").authorizer();
    let attempt =
        fleetguard_tests::mqtt_connect(serial.as_str(), b"correct horse", serial.as_str());
    let d = authorize(&engine, &store, attempt, OffsetDateTime::now_utc()).await;
    assert!(!d.is_authenticated());
    // And the password path is refused from now on.
    let again = set_password(
        &registry,
        &store,
        &s.audit(),
        &serial,
        hash_password("x").unwrap(),
        true,
        "test",
    )
    .await
    .unwrap();
    assert!(matches!(
        again,
        PasswordResult::Refused {
            reason: Reason::HasCertificate,
            ..
        }
    ));
}

/// An active password device that is given a certificate (JITR, CA-signed) is bound to it, as the
/// README says: it then signs in with the certificate and its password is refused. (It was refused
/// `registry_conflict` and its certificate REVOKED.)
#[tokio::test]
async fn an_active_password_device_is_bound_to_its_first_certificate() {
    use fleetguard_domain::authorization::authorizer::{
        authorize, device_principal, secret::DeviceSecret, IdentityStore,
    };
    use fleetguard_domain::authorization::password_devices::{set_password, PasswordResult};
    let f = Fleet::new().await;
    let s = &f.stack;
    let serial = Serial::parse(&fleetguard_tests::unique("SN")).unwrap();
    let registry = s.registry();
    registry.import_serial(&serial).await.unwrap();
    let store = s.services.identities();
    let secret = DeviceSecret::generate().unwrap();
    let set = set_password(
        &registry,
        &store,
        &s.audit(),
        &serial,
        secret.digest(&serial),
        true,
        "test",
    )
    .await
    .unwrap();
    assert_eq!(set, PasswordResult::Active);
    let cert = s.auto_register(&f.ca.issue(serial.as_str()), &f.ca).await;
    let d = s.jitr(&cert, &f.ca_id).await;
    assert_eq!(d.reason, Reason::Provisioned);
    let device = registry.get_device(&serial).await.unwrap().unwrap();
    assert_eq!(
        (
            device.status,
            device.certificate_id.as_ref().map(|c| c.as_str())
        ),
        (DeviceStatus::Active, Some(cert.as_str()))
    );
    assert!(store
        .get_identity(&device_principal(&serial))
        .await
        .unwrap()
        .is_none());
    let engine =
        fleetguard_tests::TestIdp::new("https://login.example.test/", "fleetguard").authorizer();
    let attempt = fleetguard_tests::mqtt_connect(
        serial.as_str(),
        secret.expose().as_bytes(),
        serial.as_str(),
    );
    let d = authorize(&engine, &store, attempt, OffsetDateTime::now_utc()).await;
    assert_eq!(d.reason.as_str(), "unknown_identity");
}

/// A batch's claim certificate is no device's, yet a leaked one must be stoppable through fleetguard:
/// `revoke` by its id sets it REVOKED (it can connect nowhere, so it calls RegisterThing no more),
/// audited. Anything else on an unknown certificate is still `unknown_device`.
#[tokio::test]
async fn a_leaked_claim_certificate_can_be_revoked() {
    let f = Fleet::new().await;
    let claim_ca = fleetguard_tests::TestCa::new("AWS IoT issuer (test)");
    let pem = claim_ca.issue("AWS IoT Certificate");
    let claim = f
        .stack
        .iot
        .register_certificate_without_ca()
        .certificate_pem(&pem)
        .status(aws_sdk_iot::types::CertificateStatus::Active)
        .send()
        .await
        .unwrap()
        .certificate_id
        .unwrap();
    let r = f.stack.revoker();
    let quarantine = r
        .handle(
            serde_json::json!({"action": "quarantine", "certificate_id": claim, "actor": "ops"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(quarantine[0].reason, Reason::UnknownDevice);
    let revoke = r
        .handle(
            serde_json::json!({"action": "revoke", "certificate_id": claim, "actor": "ops",
                "reason": "claim leaked"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(
        (revoke[0].outcome, revoke[0].reason),
        (Outcome::Accepted, Reason::Revoked)
    );
    assert_eq!(
        f.stack.certificate_status(&claim).await,
        CertificateStatus::Revoked
    );
}
