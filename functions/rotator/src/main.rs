//! Rotator Lambda: invoked by the IoT rules on `P/+/certificates/rotate` and `P/+/certificates/confirm`.
//! Thin: parse, decide ([`fleetguard_domain::lifecycle::rotation`]), map. It alone may sign with the fleet CA's
//! KMS key (`FLEETGUARD_CA_KEY_ID`); the CA certificate (`FLEETGUARD_CA_CERTIFICATE_ID`) and the key's
//! public key are read on the first event, once.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use fleetguard_aws::lambda::diagnostic;
use fleetguard_aws::services::Services;
use fleetguard_aws::settings;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard_aws::telemetry::init();
    // Configuration and clients at cold start; no AWS call before the first event: the CA
    // certificate (DescribeCACertificate) and the KMS public key (GetPublicKey) are read on first
    // use and kept for the instance's life. A failure there fails that invocation, which the
    // rule's asynchronous invoke retries.
    let settings::Rotator {
        common,
        rotation: config,
        ca_key_id: key_id,
        ca_certificate_id: ca_id,
    } = settings::Rotator::from_env()?;
    let services = Services::connect(&common).await;
    let service = tokio::sync::OnceCell::new();
    let (services, service, config, key_id, ca_id) =
        (&services, &service, &config, &key_id, &ca_id);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let service = service
            .get_or_try_init(|| services.rotation(config.clone(), key_id, ca_id))
            .await
            .map_err(diagnostic)?;
        // Err: the rule's asynchronous invoke retries; a replay gives the same answer.
        let decision = service.handle(event.payload).await.map_err(diagnostic)?;
        Ok::<_, Diagnostic>(decision)
    }))
    .await
}
