//! The owner of fleetguard's DynamoDB schema: every key, every item codec (one model per item kind)
//! and table creation for local stacks. On AWS the SAM template creates the tables with the same
//! keys (`tests/template.rs` checks that they agree).
//!
//! Registry table (single table, keys `pk`/`sk`, both S):
//! - `DEVICE#<serial>` / `DEVICE`: the [`Device`] (serial, status, certificate_id, replacement_approved,
//!   updated_at, version, binding_pending, enrollment (map: attestation_key, secret_sha256,
//!   secret_used_by, proof_last_ts, claims))
//! - `CERT#<certificate id>` / `CERT`: the `CertificateRecord` (certificate_id, serial, denied, held,
//!   updated_at)
//! - `PRINCIPAL#<principal id>` / `PRINCIPAL`: the custom authorizer's [`Identity`] (tagged by
//!   `kind`: operator or password device), read by the authorizer, delete-record and revocation.
//!
//! Registry GSIs (sparse, projection ALL): `by_expiry` (`expiry_month`, `certificate_not_after`) for the
//! expiry watch; `by_deadline` (`deadline_kind`, `deadline`) for the rotation sweep.
//!
//! Audit table: `serial` (S, `-` when unknown) / `sk` (S, `<RFC 3339>#<uuid>`); GSI `by_principal`
//! (`principal`, `sk`); TTL attribute `expires_at`.
//!
//! Records table: `serial` (S) / `record_id` (S).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use fleetguard_domain::authorization::authorizer::Identity;
use fleetguard_domain::config::Tables;
use fleetguard_domain::model::{AuditEntry, CertificateId, Principal, RecordId, Serial};
use fleetguard_domain::ports::AuthorizerPrincipal;
use fleetguard_domain::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn registry_key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The key of a serial's `Device` item.
pub fn device_key(serial: &Serial) -> Item {
    registry_key(format!("DEVICE#{serial}"), "DEVICE")
}

/// The key of a certificate's `CertificateRecord` item.
pub fn cert_key(id: &CertificateId) -> Item {
    registry_key(format!("CERT#{id}"), "CERT")
}

/// The key of an authorizer principal's [`Identity`] item.
pub fn principal_key(principal_id: &str) -> Item {
    registry_key(format!("PRINCIPAL#{principal_id}"), "PRINCIPAL")
}

/// The registry item that says who a connection principal is: its certificate record or its
/// identity.
pub fn principal_item_key(principal: &Principal) -> Item {
    match principal {
        Principal::Certificate(c) => cert_key(c),
        Principal::Authorizer(p) => principal_key(p.as_str()),
    }
}

/// The key of a record.
pub fn record_key(serial: &Serial, record_id: &RecordId) -> Item {
    HashMap::from([
        ("serial".to_owned(), s(serial.as_str())),
        ("record_id".to_owned(), s(record_id.as_str())),
    ])
}

/// `value` as an item under `key`.
pub fn to_item<T: Serialize>(value: &T, key: Item) -> Result<Item> {
    let mut item: Item =
        serde_dynamo::to_item(value).map_err(|e| Error::Corrupt(format!("serialize: {e}")))?;
    item.extend(key);
    Ok(item)
}

/// The value an item holds (its registry key removed).
pub fn from_item<T: for<'de> Deserialize<'de>>(mut item: Item) -> Result<T> {
    item.remove("pk");
    item.remove("sk");
    serde_dynamo::from_item(item).map_err(|e| Error::Corrupt(format!("deserialize: {e}")))
}

/// An identity's item.
pub fn identity_item(identity: &Identity) -> Result<Item> {
    to_item(identity, principal_key(identity.principal_id.as_str()))
}

/// What delete-record and revocation need of a `PRINCIPAL#` item: decoded as the one [`Identity`]
/// model the authorizer reads. An item without its `principal_id` attribute (written by hand, or by
/// an older fleetctl) takes it from its key.
pub fn decode_principal(mut item: Item) -> Result<AuthorizerPrincipal> {
    if !item.contains_key("principal_id") {
        if let Some(AttributeValue::S(pk)) = item.get("pk") {
            if let Some(id) = pk.strip_prefix("PRINCIPAL#") {
                let id = id.to_owned();
                item.insert("principal_id".to_owned(), s(id));
            }
        }
    }
    from_item::<Identity>(item)
        .map(|i| AuthorizerPrincipal::from(&i))
        .map_err(|e| Error::Corrupt(format!("principal item: {e}")))
}

/// The audit item of an entry; `retention_days` > 0 sets its TTL attribute.
pub fn audit_item(entry: &AuditEntry, retention_days: u32) -> Result<Item> {
    let mut item: Item =
        serde_dynamo::to_item(entry).map_err(|e| Error::Corrupt(format!("serialize: {e}")))?;
    item.insert(
        "serial".into(),
        s(entry.serial.clone().unwrap_or_else(|| "-".into())),
    );
    let suffix = match &entry.dedupe {
        Some(key) => key.clone(),
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    item.insert("sk".into(), s(format!("{}#{}", entry.at, suffix)));
    item.insert("reason".into(), s(entry.reason.as_str()));
    item.insert("outcome".into(), s(entry.outcome.as_str()));
    if retention_days > 0 {
        let expires =
            time::OffsetDateTime::now_utc().unix_timestamp() + i64::from(retention_days) * 86_400;
        item.insert("expires_at".into(), AttributeValue::N(expires.to_string()));
    }
    Ok(item)
}

/// The entry an audit item holds.
pub fn audit_entry(mut item: Item) -> Result<AuditEntry> {
    item.remove("sk");
    item.remove("expires_at");
    if item.get("serial") == Some(&s("-")) {
        item.remove("serial");
    }
    serde_dynamo::from_item(item).map_err(|e| Error::Corrupt(format!("audit item: {e}")))
}

/// A table's name, hash and range keys, and its global secondary indexes (name, hash, range).
pub type TableSpec<'a> = (
    &'a str,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str, &'static str)>,
);

/// Every table and index (what `create_tables` creates and the template must declare).
pub fn table_specs(tables: &Tables) -> Vec<TableSpec<'_>> {
    vec![
        (
            &tables.registry,
            "pk",
            "sk",
            vec![
                // Sparse: only devices whose certificate expiry fleetguard knows (the expiry watch).
                ("by_expiry", "expiry_month", "certificate_not_after"),
                // Sparse: only devices with a rotation deadline pending (the rotation sweep).
                ("by_deadline", "deadline_kind", "deadline"),
            ],
        ),
        (
            &tables.audit,
            "serial",
            "sk",
            vec![("by_principal", "principal", "sk")],
        ),
        (&tables.records, "serial", "record_id", vec![]),
    ]
}

/// Creates the three tables if they do not exist (local emulator, LocalStack, tests). On AWS the SAM
/// template creates them with backups, encryption and deletion protection.
pub async fn create_tables(client: &Client, tables: &Tables) -> Result<()> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))
    };
    let gsi = |name: &str, hash: &str, range: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(hash, KeyType::Hash)?)
            .key_schema(key(range, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))
    };
    for (name, hash, range, indexes) in table_specs(tables) {
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(hash, KeyType::Hash)?)
            .key_schema(key(range, KeyType::Range)?)
            .attribute_definitions(attr(hash)?)
            .attribute_definitions(attr(range)?);
        let mut defined = vec![hash, range];
        for (index, ihash, irange) in indexes {
            for a in [ihash, irange] {
                if !defined.contains(&a) {
                    defined.push(a);
                    req = req.attribute_definitions(attr(a)?);
                }
            }
            req = req.global_secondary_indexes(gsi(index, ihash, irange)?);
        }
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_in_use_exception()) => {}
            Err(e) => return Err(crate::aws_error("dynamodb:CreateTable", e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetguard_domain::authorization::authorizer::OperatorStatus;

    /// The operator item as it was written by hand before fleetctl wrote whole identities: no
    /// `principal_id`, serials as a list, and a status the code does not know, which fails closed.
    #[test]
    fn a_legacy_operator_item_decodes_and_an_unknown_status_is_not_active() {
        let l = |v: &[&str]| AttributeValue::L(v.iter().map(|x| s(*x)).collect());
        let mut item = principal_key(&format!("op{}", "ab".repeat(20)));
        item.insert("kind".into(), s("operator"));
        item.insert("operator_id".into(), s("alice"));
        item.insert("status".into(), s("suspended-by-hand"));
        item.insert("serials".into(), l(&["SN1", "SN2"]));
        match decode_principal(item.clone()).expect("decodes") {
            AuthorizerPrincipal::Operator {
                name,
                active,
                status,
                serials,
            } => {
                assert_eq!(
                    (name.as_str(), active, status),
                    ("alice", false, OperatorStatus::Disabled)
                );
                assert_eq!(serials.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        item.insert("status".into(), s("active"));
        item.remove("operator_id");
        item.remove("serials");
        assert!(matches!(
            decode_principal(item).expect("decodes"),
            AuthorizerPrincipal::Operator { active: true, ref serials, ref name, .. }
                if serials.is_empty() && name.is_empty()
        ));
    }
}
