//! Every refused rotation request writes nothing but its audit entry.

use super::*;

/// Each refused request: its reason, a rejected reply, nothing written but the audit.
#[tokio::test]
async fn refused_requests_write_nothing_but_the_audit() {
    let f = Fleet::new().await;
    let (s, cert, key) = f.device("SN1").await;
    let (_, other_cert, _) = f.device("SN2").await;
    let (_, good) = new_csr("SN1");
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut bad_sig = fleetguard_domain::lifecycle::csr::csr_pem_to_der(&good).unwrap();
    let n = bad_sig.len();
    bad_sig[n - 5] ^= 0x01;
    let bad_sig = pem_of("CERTIFICATE REQUEST", &bad_sig);
    let oversize = format!("{good}{}", " ".repeat(9000));
    let cases: Vec<(&str, String, &str, Reason)> = vec![
        (
            "other serial's certificate",
            good.clone(),
            other_cert.as_str(),
            Reason::NotCurrentCertificate,
        ),
        (
            "current key",
            csr_pem(&key, "SN1"),
            cert.as_str(),
            Reason::CsrKeyReused,
        ),
        (
            "bad self-signature",
            bad_sig,
            cert.as_str(),
            Reason::CsrSignatureInvalid,
        ),
        ("oversize", oversize, cert.as_str(), Reason::MalformedCsr),
        (
            "not a CSR",
            f.factory_ca.issue("SN1"),
            cert.as_str(),
            Reason::MalformedCsr,
        ),
        (
            "P-384 key",
            csr_pem(&p384, "SN1"),
            cert.as_str(),
            Reason::CsrKeyNotAllowed,
        ),
        (
            "subject names another serial",
            csr_pem(&KeyPair::generate().unwrap(), "SN2"),
            cert.as_str(),
            Reason::SerialMismatch,
        ),
    ];
    let before = f.device_now(&s).await;
    for (i, (name, csr, principal, reason)) in cases.into_iter().enumerate() {
        let d = f
            .send_at(
                "rotate",
                &s,
                principal,
                Some(&csr),
                1_764_000_000_000 + i as i64,
            )
            .await;
        assert_eq!(d["reason"], reason.as_str(), "{name}: {d}");
        let (topic, reply) = f.last_reply();
        assert_eq!(topic, "P/SN1/certificates/rotate/rejected", "{name}");
        assert!(reply.get("certificate_pem").is_none(), "{name}");
        assert_eq!(f.device_now(&s).await, before, "{name}: registry unchanged");
        assert_eq!(f.reasons().len(), i + 1, "{name}: one audit entry");
    }
    // Quarantined, then revoked: refused, and still nothing issued.
    f.isolate(&s, Action::Quarantine).await;
    let d = f.send_at("rotate", &s, cert.as_str(), Some(&good), 1).await;
    assert_eq!(d["reason"], "device_quarantined");
    f.isolate(&s, Action::Revoke).await;
    let d = f.send_at("rotate", &s, cert.as_str(), Some(&good), 2).await;
    assert_eq!(d["reason"], "serial_revoked");
    assert!(f.device_now(&s).await.rotation.is_none());
    // Not a certificate principal (an operator, a password device): refused on the rotate reply
    // topic too. An unknown action has no reply topic: audited only.
    for (i, principal) in ["opalice", "dv0123456789abcdef0123456789abcdef01234567"]
        .into_iter()
        .enumerate()
    {
        let d = f
            .send_at("rotate", &s, principal, Some(&good), 3 + i as i64)
            .await;
        assert_eq!(
            (d["reason"].as_str(), d["reply_topic"].as_str()),
            (
                Some("principal_mismatch"),
                Some("P/SN1/certificates/rotate/rejected")
            )
        );
        assert_eq!(f.last_reply().1["reason"], "principal_mismatch");
    }
    let d = f
        .send_at("rotate!", &s, cert.as_str(), Some(&good), 5)
        .await;
    assert_eq!(
        (d["reason"].as_str(), d.get("reply_topic")),
        (Some("malformed_event"), None)
    );
    // An event over the size limit (a CSR padded past it) is answered as well.
    let huge = format!(
        "{good}{}",
        " ".repeat(fleetguard_domain::lifecycle::rotation::MAX_EVENT_BYTES)
    );
    let d = f.send_at("rotate", &s, cert.as_str(), Some(&huge), 6).await;
    assert_eq!(
        (d["reason"].as_str(), d["reply_topic"].as_str()),
        (
            Some("malformed_event"),
            Some("P/SN1/certificates/rotate/rejected")
        )
    );
}

fn pem_of(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}
