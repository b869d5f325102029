//! The gateway's own per-message overhead, without TLS, the emulator or Lambda: a device session
//! served in process over an in-memory stream (MQTT 3.1.1 decoding, topic checks, the fleet
//! policy's Publish decision, delivery with the Receive decision, encoding), the device subscribed
//! to its own namespace; and building a rule's event from a message (`scripts/bench.sh`).

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use fleetguard_gateway::identity::CertificatePrincipal;
use fleetguard_gateway::router::Router;
use fleetguard_gateway::rules::{self, Publisher, Rules};
use fleetguard_gateway::session::{self, Authentication, Settings};
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish, Subscribe};
use rumqttc::mqttbytes::QoS;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const SERIAL: &str = "SN-0001";

/// Reads packets until one satisfies `want`.
async fn read_until(io: &mut DuplexStream, buf: &mut BytesMut, want: impl Fn(&Packet) -> bool) {
    loop {
        match Packet::read(buf, 1 << 20) {
            Ok(p) if want(&p) => return,
            Ok(_) => continue,
            Err(_) => {
                let mut chunk = [0u8; 4096];
                let n = io.read(&mut chunk).await.expect("read");
                assert!(n > 0, "the session ended");
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// A connected device session subscribed to its own namespace.
async fn session() -> (DuplexStream, BytesMut) {
    let (client, server) = tokio::io::duplex(1 << 16);
    let policy = fleetguard_tests::template_fleet_policy("us-east-1", "123456789012");
    let principal = CertificatePrincipal {
        certificate_id: "a".repeat(64),
        status: "ACTIVE".into(),
        arn: "arn:aws:iot:us-east-1:123456789012:cert/x".into(),
        policies: vec![policy],
        things: vec![SERIAL.into()],
        ca_certificate_id: None,
    };
    let settings = Arc::new(Settings {
        region: "us-east-1".into(),
        account: "123456789012".into(),
        rules: Arc::new(Rules::default()),
        authorizer: None,
        auth_second: Duration::from_secs(1),
        iot: None,
        policy_refresh: Duration::from_secs(3600),
        provisioning: None,
    });
    tokio::spawn(async move {
        let ended = session::serve(
            server,
            Authentication::Certificate(Some(principal)),
            "localhost",
            ([127, 0, 0, 1], 1).into(),
            Router::default(),
            settings,
        )
        .await;
        eprintln!("session ended: {ended:?}");
    });
    let mut io = client;
    let mut out = BytesMut::new();
    let mut connect = Connect::new(SERIAL);
    connect.keep_alive = 0;
    connect.write(&mut out).unwrap();
    let mut subscribe = Subscribe::new(format!("P/{SERIAL}/#"), QoS::AtMostOnce);
    subscribe.pkid = 1;
    subscribe.write(&mut out).unwrap();
    io.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    read_until(&mut io, &mut buf, |p| matches!(p, Packet::SubAck(_))).await;
    (io, buf)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut io, mut buf) = rt.block_on(session());
    let mut message = BytesMut::new();
    Publish::new(
        format!("P/{SERIAL}/telemetry"),
        QoS::AtMostOnce,
        &br#"{"t": 21.5, "request_id": "q1"}"#[..],
    )
    .write(&mut message)
    .unwrap();
    let message = message.freeze();
    c.bench_function(
        "gateway: device PUBLISH -> decided, routed, delivered",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    io.write_all(&message).await.unwrap();
                    read_until(&mut io, &mut buf, |p| matches!(p, Packet::Publish(_))).await;
                })
            })
        },
    );

    let template =
        std::fs::read_to_string(fleetguard_tests::workspace_root().join("infra/template.yaml"))
            .unwrap();
    let params = HashMap::from([
        ("AWS::StackName".to_owned(), "fg".to_owned()),
        ("CaCertificateId".to_owned(), "ca".to_owned()),
    ]);
    let all = rules::load(&template, &params).unwrap();
    let who = Publisher {
        principal: &"a".repeat(64),
        client_id: SERIAL,
    };
    let topic = format!("P/{SERIAL}/deleterecords/r1");
    c.bench_function(
        "gateway: every rule's FROM matched, the delete rule's event built",
        |b| {
            b.iter(|| {
                all.iter()
                    .filter_map(|r| r.event(&topic, br#"{"request_id": "q1"}"#, &who, 1))
                    .count()
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
