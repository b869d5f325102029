//! Hostile clients against the gateway: bytes that are not MQTT (before TLS and after it), a packet
//! over AWS IoT's 128 KB, a client publishing AWS IoT's own events, a password connection with no
//! authorizer, and 1,000 rapid reconnects of one client id. Each gets a clear refusal, the gateway
//! keeps serving, no session is left behind, and nothing is written.

use crate::common;
use common::{client, closes, connack, BareGateway};
use fleetguard_gateway::Gateway;
use rumqttc::{ConnectReturnCode, QoS};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads until the gateway closes the connection (true) or `secs` pass (false).
async fn closed_by_peer<S: AsyncReadExt + Unpin>(s: &mut S, secs: u64) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// A TLS connection to the gateway without a client certificate.
async fn tls_to(gw: &Gateway) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let der = fleetguard_domain::x509::pem_to_der(&gw.server_cert_pem).unwrap();
    roots
        .add(rustls::pki_types::CertificateDer::from(der))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn hostile_clients_are_refused_and_nothing_is_written() {
    // No custom authorizer: a connection without a certificate has no way in.
    let f = BareGateway::start("gateway hostile CA").await;
    let d = f.device().await;
    let BareGateway {
        stack, ca_id, gw, ..
    } = f;
    let tables = [
        stack.tables.registry.clone(),
        stack.tables.records.clone(),
        stack.tables.audit.clone(),
    ];
    let mut before = Vec::new();
    for t in &tables {
        before.push(stack.count(t).await);
    }
    // The device's way in: the validated domain.
    let port = gw.devices_addr().port();
    let cert = Some((d.cert_pem.as_str(), d.key_pem.as_str()));

    // Not TLS at all: the handshake fails and the connection closes.
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_peer(&mut tcp, 10).await, "plain bytes: closed");
    // TLS, then garbage where CONNECT belongs: closed.
    let mut tls = tls_to(&gw).await;
    tls.write_all(&[0xff; 64]).await.unwrap();
    tls.flush().await.unwrap();
    assert!(
        closed_by_peer(&mut tls, 10).await,
        "garbage before CONNECT: closed"
    );
    // TLS, then nothing: closed when the CONNECT wait runs out (10 s; checked at the end).
    let mut idle = tls_to(&gw).await;
    let idle = tokio::spawn(async move { closed_by_peer(&mut idle, 30).await });

    // A password connection with the SDK's suffix, and no authorizer configured: refused.
    let (_c, mut ev) = client(
        gw.addr.port(),
        &gw.server_cert_pem,
        d.serial.as_str(),
        None,
        Some(("user?SDK=Rust&Version=1.0", "secret")),
    );
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::NotAuthorized));

    // A publish over 128 KB: the codec refuses it, the connection closes.
    let mut o = rumqttc::MqttOptions::new(d.serial.as_str(), "localhost", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
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
    let (c, mut ev) = rumqttc::AsyncClient::new(o, 16);
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    let topic = format!("P/{}/telemetry", d.serial);
    c.publish(&topic, QoS::AtLeastOnce, false, vec![b'x'; 200 * 1024])
        .await
        .unwrap();
    assert!(closes(&mut ev, 10).await, "oversize packet: closed");

    // Publishing AWS IoT's own events (a forged registration or presence): disconnected.
    tokio::time::sleep(Duration::from_millis(1100)).await; // the CONNECT quota
    let (c, mut ev) = client(port, &gw.server_cert_pem, d.serial.as_str(), cert, None);
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    c.publish(
        format!("$aws/events/certificates/registered/{ca_id}"),
        QoS::AtLeastOnce,
        false,
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    assert!(closes(&mut ev, 10).await, "forged AWS event: closed");

    // 1,000 rapid reconnects of one client id, 8 at a time: AWS's quota (one CONNECT per second
    // per client id) admits about one a second and refuses the rest with CONNACK 3.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (attempts, pem, serial) = (
            attempts.clone(),
            gw.server_cert_pem.clone(),
            d.serial.clone(),
        );
        let (cert_pem, key_pem) = (d.cert_pem.clone(), d.key_pem.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut throttled) = (0, 0);
            while attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 1000 {
                let (_c, mut ev) = client(
                    port,
                    &pem,
                    serial.as_str(),
                    Some((&cert_pem, &key_pem)),
                    None,
                );
                match connack(&mut ev).await {
                    Ok(ConnectReturnCode::Success) => ok += 1,
                    Ok(ConnectReturnCode::ServiceUnavailable) => throttled += 1,
                    other => panic!("reconnect: {other:?}"),
                }
            }
            (ok, throttled)
        }));
    }
    let (mut ok, mut throttled) = (0, 0);
    for t in tasks {
        let (o, th) = t.await.unwrap();
        ok += o;
        throttled += th;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("1,000 reconnects in {secs:.1} s: {ok} admitted, {throttled} throttled");
    assert_eq!(ok + throttled, 1000);
    assert!(
        ok >= 1 && (ok as f64) <= secs + 2.0,
        "{ok} admitted in {secs:.1} s"
    );

    // Still serving; no session left behind once the clients are gone; nothing written.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_c, mut ev) = client(port, &gw.server_cert_pem, d.serial.as_str(), cert, None);
    assert_eq!(connack(&mut ev).await, Ok(ConnectReturnCode::Success));
    drop((_c, ev));
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = gw.router.sessions();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "no session left behind");
    assert!(idle.await.unwrap(), "no CONNECT: closed");
    for (t, n) in tables.iter().zip(before) {
        assert_eq!(stack.count(t).await, n, "{t} unchanged");
    }
}
