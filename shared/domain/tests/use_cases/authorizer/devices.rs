//! Password devices: secrets, wrong ones counted, the burst signal, never a lockout.

use super::*;

#[tokio::test]
async fn device_password_gets_its_own_namespace() {
    let fx = fx();
    let principal = put_device(&fx, "SN1", "correct horse");
    for username in ["SN1", "SN1?SDK=Rust&Version=1.2.3", "SN1?"] {
        let d = run(&fx, mqtt_request(username, b"correct horse", Some("SN1"))).await;
        assert_eq!(d.reason, Reason::Authorized, "{username}");
        assert_eq!(d.response.principal_id, principal.as_str());
        assert_eq!(d.serial.as_deref(), Some("SN1"));
        assert_eq!(d.response.disconnect_after_in_seconds, 86_400);
        assert_eq!(d.response.refresh_after_in_seconds, 300);
    }
    // Without a client id in the event.
    let d = run(&fx, mqtt_request("SN1", b"correct horse", None)).await;
    assert_eq!(d.reason, Reason::Authorized);

    let docs = docs(&d);
    let me = ctx_for("SN1");
    assert!(allowed(&docs, &me, "iot:Connect", "SN1"));
    for topic in ["P/SN1/telemetry", "P/SN1/deleterecords/1", "P/SN1/a/b/c"] {
        assert!(allowed(&docs, &me, "iot:Publish", topic));
        assert!(allowed(&docs, &me, "iot:Receive", topic));
    }
    assert!(allowed(&docs, &me, "iot:Subscribe", "P/SN1/#"));
    for (action, target) in [
        ("iot:Connect", "SN2"),
        ("iot:Publish", "P/SN2/telemetry"),
        ("iot:Publish", "P/SN10/telemetry"),
        ("iot:Subscribe", "P/+/telemetry"),
        ("iot:Subscribe", "#"),
        ("iot:GetThingShadow", "SN1"),
    ] {
        assert!(!allowed(&docs, &me, action, target), "{action} {target}");
    }
    assert_lint_clean(&docs);
    let check = ScopeCheck::new(REGION, ACCOUNT, "P/{id}/")
        .with_context(ctx_for)
        .require_attachment(false);
    prove_scoped_to_identity(&docs, &check, "SN1", "SN2").expect("A != B");
    prove_scoped_to_identity(&docs, &check, "SN1", "SN10").expect("A != B (prefix)");
}

#[tokio::test]
async fn device_denials() {
    let fx = fx();
    put_device(&fx, "SN1", "pw1");
    let cases: Vec<(Value, Reason)> = vec![
        (
            mqtt_request("SN1", b"pw1", Some("SN2")),
            Reason::ClientIdMismatch,
        ),
        (
            mqtt_request("SN1", b"pw1", Some("SN1+")),
            Reason::WildcardInjection,
        ),
        (mqtt_request("SN2", b"pw1", None), Reason::UnknownIdentity),
        (mqtt_request("SN 1", b"pw1", None), Reason::InvalidSerial),
        (mqtt_request("SN.1", b"pw1", None), Reason::InvalidSerial),
        (
            mqtt_request(&"S".repeat(65), b"pw1", None),
            Reason::InvalidSerial,
        ),
        (
            mqtt_request("?SDK=x", b"pw1", None),
            Reason::MalformedRequest,
        ),
        (
            mqtt_request("SN1", &[b'x'; 1025], None),
            Reason::MalformedRequest,
        ),
        (
            json!({"protocolData": {"mqtt": {"username": "SN1", "password": "%%%not-base64"}}}),
            Reason::MalformedRequest,
        ),
        (
            json!({"protocolData": {"mqtt": {"username": "SN1"}}}),
            Reason::MalformedRequest,
        ),
        (json!({}), Reason::MalformedRequest),
        (json!([1, 2]), Reason::MalformedRequest),
        (json!({"token": 5}), Reason::MalformedRequest),
    ];
    for (raw, want) in cases {
        let d = run(&fx, raw.clone()).await;
        assert_deny(&d, want);
    }
    assert_eq!(fx.store.failures_counted.load(Ordering::SeqCst), 0);

    // Not active.
    for status in [
        DeviceStatus::Manufactured,
        DeviceStatus::Quarantined,
        DeviceStatus::Revoked,
    ] {
        let mut id = Identity::device(Serial::parse("SN3").expect("serial"), cheap_hash("pw3"));
        if let IdentityKind::Device { status: s, .. } = &mut id.kind {
            *s = status;
        }
        fx.store.put(id);
        let d = run(&fx, mqtt_request("SN3", b"pw3", None)).await;
        assert_deny(&d, Reason::DeviceNotActive);
    }
    // An operator record under a device principal: not a device.
    let mut odd = Identity::operator(ISSUER, "x", "x", vec![]);
    odd.principal_id = device_principal(&Serial::parse("SN4").expect("serial"));
    fx.store.put(odd);
    assert_deny(
        &run(&fx, mqtt_request("SN4", b"pw", None)).await,
        Reason::UnknownIdentity,
    );
    // A stored hash that is not argon2id.
    let mut weak = Identity::device(
        Serial::parse("SN5").expect("serial"),
        "$2b$10$abcdefghijklmnopqrstuu".to_owned(),
    );
    fx.store.put(weak.clone());
    assert_deny(
        &run(&fx, mqtt_request("SN5", b"pw", None)).await,
        Reason::InternalError,
    );
    weak.kind = IdentityKind::Device {
        serial: Serial::parse("SN5").expect("serial"),
        password_hash: cheap_hash("pw").replace("argon2id", "argon2i"),
        status: DeviceStatus::Active,
    };
    fx.store.put(weak);
    assert_deny(
        &run(&fx, mqtt_request("SN5", b"pw", None)).await,
        Reason::InternalError,
    );
}

#[tokio::test]
async fn identities_with_wildcards_are_denied() {
    let fx = fx();
    for bad in [
        "SN+",
        "#",
        "SN*",
        "${iot:ClientId}",
        "SN/1",
        "P/#",
        "SN?x",
        "$aws",
    ] {
        // As the username (the serial). `?` starts the SDK suffix, so `SN?x` is serial `SN`.
        let d = run(&fx, mqtt_request(bad, b"pw", None)).await;
        if bad == "SN?x" {
            assert_deny(&d, Reason::UnknownIdentity);
        } else {
            assert_deny(&d, Reason::WildcardInjection);
        }
        // As the client id of a valid device.
        let d = run(&fx, mqtt_request("SN1", b"pw", Some(bad))).await;
        assert_deny(&d, Reason::WildcardInjection);
        // As the token's subject.
        let d = run(&fx, token_request(&sign(&fx.key, &claims(bad, 3600)))).await;
        assert_deny(&d, Reason::WildcardInjection);
    }
    assert_eq!(fx.store.reads(), 1, "only `SN` reached the store");
    // The renderer refuses such names whatever their source.
    let scope = ArnScope::new(REGION, ACCOUNT).expect("scope");
    for bad in ["+", "#", "*", "${iot:ClientId}", "a/b", "", "a b"] {
        assert_eq!(
            render::operator_policy(&scope, bad, &[]),
            Err(Reason::WildcardInjection),
            "{bad:?}"
        );
    }
    assert!(ArnScope::new("*", ACCOUNT).is_err());
    assert!(ArnScope::new(REGION, "12345678901*").is_err());
}

#[tokio::test]
async fn the_right_secret_gets_in_however_many_wrong_ones_arrive() {
    let fx = fx();
    let secret = DeviceSecret::generate().expect("secret");
    let serial = Serial::parse("SN1").expect("serial");
    let principal = put_device_digest(&fx, &serial, &secret);
    let at = |secs: i64| NOW + Duration::seconds(secs);
    let mut bursts = 0;
    // 100 wrong guesses, one a second (AWS's per-client-id connect limit), the device's own
    // connections and refreshes in between: every right one is accepted.
    for i in 0..100 {
        let wrong = authorize(
            &fx.engine,
            &fx.store,
            mqtt_request("SN1", b"guess", None),
            at(i),
        )
        .await;
        assert_deny(&wrong, Reason::BadPassword);
        bursts += usize::from(wrong.signal_entry().is_some());
        let right = mqtt_request("SN1", secret.expose().as_bytes(), None);
        let d = authorize(&fx.engine, &fx.store, right, at(i)).await;
        assert_eq!(d.reason, Reason::Authorized, "attempt {i}");
        assert!(d.signal_entry().is_none());
    }
    // 100 s fit one 10-minute window: one signal, at the 20th wrong one.
    assert_eq!(bursts, 1);
    let counted = fx.store.get(&principal).expect("identity").failed_attempts;
    assert_eq!(counted, 100);
    // Right secrets write nothing: only the wrong ones were counted.
    assert_eq!(fx.store.failures_counted.load(Ordering::SeqCst), 100);
    // A new window, a new signal after 20 more.
    let later: Vec<Decision> = futures_join_all(
        (0..20).map(|_| run_at(&fx, mqtt_request("SN1", b"guess", None), at(1000))),
    )
    .await;
    let signals: Vec<_> = later.iter().filter_map(Decision::signal_entry).collect();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].reason, Reason::PasswordBurst);
    assert_eq!(signals[0].serial.as_deref(), Some("SN1"));
    let text = format!("{:?}", signals[0]);
    assert!(!text.contains(secret.expose()) && !text.contains("guess"));
}

#[tokio::test]
async fn concurrent_guesses_are_all_counted_and_never_hold_the_device_out() {
    let fx = fx();
    let secret = DeviceSecret::generate().expect("secret");
    let serial = Serial::parse("SN1").expect("serial");
    let principal = put_device_digest(&fx, &serial, &secret);
    // Every guess reads before any counts: all 20 see the same state.
    *fx.store.delay.lock().expect("lock") = Some(std::time::Duration::from_millis(5));
    let right = mqtt_request("SN1", secret.expose().as_bytes(), None);
    let requests = (0..21).map(|i| {
        if i == 10 {
            right.clone()
        } else {
            mqtt_request("SN1", b"wrong", None)
        }
    });
    let decisions = futures_join_all(requests.map(|r| run(&fx, r))).await;
    assert_eq!(decisions[10].reason, Reason::Authorized);
    assert_eq!(
        decisions
            .iter()
            .filter(|d| d.reason == Reason::BadPassword)
            .count(),
        20
    );
    assert_eq!(
        fx.store.get(&principal).expect("identity").failed_attempts,
        20
    );
    assert_eq!(
        decisions
            .iter()
            .filter(|d| d.signal_entry().is_some())
            .count(),
        1
    );
}

#[tokio::test]
async fn a_failing_count_leaves_a_wrong_secret_refused_and_a_right_one_accepted() {
    let fx = fx();
    let secret = DeviceSecret::generate().expect("secret");
    put_device_digest(&fx, &Serial::parse("SN1").expect("serial"), &secret);
    // Only the counting write fails: reads go on.
    let failing = FailingCounts(&fx.store);
    let d = authorize(
        &fx.engine,
        &failing,
        mqtt_request("SN1", b"wrong", None),
        NOW,
    )
    .await;
    assert_deny(&d, Reason::BadPassword);
    assert!(d
        .detail
        .as_deref()
        .is_some_and(|t| t.starts_with("count_failure")));
    let right = mqtt_request("SN1", secret.expose().as_bytes(), None);
    assert_eq!(
        authorize(&fx.engine, &failing, right, NOW).await.reason,
        Reason::Authorized
    );
}

/// The in-memory store whose failure counting is down.
struct FailingCounts<'a>(&'a InMemoryIdentityStore);

impl IdentityStore for FailingCounts<'_> {
    async fn get_identity(&self, p: &PrincipalId) -> fleetguard_domain::Result<Option<Identity>> {
        self.0.get_identity(p).await
    }
    async fn count_failure(
        &self,
        _: &PrincipalId,
        _: &fleetguard_domain::model::Timestamp,
        _: &fleetguard_domain::model::Timestamp,
    ) -> fleetguard_domain::Result<Option<u32>> {
        Err(fleetguard_domain::Error::Corrupt("store down".into()))
    }
    async fn put_identity(&self, i: &Identity) -> fleetguard_domain::Result<()> {
        self.0.put_identity(i).await
    }
    async fn put_identity_unless_inactive(&self, i: &Identity) -> fleetguard_domain::Result<bool> {
        self.0.put_identity_unless_inactive(i).await
    }
    async fn put_device_identity(
        &self,
        i: &Identity,
        s: DeviceStatus,
    ) -> fleetguard_domain::Result<bool> {
        self.0.put_device_identity(i, s).await
    }
    async fn get_certificate(
        &self,
        id: &fleetguard_domain::model::CertificateId,
    ) -> fleetguard_domain::Result<Option<fleetguard_domain::model::CertificateRecord>> {
        self.0.get_certificate(id).await
    }
}

#[tokio::test]
async fn a_legacy_argon2_hash_still_verifies() {
    let fx = fx();
    put_device(&fx, "SN1", "an old password");
    assert_eq!(
        run(&fx, mqtt_request("SN1", b"an old password", None))
            .await
            .reason,
        Reason::Authorized
    );
    assert_deny(
        &run(&fx, mqtt_request("SN1", b"another", None)).await,
        Reason::BadPassword,
    );
}

/// Polls every future to completion concurrently on this task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut handles = Vec::new();
    for f in futures {
        handles.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, h) in handles.iter_mut().enumerate() {
            if out[i].is_none() {
                match h.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
