//! The loop no emulator closes on its own: a real MQTT client publishes, the gateway authorizes it,
//! the template's topic rule invokes the real function (cargo lambda), the function answers through
//! the gateway's data plane, and the device receives it. A device deletes its own record and gets
//! `/accepted`; a tamper report quarantines it and its live session is cut.

use crate::common;
use common::{closes, incoming};
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{Reason, RecordId, Serial};
use fleetguard_domain::ports::Registry;
use fleetguard_tests::{unique, Stack, TestCa};
use rumqttc::{
    AsyncClient, ConnectReturnCode, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use std::time::Duration;

#[tokio::test]
async fn a_device_s_message_runs_the_rule_and_the_answer_comes_back_over_mqtt() {
    let stack = Stack::new().await;
    let ca = TestCa::new("gateway rules CA");
    let ca_id = stack.register_ca(&ca).await;
    let local = fleetguard_tests::gateway::start(
        &stack,
        fleetguard_tests::gateway::Options {
            connect_functions: false,
            ..fleetguard_tests::gateway::Options::new(&ca_id)
        },
    )
    .await
    .unwrap();
    let gw = &local.gw;

    // A device provisioned through JITR, with a key we hold.
    let serial = Serial::parse(&unique("SN")).unwrap();
    stack.registry().import_serial(&serial).await.unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert_pem = ca.issue_for_key(serial.as_str(), &key);
    let cert = stack.auto_register(&cert_pem, &ca).await;
    let d = stack.jitr(&cert, &ca_id).await;
    assert_eq!(d.reason, Reason::Provisioned);
    stack.seed_record(&serial, "r1").await;

    let mut o = MqttOptions::new(serial.as_str(), "localhost", gw.devices_addr().port());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: gw.server_cert_pem.clone().into_bytes(),
        alpn: None,
        client_auth: Some((cert_pem.into_bytes(), key.serialize_pem().into_bytes())),
    }));
    let (c, mut ev) = AsyncClient::new(o, 16);
    match incoming(&mut ev, 10).await.unwrap() {
        Packet::ConnAck(a) => assert_eq!(a.code, ConnectReturnCode::Success),
        other => panic!("{other:?}"),
    }
    c.subscribe(
        format!("P/{serial}/deleterecords/+/accepted"),
        QoS::AtLeastOnce,
    )
    .await
    .unwrap();
    assert!(matches!(
        incoming(&mut ev, 10).await.unwrap(),
        Packet::SubAck(_)
    ));

    // The device deletes its own record: rule -> delete-record -> data plane -> the device.
    c.publish(
        format!("P/{serial}/deleterecords/r1"),
        QoS::AtLeastOnce,
        false,
        br#"{"request_id": "q1", "reason": "cleanup"}"#.to_vec(),
    )
    .await
    .unwrap();
    let mut reply = None;
    for _ in 0..6 {
        // The first invocation may wait for the function's cold start.
        if let Packet::Publish(p) = incoming(&mut ev, 120).await.unwrap() {
            reply = Some(p);
            break;
        }
    }
    let reply = reply.expect("the reply came back over MQTT");
    assert_eq!(reply.topic, format!("P/{serial}/deleterecords/r1/accepted"));
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(
        (body["reason"].as_str(), body["request_id"].as_str()),
        (Some("deleted"), Some("q1"))
    );
    let rid = RecordId::parse("r1").unwrap();
    let record = stack.record(&serial, &rid).await.unwrap();
    assert_eq!(
        record.deleted_by.as_deref(),
        Some(cert.as_str()),
        "principal() from the TLS session"
    );

    // A tamper report: rule -> revoker -> quarantine -> DeleteConnection through the data plane.
    c.publish(
        format!("P/{serial}/tamper"),
        QoS::AtLeastOnce,
        false,
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    let closed = closes(&mut ev, 120).await;
    assert!(closed, "the revoker's DeleteConnection closed the session");
    assert_eq!(
        stack.certificate_status(&cert).await,
        CertificateStatus::Inactive
    );
    assert!(!gw.router.connected(serial.as_str()));
}
