//! Certificate signing requests for rotation, on top of the maintained `x509-parser` crate (signature
//! check through aws-lc, as for certificates). What a CSR may contribute is its public key, proven by
//! its self-signature; its subject and requested extensions are never trusted (fleetguard writes the
//! subject itself: the serial of the device whose current certificate asked).

use crate::model::Reason;
use crate::x509::CertError;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA1WITHRSA,
    OID_SHA1_WITH_RSA,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// Upper bound on a CSR's PEM text: a P-256 or RSA-4096 request is under 2 KB.
pub const MAX_CSR_PEM_LEN: usize = 8 * 1024;
/// The smallest RSA modulus accepted.
pub const MIN_RSA_BITS: usize = 2048;

/// The key kinds a device may rotate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcP256,
    Rsa { bits: usize },
}

/// A CSR that passed every check: its DER, and its public key as SubjectPublicKeyInfo DER (what the
/// new certificate certifies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCsr {
    pub der: Vec<u8>,
    pub public_key: Vec<u8>,
    pub kind: KeyKind,
    /// The serial the CSR's subject names (serialNumber, else CN), if any: checked against the
    /// requesting device's serial, then never used (fleetguard writes the subject itself).
    pub subject_serial: Option<String>,
}

fn refuse(reason: Reason, detail: &str) -> CertError {
    CertError {
        reason,
        detail: detail.to_owned(),
    }
}

/// Decodes the one `CERTIFICATE REQUEST` block of a PEM text (`NEW CERTIFICATE REQUEST` too, as
/// older tools write it). Anything after it but whitespace is refused.
pub fn csr_pem_to_der(pem: &str) -> Result<Vec<u8>, CertError> {
    if pem.len() > MAX_CSR_PEM_LEN {
        return Err(refuse(Reason::MalformedCsr, "CSR larger than 8 KB"));
    }
    let (rest, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|_| refuse(Reason::MalformedCsr, "not a PEM document"))?;
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(refuse(Reason::MalformedCsr, "more than one PEM block"));
    }
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(refuse(
            Reason::MalformedCsr,
            "PEM block is not a CERTIFICATE REQUEST",
        ));
    }
    Ok(block.contents)
}

/// Validates a rotation CSR (PEM): one well-formed request, self-signed by the key it carries (SHA-1
/// refused), a P-256 or RSA ≥ 2048 key, and not `current_key` (the SubjectPublicKeyInfo DER of the
/// certificate it replaces: a rotation must change the key).
pub fn validate_csr(pem: &str, current_key: Option<&[u8]>) -> Result<ValidCsr, CertError> {
    let der = csr_pem_to_der(pem)?;
    let csr = match X509CertificationRequest::from_der(&der) {
        Ok(([], csr)) => csr,
        Ok(_) => return Err(refuse(Reason::MalformedCsr, "trailing bytes after the CSR")),
        Err(_) => return Err(refuse(Reason::MalformedCsr, "DER does not parse as a CSR")),
    };
    let alg = &csr.signature_algorithm.algorithm;
    if *alg == OID_PKCS1_SHA1WITHRSA || *alg == OID_SHA1_WITH_RSA {
        return Err(refuse(
            Reason::CsrSignatureInvalid,
            "SHA-1 signatures are not accepted",
        ));
    }
    let spki = &csr.certification_request_info.subject_pki;
    let kind = key_kind(spki)?;
    csr.verify_signature().map_err(|_| {
        refuse(
            Reason::CsrSignatureInvalid,
            "the CSR's signature does not verify with its own key",
        )
    })?;
    if current_key == Some(spki.raw) {
        return Err(refuse(
            Reason::CsrKeyReused,
            "the CSR carries the current certificate's key",
        ));
    }
    let public_key = spki.raw.to_vec();
    let subject_serial = crate::x509::subject_serial(&csr.certification_request_info.subject)
        .ok()
        .map(|s| s.as_str().to_owned());
    Ok(ValidCsr {
        der,
        public_key,
        kind,
        subject_serial,
    })
}

fn key_kind(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<KeyKind, CertError> {
    let not_allowed = |detail: &str| refuse(Reason::CsrKeyNotAllowed, detail);
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        if curve.as_ref() != Some(&OID_EC_P256) {
            return Err(not_allowed("EC keys must be on P-256"));
        }
        return match spki.parsed() {
            Ok(PublicKey::EC(point)) if point.data().len() == 65 && point.data()[0] == 4 => {
                Ok(KeyKind::EcP256)
            }
            _ => Err(not_allowed("malformed P-256 point")),
        };
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(not_allowed("malformed RSA key"));
        };
        let bits = modulus_bits(rsa.modulus);
        if bits < MIN_RSA_BITS {
            return Err(not_allowed("RSA keys must have at least 2048 bits"));
        }
        return Ok(KeyKind::Rsa { bits });
    }
    Err(not_allowed("only P-256 and RSA keys are accepted"))
}

/// The bit length of a big-endian unsigned integer (leading zero bytes and bits not counted).
fn modulus_bits(modulus: &[u8]) -> usize {
    let trimmed: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    trimmed.len() * 8 - trimmed[0].leading_zeros() as usize
}

/// The SubjectPublicKeyInfo DER of a certificate (PEM): what a CSR's key is compared with.
pub fn certificate_public_key(pem: &str) -> Result<Vec<u8>, CertError> {
    let der = crate::x509::pem_to_der(pem)?;
    match x509_parser::prelude::X509Certificate::from_der(&der) {
        Ok(([], cert)) => Ok(cert.public_key().raw.to_vec()),
        _ => Err(refuse(
            Reason::MalformedCertificate,
            "DER does not parse as X.509",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::modulus_bits;

    #[test]
    fn modulus_bits_ignore_leading_zeros() {
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        let mut m = vec![0u8];
        m.extend(std::iter::repeat_n(0xffu8, 256));
        assert_eq!(modulus_bits(&m), 2048);
    }
}
