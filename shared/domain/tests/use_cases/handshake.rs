use base64::Engine as _;
use fleetguard_domain::authorization::handshake::*;
use fleetguard_domain::model::{CertificateId, Outcome, Reason, Serial};
use fleetguard_domain::ports::Registry;
use fleetguard_domain::x509::pem_to_der;
use fleetguard_testkit::fakes::{InMemoryAudit, InMemoryIot, InMemoryRegistry};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

struct Fx {
    v: HandshakeValidator<InMemoryRegistry, InMemoryIot, InMemoryAudit>,
    bound: String,
    unknown: String,
    stranger: String,
    expired: String,
    now: OffsetDateTime,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("CA")
}

fn issue(ca: &CertifiedIssuer<'_, KeyPair>, serial: &str, days: i64) -> String {
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, serial);
    p.not_before = now - Duration::days(2);
    p.not_after = now + Duration::days(days);
    p.signed_by(&KeyPair::generate().expect("key"), ca)
        .expect("cert")
        .pem()
}

fn id(pem: &str) -> CertificateId {
    CertificateId::of_der(&pem_to_der(pem).expect("der"))
}

async fn fx() -> Fx {
    let fleet = ca("fleet CA");
    let other = ca("someone else's CA");
    let iot = InMemoryIot::default();
    let ca_id = iot.register_ca(&fleet.pem()).expect("CA");
    let registry = InMemoryRegistry::default();
    let bound = issue(&fleet, "SN1", 30);
    let serial = Serial::parse("SN1").expect("serial");
    registry.import_serial(&serial).await.expect("import");
    registry
        .bind_certificate(&serial, &id(&bound), None, None)
        .await
        .expect("bind");
    let config = HandshakeConfig {
        ca_ids: vec![ca_id],
        cache_ttl: Duration::seconds(5),
        ca_cache_ttl: Duration::seconds(60),
    };
    Fx {
        v: HandshakeValidator::new(registry, iot, InMemoryAudit::default(), config),
        bound,
        unknown: issue(&fleet, "SN2", 30),
        stranger: issue(&other, "SN1", 30),
        expired: issue(&fleet, "SN3", -1),
        now: OffsetDateTime::now_utc(),
    }
}

fn event(pem: &str) -> serde_json::Value {
    json!({"connectionMetadata": {"id": "c0ffee"}, "principalId": id(pem).as_str(),
        "serverName": "example-ats.iot.us-east-1.amazonaws.com",
        "clientCertificateChain": [pem]})
}

async fn reason(f: &Fx, raw: serde_json::Value, at: OffsetDateTime) -> (bool, Reason) {
    let d = f.v.handle(raw, at).await;
    (d.allowed, d.reason)
}

#[tokio::test]
async fn the_registry_decides_every_handshake() {
    let f = fx().await;
    let t = f.now;
    assert_eq!(
        reason(&f, event(&f.bound), t).await,
        (true, Reason::HandshakeAllowed)
    );
    // Base64 DER instead of PEM: the same certificate.
    let der = pem_to_der(&f.bound).expect("der");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let raw = json!({"principalId": id(&f.bound).as_str(), "clientCertificateChain": [b64]});
    assert_eq!(reason(&f, raw, t).await, (true, Reason::HandshakeAllowed));
    // Not yet provisioned, from the fleet CA: through, so JITR can run.
    assert_eq!(
        reason(&f, event(&f.unknown), t).await,
        (true, Reason::FirstConnect)
    );
    // Not provisioned and not from the fleet CA (same subject): refused.
    assert_eq!(
        reason(&f, event(&f.stranger), t).await,
        (false, Reason::NotSignedByCa)
    );
    assert_eq!(
        reason(&f, event(&f.expired), t).await,
        (false, Reason::CertificateExpired)
    );
    // principalId naming another certificate.
    let mut raw = event(&f.bound);
    raw["principalId"] = json!(id(&f.unknown).as_str());
    assert_eq!(
        reason(&f, raw, t).await,
        (false, Reason::CertificateIdMismatch)
    );
    for bad in [
        json!({}),
        json!({"clientCertificateChain": []}),
        json!({"clientCertificateChain": ["not a certificate"]}),
        json!({"clientCertificateChain": [f.bound.repeat(2)]}),
        json!({"clientCertificateChain": vec![f.bound.clone(); MAX_CHAIN + 1]}),
        json!([1, 2, 3]),
        json!({"clientCertificateChain": "x"}),
    ] {
        let (allowed, _) = reason(&f, bad.clone(), t).await;
        assert!(!allowed, "{bad}");
    }
    // Every refusal is audited, with its reason.
    let refusals = f.v.audit.entries();
    assert!(refusals.iter().all(|e| e.outcome == Outcome::Rejected));
    assert!(refusals.len() >= 10);
}

#[tokio::test]
async fn a_revocation_or_quarantine_wins_within_the_cache_bound() {
    let f = fx().await;
    let t = f.now;
    let cert = id(&f.bound);
    let serial = Serial::parse("SN1").expect("serial");
    assert!(reason(&f, event(&f.bound), t).await.0);
    f.v.registry
        .hold_certificate(&cert, &serial, true)
        .await
        .expect("hold");
    // A warm instance may still serve its allow, but never past the bound.
    assert!(
        reason(&f, event(&f.bound), t + Duration::seconds(4))
            .await
            .0
    );
    assert_eq!(
        reason(&f, event(&f.bound), t + Duration::seconds(5)).await,
        (false, Reason::CertificateHeld)
    );
    f.v.registry
        .hold_certificate(&cert, &serial, false)
        .await
        .expect("release");
    assert!(
        reason(&f, event(&f.bound), t + Duration::seconds(6))
            .await
            .0
    );
    f.v.registry
        .deny_certificate(&cert, &serial)
        .await
        .expect("deny");
    assert_eq!(
        reason(&f, event(&f.bound), t + Duration::seconds(11)).await,
        (false, Reason::CertificateRevoked)
    );
}
