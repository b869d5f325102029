//! Tests of the authorizer over the in-memory store, with keys generated at test time.

mod devices;
mod errors;
mod operators;
mod pieces;
mod prop;
mod x509;

use base64::Engine;
use fleetguard_domain::authorization::authorizer::identity::hash_password_with;
use fleetguard_domain::authorization::authorizer::secret::DeviceSecret;
use fleetguard_domain::authorization::authorizer::*;
use fleetguard_domain::model::{DeviceStatus, Reason, Serial};
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
