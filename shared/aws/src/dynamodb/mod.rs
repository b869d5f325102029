//! DynamoDB adapters: the registry ([`Registry`]) and the audit log ([`AuditLog`]), and the
//! DynamoDB call helpers the other adapters share (batch reads, transactions with their
//! cancellation reasons). Keys, item codecs and table creation are in [`crate::schema`].

use crate::aws_error;
pub use crate::schema::create_tables;
use crate::schema::{self, cert_key, device_key, from_item, principal_key, s, to_item, Item};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
pub use aws_sdk_dynamodb::Client;
use fleetguard_domain::authorization::authorizer::OperatorStatus;
use fleetguard_domain::error::AwsErrorKind;
use fleetguard_domain::model::{
    AuditEntry, CertificateId, CertificateRecord, Device, DeviceStatus, Principal, PrincipalId,
    Serial, Timestamp,
};
use fleetguard_domain::ports::{AuditLog, AuthorizerPrincipal, Registry};
use fleetguard_domain::{Error, Result};
use std::collections::HashMap;

mod audit;
mod registry;

pub use audit::DynamoAudit;
pub use registry::DynamoRegistry;

/// A new binding starts without the previous one's rotation state (`Device::clear_rotation_state`).
pub(crate) const ROTATION_STATE: &str =
    "rotation, previous_certificate_id, live_session, retire_at, deadline, deadline_kind";

/// Reads items from several tables in one round trip (consistent reads), asking again for keys DynamoDB
/// left unprocessed under load. Returns the items found, by table.
pub(crate) async fn batch_get(
    client: &Client,
    keys: Vec<(&str, Vec<Item>)>,
    op: &'static str,
) -> Result<HashMap<String, Vec<Item>>> {
    let mut request = HashMap::new();
    for (table, keys) in keys {
        let k = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        request.insert(table.to_owned(), k);
    }
    let mut found: HashMap<String, Vec<Item>> = HashMap::new();
    for _ in 0..5 {
        let out = client
            .batch_get_item()
            .set_request_items(Some(request))
            .send()
            .await
            .map_err(|e| aws_error(op, e))?;
        for (table, items) in out.responses.unwrap_or_default() {
            found.entry(table).or_default().extend(items);
        }
        match out.unprocessed_keys {
            Some(rest) if !rest.is_empty() => request = rest,
            _ => return Ok(found),
        }
    }
    Err(Error::aws(
        op,
        AwsErrorKind::Throttled,
        "keys left unprocessed",
    ))
}

/// Runs a transaction. `Ok(None)` if it committed; `Ok(Some(flags))` if it was cancelled by failed
/// conditions, with one flag per item (true = that item's condition failed); any other failure is `Err`.
pub(crate) async fn transact_reasons(
    client: &Client,
    items: Vec<TransactWriteItem>,
    op: &'static str,
) -> Result<Option<Vec<bool>>> {
    transact_reasons_with_token(client, items, None, op).await
}

/// [`transact_reasons`] with a client request token (DynamoDB treats a repeat within 10 minutes as
/// the same transaction).
pub(crate) async fn transact_reasons_with_token(
    client: &Client,
    items: Vec<TransactWriteItem>,
    token: Option<String>,
    op: &'static str,
) -> Result<Option<Vec<bool>>> {
    match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .set_client_request_token(token)
        .send()
        .await
    {
        Ok(_) => Ok(None),
        Err(e) => {
            let flags = e.as_service_error().and_then(|se| match se {
                TransactWriteItemsError::TransactionCanceledException(tc) => Some(
                    tc.cancellation_reasons()
                        .iter()
                        .map(|r| r.code() == Some("ConditionalCheckFailed"))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            });
            match flags {
                Some(f) if f.iter().any(|x| *x) => Ok(Some(f)),
                _ => Err(aws_error(op, e)),
            }
        }
    }
}

/// The DynamoDB client for an SDK configuration (built once per cold start).
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    Client::new(sdk)
}
