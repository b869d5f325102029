//! Fleet provisioning by claim: factory keys, one-time secrets, the hook requests.

use super::*;

/// A device's factory attestation key (P-256), generated at test time: what a secure element holds.
pub struct FactoryKey(aws_lc_rs::signature::EcdsaKeyPair);

impl Default for FactoryKey {
    fn default() -> Self {
        Self::new()
    }
}

impl FactoryKey {
    pub fn new() -> FactoryKey {
        FactoryKey(
            aws_lc_rs::signature::EcdsaKeyPair::generate(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            )
            .expect("P-256 key"),
        )
    }

    /// The public key as manufacturing exports it (base64 SubjectPublicKeyInfo DER).
    pub fn public_b64(&self) -> String {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::KeyPair as _;
        base64::engine::general_purpose::STANDARD
            .encode(self.0.public_key().as_der().expect("SPKI").as_ref())
    }

    /// The template parameters a device sends: its serial and a statement signed for `cert_id` at `ts`.
    pub fn prove(&self, serial: &str, cert_id: &str, ts: i64) -> serde_json::Value {
        let serial_v = Serial::parse(serial).expect("serial");
        let cert = fleetguard_domain::model::CertificateId::parse(cert_id).expect("cert id");
        let statement =
            fleetguard_domain::provisioning::enrollment::statement(&serial_v, &cert, ts);
        let sig = self
            .0
            .sign(&aws_lc_rs::rand::SystemRandom::new(), statement.as_bytes())
            .expect("sign");
        serde_json::json!({
            "SerialNumber": serial,
            "ProofTimestamp": ts.to_string(),
            "ProofSignature": base64::engine::general_purpose::STANDARD.encode(sig.as_ref()),
        })
    }

    /// A fresh proof, timestamped now.
    pub fn prove_now(&self, serial: &str, cert_id: &str) -> serde_json::Value {
        self.prove(serial, cert_id, OffsetDateTime::now_utc().unix_timestamp())
    }
}

/// A one-time enrollment secret (128 random bits) and the parameters that present it.
pub fn enrollment_secret() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

pub fn secret_parameters(serial: &str, secret: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "SerialNumber": serial,
        "EnrollmentSecret": base64::engine::general_purpose::STANDARD.encode(secret),
    })
}

/// A pre-provisioning hook request as AWS sends it (developerguide/pre-provisioning-hook.html).
pub fn hook_request(
    claim: &str,
    pem: &str,
    client_id: Option<&str>,
    parameters: serde_json::Value,
) -> serde_json::Value {
    let mut request = serde_json::json!({
        "claimCertificateId": claim,
        "certificateId": certificate_id_of(pem),
        "certificatePem": pem,
        "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/fleetguard-claim",
        "parameters": parameters,
    });
    if let Some(c) = client_id {
        request["clientId"] = c.into();
    }
    request
}
