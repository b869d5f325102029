//! Rotation CSRs: only a well-formed request, self-signed by a new P-256 or RSA ≥ 2048 key, passes;
//! each refusal carries its reason. Keys and requests are generated at run time.

use base64::Engine;
use fleetguard_domain::lifecycle::csr::{certificate_public_key, validate_csr, KeyKind};
use fleetguard_domain::model::Reason;
use fleetguard_testkit::pki::{csr_pem, TestCa};
use rcgen::{KeyPair, PublicKeyData};

fn reason(pem: &str, current: Option<&[u8]>) -> Reason {
    validate_csr(pem, current).expect_err("refused").reason
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_new_p256_key_passes_and_its_subject_is_not_read() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = validate_csr(&csr_pem(&key, "SOMEONE-ELSE"), None).expect("valid");
    assert_eq!(csr.kind, KeyKind::EcP256);
    assert_eq!(csr.public_key, key.subject_public_key_info());
}

#[test]
fn an_rsa_2048_key_passes() {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let csr = validate_csr(&csr_pem(&key, "SN1"), None).expect("valid");
    assert_eq!(csr.kind, KeyKind::Rsa { bits: 2048 });
}

#[test]
fn other_key_types_are_refused() {
    for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
        let key = KeyPair::generate_for(alg).unwrap();
        assert_eq!(
            reason(&csr_pem(&key, "SN1"), None),
            Reason::CsrKeyNotAllowed
        );
    }
}

#[test]
fn the_current_key_is_refused() {
    let ca = TestCa::new("csr CA");
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let current = certificate_public_key(&ca.issue_for_key("SN1", &key)).unwrap();
    assert_eq!(
        reason(&csr_pem(&key, "SN1"), Some(&current)),
        Reason::CsrKeyReused
    );
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    assert!(validate_csr(&csr_pem(&other, "SN1"), Some(&current)).is_ok());
}

#[test]
fn a_bad_self_signature_is_refused() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let text = csr_pem(&key, "SN1");
    let mut der = fleetguard_domain::lifecycle::csr::csr_pem_to_der(&text).unwrap();
    // The signature is the last bytes of the request: flip one of them.
    let last = der.len() - 3;
    der[last] ^= 0x01;
    assert_eq!(
        reason(&pem("CERTIFICATE REQUEST", &der), None),
        Reason::CsrSignatureInvalid
    );
}

#[test]
fn what_is_not_one_csr_is_malformed() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let good = csr_pem(&key, "SN1");
    let ca = TestCa::new("csr CA");
    let der = fleetguard_domain::lifecycle::csr::csr_pem_to_der(&good).unwrap();
    let mut trailing = der.clone();
    trailing.push(0);
    for bad in [
        String::new(),
        "not a PEM".to_owned(),
        ca.issue("SN1"),
        format!("{good}{good}"),
        pem("CERTIFICATE REQUEST", &der[..der.len() / 2]),
        pem("CERTIFICATE REQUEST", &trailing),
        format!("{good}{}", " ".repeat(9000)),
    ] {
        assert_eq!(reason(&bad, None), Reason::MalformedCsr, "{bad:.60}");
    }
    // The label older tools write is read too.
    let legacy = pem("NEW CERTIFICATE REQUEST", &der);
    assert!(validate_csr(&legacy, None).is_ok());
}
