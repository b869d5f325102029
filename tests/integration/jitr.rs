//! Just-in-time provisioning, through the real adapters and the real AWS SDK against the local emulator.
//! (Fleet provisioning by claim: `tests/integration/claim.rs`.)

use fleetguard_aws::dynamodb::DynamoAudit;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{CertificateId, DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::ports::{AuditLog, Registry};
use fleetguard_tests::{certificate_id_of, jitr_event, unique, Stack, TestCa};
use time::{Duration, OffsetDateTime};

fn serial() -> Serial {
    Serial::parse(&unique("SN")).unwrap()
}

/// A stack with one registered CA and one allow-listed serial.
async fn setup() -> (Stack, TestCa, String, Serial) {
    let stack = Stack::new().await;
    let ca = TestCa::new("fleetguard test CA");
    let ca_id = stack.register_ca(&ca).await;
    let serial = serial();
    assert!(stack.registry().import_serial(&serial).await.unwrap());
    (stack, ca, ca_id, serial)
}

async fn assert_provisioned(stack: &Stack, serial: &Serial, cert_id: &str) {
    assert_eq!(
        stack.certificate_status(cert_id).await,
        CertificateStatus::Active
    );
    assert!(stack.thing_exists(serial.as_str()).await);
    let arn = stack.certificate_arn(cert_id).await;
    assert_eq!(
        stack.thing_principals(serial.as_str()).await,
        vec![arn.clone()]
    );
    assert_eq!(
        stack.principal_policies(&arn).await,
        vec![stack.fleet_policy.clone()]
    );
    let device = stack.registry().get_device(serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Active);
    assert_eq!(device.certificate_id.unwrap().as_str(), cert_id);
    let binding = stack
        .registry()
        .get_certificate(&CertificateId::parse(cert_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&binding.serial, serial);
    assert!(!binding.denied);
}

/// Refused: the certificate is revoked, no thing exists, the registry is unchanged, the refusal audited.
async fn assert_refused(stack: &Stack, serial: &Serial, cert_id: &str, reason: Reason) {
    assert_eq!(
        stack.certificate_status(cert_id).await,
        CertificateStatus::Revoked
    );
    assert!(!stack.thing_exists(serial.as_str()).await);
    if let Some(device) = stack.registry().get_device(serial).await.unwrap() {
        assert_ne!(
            device.certificate_id.as_ref().map(|c| c.as_str()),
            Some(cert_id)
        );
    }
    assert!(stack
        .registry()
        .get_certificate(&CertificateId::parse(cert_id).unwrap())
        .await
        .unwrap()
        .is_none_or(|b| b.certificate_id.as_str() != cert_id || b.denied));
    let audit = stack.audit();
    let entries = audit_for(&audit, serial).await;
    assert!(
        entries
            .iter()
            .any(|e| e.reason == reason && e.outcome == Outcome::Rejected),
        "no {reason} in {entries:?}"
    );
}

async fn audit_for(
    audit: &DynamoAudit,
    serial: &Serial,
) -> Vec<fleetguard_domain::model::AuditEntry> {
    let mut entries = audit.for_serial(serial.as_str(), 50).await.unwrap();
    // Refusals before the serial is known are filed under "-".
    entries.extend(audit.for_serial("-", 50).await.unwrap());
    entries
}

#[tokio::test]
async fn accepted_device_is_provisioned_and_activated_last() {
    let (stack, ca, ca_id, serial) = setup().await;
    let pem = ca.issue(serial.as_str());
    let cert_id = stack.auto_register(&pem, &ca).await;
    // With use_valid_cert the emulator, like AWS, names the certificate by SHA-256 of the DER.
    assert_eq!(cert_id, certificate_id_of(&pem));
    assert_eq!(
        stack.certificate_status(&cert_id).await,
        CertificateStatus::PendingActivation
    );

    let decision = stack.jitr(&cert_id, &ca_id).await;
    assert_eq!(
        (decision.outcome, decision.reason),
        (Outcome::Accepted, Reason::Provisioned)
    );
    assert_eq!(decision.serial.as_deref(), Some(serial.as_str()));
    assert_provisioned(&stack, &serial, &cert_id).await;
    let entries = stack.audit().for_serial(serial.as_str(), 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].principal.as_deref(), Some(cert_id.as_str()));
}

#[tokio::test]
async fn replayed_event_changes_nothing() {
    let (stack, ca, ca_id, serial) = setup().await;
    let pem = ca.issue(serial.as_str());
    let cert_id = stack.auto_register(&pem, &ca).await;
    let p = stack.provisioner();
    let event = jitr_event(&cert_id, &ca_id);
    p.handle(event.clone(), OffsetDateTime::now_utc())
        .await
        .unwrap();
    let registry_items = stack.count(&stack.tables.registry).await;
    let again = p.handle(event, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(
        (again.outcome, again.reason),
        (Outcome::Noop, Reason::AlreadyProvisioned)
    );
    assert_provisioned(&stack, &serial, &cert_id).await;
    assert_eq!(stack.count(&stack.tables.registry).await, registry_items);
}

#[tokio::test]
async fn unknown_serial_is_refused_and_revoked() {
    let (stack, ca, ca_id, _) = setup().await;
    let stranger = serial();
    let pem = ca.issue(stranger.as_str());
    let cert_id = stack.auto_register(&pem, &ca).await;
    let d = stack.jitr(&cert_id, &ca_id).await;
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::SerialNotAllowed)
    );
    assert_refused(&stack, &stranger, &cert_id, Reason::SerialNotAllowed).await;
}

#[tokio::test]
async fn refused_certificate_can_be_set_inactive_instead() {
    let (stack, ca, ca_id, _) = setup().await;
    let stranger = serial();
    let cert_id = stack.auto_register(&ca.issue(stranger.as_str()), &ca).await;
    let mut p = stack.provisioner();
    p.refused_status = CertificateStatus::Inactive;
    let d = p
        .handle(jitr_event(&cert_id, &ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::SerialNotAllowed);
    assert_eq!(
        stack.certificate_status(&cert_id).await,
        CertificateStatus::Inactive
    );
    // A replay of the registration event must not touch an INACTIVE (possibly quarantined) certificate.
    let again = p
        .handle(jitr_event(&cert_id, &ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (again.outcome, again.reason),
        (Outcome::Noop, Reason::CertificateNotPending)
    );
    assert_eq!(
        stack.certificate_status(&cert_id).await,
        CertificateStatus::Inactive
    );
}

#[tokio::test]
async fn certificate_signed_by_another_ca_is_refused() {
    let (stack, ca, ca_id, serial) = setup().await;
    let rogue = TestCa::new("fleetguard test CA"); // same name, different key
    let pem = rogue.issue(serial.as_str());
    // The emulator accepts a certificate "under" a CA that did not sign it (AWS would not): we verify.
    let cert_id = stack.auto_register(&pem, &ca).await;
    let d = stack.jitr(&cert_id, &ca_id).await;
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::NotSignedByCa)
    );
    assert_refused(&stack, &serial, &cert_id, Reason::NotSignedByCa).await;
    let device = stack.registry().get_device(&serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Manufactured);
}

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused() {
    let (stack, ca, ca_id, serial) = setup().await;
    let now = OffsetDateTime::now_utc();
    let expired = ca.issue_with(
        serial.as_str(),
        now - Duration::days(30),
        now - Duration::days(1),
        true,
    );
    let cert_id = stack.auto_register(&expired, &ca).await;
    let d = stack
        .provisioner()
        .handle(jitr_event(&cert_id, &ca_id), now)
        .await
        .unwrap();
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::CertificateExpired)
    );
    assert_refused(&stack, &serial, &cert_id, Reason::CertificateExpired).await;

    let future = ca.issue_with(
        serial.as_str(),
        now + Duration::days(1),
        now + Duration::days(30),
        true,
    );
    let cert_id = stack.auto_register(&future, &ca).await;
    let d = stack
        .provisioner()
        .handle(jitr_event(&cert_id, &ca_id), now)
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::CertificateNotYetValid);
    assert_eq!(
        stack.certificate_status(&cert_id).await,
        CertificateStatus::Revoked
    );
}

#[tokio::test]
async fn serial_from_common_name_when_no_serial_number_attribute() {
    let (stack, ca, ca_id, serial) = setup().await;
    let now = OffsetDateTime::now_utc();
    let pem = ca.issue_with(
        serial.as_str(),
        now - Duration::hours(1),
        now + Duration::days(1),
        false,
    );
    let cert_id = stack.auto_register(&pem, &ca).await;
    let d = stack
        .provisioner()
        .handle(jitr_event(&cert_id, &ca_id), now)
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Provisioned);
    assert_provisioned(&stack, &serial, &cert_id).await;
}

#[tokio::test]
async fn serial_already_bound_to_an_active_certificate_is_refused() {
    let (stack, ca, ca_id, serial) = setup().await;
    let p = stack.provisioner();
    let first = stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    p.handle(jitr_event(&first, &ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();

    // A second certificate with the same (guessable) serial: a clone or an attacker.
    let second = stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    let d = p
        .handle(jitr_event(&second, &ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::SerialBoundToOtherCertificate)
    );
    assert_eq!(
        stack.certificate_status(&second).await,
        CertificateStatus::Revoked
    );
    // The legitimate device is untouched.
    assert_provisioned(&stack, &serial, &first).await;
}

#[tokio::test]
async fn revoked_and_quarantined_serials_are_refused() {
    let (stack, ca, ca_id, serial) = setup().await;
    stack.set_device_status(&serial, "revoked").await;
    let cert_id = stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    let d = stack.jitr(&cert_id, &ca_id).await;
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::SerialRevoked)
    );
    assert_refused(&stack, &serial, &cert_id, Reason::SerialRevoked).await;

    stack.set_device_status(&serial, "quarantined").await;
    let cert_id = stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    let d = stack.jitr(&cert_id, &ca_id).await;
    assert_eq!(d.reason, Reason::DeviceQuarantined);
}

#[tokio::test]
async fn deny_listed_certificate_is_refused_even_with_a_valid_chain() {
    let (stack, ca, ca_id, serial) = setup().await;
    let pem = ca.issue(serial.as_str());
    let cert_id = stack.auto_register(&pem, &ca).await;
    stack
        .ddb
        .put_item()
        .table_name(&stack.tables.registry)
        .set_item(Some({
            use fleetguard_aws::schema::{cert_key, to_item};
            use fleetguard_domain::model::{CertificateId, CertificateRecord};
            let id = CertificateId::parse(&cert_id).unwrap();
            let record = CertificateRecord {
                certificate_id: id.clone(),
                serial: serial.clone(),
                denied: true,
                held: false,
                updated_at: fleetguard_domain::model::Timestamp::parse("2026-01-01T00:00:00Z")
                    .unwrap(),
            };
            to_item(&record, cert_key(&id)).unwrap()
        }))
        .send()
        .await
        .unwrap();
    let d = stack.jitr(&cert_id, &ca_id).await;
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::CertificateRevoked)
    );
    assert_eq!(
        stack.certificate_status(&cert_id).await,
        CertificateStatus::Revoked
    );
    assert!(!stack.thing_exists(serial.as_str()).await);
}

#[tokio::test]
async fn unknown_or_inactive_ca_is_refused() {
    let (stack, ca, _ca_id, serial) = setup().await;
    let cert_id = stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    let unknown_ca = "0".repeat(64);
    let d = stack.jitr(&cert_id, &unknown_ca).await;
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::CaUnknown)
    );
    assert_eq!(
        stack.certificate_status(&cert_id).await,
        CertificateStatus::Revoked
    );
}

#[tokio::test]
async fn malformed_events_are_rejected_and_change_nothing() {
    let (stack, _ca, ca_id, _serial) = setup().await;
    let p = stack.provisioner();
    let registry_before = stack.count(&stack.tables.registry).await;
    for event in [
        serde_json::json!(null),
        serde_json::json!("certificateId"),
        serde_json::json!({}),
        serde_json::json!({"certificateId": 7, "caCertificateId": ca_id}),
        serde_json::json!({"certificateId": "../../etc", "caCertificateId": ca_id}),
        serde_json::json!({"certificateId": "A".repeat(64), "caCertificateId": ca_id}),
        serde_json::json!({"certificateId": "a".repeat(100_000), "caCertificateId": ca_id}),
    ] {
        let d = p.handle(event, OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Rejected, Reason::MalformedEvent)
        );
    }
    // A well-formed id of a certificate that does not exist.
    let d = p
        .handle(
            jitr_event(&"f".repeat(64), &ca_id),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::CertificateNotFound);
    assert_eq!(stack.count(&stack.tables.registry).await, registry_before);
    // Only audit entries were written.
    assert_eq!(stack.count(&stack.tables.audit).await, 8);
}

#[tokio::test]
async fn fault_after_thing_creation_then_replay_converges() {
    let (stack, ca, ca_id, serial) = setup().await;
    let cert_id = stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    let p = stack.provisioner();
    // AttachPolicy (the step right after CreateThing) fails on every retry of this invocation.
    stack.emulator.inject_fault(
        "iot:PUT /target-policies/{id}",
        &stack.fleet_policy,
        1,
        3,
        500,
    );
    let err = p
        .handle(jitr_event(&cert_id, &ca_id), OffsetDateTime::now_utc())
        .await
        .expect_err("injected fault surfaces as an error so the invocation is retried");
    assert!(err.to_string().contains("AttachPolicy"), "{err}");
    // Half-way: the thing exists but the certificate is still not active, and no mapping exists.
    assert!(stack.thing_exists(serial.as_str()).await);
    assert_eq!(
        stack.certificate_status(&cert_id).await,
        CertificateStatus::PendingActivation
    );
    assert_eq!(
        stack
            .registry()
            .get_device(&serial)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Manufactured
    );

    // AWS retries the asynchronous invocation: the replay finishes the job.
    let d = p
        .handle(jitr_event(&cert_id, &ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Provisioned);
    assert_provisioned(&stack, &serial, &cert_id).await;
    let entries = stack.audit().for_serial(serial.as_str(), 10).await.unwrap();
    assert_eq!(
        entries.len(),
        1,
        "one decision audited, not one per attempt"
    );
}

#[tokio::test]
async fn an_instance_reuses_the_active_ca_description_and_a_fresh_one_looks_it_up() {
    let (stack, ca, ca_id, first) = setup().await;
    let p = stack.provisioner();
    let cert = stack.auto_register(&ca.issue(first.as_str()), &ca).await;
    p.handle(jitr_event(&cert, &ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    // DescribeCACertificate now fails: the warm instance does not need it, a cold one does.
    stack
        .emulator
        .inject_fault("iot:GET /cacertificate/{id}", &ca_id, 1, 100, 500);
    let second = serial();
    stack.registry().import_serial(&second).await.unwrap();
    let cert2 = stack.auto_register(&ca.issue(second.as_str()), &ca).await;
    let d = p
        .handle(jitr_event(&cert2, &ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Provisioned);
    assert_provisioned(&stack, &second, &cert2).await;

    let third = serial();
    stack.registry().import_serial(&third).await.unwrap();
    let cert3 = stack.auto_register(&ca.issue(third.as_str()), &ca).await;
    let err = stack
        .provisioner()
        .handle(jitr_event(&cert3, &ca_id), OffsetDateTime::now_utc())
        .await
        .expect_err("a cold instance must describe the CA");
    assert!(err.to_string().contains("DescribeCACertificate"), "{err}");
    let err = stack
        .provisioner()
        .with_ca_cache(std::time::Duration::ZERO)
        .handle(jitr_event(&cert3, &ca_id), OffsetDateTime::now_utc())
        .await
        .expect_err("no cache: looked up every time");
    assert!(err.to_string().contains("DescribeCACertificate"), "{err}");
    assert_eq!(
        stack.certificate_status(&cert3).await,
        CertificateStatus::PendingActivation
    );
}

#[tokio::test]
async fn ensuring_an_existing_thing_keeps_it_as_it_is() {
    use fleetguard_domain::ports::IotControl;
    let stack = Stack::new().await;
    let name = serial();
    let control = stack.control();
    control.ensure_thing(&name).await.unwrap();
    let iot = control.client();
    let before = iot
        .describe_thing()
        .thing_name(name.as_str())
        .send()
        .await
        .unwrap();
    // An operator labels the thing; a replayed provisioning must neither wipe nor replace it.
    iot.update_thing()
        .thing_name(name.as_str())
        .attribute_payload(
            aws_sdk_iot::types::AttributePayload::builder()
                .attributes("site", "plant-7")
                .build(),
        )
        .send()
        .await
        .unwrap();
    control.ensure_thing(&name).await.unwrap();
    control.ensure_thing(&name).await.unwrap();
    let after = iot
        .describe_thing()
        .thing_name(name.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(after.thing_id(), before.thing_id());
    assert_eq!(
        after.attributes().and_then(|a| a.get("site")),
        Some(&"plant-7".to_string())
    );
}

/// Green here means green on AWS: the emulator authorizes each function with its role from
/// `infra/template.yaml`. With the provisioner's `dynamodb:DeleteItem` taken out of a copy of the
/// template (the binding's transaction deletes the serial's password identity), the first device of a
/// stack cannot be provisioned: `AccessDeniedException`, nothing bound. With the template as it is,
/// the same event provisions it.
#[tokio::test]
async fn a_grant_removed_from_the_template_fails_provisioning_with_access_denied() {
    let (stack, ca, ca_id, serial) = setup().await;
    let template = fleetguard_tests::template_text();
    let without = template.replacen(
        "Action: [dynamodb:DeleteItem]",
        "Action: [dynamodb:GetItem]",
        1,
    );
    let provisioner_grants = |text: &str| {
        let local = stack.local.lock().unwrap().clone();
        let f = local.functions(text).unwrap();
        let p = f.iter().find(|f| f.binary == "provisioner").unwrap();
        serde_json::to_string(&p.policies).unwrap()
    };
    assert!(provisioner_grants(&template).contains("dynamodb:DeleteItem"));
    assert!(!provisioner_grants(&without).contains("dynamodb:DeleteItem"));
    stack.register_roles_from(&without, "without-delete-item");

    let cert_id = stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    let err = stack
        .provisioner()
        .handle(jitr_event(&cert_id, &ca_id), OffsetDateTime::now_utc())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("AccessDeniedException"), "{err}");
    assert!(err.contains("dynamodb:DeleteItem"), "{err}");
    let device = stack.registry().get_device(&serial).await.unwrap().unwrap();
    assert!(device.certificate_id.is_none(), "{device:?}");

    stack.register_roles();
    let d = stack.jitr(&cert_id, &ca_id).await;
    assert_eq!(d.reason, Reason::Provisioned);
}
