//! Entry points of the fuzz targets (`fuzz/`, cargo-fuzz), also replayed over the committed fuzz
//! corpus by the normal test suite (`tests/hostile.rs`), so a target cannot rot unnoticed.
//!
//! Each takes raw bytes, runs one parser or one whole handler over in-memory fakes, and panics only
//! when an invariant breaks (a panic inside fleetguard is a finding too). Handlers run against a small
//! world: a CA, devices `SN0001` and `SN0002` with their certificates, a record each. The certificate
//! and CA ids of the event fixtures (`tests/fixtures/`) are rewritten to the world's, so the fixtures
//! are good seeds that reach past the "unknown certificate" refusal.

use crate::fakes::InMemoryIdentityStore;
use crate::fakes::{
    InMemoryAudit, InMemoryEnrollments, InMemoryIot, InMemoryRecords, InMemoryRegistry,
    RecordingConnections, RecordingPublisher,
};
use fleetguard_domain::authorization::authorizer::{authorize, Authorizer, AuthorizerConfig, Jwks};
use fleetguard_domain::lifecycle::revocation::{Action, RevocationConfig, Revoker};
use fleetguard_domain::model::{
    CertificateId, CertificateRecord, CertificateStatus, DeviceStatus, Principal, Record, RecordId,
    Serial,
};
use fleetguard_domain::ports::{PrincipalFacts, Records, Registry};
use fleetguard_domain::provisioning::claim::ClaimHook;
use fleetguard_domain::provisioning::jitr::Provisioner;
use fleetguard_domain::records::delete::DeleteRecordService;
use std::sync::OnceLock;
use time::OffsetDateTime;

/// The ids the committed fixtures use; rewritten to the world's before parsing.
const FIXTURE_CERT: &str = "2d7a94e4ab2c5a7b8b2b3f7e1b62f2c1b1b9c7f3a8a4c2e9f3b4a5c6d7e8f901";
const FIXTURE_CA: &str = "8c2a3f1b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";
const FLEET_POLICY: &str = "fleetguard-fleet";
const GROUP: &str = "fleetguard-quarantine";

struct World {
    ca_pem: String,
    ca_id: CertificateId,
    /// (serial, PEM, id) of SN0001 and SN0002.
    devices: Vec<(Serial, String, CertificateId)>,
    jwks: String,
    /// SN0001's factory attestation key (its private half dropped) and SN0002's secret hash.
    enrollments: Vec<fleetguard_domain::model::Enrollment>,
    now: OffsetDateTime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "fuzz CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let now = OffsetDateTime::now_utc();
        let devices = ["SN0001", "SN0002"]
            .iter()
            .map(|serial| {
                let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
                p.distinguished_name
                    .push(DnType::CustomDnType(vec![2, 5, 4, 5]), *serial);
                p.distinguished_name.push(DnType::CommonName, *serial);
                p.not_before = now - time::Duration::hours(1);
                p.not_after = now + time::Duration::days(30);
                let pem = p
                    .signed_by(&KeyPair::generate().expect("key"), &ca)
                    .expect("device")
                    .pem();
                let id =
                    CertificateId::of_der(&fleetguard_domain::x509::pem_to_der(&pem).expect("der"));
                (Serial::parse(serial).expect("serial"), pem, id)
            })
            .collect();
        // A JWKS whose private key is dropped at once: no input can carry a valid signature.
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let point = key.public_key_raw();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "alg": "ES256", "use": "sig", "x": b64.encode(&point[1..33]),
            "y": b64.encode(&point[33..65])}]})
        .to_string();
        // Enrollment material whose private halves nobody has: no input can carry a valid proof.
        let attestation = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let std_b64 = base64::engine::general_purpose::STANDARD;
        let factory = fleetguard_domain::provisioning::enrollment::enrollment_from_columns(
            &std_b64.encode(attestation.public_key_raw()),
            "",
            "",
        )
        .expect("factory key");
        let secret = fleetguard_domain::provisioning::enrollment::enrollment_from_columns(
            "",
            &fleetguard_domain::provisioning::enrollment::secret_hash(
                uuid::Uuid::new_v4().as_bytes(),
            ),
            "",
        )
        .expect("secret");
        World {
            enrollments: vec![factory, secret],
            ca_id: CertificateId::of_der(
                &fleetguard_domain::x509::pem_to_der(&ca.pem()).expect("der"),
            ),
            ca_pem: ca.pem(),
            devices,
            jwks,
            now,
        }
    })
}

/// The input as JSON (fixture ids rewritten), or as a JSON string when it is not JSON.
fn json(data: &[u8]) -> serde_json::Value {
    let w = world();
    let text = String::from_utf8_lossy(data)
        .replace(FIXTURE_CERT, w.devices[0].2.as_str())
        .replace(FIXTURE_CA, w.ca_id.as_str());
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    // One runtime per thread, not per input: the fuzzer calls a target millions of times.
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
    }
    RUNTIME.with(|rt| rt.block_on(f))
}

/// Both devices allow-listed; with `provisioned`, bound and active with their certificates.
async fn registry_and_iot(provisioned: bool) -> (InMemoryRegistry, InMemoryIot) {
    let w = world();
    let (registry, iot) = (InMemoryRegistry::default(), InMemoryIot::default());
    iot.register_ca(&w.ca_pem).expect("CA");
    for ((serial, pem, id), enrollment) in w.devices.iter().zip(&w.enrollments) {
        let device = fleetguard_domain::model::Device::manufactured(
            serial.clone(),
            enrollment.clone(),
            fleetguard_domain::model::Timestamp::now(),
        );
        registry.import_device(&device).await.expect("import");
        iot.register_certificate(pem).expect("certificate");
        if provisioned {
            registry
                .bind_certificate(serial, id, None, None)
                .await
                .expect("bind");
            use fleetguard_domain::ports::IotControl;
            iot.set_certificate_status(id, CertificateStatus::Active)
                .await
                .expect("activate");
            iot.ensure_thing(serial).await.expect("thing");
        }
    }
    (registry, iot)
}

/// JITR registration event → provisioning. Only a world certificate can become active, and only
/// bound to the serial in its own subject; every decision is audited.
pub fn jitr_event(data: &[u8]) {
    let w = world();
    block_on(async {
        let (registry, iot) = registry_and_iot(false).await;
        let audit = InMemoryAudit::default();
        let p = Provisioner::new(
            registry,
            iot,
            audit.clone(),
            FLEET_POLICY.into(),
            CertificateStatus::Revoked,
        );
        let d = p.handle(json(data), w.now).await.expect("fakes never fail");
        assert!(!audit.entries().is_empty(), "decision not audited: {d:?}");
        for (serial, _, id) in &w.devices {
            if p.control.status(id) == Some(CertificateStatus::Active) {
                let device = p.registry.get_device(serial).await.unwrap().unwrap();
                assert_eq!(device.certificate_id.as_ref(), Some(id));
                assert_eq!(device.status, DeviceStatus::Active);
            }
        }
    })
}

/// Runs the pre-provisioning hook over the world (SN0001 with a factory key, SN0002 with a one-time
/// secret, neither provisioned). Nobody holds their proofs, so nothing may be allowed, nothing bound,
/// and every refusal audited.
fn run_hook(request: serde_json::Value) {
    let w = world();
    block_on(async {
        let (registry, iot) = registry_and_iot(false).await;
        let audit = InMemoryAudit::default();
        let hook = ClaimHook::new(
            InMemoryEnrollments {
                registry: registry.clone(),
                audit: audit.clone(),
            },
            iot,
            audit.clone(),
            fleetguard_domain::provisioning::claim::DEFAULT_PROOF_WINDOW_SECONDS,
        );
        let r = hook.handle(request, w.now).await;
        assert!(!r.allow_provisioning, "allowed without a proof: {r:?}");
        assert_eq!(
            serde_json::to_value(&r).expect("json"),
            serde_json::json!({"allowProvisioning": false})
        );
        for (serial, _, _) in &w.devices {
            let d = registry
                .get_device(serial)
                .await
                .expect("fake")
                .expect("device");
            assert_eq!(
                d.status,
                DeviceStatus::Manufactured,
                "bound without a proof"
            );
        }
        assert_eq!(audit.entries().len(), 1, "one refusal, audited once");
    })
}

/// Fleet-provisioning pre-provisioning hook, whole requests.
pub fn hook_request(data: &[u8]) {
    run_hook(json(data));
}

/// The hook's `parameters`: a well-formed request for SN0001's own certificate whose parameters are
/// the input (a JSON object, or `serial\ntimestamp\nsignature\nsecret` lines).
pub fn hook_parameters(data: &[u8]) {
    let w = world();
    let parameters = match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            let text = String::from_utf8_lossy(data);
            let mut lines = text.split('\n');
            let mut p = serde_json::Map::new();
            for name in [
                "SerialNumber",
                "ProofTimestamp",
                "ProofSignature",
                "EnrollmentSecret",
            ] {
                if let Some(v) = lines.next() {
                    p.insert(name.into(), v.into());
                }
            }
            serde_json::Value::Object(p)
        }
    };
    run_hook(serde_json::json!({
        "claimCertificateId": "1".repeat(64),
        "certificateId": w.devices[0].2.as_str(),
        "certificatePem": w.devices[0].1,
        "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/fleetguard",
        "clientId": "SN0001",
        "parameters": parameters,
    }));
}

/// Custom-authorizer request: nothing the fuzzer can write carries a valid token or a known password,
/// so every answer is a deny without policies, and every answer is a well-formed response.
pub fn authorizer_request(data: &[u8]) {
    let w = world();
    block_on(async {
        let config = AuthorizerConfig::new(
            "us-east-1",
            "123456789012",
            "https://login.example.test",
            &["fleetguard"],
        )
        .expect("config");
        let engine =
            Authorizer::new(config, Jwks::from_json(&w.jwks).expect("jwks")).expect("authorizer");
        let store = InMemoryIdentityStore::new();
        let d = authorize(&engine, &store, json(data), w.now).await;
        assert!(!d.is_authenticated(), "allowed");
        assert!(d.response.policy_documents.is_empty());
        fleetguard_domain::authorization::authorizer::validate_response(&d.response)
            .expect("well-formed response");
    })
}

/// A JWT on its own: never verifies (no input is signed by the world's key), never panics.
pub fn jwt(data: &[u8]) {
    let w = world();
    let token = String::from_utf8_lossy(data);
    let rules = fleetguard_domain::authorization::authorizer::TokenRules {
        issuer: "https://login.example.test".into(),
        audiences: vec!["fleetguard".into()],
        leeway_secs: 30,
    };
    let jwks = Jwks::from_json(&w.jwks).expect("jwks");
    let _ = fleetguard_domain::authorization::authorizer::jwt::looks_like_jwt(&token);
    assert!(fleetguard_domain::authorization::authorizer::jwt::verify(
        &jwks, &rules, &token, w.now
    )
    .is_err());
    let _ = Jwks::from_json(&token);
}

/// Topic-rule payload → delete-record. SN0002's record is never touched by SN0001's certificate
/// (or anything else the fuzzer can name), and every decision is audited.
pub fn delete_record_event(data: &[u8]) {
    let w = world();
    block_on(async {
        let audit = InMemoryAudit::default();
        let records = InMemoryRecords::new(audit.clone());
        for (serial, _, id) in &w.devices {
            records.set_facts(
                &Principal::Certificate(id.clone()),
                PrincipalFacts::Certificate(CertificateRecord {
                    certificate_id: id.clone(),
                    serial: serial.clone(),
                    denied: false,
                    held: false,
                    updated_at: fleetguard_domain::model::Timestamp::now(),
                }),
            );
            for rec in ["rec-42", "rec-9"] {
                let record: Record = serde_json::from_value(serde_json::json!({
                    "serial": serial.as_str(), "record_id": rec, "version": 1, "data": "x"}))
                .expect("record");
                records.put(&record).await.expect("put");
            }
        }
        let service = DeleteRecordService {
            records,
            audit: audit.clone(),
            publisher: RecordingPublisher::default(),
            security_topic: "fleetguard/security".into(),
        };
        let _ = service.handle(json(data)).await.expect("fakes never fail");
        for r in service.records.snapshot() {
            if r.serial == w.devices[1].0 {
                assert!(!r.is_deleted(), "SN0002 lost a record to another principal");
            }
        }
        assert!(!audit.entries().is_empty(), "decision not audited");
    })
}

/// Revoker triggers (operator command, Defender via SNS, tamper report, cross-serial security event).
/// Never an error over the fakes; a device is only isolated by a command naming it or by a signal
/// from or about it, and a REVOKED certificate stays revoked.
pub fn revoker_event(data: &[u8]) {
    let w = world();
    block_on(async {
        let (registry, iot) = registry_and_iot(true).await;
        let audit = InMemoryAudit::default();
        let revoker = Revoker {
            registry,
            control: iot,
            connections: RecordingConnections::default(),
            records: InMemoryRecords::new(audit.clone()),
            audit: audit.clone(),
            config: RevocationConfig {
                fleet_policy: FLEET_POLICY.into(),
                quarantine_group: GROUP.into(),
                defender_action: Action::Quarantine,
                violation_threshold: 1,
                violation_window: time::Duration::hours(1),
                rollback_lookback: time::Duration::hours(24),
                shared_serial_action:
                    fleetguard_domain::lifecycle::revocation::SharedSerialAction::Quarantine,
            },
        };
        let raw = json(data);
        let text = raw.to_string();
        let reports = revoker.handle(raw, w.now).await.expect("fakes never fail");
        assert!(!reports.is_empty() || text.contains("Records"));
        for (serial, _, id) in &w.devices {
            let isolated = revoker.control.status(id) != Some(CertificateStatus::Active);
            if isolated {
                assert!(
                    text.contains(serial.as_str()) || text.contains(id.as_str()),
                    "{serial} isolated by an event that names neither it nor its certificate"
                );
            }
        }
    })
}

/// PEM/DER certificates: parsing never panics; only the world's own certificates validate.
pub fn certificate(data: &[u8]) {
    let w = world();
    let text = String::from_utf8_lossy(data);
    let _ = fleetguard_domain::x509::pem_to_der(&text);
    let _ = fleetguard_domain::x509::issued_certificate_id(&text, w.now);
    if fleetguard_domain::x509::validate_device_certificate(&text, &w.ca_pem, w.now).is_ok() {
        let der = fleetguard_domain::x509::pem_to_der(&text).expect("validated");
        let id = CertificateId::of_der(&der);
        assert!(w.devices.iter().any(|d| d.2 == id), "validated a stranger");
    }
    // Raw DER, wrapped as PEM.
    use base64::Engine;
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    let _ = fleetguard_domain::x509::issued_certificate_id(&pem, w.now);
    assert!(
        fleetguard_domain::x509::validate_device_certificate(&pem, &w.ca_pem, w.now).is_err()
            || w.devices.iter().any(|d| d.2 == CertificateId::of_der(data)),
        "validated a stranger's DER"
    );
}

/// Rotation CSRs (PEM, and raw DER wrapped as PEM): parsing never panics, and whatever passes carries
/// an allowed key that it proved it holds (its self-signature verifies, which `validate_csr` checked;
/// here the key kind and the SubjectPublicKeyInfo are re-derived and must agree).
pub fn csr(data: &[u8]) {
    use fleetguard_domain::lifecycle::csr::{validate_csr, KeyKind};
    let text = String::from_utf8_lossy(data);
    use base64::Engine;
    let wrapped = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    for pem in [text.as_ref(), wrapped.as_str()] {
        if let Ok(valid) = validate_csr(pem, None) {
            assert!(!valid.public_key.is_empty());
            match valid.kind {
                KeyKind::EcP256 => {}
                KeyKind::Rsa { bits } => assert!(bits >= 2048, "accepted RSA-{bits}"),
            }
            // The same request is refused as a rotation to the key it already has.
            let again = validate_csr(pem, Some(&valid.public_key));
            assert!(again.is_err(), "a reused key passed");
        }
    }
}

/// Identifier and topic validators: what they accept has the documented shape.
pub fn identifiers(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(serial) = Serial::parse(&s) {
        assert_eq!(serial.as_str(), s);
        assert!(s.len() <= 64 && !s.is_empty());
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
    if let Ok(id) = RecordId::parse(&s) {
        assert_eq!(id.as_str(), s);
        assert!(!s.contains(['/', '+', '#', '\0']));
    }
    if let Ok(id) = CertificateId::parse(&s) {
        assert_eq!(id.as_str().len(), 64);
        assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    }
    if let Ok(p) = Principal::parse(&s) {
        assert_eq!(p.as_str(), s);
    }
    let _ = fleetguard_domain::authorization::authorizer::strip_sdk_suffix(&s);
    let _ = fleetguard_domain::authorization::authorizer::identity::PrincipalId::parse(&s);
    // A device secret that parses is printable, bounded, strong by the estimate, and verifies.
    use fleetguard_domain::authorization::authorizer::secret::{self, DeviceSecret, SecretCheck};
    if let Ok(secret) = DeviceSecret::parse(&s) {
        assert!(s.len() <= DeviceSecret::MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic()));
        assert!(DeviceSecret::estimated_bits(&s) >= DeviceSecret::MIN_BITS);
        let serial = Serial::parse("SN-FUZZ").expect("serial");
        let stored = secret.digest(&serial);
        assert_eq!(secret::verify(&serial, data, &stored), SecretCheck::Match);
    }
}

/// Policy documents: parse, lint and evaluate never panic; a document that parses evaluates.
pub fn policy(data: &[u8]) {
    use iot_policy::{evaluate, lint, ConnectionContext, Request};
    let doc = String::from_utf8_lossy(data);
    let _ = lint(&[doc.as_ref()]);
    let ctx = ConnectionContext::device("SN0001", true).in_account("us-east-1", "123456789012");
    for (action, target) in [
        ("iot:Publish", "P/SN0001/deleterecords/r1"),
        ("iot:Publish", "P/SN0002/deleterecords/r1"),
        ("iot:Connect", "SN0001"),
        ("iot:Subscribe", "P/#"),
        ("iot:Receive", "P/SN0001/x"),
    ] {
        if let Ok(req) = Request::for_target(action, target, &ctx) {
            let _ = evaluate(&[doc.as_ref()], &req, &ctx);
        }
    }
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target by name, for the corpus replay and the fuzz crate.
/// Custom client certificate validation (the TLS-handshake Lambda's event): only a world certificate
/// in the registry or issued by the world's CA is let through, and every refusal is audited. The input
/// is the event, or, when it is not JSON, the text of one chain element.
pub fn handshake_request(data: &[u8]) {
    handshake_allowed(data);
}

/// [`handshake_request`]'s body; whether the handshake was allowed.
pub fn handshake_allowed(data: &[u8]) -> bool {
    use fleetguard_domain::authorization::handshake::{HandshakeConfig, HandshakeValidator};
    let w = world();
    block_on(async {
        let (registry, iot) = registry_and_iot(true).await;
        let audit = InMemoryAudit::default();
        let config = HandshakeConfig {
            ca_ids: vec![w.ca_id.clone()],
            cache_ttl: time::Duration::seconds(5),
            ca_cache_ttl: time::Duration::seconds(60),
        };
        let v = HandshakeValidator::new(registry, iot, audit.clone(), config);
        let raw = match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(v) => v,
            Err(_) => serde_json::json!({
                "clientCertificateChain": [String::from_utf8_lossy(data)]
            }),
        };
        let d = v.handle(raw, w.now).await;
        if d.allowed {
            // Only the world's certificates: the leaf is one of them, or signed by the world's CA.
            let known = w
                .devices
                .iter()
                .any(|(_, _, id)| d.certificate_id.as_ref() == Some(id));
            assert!(
                known || d.reason == fleetguard_domain::model::Reason::FirstConnect,
                "allowed {d:?}"
            );
        } else {
            assert!(!audit.entries().is_empty(), "refusal not audited");
        }
        d.allowed
    })
}

pub const TARGETS: &[(&str, Target)] = &[
    ("jitr_event", jitr_event),
    ("hook_request", hook_request),
    ("hook_parameters", hook_parameters),
    ("authorizer_request", authorizer_request),
    ("jwt", jwt),
    ("delete_record_event", delete_record_event),
    ("rotation_event", rotation_event),
    ("revoker_event", revoker_event),
    ("certificate", certificate),
    ("csr", csr),
    ("identifiers", identifiers),
    ("policy", policy),
    ("handshake_request", handshake_request),
];

/// The fleet CA key and certificate rotation signs with (made once).
fn rotation_ca() -> &'static (crate::pki::TestSigner, String) {
    static CA: OnceLock<(crate::pki::TestSigner, String)> = OnceLock::new();
    CA.get_or_init(|| {
        let signer = crate::pki::TestSigner::default();
        let pem = block_on(signer.ca_pem("fuzz fleet CA", 3650));
        (signer, pem)
    })
}

/// Topic-rule payload → rotator (rotate or confirm). A device's registry entry only ever gains a
/// rotation, or a new certificate, from its own current certificate; every decision is audited.
pub fn rotation_event(data: &[u8]) {
    use fleetguard_domain::ports::CaSigner;
    struct Shared(&'static crate::pki::TestSigner);
    impl CaSigner for Shared {
        fn public_key(&self) -> &[u8] {
            self.0.public_key()
        }
        async fn sign(&self, message: &[u8]) -> fleetguard_domain::Result<Vec<u8>> {
            self.0.sign(message).await
        }
    }
    let w = world();
    let (signer, ca_pem) = rotation_ca();
    block_on(async {
        let (registry, iot) = registry_and_iot(true).await;
        let audit = InMemoryAudit::default();
        let service = fleetguard_domain::lifecycle::rotation::RotationService {
            registry: registry.clone(),
            rotations: crate::fakes::InMemoryRotations {
                registry: registry.clone(),
                audit: audit.clone(),
            },
            control: iot,
            signer: Shared(signer),
            publisher: RecordingPublisher::default(),
            audit: audit.clone(),
            config: fleetguard_domain::lifecycle::rotation::RotationConfig {
                fleet_policy: FLEET_POLICY.into(),
                validity_days: 365,
                confirm_hours: 24,
                grace_hours: 24,
                min_interval_hours: 24,
                expiry_window_days: 30,
            },
            ca_pem: ca_pem.clone(),
        };
        let event = json(data);
        let principal = event
            .get("principal")
            .and_then(|p| p.as_str())
            .map(str::to_owned);
        let decision = service.handle(event).await.expect("fakes never fail");
        for (serial, _, id) in &w.devices {
            let d = registry
                .get_device(serial)
                .await
                .expect("read")
                .expect("device");
            if d.rotation.is_some() {
                assert_eq!(
                    principal.as_deref(),
                    Some(id.as_str()),
                    "{serial}: a rotation by another principal"
                );
            }
            assert_eq!(
                d.certificate_id.as_ref(),
                Some(id),
                "{serial}: rebound without proof"
            );
        }
        // Every decision is audited but a confirm from the current certificate (nothing to do).
        assert!(
            !audit.entries().is_empty()
                || decision.reason == fleetguard_domain::model::Reason::RotationConfirmed,
            "decision not audited"
        );
    })
}
