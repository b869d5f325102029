//! Revoker Lambda: operator commands (direct invoke), Device Defender alarms (SNS), tamper reports and
//! cross-serial security events (IoT rules). Thin: the event's shape picks the trigger in
//! [`fleetguard_domain::lifecycle::revocation`].
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
    let settings = settings::Revoker::from_env()?;
    let revoker = Services::connect(&settings.common)
        .await
        .revoker(settings.revocation);
    let revoker = &revoker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let reports = revoker
            .handle(event.payload, fleetguard_domain::model::now())
            .await
            .map_err(diagnostic)?;
        Ok::<_, Diagnostic>(reports)
    }))
    .await
}
