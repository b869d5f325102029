//! The expiry watch over a large registry (ignored by default: `scripts/load.sh expiry`, or
//! `cargo test -p fleetguard-tests --test expiry_scale -- --ignored --nocapture`).
//! `FLEETGUARD_EXPIRY_N` devices (default 100,000) are written with certificate expiries spread over
//! two years; the watch's query (the sparse `by_expiry` index, one Query per month of the window)
//! must find exactly those inside 30 days. Prints the time, the items read and the read capacity
//! DynamoDB would charge (the emulator does not count it: estimated from the items by DynamoDB's
//! item-size rules), beside what a Scan of the registry would cost.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use fleetguard_domain::lifecycle::expiry;
use fleetguard_domain::model::{CertificateId, Device, DeviceStatus, Enrollment, Serial};
use fleetguard_tests::Stack;
use std::collections::HashMap;
use std::time::Instant;
use time::{Duration, OffsetDateTime};

/// DynamoDB's size of an item: attribute names plus values (strings and binary by length, numbers
/// about one byte per two digits plus one, booleans and nulls one byte, lists and maps three bytes
/// plus one per element) (developer guide, "Item sizes and formats").
fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| k.len() + value(v) + 1).sum::<usize>()
            }
            AttributeValue::L(l) => 3 + l.iter().map(|v| value(v) + 1).sum::<usize>(),
            AttributeValue::B(b) => b.as_ref().len(),
            _ => 8,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// Read capacity of an eventually consistent read of `bytes`: 0.5 per 4 KB started.
fn rcu(bytes: usize) -> f64 {
    bytes.div_ceil(4096) as f64 * 0.5
}

#[tokio::test]
#[ignore = "a scale run: scripts/load.sh expiry"]
async fn the_expiry_watch_over_a_large_registry() {
    let n: usize = std::env::var("FLEETGUARD_EXPIRY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let stack = Stack::new().await;
    let now = OffsetDateTime::now_utc();
    let window = Duration::days(30);
    let started = Instant::now();
    let mut inside = 0usize;
    let mut table_bytes = 0usize;
    let mut batch = Vec::new();
    for i in 0..n {
        let serial = Serial::parse(&format!("EXP{i:07}")).unwrap();
        let mut d = Device::manufactured(
            serial.clone(),
            Enrollment::default(),
            fleetguard_domain::model::Timestamp::at(now),
        );
        d.status = DeviceStatus::Active;
        d.certificate_id = Some(CertificateId::of_der(serial.as_str().as_bytes()));
        d.certificate_key_sha256 = Some(CertificateId::of_der(&[i as u8]).to_string());
        // Spread over two years, a few hours apart.
        let expires = now + Duration::minutes((i as i64 * 730 * 24 * 60) / n as i64 + 1);
        if expires <= now + window {
            inside += 1;
        }
        d.set_certificate_not_after(&fleetguard_domain::model::Timestamp::at(expires));
        let item = fleetguard_aws::schema::to_item(&d, fleetguard_aws::schema::device_key(&serial))
            .unwrap();
        table_bytes += item_size(&item);
        batch.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build(),
        );
        if batch.len() == 25 || i == n - 1 {
            let mut pending = std::mem::take(&mut batch);
            while !pending.is_empty() {
                let out = stack
                    .ddb
                    .batch_write_item()
                    .request_items(&stack.tables.registry, pending)
                    .send()
                    .await
                    .expect("batch write");
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&stack.tables.registry))
                    .unwrap_or_default();
            }
        }
    }
    println!(
        "seeded {n} devices in {:.1} s ({:.1} MB of items)",
        started.elapsed().as_secs_f64(),
        table_bytes as f64 / 1e6
    );

    // As the certificate-watch function runs it, under its role.
    let watch = stack.function("certificate-watch");
    let (rotations, iot) = (watch.rotations(), watch.iot());
    let t = Instant::now();
    let report = expiry::find(&rotations, &iot, now, 30, 90).await.unwrap();
    let took = t.elapsed();
    assert_eq!(
        report.devices.len(),
        inside,
        "exactly the devices inside the window"
    );
    // What the query read: the matching items (projection ALL), as DynamoDB sizes them.
    let (found, _) = fleetguard_domain::ports::Rotations::expiring(
        &rotations,
        &fleetguard_domain::model::Timestamp::at(now),
        &fleetguard_domain::model::Timestamp::at(now + window),
    )
    .await
    .unwrap();
    let read_bytes: usize = found
        .iter()
        .map(|d| {
            item_size(
                &fleetguard_aws::schema::to_item(d, fleetguard_aws::schema::device_key(&d.serial))
                    .unwrap(),
            )
        })
        .sum();
    println!(
        "expiry watch over {n} devices: {} inside 30 days, found in {:.2} s; read {:.2} MB = {:.1} RCU \
         (a Scan of the registry: {:.1} RCU)",
        report.devices.len(),
        took.as_secs_f64(),
        read_bytes as f64 / 1e6,
        rcu(read_bytes),
        rcu(table_bytes)
    );
}
