//! MQTT 5 clients (rumqttc's v5 client) against the gateway, with AWS IoT Core's MQTT 5 reason
//! codes: a device connects and receives on its own topics; another serial's subscription is
//! SUBACK 0x87 and its publish PUBACK 0x87 with the connection kept (3.1.1 would be disconnected);
//! a hijacked key under another client id gets CONNACK 0x87; DeleteConnection ends the session with
//! a server DISCONNECT naming why (0x98 administrative action).

use crate::common;
use common::{BareGateway, Device};
use fleetguard_gateway::Gateway;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use std::time::Duration;

fn client(gw: &Gateway, client_id: &str, d: &Device) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(client_id, "localhost", gw.devices_addr().port());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca: gw.server_cert_pem.clone().into_bytes(),
            alpn: None,
            client_auth: Some((
                d.cert_pem.clone().into_bytes(),
                d.key_pem.clone().into_bytes(),
            )),
        },
    ));
    AsyncClient::new(o, 16)
}

/// The next incoming packet (PINGRESP skipped), or the connection's error (Debug), within 10 s.
async fn incoming(ev: &mut EventLoop) -> Result<Packet, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ev.poll()).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(e)) => return Err(format!("{e:?}")),
            Ok(Ok(Event::Incoming(p))) if !matches!(p, Packet::PingResp(_)) => return Ok(p),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn mqtt5_clients_get_aws_iot_s_reason_codes() {
    let f = BareGateway::start("gateway mqtt5 CA").await;
    let (a, b) = f.two_devices().await;
    let gw = &f.gw;

    let (c, mut ev) = client(gw, a.serial.as_str(), &a);
    match incoming(&mut ev).await.unwrap() {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.code, ConnectReturnCode::Success);
            let props = ack.properties.expect("CONNACK properties");
            assert_eq!(props.max_qos, Some(1), "AWS IoT serves QoS 0 and 1");
        }
        other => panic!("{other:?}"),
    }
    c.subscribe(format!("P/{}/#", a.serial), QoS::AtLeastOnce)
        .await
        .unwrap();
    match incoming(&mut ev).await.unwrap() {
        Packet::SubAck(s) => assert_eq!(
            s.return_codes,
            [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
        ),
        other => panic!("{other:?}"),
    }
    c.subscribe(format!("P/{}/#", b.serial), QoS::AtLeastOnce)
        .await
        .unwrap();
    match incoming(&mut ev).await.unwrap() {
        Packet::SubAck(s) => assert_eq!(s.return_codes, [SubscribeReasonCode::NotAuthorized]),
        other => panic!("{other:?}"),
    }
    // B listens on its own topics.
    let (cb, mut evb) = client(gw, b.serial.as_str(), &b);
    assert!(matches!(incoming(&mut evb).await, Ok(Packet::ConnAck(_))));
    cb.subscribe(format!("P/{}/#", b.serial), QoS::AtLeastOnce)
        .await
        .unwrap();
    assert!(matches!(incoming(&mut evb).await, Ok(Packet::SubAck(_))));
    // Another serial's topic: PUBACK 0x87, the connection stays, and B receives nothing.
    c.publish(
        format!("P/{}/deleterecords/r1", b.serial),
        QoS::AtLeastOnce,
        false,
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    match incoming(&mut ev).await.unwrap() {
        Packet::PubAck(p) => assert_eq!(p.reason, PubAckReason::NotAuthorized),
        other => panic!("{other:?}"),
    }
    let leaked = tokio::time::timeout(Duration::from_secs(1), incoming(&mut evb)).await;
    assert!(leaked.is_err(), "nothing reached B: {leaked:?}");
    let own = format!("P/{}/telemetry", a.serial);
    c.publish(&own, QoS::AtLeastOnce, false, b"hi".to_vec())
        .await
        .unwrap();
    let mut delivered = None;
    for _ in 0..4 {
        match incoming(&mut ev).await.unwrap() {
            Packet::Publish(p) => {
                delivered = Some(p);
                break;
            }
            Packet::PubAck(p) => assert_eq!(p.reason, PubAckReason::Success),
            _ => {}
        }
    }
    let p = delivered.expect("still connected: its own message delivered");
    assert_eq!(
        (p.topic.as_ref(), p.payload.as_ref()),
        (own.as_bytes(), &b"hi"[..])
    );

    // B's key under A's client id: CONNACK 0x87.
    let (_h, mut hev) = client(gw, a.serial.as_str(), &b);
    let refused = incoming(&mut hev).await;
    assert!(
        matches!(&refused, Err(e) if e.contains("NotAuthorized")),
        "{refused:?}"
    );

    // DeleteConnection: a server DISCONNECT with 0x98 (administrative action).
    assert!(gw.router.close(a.serial.as_str()));
    let mut why = String::new();
    for _ in 0..4 {
        if let Err(e) = incoming(&mut ev).await {
            why = e;
            break;
        }
    }
    assert!(why.contains("AdministrativeAction"), "{why}");
}
