//! Delete-record Lambda: invoked by the IoT rule on `P/+/deleterecords/+`. Thin: parse, decide
//! ([`fleetguard::delete_record`]), map. It never calls the IoT control plane (least privilege): a
//! cross-serial attempt is published to the security topic for the revoker.

use fleetguard::adapters::{dynamodb, iot_data::IotPublisher, records::DynamoRecords, sdk_config};
use fleetguard::config::{opt_u32, var, Tables};
use fleetguard::delete_record::DeleteRecordService;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard::telemetry::init();
    let tables = Tables::from_env()?;
    let security_topic = var("FLEETGUARD_SECURITY_TOPIC")?;
    let retention = opt_u32("FLEETGUARD_AUDIT_RETENTION_DAYS", 400)?;
    let sdk = sdk_config().await;
    let ddb = dynamodb::client(&sdk);
    let audit = dynamodb::DynamoAudit::new(ddb.clone(), tables.audit, retention);
    let service = DeleteRecordService {
        records: DynamoRecords::new(ddb, tables.records, tables.registry, audit.clone()),
        audit,
        publisher: IotPublisher::new(&sdk),
        security_topic,
    };
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Err: the rule's asynchronous invoke retries; a replay gives the same answer.
        let decision = service.handle(event.payload).await?;
        Ok::<_, Error>(decision)
    }))
    .await
}
