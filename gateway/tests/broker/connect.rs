//! How clients get in, through the real functions (cargo lambda) the template names, with real MQTT
//! clients: a device's first connection registers its certificate (JITR: dropped, provisioned by the
//! provisioner's rule, reconnects, allowed), every certificate connection passes the handshake
//! validator; an operator signs in with a JWT through the custom authorizer (username with the SDK's
//! suffix), deletes a granted serial's record, and its session ends when a refresh is refused or
//! at `disconnectAfterInSeconds`. A watching client sees the lifecycle and registration events.

use crate::common;
use common::{client, closes, connack, seen_on, watch};
use fleetguard_domain::authorization::authorizer::operator_principal;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{RecordId, Serial};
use fleetguard_domain::ports::Registry;
use fleetguard_gateway::Gateway;
use fleetguard_tests::{unique, Stack, TestCa, TestIdp};
use rumqttc::{ConnectReturnCode, QoS};
use std::time::Duration;

const ISSUER: &str = "https://login.gateway.test";

/// A client allowed to watch AWS IoT's own events (`$aws/events/#`), as an operator's MQTT
/// explorer would be: a certificate of the fleet CA with a policy of its own.
async fn watcher(stack: &Stack, ca: &TestCa, gw: &Gateway) -> common::Seen {
    let id = unique("watcher");
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = ca.issue_for_key(&id, &key);
    let cert = stack
        .iot
        .register_certificate()
        .certificate_pem(&pem)
        .ca_certificate_pem(ca.pem())
        .status(aws_sdk_iot::types::CertificateStatus::Active)
        .send()
        .await
        .unwrap();
    let arn = |kind: &str, rest: &str| format!("arn:aws:iot:us-east-1:123456789012:{kind}/{rest}");
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": arn("client", &id)},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": arn("topicfilter", "$aws/events/*")},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": arn("topic", "$aws/events/*")}
    ]});
    stack
        .iot
        .create_policy()
        .policy_name(&id)
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap();
    stack
        .iot
        .attach_policy()
        .policy_name(&id)
        .target(cert.certificate_arn.unwrap())
        .send()
        .await
        .unwrap();
    let (c, mut ev) = client(
        gw.addr.port(),
        &gw.server_cert_pem,
        &id,
        Some((&pem, &key.serialize_pem())),
        None,
    );
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    c.subscribe("$aws/events/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let seen = watch(ev);
    // Kept alive for the test's length (dropping the client would end the session).
    std::mem::forget(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    seen
}

#[tokio::test]
async fn devices_register_on_first_connect_and_operators_sign_in_through_the_authorizer() {
    let stack = Stack::new().await;
    let ca = TestCa::new("gateway connect CA");
    let ca_id = stack.register_ca(&ca).await;
    let idp = TestIdp::new(ISSUER, "fleetguard");
    let local = fleetguard_tests::gateway::start(
        &stack,
        fleetguard_tests::gateway::Options {
            // 10 ms per authorizer second: a 300 s refresh comes after 3 s.
            auth_second: Duration::from_millis(10),
            env: &[
                ("FLEETGUARD_JWT_ISSUER", ISSUER),
                ("FLEETGUARD_JWT_AUDIENCE", "fleetguard"),
                ("FLEETGUARD_JWKS", idp.jwks.as_str()),
                // A disabled operator is refused at its next refresh, not 30 s later.
                ("FLEETGUARD_AUTH_CACHE_SECONDS", "0"),
                ("FLEETGUARD_HANDSHAKE_CACHE_SECONDS", "0"),
            ],
            ..fleetguard_tests::gateway::Options::new(&ca_id)
        },
    )
    .await
    .unwrap();
    let (gw, lambda) = (&local.gw, &local.lambda);
    // Built and started before the clients: the authorizer and validator answer within 5 s.
    for f in ["authorizer", "handshake-validator", "provisioner"] {
        let _ = lambda.invoke(f, &serde_json::json!({})).await;
    }
    let seen = watcher(&stack, &ca, gw).await;

    // A device's first connection: its certificate is registered PENDING_ACTIVATION, the event
    // goes to the provisioner, the connection is dropped.
    let serial = Serial::parse(&unique("SN")).unwrap();
    stack.registry().import_serial(&serial).await.unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = ca.issue_for_key(serial.as_str(), &key);
    let key_pem = key.serialize_pem();
    let cert = fleetguard_tests::certificate_id_of(&pem);
    // Devices connect through the validated domain (the template's `<stack>-devices`).
    let device = || {
        client(
            gw.devices_addr().port(),
            &gw.server_cert_pem,
            serial.as_str(),
            Some((&pem, &key_pem)),
            None,
        )
    };
    let (_c, mut ev) = device();
    let first = connack(&mut ev).await;
    assert!(first.is_err(), "the first connection is dropped: {first:?}");
    let registered = format!("$aws/events/certificates/registered/{ca_id}");
    let event = seen_on(
        &seen,
        &registered,
        |v| v["certificateId"] == cert.as_str(),
        10,
    )
    .await;
    let event = event.expect("the registration event");
    assert_eq!(event["certificateStatus"], "PENDING_ACTIVATION");
    assert_eq!(event["caCertificateId"], ca_id.as_str());
    let mut status = CertificateStatus::Unknown;
    for _ in 0..600 {
        status = stack.certificate_status(&cert).await;
        if status == CertificateStatus::Active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        CertificateStatus::Active,
        "the provisioner activated it"
    );
    // It reconnects and is allowed; the watcher sees it connect with its certificate id.
    let (c, mut ev) = device();
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    let connected = format!("$aws/events/presence/connected/{serial}");
    let e = seen_on(&seen, &connected, |_| true, 10)
        .await
        .expect("connected event");
    assert_eq!(e["principalIdentifier"], cert.as_str());
    assert_eq!(e["ipAddress"], "127.0.0.1");
    c.disconnect().await.unwrap();
    assert!(closes(&mut ev, 10).await);
    let disconnected = format!("$aws/events/presence/disconnected/{serial}");
    let e = seen_on(&seen, &disconnected, |_| true, 10)
        .await
        .expect("disconnected event");
    assert_eq!(
        (
            e["disconnectReason"].as_str(),
            e["clientInitiatedDisconnect"].as_bool()
        ),
        (Some("CLIENT_INITIATED_DISCONNECT"), Some(true))
    );
    assert_eq!(e["versionNumber"], 0);

    // Quarantined: the revoker holds its certificate in the registry (and makes it INACTIVE). Even
    // if AWS IoT still said ACTIVE (set back here, as a cached status would), the handshake
    // validator refuses its next connection.
    stack
        .revoker()
        .handle(
            serde_json::json!({"action": "quarantine", "serial": serial.as_str(),
                "reason": "tamper", "actor": "ops"}),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    stack
        .iot
        .update_certificate()
        .certificate_id(&cert)
        .new_status(aws_sdk_iot::types::CertificateStatus::Active)
        .send()
        .await
        .unwrap();
    let (_c, mut ev) = device();
    let refused = connack(&mut ev).await;
    assert!(refused.is_err(), "refused at the handshake: {refused:?}");
    // The default endpoint runs no validator: there the fleet policy's iot:DomainName condition
    // refuses it (a healthy device too: devices come in through the validated domain only).
    tokio::time::sleep(Duration::from_millis(1100)).await; // the CONNECT quota
    let (_c, mut ev) = client(
        gw.addr.port(),
        &gw.server_cert_pem,
        serial.as_str(),
        Some((&pem, &key_pem)),
        None,
    );
    assert_eq!(
        connack(&mut ev).await,
        Ok(ConnectReturnCode::NotAuthorized),
        "refused by iot:DomainName on the default endpoint"
    );

    // An operator signs in with a JWT: username with the SDK's suffix, client id = its principal.
    let granted = Serial::parse(&unique("SN")).unwrap();
    stack.seed_record(&granted, "r1").await;
    let sub = unique("alice");
    let principal = operator_principal(ISSUER, &sub).to_string();
    stack.put_operator(&principal, true, &[&granted]).await;
    let token = idp.token(&sub, 900);
    let operator = || {
        client(
            gw.addr.port(),
            &gw.server_cert_pem,
            &principal,
            None,
            Some(("alice?SDK=Rust&Version=1.0", &token)),
        )
    };
    let (c, mut ev) = operator();
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    c.publish(
        format!("P/{granted}/deleterecords/r1"),
        QoS::AtLeastOnce,
        false,
        br#"{"request_id": "op-1"}"#.to_vec(),
    )
    .await
    .unwrap();
    let seen_op = watch(ev);
    let rid = RecordId::parse("r1").unwrap();
    let mut deleted_by = None;
    for _ in 0..600 {
        deleted_by = stack
            .record(&granted, &rid)
            .await
            .and_then(|r| r.deleted_by);
        if deleted_by.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        deleted_by.as_deref(),
        Some(principal.as_str()),
        "principal() is the principalId"
    );
    let connected = format!("$aws/events/presence/connected/{principal}");
    let e = seen_on(&seen, &connected, |_| true, 10)
        .await
        .expect("operator connected");
    assert_eq!(e["principalIdentifier"], principal.as_str());
    let disconnected = format!("$aws/events/presence/disconnected/{principal}");
    let session = |n: u64| move |v: &serde_json::Value| v["versionNumber"] == n;
    // Its grant moves to another serial: the next refresh (300 authorizer seconds) brings the new
    // policy while the session stays, and a delete on the serial it lost is refused (on 3.1.1 the
    // connection closes) before any rule runs.
    let other = Serial::parse(&unique("SN")).unwrap();
    stack.seed_record(&granted, "r2").await;
    stack.put_operator(&principal, true, &[&other]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        seen_on(&seen, &disconnected, session(0), 0).await.is_none(),
        "the refresh kept the session"
    );
    c.publish(
        format!("P/{granted}/deleterecords/r2"),
        QoS::AtLeastOnce,
        false,
        br#"{"request_id": "op-2"}"#.to_vec(),
    )
    .await
    .unwrap();
    let e = seen_on(&seen, &disconnected, session(0), 10)
        .await
        .expect("closed for the refused publish");
    assert_eq!(e["disconnectReason"], "AUTH_ERROR");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r2 = RecordId::parse("r2").unwrap();
    assert!(stack
        .record(&granted, &r2)
        .await
        .unwrap()
        .deleted_at
        .is_none());
    drop((c, seen_op));
    // Disabled: the next refresh is refused and the session ends.
    stack.put_operator(&principal, true, &[&granted]).await;
    let (_c, mut ev) = operator();
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    let seen_op = watch(ev);
    stack.put_operator(&principal, false, &[&granted]).await;
    let e = seen_on(&seen, &disconnected, session(1), 30)
        .await
        .expect("cut at the refresh");
    assert_eq!(e["disconnectReason"], "AUTH_ERROR");
    drop(seen_op);
    // Enabled again, it stays until the token's end (disconnectAfterInSeconds, about 900).
    stack.put_operator(&principal, true, &[&granted]).await;
    let (_c, mut ev) = operator();
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    let seen_op = watch(ev);
    let e = seen_on(&seen, &disconnected, session(2), 60)
        .await
        .expect("closed at disconnectAfterInSeconds");
    assert_eq!(e["disconnectReason"], "CUSTOMAUTH_TTL_EXPIRATION");
    drop(seen_op);
    // A forged token: refused, nothing deleted.
    let (_c, mut ev) = client(
        gw.addr.port(),
        &gw.server_cert_pem,
        &principal,
        None,
        Some(("alice", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.x")),
    );
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::NotAuthorized));
}

/// The next message on the client's connection (its SUBACKs and PUBACKs skipped): (topic, JSON).
async fn next_message(
    ev: &mut rumqttc::EventLoop,
    secs: u64,
) -> Option<(String, serde_json::Value)> {
    loop {
        match common::incoming(ev, secs).await {
            Ok(rumqttc::Packet::Publish(p)) => {
                let v = serde_json::from_slice(&p.payload).unwrap_or_default();
                return Some((p.topic.clone(), v));
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Fleet provisioning by claim over MQTT, as a device does it against AWS IoT
/// (developerguide/fleet-provision-api.html, pre-provisioning-hook.html): the batch's claim
/// certificate connects, gets a certificate for the device's own key (CreateCertificateFromCsr),
/// calls RegisterThing with its factory-key proof (the template's hook decides), and the device
/// reconnects with its new certificate as its serial, passes the handshake validator and deletes its
/// own record. The attacker holding the same claim certificate: its RegisterThing without a proof is
/// denied, it never sees another device's replies, cannot connect as a device, cannot forge a reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_device_provisions_itself_over_mqtt_and_acts_only_as_its_serial() {
    let stack = Stack::new().await;
    let ca = TestCa::new("gateway claim CA");
    let ca_id = stack.register_ca(&ca).await;
    // The authorizer's IdP (X.509 custom authentication below uses the authorizer, not a token).
    let idp = TestIdp::new(ISSUER, "fleetguard");
    let local = fleetguard_tests::gateway::start(
        &stack,
        fleetguard_tests::gateway::Options {
            env: &[
                ("FLEETGUARD_JWT_ISSUER", ISSUER),
                ("FLEETGUARD_JWT_AUDIENCE", "fleetguard"),
                ("FLEETGUARD_JWKS", idp.jwks.as_str()),
            ],
            ..fleetguard_tests::gateway::Options::new(&ca_id)
        },
    )
    .await
    .unwrap();
    let (gw, lambda) = (&local.gw, &local.lambda);
    for f in [
        "provisioning-hook",
        "handshake-validator",
        "delete-record",
        "authorizer",
    ] {
        let _ = lambda.invoke(f, &serde_json::json!({})).await;
    }
    let port = gw.addr.port();
    // The batch's claim certificate, made as an operator makes it (CreateKeysAndCertificate, set as
    // active) with the template's claim policy attached.
    let (claim_id, claim_pem, claim_key) = gw
        .provisioning
        .create_keys_and_certificate(true)
        .await
        .unwrap();
    stack
        .iot
        .attach_policy()
        .policy_name(format!("{}-claim", stack.prefix))
        .target(format!(
            "arn:aws:iot:us-east-1:123456789012:cert/{claim_id}"
        ))
        .send()
        .await
        .unwrap();
    let serial = Serial::parse(&unique("SN")).unwrap();
    let factory = fleetguard_tests::FactoryKey::new();
    stack
        .import_enrolled(&serial, &factory.public_b64(), "", "")
        .await;
    let claim_client = |client_id: &str| {
        client(
            port,
            &gw.server_cert_pem,
            client_id,
            Some((&claim_pem, &claim_key)),
            None,
        )
    };
    const CSR: &str = "$aws/certificates/create-from-csr/json";
    let register = format!(
        "$aws/provisioning-templates/{}-claim/provision/json",
        stack.prefix
    );

    // The attacker holds the same claim certificate and listens on the replies.
    let (spy, mut spy_ev) = claim_client(&format!("claim.{}", unique("X")));
    assert_eq!(connack(&mut spy_ev).await, Ok(ConnectReturnCode::Success));
    spy.subscribe(format!("{CSR}/accepted"), QoS::AtLeastOnce)
        .await
        .unwrap();
    spy.subscribe(format!("{register}/accepted"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let spied = watch(spy_ev);

    // The device: claim connection, subscribed to its replies before asking (as AWS requires).
    let (c, mut ev) = claim_client(&format!("claim.{serial}"));
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    for t in [
        &format!("{CSR}/accepted"),
        &format!("{CSR}/rejected"),
        &format!("{register}/accepted"),
        &format!("{register}/rejected"),
    ] {
        c.subscribe(t.as_str(), QoS::AtLeastOnce).await.unwrap();
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = fleetguard_testkit::pki::csr_pem(&key, "whatever-the-device-says");
    c.publish(
        CSR,
        QoS::AtLeastOnce,
        false,
        serde_json::json!({"certificateSigningRequest": csr}).to_string(),
    )
    .await
    .unwrap();
    let (topic, created) = next_message(&mut ev, 20)
        .await
        .expect("CreateCertificateFromCsr answered");
    assert_eq!(topic, format!("{CSR}/accepted"), "{created}");
    let cert_pem = created["certificatePem"].as_str().unwrap().to_owned();
    let cert = created["certificateId"].as_str().unwrap().to_owned();
    assert_eq!(cert, fleetguard_tests::certificate_id_of(&cert_pem));
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::PendingActivation
    );
    let token = created["certificateOwnershipToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // RegisterThing naming the serial without the proof: the hook denies; nothing is created.
    c.publish(&register, QoS::AtLeastOnce, false,
        serde_json::json!({"certificateOwnershipToken": token, "parameters": {"SerialNumber": serial.as_str()}}).to_string())
        .await
        .unwrap();
    let (topic, denied) = next_message(&mut ev, 20)
        .await
        .expect("RegisterThing answered");
    assert_eq!(topic, format!("{register}/rejected"), "{denied}");
    assert_eq!(denied["errorCode"], "AccessDenied");
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::PendingActivation
    );

    // With the factory key's proof for this certificate: provisioned, the thing named by the hook.
    let parameters = factory.prove_now(serial.as_str(), &cert);
    c.publish(
        &register,
        QoS::AtLeastOnce,
        false,
        serde_json::json!({"certificateOwnershipToken": token, "parameters": parameters})
            .to_string(),
    )
    .await
    .unwrap();
    let (topic, registered) = next_message(&mut ev, 20)
        .await
        .expect("RegisterThing answered");
    assert_eq!(topic, format!("{register}/accepted"), "{registered}");
    assert_eq!(registered["thingName"], serial.as_str());
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Active
    );
    // The other holder of the claim saw none of it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        spied.lock().unwrap().is_empty(),
        "replies reach the requester only"
    );
    c.disconnect().await.unwrap();

    // The device reconnects with its own certificate as its serial and deletes its own record.
    let record = stack.seed_record(&serial, "r1").await;
    let (d, mut dev) = client(
        gw.devices_addr().port(),
        &gw.server_cert_pem,
        serial.as_str(),
        Some((&cert_pem, &key.serialize_pem())),
        None,
    );
    assert_eq!(connack(&mut dev).await, Ok(ConnectReturnCode::Success));
    let reply = format!("P/{serial}/deleterecords/{record}/accepted");
    d.subscribe(&reply, QoS::AtLeastOnce).await.unwrap();
    d.publish(
        format!("P/{serial}/deleterecords/{record}"),
        QoS::AtLeastOnce,
        false,
        r#"{"request_id":"q1"}"#,
    )
    .await
    .unwrap();
    let (topic, _) = next_message(&mut dev, 30).await.expect("delete answered");
    assert_eq!(topic, reply);
    assert!(stack.record(&serial, &record).await.unwrap().is_deleted());

    d.disconnect().await.unwrap();

    // X.509 custom authentication (the template's `<stack>-x509auth`): AWS checks the certificate,
    // the handshake validator runs, then the authorizer gets the certificate and admits the serial's
    // own client id only; without a certificate there is no way in.
    let x509 = gw
        .endpoint(&format!("{}-x509auth", stack.prefix))
        .expect("the X.509 custom-auth endpoint")
        .port();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the CONNECT quota
    let device_key = key.serialize_pem();
    let (_x, mut xev) = client(
        x509,
        &gw.server_cert_pem,
        serial.as_str(),
        Some((&cert_pem, &device_key)),
        None,
    );
    assert_eq!(connack(&mut xev).await, Ok(ConnectReturnCode::Success));
    let other = format!("{}X", serial);
    let (_y, mut yev) = client(
        x509,
        &gw.server_cert_pem,
        &other,
        Some((&cert_pem, &device_key)),
        None,
    );
    assert_eq!(
        connack(&mut yev).await,
        Ok(ConnectReturnCode::NotAuthorized)
    );
    let (_z, mut zev) = client(
        x509,
        &gw.server_cert_pem,
        serial.as_str(),
        None,
        Some(("u", "p")),
    );
    assert!(
        connack(&mut zev).await.is_err(),
        "no certificate, no way in"
    );

    // The claim certificate cannot be a device, nor forge AWS's replies.
    let (_a, mut a) = claim_client(serial.as_str());
    assert_eq!(connack(&mut a).await, Ok(ConnectReturnCode::NotAuthorized));
    let (f, mut fev) = claim_client(&format!("claim.{}", unique("F")));
    assert_eq!(connack(&mut fev).await, Ok(ConnectReturnCode::Success));
    f.publish(format!("{CSR}/accepted"), QoS::AtLeastOnce, false, "{}")
        .await
        .unwrap();
    assert!(
        closes(&mut fev, 10).await,
        "a forged reply closes the connection"
    );
}
