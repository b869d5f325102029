//! A test PKI generated at run time: no key is ever committed.

use fleetguard_domain::model::CertificateId;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

/// A test certificate authority, generated at run time.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "fleetguard tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed CA"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A device certificate with `serial` in the subject's serialNumber attribute (and CN).
    pub fn issue(&self, serial: &str) -> String {
        self.issue_with(
            serial,
            OffsetDateTime::now_utc() - time::Duration::hours(1),
            OffsetDateTime::now_utc() + time::Duration::days(365),
            true,
        )
    }

    pub fn issue_with(
        &self,
        serial: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        serial_attribute: bool,
    ) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        if serial_attribute {
            params
                .distinguished_name
                .push(DnType::CustomDnType(vec![2, 5, 4, 5]), serial);
        }
        params.distinguished_name.push(DnType::CommonName, serial);
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().expect("device key");
        params
            .signed_by(&key, &self.issuer)
            .expect("sign device")
            .pem()
    }

    /// A device certificate for `serial` certifying `key` (a device that later rotates from it).
    pub fn issue_for_key(&self, serial: &str, key: &KeyPair) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, serial);
        params
            .signed_by(key, &self.issuer)
            .expect("sign device")
            .pem()
    }
}

/// A certificate signing request (PEM) for `key`, with `cn` as its (untrusted) subject.
pub fn csr_pem(key: &KeyPair, cn: &str) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .serialize_request(key)
        .expect("CSR")
        .pem()
        .expect("CSR PEM")
}

/// The certificate id of a PEM certificate (SHA-256 of its DER), as AWS IoT computes it.
pub fn certificate_id(pem: &str) -> CertificateId {
    CertificateId::of_der(&fleetguard_domain::x509::pem_to_der(pem).expect("PEM certificate"))
}

/// A fleet CA key as the KMS adapter presents it (a P-256 key that signs the bytes it is given, DER
/// ECDSA), generated at run time, for the rotation use cases over fakes.
pub struct TestSigner {
    key: KeyPair,
    spki: Vec<u8>,
}

impl Default for TestSigner {
    fn default() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        Self { key, spki }
    }
}

impl TestSigner {
    /// The self-signed CA certificate of this key, made as `fleetctl ca init-kms` makes it, valid
    /// for `days`.
    pub async fn ca_pem(&self, name: &str, days: i64) -> String {
        let mut serial = [0u8; 16];
        serial.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let now = OffsetDateTime::now_utc();
        fleetguard_domain::lifecycle::ca::self_signed_ca(
            name,
            self,
            now - time::Duration::hours(1),
            now + time::Duration::days(days),
            serial,
        )
        .await
        .expect("CA certificate")
    }
}

impl fleetguard_domain::ports::CaSigner for TestSigner {
    fn public_key(&self) -> &[u8] {
        &self.spki
    }

    async fn sign(&self, message: &[u8]) -> fleetguard_domain::Result<Vec<u8>> {
        rcgen::SigningKey::sign(&self.key, message)
            .map_err(|e| fleetguard_domain::Error::Config(e.to_string()))
    }
}
