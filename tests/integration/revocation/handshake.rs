//! The TLS-handshake validator through the real adapters against the emulator (included in the
//! `revocation` test binary): a revocation or quarantine holds on the very next connection, whatever
//! AWS still caches, with one DynamoDB read per handshake.

use super::{command, group};
use fleetguard_aws::dynamodb::{DynamoAudit, DynamoRegistry};
use fleetguard_aws::iot::IotControlAdapter;
use fleetguard_domain::authorization::handshake::{HandshakeConfig, HandshakeValidator};
use fleetguard_domain::model::{CertificateId, Reason};
use fleetguard_tests::{Fleet, TestCa};
use time::{Duration, OffsetDateTime};

fn validator(f: &Fleet) -> HandshakeValidator<DynamoRegistry, IotControlAdapter, DynamoAudit> {
    let s = &f.stack;
    HandshakeValidator::new(
        s.registry(),
        s.control(),
        s.audit(),
        HandshakeConfig {
            ca_ids: vec![CertificateId::parse(&f.ca_id).unwrap()],
            // No cache: each handshake reads the registry (the bound is unit-tested).
            cache_ttl: Duration::ZERO,
            ca_cache_ttl: Duration::seconds(60),
        },
    )
}

fn event(pem: &str) -> serde_json::Value {
    serde_json::json!({"connectionMetadata": {"id": "c0ffee"},
        "serverName": "example-ats.iot.us-east-1.amazonaws.com", "clientCertificateChain": [pem]})
}

async fn decide(
    v: &HandshakeValidator<DynamoRegistry, IotControlAdapter, DynamoAudit>,
    pem: &str,
) -> (bool, Reason) {
    let d = v.handle(event(pem), OffsetDateTime::now_utc()).await;
    (d.allowed, d.reason)
}

#[tokio::test]
async fn revocation_and_quarantine_hold_at_the_next_handshake() {
    let f = Fleet::new().await;
    let s = &f.stack;
    let v = validator(&f);
    let (a, b) = (&f.a, &f.b);
    let pem_a = s.certificate_pem(&a.1).await;
    let pem_b = s.certificate_pem(&b.1).await;

    let before = s.emulator.calls_matching(&a.1);
    assert_eq!(decide(&v, &pem_a).await, (true, Reason::HandshakeAllowed));
    let after = s.emulator.calls_matching(&a.1);
    let reads = fleetguard_tests::call_diff(&before, &after);
    assert_eq!(
        reads
            .iter()
            .filter(|(op, _)| op.starts_with("dynamodb:"))
            .map(|(_, n)| n)
            .sum::<u64>(),
        1,
        "one DynamoDB read per handshake: {reads:?}"
    );

    // Revoked: refused at the next connection, audited.
    s.revoker()
        .handle(command("revoke", &a.0), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        decide(&v, &pem_a).await,
        (false, Reason::CertificateRevoked)
    );
    // Quarantined: refused; released: back.
    s.revoker()
        .handle(command("quarantine", &b.0), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(s.group_members(&group(&f)).await.contains(&b.0.to_string()));
    assert_eq!(decide(&v, &pem_b).await, (false, Reason::CertificateHeld));
    s.revoker()
        .handle(command("release", &b.0), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(decide(&v, &pem_b).await, (true, Reason::HandshakeAllowed));

    // Not provisioned yet: through only if the fleet CA issued it (JITR then decides).
    let newcomer = f.ca.issue(&fleetguard_tests::unique("SN"));
    assert_eq!(decide(&v, &newcomer).await, (true, Reason::FirstConnect));
    let stranger = TestCa::new("not the fleet CA").issue(a.0.as_str());
    assert_eq!(decide(&v, &stranger).await, (false, Reason::NotSignedByCa));

    let refused = s
        .audit()
        .for_principal(
            &fleetguard_domain::model::Principal::parse(&a.1).unwrap(),
            &fleetguard_domain::model::Timestamp::epoch(),
        )
        .await
        .unwrap();
    use fleetguard_domain::ports::AuditLog;
    assert!(refused
        .iter()
        .any(|e| e.action == "handshake" && e.reason == Reason::CertificateRevoked));
}

/// Custom authentication with X.509 (custom-auth-509cert): the authorizer's identity for such a
/// connection is the certificate's, checked against the same registry entry, one read.
#[tokio::test]
async fn an_x509_custom_auth_connection_is_its_certificates_until_revoked() {
    use fleetguard_domain::authorization::authorizer::authorize;
    let f = Fleet::new().await;
    let s = &f.stack;
    let (serial, cert) = &f.a;
    let pem = s.certificate_pem(cert).await;
    let store = s.services.identities();
    let engine =
        fleetguard_tests::TestIdp::new("https://login.example.test/", "fleetguard").authorizer();
    let request = serde_json::json!({"signatureVerified": false, "protocols": ["tls", "mqtt"],
        "protocolData": {"tls": {"serverName": "example-ats.iot.us-east-1.amazonaws.com",
            "x509CertificatePem": pem, "principalId": cert},
            "mqtt": {"clientId": serial.as_str()}},
        "connectionMetadata": {"id": "c0ffee"}});
    let d = authorize(&engine, &store, request.clone(), OffsetDateTime::now_utc()).await;
    assert!(d.is_authenticated(), "{:?}", d.reason);
    assert_eq!(&d.response.principal_id, cert);
    s.revoker()
        .handle(command("revoke", serial), OffsetDateTime::now_utc())
        .await
        .unwrap();
    let d = authorize(&engine, &store, request, OffsetDateTime::now_utc()).await;
    assert_eq!(d.reason.as_str(), "certificate_revoked");
}
