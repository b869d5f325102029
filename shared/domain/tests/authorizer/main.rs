//! Tests of the authorizer over the in-memory store, with keys generated at test time.

mod prop;

use base64::Engine;
use fleetguard_domain::authorizer::identity::hash_password_with;
use fleetguard_domain::authorizer::secret::DeviceSecret;
use fleetguard_domain::authorizer::*;
use fleetguard_domain::domain::{DeviceStatus, Reason, Serial};
use fleetguard_domain::{Error, Result};
use fleetguard_testkit::fakes::InMemoryIdentityStore;
use iot_policy::{
    evaluate, lint, prove_scoped_to_identity, ConnectionContext, Request, ScopeCheck, Severity,
};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

pub(crate) const REGION: &str = "eu-west-1";
pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const ISSUER: &str = "https://idp.example.com/";
pub(crate) const AUDIENCE: &str = "fleetguard-operators";
pub(crate) const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A signing key and its public JWK.
pub(crate) struct TestKey {
    pub enc: EncodingKey,
    pub alg: Algorithm,
    pub kid: String,
    pub jwk: Jwk,
}

pub(crate) fn ec_key(kid: &str) -> TestKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
    let enc = EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).expect("ec pem");
    with_jwk(enc, Algorithm::ES256, kid)
}

fn rsa_key(kid: &str) -> TestKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa keygen");
    let enc = EncodingKey::from_rsa_pem(kp.serialize_pem().as_bytes()).expect("rsa pem");
    with_jwk(enc, Algorithm::RS256, kid)
}

fn with_jwk(enc: EncodingKey, alg: Algorithm, kid: &str) -> TestKey {
    let mut jwk = Jwk::from_encoding_key(&enc, alg).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    TestKey {
        enc,
        alg,
        kid: kid.to_owned(),
        jwk,
    }
}

pub(crate) fn jwks_json(keys: &[&TestKey]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    })
    .expect("jwks json")
}

pub(crate) fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.enc).expect("sign")
}

pub(crate) fn claims(sub: &str, exp_in: i64) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": NOW.unix_timestamp() - 10,
        "nbf": NOW.unix_timestamp() - 10,
        "exp": NOW.unix_timestamp() + exp_in,
    })
}

pub(crate) fn config() -> AuthorizerConfig {
    AuthorizerConfig::new(REGION, ACCOUNT, ISSUER, &[AUDIENCE]).expect("config")
}

struct Fx {
    engine: Authorizer,
    store: InMemoryIdentityStore,
    key: TestKey,
}

fn fx_with(config: AuthorizerConfig) -> Fx {
    let key = ec_key("k1");
    let engine = Authorizer::new(config, Jwks::from_json(&jwks_json(&[&key])).expect("jwks"))
        .expect("engine");
    Fx {
        engine,
        store: InMemoryIdentityStore::new(),
        key,
    }
}

fn fx() -> Fx {
    fx_with(config())
}

pub(crate) fn serials(names: &[&str]) -> Vec<Serial> {
    names
        .iter()
        .map(|s| Serial::parse(s).expect("serial"))
        .collect()
}

pub(crate) fn token_request(token: &str) -> Value {
    json!({
        "token": token,
        "signatureVerified": false,
        "protocols": ["tls", "mqtt"],
        "protocolData": {"tls": {"serverName": "iot.example.com"}},
        "connectionMetadata": {"id": "c0ffee"}
    })
}

fn mqtt_request(username: &str, password: &[u8], client_id: Option<&str>) -> Value {
    let mut mqtt = json!({"username": username, "password": b64(password)});
    if let Some(c) = client_id {
        mqtt["clientId"] = json!(c);
    }
    json!({
        "signatureVerified": false,
        "protocols": ["tls", "mqtt"],
        "protocolData": {"mqtt": mqtt},
        "connectionMetadata": {"id": "c0ffee"}
    })
}

/// A cheap argon2id hash so tests stay fast (the parameters travel with the hash).
fn cheap_hash(pw: &str) -> String {
    let params = argon2::Params::new(8, 1, 1, None).expect("params");
    hash_password_with(pw.as_bytes(), params).expect("hash")
}

fn docs(d: &Decision) -> Vec<&str> {
    d.response
        .policy_documents
        .iter()
        .map(String::as_str)
        .collect()
}

fn ctx_for(client_id: &str) -> ConnectionContext {
    ConnectionContext {
        client_id: Some(client_id.to_owned()),
        principal_id: Some(client_id.to_owned()),
        ..ConnectionContext::default()
    }
    .in_account(REGION, ACCOUNT)
}

fn allowed(docs: &[&str], ctx: &ConnectionContext, action: &str, target: &str) -> bool {
    let req = Request::for_target(action, target, ctx).expect("request");
    evaluate(docs, &req, ctx).expect("evaluate").is_allowed()
}

fn assert_lint_clean(docs: &[&str]) {
    let findings = lint(docs).expect("lint");
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| f.severity >= Severity::Medium)
        .map(|f| f.to_string())
        .collect();
    assert!(bad.is_empty(), "lint findings: {bad:#?}");
}

fn assert_deny(d: &Decision, reason: Reason) {
    assert_eq!(d.reason, reason, "{d:?}");
    assert!(!d.response.is_authenticated);
    assert!(d.response.policy_documents.is_empty());
    validate_response(&d.response).expect("deny is valid");
}

async fn run(fx: &Fx, raw: Value) -> Decision {
    run_at(fx, raw, NOW).await
}

async fn run_at(fx: &Fx, raw: Value, now: OffsetDateTime) -> Decision {
    let d = authorize(&fx.engine, &fx.store, raw, now).await;
    validate_response(&d.response).expect("every response is valid");
    d
}

// ---------------------------------------------------------------- operators

#[tokio::test]
async fn operator_gets_exactly_their_serials() {
    let fx = fx();
    let identity = Identity::operator(ISSUER, "alice", "Alice", serials(&["SN1", "SN2"]));
    let principal = identity.principal_id.clone();
    fx.store.put(identity);
    let token = sign(&fx.key, &claims("alice", 3600));
    let d = run(&fx, token_request(&token)).await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");
    assert!(d.response.is_authenticated);
    assert_eq!(d.response.principal_id, principal.as_str());
    assert_eq!(d.principal_id.as_deref(), Some(principal.as_str()));
    assert_eq!(d.response.disconnect_after_in_seconds, 3600);
    assert_eq!(d.response.refresh_after_in_seconds, 300);

    let docs = docs(&d);
    let me = ctx_for(principal.as_str());
    for sn in ["SN1", "SN2"] {
        let topic = format!("P/{sn}/deleterecords/r1");
        assert!(allowed(&docs, &me, "iot:Publish", &topic), "{sn}");
        assert!(allowed(&docs, &me, "iot:Receive", &topic), "{sn}");
        let filter = format!("P/{sn}/deleterecords/+");
        assert!(allowed(&docs, &me, "iot:Subscribe", &filter), "{sn}");
        // Only deleterecords: not the device's other topics.
        assert!(!allowed(
            &docs,
            &me,
            "iot:Publish",
            &format!("P/{sn}/telemetry")
        ));
        assert!(!allowed(&docs, &me, "iot:Subscribe", &format!("P/{sn}/#")));
        // Never connect as the device.
        assert!(!allowed(&docs, &ctx_for(sn), "iot:Connect", sn));
    }
    for other in ["SN3", "SN10", "SN", "SN1x"] {
        let topic = format!("P/{other}/deleterecords/r1");
        assert!(!allowed(&docs, &me, "iot:Publish", &topic), "{other}");
        assert!(!allowed(&docs, &me, "iot:Receive", &topic), "{other}");
        assert!(!allowed(
            &docs,
            &me,
            "iot:Subscribe",
            &format!("P/{other}/deleterecords/+")
        ));
    }
    for filter in ["#", "P/#", "P/+/deleterecords/+", "P/+/#"] {
        assert!(!allowed(&docs, &me, "iot:Subscribe", filter), "{filter}");
    }
    assert!(allowed(&docs, &me, "iot:Connect", principal.as_str()));
    for other in ["SN1", "op0", "+", "#", "*"] {
        assert!(
            !allowed(&docs, &ctx_for(other), "iot:Connect", other),
            "{other}"
        );
    }
    assert_lint_clean(&docs);

    let check = operator_scope_check();
    prove_scoped_to_identity(&docs, &check, "SN1", "SN3").expect("A = owned, B = not owned");
    prove_scoped_to_identity(&docs, &check, "SN2", "SN10").expect("A = owned, B = not owned");
}

/// The A ≠ B check for operator policies: A and B are serials, the namespace is their
/// deleterecords topics, and the connection is the operator's principal (connect is checked
/// separately: the operator connects as itself, not as a serial).
fn operator_scope_check() -> ScopeCheck {
    let principal = operator_principal(ISSUER, "alice");
    let mut check = ScopeCheck::new(REGION, ACCOUNT, "P/{id}/deleterecords/")
        .with_context(move |_| ctx_for(principal.as_str()))
        .require_attachment(false);
    check.require_connect = false;
    check.probe_suffixes = vec!["1".into(), "x/y".into()];
    check
}

#[tokio::test]
async fn operator_token_from_mqtt_password_and_bearer_header() {
    let fx = fx();
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let principal = operator_principal(ISSUER, "alice");
    let token = sign(&fx.key, &claims("alice", 3600));

    let d = run(
        &fx,
        mqtt_request(
            "ignored?SDK=Rust&Version=1",
            token.as_bytes(),
            Some(principal.as_str()),
        ),
    )
    .await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");

    let raw = json!({"protocolData": {"http": {"headers": {"authorization": format!("Bearer {token}")}}}});
    let d = run(&fx, raw).await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");

    // Client id other than the principal id.
    let d = run(&fx, mqtt_request("x", token.as_bytes(), Some("SN1"))).await;
    assert_deny(&d, Reason::ClientIdMismatch);
    let d = run(&fx, mqtt_request("x", token.as_bytes(), Some("#"))).await;
    assert_deny(&d, Reason::WildcardInjection);
}

#[tokio::test]
async fn rsa_tokens_verify_too() {
    let rsa = rsa_key("r1");
    let ec = ec_key("e1");
    let engine = Authorizer::new(
        config(),
        Jwks::from_json(&jwks_json(&[&rsa, &ec])).expect("jwks"),
    )
    .expect("engine");
    let store = InMemoryIdentityStore::new();
    store.put(Identity::operator(ISSUER, "bob", "Bob", serials(&["SN9"])));
    for key in [&rsa, &ec] {
        let d = authorize(
            &engine,
            &store,
            token_request(&sign(key, &claims("bob", 900))),
            NOW,
        )
        .await;
        assert_eq!(d.reason, Reason::Authorized, "{:?}", key.alg);
    }
    // An RS256 header pointing at the EC key (algorithm confusion).
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("e1".to_owned());
    let forged = jsonwebtoken::encode(&header, &claims("bob", 900), &rsa.enc).expect("sign");
    let d = authorize(&engine, &store, token_request(&forged), NOW).await;
    assert_deny(&d, Reason::UnsupportedAlgorithm);
}

#[tokio::test]
async fn bad_tokens_are_denied_with_their_reason() {
    let fx = fx();
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let now = NOW.unix_timestamp();
    let cases: Vec<(&str, Value, Reason)> = vec![
        ("expired", claims("alice", -1), Reason::TokenExpired),
        ("expires now", claims("alice", 0), Reason::TokenExpired),
        (
            "too close to expiry",
            claims("alice", 299),
            Reason::TokenExpiring,
        ),
        (
            "not yet valid",
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "nbf": now + 31, "exp": now + 3600}),
            Reason::TokenNotYetValid,
        ),
        (
            "issued in the future",
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now + 600, "exp": now + 3600}),
            Reason::TokenNotYetValid,
        ),
        (
            "wrong audience",
            json!({"iss": ISSUER, "aud": "someone-else", "sub": "alice", "exp": now + 3600}),
            Reason::WrongAudience,
        ),
        (
            "no audience",
            json!({"iss": ISSUER, "sub": "alice", "exp": now + 3600}),
            Reason::WrongAudience,
        ),
        (
            "wrong issuer",
            json!({"iss": "https://evil.example.com/", "aud": AUDIENCE, "sub": "alice", "exp": now + 3600}),
            Reason::WrongIssuer,
        ),
        (
            "no exp",
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice"}),
            Reason::MalformedToken,
        ),
        (
            "unknown operator",
            claims("mallory", 3600),
            Reason::UnknownIdentity,
        ),
        (
            "sub with wildcard",
            claims("alice/#", 3600),
            Reason::WildcardInjection,
        ),
    ];
    for (name, c, want) in cases {
        let d = run(&fx, token_request(&sign(&fx.key, &c))).await;
        assert_deny(&d, want);
        let _ = name;
    }
    // Within the nbf leeway is fine; array audiences work.
    let c = json!({"iss": ISSUER, "aud": ["x", AUDIENCE], "sub": "alice", "nbf": now + 30, "exp": now + 3600});
    let d = run(&fx, token_request(&sign(&fx.key, &c))).await;
    assert_eq!(d.reason, Reason::Authorized);
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_denied() {
    let fx = fx();
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let good = sign(&fx.key, &claims("alice", 3600));
    let c = claims("alice", 3600);

    // Wrong key, same kid.
    let mut impostor = ec_key("k1");
    let d = run(&fx, token_request(&sign(&impostor, &c))).await;
    assert_deny(&d, Reason::BadSignature);
    // Unknown kid; no kid.
    impostor.kid = "k2".to_owned();
    let d = run(&fx, token_request(&sign(&impostor, &c))).await;
    assert_deny(&d, Reason::UnknownKey);
    let no_kid =
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &c, &fx.key.enc).expect("sign");
    let d = run(&fx, token_request(&no_kid)).await;
    assert_deny(&d, Reason::UnknownKey);

    // alg: none, unsigned.
    let payload = b64url(c.to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64url(
            json!({"alg": alg, "kid": "k1", "typ": "JWT"})
                .to_string()
                .as_bytes(),
        );
        for sig in ["", "AAAA"] {
            let d = run(&fx, token_request(&format!("{header}.{payload}.{sig}"))).await;
            assert_deny(&d, Reason::UnsupportedAlgorithm);
        }
    }
    // HS256 with the public JWK text as the secret (the classic confusion) and with any secret.
    for secret in [jwks_json(&[&fx.key]).into_bytes(), b"secret".to_vec()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".to_owned());
        let t = jsonwebtoken::encode(&header, &c, &EncodingKey::from_secret(&secret)).expect("hs");
        let d = run(&fx, token_request(&t)).await;
        assert_deny(&d, Reason::UnsupportedAlgorithm);
    }
    // Other asymmetric algorithms are refused too.
    for alg in ["RS512", "PS256", "ES384", "EdDSA"] {
        let header = b64url(json!({"alg": alg, "kid": "k1"}).to_string().as_bytes());
        let d = run(&fx, token_request(&format!("{header}.{payload}.AAAA"))).await;
        assert_deny(&d, Reason::UnsupportedAlgorithm);
    }
    // crit header.
    let header = b64url(
        json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]})
            .to_string()
            .as_bytes(),
    );
    let d = run(&fx, token_request(&format!("{header}.{payload}.AAAA"))).await;
    assert_deny(&d, Reason::MalformedToken);

    // Truncated: signature cut short, or missing.
    // An ES256 signature is 86 base64url characters: cut to 80 it still decodes (60 bytes) but
    // does not verify; cut to 82 its last character has stray bits and does not decode.
    let d = run(&fx, token_request(&good[..good.len() - 6])).await;
    assert_deny(&d, Reason::BadSignature);
    // (Its last character is set to one with stray bits, 'B': a character cut there at random has
    // none one time in 16 and would decode.)
    let stray = format!("{}B", &good[..good.len() - 5]);
    let d = run(&fx, token_request(&stray)).await;
    assert_deny(&d, Reason::MalformedToken);
    let cut = good.rsplit_once('.').map(|(hp, _)| hp).unwrap_or_default();
    let d = run(&fx, token_request(cut)).await;
    assert_deny(&d, Reason::MalformedToken);
    let d = run(&fx, token_request(&format!("{cut}."))).await;
    assert_deny(&d, Reason::BadSignature);
    // Payload tampered with (sub changed), signature kept.
    let (h, rest) = good.split_once('.').unwrap_or_default();
    let (_, s) = rest.split_once('.').unwrap_or_default();
    let evil = b64url(claims("bob", 3600).to_string().as_bytes());
    let d = run(&fx, token_request(&format!("{h}.{evil}.{s}"))).await;
    assert_deny(&d, Reason::BadSignature);
    // Garbage.
    for g in [
        "garbage",
        "a.b.c",
        "eyJ.eyJ.eyJ",
        "....",
        "eyJhbGciOiJFUzI1NiJ9",
        &"A".repeat(20_000),
        "\u{0}\u{1}",
    ] {
        let d = run(&fx, token_request(g)).await;
        assert_deny(&d, Reason::MalformedToken);
    }
    // The good token still works (nothing above poisoned the cache or the store).
    let d = run(&fx, token_request(&good)).await;
    assert_eq!(d.reason, Reason::Authorized);
}

#[tokio::test]
async fn disabled_or_non_operator_identities_are_denied() {
    let fx = fx();
    let mut alice = Identity::operator(ISSUER, "alice", "Alice", serials(&["SN1"]));
    if let IdentityKind::Operator { status, .. } = &mut alice.kind {
        *status = OperatorStatus::Disabled;
    }
    fx.store.put(alice);
    let d = run(&fx, token_request(&sign(&fx.key, &claims("alice", 3600)))).await;
    assert_deny(&d, Reason::IdentityDisabled);
    // A device record stored under an operator principal (corrupt): not an operator.
    let mut odd = Identity::device(Serial::parse("SN1").expect("serial"), cheap_hash("pw"));
    odd.principal_id = operator_principal(ISSUER, "carol");
    fx.store.put(odd);
    let d = run(&fx, token_request(&sign(&fx.key, &claims("carol", 3600)))).await;
    assert_deny(&d, Reason::UnknownIdentity);
}

#[tokio::test]
async fn disconnect_never_outlives_the_token() {
    let fx = fx();
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    for (exp_in, disconnect, refresh) in [
        (300, 300, 300),
        (301, 301, 300),
        (7200, 7200, 300),
        (86_400, 86_400, 300),
        (10 * 86_400, 86_400, 300),
    ] {
        let d = run(&fx, token_request(&sign(&fx.key, &claims("alice", exp_in)))).await;
        assert_eq!(d.reason, Reason::Authorized, "{exp_in}");
        assert_eq!(d.response.disconnect_after_in_seconds, disconnect);
        assert_eq!(d.response.refresh_after_in_seconds, refresh);
    }
}

#[tokio::test]
async fn by_default_a_disabled_operator_is_refused_at_the_next_decision() {
    // No cache by default: every instance reads, so a revoke or disable is refused at once (and the
    // revoker's DeleteConnection leaves no session a cached allow could recreate).
    let fx = fx();
    let mut alice = Identity::operator(ISSUER, "alice", "Alice", serials(&["SN1"]));
    fx.store.put(alice.clone());
    let token = sign(&fx.key, &claims("alice", 3600));
    assert_eq!(
        run(&fx, token_request(&token)).await.reason,
        Reason::Authorized
    );
    if let IdentityKind::Operator { status, .. } = &mut alice.kind {
        *status = OperatorStatus::Disabled;
    }
    fx.store.put(alice);
    assert_deny(
        &run(&fx, token_request(&token)).await,
        Reason::IdentityDisabled,
    );
    assert_eq!(fx.store.reads(), 2);
    // A cache longer than 30 s is refused: the bound stays seconds.
    let mut c = config();
    c.cache_ttl = Duration::seconds(31);
    assert!(c.validate().is_err());
}

#[tokio::test]
async fn operator_identity_is_cached_for_the_ttl() {
    let mut c = config();
    c.cache_ttl = Duration::seconds(30);
    let fx = fx_with(c);
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    let token = sign(&fx.key, &claims("alice", 3600));
    for _ in 0..20 {
        let d = run(&fx, token_request(&token)).await;
        assert_eq!(d.reason, Reason::Authorized);
    }
    assert_eq!(fx.store.reads(), 1, "a reconnect storm costs one read");
    // After the TTL it is read again.
    let later = NOW + Duration::seconds(31);
    let d = authorize(&fx.engine, &fx.store, token_request(&token), later).await;
    assert_eq!(d.reason, Reason::Authorized);
    assert_eq!(fx.store.reads(), 2);
    // A clock going backwards does not extend an entry.
    let d = authorize(&fx.engine, &fx.store, token_request(&token), NOW).await;
    assert_eq!(d.reason, Reason::Authorized);
    assert_eq!(fx.store.reads(), 3);

    // Unknown and disabled identities are not cached (so enabling takes effect at once).
    let t = sign(&fx.key, &claims("dave", 3600));
    for _ in 0..3 {
        assert_eq!(
            run(&fx, token_request(&t)).await.reason,
            Reason::UnknownIdentity
        );
    }
    assert_eq!(fx.store.reads(), 6);
    fx.store.put(Identity::operator(
        ISSUER,
        "dave",
        "Dave",
        serials(&["SN2"]),
    ));
    assert_eq!(run(&fx, token_request(&t)).await.reason, Reason::Authorized);
}

#[tokio::test]
async fn cache_is_bounded() {
    let mut c = config();
    c.cache_capacity = 4;
    c.cache_ttl = Duration::seconds(30);
    let fx = fx_with(c);
    for i in 0..10 {
        let sub = format!("user{i}");
        fx.store
            .put(Identity::operator(ISSUER, &sub, &sub, serials(&["SN1"])));
        let d = run(&fx, token_request(&sign(&fx.key, &claims(&sub, 3600)))).await;
        assert_eq!(d.reason, Reason::Authorized);
        assert!(fx.engine.cached_identities() <= 4);
    }
}

#[tokio::test]
async fn large_fleets_fit_the_limits_or_are_denied() {
    let fx = fx();
    let principal = operator_principal(ISSUER, "alice");
    let mut served = 0;
    for n in [0usize, 1, 10, 50, 100, 120, 150, 5000] {
        let owned: Vec<Serial> = (0..n)
            .map(|i| Serial::parse(&format!("SERIAL-{i:06}")).expect("serial"))
            .collect();
        fx.store
            .put(Identity::operator(ISSUER, "alice", "Alice", owned.clone()));
        // A fresh engine each time so the cache does not serve the previous list.
        let engine = Authorizer::new(
            config(),
            Jwks::from_json(&jwks_json(&[&fx.key])).expect("jwks"),
        )
        .expect("engine");
        let d = authorize(
            &engine,
            &fx.store,
            token_request(&sign(&fx.key, &claims("alice", 3600))),
            NOW,
        )
        .await;
        validate_response(&d.response).expect("valid");
        if !d.response.is_authenticated {
            assert_deny(&d, Reason::PolicyTooLarge);
            assert!(n > 100, "{n} serials should fit");
            continue;
        }
        served = served.max(n);
        let docs = docs(&d);
        assert!(docs.len() <= 10);
        // Packed tightly: no document but the last could have taken one more serial.
        let per_serial =
            format!("arn:aws:iot:{REGION}:{ACCOUNT}:topic/P/SERIAL-000000/deleterecords/*").len()
                * 2
                + 6
                + 6;
        for doc in &docs[..docs.len() - 1] {
            let size = iot_policy::policy_size(doc);
            assert!(
                size <= 2048 && size + per_serial > 2048,
                "{n}: loose document of {size}"
            );
        }
        assert_lint_clean(&docs);
        let me = ctx_for(principal.as_str());
        for s in owned.iter().step_by(7).chain(owned.last()) {
            assert!(allowed(
                &docs,
                &me,
                "iot:Publish",
                &format!("P/{s}/deleterecords/1")
            ));
            assert!(allowed(
                &docs,
                &me,
                "iot:Subscribe",
                &format!("P/{s}/deleterecords/+")
            ));
        }
        for other in ["SERIAL-999999", "SERIAL-00000", "SERIAL-0000001", "SN1"] {
            assert!(!allowed(
                &docs,
                &me,
                "iot:Publish",
                &format!("P/{other}/deleterecords/1")
            ));
        }
        // Exactly the owned serials: count the granted topic resources (the reply Deny names
        // `topic/P/*/...` twice, once per response).
        let granted = d
            .response
            .policy_documents
            .iter()
            .map(|doc| doc.matches(":topic/P/").count())
            .sum::<usize>();
        assert_eq!(granted, n + render::REPLY_TOPICS.len());
    }
    assert!(served >= 100, "served up to {served}");
}

#[tokio::test]
async fn duplicate_serials_are_granted_once() {
    let fx = fx();
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1", "SN1", "SN2"]),
    ));
    let d = run(&fx, token_request(&sign(&fx.key, &claims("alice", 3600)))).await;
    assert_eq!(
        d.response
            .policy_documents
            .concat()
            .matches(":topic/P/")
            .count(),
        2 + render::REPLY_TOPICS.len()
    );
}

// ---------------------------------------------------------------- devices

fn put_device_digest(fx: &Fx, serial: &Serial, secret: &DeviceSecret) -> PrincipalId {
    let identity = Identity::device(serial.clone(), secret.digest(serial));
    let p = identity.principal_id.clone();
    fx.store.put(identity);
    p
}

/// A device whose stored hash is a (cheap) legacy argon2id one: what set-password wrote before.
fn put_device(fx: &Fx, serial: &str, pw: &str) -> PrincipalId {
    let identity = Identity::device(Serial::parse(serial).expect("serial"), cheap_hash(pw));
    let p = identity.principal_id.clone();
    fx.store.put(identity);
    p
}

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
        _: &str,
        _: &str,
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
        id: &fleetguard_domain::domain::CertificateId,
    ) -> fleetguard_domain::Result<Option<fleetguard_domain::domain::CertificateRecord>> {
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

// ---------------------------------------------------------------- errors and deadline

#[tokio::test]
async fn store_errors_deny_without_secrets() {
    let fx = fx();
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    put_device(&fx, "SN1", "hunter2");
    fx.store.fail.store(true, Ordering::SeqCst);
    let token = sign(&fx.key, &claims("alice", 3600));
    for raw in [token_request(&token), mqtt_request("SN1", b"hunter2", None)] {
        let d = run(&fx, raw).await;
        assert_deny(&d, Reason::InternalError);
        let text = format!("{d:?}");
        assert!(d.detail.is_some());
        assert!(
            !text.contains(&token) && !text.contains("hunter2") && !text.contains("argon2"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn slow_store_times_out() {
    let mut c = config();
    c.deadline = std::time::Duration::from_millis(50);
    let fx = fx_with(c);
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    *fx.store.delay.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(std::time::Duration::from_millis(500));
    let d = run(&fx, token_request(&sign(&fx.key, &claims("alice", 3600)))).await;
    assert_deny(&d, Reason::Timeout);
    assert!(
        d.principal_id.is_some(),
        "the verified principal is still audited"
    );
}

#[test]
fn secrets_are_redacted_from_debug() {
    let hash = cheap_hash("pw");
    let id = Identity::device(Serial::parse("SN1").expect("serial"), hash.clone());
    assert!(!format!("{id:?}").contains(&hash));
    let req = AuthorizerRequest::parse(mqtt_request("SN1", b"s3cret-pw", None)).expect("parse");
    let text = format!("{req:?} {:?}", req.credential());
    assert!(
        !text.contains("s3cret") && !text.contains(&b64(b"s3cret-pw")),
        "{text}"
    );
    let key = ec_key("k");
    let t = sign(&key, &claims("a", 3600));
    assert!(!format!("{:?}", Credential::Jwt(t.clone())).contains(&t));
    let mut raw = token_request(&t);
    raw["protocolData"]["http"] = json!({"headers": {"Authorization": format!("Bearer {t}")}, "queryString": format!("?token={t}")});
    let req = AuthorizerRequest::parse(raw).expect("parse");
    let text = format!("{req:?}");
    assert!(!text.contains(&t[..20]), "{text}");
    assert!(text.contains("Authorization"));
}

// ---------------------------------------------------------------- pieces

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
    assert_eq!(op.kind(), Some(identity::IdentityKindTag::Operator));
    assert_eq!(dv.kind(), Some(identity::IdentityKindTag::Device));
    for bad in ["", "a-b", "a b", "+", "é", &"a".repeat(129)] {
        assert!(PrincipalId::parse(bad).is_err(), "{bad:?}");
    }
    assert!(PrincipalId::parse(&"a".repeat(128)).is_ok());
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
    // Codes shared with fleetguard_domain::domain::Reason keep the same text.
    assert_eq!(
        Reason::InternalError.as_str(),
        fleetguard_domain::domain::Reason::InternalError.as_str()
    );
    assert_eq!(
        Reason::Timeout.as_str(),
        fleetguard_domain::domain::Reason::Timeout.as_str()
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

// ---------------------------------------------------------------- X.509 custom authentication

fn x509_request(pem: &str, principal: Option<&str>, client_id: &str) -> Value {
    let mut tls = json!({"serverName": "example-ats.iot.us-east-1.amazonaws.com",
        "x509CertificatePem": pem});
    if let Some(p) = principal {
        tls["principalId"] = json!(p);
    }
    json!({"signatureVerified": false, "protocols": ["tls", "mqtt"],
        "protocolData": {"tls": tls, "mqtt": {"clientId": client_id}},
        "connectionMetadata": {"id": "c0ffee"}})
}

fn device_certificate(serial: &str) -> (String, fleetguard_domain::domain::CertificateId) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(rcgen::DnType::CommonName, serial);
    let pem = p
        .self_signed(&rcgen::KeyPair::generate().expect("key"))
        .expect("cert")
        .pem();
    let id = fleetguard_domain::domain::CertificateId::of_der(
        &fleetguard_domain::x509::pem_to_der(&pem).expect("der"),
    );
    (pem, id)
}

#[tokio::test]
async fn an_x509_connection_is_the_certificates_and_the_registry_decides() {
    let fx = fx();
    let (pem, id) = device_certificate("SN1");
    let serial = Serial::parse("SN1").expect("serial");
    let put = |denied, held| {
        fx.store.certificates.lock().expect("lock").insert(
            id.clone(),
            fleetguard_domain::domain::CertificateRecord {
                certificate_id: id.clone(),
                serial: serial.clone(),
                denied,
                held,
                updated_at: "t".into(),
            },
        );
    };
    assert_deny(
        &run(&fx, x509_request(&pem, Some(id.as_str()), "SN1")).await,
        Reason::UnknownIdentity,
    );
    put(false, false);
    let d = run(&fx, x509_request(&pem, Some(id.as_str()), "SN1")).await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");
    assert_eq!(
        d.response.principal_id,
        id.as_str(),
        "echoes AWS's principalId"
    );
    let docs = docs(&d);
    let me = ctx_for("SN1");
    assert!(allowed(&docs, &me, "iot:Connect", "SN1"));
    assert!(!allowed(&docs, &me, "iot:Publish", "P/SN2/deleterecords/1"));
    // A password or token beside the certificate elevates nothing: still the certificate's identity.
    let mut with_token = x509_request(&pem, Some(id.as_str()), "SN1");
    with_token["token"] = json!("eyJhbGciOiJub25lIn0.e30.");
    let d = run(&fx, with_token).await;
    assert_eq!(d.response.principal_id, id.as_str());
    // Refusals.
    let other = "0".repeat(64);
    assert_deny(
        &run(&fx, x509_request(&pem, Some(&other), "SN1")).await,
        Reason::CertificateIdMismatch,
    );
    assert_deny(
        &run(&fx, x509_request(&pem, Some(id.as_str()), "SN2")).await,
        Reason::ClientIdMismatch,
    );
    assert_deny(
        &run(&fx, x509_request("not a certificate", None, "SN1")).await,
        Reason::MalformedCertificate,
    );
    put(false, true);
    assert_deny(
        &run(&fx, x509_request(&pem, Some(id.as_str()), "SN1")).await,
        Reason::CertificateHeld,
    );
    put(true, false);
    assert_deny(
        &run(&fx, x509_request(&pem, Some(id.as_str()), "SN1")).await,
        Reason::CertificateRevoked,
    );
}
