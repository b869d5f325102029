//! Delete-record Lambda: invoked by the IoT rule on `P/+/deleterecords/+`. Thin: parse, decide
//! ([`fleetguard_domain::records::delete`]), map. It never calls the IoT control plane (least privilege): a
//! cross-serial attempt is published to the security topic for the revoker.
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
    let settings = settings::DeleteRecord::from_env()?;
    let service = Services::connect(&settings.common)
        .await
        .delete_record(settings.security_topic);
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Err: the rule's asynchronous invoke retries; a replay gives the same answer.
        let decision = service.handle(event.payload).await.map_err(diagnostic)?;
        Ok::<_, Diagnostic>(decision)
    }))
    .await
}
