//! Fleet-provisioning pre-provisioning hook Lambda. AWS gives it 5 s; we answer within 4 s or deny.

use fleetguard::adapters::{dynamodb, sdk_config};
use fleetguard::config::{opt_u32, Tables};
use fleetguard::provisioning::{pre_provisioning_hook, HookResponse};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::time::Duration;

const BUDGET: Duration = Duration::from_secs(4);

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard::telemetry::init();
    let tables = Tables::from_env()?;
    let retention = opt_u32("FLEETGUARD_AUDIT_RETENTION_DAYS", 400)?;
    let sdk = sdk_config().await;
    let ddb = dynamodb::client(&sdk);
    let registry = dynamodb::DynamoRegistry::new(ddb.clone(), tables.registry);
    let audit = dynamodb::DynamoAudit::new(ddb, tables.audit, retention);
    let (registry, audit) = (&registry, &audit);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let decision =
            pre_provisioning_hook(registry, audit, event.payload, fleetguard::domain::now());
        // Fail closed: a slow answer is a deny, never a late allow.
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
