//! Custom client certificate validation Lambda: AWS IoT calls it for every client certificate during
//! the TLS handshake on the fleet's domain configuration (developer guide, customize-client-auth).
//! Thin: [`fleetguard::handshake`] decides from the registry. Fail closed: every error is
//! `isAuthenticated: false`, never a function error.

use fleetguard::adapters::{dynamodb, iot::IotControlAdapter, sdk_config};
use fleetguard::config::{opt_u32, Tables};
use fleetguard::handshake::{HandshakeConfig, HandshakeValidator};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard::telemetry::init();
    // Config and clients once per cold start. The fleet CAs are described on the first handshake
    // that needs them (an unknown certificate), not here: most instances never do.
    let tables = Tables::from_env()?;
    let config = HandshakeConfig::from_env()?;
    let retention = opt_u32("FLEETGUARD_AUDIT_RETENTION_DAYS", 400)?;
    let sdk = sdk_config().await;
    let ddb = dynamodb::client(&sdk);
    let validator = HandshakeValidator::new(
        dynamodb::DynamoRegistry::new(ddb.clone(), tables.registry),
        IotControlAdapter::new(&sdk),
        dynamodb::DynamoAudit::new(ddb, tables.audit, retention),
        config,
    );
    let validator = &validator;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let decision = validator
            .handle(event.payload, fleetguard::domain::now())
            .await;
        Ok::<_, Error>(decision.response())
    }))
    .await
}
