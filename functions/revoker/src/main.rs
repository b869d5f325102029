//! Revoker Lambda: operator commands (direct invoke), Device Defender alarms (SNS), tamper reports and
//! cross-serial security events (IoT rules). Thin: the event's shape picks the trigger in
//! [`fleetguard::revocation`].

use fleetguard::adapters::{
    dynamodb, iot::IotControlAdapter, iot_data::IotPublisher, records::DynamoRecords, sdk_config,
};
use fleetguard::config::{opt_u32, Tables};
use fleetguard::revocation::{RevocationConfig, Revoker};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard::telemetry::init();
    let tables = Tables::from_env()?;
    let config = RevocationConfig::from_env()?;
    let retention = opt_u32("FLEETGUARD_AUDIT_RETENTION_DAYS", 400)?;
    let sdk = sdk_config().await;
    let ddb = dynamodb::client(&sdk);
    let audit = dynamodb::DynamoAudit::new(ddb.clone(), tables.audit, retention);
    let revoker = Revoker {
        registry: dynamodb::DynamoRegistry::new(ddb.clone(), tables.registry.clone()),
        control: IotControlAdapter::new(&sdk),
        connections: IotPublisher::new(&sdk),
        records: DynamoRecords::new(ddb, tables.records, tables.registry, audit.clone()),
        audit,
        config,
    };
    let revoker = &revoker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let reports = revoker
            .handle(event.payload, fleetguard::domain::now())
            .await?;
        Ok::<_, Error>(reports)
    }))
    .await
}
