//! The registry as certificate rotation uses it ([`Rotations`]), over DynamoDB: the device item
//! written whole, conditional on its version, in one transaction with the certificate's record and
//! the audit entry; the sparse indexes `by_deadline` (the sweep) and `by_expiry` (the expiry watch).

use crate::dynamodb::{transact_reasons, DynamoAudit, DynamoRegistry};
use crate::schema::{device_key, from_item, s, to_item, Item};
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};
use fleetguard_domain::model::{
    AuditEntry, CertificateRecord, Device, Timestamp, ROTATION_DEADLINE,
};
use fleetguard_domain::ports::Rotations;
use fleetguard_domain::{Error, Result};
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct DynamoRotations {
    registry: DynamoRegistry,
    audit: DynamoAudit,
}

impl DynamoRotations {
    pub fn new(registry: DynamoRegistry, audit: DynamoAudit) -> Self {
        Self { registry, audit }
    }

    /// One page of an index query: its items, its next key and the capacity it used.
    async fn query(
        &self,
        index: &'static str,
        condition: &'static str,
        values: &[(&str, &str)],
        start: Option<Item>,
        limit: Option<i32>,
    ) -> Result<(Vec<Item>, Option<Item>, f64)> {
        let mut q = self
            .registry
            .client()
            .query()
            .table_name(self.registry.table())
            .index_name(index)
            .key_condition_expression(condition)
            .set_exclusive_start_key(start)
            .set_limit(limit)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (name, value) in values {
            q = q.expression_attribute_values(*name, s(*value));
        }
        let out = q
            .send()
            .await
            .map_err(|e| crate::aws_error("dynamodb:Query(rotation index)", e))?;
        let units = out
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .unwrap_or(0.0);
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key, units))
    }
}

/// The calendar months (`YYYY-MM`) from `from` to `to` (RFC 3339), both included.
fn months(from: &str, to: &str) -> Result<Vec<String>> {
    let parse = |t: &str| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::Config(format!("time {t:?}: {e}")))
    };
    let (from, to) = (parse(from)?, parse(to)?);
    let (mut y, mut m) = (from.year(), u8::from(from.month()));
    let mut out = Vec::new();
    while (y, m) <= (to.year(), u8::from(to.month())) {
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    Ok(out)
}

impl Rotations for DynamoRotations {
    async fn save(
        &self,
        device: &Device,
        expected_version: u64,
        certificate: Option<&CertificateRecord>,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let put = Put::builder()
            .table_name(self.registry.table())
            .set_item(Some(to_item(device, device_key(&device.serial))?))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.audit.transact_put(audit)?,
        ];
        let now = fleetguard_domain::model::Timestamp::now();
        match certificate {
            Some(c) if c.denied => items.push(self.registry.deny_item(
                &c.certificate_id,
                &c.serial,
                &now,
            )?),
            Some(c) => items.push(
                self.registry
                    .put_binding(&c.serial, &c.certificate_id, &now)?,
            ),
            None => {}
        }
        Ok(transact_reasons(
            self.registry.client(),
            items,
            "dynamodb:TransactWriteItems(rotation)",
        )
        .await?
        .is_none())
    }

    async fn due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Device>> {
        let now = now.as_str();
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let (items, next, _) = self
                .query(
                    "by_deadline",
                    "deadline_kind = :k AND deadline <= :now",
                    &[(":k", ROTATION_DEADLINE), (":now", now)],
                    start,
                    Some(i32::try_from(limit).unwrap_or(i32::MAX)),
                )
                .await?;
            for item in items {
                found.push(from_item(item)?);
            }
            if next.is_none() || found.len() >= limit {
                found.truncate(limit);
                return Ok(found);
            }
            start = next;
        }
    }

    async fn expiring(&self, from: &Timestamp, to: &Timestamp) -> Result<(Vec<Device>, f64)> {
        let (from, to) = (from.as_str(), to.as_str());
        let mut found = Vec::new();
        let mut units = 0.0;
        for month in months(from, to)? {
            let mut start = None;
            loop {
                let (items, next, used) = self
                    .query(
                        "by_expiry",
                        "expiry_month = :m AND certificate_not_after BETWEEN :from AND :to",
                        &[(":m", &month), (":from", from), (":to", to)],
                        start,
                        None,
                    )
                    .await?;
                units += used;
                for item in items {
                    found.push(from_item(item)?);
                }
                if next.is_none() {
                    break;
                }
                start = next;
            }
        }
        Ok((found, units))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn months_cover_the_window_across_a_year_end() {
        assert_eq!(
            super::months("2026-11-20T00:00:00Z", "2027-02-01T00:00:00Z").unwrap(),
            ["2026-11", "2026-12", "2027-01", "2027-02"]
        );
        assert_eq!(
            super::months("2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z").unwrap(),
            ["2026-12"]
        );
    }
}
