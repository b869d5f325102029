//! Fleet-provisioning pre-provisioning hook Lambda. AWS gives it 5 s; we answer within 4 s or deny.
//! Thin: parse, call [`fleetguard_domain::provisioning::claim::ClaimHook`], map the result.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use fleetguard_aws::services::Services;
use fleetguard_aws::settings;
use fleetguard_domain::provisioning::claim::HookResponse;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::time::Duration;

const BUDGET: Duration = Duration::from_secs(4);

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard_aws::telemetry::init();
    // Configuration and clients once per cold start, reused by every invocation.
    let settings = settings::ProvisioningHook::from_env()?;
    let hook = Services::connect(&settings.common)
        .await
        .claim_hook(settings.proof_window_seconds)
        .with_quarantine_group(settings.quarantine_group);
    let hook = &hook;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let decision = hook.handle(event.payload, fleetguard_domain::model::now());
        // Fail closed: a slow answer is a deny, never a late allow. (A binding committed just before
        // the budget ran out stays pending: its certificate never becomes ACTIVE, so the device's next
        // attempt with a fresh proof replaces it.)
        let response = tokio::time::timeout(BUDGET, decision)
            .await
            .unwrap_or_else(|_| {
                tracing::warn!(
                    reason = "timeout",
                    "pre-provisioning hook over budget; denying"
                );
                HookResponse::deny()
            });
        Ok::<_, Error>(response)
    }))
    .await
}
