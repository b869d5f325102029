//! The fleet CA's signing key in AWS KMS ([`CaSigner`]): an ECC_NIST_P256 SIGN_VERIFY key. The
//! private key never leaves KMS; its public key is read once, when the signer is built (the rotator
//! builds it on its first event: no AWS call at cold start).

use crate::aws_error;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use fleetguard_domain::ports::CaSigner;
use fleetguard_domain::{Error, Result};

/// KMS signs messages up to 4096 bytes as they are (RAW); larger ones as their SHA-256 (DIGEST).
const MAX_RAW_MESSAGE: usize = 4096;

#[derive(Clone, Debug)]
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    public_key: Vec<u8>,
}

impl KmsSigner {
    /// The signer for `key_id` (id, ARN or alias). Reads the public key and checks the key is a P-256
    /// signing key: any other key is a configuration error at cold start, not a bad certificate later.
    pub async fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Result<Self> {
        let key_id = key_id.into();
        let out = client
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| aws_error("kms:GetPublicKey", e))?;
        if out
            .key_usage()
            .is_some_and(|u| *u != KeyUsageType::SignVerify)
            || out.key_spec().is_some_and(|s| *s != KeySpec::EccNistP256)
        {
            return Err(Error::Config(format!(
                "KMS key {key_id} must be an ECC_NIST_P256 SIGN_VERIFY key"
            )));
        }
        let public_key = out
            .public_key()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| Error::Corrupt("GetPublicKey returned no key".into()))?;
        Ok(Self {
            client,
            key_id,
            public_key,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Creates a P-256 signing key (local stacks and `fleetctl ca init-kms --create-key`; on AWS the
    /// template creates it with its key policy). Returns its id.
    pub async fn create_key(client: &aws_sdk_kms::Client, description: &str) -> Result<String> {
        let out = client
            .create_key()
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::SignVerify)
            .description(description)
            .send()
            .await
            .map_err(|e| aws_error("kms:CreateKey", e))?;
        out.key_metadata()
            .map(|m| m.key_id().to_owned())
            .ok_or_else(|| Error::Corrupt("CreateKey returned no key".into()))
    }
}

impl CaSigner for KmsSigner {
    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        use aws_lc_rs::digest;
        let (message, kind) = if message.len() <= MAX_RAW_MESSAGE {
            (message.to_vec(), MessageType::Raw)
        } else {
            (
                digest::digest(&digest::SHA256, message).as_ref().to_vec(),
                MessageType::Digest,
            )
        };
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(kind)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| aws_error("kms:Sign", e))?;
        out.signature()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| Error::Corrupt("Sign returned no signature".into()))
    }
}

pub fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(sdk)
}
