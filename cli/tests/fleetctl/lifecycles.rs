//! The whole life of the two certificate-less kinds of principal, run with the README's `fleetctl`
//! commands against the local emulator, and the real authorizer and delete-record code in between:
//! first contact → usable → acts → refused elsewhere → revoked → cut off → undone.

use fleetguard_domain::authorization::authorizer::{
    authorize, device_principal, operator_principal,
};
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{DeviceStatus, Principal, Serial, Timestamp};
use fleetguard_domain::ports::{AuditLog, Registry};
use fleetguard_tests::{delete_event, mqtt_connect, unique, Stack, TestIdp};
use time::OffsetDateTime;

const FLEETCTL: &str = env!("CARGO_BIN_EXE_fleetctl");
/// A supplied device secret strong enough for `set-password` (a test value, not a real secret).
const STRONG: &str = "Xk3!pQ9-vT2#mW7&zR4^bN8*cL5+hJ6@";

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

type Deletes = fleetguard_domain::records::delete::DeleteRecordService<
    fleetguard_aws::records::DynamoRecords,
    fleetguard_aws::dynamodb::DynamoAudit,
    fleetguard_aws::iot_data::IotPublisher,
>;

/// A delete-record message from `principal`, as the topic rule forwards it now.
async fn delete(deletes: &Deletes, serial: &str, record: &str, principal: &str, at: i64) {
    deletes
        .handle(delete_event(serial, record, principal, at))
        .await
        .unwrap();
}

fn import(stack: &Stack, serials: &[&Serial]) {
    let csv = std::env::temp_dir().join(format!("{}.csv", unique("serials")));
    let lines: Vec<String> = serials.iter().map(|s| s.to_string()).collect();
    std::fs::write(&csv, format!("serial\n{}\n", lines.join("\n"))).unwrap();
    stack
        .fleetctl(
            FLEETCTL,
            &["devices", "import", csv.to_str().unwrap()],
            None,
        )
        .expect_code(0);
}

async fn deleted_by(stack: &Stack, serial: &Serial, record: &str) -> Option<String> {
    let id = fleetguard_domain::model::RecordId::parse(record).unwrap();
    stack.record(serial, &id).await.unwrap().deleted_by
}

#[tokio::test]
async fn a_password_device_from_import_to_revocation_with_rollback() {
    let stack = Stack::new().await;
    let idp = TestIdp::new("https://login.example.test/", "fleetguard");
    let engine = idp.authorizer();
    let store = stack.services.identities();
    let me = Serial::parse(&unique("PW")).unwrap();
    let other = Serial::parse(&unique("PW")).unwrap();
    import(&stack, &[&me, &other]);
    // Audited as fleetctl's AWS caller identity (its role's session), the chosen name beside it.
    let imported = stack.audit().for_serial(me.as_str(), 10).await.unwrap();
    assert_eq!(
        imported
            .iter()
            .map(|e| e.actor.as_str())
            .collect::<Vec<_>>(),
        vec![format!(
            "fleetctl:ops-tester arn:aws:sts::{}:assumed-role/{}-operator/fleetctl",
            fleetguard_tests::ACCOUNT,
            stack.prefix
        )]
    );
    let connect = |pw: &[u8]| mqtt_connect(me.as_str(), pw, me.as_str());

    // A guessable secret is refused, and nothing is stored.
    let run = stack
        .fleetctl(
            FLEETCTL,
            &["devices", "set-password", me.as_str()],
            Some("correct horse battery\n"),
        )
        .expect_code(1);
    assert!(run.err.contains("weak_secret"), "{}", run.err);
    // A generated secret, printed once; alone it does not make a manufactured device usable.
    let run = stack
        .fleetctl(
            FLEETCTL,
            &["devices", "set-password", me.as_str(), "--generate"],
            None,
        )
        .expect_code(0);
    let secret = run.out.lines().next().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert!(run.out.contains("--activate"), "{}", run.out);
    let d = authorize(
        &engine,
        &store,
        connect(secret.as_bytes()),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(d.reason.as_str(), "device_not_active");

    // Activated: it connects, with a policy for its own serial only.
    stack
        .fleetctl(
            FLEETCTL,
            &["devices", "set-password", me.as_str(), "--activate"],
            Some(&format!("{secret}\n")),
        )
        .expect_code(0);
    let principal = device_principal(&me).to_string();
    let d = authorize(
        &engine,
        &store,
        connect(secret.as_bytes()),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert!(d.is_authenticated(), "{:?}", d.reason);
    assert_eq!(d.response.principal_id, principal);

    // It deletes its own record; another serial's is refused and untouched.
    stack.seed_record(&me, "r-own").await;
    stack.seed_record(&other, "r-other").await;
    let deletes = stack.delete_service();
    delete(&deletes, me.as_str(), "r-own", &principal, now_ms()).await;
    assert_eq!(
        deleted_by(&stack, &me, "r-own").await.as_deref(),
        Some(principal.as_str())
    );
    delete(&deletes, other.as_str(), "r-other", &principal, now_ms()).await;
    assert_eq!(deleted_by(&stack, &other, "r-other").await, None);

    // Revoked right after its delete, with rollback: cut off at the next connect, session cut, the
    // delete undone.
    let run = stack
        .fleetctl(
            FLEETCTL,
            &[
                "revoke",
                me.as_str(),
                "--rollback",
                "--reason",
                "password leaked",
            ],
            None,
        )
        .expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!(report["restored"], 1, "{report}");
    assert_eq!(report["rollback"], "restored");
    assert_eq!(report["principal"], principal.as_str());
    assert_eq!(
        deleted_by(&stack, &me, "r-own").await,
        None,
        "delete rolled back"
    );
    assert!(
        stack.emulator.disconnects().contains(&me.to_string()),
        "session cut"
    );
    let d = authorize(
        &engine,
        &store,
        connect(secret.as_bytes()),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert!(!d.is_authenticated());
    assert_eq!(d.reason.as_str(), "device_not_active");
    // Its deletes are refused at once, and revoked is final.
    delete(&deletes, me.as_str(), "r-own", &principal, now_ms()).await;
    assert_eq!(deleted_by(&stack, &me, "r-own").await, None);
    stack
        .fleetctl(FLEETCTL, &["release", me.as_str()], None)
        .expect_code(1);
    stack
        .fleetctl(
            FLEETCTL,
            &["devices", "set-password", me.as_str(), "--activate"],
            Some(STRONG),
        )
        .expect_code(1);
    assert_eq!(
        stack
            .registry()
            .get_device(&me)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Revoked
    );
    // A second rollback finds nothing and says so.
    let run = stack.fleetctl(FLEETCTL, &["revoke", me.as_str(), "--rollback"], None);
    let report: serde_json::Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!(
        (report["restored"].as_u64(), report["rollback"].as_str()),
        (Some(0), Some("nothing_to_roll_back"))
    );
}

#[tokio::test]
async fn a_device_with_a_certificate_or_a_claim_proof_never_gets_a_password() {
    let stack = Stack::new().await;
    let claim_dev = unique("PW");
    let csv = std::env::temp_dir().join(format!("{}.csv", unique("serials")));
    std::fs::write(&csv, format!("{claim_dev},,{},\n", "ab".repeat(32))).unwrap();
    stack
        .fleetctl(
            FLEETCTL,
            &["devices", "import", csv.to_str().unwrap()],
            None,
        )
        .expect_code(0);
    let run = stack
        .fleetctl(
            FLEETCTL,
            &["devices", "set-password", &claim_dev, "--activate"],
            Some(STRONG),
        )
        .expect_code(1);
    assert!(run.err.contains("proof_kind_mismatch"), "{}", run.err);
    let serial = Serial::parse(&claim_dev).unwrap();
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
}

#[tokio::test]
async fn an_operator_from_enrolment_to_revocation_with_rollback() {
    let stack = Stack::new().await;
    let idp = TestIdp::new("https://login.example.test/", "fleetguard");
    let store = stack.services.identities();
    let (granted, device) = (
        Serial::parse(&unique("OP")).unwrap(),
        Serial::parse(&unique("OP")).unwrap(),
    );
    let not_granted = Serial::parse(&unique("OP")).unwrap();
    import(&stack, &[&granted, &device, &not_granted]);
    let sub = unique("alice");
    stack
        .fleetctl(
            FLEETCTL,
            &[
                "operators",
                "add",
                "--issuer",
                &idp.issuer,
                "--subject",
                &sub,
                "--name",
                "alice",
                "--serials",
                &format!("{granted},{device}"),
            ],
            None,
        )
        .expect_code(0);
    let op = operator_principal(&idp.issuer, &sub).to_string();
    let token = idp.token(&sub, 3600);
    let connect = || mqtt_connect("alice", token.as_bytes(), &op);
    let d = authorize(
        &idp.authorizer(),
        &store,
        connect(),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert!(d.is_authenticated(), "{:?}", d.reason);

    // Another principal (the password device of `device`) deletes a record of its own.
    stack
        .fleetctl(
            FLEETCTL,
            &["devices", "set-password", device.as_str(), "--activate"],
            Some(STRONG),
        )
        .expect_code(0);
    let device_principal = device_principal(&device).to_string();
    let deletes = stack.delete_service();
    for (serial, record) in [
        (&granted, "a1"),
        (&device, "d1"),
        (&device, "d2"),
        (&not_granted, "n1"),
    ] {
        stack.seed_record(serial, record).await;
    }
    delete(&deletes, device.as_str(), "d2", &device_principal, now_ms()).await;
    // The operator deletes on its granted serials; not elsewhere.
    for (serial, record) in [(&granted, "a1"), (&device, "d1"), (&not_granted, "n1")] {
        delete(&deletes, serial.as_str(), record, &op, now_ms()).await;
    }
    assert_eq!(
        deleted_by(&stack, &granted, "a1").await.as_deref(),
        Some(op.as_str())
    );
    assert_eq!(
        deleted_by(&stack, &device, "d1").await.as_deref(),
        Some(op.as_str())
    );
    assert_eq!(deleted_by(&stack, &not_granted, "n1").await, None);

    // Revoked with rollback: refused from now on, session cut, its deletes restored, the device's
    // own delete untouched.
    let run = stack
        .fleetctl(
            FLEETCTL,
            &[
                "operators",
                "revoke",
                "--issuer",
                &idp.issuer,
                "--subject",
                &sub,
                "--rollback",
            ],
            None,
        )
        .expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!(report["restored"], 2, "{report}");
    assert!(stack.emulator.disconnects().contains(&op), "session cut");
    assert_eq!(deleted_by(&stack, &granted, "a1").await, None);
    assert_eq!(deleted_by(&stack, &device, "d1").await, None);
    assert_eq!(
        deleted_by(&stack, &device, "d2").await.as_deref(),
        Some(device_principal.as_str()),
        "another principal's delete is never touched"
    );
    // A fresh authorizer instance (no cache) refuses; so does the delete path, at once.
    let d = authorize(
        &idp.authorizer(),
        &store,
        connect(),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(d.reason.as_str(), "identity_disabled");
    delete(&deletes, granted.as_str(), "a1", &op, now_ms()).await;
    assert_eq!(deleted_by(&stack, &granted, "a1").await, None);
    // Revoked is not undone by `enable`; only a deliberate `operators add` re-enrols.
    stack
        .fleetctl(
            FLEETCTL,
            &[
                "operators",
                "enable",
                "--issuer",
                &idp.issuer,
                "--subject",
                &sub,
            ],
            None,
        )
        .expect_code(1);
    // Nor does `operators add` quietly: only with --re-enrol.
    let add = [
        "operators",
        "add",
        "--issuer",
        &idp.issuer,
        "--subject",
        &sub,
        "--name",
        "alice",
        "--serials",
        granted.as_str(),
    ];
    stack.fleetctl(FLEETCTL, &add, None).expect_code(1);
    stack
        .fleetctl(FLEETCTL, &[&add[..], &["--re-enrol"]].concat(), None)
        .expect_code(0);
    let audit = stack
        .audit()
        .for_principal(&Principal::parse(&op).unwrap(), &Timestamp::epoch())
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "revoke"));
    assert!(audit.iter().any(|e| e.action == "rollback"));
}

#[tokio::test]
async fn disabling_an_operator_cuts_its_session_and_enable_brings_it_back() {
    let stack = Stack::new().await;
    let idp = TestIdp::new("https://login.example.test/", "fleetguard");
    let store = stack.services.identities();
    let sub = unique("bob");
    let serial = unique("OP");
    stack
        .fleetctl(
            FLEETCTL,
            &[
                "operators",
                "add",
                "--issuer",
                &idp.issuer,
                "--subject",
                &sub,
                "--name",
                "bob",
                "--serials",
                &serial,
            ],
            None,
        )
        .expect_code(0);
    let op = operator_principal(&idp.issuer, &sub).to_string();
    let token = idp.token(&sub, 3600);
    let args = ["--issuer", idp.issuer.as_str(), "--subject", sub.as_str()];
    stack
        .fleetctl(
            FLEETCTL,
            &[&["operators", "disable"][..], &args].concat(),
            None,
        )
        .expect_code(0);
    assert!(stack.emulator.disconnects().contains(&op), "session cut");
    let d = authorize(
        &idp.authorizer(),
        &store,
        mqtt_connect("bob", token.as_bytes(), &op),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(d.reason.as_str(), "identity_disabled");
    stack
        .fleetctl(
            FLEETCTL,
            &[&["operators", "enable"][..], &args].concat(),
            None,
        )
        .expect_code(0);
    let d = authorize(
        &idp.authorizer(),
        &store,
        mqtt_connect("bob", token.as_bytes(), &op),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert!(d.is_authenticated(), "{:?}", d.reason);
}

/// A certificate device (JITR) isolated and restored with the README's commands, as an operator
/// under the template's `OperatorPolicy` (the emulator enforces it): `fleetctl quarantine` cuts it off
/// reversibly, `fleetctl release` gives it back its certificate, policy and thing, `fleetctl revoke`
/// ends it for good. Each is audited as the AWS caller identity (the operator role's session, from
/// sts:GetCallerIdentity) with the chosen name beside it; without that identity nothing is done.
#[tokio::test]
async fn a_certificate_device_is_quarantined_released_and_revoked_with_fleetctl() {
    let stack = Stack::new().await;
    let ca = fleetguard_tests::TestCa::new("device CA");
    let ca_id = stack.register_ca(&ca).await;
    let (serial, cert) = stack.provision_device(&ca, &ca_id).await;
    let arn = stack.certificate_arn(&cert).await;
    let group = format!("{}-quarantine", stack.prefix);
    let me = serial.to_string();

    // Who acts cannot be proven (STS unreachable): the command fails closed, nothing is done.
    let run = stack
        .fleetctl_env(
            FLEETCTL,
            &["quarantine", &me, "--reason", "odd traffic"],
            None,
            &[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")],
        )
        .expect_code(2);
    assert!(run.err.contains("GetCallerIdentity"), "{}", run.err);
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Active
    );
    assert!(stack
        .audit()
        .for_serial(&me, 100)
        .await
        .unwrap()
        .iter()
        .all(|e| e.action != "quarantine"));

    stack
        .fleetctl(
            FLEETCTL,
            &["quarantine", &me, "--reason", "odd traffic"],
            None,
        )
        .expect_code(0);
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Inactive
    );
    assert!(stack.group_members(&group).await.contains(&me));
    assert!(stack.emulator.disconnects().contains(&me));

    stack
        .fleetctl(FLEETCTL, &["release", &me, "--reason", "cleared"], None)
        .expect_code(0);
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Active
    );
    assert_eq!(
        stack.principal_policies(&arn).await,
        vec![stack.fleet_policy.clone()]
    );
    assert_eq!(stack.thing_principals(&me).await, vec![arn.clone()]);
    assert!(!stack.group_members(&group).await.contains(&me));

    stack
        .fleetctl(FLEETCTL, &["revoke", &me, "--reason", "stolen"], None)
        .expect_code(0);
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Revoked
    );
    assert_eq!(stack.device_status(&serial).await, DeviceStatus::Revoked);

    // The chosen name (FLEETGUARD_OPERATOR) beside the caller ARN of fleetctl's role.
    let caller = format!(
        "operator:fleetctl:ops-tester arn:aws:sts::{}:assumed-role/{}-operator/fleetctl",
        fleetguard_tests::ACCOUNT,
        stack.prefix
    );
    let audit = stack.audit().for_serial(&me, 100).await.unwrap();
    for action in ["quarantine", "release", "revoke"] {
        let entry = audit.iter().find(|e| e.action == action);
        assert_eq!(
            entry.map(|e| e.actor.as_str()),
            Some(caller.as_str()),
            "{action}: {audit:?}"
        );
    }
}

/// No event dropped in silence: a tamper report whose revoker invocation fails every attempt
/// (Lambda's first try and two retries, here through the gateway's rules engine) lands in the
/// failed-events queue with Lambda's record; `fleetctl events list` shows it and `fleetctl events
/// replay` runs it again through the function, which completes the isolation, and empties the queue.
// Multi-threaded: the gateway serves (the revoker's DeleteConnection) while fleetctl blocks this thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tamper_report_that_fails_every_attempt_is_kept_and_replayed_with_fleetctl() {
    use fleetguard_tests::gateway_story::{closes, connack, incoming};
    use fleetguard_tests::rumqttc::{ConnectReturnCode, Packet, QoS};
    let stack = Stack::new().await;
    let ca = fleetguard_tests::TestCa::new("device CA");
    let ca_id = stack.register_ca(&ca).await;
    let local = fleetguard_tests::gateway::start(
        &stack,
        fleetguard_tests::gateway::Options {
            connect_functions: false,
            retry_delay: std::time::Duration::from_millis(200),
            ..fleetguard_tests::gateway::Options::new(&ca_id)
        },
    )
    .await
    .unwrap();

    // A device provisioned through JITR, with a key we hold, connected.
    let device = stack.provision_device_with_key(&ca, &ca_id).await;
    let (serial, cert) = (device.serial.clone(), device.certificate_id.clone());
    let (c, mut ev) = fleetguard_tests::gateway::device_client(
        &local.gw,
        serial.as_str(),
        &device.cert_pem,
        &device.key_pem,
    );
    assert_eq!(connack(&mut ev).await.unwrap(), ConnectReturnCode::Success);

    // Every UpdateCertificate of this certificate fails, so every attempt of the revoker does.
    stack
        .emulator
        .inject_fault("iot:PUT /certificates/{id}", &cert, 1, 1000, 500);
    c.publish(
        format!("P/{serial}/tamper"),
        QoS::AtLeastOnce,
        false,
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    // The client sends as its event loop runs: until the broker's PUBACK.
    while !matches!(incoming(&mut ev, 20).await.unwrap(), Packet::PubAck(_)) {}
    let list = || {
        stack
            .fleetctl(FLEETCTL, &["events", "list"], None)
            .expect_code(0)
    };
    let mut listed = Vec::new();
    for _ in 0..600 {
        listed = list().out.lines().map(str::to_owned).collect();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(listed.len(), 1, "one failed event: {listed:?}");
    let failed: serde_json::Value = serde_json::from_str(&listed[0]).unwrap();
    assert_eq!(failed["function"], "revoker");
    assert_eq!(failed["attempts"], 3);
    assert_eq!(failed["condition"], "RetriesExhausted");
    assert_eq!(failed["event"]["serial"], serial.as_str());
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Active,
        "not isolated yet"
    );

    // The fault is gone; the operator replays the event through the function.
    stack.emulator.clear_faults();
    let run = stack
        .fleetctl_env(
            FLEETCTL,
            &["events", "replay"],
            None,
            &[("AWS_ENDPOINT_URL_LAMBDA", local.lambda.endpoint.as_str())],
        )
        .expect_code(0);
    assert!(run.out.contains("\"replayed\":true"), "{}", run.out);
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Inactive
    );
    assert!(closes(&mut ev, 30).await, "the isolation cut the session");
    assert!(list().out.trim().is_empty(), "the queue is empty");
}
