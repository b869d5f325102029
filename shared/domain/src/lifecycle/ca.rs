//! Issuing a device certificate with the fleet CA's key held by a [`CaSigner`] (AWS KMS), on top of
//! the maintained `rcgen` crate. The certificate is built from fresh parameters: the CSR contributes
//! its public key only, never its subject or requested extensions.
//!
//! rcgen signs through a synchronous trait, KMS is an async network call: the certificate is built
//! twice with the same parameters (serial number and validity fixed), first to capture the bytes to
//! sign, then with KMS's signature. The bytes are deterministic, and the result is verified against the
//! CA's public key before anyone sees it.

use crate::model::{CertificateId, Serial};
use crate::ports::CaSigner;
use crate::{Error, Result};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyUsagePurpose, PublicKeyData,
    SerialNumber, SignatureAlgorithm, SigningKey, SubjectPublicKeyInfo,
};
use std::sync::Mutex;
use time::OffsetDateTime;

/// The OID of the subject's serialNumber attribute, where fleetguard's certificates carry the serial
/// (what provisioning reads, see [`crate::x509::subject_serial`]).
const SERIAL_NUMBER_ATTRIBUTE: [u64; 4] = [2, 5, 4, 5];

/// A certificate to issue: for `serial`, certifying `public_key` (SubjectPublicKeyInfo DER).
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    pub serial: &'a Serial,
    pub public_key: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// 16 random bytes (RFC 5280: unique per CA, at most 20 octets, positive).
    pub serial_number: [u8; 16],
}

/// An issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub id: CertificateId,
    pub pem: String,
    pub der: Vec<u8>,
}

/// The CA key as rcgen sees it: its public key, and a signature it either records the message for
/// (first pass) or hands back (second pass).
struct PassSigner<'a> {
    public_point: &'a [u8],
    message: Mutex<Option<Vec<u8>>>,
    signature: Option<Vec<u8>>,
}

impl PublicKeyData for PassSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.public_point
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for PassSigner<'_> {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.to_vec());
        Ok(self.signature.clone().unwrap_or_default())
    }
}

fn rcgen_error(e: rcgen::Error) -> Error {
    Error::Config(format!("certificate issuance: {e}"))
}

/// The parameters of a fleet device certificate: subject serialNumber and CN = serial, client
/// authentication only, never a CA.
fn params(req: &IssueRequest<'_>) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(
        DnType::CustomDnType(SERIAL_NUMBER_ATTRIBUTE.to_vec()),
        req.serial.as_str(),
    );
    p.distinguished_name
        .push(DnType::CommonName, req.serial.as_str());
    p.not_before = req.not_before;
    p.not_after = req.not_after;
    p.serial_number = Some(SerialNumber::from_slice(&positive(req.serial_number)));
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// A DER INTEGER is signed: clear the top bit so the serial number stays positive.
fn positive(mut bytes: [u8; 16]) -> [u8; 16] {
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 1;
    }
    bytes
}

/// The raw EC point of a P-256 SubjectPublicKeyInfo (what rcgen writes as the issuer key's bits).
fn ec_point(spki: &[u8]) -> Result<Vec<u8>> {
    let key = SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| Error::Config(format!("CA public key: {e}")))?;
    if key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
        return Err(Error::Config(
            "the CA key must be ECC_NIST_P256 (ECDSA_SHA_256)".into(),
        ));
    }
    Ok(key.der_bytes().to_vec())
}

/// Builds a certificate twice: first to capture the bytes to sign, then with the signer's signature
/// over them. `make` must build the same bytes both times (fixed serial number and validity).
async fn signed_twice<S: CaSigner>(
    signer: &S,
    make: impl Fn(&PassSigner<'_>) -> std::result::Result<rcgen::Certificate, rcgen::Error>,
) -> Result<Vec<u8>> {
    let point = ec_point(signer.public_key())?;
    let pass = |signature: Option<Vec<u8>>| -> Result<(Vec<u8>, Vec<u8>)> {
        let key = PassSigner {
            public_point: &point,
            message: Mutex::new(None),
            signature,
        };
        let der = make(&key).map_err(rcgen_error)?.der().to_vec();
        let message = key.message.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok((message.unwrap_or_default(), der))
    };
    let (tbs, _) = pass(None)?;
    let signature = signer.sign(&tbs).await?;
    let (tbs_again, der) = pass(Some(signature))?;
    if tbs_again != tbs {
        return Err(Error::Config(
            "certificate bytes changed between passes".into(),
        ));
    }
    Ok(der)
}

/// Issues a device certificate under `ca_pem`, signed by `signer`. The result is validated against
/// the CA as provisioning validates a device certificate: a signer answering with another key's
/// signature is an error, never a certificate.
pub async fn issue<S: CaSigner>(
    ca_pem: &str,
    signer: &S,
    req: &IssueRequest<'_>,
) -> Result<Issued> {
    let subject = SubjectPublicKeyInfo::from_der(req.public_key)
        .map_err(|e| Error::Config(format!("subject public key: {e}")))?;
    let params = params(req)?;
    let der = signed_twice(signer, |key| {
        params.signed_by(&subject, &Issuer::from_ca_cert_pem(ca_pem, key)?)
    })
    .await?;
    let pem = der_to_pem(&der);
    crate::x509::validate_device_certificate(&pem, ca_pem, req.not_before)
        .map_err(|e| Error::Config(format!("issued certificate does not verify: {e}")))?;
    Ok(Issued {
        id: CertificateId::of_der(&der),
        pem,
        der,
    })
}

/// The verification certificate AWS IoT asks for when a CA is registered (RegisterCACertificate):
/// signed by the CA, its CN the account's registration code. It certifies the CA's own public key (no
/// private key exists for it anywhere) and is valid for a day: it proves possession of the CA key once.
pub async fn verification_certificate<S: CaSigner>(
    ca_pem: &str,
    signer: &S,
    registration_code: &str,
    now: OffsetDateTime,
    serial_number: [u8; 16],
) -> Result<String> {
    let subject = SubjectPublicKeyInfo::from_der(signer.public_key())
        .map_err(|e| Error::Config(format!("CA public key: {e}")))?;
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, registration_code);
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(1);
    p.serial_number = Some(SerialNumber::from_slice(&positive(serial_number)));
    let der = signed_twice(signer, |key| {
        p.signed_by(&subject, &Issuer::from_ca_cert_pem(ca_pem, key)?)
    })
    .await?;
    let pem = der_to_pem(&der);
    crate::x509::issued_by(&der, ca_pem, now)
        .map_err(|e| Error::Config(format!("verification certificate does not verify: {e}")))?;
    Ok(pem)
}

/// A certificate's PEM text.
pub fn der_to_pem(der: &[u8]) -> String {
    // LF line endings, 64 columns: what AWS IoT returns and what our fixtures hold.
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der), config)
}

/// The CA certificate for a KMS key: self-signed, `name` as its CN, for certificate and CRL signing
/// only, issuing end-entity certificates only (path length 0): what `fleetctl ca init-kms` registers
/// with AWS IoT.
pub async fn self_signed_ca<S: CaSigner>(
    name: &str,
    signer: &S,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    serial_number: [u8; 16],
) -> Result<String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.distinguished_name
        .push(DnType::OrganizationName, "fleetguard");
    p.not_before = not_before;
    p.not_after = not_after;
    p.serial_number = Some(SerialNumber::from_slice(&positive(serial_number)));
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let der = signed_twice(signer, |key| p.self_signed(key)).await?;
    let pem = der_to_pem(&der);
    crate::x509::issued_by(&der, &pem, not_before)
        .map_err(|e| Error::Config(format!("CA certificate does not verify: {e}")))?;
    Ok(pem)
}

#[cfg(test)]
mod pem_tests {
    #[test]
    fn pem_text_is_lf_and_64_columns_with_a_final_newline() {
        use base64::Engine;
        let der: Vec<u8> = (0..=255u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let mut want = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            want.push_str(std::str::from_utf8(line).unwrap());
            want.push('\n');
        }
        want.push_str("-----END CERTIFICATE-----\n");
        assert_eq!(super::der_to_pem(&der), want);
    }
}
