//! The fleet CA in KMS, made ready for AWS IoT (`fleetctl ca init-kms`, local stacks): a self-signed
//! CA certificate for the KMS key, registered with AWS IoT with a verification certificate. Idempotent:
//! a CA already registered for this key (same public key) is returned as it is.

use crate::kms::KmsSigner;
use crate::services::Services;
use fleetguard_domain::lifecycle::ca;
use fleetguard_domain::model::CertificateId;
use fleetguard_domain::ports::IotControl;
use fleetguard_domain::Result;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// The fleet CA: its KMS key and its registered certificate.
#[derive(Debug, Clone, Serialize)]
pub struct KmsCa {
    pub key_id: String,
    pub ca_certificate_id: CertificateId,
    pub ca_certificate_pem: String,
    /// Whether this call registered it (false: it was already registered).
    pub created: bool,
}

fn random_serial() -> [u8; 16] {
    let mut serial = [0u8; 16];
    serial.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    serial
}

/// The KMS key behind `alias` (`alias/<name>`), created (P-256, SIGN_VERIFY) if missing. For local
/// stacks; on AWS the template creates the key with its key policy.
pub async fn ensure_key(services: &Services, alias: &str) -> Result<String> {
    let client = crate::kms::client(&services.sdk);
    match client.describe_key().key_id(alias).send().await {
        Ok(out) => {
            if let Some(m) = out.key_metadata() {
                return Ok(m.key_id().to_owned());
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) => {}
        Err(e) => return Err(crate::aws_error("kms:DescribeKey", e)),
    }
    let key_id = KmsSigner::create_key(&client, "fleetguard fleet CA").await?;
    client
        .create_alias()
        .alias_name(alias)
        .target_key_id(&key_id)
        .send()
        .await
        .map_err(|e| crate::aws_error("kms:CreateAlias", e))?;
    Ok(key_id)
}

/// Makes the CA certificate of `key_id` (CN `name`, valid `days`) and registers it with AWS IoT,
/// unless a CA with this key is registered already.
pub async fn init_kms_ca(
    services: &Services,
    key_id: &str,
    name: &str,
    days: i64,
) -> Result<KmsCa> {
    let signer = services.kms_signer(key_id).await?;
    let iot = services.iot();
    for existing in iot.ca_certificates().await? {
        let key = fleetguard_domain::lifecycle::csr::certificate_public_key(&existing.pem).ok();
        if key.as_deref() == Some(fleetguard_domain::ports::CaSigner::public_key(&signer)) {
            return Ok(KmsCa {
                key_id: key_id.to_owned(),
                ca_certificate_id: existing.id,
                ca_certificate_pem: existing.pem,
                created: false,
            });
        }
    }
    register_kms_ca(services, &signer, name, days).await
}

/// Makes the CA certificate of `signer`'s key and registers it with AWS IoT (no lookup first).
pub async fn register_kms_ca(
    services: &Services,
    signer: &KmsSigner,
    name: &str,
    days: i64,
) -> Result<KmsCa> {
    let iot = services.iot();
    let now = OffsetDateTime::now_utc();
    let pem = ca::self_signed_ca(
        name,
        signer,
        now - Duration::hours(1),
        now + Duration::days(days),
        random_serial(),
    )
    .await?;
    let code = iot.registration_code().await?;
    let verification =
        ca::verification_certificate(&pem, signer, &code, now, random_serial()).await?;
    let id = iot.register_ca_certificate(&pem, &verification).await?;
    Ok(KmsCa {
        key_id: signer.key_id().to_owned(),
        ca_certificate_id: id,
        ca_certificate_pem: pem,
        created: true,
    })
}
