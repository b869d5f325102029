//! Just-in-time registration, as AWS IoT does it on a device's first connection
//! (auto-register-device-cert): a certificate AWS IoT does not know, issued by a registered ACTIVE CA
//! whose auto-registration is on, is registered PENDING_ACTIVATION; the registration event is
//! published on `$aws/events/certificates/registered/<caCertificateId>` (the provisioner's rule takes
//! it from there) and the connection is dropped. A PENDING_ACTIVATION certificate that connects
//! again raises the event again (the provisioner is idempotent). The device reconnects once its
//! certificate is ACTIVE.

use aws_sdk_iot::types::{AutoRegistrationStatus, CaCertificateStatus, CertificateStatus};
use aws_sdk_iot::Client;
use fleetguard_domain::lifecycle::ca::der_to_pem;
use fleetguard_domain::x509::issued_by;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The CA (id, PEM) that issued `der`, if it is registered ACTIVE with auto-registration on.
pub async fn auto_registering_ca(
    iot: &Client,
    der: &[u8],
) -> Result<Option<(String, String)>, String> {
    let now = OffsetDateTime::now_utc();
    let mut marker = None;
    loop {
        let page = iot
            .list_ca_certificates()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| format!("ListCACertificates: {e}"))?;
        for ca in page.certificates() {
            let Some(id) = ca.certificate_id() else {
                continue;
            };
            let d = iot
                .describe_ca_certificate()
                .certificate_id(id)
                .send()
                .await
                .map_err(|e| format!("DescribeCACertificate: {e}"))?;
            let Some(d) = d.certificate_description else {
                continue;
            };
            let auto = d.auto_registration_status == Some(AutoRegistrationStatus::Enable);
            let active = d.status == Some(CaCertificateStatus::Active);
            let pem = d.certificate_pem.unwrap_or_default();
            if auto && active && issued_by(der, &pem, now).is_ok() {
                return Ok(Some((id.to_owned(), pem)));
            }
        }
        marker = page
            .next_marker()
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        if marker.is_none() {
            return Ok(None);
        }
    }
}

/// Registers `der` PENDING_ACTIVATION under the CA, as auto-registration does. Returns its id.
pub async fn register(iot: &Client, der: &[u8], ca_pem: &str) -> Result<String, String> {
    let out = iot
        .register_certificate()
        .certificate_pem(der_to_pem(der))
        .ca_certificate_pem(ca_pem)
        .status(CertificateStatus::PendingActivation)
        .send()
        .await
        .map_err(|e| format!("RegisterCertificate: {e}"))?;
    out.certificate_id
        .ok_or_else(|| "RegisterCertificate: no certificate id".into())
}

/// The registration event (auto-register-device-cert), its topic and payload.
pub fn event(
    certificate_id: &str,
    ca_id: &str,
    account: &str,
    now: OffsetDateTime,
) -> (String, Value) {
    let ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    (
        format!("$aws/events/certificates/registered/{ca_id}"),
        json!({
            "certificateId": certificate_id,
            "caCertificateId": ca_id,
            "timestamp": ms,
            "certificateStatus": "PENDING_ACTIVATION",
            "awsAccountId": account,
            "certificateRegistrationTimestamp": ms.to_string(),
        }),
    )
}
