//! JITR provisioning Lambda: triggered by an IoT rule on `$aws/events/certificates/registered/<caId>`.
//! Thin: parse, call [`fleetguard_domain::provisioning::jitr::Provisioner`], map the result.
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
    // Configuration and clients once per cold start, reused by every invocation.
    let settings = settings::Provisioner::from_env()?;
    let provisioner = Services::connect(&settings.common)
        .await
        .provisioner(settings.provisioning);
    let provisioner = &provisioner;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // An Err fails the invocation; the IoT rule's asynchronous invoke retries it, and every step is
        // idempotent, so the retry finishes the job.
        let decision = provisioner
            .handle(event.payload, fleetguard_domain::model::now())
            .await
            .map_err(diagnostic)?;
        Ok::<_, Diagnostic>(decision)
    }))
    .await
}
