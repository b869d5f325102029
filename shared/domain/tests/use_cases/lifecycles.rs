//! Operators, password devices and replacement approval over the fakes: the use cases `fleetctl`
//! runs (the emulator-backed walk through the CLI is `cli/tests/lifecycles.rs`).

use fleetguard_domain::authorization::authorizer::{
    device_principal, identity::hash_password_with, Identity, IdentityKind, OperatorStatus,
};
use fleetguard_domain::authorization::operators::{add_operator, AddOperator};
use fleetguard_domain::authorization::password_devices::{set_password, PasswordResult};
use fleetguard_domain::lifecycle::replacement::approve_replacement;
use fleetguard_domain::model::{DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::ports::{AuthorizerPrincipal, Registry};
use fleetguard_testkit::fakes::{InMemoryAudit, InMemoryIdentityStore, InMemoryRegistry};

fn operator(name: &str) -> Identity {
    Identity::operator(
        "https://idp.example.com/",
        name,
        name,
        vec![Serial::parse("SN1").expect("serial")],
    )
}

/// An empty registry, identity store and audit log.
fn fakes() -> (InMemoryRegistry, InMemoryIdentityStore, InMemoryAudit) {
    (
        InMemoryRegistry::default(),
        InMemoryIdentityStore::new(),
        InMemoryAudit::default(),
    )
}

#[tokio::test]
async fn adding_an_operator_writes_its_identity_and_never_quietly_re_enables_it() {
    let (registry, store, audit) = fakes();
    let alice = operator("alice");
    let pid = alice.principal_id.clone();
    let added = add_operator(
        &registry,
        &store,
        &audit,
        alice.clone(),
        false,
        "fleetctl:ops",
    )
    .await
    .expect("add");
    assert_eq!(
        added,
        AddOperator::Added {
            principal_id: pid.clone()
        }
    );
    assert_eq!(store.get(&pid), Some(alice.clone()));
    let e = &audit.entries()[0];
    assert_eq!(
        (
            e.outcome,
            e.reason,
            e.principal.as_deref(),
            e.detail.as_deref()
        ),
        (
            Outcome::Accepted,
            Reason::OperatorAdded,
            Some(pid.as_str()),
            Some("name=alice")
        )
    );
    // Disabled (as the revoker leaves it): adding again does not re-enable without re_enrol.
    registry.put_principal(
        pid.as_str(),
        AuthorizerPrincipal::Operator {
            name: "alice".into(),
            active: false,
            status: OperatorStatus::Disabled,
            serials: vec![],
        },
    );
    let again = add_operator(
        &registry,
        &store,
        &audit,
        alice.clone(),
        false,
        "fleetctl:ops",
    )
    .await
    .expect("add");
    assert_eq!(
        again,
        AddOperator::NotReEnabled {
            status: OperatorStatus::Disabled
        }
    );
    assert_eq!(audit.entries().len(), 1, "nothing written");
    let re = add_operator(&registry, &store, &audit, alice, true, "fleetctl:ops")
        .await
        .expect("re-enrol");
    assert!(matches!(re, AddOperator::Added { .. }));
    assert_eq!(audit.entries().len(), 2);
}

/// An operator disabled between `operators add`'s read and its write is not revived: the write is
/// conditional on the identity still being active (here the registry read saw nothing yet).
#[tokio::test]
async fn adding_an_operator_never_revives_one_disabled_meanwhile() {
    let (registry, store, audit) = fakes();
    let alice = operator("alice");
    let pid = alice.principal_id.clone();
    let mut disabled = alice.clone();
    if let IdentityKind::Operator { status, .. } = &mut disabled.kind {
        *status = OperatorStatus::Disabled;
    }
    store.put(disabled.clone());
    let added = add_operator(&registry, &store, &audit, alice, false, "fleetctl:ops")
        .await
        .expect("add");
    assert!(
        matches!(added, AddOperator::NotReEnabled { .. }),
        "{added:?}"
    );
    use fleetguard_domain::authorization::authorizer::identity::IdentityStore;
    assert_eq!(
        store.get_identity(&pid).await.expect("get"),
        Some(disabled),
        "still disabled"
    );
    assert!(audit.entries().is_empty(), "nothing written");
}

#[tokio::test]
async fn a_password_is_set_only_for_a_device_without_a_certificate_or_claim_proof() {
    let (registry, store, audit) = fakes();
    // A cheap argon2id hash so the test stays fast (the parameters travel with the hash).
    let params = argon2::Params::new(8, 1, 1, None).expect("params");
    let hash = || hash_password_with(b"correct horse", params.clone()).expect("hash");
    let unknown = Serial::parse("SN404").expect("serial");
    let r = set_password(&registry, &store, &audit, &unknown, hash(), true, "ops")
        .await
        .expect("set");
    assert!(
        matches!(
            r,
            PasswordResult::Refused {
                reason: Reason::UnknownDevice,
                ..
            }
        ),
        "{r:?}"
    );

    // A manufactured device: stored, usable only once activated.
    let s = Serial::parse("SN7").expect("serial");
    registry.import_serial(&s).await.expect("import");
    let r = set_password(&registry, &store, &audit, &s, hash(), false, "ops")
        .await
        .expect("set");
    assert_eq!(
        r,
        PasswordResult::Stored {
            status: DeviceStatus::Manufactured
        }
    );
    let id = store.get(&device_principal(&s)).expect("identity");
    assert!(matches!(
        id.kind,
        IdentityKind::Device {
            status: DeviceStatus::Manufactured,
            ..
        }
    ));
    let r = set_password(&registry, &store, &audit, &s, hash(), true, "ops")
        .await
        .expect("activate");
    assert_eq!(r, PasswordResult::Active);
    assert_eq!(
        registry
            .get_device(&s)
            .await
            .expect("get")
            .expect("device")
            .status,
        DeviceStatus::Active
    );
    assert!(audit
        .entries()
        .iter()
        .any(|e| e.reason == Reason::PasswordSet));

    // A device with a certificate signs in with it, never with a password.
    let c = Serial::parse("SN8").expect("serial");
    registry.import_serial(&c).await.expect("import");
    let cert = fleetguard_testkit::pki::certificate_id(
        &fleetguard_testkit::pki::TestCa::new("ca").issue("SN8"),
    );
    registry
        .bind_certificate(&c, &cert, None, None)
        .await
        .expect("bind");
    let r = set_password(&registry, &store, &audit, &c, hash(), true, "ops")
        .await
        .expect("set");
    assert!(
        matches!(
            r,
            PasswordResult::Refused {
                reason: Reason::HasCertificate,
                ..
            }
        ),
        "{r:?}"
    );
    assert!(store.get(&device_principal(&c)).is_none());

    // A revoked device stays revoked.
    let rv = Serial::parse("SN9").expect("serial");
    registry.import_serial(&rv).await.expect("import");
    registry
        .transition(&rv, &[DeviceStatus::Manufactured], DeviceStatus::Revoked)
        .await
        .expect("revoke");
    let r = set_password(&registry, &store, &audit, &rv, hash(), true, "ops")
        .await
        .expect("set");
    assert!(
        matches!(
            r,
            PasswordResult::Refused {
                reason: Reason::RevokedIsFinal,
                ..
            }
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_replacement_is_approved_only_for_a_revoked_device() {
    let (registry, audit) = (InMemoryRegistry::default(), InMemoryAudit::default());
    let s = Serial::parse("SN5").expect("serial");
    registry.import_serial(&s).await.expect("import");
    assert!(!approve_replacement(&registry, &audit, &s, "ops")
        .await
        .expect("approve"));
    assert!(audit.entries().is_empty(), "nothing written");
    registry
        .transition(&s, &[DeviceStatus::Manufactured], DeviceStatus::Revoked)
        .await
        .expect("revoke");
    assert!(approve_replacement(&registry, &audit, &s, "ops")
        .await
        .expect("approve"));
    assert!(
        registry
            .get_device(&s)
            .await
            .expect("get")
            .expect("device")
            .replacement_approved
    );
    let e = &audit.entries()[0];
    assert_eq!(
        (e.reason, e.serial.as_deref()),
        (Reason::ReplacementApproved, Some("SN5"))
    );
}
