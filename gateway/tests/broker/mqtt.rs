//! Real MQTT clients (rumqttc) with real certificates against the gateway and the emulator: a
//! provisioned device connects over mutual TLS, subscribes and receives on its own topics, is
//! refused another serial's subscription and disconnected for publishing there; a hijacked key under
//! another serial's client id is refused at connect; a certificate from an unregistered CA fails the
//! handshake; a revoked certificate is refused; DeleteConnection closes a live session.

use crate::common;
use common::{closes, incoming, provisioned, BareGateway, Device};
use fleetguard_domain::model::Reason;
use fleetguard_gateway::{Config, Gateway};
use fleetguard_tests::TestCa;
use rumqttc::{
    AsyncClient, ConnectReturnCode, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode,
    TlsConfiguration, Transport,
};
use std::time::Duration;
use time::OffsetDateTime;

fn client(gw: &Gateway, client_id: &str, d: &Device) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(client_id, "localhost", gw.devices_addr().port());
    o.set_keep_alive(Duration::from_secs(5));
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: gw.server_cert_pem.clone().into_bytes(),
        alpn: None,
        client_auth: Some((
            d.cert_pem.clone().into_bytes(),
            d.key_pem.clone().into_bytes(),
        )),
    }));
    AsyncClient::new(o, 16)
}

async fn connected(ev: &mut EventLoop) -> Result<ConnectReturnCode, String> {
    match incoming(ev, 10).await {
        Ok(Packet::ConnAck(ack)) => Ok(ack.code),
        Ok(other) => Err(format!("expected CONNACK, got {other:?}")),
        // rumqttc reports a refused CONNACK as the connection's error.
        Err(e) if e.contains("NotAuthorized") => Ok(ConnectReturnCode::NotAuthorized),
        Err(e) => Err(e),
    }
}

#[tokio::test]
async fn devices_over_mutual_tls_under_their_policies() {
    let f = BareGateway::with("gateway test CA", |c| Config {
        // A policy change reaches a live session within this bound (AWS IoT: minutes).
        policy_refresh: Duration::from_millis(200),
        ..c
    })
    .await;
    let (a, b) = f.two_devices().await;
    let BareGateway {
        stack,
        ca,
        ca_id,
        gw,
    } = f;

    // A connects as its serial, subscribes to its namespace, publishes and receives.
    let (c, mut ev) = client(&gw, a.serial.as_str(), &a);
    assert_eq!(connected(&mut ev).await, Ok(ConnectReturnCode::Success));
    let own = format!("P/{}/#", a.serial);
    c.subscribe(&own, QoS::AtLeastOnce).await.unwrap();
    match incoming(&mut ev, 10).await.unwrap() {
        Packet::SubAck(ack) => assert_eq!(
            ack.return_codes,
            [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
        ),
        other => panic!("{other:?}"),
    }
    // Another serial's namespace: refused in the SUBACK.
    c.subscribe(format!("P/{}/#", b.serial), QoS::AtLeastOnce)
        .await
        .unwrap();
    match incoming(&mut ev, 10).await.unwrap() {
        Packet::SubAck(ack) => assert_eq!(ack.return_codes, [SubscribeReasonCode::Failure]),
        other => panic!("{other:?}"),
    }
    let topic = format!("P/{}/telemetry", a.serial);
    c.publish(&topic, QoS::AtLeastOnce, false, b"hello".to_vec())
        .await
        .unwrap();
    let mut got = None;
    for _ in 0..4 {
        if let Packet::Publish(p) = incoming(&mut ev, 10).await.unwrap() {
            got = Some(p);
            break;
        }
    }
    let p = got.expect("delivered to its own subscription");
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref()),
        (topic.as_str(), &b"hello"[..])
    );
    // Publishing into another serial's namespace: disconnected (AWS IoT on MQTT 3.1.1).
    c.publish(
        format!("P/{}/deleterecords/r1", b.serial),
        QoS::AtLeastOnce,
        false,
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    let closed = closes(&mut ev, 10).await;
    assert!(closed, "the gateway closed the connection");
    assert!(!gw.router.connected(a.serial.as_str()));

    // B's key under A's client id (a hijacked key trying another serial): refused at connect.
    let (_c, mut ev) = client(&gw, a.serial.as_str(), &b);
    assert_eq!(
        connected(&mut ev).await,
        Ok(ConnectReturnCode::NotAuthorized)
    );

    // A certificate from a CA AWS IoT does not know: the handshake fails.
    let stranger_ca = TestCa::new("unregistered CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let stranger = Device {
        serial: a.serial.clone(),
        cert_pem: stranger_ca.issue_for_key(a.serial.as_str(), &key),
        key_pem: key.serialize_pem(),
    };
    let (_c, mut ev) = client(&gw, a.serial.as_str(), &stranger);
    assert!(connected(&mut ev).await.is_err());

    // The functions' data plane is the gateway's: delete-record's reply reaches the device over MQTT.
    let data_plane = stack
        .sdk
        .to_builder()
        .endpoint_url(format!("http://{}", gw.data_plane_addr))
        .build();
    let publisher = fleetguard_aws::iot_data::IotPublisher::new(&data_plane);
    let (c, mut ev) = client(&gw, b.serial.as_str(), &b);
    assert_eq!(connected(&mut ev).await, Ok(ConnectReturnCode::Success));
    c.subscribe(
        format!("P/{}/deleterecords/+/accepted", b.serial),
        QoS::AtLeastOnce,
    )
    .await
    .unwrap();
    assert!(matches!(
        incoming(&mut ev, 10).await.unwrap(),
        Packet::SubAck(_)
    ));
    stack.seed_record(&b.serial, "r1").await;
    let deletes = fleetguard_domain::records::delete::DeleteRecordService {
        records: stack.records(),
        audit: stack.audit(),
        publisher: publisher.clone(),
        security_topic: stack.security_topic.clone(),
    };
    let b_cert = fleetguard_tests::certificate_id_of(&b.cert_pem);
    let d = deletes
        .handle(fleetguard_tests::delete_event(
            b.serial.as_str(),
            "r1",
            &b_cert,
            fleetguard_tests::now_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);
    let mut reply = None;
    for _ in 0..4 {
        if let Packet::Publish(p) = incoming(&mut ev, 10).await.unwrap() {
            reply = Some(p);
            break;
        }
    }
    let reply = reply.expect("the reply reached the device");
    assert_eq!(
        reply.topic,
        format!("P/{}/deleterecords/r1/accepted", b.serial)
    );

    // The data plane decides its callers as AWS IoT does: a SigV4 signature, then the caller's IAM
    // grant. delete-record's role may publish its replies, not a device's request; a forged
    // signature and an unsigned request are refused.
    use fleetguard_domain::ports::Publisher;
    // The roles tagged while they are refused on purpose (scripts/iam-report.sh leaves those out).
    stack.register_roles_from(&fleetguard_tests::template_text(), "refused-on-purpose");
    let as_delete_record =
        fleetguard_aws::local::role_config(&data_plane, "delete-record", &stack.prefix);
    let role = fleetguard_aws::iot_data::IotPublisher::new(&as_delete_record);
    let body = serde_json::json!({});
    let reply_topic = format!("P/{}/deleterecords/r9/accepted", b.serial);
    role.publish(&reply_topic, &body).await.unwrap();
    let forged = role
        .publish(&format!("P/{}/deleterecords/r9", b.serial), &body)
        .await
        .unwrap_err()
        .to_string();
    assert!(forged.contains("ForbiddenException"), "{forged}");
    assert!(forged.contains("iot:Publish"), "{forged}");
    let stranger = data_plane
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    fleetguard_aws::template::local_access_key("delete-record"),
                    "a guessed secret",
                    Some(stack.prefix.clone()),
                    None,
                    "test",
                ),
            ),
        )
        .build();
    let guessed = fleetguard_aws::iot_data::IotPublisher::new(&stranger)
        .publish(&reply_topic, &body)
        .await
        .unwrap_err()
        .to_string();
    assert!(guessed.contains("InvalidSignatureException"), "{guessed}");
    let unsigned = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(gw.data_plane_addr)
            .await
            .unwrap();
        let request = format!(
            "POST /topics/P%2F{}%2Fdeleterecords%2Fr9%2Faccepted HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}",
            b.serial
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
            .await
            .expect("the data plane answers and closes")
            .unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    };
    assert!(unsigned.starts_with("HTTP/1.1 403"), "{unsigned}");
    stack.register_roles();

    // A revoke cuts the live session through the data plane's DeleteConnection; the reconnect is
    // refused.
    let revoker = fleetguard_domain::lifecycle::revocation::Revoker {
        registry: stack.registry(),
        control: stack.control(),
        connections: publisher,
        records: stack.records(),
        audit: stack.audit(),
        config: stack.revocation_config(),
    };
    revoker
        .handle(
            serde_json::json!({"action": "revoke", "serial": b.serial.as_str(), "actor": "ops"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let closed = closes(&mut ev, 10).await;
    assert!(closed, "DeleteConnection closed the session");
    let (_c, mut ev) = client(&gw, b.serial.as_str(), &b);
    assert_eq!(
        connected(&mut ev).await,
        Ok(ConnectReturnCode::NotAuthorized)
    );

    // A policy detached from a connected device's certificate reaches its live session within the
    // bound: its next publish is refused (MQTT 3.1.1: the connection is closed).
    let c3 = provisioned(&stack, &ca, &ca_id).await;
    let (cc, mut ev) = client(&gw, c3.serial.as_str(), &c3);
    assert_eq!(connected(&mut ev).await, Ok(ConnectReturnCode::Success));
    let topic = format!("P/{}/telemetry", c3.serial);
    cc.publish(&topic, QoS::AtLeastOnce, false, b"1".to_vec())
        .await
        .unwrap();
    assert!(matches!(
        incoming(&mut ev, 10).await.unwrap(),
        Packet::PubAck(_)
    ));
    let arn = stack
        .certificate_arn(&fleetguard_tests::certificate_id_of(&c3.cert_pem))
        .await;
    stack
        .iot
        .detach_policy()
        .policy_name(&stack.fleet_policy)
        .target(&arn)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    cc.publish(&topic, QoS::AtLeastOnce, false, b"2".to_vec())
        .await
        .unwrap();
    assert!(closes(&mut ev, 10).await, "the publish was refused");
}
