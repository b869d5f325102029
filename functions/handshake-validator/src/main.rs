//! Custom client certificate validation Lambda: AWS IoT calls it for every client certificate during
//! the TLS handshake on the fleet's domain configuration (developer guide, customize-client-auth).
//! Thin: [`fleetguard_domain::authorization::handshake`] decides from the registry. Fail closed: every error is
//! `isAuthenticated: false`, never a function error.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use fleetguard_aws::services::Services;
use fleetguard_aws::settings;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard_aws::telemetry::init();
    // Config and clients once per cold start. The fleet CAs are described on the first handshake
    // that needs them (an unknown certificate), not here: most instances never do.
    let settings = settings::HandshakeValidator::from_env()?;
    let validator = Services::connect(&settings.common)
        .await
        .handshake_validator(settings.handshake);
    let validator = &validator;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let decision = validator
            .handle(event.payload, fleetguard_domain::model::now())
            .await;
        Ok::<_, Error>(decision.response())
    }))
    .await
}
