//! The hostile-input corpus (`tests/corpus/`), replayed on every run without the emulator: every
//! handler answers garbage with a clean error or deny, writes nothing but audit entries (and a
//! `rejected` reply on the event's own topic), and never panics.

use fleetguard_domain::authorization::authorizer::authorize;
use fleetguard_domain::model::{
    CertificateId, CertificateRecord, Outcome, Principal, Reason, Record, RecordId, Serial,
};
use fleetguard_domain::ports::{PrincipalFacts, Records};
use fleetguard_domain::records::delete::DeleteRecordService;
use fleetguard_testkit::fakes::InMemoryIdentityStore;
use fleetguard_testkit::fakes::{InMemoryAudit, InMemoryRecords, RecordingPublisher};
use fleetguard_tests::{corpus, corpus_json, TestIdp};
use serde_json::{json, Value};

/// Bigger-than-allowed and structurally odd variants of every corpus event.
fn derived(events: &[Value]) -> Vec<Value> {
    let huge = "A".repeat(300 * 1024);
    let mut out = events.to_vec();
    for e in events {
        if let Value::Object(map) = e {
            for k in map.keys() {
                for v in [
                    json!(null),
                    json!(huge),
                    json!([1]),
                    json!({"$": "{"}),
                    json!(-0.0),
                ] {
                    let mut m = map.clone();
                    m.insert(k.clone(), v);
                    out.push(Value::Object(m));
                }
            }
        }
    }
    out.push(json!({ "pad": huge }));
    out
}

const CERT: &str = "a906a7fb5acc1f81d510846a59086c87c0f346ebf5a14293a71ebf9bff206404";

/// Sends every event of `corpus` and of `events.json` (each with its derived variants, `PRINCIPAL`
/// standing for [`CERT`]) through `handle`: each must be a decision, never accepted, never an error.
/// Returns how many were sent.
async fn refuse_all<F, Fut>(corpus: &str, handle: F) -> usize
where
    F: Fn(Value) -> Fut,
    Fut: std::future::Future<Output = fleetguard_domain::Result<Outcome>>,
{
    let mut events = derived(&corpus_json(corpus));
    events.extend(derived(&corpus_json("events.json")));
    let n = events.len();
    for raw in events {
        let text = raw.to_string().replace("PRINCIPAL", CERT);
        let raw: Value = serde_json::from_str(&text).unwrap();
        let shown = text.chars().take(200).collect::<String>();
        match handle(raw).await {
            Ok(outcome) => assert_ne!(outcome, Outcome::Accepted, "accepted: {shown}"),
            Err(e) => panic!("hostile input must be a decision, not an error: {e}: {shown}"),
        }
    }
    n
}

#[tokio::test]
async fn the_authorizer_denies_every_hostile_request() {
    let idp = TestIdp::new("https://login.example.test", "fleetguard");
    let engine = idp.authorizer();
    let store = InMemoryIdentityStore::new();
    let now = fleetguard_domain::model::now();
    let mut requests = derived(&corpus_json("authorizer.json"));
    requests.extend(derived(&corpus_json("events.json")));
    // Every token-shaped string, in every place a token can be.
    for token in corpus("tokens.txt").lines().filter(|l| !l.is_empty()) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        requests.push(json!({"token": token}));
        requests.push(json!({"protocolData": {"http": {"headers": {"authorization": format!("Bearer {token}")}}}}));
        requests
            .push(json!({"protocolData": {"http": {"queryString": format!("?token={token}")}}}));
        requests.push(json!({"protocolData": {"mqtt": {"username": "alice", "password": b64, "clientId": "x"}}}));
    }
    assert!(requests.len() > 300);
    for raw in requests {
        let shown = raw.to_string().chars().take(200).collect::<String>();
        let d = authorize(&engine, &store, raw, now).await;
        assert!(!d.is_authenticated(), "allowed: {shown}");
        assert!(d.response.policy_documents.is_empty(), "{shown}");
    }
}

#[tokio::test]
async fn delete_record_refuses_every_hostile_event_and_changes_no_record() {
    let audit = InMemoryAudit::default();
    let records = InMemoryRecords::new(audit.clone());
    let serial = Serial::parse("SN0001").unwrap();
    let principal = Principal::parse(CERT).unwrap();
    records.set_facts(
        &principal,
        PrincipalFacts::Certificate(CertificateRecord {
            certificate_id: CertificateId::parse(CERT).unwrap(),
            serial: serial.clone(),
            denied: false,
            held: false,
            updated_at: fleetguard_domain::model::Timestamp::now(),
        }),
    );
    for id in ["rec-1", "rec-2"] {
        let record: Record = serde_json::from_value(json!({
            "serial": "SN0001", "record_id": id, "version": 1, "data": "payload"}))
        .unwrap();
        records.put(&record).await.unwrap();
    }
    let before = records.snapshot();
    let publisher = RecordingPublisher::default();
    let service = DeleteRecordService {
        records,
        audit: audit.clone(),
        publisher: publisher.clone(),
        security_topic: "fleetguard/security".into(),
    };

    let n = refuse_all("delete-record.json", |raw| async {
        service.handle(raw).await.map(|d| d.outcome)
    })
    .await;
    assert_eq!(service.records.snapshot(), before, "a record changed");
    let entries = audit.entries();
    assert!(!entries.is_empty() && entries.len() <= n);
    assert!(entries.iter().all(|e| e.outcome != Outcome::Accepted));
    for (topic, _) in publisher.published() {
        assert!(
            topic == "fleetguard/security"
                || topic.starts_with("P/SN0001/deleterecords/") && topic.ends_with("/rejected")
                || topic.starts_with("P/SN0002/deleterecords/") && topic.ends_with("/rejected"),
            "published on {topic}"
        );
    }
}

#[tokio::test]
async fn the_rotator_issues_nothing_for_any_hostile_event() {
    use fleetguard_domain::lifecycle::rotation::{RotationConfig, RotationService};
    use fleetguard_domain::ports::{IotControl, Registry};
    use fleetguard_testkit::fakes::{InMemoryIot, InMemoryRegistry, InMemoryRotations};
    let registry = InMemoryRegistry::default();
    let iot = InMemoryIot::default();
    let audit = InMemoryAudit::default();
    let (serial, cert) = (
        Serial::parse("SN0001").unwrap(),
        CertificateId::parse(CERT).unwrap(),
    );
    registry.import_serial(&serial).await.unwrap();
    registry
        .bind_certificate(&serial, &cert, None, None)
        .await
        .unwrap();
    let signer = fleetguard_testkit::pki::TestSigner::default();
    let ca_pem = signer.ca_pem("hostile fleet CA", 3650).await;
    let publisher = RecordingPublisher::default();
    let service = RotationService {
        registry: registry.clone(),
        rotations: InMemoryRotations {
            registry: registry.clone(),
            audit: audit.clone(),
        },
        control: iot.clone(),
        signer,
        publisher: publisher.clone(),
        audit: audit.clone(),
        config: RotationConfig {
            fleet_policy: "fleet".into(),
            validity_days: 365,
            confirm_hours: 24,
            grace_hours: 24,
            min_interval_hours: 24,
            expiry_window_days: 30,
        },
        ca_pem,
    };
    let before = registry.get_device(&serial).await.unwrap();
    let n = refuse_all("rotation.json", |raw| async {
        service.handle(raw).await.map(|d| d.outcome)
    })
    .await;
    assert_eq!(registry.get_device(&serial).await.unwrap(), before);
    assert!(iot.ca_certificates().await.unwrap().is_empty());
    let entries = audit.entries();
    assert!(!entries.is_empty() && entries.len() <= n);
    assert!(entries.iter().all(|e| e.outcome != Outcome::Accepted));
    for (topic, _) in publisher.published() {
        assert!(
            topic.starts_with("P/SN") && topic.ends_with("/rejected"),
            "published on {topic}"
        );
    }
}

#[test]
fn every_hostile_identifier_is_refused() {
    for line in corpus("ids.txt").lines() {
        assert!(Serial::parse(line).is_err(), "serial {line:?}");
        assert!(RecordId::parse(line).is_err(), "record id {line:?}");
        assert!(
            CertificateId::parse(line).is_err(),
            "certificate id {line:?}"
        );
        assert!(Principal::parse(line).is_err(), "principal {line:?}");
    }
}

#[test]
fn garbage_certificates_are_errors() {
    let now = fleetguard_domain::model::now();
    let ca = fleetguard_tests::TestCa::new("hostile CA");
    let good = ca.issue("SN0001");
    let mut inputs: Vec<String> = vec![
        String::new(),
        "-----BEGIN CERTIFICATE-----".into(),
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----".into(),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----".into(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into(),
        format!("{good}{good}"),
        good.replace("CERTIFICATE", "X509 CRL"),
        "A".repeat(1 << 20),
    ];
    // Every truncation and a bit flip at many offsets of a real certificate.
    for cut in (0..good.len()).step_by(37) {
        inputs.push(good[..cut].to_owned());
    }
    let der = fleetguard_domain::x509::pem_to_der(&good).unwrap();
    for i in (0..der.len()).step_by(11) {
        let mut d = der.clone();
        d[i] ^= 0x5a;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&d);
        inputs.push(format!(
            "-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n"
        ));
    }
    for pem in &inputs {
        // Parsing never panics; anything but the real certificate fails chain validation.
        let _ = fleetguard_domain::x509::issued_certificate_id(pem, now);
        if pem != &good {
            assert!(
                fleetguard_domain::x509::validate_device_certificate(pem, &ca.pem(), now).is_err(),
                "accepted a mangled certificate"
            );
        }
    }
    assert!(fleetguard_domain::x509::validate_device_certificate(&good, &ca.pem(), now).is_ok());
}

/// Rotation CSRs: every truncation and a bit flip at many offsets of a real request are refused with
/// a rotation reason, never a panic; only the request itself passes.
#[test]
fn mangled_csrs_are_refused() {
    use base64::Engine;
    use fleetguard_domain::lifecycle::csr::{csr_pem_to_der, validate_csr};
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let good = fleetguard_testkit::pki::csr_pem(&key, "SN0001");
    assert!(validate_csr(&good, None).is_ok());
    let mut inputs: Vec<String> = (0..good.len())
        .step_by(23)
        .map(|cut| good[..cut].to_owned())
        .collect();
    let der = csr_pem_to_der(&good).unwrap();
    for i in 0..der.len() {
        let mut d = der.clone();
        d[i] ^= 0x10;
        inputs.push(format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::engine::general_purpose::STANDARD.encode(&d)
        ));
    }
    inputs.push(good.replace("CERTIFICATE REQUEST", "CERTIFICATE"));
    inputs.push("A".repeat(1 << 20));
    let key_der = validate_csr(&good, None).unwrap().public_key;
    let mut passed = 0;
    for pem in &inputs {
        if csr_pem_to_der(pem).is_ok_and(|d| d == der) {
            continue; // a cut that only took the final newline: the request itself
        }
        // x509-parser reads the outer signature AlgorithmIdentifier's OID whatever its tag (a flip
        // of the tag to IA5String passes). That part is not signed in any CSR, and what passes still
        // proves the same key: never a key other than the one that signed.
        if let Ok(valid) = validate_csr(pem, None) {
            assert_eq!(
                valid.public_key, key_der,
                "a mangled CSR passed with another key"
            );
            passed += 1;
            continue;
        }
        let refused = validate_csr(pem, None).expect_err("refused");
        assert!(
            matches!(
                refused.reason,
                Reason::MalformedCsr | Reason::CsrSignatureInvalid | Reason::CsrKeyNotAllowed
            ),
            "{:?}",
            refused.reason
        );
    }
    assert!(passed <= 2, "{passed} mangled CSRs passed");
}

#[test]
fn hostile_policy_documents_never_panic_the_evaluator() {
    use iot_policy::{evaluate, lint, ConnectionContext, Request};
    let ctx = ConnectionContext::device("SN0001", true).in_account("us-east-1", "123456789012");
    let docs: Vec<String> = serde_json::from_str(&corpus("policies.json")).unwrap();
    for doc in &docs {
        let _ = lint(&[doc.as_str()]);
        for (action, target) in [
            ("iot:Publish", "P/SN0001/x"),
            ("iot:Connect", "SN0001"),
            ("iot:Subscribe", "P/#"),
        ] {
            if let Ok(req) = Request::for_target(action, target, &ctx) {
                let _ = evaluate(&[doc.as_str()], &req, &ctx);
            }
        }
    }
}

/// Pre-provisioning hook parameters: each refused (the fuzz body asserts no allow, nothing bound, one
/// audit entry), as is every derived variant.
#[test]
fn hostile_hook_parameters_are_refused_and_bind_nothing() {
    let cases = corpus_json("hook-parameters.json");
    assert!(cases.len() >= 20);
    for case in derived(&cases) {
        fleetguard_testkit::fuzzing::hook_parameters(case.to_string().as_bytes());
    }
}

/// TLS-handshake events: the throwaway fixture certificate in every broken shape, and the shapes
/// derived from them: none is let through (it is neither in the registry nor issued by a fleet CA),
/// and each refusal is audited (asserted by the fuzz body).
#[test]
fn hostile_handshakes_are_refused() {
    let cases = corpus_json("handshake.json");
    assert!(cases.len() >= 20);
    for case in derived(&cases) {
        assert!(
            !fleetguard_testkit::fuzzing::handshake_allowed(case.to_string().as_bytes()),
            "{case}"
        );
    }
}

/// The fuzz targets' seeds (`fuzz/corpus/<target>/`), every event fixture and the corpus above, through
/// the entry points the fuzzer calls (`fleetguard_testkit::fuzzing`): on stable, in every run, so the targets
/// and their invariants cannot rot while nobody fuzzes.
#[test]
fn the_fuzz_targets_hold_their_invariants_over_the_seeds() {
    let root = fleetguard_tests::workspace_root();
    let mut extra: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(root.join("tests/fixtures")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            extra.push(std::fs::read(path).unwrap());
        }
    }
    for name in ["ids.txt", "tokens.txt"] {
        extra.extend(corpus(name).lines().map(|l| l.as_bytes().to_vec()));
    }
    for (name, target) in fleetguard_testkit::fuzzing::TARGETS {
        let dir = root.join("fuzz/corpus").join(name);
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            target(&std::fs::read(entry.unwrap().path()).unwrap());
            seeds += 1;
        }
        assert!(seeds > 0, "{name} has no seeds");
        for input in &extra {
            target(input);
        }
    }
}
