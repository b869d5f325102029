//! The pieces: requests, responses, the renderer, JWKS keys and their refresh.

use super::*;

#[test]
fn principal_ids() {
    let op = operator_principal(ISSUER, "alice");
    assert!(op.as_str().starts_with("op") && op.as_str().len() == 42);
    assert_eq!(op, operator_principal(ISSUER, "alice"));
    assert_ne!(op, operator_principal("https://other/", "alice"));
    // The separator keeps (iss, sub) pairs apart.
    assert_ne!(operator_principal("ab", "c"), operator_principal("a", "bc"));
    let dv = device_principal(&Serial::parse("SN1").expect("serial"));
    assert!(dv.as_str().starts_with("dv") && dv.as_str().len() == 42);
    assert_eq!(op.kind(), identity::IdentityKindTag::Operator);
    assert_eq!(dv.kind(), identity::IdentityKindTag::Device);
    // One grammar: only minted ids parse (the authorizer's, the rules' principal(), the registry's).
    for bad in ["", "a-b", "a b", "+", "é", &"a".repeat(128), "opnobody"] {
        assert!(PrincipalId::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(PrincipalId::parse(op.as_str()), Ok(op.clone()));
}

#[test]
fn sdk_suffix_is_stripped() {
    assert_eq!(strip_sdk_suffix("SN1?SDK=Python&Version=1.11.3"), "SN1");
    assert_eq!(strip_sdk_suffix("SN1"), "SN1");
    assert_eq!(strip_sdk_suffix("?SDK=x"), "");
    assert_eq!(strip_sdk_suffix("a?b?c"), "a");
}

#[test]
fn reason_codes_are_snake_case_and_unique() {
    let mut seen = std::collections::HashSet::new();
    for r in Reason::ALL {
        let code = r.as_str();
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        assert!(seen.insert(code), "duplicate {code}");
        assert_eq!(serde_json::to_value(r).expect("json"), json!(code));
    }
    // Codes shared with fleetguard_domain::model::Reason keep the same text.
    assert_eq!(
        Reason::InternalError.as_str(),
        fleetguard_domain::model::Reason::InternalError.as_str()
    );
    assert_eq!(
        Reason::Timeout.as_str(),
        fleetguard_domain::model::Reason::Timeout.as_str()
    );
}

#[test]
fn jwks_loading() {
    let ec = ec_key("e1");
    assert_eq!(Jwks::from_json(&jwks_json(&[&ec])).expect("jwks").len(), 1);
    // Symmetric keys and keys without kid are skipped; nothing usable is an error.
    let text = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "h1", "alg": "HS256"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},
        {"kty": "weird"},
    ]})
    .to_string();
    assert!(Jwks::from_json(&text).is_err());
    let mut mixed: Value = serde_json::from_str(&text).expect("json");
    mixed["keys"]
        .as_array_mut()
        .expect("array")
        .push(serde_json::to_value(&ec.jwk).expect("jwk"));
    assert_eq!(Jwks::from_json(&mixed.to_string()).expect("jwks").len(), 1);
    // A key restricted to another algorithm or to encryption is skipped.
    let mut enc = serde_json::to_value(&ec.jwk).expect("jwk");
    enc["use"] = json!("enc");
    assert!(Jwks::from_json(&json!({"keys": [enc]}).to_string()).is_err());
    let mut other = serde_json::to_value(&ec.jwk).expect("jwk");
    other["alg"] = json!("ES384");
    assert!(Jwks::from_json(&json!({"keys": [other]}).to_string()).is_err());
    // Repeated kid, not a JWKS.
    let j = serde_json::to_value(&ec.jwk).expect("jwk");
    assert!(Jwks::from_json(&json!({"keys": [j.clone(), j]}).to_string()).is_err());
    assert!(Jwks::from_json("[]").is_err());
    assert!(Jwks::from_json("not json").is_err());
}

#[test]
fn config_is_validated() {
    assert!(AuthorizerConfig::new(REGION, ACCOUNT, "", &[AUDIENCE]).is_err());
    assert!(AuthorizerConfig::new(REGION, ACCOUNT, ISSUER, &[]).is_err());
    assert!(AuthorizerConfig::new("us-east-1", "acct", ISSUER, &[AUDIENCE]).is_err());
    let mut c = config();
    c.refresh_after_secs = 299;
    assert!(c.validate().is_err());
    let mut c = config();
    c.deadline = std::time::Duration::from_secs(5);
    assert!(c.validate().is_err());
}

#[test]
fn validate_response_catches_contract_breaches() {
    let deny = AuthorizerResponse::deny();
    validate_response(&deny).expect("deny");
    let json = serde_json::to_value(&deny).expect("json");
    assert_eq!(json["isAuthenticated"], json!(false));
    assert_eq!(json, deny.to_json());

    let scope = ArnScope::new(REGION, ACCOUNT).expect("scope");
    let good = AuthorizerResponse {
        is_authenticated: true,
        principal_id: "dvabc".to_owned(),
        disconnect_after_in_seconds: 3600,
        refresh_after_in_seconds: 300,
        policy_documents: render::device_policy(&scope, &Serial::parse("SN1").expect("s"))
            .expect("policy"),
    };
    validate_response(&good).expect("good");
    type Breach = Box<dyn Fn(&mut AuthorizerResponse)>;
    let breaches: Vec<Breach> = vec![
        Box::new(|r| r.principal_id = "a-b".to_owned()),
        Box::new(|r| r.principal_id = String::new()),
        Box::new(|r| r.principal_id = "a".repeat(129)),
        Box::new(|r| r.disconnect_after_in_seconds = 299),
        Box::new(|r| r.disconnect_after_in_seconds = 86_401),
        Box::new(|r| r.refresh_after_in_seconds = 100),
        Box::new(|r| r.refresh_after_in_seconds = 7200),
        Box::new(|r| r.policy_documents = vec![r.policy_documents[0].clone(); 11]),
        Box::new(|r| r.policy_documents = vec![]),
        Box::new(|r| r.policy_documents = vec!["null".to_owned()]),
        Box::new(|r| {
            r.policy_documents = vec![r#"{"Version":"2012-10-17","Statement":null}"#.to_owned()]
        }),
        Box::new(|r| {
            r.policy_documents = vec![format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:{REGION}:{ACCOUNT}:topic/{}"}}]}}"#,
                "x".repeat(2048)
            )]
        }),
        Box::new(|r| r.is_authenticated = false),
    ];
    for (i, breach) in breaches.iter().enumerate() {
        let mut r = good.clone();
        breach(&mut r);
        assert!(validate_response(&r).is_err(), "breach {i} not caught");
    }
}

#[test]
fn hash_password_is_argon2id_with_random_salt() {
    let a = hash_password("pw-1").expect("hash");
    let b = hash_password("pw-1").expect("hash");
    assert!(a.starts_with("$argon2id$"), "{a}");
    assert_ne!(a, b);
    assert_eq!(
        identity::verify_password(b"pw-1", &a),
        identity::PasswordCheck::Match
    );
    assert_eq!(
        identity::verify_password(b"pw-2", &a),
        identity::PasswordCheck::Mismatch
    );
    assert!(hash_password("").is_err());
    assert!(hash_password(&"x".repeat(1025)).is_err());
    // Planted parameters beyond the bounds are refused rather than computed.
    let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    assert_eq!(
        identity::verify_password(b"x", huge),
        identity::PasswordCheck::BadHash
    );
}

#[test]
fn identity_round_trips_through_json() {
    let op = Identity::operator(ISSUER, "alice", "Alice", serials(&["SN1"]));
    let v = serde_json::to_value(&op).expect("json");
    assert_eq!(v["kind"], json!("operator"));
    assert_eq!(serde_json::from_value::<Identity>(v).expect("back"), op);
    let dv = Identity::device(Serial::parse("SN1").expect("s"), cheap_hash("pw"));
    let v = serde_json::to_value(&dv).expect("json");
    assert_eq!(serde_json::from_value::<Identity>(v).expect("back"), dv);
    // A stored serial with a wildcard does not load.
    let mut bad = serde_json::to_value(&op).expect("json");
    bad["serials"] = json!(["SN+"]);
    assert!(serde_json::from_value::<Identity>(bad).is_err());
}

#[test]
fn packing_handles_serials_of_every_length() {
    let scope = ArnScope::new(REGION, ACCOUNT).expect("scope");
    let owned: Vec<Serial> = (0..60)
        .map(|i| Serial::parse(&format!("{i:02}{}", "x".repeat(i % 63))).expect("serial"))
        .collect();
    let principal = operator_principal(ISSUER, "alice");
    let rendered = render::operator_policy(&scope, principal.as_str(), &owned).expect("fits");
    let docs: Vec<&str> = rendered.iter().map(String::as_str).collect();
    assert!(docs.len() <= 10);
    for doc in &docs {
        assert!(iot_policy::policy_size(doc) <= 2048);
    }
    let me = ctx_for(principal.as_str());
    for s in &owned {
        assert!(allowed(
            &docs,
            &me,
            "iot:Publish",
            &format!("P/{s}/deleterecords/1")
        ));
    }
    assert_eq!(
        rendered.concat().matches(":topic/P/").count(),
        owned.len() + render::REPLY_TOPICS.len()
    );
    assert_lint_clean(&docs);
}

#[tokio::test]
async fn operator_token_from_the_http_query_string() {
    let fx = fx();
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let token = sign(&fx.key, &claims("alice", 3600));
    for query in [
        format!("?token={token}"),
        format!("x-amz-customauthorizer-name=fleetguard&token={token}&SDK=js"),
    ] {
        let raw = json!({"protocols": ["tls", "http"], "protocolData": {"http": {"headers": {}, "queryString": query}}});
        let d = run(&fx, raw).await;
        assert_eq!(d.reason, Reason::Authorized, "{d:?}");
    }
    // Not a JWT, an empty value, another parameter's value: no credential at all.
    for query in [
        "?token=",
        "?token=abc",
        &format!("?tok={token}"),
        &format!("?token={token}%00"),
    ] {
        let raw = json!({"protocolData": {"http": {"queryString": query}}});
        let d = run(&fx, raw).await;
        assert_deny(&d, Reason::MalformedRequest);
    }
    // A forged token in the query string is still verified.
    let other = ec_key("k1");
    let forged = sign(&other, &claims("alice", 3600));
    let raw = json!({"protocolData": {"http": {"queryString": format!("token={forged}")}}});
    assert_deny(&run(&fx, raw).await, Reason::BadSignature);
}

/// A key source serving whatever JWKS the test sets, counting fetches; `None` fails.
struct FakeSource {
    doc: Mutex<Option<String>>,
    fetches: std::sync::atomic::AtomicUsize,
}

impl FakeSource {
    fn new(doc: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            doc: Mutex::new(doc),
            fetches: Default::default(),
        })
    }
    fn set(&self, doc: Option<String>) {
        *self.doc.lock().unwrap() = doc;
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl KeySource for FakeSource {
    fn fetch(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + Send + '_>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let doc = self.doc.lock().unwrap().clone();
        Box::pin(async move { doc.ok_or_else(|| Error::Http("IdP down".to_owned())) })
    }
}

#[tokio::test]
async fn jwks_from_a_source_is_fetched_once_and_cold_start_fails_closed() {
    let down = FakeSource::new(None);
    assert!(KeyRing::fetched(down.clone(), Duration::minutes(10), NOW)
        .await
        .is_err());
    let garbage = FakeSource::new(Some("{\"keys\": []}".to_owned()));
    assert!(KeyRing::fetched(garbage, Duration::minutes(10), NOW)
        .await
        .is_err());

    let k1 = ec_key("k1");
    let source = FakeSource::new(Some(jwks_json(&[&k1])));
    let ring = KeyRing::fetched(source.clone(), Duration::minutes(10), NOW)
        .await
        .expect("ring");
    let engine = Authorizer::with_keys(config(), ring).expect("engine");
    let store = InMemoryIdentityStore::new();
    store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let token = sign(&k1, &claims("alice", 3600));
    for _ in 0..20 {
        let d = authorize(&engine, &store, token_request(&token), NOW).await;
        assert_eq!(d.reason, Reason::Authorized);
    }
    assert_eq!(source.fetches(), 1, "cached across invocations");
}

#[tokio::test]
async fn rotated_keys_are_picked_up_on_an_unknown_kid_at_most_once_a_minute() {
    let k1 = ec_key("k1");
    let k2 = ec_key("k2");
    let source = FakeSource::new(Some(jwks_json(&[&k1])));
    let ring = KeyRing::fetched(source.clone(), Duration::hours(1), NOW)
        .await
        .expect("ring");
    let engine = Authorizer::with_keys(config(), ring).expect("engine");
    let store = InMemoryIdentityStore::new();
    store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let new_token = sign(&k2, &claims("alice", 3600));

    // Too soon after the cold-start fetch: no refetch, unknown key.
    let at = NOW + Duration::seconds(10);
    let d = authorize(&engine, &store, token_request(&new_token), at).await;
    assert_deny(&d, Reason::UnknownKey);
    assert_eq!(source.fetches(), 1);

    // The IdP rotated: after the minimum interval the unknown kid triggers one refetch.
    source.set(Some(jwks_json(&[&k1, &k2])));
    let at = NOW + Duration::seconds(61);
    let d = authorize(&engine, &store, token_request(&new_token), at).await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");
    assert_eq!(source.fetches(), 2);

    // A flood of garbage kids costs no fetch within the interval.
    let stranger = ec_key("zzz");
    let junk = sign(&stranger, &claims("alice", 3600));
    for s in 0..50 {
        let d = authorize(
            &engine,
            &store,
            token_request(&junk),
            at + Duration::seconds(s % 59),
        )
        .await;
        assert_deny(&d, Reason::UnknownKey);
    }
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn expired_jwks_is_refreshed_and_an_idp_outage_keeps_the_current_keys() {
    let k1 = ec_key("k1");
    let source = FakeSource::new(Some(jwks_json(&[&k1])));
    let ring = KeyRing::fetched(source.clone(), Duration::minutes(10), NOW)
        .await
        .expect("ring");
    let engine = Authorizer::with_keys(config(), ring).expect("engine");
    let store = InMemoryIdentityStore::new();
    store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let token = sign(&k1, &claims("alice", 3600));

    // Past the TTL with the IdP down: one failed attempt, the old keys still verify.
    source.set(None);
    let at = NOW + Duration::minutes(11);
    let d = authorize(&engine, &store, token_request(&token), at).await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");
    assert_eq!(source.fetches(), 2);
    // Retried only after the minimum interval.
    let _ = authorize(
        &engine,
        &store,
        token_request(&token),
        at + Duration::seconds(30),
    )
    .await;
    assert_eq!(source.fetches(), 2);

    // The IdP is back and has retired k1: the refresh drops it and its tokens are denied.
    let k3 = ec_key("k3");
    source.set(Some(jwks_json(&[&k3])));
    let d = authorize(
        &engine,
        &store,
        token_request(&token),
        at + Duration::seconds(61),
    )
    .await;
    assert_deny(&d, Reason::UnknownKey);
    assert_eq!(source.fetches(), 3);
    assert_eq!(engine.keys().current().len(), 1);
}

/// An engine over keys fetched from a fake source (TTL 10 minutes), with `alice` registered and a
/// token of hers (signed with `k1`) valid for a year.
struct FetchedFx {
    engine: Authorizer,
    store: InMemoryIdentityStore,
    source: Arc<FakeSource>,
    k1: TestKey,
    token: String,
}

async fn fetched_fx(max_age: Option<Duration>) -> FetchedFx {
    let k1 = ec_key("k1");
    let source = FakeSource::new(Some(jwks_json(&[&k1])));
    let mut ring = KeyRing::fetched(source.clone(), Duration::minutes(10), NOW)
        .await
        .expect("ring");
    if let Some(max_age) = max_age {
        ring = ring.with_max_age(max_age);
    }
    let engine = Authorizer::with_keys(config(), ring).expect("engine");
    let store = InMemoryIdentityStore::new();
    store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let token = sign(&k1, &claims("alice", 365 * 86_400));
    FetchedFx {
        engine,
        store,
        source,
        k1,
        token,
    }
}

#[tokio::test]
async fn fetched_keys_are_trusted_before_their_max_age_while_the_source_fails() {
    // The default bound: 24 hours after the last successful fetch.
    let FetchedFx {
        engine,
        store,
        source,
        token,
        ..
    } = fetched_fx(None).await;
    source.set(None);
    for at in [
        NOW + Duration::minutes(11),
        NOW + Duration::hours(12),
        NOW + Duration::hours(24) - Duration::seconds(1),
    ] {
        let d = authorize(&engine, &store, token_request(&token), at).await;
        assert_eq!(d.reason, Reason::Authorized, "{at}: {d:?}");
        assert!(!engine.keys().is_stale(at));
    }
    assert_eq!(
        source.fetches(),
        4,
        "one failed refresh per expired decision"
    );

    // At the bound: the last attempt was a second ago, so no new one (MIN_REFETCH), and refused.
    let at = NOW + Duration::hours(24);
    assert!(engine.keys().is_stale(at));
    let d = authorize(&engine, &store, token_request(&token), at).await;
    assert_deny(&d, Reason::KeysStale);
    assert_eq!(source.fetches(), 4);
    // A minute later the refresh is tried again, fails, and the token is still refused.
    let d = authorize(
        &engine,
        &store,
        token_request(&token),
        at + KeyRing::MIN_REFETCH,
    )
    .await;
    assert_deny(&d, Reason::KeysStale);
    assert_eq!(source.fetches(), 5);
}

#[tokio::test]
async fn fetched_keys_past_their_max_age_are_refused_as_keys_stale() {
    let FetchedFx {
        engine,
        store,
        source,
        token,
        ..
    } = fetched_fx(Some(Duration::hours(1))).await;
    source.set(None);
    let at = NOW + Duration::hours(1);
    let d = authorize(&engine, &store, token_request(&token), at).await;
    assert_deny(&d, Reason::KeysStale);
    assert_eq!(d.reason.as_str(), "keys_stale");
    assert_eq!(d.audit_entry().reason, Reason::KeysStale);
    assert_eq!(Reason::from_code("keys_stale"), Some(Reason::KeysStale));
    assert_eq!(source.fetches(), 2, "the refresh was tried before refusing");

    // Every operator token is refused, whatever its kid, and within MIN_REFETCH of the failed
    // attempt no fetch is made.
    let stranger = ec_key("zzz");
    let junk = sign(&stranger, &claims("alice", 365 * 86_400));
    for s in 0..30 {
        let later = at + Duration::seconds(s);
        let d = authorize(&engine, &store, token_request(&token), later).await;
        assert_deny(&d, Reason::KeysStale);
        let d = authorize(&engine, &store, token_request(&junk), later).await;
        assert_deny(&d, Reason::KeysStale);
    }
    assert_eq!(source.fetches(), 2);
    assert_eq!(
        engine.keys().for_decision(at).await.err(),
        Some(Reason::KeysStale)
    );
}

#[tokio::test]
async fn a_successful_refresh_restores_trust_in_stale_keys() {
    let FetchedFx {
        engine,
        store,
        source,
        k1,
        token,
    } = fetched_fx(Some(Duration::hours(1))).await;
    source.set(None);
    let at = NOW + Duration::hours(2);
    assert_deny(
        &authorize(&engine, &store, token_request(&token), at).await,
        Reason::KeysStale,
    );
    assert_eq!(source.fetches(), 2);

    // The IdP is back, but the next attempt still waits MIN_REFETCH.
    source.set(Some(jwks_json(&[&k1])));
    let soon = at + Duration::seconds(30);
    assert_deny(
        &authorize(&engine, &store, token_request(&token), soon).await,
        Reason::KeysStale,
    );
    assert_eq!(source.fetches(), 2);

    let later = at + KeyRing::MIN_REFETCH;
    let d = authorize(&engine, &store, token_request(&token), later).await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");
    assert_eq!(source.fetches(), 3);
    assert!(!engine.keys().is_stale(later));
    // The bound counts again from that refresh.
    assert!(!engine.keys().is_stale(later + Duration::minutes(59)));
    assert!(engine.keys().is_stale(later + Duration::hours(1)));

    // A refresh on an unknown kid restores trust too.
    let FetchedFx {
        engine,
        store,
        source,
        k1,
        token,
    } = fetched_fx(Some(Duration::hours(1))).await;
    source.set(None);
    assert_deny(
        &authorize(&engine, &store, token_request(&token), at).await,
        Reason::KeysStale,
    );
    let k2 = ec_key("k2");
    source.set(Some(jwks_json(&[&k1, &k2])));
    let rotated = sign(&k2, &claims("alice", 365 * 86_400));
    let d = authorize(&engine, &store, token_request(&rotated), later).await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");
    assert_eq!(source.fetches(), 3);
}

#[tokio::test]
async fn fixed_keys_are_never_stale() {
    let k1 = ec_key("k1");
    let jwks = Jwks::from_json(&jwks_json(&[&k1])).expect("jwks");
    let ring = KeyRing::fixed(jwks).with_max_age(Duration::seconds(1));
    let engine = Authorizer::with_keys(config(), ring).expect("engine");
    let store = InMemoryIdentityStore::new();
    store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let token = sign(&k1, &claims("alice", 3 * 365 * 86_400));
    for at in [NOW, NOW + Duration::days(8), NOW + Duration::days(2 * 365)] {
        assert!(!engine.keys().is_stale(at));
        let d = authorize(&engine, &store, token_request(&token), at).await;
        assert_eq!(d.reason, Reason::Authorized, "{at}: {d:?}");
    }
}

#[test]
fn jwks_max_age_must_be_between_the_ttl_and_seven_days() {
    let ttl = Duration::minutes(10);
    // The defaults (TTL 600 s, max age 86400 s) and the edges are accepted.
    assert_eq!(KeyRing::DEFAULT_MAX_AGE, Duration::seconds(86_400));
    assert_eq!(KeyRing::MAX_MAX_AGE, Duration::days(7));
    for max_age in [ttl, KeyRing::DEFAULT_MAX_AGE, Duration::days(7)] {
        KeyRing::check_max_age(ttl, max_age).expect("valid max age");
    }
    // Below the TTL (keys would go stale before they are due a refresh), above 7 days, or a TTL
    // above the default max age: a configuration error.
    for (ttl, max_age) in [
        (ttl, ttl - Duration::seconds(1)),
        (ttl, Duration::ZERO),
        (ttl, Duration::days(7) + Duration::seconds(1)),
        (Duration::hours(25), KeyRing::DEFAULT_MAX_AGE),
    ] {
        let e = KeyRing::check_max_age(ttl, max_age).expect_err("invalid max age");
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(
            e.to_string().contains("FLEETGUARD_JWKS_MAX_AGE_SECONDS"),
            "{e}"
        );
    }
}
