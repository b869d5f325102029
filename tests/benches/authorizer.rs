//! Custom authorizer hot path: a cached operator's decision (parse → verify → render), and its
//! parts. Keys are generated at start-up; nothing is read from disk or the network.

use criterion::{criterion_group, Criterion};
use fleetguard_domain::authorization::authorizer::{
    authorize, jwt, render, ArnScope, Authorizer, AuthorizerConfig, Identity, IdentityStore, Jwks,
    PrincipalId,
};
use fleetguard_domain::model::Serial;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::hint::black_box;
use time::OffsetDateTime;

const ISSUER: &str = "https://idp.example.com/";
const AUDIENCE: &str = "fleetguard-operators";

/// A store holding one operator (the engine's cache serves it after the first read).
struct OneOperator(Identity);

impl IdentityStore for OneOperator {
    async fn get_identity(&self, p: &PrincipalId) -> fleetguard_domain::Result<Option<Identity>> {
        Ok((self.0.principal_id == *p).then(|| self.0.clone()))
    }
    async fn count_failure(
        &self,
        _: &PrincipalId,
        _: &fleetguard_domain::model::Timestamp,
        _: &fleetguard_domain::model::Timestamp,
    ) -> fleetguard_domain::Result<Option<u32>> {
        Ok(None)
    }
    async fn put_identity(&self, _: &Identity) -> fleetguard_domain::Result<()> {
        Ok(())
    }
    async fn put_identity_unless_inactive(&self, _: &Identity) -> fleetguard_domain::Result<bool> {
        Ok(true)
    }
    async fn put_device_identity(
        &self,
        _: &Identity,
        _: fleetguard_domain::model::DeviceStatus,
    ) -> fleetguard_domain::Result<bool> {
        Ok(true)
    }
    async fn get_certificate(
        &self,
        _: &fleetguard_domain::model::CertificateId,
    ) -> fleetguard_domain::Result<Option<fleetguard_domain::model::CertificateRecord>> {
        Ok(None)
    }
}

fn serials(n: usize) -> Vec<Serial> {
    (0..n)
        .filter_map(|i| Serial::parse(&format!("SERIAL-{i:06}")).ok())
        .collect()
}

/// A fresh ES256 key: its JWKS text, a token for alice valid for an hour, and the time it was signed.
fn signed_token() -> (String, String, OffsetDateTime) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
    let enc = EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).expect("pem");
    let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::ES256).expect("jwk");
    jwk.common.key_id = Some("k1".to_owned());
    let jwks_text = serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("jwks");

    let now = OffsetDateTime::now_utc();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".to_owned());
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
        "iat": now.unix_timestamp(), "exp": now.unix_timestamp() + 3600,
    });
    let token = jsonwebtoken::encode(&header, &claims, &enc).expect("sign");
    (jwks_text, token, now)
}

fn bench(c: &mut Criterion) {
    let (jwks_text, token, now) = signed_token();
    let event = json!({
        "token": token,
        "signatureVerified": false,
        "protocols": ["tls", "mqtt"],
        "protocolData": {"mqtt": {"clientId": "x"}},
        "connectionMetadata": {"id": "c0ffee"},
    });

    let config =
        AuthorizerConfig::new("eu-west-1", "123456789012", ISSUER, &[AUDIENCE]).expect("config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");

    for n in [1usize, 20, 100] {
        let engine = Authorizer::new(config.clone(), Jwks::from_json(&jwks_text).expect("jwks"))
            .expect("engine");
        let store = OneOperator(Identity::operator(ISSUER, "alice", "Alice", serials(n)));
        let mut ev = event.clone();
        ev["protocolData"]["mqtt"]["clientId"] = json!(store.0.principal_id.as_str());
        // Warm the cache: every measured decision is served without a store read.
        let first = rt.block_on(authorize(&engine, &store, ev.clone(), now));
        assert!(first.response.is_authenticated, "{:?}", first.reason);
        c.bench_function(&format!("authorize/cached_operator/{n}_serials"), |b| {
            b.iter(|| {
                let d = rt.block_on(authorize(&engine, &store, black_box(ev.clone()), now));
                black_box(d)
            })
        });
    }

    let jwks = Jwks::from_json(&jwks_text).expect("jwks");
    let rules = jwt::TokenRules {
        issuer: ISSUER.to_owned(),
        audiences: vec![AUDIENCE.to_owned()],
        leeway_secs: 30,
    };
    c.bench_function("jwt/verify_es256", |b| {
        b.iter(|| black_box(jwt::verify(&jwks, &rules, black_box(&token), now)))
    });

    let scope = ArnScope::new("eu-west-1", "123456789012").expect("scope");
    let principal = Identity::operator(ISSUER, "alice", "Alice", vec![]).principal_id;
    for n in [1usize, 100] {
        let owned = serials(n);
        c.bench_function(&format!("render/operator_policy/{n}_serials"), |b| {
            b.iter(|| black_box(render::operator_policy(&scope, principal.as_str(), &owned)))
        });
    }
}

/// The target is a p99, which criterion does not report: time 20,000 cached decisions (20 serials)
/// one by one and print p50 / p99 / max. Printed, never asserted.
fn tail_latency() {
    let (jwks, token, now) = signed_token();
    let config =
        AuthorizerConfig::new("eu-west-1", "123456789012", ISSUER, &[AUDIENCE]).expect("config");
    let engine = Authorizer::new(config, Jwks::from_json(&jwks).expect("jwks")).expect("engine");
    let store = OneOperator(Identity::operator(ISSUER, "alice", "Alice", serials(20)));
    let event = json!({"token": token, "signatureVerified": false, "protocols": ["tls", "mqtt"],
        "protocolData": {"mqtt": {"clientId": store.0.principal_id.as_str()}},
        "connectionMetadata": {"id": "c0ffee"}});
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut times: Vec<std::time::Duration> = (0..20_000)
        .map(|_| {
            let ev = event.clone();
            let t = std::time::Instant::now();
            let d = rt.block_on(authorize(&engine, &store, ev, now));
            let e = t.elapsed();
            assert!(d.response.is_authenticated);
            e
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "authorize/cached_operator/20_serials tail over {} decisions: p50 {:?}  p99 {:?}  max {:?}",
        times.len(),
        at(0.50),
        at(0.99),
        times[times.len() - 1]
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    tail_latency();
    Criterion::default().configure_from_args().final_summary();
}
