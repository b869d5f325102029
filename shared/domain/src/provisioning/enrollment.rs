//! Enrollment proofs for fleet provisioning by claim: how a device proves which serial it is when the
//! certificate it presents was issued by AWS (and its subject may have been written by the device).
//!
//! Two kinds, chosen per device at manufacturing (`fleetctl devices import`):
//! - **factory key**: a P-256 attestation key that never leaves the device's secure element. The device
//!   signs the statement [`statement`] = `fleetguard-enroll-v1|<serial>|<certificateId>|<timestamp>`
//!   (ECDSA with SHA-256; signature DER or raw `r‖s`, base64) and sends it in the provisioning template's
//!   parameters `ProofTimestamp` (Unix seconds) and `ProofSignature`.
//! - **one-time secret**: ≥ 128 random bits, sent base64 in `EnrollmentSecret`; the registry keeps only
//!   its SHA-256 (a random secret of that size needs no slow KDF: there is nothing to guess).
//!
//! Everything here is pure: parsing, the statement, verification. Reading and consuming proofs is the
//! hook's job ([`crate::provisioning::claim`]).

use crate::model::{CertificateId, Enrollment, Reason, Serial};
use aws_lc_rs::signature::{
    ParsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Template parameter names the device sends (and the provisioning template declares).
pub const PARAM_SERIAL: &str = "SerialNumber";
pub const PARAM_TIMESTAMP: &str = "ProofTimestamp";
pub const PARAM_SIGNATURE: &str = "ProofSignature";
pub const PARAM_SECRET: &str = "EnrollmentSecret";

/// Version tag of the signed statement, so a signature made for anything else never verifies here.
pub const STATEMENT_TAG: &str = "fleetguard-enroll-v1";

/// A one-time secret has at least 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;
const MAX_SECRET_BYTES: usize = 64;
/// An ECDSA P-256 signature: 64 bytes raw, at most 72 DER.
const MAX_SIGNATURE_BYTES: usize = 72;
/// No parameter value we read is longer than this (base64 of the largest field, with room).
pub const MAX_PARAM_LEN: usize = 256;

/// Why a proof or its material was refused: a stable reason and a detail for the audit (never the
/// proof itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct ProofError {
    pub reason: Reason,
    pub detail: &'static str,
}

fn err(reason: Reason, detail: &'static str) -> ProofError {
    ProofError { reason, detail }
}

/// The proof a device presented, syntactically valid (not yet verified). The one-time secret is a
/// secret, and so is the signature (it is the device's proof): `Debug` never prints either.
#[derive(Debug, Clone)]
pub enum Presented {
    FactoryKey {
        timestamp: i64,
        signature: SecretSlice<u8>,
    },
    Secret {
        secret: SecretSlice<u8>,
    },
}

/// The serial and proof read from the template's `parameters`.
#[derive(Debug, Clone)]
pub struct ClaimParameters {
    pub serial: Serial,
    pub proof: Presented,
}

/// Reads the serial and the proof from the template parameters. Only the parameters we define are
/// read; each is bounded; exactly one proof kind must be present.
pub fn parse_parameters(params: &BTreeMap<String, String>) -> Result<ClaimParameters, ProofError> {
    let get = |name: &str| -> Result<Option<&str>, ProofError> {
        match params.get(name).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(v) if v.len() > MAX_PARAM_LEN => {
                Err(err(Reason::MalformedProof, "parameter too long"))
            }
            Some(v) => Ok(Some(v)),
        }
    };
    let serial = get(PARAM_SERIAL)?
        .ok_or_else(|| err(Reason::SerialMissing, "parameter SerialNumber is missing"))?;
    let serial =
        Serial::parse(serial).map_err(|_| err(Reason::InvalidSerial, "SerialNumber is invalid"))?;
    let proof = match (
        get(PARAM_TIMESTAMP)?,
        get(PARAM_SIGNATURE)?,
        get(PARAM_SECRET)?,
    ) {
        (None, None, None) => return Err(err(Reason::ProofMissing, "no proof parameters")),
        (_, Some(_), Some(_)) | (Some(_), None, Some(_)) => {
            return Err(err(Reason::MalformedProof, "both a signature and a secret"))
        }
        (None, Some(_), None) => {
            return Err(err(Reason::ProofMissing, "ProofTimestamp is missing"))
        }
        (Some(_), None, None) => {
            return Err(err(Reason::ProofMissing, "ProofSignature is missing"))
        }
        (Some(ts), Some(sig), None) => Presented::FactoryKey {
            timestamp: parse_timestamp(ts)?,
            signature: decode(
                sig,
                8,
                MAX_SIGNATURE_BYTES,
                [
                    "ProofSignature is not base64",
                    "ProofSignature has the wrong length",
                ],
            )?
            .into(),
        },
        (None, None, Some(secret)) => Presented::Secret {
            secret: decode(
                secret,
                MIN_SECRET_BYTES,
                MAX_SECRET_BYTES,
                [
                    "EnrollmentSecret is not base64",
                    "EnrollmentSecret is shorter than 128 bits or too long",
                ],
            )?
            .into(),
        },
    };
    Ok(ClaimParameters { serial, proof })
}

fn parse_timestamp(text: &str) -> Result<i64, ProofError> {
    // Digits only: no sign, no exponent, no spaces; 12 digits reach the year 33658.
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            Reason::MalformedProof,
            "ProofTimestamp is not Unix seconds",
        ));
    }
    text.parse()
        .map_err(|_| err(Reason::MalformedProof, "ProofTimestamp is not Unix seconds"))
}

/// Decodes a base64 parameter of `min..=max` bytes; `bad` names it in the two refusals.
fn decode(
    text: &str,
    min: usize,
    max: usize,
    bad: [&'static str; 2],
) -> Result<Vec<u8>, ProofError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| err(Reason::MalformedProof, bad[0]))?;
    if bytes.len() < min || bytes.len() > max {
        return Err(err(Reason::MalformedProof, bad[1]));
    }
    Ok(bytes)
}

/// The exact bytes a device signs with its factory key.
pub fn statement(serial: &Serial, certificate: &CertificateId, timestamp: i64) -> String {
    format!("{STATEMENT_TAG}|{serial}|{certificate}|{timestamp}")
}

/// SHA-256 (hex) of a one-time secret: what the registry stores and compares.
pub fn secret_hash(secret: &[u8]) -> String {
    hex::encode(Sha256::digest(secret))
}

/// Verifies a factory-key signature over the statement for `serial` and `certificate`.
/// `key` is the registry's base64 SubjectPublicKeyInfo.
pub fn verify_factory_proof(
    key: &str,
    serial: &Serial,
    certificate: &CertificateId,
    timestamp: i64,
    signature: &[u8],
) -> Result<(), ProofError> {
    let der = STANDARD
        .decode(key)
        .map_err(|_| err(Reason::InternalError, "stored attestation key is corrupt"))?;
    let message = statement(serial, certificate, timestamp);
    verify_p256(&der, message.as_bytes(), signature)
}

fn verify_p256(key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), ProofError> {
    // Secure elements (e.g. ATECC608) give raw r‖s; software signers usually give DER.
    let alg: &'static dyn VerificationAlgorithm = if signature.len() == 64 {
        &ECDSA_P256_SHA256_FIXED
    } else {
        &ECDSA_P256_SHA256_ASN1
    };
    let key = ParsedPublicKey::new(alg, key)
        .map_err(|_| err(Reason::InternalError, "stored attestation key is corrupt"))?;
    key.verify_sig(message, signature)
        .map_err(|_| err(Reason::ProofInvalid, "signature does not verify"))
}

/// Compares a presented secret with the stored hash, in constant time.
pub fn verify_secret(stored_hash: &str, secret: &[u8]) -> Result<(), ProofError> {
    let presented = secret_hash(secret);
    aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), stored_hash.as_bytes())
        .map_err(|_| err(Reason::ProofInvalid, "secret does not match"))
}

/// The work a real proof check costs, done against nothing: the hook calls it when the serial is
/// unknown, so the time of a refusal does not tell a stranger whether a serial exists.
pub fn equalize_timing(proof: &Presented) {
    match proof {
        Presented::FactoryKey { signature, .. } => {
            let _ = verify_p256(decoy_key(), b"decoy", signature.expose_secret());
        }
        Presented::Secret { secret } => {
            let _ = verify_secret(&"0".repeat(64), secret.expose_secret());
        }
    }
}

fn decoy_key() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .ok()
            .and_then(|k| k.public_key().as_der().ok())
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default()
    })
}

// ---------------------------------------------------------------------------------------------------
// Manufacturing side: the material an allow-list entry carries.

/// Parses a factory attestation public key as manufacturing gives it: base64 (or PEM) of a P-256
/// SubjectPublicKeyInfo, or base64 of the uncompressed point. Returns the canonical form we store
/// (base64 SubjectPublicKeyInfo DER). Any other curve or key type is refused.
pub fn parse_attestation_key(text: &str) -> Result<String, ProofError> {
    let text = text.trim();
    let body: String = if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        text.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat()
    } else {
        text.to_owned()
    };
    if body.len() > 512 {
        return Err(err(Reason::MalformedProof, "attestation key too long"));
    }
    let bytes = STANDARD
        .decode(body.trim())
        .map_err(|_| err(Reason::MalformedProof, "attestation key is not base64"))?;
    // ParsedPublicKey accepts SubjectPublicKeyInfo DER or a SEC1 point, and checks the curve and
    // that the point is on it.
    let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &bytes)
        .map_err(|_| err(Reason::MalformedProof, "not a P-256 public key"))?;
    use aws_lc_rs::encoding::AsDer;
    let der = key
        .as_der()
        .map_err(|_| err(Reason::MalformedProof, "not a P-256 public key"))?;
    Ok(STANDARD.encode(der.as_ref()))
}

/// Parses the stored form of a one-time secret: 64 hex characters of its SHA-256 (lower-cased).
pub fn parse_secret_hash(text: &str) -> Result<String, ProofError> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(
            Reason::MalformedProof,
            "secret hash is not 64 hex characters (SHA-256)",
        ));
    }
    Ok(text.to_ascii_lowercase())
}

/// Builds an allow-list entry's enrollment from manufacturing's columns (each may be empty).
/// One proof kind per device; claims are `;`-separated certificate ids.
pub fn enrollment_from_columns(
    attestation_key: &str,
    secret_sha256: &str,
    claims: &str,
) -> Result<Enrollment, ProofError> {
    let (key, secret) = (attestation_key.trim(), secret_sha256.trim());
    if !key.is_empty() && !secret.is_empty() {
        return Err(err(
            Reason::MalformedProof,
            "a device has one proof kind: factory key or secret, not both",
        ));
    }
    let mut enrollment = Enrollment::default();
    if !key.is_empty() {
        enrollment.attestation_key = Some(parse_attestation_key(key)?);
    }
    if !secret.is_empty() {
        enrollment.secret_sha256 = Some(parse_secret_hash(secret)?);
    }
    for claim in claims.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        let id = CertificateId::parse(claim).map_err(|_| {
            err(
                Reason::MalformedProof,
                "claim is not a 64-hex certificate id",
            )
        })?;
        if !enrollment.claims.contains(&id) {
            enrollment.claims.push(id);
        }
    }
    Ok(enrollment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
        ECDSA_P384_SHA384_ASN1_SIGNING,
    };

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn key_b64(k: &EcdsaKeyPair) -> String {
        STANDARD.encode(k.public_key().as_der().unwrap().as_ref())
    }

    #[test]
    fn a_factory_signature_verifies_only_for_its_serial_certificate_and_time() {
        let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let stored = parse_attestation_key(&key_b64(&k)).unwrap();
        let serial = Serial::parse("SN0001").unwrap();
        let cert = CertificateId::parse(&"ab".repeat(32)).unwrap();
        let sig = k
            .sign(
                &SystemRandom::new(),
                statement(&serial, &cert, 1_700_000_000).as_bytes(),
            )
            .unwrap();
        assert!(verify_factory_proof(&stored, &serial, &cert, 1_700_000_000, sig.as_ref()).is_ok());
        let other = Serial::parse("SN0002").unwrap();
        let other_cert = CertificateId::parse(&"cd".repeat(32)).unwrap();
        for (s, c, t) in [
            (&other, &cert, 1_700_000_000),
            (&serial, &other_cert, 1_700_000_000),
            (&serial, &cert, 1_700_000_001),
        ] {
            let e = verify_factory_proof(&stored, s, c, t, sig.as_ref()).unwrap_err();
            assert_eq!(e.reason, Reason::ProofInvalid);
        }
    }

    #[test]
    fn raw_r_s_signatures_from_secure_elements_verify_too() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        // The uncompressed point is accepted at import as well.
        let stored = parse_attestation_key(&STANDARD.encode(k.public_key().as_ref())).unwrap();
        let serial = Serial::parse("SN0001").unwrap();
        let cert = CertificateId::parse(&"ab".repeat(32)).unwrap();
        let sig = k
            .sign(&rng, statement(&serial, &cert, 5).as_bytes())
            .unwrap();
        assert_eq!(sig.as_ref().len(), 64);
        assert!(verify_factory_proof(&stored, &serial, &cert, 5, sig.as_ref()).is_ok());
    }

    #[test]
    fn import_refuses_other_curves_garbage_and_two_kinds() {
        let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING).unwrap();
        for bad in [
            key_b64(&p384),
            "not base64!".into(),
            STANDARD.encode([4u8; 65]),
            String::new() + "AAAA",
        ] {
            assert_eq!(
                parse_attestation_key(&bad).unwrap_err().reason,
                Reason::MalformedProof,
                "{bad}"
            );
        }
        assert!(parse_secret_hash("abc").is_err());
        assert!(parse_secret_hash(&"g".repeat(64)).is_err());
        assert_eq!(
            parse_secret_hash(&"AB".repeat(32)).unwrap(),
            "ab".repeat(32)
        );
        let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        assert!(enrollment_from_columns(&key_b64(&k), &"ab".repeat(32), "").is_err());
        assert!(enrollment_from_columns("", "", "nothex").is_err());
        let e = enrollment_from_columns(
            "",
            &"ab".repeat(32),
            &format!("{};{}", "1".repeat(64), "1".repeat(64)),
        )
        .unwrap();
        assert_eq!(e.claims.len(), 1);
        assert_eq!(e.kind(), crate::model::ProofKind::OneTimeSecret);
    }

    #[test]
    fn parameters_name_one_proof_kind_within_bounds() {
        let sig = STANDARD.encode([1u8; 64]);
        let secret = STANDARD.encode([7u8; 16]);
        let ok = parse_parameters(&params(&[
            ("SerialNumber", "SN0001"),
            ("ProofTimestamp", "1700000000"),
            ("ProofSignature", &sig),
        ]))
        .unwrap();
        assert!(matches!(
            ok.proof,
            Presented::FactoryKey {
                timestamp: 1_700_000_000,
                ..
            }
        ));
        let ok = parse_parameters(&params(&[
            ("SerialNumber", "SN0001"),
            ("EnrollmentSecret", &secret),
        ]))
        .unwrap();
        assert!(matches!(ok.proof, Presented::Secret { .. }));
        // Neither the secret nor the signature in a Debug (as base64 or as bytes).
        let text = format!("{ok:?}");
        assert!(!text.contains(&secret) && !text.contains("7, 7"), "{text}");
        let signed = parse_parameters(&params(&[
            ("SerialNumber", "SN0001"),
            ("ProofTimestamp", "1700000000"),
            ("ProofSignature", &sig),
        ]))
        .unwrap();
        let text = format!("{signed:?}");
        assert!(!text.contains(&sig) && !text.contains("1, 1"), "{text}");
        assert!(text.contains("1700000000"), "{text}");

        let short = STANDARD.encode([7u8; 15]);
        let long = "A".repeat(MAX_PARAM_LEN + 4);
        let cases: Vec<(Vec<(&str, &str)>, Reason)> = vec![
            (vec![], Reason::SerialMissing),
            (vec![("SerialNumber", "SN/+")], Reason::InvalidSerial),
            (vec![("SerialNumber", "SN0001")], Reason::ProofMissing),
            (
                vec![("SerialNumber", "SN0001"), ("ProofSignature", &sig)],
                Reason::ProofMissing,
            ),
            (
                vec![("SerialNumber", "SN0001"), ("ProofTimestamp", "1")],
                Reason::ProofMissing,
            ),
            (
                vec![
                    ("SerialNumber", "SN0001"),
                    ("ProofTimestamp", "-1"),
                    ("ProofSignature", &sig),
                ],
                Reason::MalformedProof,
            ),
            (
                vec![
                    ("SerialNumber", "SN0001"),
                    ("ProofTimestamp", "1e9"),
                    ("ProofSignature", &sig),
                ],
                Reason::MalformedProof,
            ),
            (
                vec![
                    ("SerialNumber", "SN0001"),
                    ("ProofTimestamp", "1"),
                    ("ProofSignature", "!!"),
                ],
                Reason::MalformedProof,
            ),
            (
                vec![("SerialNumber", "SN0001"), ("EnrollmentSecret", &short)],
                Reason::MalformedProof,
            ),
            (
                vec![("SerialNumber", "SN0001"), ("EnrollmentSecret", &long)],
                Reason::MalformedProof,
            ),
            (
                vec![
                    ("SerialNumber", "SN0001"),
                    ("EnrollmentSecret", &secret),
                    ("ProofSignature", &sig),
                    ("ProofTimestamp", "1"),
                ],
                Reason::MalformedProof,
            ),
        ];
        for (p, reason) in cases {
            assert_eq!(
                parse_parameters(&params(&p)).unwrap_err().reason,
                reason,
                "{p:?}"
            );
        }
    }

    #[test]
    fn secrets_compare_by_hash() {
        let stored = secret_hash(b"0123456789abcdef");
        assert!(verify_secret(&stored, b"0123456789abcdef").is_ok());
        assert_eq!(
            verify_secret(&stored, b"0123456789abcdeX")
                .unwrap_err()
                .reason,
            Reason::ProofInvalid
        );
        equalize_timing(&Presented::Secret {
            secret: vec![1; 16].into(),
        });
        equalize_timing(&Presented::FactoryKey {
            timestamp: 1,
            signature: vec![1; 64].into(),
        });
    }
}
