//! The audit log over DynamoDB: conditional puts (one entry per idempotency key), reads by serial
//! and by principal.

use super::*;

/// The audit log over DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoAudit {
    client: Client,
    table: String,
    /// Days an entry is kept (DynamoDB TTL); 0 keeps entries forever.
    retention_days: u32,
}

impl DynamoAudit {
    pub fn new(client: Client, table: impl Into<String>, retention_days: u32) -> Self {
        Self {
            client,
            table: table.into(),
            retention_days,
        }
    }

    /// The item for an entry (also used inside other tables' transactions, e.g. delete-record).
    pub fn item(&self, entry: &AuditEntry) -> Result<Item> {
        schema::audit_item(entry, self.retention_days)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The entry as one item of another table's transaction (written once: its key is new).
    pub(crate) fn transact_put(&self, entry: &AuditEntry) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.item(entry)?))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

impl AuditLog for DynamoAudit {
    async fn record(&self, entry: &AuditEntry) -> Result<bool> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(entry)?));
        if entry.dedupe.is_some() {
            // Written once per idempotency key: a replayed message does not duplicate its entry.
            put = put.condition_expression("attribute_not_exists(sk)");
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) => match aws_error("dynamodb:PutItem(audit)", e) {
                e if e.is_condition_failed() => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn for_principal(
        &self,
        principal: &Principal,
        since: &Timestamp,
    ) -> Result<Vec<AuditEntry>> {
        let (principal, since) = (principal.as_str(), since.as_str());
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("by_principal")
                .key_condition_expression("principal = :p AND sk >= :since")
                .expression_attribute_values(":p", s(principal))
                .expression_attribute_values(":since", s(since))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| aws_error("dynamodb:Query(audit by principal)", e))?;
            for item in out.items.unwrap_or_default() {
                entries.push(schema::audit_entry(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(entries)
    }

    async fn find(&self, serial: &str, at: &Timestamp, dedupe: &str) -> Result<Option<AuditEntry>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("serial", s(serial))
            .key("sk", s(format!("{at}#{dedupe}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb:GetItem(audit)", e))?;
        out.item.map(schema::audit_entry).transpose()
    }

    async fn for_serial(&self, serial: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        // Page by page (a query returns at most 1 MB) until `limit` entries.
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let left = limit.saturating_sub(found.len());
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("serial = :s")
                .expression_attribute_values(":s", s(serial))
                .scan_index_forward(false)
                .limit(i32::try_from(left).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| aws_error("dynamodb:Query(audit)", e))?;
            for item in out.items.unwrap_or_default() {
                found.push(schema::audit_entry(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && found.len() < limit => start = Some(k),
                _ => return Ok(found),
            }
        }
    }
}
