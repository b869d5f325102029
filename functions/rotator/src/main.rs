//! Rotator Lambda: invoked by the IoT rules on `P/+/certificates/rotate` and `P/+/certificates/confirm`.
//! Thin: parse, decide ([`fleetguard_domain::rotation`]), map. It alone may sign with the fleet CA's
//! KMS key (`FLEETGUARD_CA_KEY_ID`); the CA certificate (`FLEETGUARD_CA_CERTIFICATE_ID`) is read once.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use fleetguard_aws::services::Services;
use fleetguard_domain::config::var;
use fleetguard_domain::rotation::RotationConfig;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard_domain::telemetry::init();
    let config = RotationConfig::from_env()?;
    let service = Services::from_env()
        .await?
        .rotation(
            config,
            &var("FLEETGUARD_CA_KEY_ID")?,
            &var("FLEETGUARD_CA_CERTIFICATE_ID")?,
        )
        .await?;
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Err: the rule's asynchronous invoke retries; a replay gives the same answer.
        let decision = service.handle(event.payload).await?;
        Ok::<_, Error>(decision)
    }))
    .await
}
