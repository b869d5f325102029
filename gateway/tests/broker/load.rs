//! The gateway's load run (`scripts/load.sh gateway`; not part of the suite): N devices (200)
//! connect at once over mutual TLS through the handshake validator, each subscribes to its replies,
//! deletes a record and waits for `/accepted`, through the template's rule and delete-record under
//! `cargo lambda watch --concurrency`. Every outcome is checked; connects per second and the
//! publish→reply latency are printed, never asserted: the emulator (one DynamoDB request at a time)
//! and the local Lambda runtime bound them, not the gateway.

use crate::common;
use common::{client, incoming, provisioned};
use fleetguard_domain::model::RecordId;
use fleetguard_tests::{Stack, TestCa};
use rumqttc::{ConnectReturnCode, Packet, QoS};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load run: scripts/load.sh gateway"]
async fn gateway_load_run() {
    fleetguard_aws::telemetry::init();
    let n = env_usize("FLEETGUARD_GATEWAY_LOAD_DEVICES", 200);
    let instances = env_usize("FLEETGUARD_LOAD_INSTANCES", 8);
    let stack = Stack::new().await;
    let ca = TestCa::new("gateway load CA");
    let ca_id = stack.register_ca(&ca).await;
    let local = fleetguard_tests::gateway::start(
        &stack,
        fleetguard_tests::gateway::Options {
            instances,
            env: &[("RUST_LOG", "warn")],
            ..fleetguard_tests::gateway::Options::new(&ca_id)
        },
    )
    .await
    .unwrap();
    let (gw, lambda) = (&local.gw, &local.lambda);
    // Every instance started before the run (a cold start is not what is measured).
    for f in ["handshake-validator", "delete-record"] {
        let warm: Vec<_> = (0..instances)
            .map(|_| async move { lambda.invoke(f, &serde_json::json!({})).await })
            .collect();
        futures_util::future::join_all(warm).await;
    }
    println!("provisioning {n} devices (JITR use case) and a record each...");
    let mut devices = Vec::new();
    for _ in 0..n {
        let d = provisioned(&stack, &ca, &ca_id).await;
        stack.seed_record(&d.serial, "r1").await;
        devices.push(d);
    }

    println!("{n} devices connect at once, delete a record each, wait for /accepted");
    let start = Instant::now();
    let (port, server_ca) = (
        gw.devices_addr().port(),
        Arc::new(gw.server_cert_pem.clone()),
    );
    let tasks: Vec<_> = devices
        .iter()
        .map(|d| {
            let (serial, cert, key, server_ca) = (
                d.serial.to_string(),
                d.cert_pem.clone(),
                d.key_pem.clone(),
                server_ca.clone(),
            );
            tokio::spawn(async move {
                let (c, mut ev) = client(port, &server_ca, &serial, Some((&cert, &key)), None);
                let code = match incoming(&mut ev, 120).await {
                    Ok(Packet::ConnAck(a)) => Ok(a.code),
                    other => Err(format!("{other:?}")),
                };
                let connected_at = start.elapsed();
                if code != Ok(ConnectReturnCode::Success) {
                    return Err(format!("{serial}: connect {code:?}"));
                }
                c.subscribe(
                    format!("P/{serial}/deleterecords/+/accepted"),
                    QoS::AtLeastOnce,
                )
                .await
                .map_err(|e| e.to_string())?;
                match incoming(&mut ev, 60).await {
                    Ok(Packet::SubAck(_)) => {}
                    other => return Err(format!("{serial}: SUBACK {other:?}")),
                }
                let sent = Instant::now();
                c.publish(
                    format!("P/{serial}/deleterecords/r1"),
                    QoS::AtLeastOnce,
                    false,
                    br#"{"request_id": "load"}"#.to_vec(),
                )
                .await
                .map_err(|e| e.to_string())?;
                loop {
                    match incoming(&mut ev, 300).await {
                        Ok(Packet::Publish(p)) => {
                            let body: serde_json::Value =
                                serde_json::from_slice(&p.payload).unwrap_or_default();
                            if body["reason"] != "deleted" {
                                return Err(format!("{serial}: {body}"));
                            }
                            return Ok((connected_at, sent.elapsed()));
                        }
                        Ok(_) => {}
                        Err(e) => return Err(format!("{serial}: no reply: {e}")),
                    }
                }
            })
        })
        .collect();
    let mut connected = Vec::new();
    let mut latencies = Vec::new();
    for t in tasks {
        let (c, l) = t.await.unwrap().unwrap();
        connected.push(c);
        latencies.push(l);
    }
    let total = start.elapsed();
    // Every record soft-deleted by its own device's certificate.
    let r1 = RecordId::parse("r1").unwrap();
    for d in &devices {
        let rec = stack.record(&d.serial, &r1).await.unwrap();
        assert_eq!(
            rec.deleted_by.as_deref(),
            Some(fleetguard_tests::certificate_id_of(&d.cert_pem).as_str())
        );
    }
    latencies.sort();
    let last_connect = connected.iter().max().unwrap().as_secs_f64();
    println!(
        "{n} devices: all {n} connected, all {n} /accepted, every record deleted by its own certificate"
    );
    println!(
        "connects: {n} in {last_connect:.2} s = {:.0}/s (handshake validator under cargo lambda, {instances} instances)",
        n as f64 / last_connect
    );
    println!(
        "publish -> /accepted: p50 {} ms, p99 {} ms, max {} ms; whole run {:.1} s",
        percentile(&latencies, 0.5).as_millis(),
        percentile(&latencies, 0.99).as_millis(),
        latencies.last().unwrap().as_millis(),
        total.as_secs_f64()
    );
}
