//! The custom authorizer with the real DynamoDB identity store against the emulator, end to end with
//! delete-record: what the authorizer admits is exactly what delete-record then accepts.

use fleetguard_aws::identities::DynamoIdentityStore;
use fleetguard_domain::authorization::authorizer::{
    authorize, secret::DeviceSecret, validate_response, Authorizer, Identity, IdentityStore,
};
use fleetguard_domain::model::{DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::ports::Registry;
use fleetguard_tests::{delete_event, mqtt_connect as mqtt, unique, Stack, TestIdp};
use time::OffsetDateTime;

const ISSUER: &str = "https://login.example.test";
const AUDIENCE: &str = "fleetguard";

fn idp() -> TestIdp {
    TestIdp::new(ISSUER, AUDIENCE)
}

#[tokio::test]
async fn operator_token_admits_exactly_the_granted_serials_and_delete_record_agrees() {
    let stack = Stack::new().await;
    let idp = idp();
    let store = stack.services.identities();
    let granted = Serial::parse(&unique("SN")).unwrap();
    let other = Serial::parse(&unique("SN")).unwrap();
    let sub = unique("alice");
    let identity = Identity::operator(ISSUER, &sub, "alice", vec![granted.clone()]);
    store.put_identity(&identity).await.unwrap();
    // serde_dynamo round trip of the tagged, flattened identity.
    assert_eq!(
        store.get_identity(&identity.principal_id).await.unwrap(),
        Some(identity.clone())
    );

    let pid = identity.principal_id.as_str().to_owned();
    let token = idp.token(&sub, 3600);
    let d = authorize(
        &idp.authorizer(),
        &store,
        mqtt("alice?SDK=Java&Version=1.2", token.as_bytes(), &pid),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert!(d.response.is_authenticated, "{:?}", d.reason);
    assert_eq!(d.response.principal_id, pid);
    validate_response(&d.response).unwrap();
    let docs: Vec<&str> = d
        .response
        .policy_documents
        .iter()
        .map(String::as_str)
        .collect();
    let ctx = iot_policy::ConnectionContext {
        client_id: Some(pid.clone()),
        ..Default::default()
    }
    .in_account("us-east-1", "123456789012");
    let allowed = |topic: &str| {
        let req = iot_policy::Request::for_target("iot:Publish", topic, &ctx).unwrap();
        iot_policy::evaluate(&docs, &req, &ctx)
            .unwrap()
            .is_allowed()
    };
    assert!(allowed(&format!("P/{granted}/deleterecords/rec-1")));
    assert!(!allowed(&format!("P/{other}/deleterecords/rec-1")));

    // The same principal id through the IoT rule: delete-record reads the same registry item.
    stack.seed_record(&granted, "rec-1").await;
    stack.seed_record(&other, "rec-1").await;
    let svc = stack.delete_service();
    let ok = svc
        .handle(delete_event(
            granted.as_str(),
            "rec-1",
            &pid,
            1_763_900_000_000,
        ))
        .await
        .unwrap();
    assert_eq!(
        (ok.outcome, ok.reason),
        (Outcome::Accepted, Reason::Deleted)
    );
    let no = svc
        .handle(delete_event(
            other.as_str(),
            "rec-1",
            &pid,
            1_763_900_000_001,
        ))
        .await
        .unwrap();
    assert_eq!(no.reason, Reason::SerialNotGranted);

    // Expired token: denied, fail closed, response still within AWS's limits.
    let expired = idp.token(&sub, -60);
    let d = authorize(
        &idp.authorizer(),
        &store,
        mqtt("alice", expired.as_bytes(), &pid),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert!(!d.response.is_authenticated);
    validate_response(&d.response).unwrap();
}

/// A password device made usable the README's way (imported, then `set-password --generate
/// --activate`): its serial, its identity and its secret.
async fn password_device(
    stack: &Stack,
    store: &DynamoIdentityStore,
) -> (Serial, Identity, DeviceSecret) {
    let serial = Serial::parse(&unique("SN")).unwrap();
    let registry = stack.registry();
    registry.import_serial(&serial).await.unwrap();
    let secret = DeviceSecret::generate().unwrap();
    let set = fleetguard_domain::authorization::password_devices::set_password(
        &registry,
        store,
        &stack.audit(),
        &serial,
        secret.digest(&serial),
        true,
        "test",
    )
    .await
    .unwrap();
    assert_eq!(
        set,
        fleetguard_domain::authorization::password_devices::PasswordResult::Active
    );
    let principal = fleetguard_domain::authorization::authorizer::device_principal(&serial);
    let identity = store.get_identity(&principal).await.unwrap().unwrap();
    (serial, identity, secret)
}

#[tokio::test]
async fn a_password_device_gets_in_every_time_while_guesses_arrive_and_revocation_reaches_it() {
    let stack = Stack::new().await;
    let idp = idp();
    let engine = idp.authorizer();
    let store = stack.services.identities();
    let (serial, identity, secret) = password_device(&stack, &store).await;
    let registry = stack.registry();
    let start = OffsetDateTime::now_utc();
    let user = format!("{serial}?SDK=Python&Version=1.0");
    let right = || mqtt(&user, secret.expose().as_bytes(), serial.as_str());

    // 100 wrong guesses, one a second, with the device's own connections and refreshes between them.
    let mut signals = Vec::new();
    for i in 0..100 {
        let now = start + time::Duration::seconds(i);
        let bad = authorize(&engine, &store, mqtt(&user, b"wrong", serial.as_str()), now).await;
        assert_eq!(bad.reason.as_str(), "bad_password");
        signals.extend(bad.signal_entry());
        let ok = authorize(&engine, &store, right(), now).await;
        assert!(ok.response.is_authenticated, "attempt {i}: {:?}", ok.reason);
        validate_response(&ok.response).unwrap();
    }
    // Counted in DynamoDB; one burst signal for the window, naming the serial.
    let stored = store
        .get_identity(&identity.principal_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.failed_attempts, 100);
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].reason.as_str(), "password_burst");
    assert_eq!(signals[0].serial.as_deref(), Some(serial.as_str()));

    // Revoking the device in the registry reaches its password identity (one read decides).
    registry
        .transition(&serial, &[DeviceStatus::Active], DeviceStatus::Revoked)
        .await
        .unwrap();
    let revoked = authorize(&engine, &store, right(), start).await;
    assert!(!revoked.response.is_authenticated);
    assert_eq!(revoked.reason.as_str(), "device_not_active");
}

/// A one-route HTTP server on loopback answering every request with `status` and `body`, counting
/// requests: hyper's server, as the gateway's data plane.
async fn serve(
    status: u16,
    body: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let body = Bytes::from(body);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (counter, body) = (counter.clone(), body.clone());
            let service = hyper::service::service_fn(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                let response = hyper::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .header("connection", "close")
                    .body(Full::new(body.clone()));
                async move { response }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), service),
            );
        }
    });
    (url, hits)
}

#[tokio::test]
async fn jwks_is_fetched_over_http_once_per_cold_start() {
    use fleetguard_aws::{http::HttpClient, jwks::HttpJwks};
    use fleetguard_domain::authorization::authorizer::{KeyRing, KeySource};
    use std::sync::Arc;
    use std::time::Duration;

    let stack = Stack::new().await;
    let idp = idp();
    let (url, hits) = serve(200, idp.jwks.clone()).await;
    let client = HttpClient::new().unwrap();
    let source: Arc<dyn KeySource> =
        Arc::new(HttpJwks::new(client.clone(), &url, Duration::from_secs(2)).unwrap());
    let now = OffsetDateTime::now_utc();
    let ring = KeyRing::fetched(source, time::Duration::minutes(10), now)
        .await
        .unwrap();
    let engine = Authorizer::with_keys(idp.config(), ring).unwrap();

    let store = stack.services.identities();
    let sub = unique("bob");
    let serial = Serial::parse(&unique("SN")).unwrap();
    store
        .put_identity(&Identity::operator(ISSUER, &sub, "bob", vec![serial]))
        .await
        .unwrap();
    let token = idp.token(&sub, 3600);
    let principal = fleetguard_domain::authorization::authorizer::operator_principal(ISSUER, &sub);
    for _ in 0..5 {
        let d = authorize(
            &engine,
            &store,
            mqtt("bob", token.as_bytes(), principal.as_str()),
            OffsetDateTime::now_utc(),
        )
        .await;
        assert!(d.is_authenticated(), "{d:?}");
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one fetch, reused"
    );

    // An IdP answering an error, a body that is not a JWKS, or an oversized body: no authorizer.
    for (status, body) in [
        (500, "{}".to_owned()),
        (200, "<html>".to_owned()),
        (
            200,
            format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(100_000)),
        ),
    ] {
        let (url, _) = serve(status, body).await;
        let source: Arc<dyn KeySource> =
            Arc::new(HttpJwks::new(client.clone(), &url, Duration::from_secs(2)).unwrap());
        assert!(KeyRing::fetched(source, time::Duration::minutes(10), now)
            .await
            .is_err());
    }
    // Plain http is refused anywhere but loopback.
    assert!(HttpJwks::new(
        client.clone(),
        "http://idp.example.test/jwks",
        Duration::from_secs(2)
    )
    .is_err());
    assert!(HttpJwks::new(client, "ftp://127.0.0.1/jwks", Duration::from_secs(2)).is_err());
}

#[tokio::test]
async fn twenty_concurrent_wrong_passwords_are_all_counted_and_lock_nothing() {
    let stack = Stack::new().await;
    let idp = idp();
    let engine = std::sync::Arc::new(idp.authorizer());
    let store = std::sync::Arc::new(DynamoIdentityStore::new(
        stack.ddb.clone(),
        &stack.tables.registry,
    ));
    let (serial, identity, secret) = password_device(&stack, &store).await;
    let now = OffsetDateTime::now_utc();
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let (engine, store, serial) = (engine.clone(), store.clone(), serial.clone());
            tokio::spawn(async move {
                let guess = format!("guess {i}");
                authorize(
                    &engine,
                    &*store,
                    mqtt(serial.as_str(), guess.as_bytes(), serial.as_str()),
                    now,
                )
                .await
            })
        })
        .collect();
    let mut bursts = 0;
    for g in guesses {
        let d = g.await.unwrap();
        assert_eq!(d.reason.as_str(), "bad_password");
        bursts += usize::from(d.signal_entry().is_some());
    }
    // DynamoDB's conditional updates count every one of them, and the 20th is the one signal.
    let stored = store
        .get_identity(&identity.principal_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.failed_attempts, 20);
    assert_eq!(bursts, 1);
    // The right secret gets in at once: nothing was locked.
    let d = authorize(
        &engine,
        &*store,
        mqtt(serial.as_str(), secret.expose().as_bytes(), serial.as_str()),
        now,
    )
    .await;
    assert!(d.response.is_authenticated, "{:?}", d.reason);
}
