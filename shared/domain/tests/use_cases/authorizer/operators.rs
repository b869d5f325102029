//! Operators: JWT verification, the operator policy, the cache.

use super::*;

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
