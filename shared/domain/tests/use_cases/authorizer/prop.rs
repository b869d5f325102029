//! Property tests: whatever the event, the authorizer answers within the contract, and without a
//! valid credential it never authenticates.

use super::{claims, config, ec_key, jwks_json, sign, token_request, NOW};
use base64::Engine;
use fleetguard_domain::authorization::authorizer::identity::hash_password_with;
use fleetguard_domain::authorization::authorizer::*;
use fleetguard_domain::model::Serial;
use fleetguard_testkit::fakes::InMemoryIdentityStore;
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("token".to_owned()),
                    Just("protocolData".to_owned()),
                    Just("mqtt".to_owned()),
                    Just("http".to_owned()),
                    Just("headers".to_owned()),
                    Just("username".to_owned()),
                    Just("password".to_owned()),
                    Just("clientId".to_owned()),
                    Just("authorization".to_owned()),
                    ".{0,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Events of the right shape with hostile field values.
fn arb_event() -> impl Strategy<Value = Value> {
    let username = prop_oneof![
        Just("SN1".to_owned()),
        Just("SN1?SDK=x&Version=1".to_owned()),
        "[A-Za-z0-9_?=&+#*${}/.-]{0,20}",
        ".{0,20}",
    ];
    let password = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| b64(&b)),
        "[A-Za-z0-9+/=]{0,40}",
        "eyJ[A-Za-z0-9_-]{0,40}\\.eyJ[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}"
            .prop_map(|t| b64(t.as_bytes())),
        ".{0,20}",
    ];
    let token = prop_oneof![
        6 => Just(None),
        1 => "eyJ[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}".prop_map(Some),
        1 => ".{0,60}".prop_map(Some),
    ];
    let client = prop::option::of(prop_oneof![Just("SN1".to_owned()), ".{0,20}"]);
    (
        username,
        password,
        token,
        client,
        prop::option::of(".{0,80}"),
    )
        .prop_map(|(u, p, t, c, auth)| {
            let mut mqtt = json!({"username": u, "password": p});
            if let Some(c) = c {
                mqtt["clientId"] = json!(c);
            }
            let mut event = json!({
                "signatureVerified": true,
                "protocols": ["tls", "mqtt", "http"],
                "protocolData": {"mqtt": mqtt},
            });
            if let Some(t) = t {
                event["token"] = json!(t);
            }
            if let Some(a) = auth {
                event["protocolData"]["http"] = json!({"headers": {"Authorization": a}});
            }
            event
        })
}

fn engine_and_store() -> (Authorizer, InMemoryIdentityStore, super::TestKey) {
    let key = ec_key("k1");
    let engine = Authorizer::new(
        config(),
        Jwks::from_json(&jwks_json(&[&key])).expect("jwks"),
    )
    .expect("engine");
    let store = InMemoryIdentityStore::new();
    store.put(Identity::operator(
        super::ISSUER,
        "alice",
        "Alice",
        super::serials(&["SN1"]),
    ));
    let params = argon2::Params::new(8, 1, 1, None).expect("params");
    store.put(Identity::device(
        Serial::parse("SN1").expect("serial"),
        hash_password_with(b"a long secret nobody will guess 8f3a", params).expect("hash"),
    ));
    (engine, store, key)
}

fn decide_blocking(engine: &Authorizer, store: &InMemoryIdentityStore, raw: Value) -> Decision {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(authorize(engine, store, raw, NOW))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_json_never_authenticates(raw in arb_json()) {
        let (engine, store, _) = engine_and_store();
        let d = decide_blocking(&engine, &store, raw);
        prop_assert!(!d.response.is_authenticated, "{:?}", d);
        prop_assert!(validate_response(&d.response).is_ok());
    }

    #[test]
    fn hostile_events_never_authenticate(raw in arb_event()) {
        let (engine, store, _) = engine_and_store();
        let d = decide_blocking(&engine, &store, raw);
        prop_assert!(!d.response.is_authenticated, "{:?}", d);
        prop_assert!(validate_response(&d.response).is_ok());
    }

    #[test]
    fn tampered_tokens_never_authenticate(pos in 0usize..400, byte in any::<u8>()) {
        let (engine, store, key) = engine_and_store();
        let token = sign(&key, &claims("alice", 3600));
        let mut bytes = token.clone().into_bytes();
        let i = pos % bytes.len();
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let tampered = String::from_utf8_lossy(&bytes).into_owned();
        prop_assume!(tampered != token);
        let d = decide_blocking(&engine, &store, token_request(&tampered));
        // base64url decoding rejects non-canonical trailing bits, so every change is refused.
        prop_assert!(!d.response.is_authenticated, "tampered token accepted at {}: {:?}", i, d.reason);
        prop_assert!(validate_response(&d.response).is_ok());
    }
}
