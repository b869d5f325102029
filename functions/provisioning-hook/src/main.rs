//! Fleet-provisioning pre-provisioning hook Lambda. AWS gives it 5 s; we answer within 4 s or deny.
//! Thin: parse, call [`fleetguard::fleet_provisioning::ClaimHook`], map the result.

use fleetguard::adapters::{dynamodb, enrollments::DynamoEnrollments, iot, sdk_config};
use fleetguard::config::{opt_u32, Tables};
use fleetguard::fleet_provisioning::{ClaimHook, HookResponse, DEFAULT_PROOF_WINDOW_SECONDS};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::time::Duration;

const BUDGET: Duration = Duration::from_secs(4);

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard::telemetry::init();
    // Configuration and clients once per cold start, reused by every invocation.
    let tables = Tables::from_env()?;
    let retention = opt_u32("FLEETGUARD_AUDIT_RETENTION_DAYS", 400)?;
    let window = opt_u32(
        "FLEETGUARD_PROOF_WINDOW_SECONDS",
        DEFAULT_PROOF_WINDOW_SECONDS as u32,
    )?;
    let sdk = sdk_config().await;
    let ddb = dynamodb::client(&sdk);
    let audit = dynamodb::DynamoAudit::new(ddb.clone(), tables.audit, retention);
    let hook = ClaimHook::new(
        DynamoEnrollments::new(
            dynamodb::DynamoRegistry::new(ddb, tables.registry),
            audit.clone(),
        ),
        iot::IotControlAdapter::new(&sdk),
        audit,
        i64::from(window),
    );
    let hook = &hook;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let decision = hook.handle(event.payload, fleetguard::domain::now());
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
