//! Rollback: the deletes of a compromised principal restored, exactly those, in the right window.

use super::*;

#[tokio::test]
async fn rollback_restores_exactly_the_principals_deletes_since_t() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let s = &f.stack;
    let now = OffsetDateTime::now_utc();
    let before = now - time::Duration::hours(3);
    let after = now - time::Duration::hours(1);
    let since = now - time::Duration::hours(2);
    let old = s.seed_record(serial, "old").await;
    let recent = s.seed_record(serial, "recent").await;
    let by_operator = s.seed_record(serial, "by-operator").await;
    let svc = s.delete_service();
    svc.handle(delete_event(serial.as_str(), "old", cert, ms(before)))
        .await
        .unwrap();
    svc.handle(delete_event(serial.as_str(), "recent", cert, ms(after)))
        .await
        .unwrap();
    let op = format!("op{}", "ef".repeat(20));
    s.put_operator(&op, true, &[serial]).await;
    svc.handle(delete_event(serial.as_str(), "by-operator", &op, ms(after)))
        .await
        .unwrap();

    let mut cmd = command("revoke", serial);
    cmd["rollback"] = true.into();
    cmd["compromised_since"] = fleetguard_domain::model::rfc3339(since).into();
    let reports = f.stack.revoker().handle(cmd.clone(), now).await.unwrap();
    assert_eq!(reports[0].restored, 1);
    assert!(
        !s.record(serial, &recent).await.unwrap().is_deleted(),
        "deleted by the principal after T: restored"
    );
    assert!(
        s.record(serial, &old).await.unwrap().is_deleted(),
        "before T: left alone"
    );
    assert!(
        s.record(serial, &by_operator).await.unwrap().is_deleted(),
        "another principal's delete: left alone"
    );
    // Replay restores nothing more.
    let again = f.stack.revoker().handle(cmd, now).await.unwrap();
    assert_eq!(again[0].restored, 0);
}

#[tokio::test]
async fn a_released_false_alarm_does_not_widen_a_later_rollback() {
    let f = Fleet::new().await;
    let (serial, cert) = &f.a;
    let s = &f.stack;
    let r = s.revoker();
    let tamper = || {
        serde_json::json!({"trigger": "tamper", "serial": serial.as_str(), "principal": cert,
            "received_at": now_ms()})
    };
    let first = s.seed_record(serial, "january").await;
    let second = s.seed_record(serial, "june").await;
    let svc = s.delete_service();
    // A legitimate delete, then a false alarm: quarantined, looked at, released.
    svc.handle(delete_event(serial.as_str(), "january", cert, now_ms()))
        .await
        .unwrap();
    let q = r.handle(tamper(), OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(q[0].reason, Reason::Quarantined);
    let rel = r
        .handle(command("release", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(rel[0].reason, Reason::Released);
    // Later the real compromise: a delete, a signal, a revoke with the default window.
    svc.handle(delete_event(serial.as_str(), "june", cert, now_ms()))
        .await
        .unwrap();
    r.handle(tamper(), OffsetDateTime::now_utc()).await.unwrap();
    let mut cmd = command("revoke", serial);
    cmd["rollback"] = true.into();
    let reports = r.handle(cmd, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(
        (reports[0].restored, reports[0].rollback),
        (1, Some(Reason::Restored))
    );
    assert!(!s.record(serial, &second).await.unwrap().is_deleted());
    assert!(
        s.record(serial, &first).await.unwrap().is_deleted(),
        "the delete before the released false alarm stays"
    );
}

/// Rollback of N deletes by one principal (N = `FLEETGUARD_ROLLBACK_N`, default 10,000): the time and
/// the DynamoDB calls, printed for the README's performance table (never asserted: against moto this
/// measures moto). `scripts/bench.sh` runs it:
/// `cargo test -p fleetguard-tests --test revocation -- --ignored --nocapture rollback_of_many`.
#[tokio::test]
#[ignore]
async fn rollback_of_many_deletes_by_one_principal() {
    use aws_sdk_dynamodb::types::{AttributeValue as V, PutRequest, WriteRequest};
    let n: usize = std::env::var("FLEETGUARD_ROLLBACK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let s = fleetguard_tests::Stack::new().await;
    let serial = Serial::parse(&fleetguard_tests::unique("PW")).unwrap();
    let registry = s.registry();
    registry.import_serial(&serial).await.unwrap();
    registry
        .transition(&serial, &[DeviceStatus::Manufactured], DeviceStatus::Active)
        .await
        .unwrap();
    let principal =
        fleetguard_domain::authorization::authorizer::device_principal(&serial).to_string();
    let at = fleetguard_domain::model::now_rfc3339();
    let records: Vec<WriteRequest> = (0..n)
        .map(|i| {
            let item = [
                ("serial", V::S(serial.to_string())),
                ("record_id", V::S(format!("r{i:06}"))),
                ("version", V::N("2".into())),
                ("deleted_at", V::S(at.clone())),
                ("deleted_by", V::S(principal.clone())),
                ("delete_request", V::S(format!("k{i}"))),
            ];
            let put = PutRequest::builder()
                .set_item(Some(
                    item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                ))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in records.chunks(25) {
        s.ddb
            .batch_write_item()
            .request_items(&s.tables.records, chunk.to_vec())
            .send()
            .await
            .unwrap();
    }
    let before = s.emulator.calls_matching(&s.prefix);
    let t = std::time::Instant::now();
    let report = s
        .revoker()
        .handle(
            serde_json::json!({"action": "revoke", "serial": serial.as_str(), "rollback": true,
                "compromised_since": "2020-01-01T00:00:00Z", "actor": "bench"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let elapsed = t.elapsed();
    let calls = fleetguard_tests::call_diff(&before, &s.emulator.calls_matching(&s.prefix));
    assert_eq!(report[0].restored, n);
    println!("rollback of {n} deletes by one principal: {elapsed:.1?}; calls {calls:?}");
}
