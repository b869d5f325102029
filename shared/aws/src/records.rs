//! The records table over DynamoDB ([`Records`]): soft delete and restore, each in one transaction with
//! its registry entitlement check and its audit entry.

use crate::aws_error;
use crate::dynamodb::{batch_get, transact_reasons, transact_reasons_with_token, DynamoAudit};
use crate::schema::{
    decode_principal, device_key, from_item, principal_item_key, principal_key, record_key, s,
    to_item, Item,
};

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use fleetguard_domain::model::{CertificateRecord, Principal, Record, RecordId, Serial, Timestamp};
use fleetguard_domain::ports::{
    restore_one_by_one, DeleteContext, Entitlement, PrincipalFacts, Records, RestoreResult,
    SoftDelete, SoftDeleteResult,
};
use fleetguard_domain::{Error, Result};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct DynamoRecords {
    client: Client,
    records_table: String,
    registry_table: String,
    audit: DynamoAudit,
}

impl DynamoRecords {
    pub fn new(
        client: Client,
        records_table: impl Into<String>,
        registry_table: impl Into<String>,
        audit: DynamoAudit,
    ) -> Self {
        Self {
            client,
            records_table: records_table.into(),
            registry_table: registry_table.into(),
            audit,
        }
    }

    fn audit_put(&self, entry: &fleetguard_domain::model::AuditEntry) -> Result<TransactWriteItem> {
        self.audit.transact_put(entry)
    }

    fn entitlement_check(&self, entitlement: &Entitlement) -> Result<TransactWriteItem> {
        let b = ConditionCheck::builder()
            .table_name(&self.registry_table)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"));
        let b = match entitlement {
            Entitlement::Certificate {
                serial,
                certificate,
            } => b
                .set_key(Some(device_key(serial)))
                .condition_expression("#status = :active AND certificate_id = :cert")
                .expression_attribute_values(":cert", s(certificate.as_str())),
            // A device that has a certificate acts with it, never with a password.
            Entitlement::PasswordDevice { serial } => b
                .set_key(Some(device_key(serial)))
                .condition_expression("#status = :active AND attribute_not_exists(certificate_id)"),
            Entitlement::Operator {
                principal_id,
                serial,
            } => b
                .set_key(Some(principal_key(principal_id.as_str())))
                .condition_expression("#status = :active AND contains(serials, :serial)")
                .expression_attribute_values(":serial", s(serial.as_str())),
        };
        let check = b.build().map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn version_condition(expected: u64) -> &'static str {
        if expected == 0 {
            "(attribute_not_exists(version) OR version = :v)"
        } else {
            "version = :v"
        }
    }
}

impl Records for DynamoRecords {
    async fn get(&self, serial: &Serial, record_id: &RecordId) -> Result<Option<Record>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.records_table)
            .set_key(Some(record_key(serial, record_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb:GetItem(record)", e))?;
        out.item.map(from_item).transpose()
    }

    async fn put(&self, record: &Record) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.records_table)
            .set_item(Some(to_item(record, HashMap::new())?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("dynamodb:PutItem(record)", e))
    }

    async fn load_for_delete(
        &self,
        principal: &Principal,
        serial: &Serial,
        record_id: &RecordId,
    ) -> Result<DeleteContext> {
        let mut found = batch_get(
            &self.client,
            vec![
                (
                    self.registry_table.as_str(),
                    vec![principal_item_key(principal), device_key(serial)],
                ),
                (
                    self.records_table.as_str(),
                    vec![record_key(serial, record_id)],
                ),
            ],
            "dynamodb:BatchGetItem(delete)",
        )
        .await?;
        // The registry's two items, told apart by their key: the principal's and the device's.
        let (devices, principals): (Vec<Item>, Vec<Item>) = found
            .remove(&self.registry_table)
            .unwrap_or_default()
            .into_iter()
            .partition(|item| {
                item.get("pk")
                    .and_then(|pk| pk.as_s().ok())
                    .is_some_and(|pk| pk.starts_with("DEVICE#"))
            });
        let principal_item = principals.into_iter().next();
        let replaced_certificate = match devices.into_iter().next() {
            Some(item) => {
                from_item::<fleetguard_domain::model::Device>(item)?.previous_certificate_id
            }
            None => None,
        };
        let record_item = found.remove(&self.records_table).and_then(|mut v| v.pop());
        let principal = match (principal, principal_item) {
            (_, None) => None,
            (Principal::Certificate(_), Some(item)) => Some(PrincipalFacts::Certificate(
                from_item::<CertificateRecord>(item)?,
            )),
            (Principal::Authorizer(_), Some(item)) => {
                Some(PrincipalFacts::Authorizer(decode_principal(item)?))
            }
        };
        Ok(DeleteContext {
            principal,
            record: record_item.map(from_item).transpose()?,
            replaced_certificate,
        })
    }

    async fn soft_delete(
        &self,
        request: &SoftDelete,
        expected_version: u64,
        entitlement: &Entitlement,
        audit: &fleetguard_domain::model::AuditEntry,
    ) -> Result<SoftDeleteResult> {
        let version = expected_version + 1;
        let mut set = vec![
            "deleted_at = :at",
            "deleted_by = :by",
            "delete_request = :key",
            "version = :nv",
        ];
        let mut remove = vec!["restored_at", "restored_by"];
        if request.reason.is_some() {
            set.push("delete_reason = :reason");
        } else {
            remove.push("delete_reason");
        }
        let mut update = Update::builder()
            .table_name(&self.records_table)
            .set_key(Some(record_key(&request.serial, &request.record_id)))
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .condition_expression(format!(
                "attribute_exists(record_id) AND attribute_not_exists(deleted_at) AND {}",
                Self::version_condition(expected_version)
            ))
            .expression_attribute_values(":at", s(&request.at))
            .expression_attribute_values(":by", s(&request.principal))
            .expression_attribute_values(":key", s(&request.request_key))
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .expression_attribute_values(":nv", AttributeValue::N(version.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None);
        if let Some(reason) = &request.reason {
            update = update.expression_attribute_values(":reason", s(reason));
        }
        let update = update.build().map_err(|e| Error::Corrupt(e.to_string()))?;
        let items = vec![
            self.entitlement_check(entitlement)?,
            TransactWriteItem::builder().update(update).build(),
            self.audit_put(audit)?,
        ];
        match transact_reasons(&self.client, items, "dynamodb:TransactWriteItems(delete)").await? {
            None => Ok(SoftDeleteResult::Deleted { version }),
            Some(failed) if failed.first() == Some(&true) => Ok(SoftDeleteResult::NotEntitled),
            Some(_) => Ok(SoftDeleteResult::Changed),
        }
    }

    async fn deleted_by(
        &self,
        serial: &Serial,
        principal: &Principal,
        since: &Timestamp,
    ) -> Result<Vec<Record>> {
        let (principal, since) = (principal.as_str(), since.as_str());
        // The serial's partition, read consistently (an index of the audit log is only eventually
        // consistent on AWS); the filter keeps the deletes by this principal in the window.
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.records_table)
                .consistent_read(true)
                .key_condition_expression("serial = :serial")
                .filter_expression("deleted_by = :p AND deleted_at >= :since")
                .expression_attribute_values(":serial", s(serial.as_str()))
                .expression_attribute_values(":p", s(principal))
                .expression_attribute_values(":since", s(since))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| aws_error("dynamodb:Query(deleted_by)", e))?;
            for item in out.items.unwrap_or_default() {
                found.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }

    async fn restore_deleted_by(
        &self,
        batch: &[(Record, fleetguard_domain::model::AuditEntry)],
        actor: &str,
        principal: &Principal,
    ) -> Result<usize> {
        let principal_id = principal;
        let principal = principal.as_str();
        // 50 restores per transaction (an update and its audit entry each: DynamoDB's limit is 100
        // items). Each update holds only if the record is still deleted by this principal at the
        // version read, so a concurrent restore or delete cancels the chunk, which is then done one
        // record at a time.
        let mut restored = 0;
        for chunk in batch.chunks(50) {
            let mut items = Vec::with_capacity(chunk.len() * 2);
            for (record, entry) in chunk {
                let update = Update::builder()
                    .table_name(&self.records_table)
                    .set_key(Some(record_key(&record.serial, &record.record_id)))
                    .update_expression(
                        "SET version = :nv, restored_at = :at, restored_by = :by \
                         REMOVE deleted_at, deleted_by, delete_reason, delete_request",
                    )
                    .condition_expression(
                        "attribute_exists(deleted_at) AND deleted_by = :p AND version = :v",
                    )
                    .expression_attribute_values(":p", s(principal))
                    .expression_attribute_values(
                        ":v",
                        AttributeValue::N(record.version.to_string()),
                    )
                    .expression_attribute_values(
                        ":nv",
                        AttributeValue::N((record.version + 1).to_string()),
                    )
                    .expression_attribute_values(":at", s(&entry.at))
                    .expression_attribute_values(":by", s(actor))
                    .build()
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                items.push(TransactWriteItem::builder().update(update).build());
                items.push(self.audit_put(entry)?);
            }
            // One token per attempt: the SDK's own retries of this request carry it, so a retry of a
            // batch that did commit is recognised rather than cancelled and miscounted; our replays and
            // the one-by-one fallback are new requests with new tokens.
            let token = uuid::Uuid::new_v4().simple().to_string();
            match transact_reasons_with_token(
                &self.client,
                items,
                Some(token),
                "dynamodb:TransactWriteItems(restore batch)",
            )
            .await?
            {
                None => restored += chunk.len(),
                Some(_) => {
                    restored += restore_one_by_one(self, chunk, actor, principal_id).await?;
                }
            }
        }
        Ok(restored)
    }

    async fn restore(
        &self,
        serial: &Serial,
        record_id: &RecordId,
        actor: &str,
        only_if_deleted_by: Option<&Principal>,
        audit: &fleetguard_domain::model::AuditEntry,
    ) -> Result<RestoreResult> {
        let only_if_deleted_by = only_if_deleted_by.map(Principal::as_str);
        // A concurrent writer makes the conditional write fail: read again, a few times.
        for _ in 0..3 {
            let Some(record) = self.get(serial, record_id).await? else {
                return Ok(RestoreResult::NotFound);
            };
            let deleted_by_match =
                only_if_deleted_by.is_none_or(|p| record.deleted_by.as_deref() == Some(p));
            if !record.is_deleted() || !deleted_by_match {
                return Ok(RestoreResult::NotDeleted {
                    version: record.version,
                });
            }
            let version = record.version + 1;
            let update = Update::builder()
                .table_name(&self.records_table)
                .set_key(Some(record_key(serial, record_id)))
                .update_expression(
                    "SET version = :nv, restored_at = :at, restored_by = :by \
                     REMOVE deleted_at, deleted_by, delete_reason, delete_request",
                )
                .condition_expression("attribute_exists(deleted_at) AND version = :v")
                .expression_attribute_values(":v", AttributeValue::N(record.version.to_string()))
                .expression_attribute_values(":nv", AttributeValue::N(version.to_string()))
                .expression_attribute_values(":at", s(&audit.at))
                .expression_attribute_values(":by", s(actor))
                .build()
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let items = vec![
                TransactWriteItem::builder().update(update).build(),
                self.audit_put(audit)?,
            ];
            if transact_reasons(&self.client, items, "dynamodb:TransactWriteItems(restore)")
                .await?
                .is_none()
            {
                return Ok(RestoreResult::Restored { version });
            }
        }
        Err(Error::aws(
            "dynamodb:TransactWriteItems(restore)",
            fleetguard_domain::error::AwsErrorKind::ConditionFailed,
            "record kept changing during restore",
        ))
    }
}
