//! JITR provisioning Lambda: triggered by an IoT rule on `$aws/events/certificates/registered/<caId>`.
//! Thin: parse, call [`fleetguard::provisioning::Provisioner`], map the result.

use fleetguard::adapters::{dynamodb, iot, sdk_config};
use fleetguard::config::{ProvisioningConfig, Tables};
use fleetguard::provisioning::Provisioner;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard::telemetry::init();
    // Configuration and clients once per cold start, reused by every invocation.
    let tables = Tables::from_env()?;
    let config = ProvisioningConfig::from_env()?;
    let sdk = sdk_config().await;
    let ddb = dynamodb::client(&sdk);
    let provisioner = Provisioner::new(
        dynamodb::DynamoRegistry::new(ddb.clone(), tables.registry),
        iot::IotControlAdapter::new(&sdk),
        dynamodb::DynamoAudit::new(ddb, tables.audit, config.audit_retention_days),
        config.fleet_policy,
        config.refused_status,
    )
    .with_ca_cache(config.ca_cache)
    .with_quarantine_group(config.quarantine_group);
    let provisioner = &provisioner;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // An Err fails the invocation; the IoT rule's asynchronous invoke retries it, and every step is
        // idempotent, so the retry finishes the job.
        let decision = provisioner
            .handle_jitr(event.payload, fleetguard::domain::now())
            .await?;
        Ok::<_, Error>(decision)
    }))
    .await
}
