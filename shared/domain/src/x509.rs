//! X.509 certificate checks for provisioning, on top of the maintained `x509-parser` crate.
//!
//! The emulator does not verify that a registered certificate chains to its CA, and AWS's JITR event
//! only says which CA it was registered under, so we verify the signature ourselves.

use crate::model::{CertificateId, Reason, Serial};
use time::OffsetDateTime;
use x509_parser::oid_registry::{
    OID_PKCS1_SHA1WITHRSA, OID_SHA1_WITH_RSA, OID_X509_COMMON_NAME, OID_X509_SERIALNUMBER,
};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// Why a certificate was refused, with the stable reason code it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct CertError {
    pub reason: Reason,
    pub detail: String,
}

impl CertError {
    fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// What provisioning needs from a validated device certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    pub id: CertificateId,
    pub serial: Serial,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Upper bound on the PEM text we parse: a device certificate is a few KB; anything far larger is hostile.
pub const MAX_PEM_LEN: usize = 16 * 1024;

/// Decodes the one `CERTIFICATE` block of a PEM text into DER bytes. Anything after it but
/// whitespace (a second certificate, a key) is refused: we are given one certificate, and a
/// parser that silently reads the first of several is how a chain gets mistaken for a leaf.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, CertError> {
    if pem.len() > MAX_PEM_LEN {
        return Err(CertError::new(
            Reason::MalformedCertificate,
            "PEM too large",
        ));
    }
    let (rest, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|_| CertError::new(Reason::MalformedCertificate, "not a PEM document"))?;
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(CertError::new(
            Reason::MalformedCertificate,
            "more than one PEM block",
        ));
    }
    if block.label != "CERTIFICATE" {
        return Err(CertError::new(
            Reason::MalformedCertificate,
            "PEM block is not a CERTIFICATE",
        ));
    }
    Ok(block.contents)
}

fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertError::new(
            Reason::MalformedCertificate,
            "trailing bytes after certificate",
        )),
        Err(_) => Err(CertError::new(
            Reason::MalformedCertificate,
            "DER does not parse as X.509",
        )),
    }
}

/// The device serial from the subject: the `serialNumber` attribute (2.5.4.5) if present, else the CN.
pub fn subject_serial(name: &X509Name<'_>) -> Result<Serial, CertError> {
    let attr = name
        .iter_by_oid(&OID_X509_SERIALNUMBER)
        .next()
        .or_else(|| name.iter_by_oid(&OID_X509_COMMON_NAME).next())
        .ok_or_else(|| {
            CertError::new(Reason::SerialMissing, "subject has no serialNumber or CN")
        })?;
    let text = attr
        .as_str()
        .map_err(|_| CertError::new(Reason::InvalidSerial, "subject serial is not a string"))?;
    Serial::parse(text).map_err(|e| CertError::new(Reason::InvalidSerial, e.to_string()))
}

/// The id of a certificate AWS issued in fleet provisioning by claim: it parses, is within its validity
/// window, and its id is SHA-256 of its DER. Its subject is deliberately not read: with
/// CreateCertificateFromCsr the device wrote it, so it proves nothing.
pub fn issued_certificate_id(pem: &str, now: OffsetDateTime) -> Result<CertificateId, CertError> {
    let der = pem_to_der(pem)?;
    let cert = parse_der(&der)?;
    check_validity(&cert, now)?;
    Ok(CertificateId::of_der(&der))
}

/// Validates a device certificate against the CA it was registered under: it parses, its issuer is the
/// CA's subject, the CA's key verifies its signature (SHA-1 refused), both are within their validity
/// window at `now`, and its subject carries a valid serial.
pub fn validate_device_certificate(
    device_pem: &str,
    ca_pem: &str,
    now: OffsetDateTime,
) -> Result<DeviceCertificate, CertError> {
    let der = pem_to_der(device_pem)?;
    let cert = parse_der(&der)?;
    let ca_der = pem_to_der(ca_pem).map_err(ca_error)?;
    let ca = parse_der(&ca_der).map_err(ca_error)?;

    check_signed_by(&cert, &ca, now)?;
    check_validity(&cert, now)?;
    device_certificate(&der, &cert)
}

fn ca_error(e: CertError) -> CertError {
    CertError::new(Reason::CaUnknown, format!("CA certificate: {}", e.detail))
}

/// The issuer is the CA's subject, the CA's key verifies the signature (SHA-1 refused), and the CA is
/// within its validity window at `now`.
fn check_signed_by(
    cert: &X509Certificate<'_>,
    ca: &X509Certificate<'_>,
    now: OffsetDateTime,
) -> Result<(), CertError> {
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err(CertError::new(
            Reason::NotSignedByCa,
            "issuer does not match the CA subject",
        ));
    }
    let alg = &cert.signature_algorithm.algorithm;
    if *alg == OID_PKCS1_SHA1WITHRSA || *alg == OID_SHA1_WITH_RSA {
        return Err(CertError::new(
            Reason::NotSignedByCa,
            "SHA-1 signatures are not accepted",
        ));
    }
    cert.verify_signature(Some(ca.public_key())).map_err(|_| {
        CertError::new(
            Reason::NotSignedByCa,
            "signature does not verify with the CA key",
        )
    })?;
    if !ca.validity().is_valid_at(now.into()) {
        return Err(CertError::new(
            Reason::CaInactive,
            "CA certificate is outside its validity window",
        ));
    }
    Ok(())
}

/// A certificate as a TLS client presented it (DER): it parses and is within its validity window at
/// `now`. Returns its id.
pub fn presented_certificate_id(
    der: &[u8],
    now: OffsetDateTime,
) -> Result<CertificateId, CertError> {
    let cert = parse_der(der)?;
    check_validity(&cert, now)?;
    Ok(CertificateId::of_der(der))
}

/// Whether the CA (PEM) issued this certificate (DER): see [`validate_device_certificate`], without the
/// subject serial (the handshake validator reads no identity from the subject).
pub fn issued_by(der: &[u8], ca_pem: &str, now: OffsetDateTime) -> Result<(), CertError> {
    let cert = parse_der(der)?;
    let ca_der = pem_to_der(ca_pem).map_err(ca_error)?;
    let ca = parse_der(&ca_der).map_err(ca_error)?;
    check_signed_by(&cert, &ca, now)?;
    check_validity(&cert, now)
}

/// What the registry keeps of a certificate (PEM): its notAfter and the SHA-256 of its key.
pub fn certificate_facts(pem: &str) -> Result<crate::model::CertificateFacts, CertError> {
    use sha2::Digest;
    let der = pem_to_der(pem)?;
    let cert = parse_der(&der)?;
    Ok(crate::model::CertificateFacts {
        not_after: crate::model::Timestamp::at(cert.validity().not_after.to_datetime()),
        key_sha256: hex::encode(sha2::Sha256::digest(cert.public_key().raw)),
    })
}

fn device_certificate(
    der: &[u8],
    cert: &X509Certificate<'_>,
) -> Result<DeviceCertificate, CertError> {
    Ok(DeviceCertificate {
        id: CertificateId::of_der(der),
        serial: subject_serial(cert.subject())?,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
    })
}

fn check_validity(cert: &X509Certificate<'_>, now: OffsetDateTime) -> Result<(), CertError> {
    let v = cert.validity();
    if now < v.not_before.to_datetime() {
        return Err(CertError::new(
            Reason::CertificateNotYetValid,
            "notBefore is in the future",
        ));
    }
    if now > v.not_after.to_datetime() {
        return Err(CertError::new(
            Reason::CertificateExpired,
            "notAfter has passed",
        ));
    }
    Ok(())
}
