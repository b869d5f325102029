//! Custom-authorizer identities in the registry table ([`IdentityStore`]): items
//! `PRINCIPAL#<principal id>`/`PRINCIPAL`, the serialized [`Identity`] (tagged by `kind`). The
//! delete-record handler reads the same items ([`super::records::authorizer_principal`]).

use super::aws_error;
use super::dynamodb::{from_item, s, to_item, Item};
use crate::authorizer::{Identity, IdentityStore, PrincipalId};
use crate::domain::rfc3339;
use crate::{Error, Result};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

#[derive(Clone, Debug)]
pub struct DynamoIdentityStore {
    client: Client,
    table: String,
}

pub(crate) fn principal_item_key(principal_id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("PRINCIPAL#{principal_id}"))),
        ("sk".to_owned(), s("PRINCIPAL")),
    ])
}

impl DynamoIdentityStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates or replaces an identity (fleetctl operators add, devices set-password).
    pub async fn put_identity(&self, identity: &Identity) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(
                identity,
                principal_item_key(identity.principal_id.as_str()),
            )?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("dynamodb:PutItem(identity)", e))
    }

    /// Sets an identity's `status` (operators: active|disabled). False if it does not exist.
    pub async fn set_status(&self, principal_id: &PrincipalId, status: &str) -> Result<bool> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(principal_item_key(principal_id.as_str())))
            .update_expression("SET #status = :s")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":s", s(status))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match aws_error("dynamodb:UpdateItem(identity status)", e) {
                e if e.is_condition_failed() => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn counted_update(
        &self,
        principal_id: &PrincipalId,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<u32>> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(principal_item_key(principal_id.as_str())))
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::UpdatedNew);
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(out) => {
                let count = out
                    .attributes
                    .and_then(|a| a.get("failed_attempts").cloned())
                    .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
                    .ok_or_else(|| Error::Corrupt("failed_attempts missing".into()))?;
                Ok(Some(count))
            }
            Err(e) => match aws_error("dynamodb:UpdateItem(lockout)", e) {
                e if e.is_condition_failed() => Ok(None),
                e => Err(e),
            },
        }
    }
}

impl IdentityStore for DynamoIdentityStore {
    async fn get_identity(&self, principal_id: &PrincipalId) -> Result<Option<Identity>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(principal_item_key(principal_id.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb:GetItem(identity)", e))?;
        out.item.map(from_item).transpose()
    }

    async fn record_failure(
        &self,
        principal_id: &PrincipalId,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<u32> {
        let cutoff = rfc3339(now - window);
        // Two conditional writes, no read: count inside the current window, or start a new one. A
        // concurrent writer makes both conditions fail at most briefly: try again.
        for _ in 0..3 {
            if let Some(n) = self
                .counted_update(
                    principal_id,
                    "ADD failed_attempts :one",
                    "attribute_exists(pk) AND window_started_at > :cutoff",
                    vec![
                        (":one", AttributeValue::N("1".into())),
                        (":cutoff", s(&cutoff)),
                    ],
                )
                .await?
            {
                return Ok(n);
            }
            if let Some(n) = self
                .counted_update(
                    principal_id,
                    "SET failed_attempts = :one, window_started_at = :now",
                    "attribute_exists(pk) AND (attribute_not_exists(window_started_at) \
                     OR window_started_at <= :cutoff)",
                    vec![
                        (":one", AttributeValue::N("1".into())),
                        (":now", s(rfc3339(now))),
                        (":cutoff", s(&cutoff)),
                    ],
                )
                .await?
            {
                return Ok(n);
            }
        }
        Err(Error::aws(
            "dynamodb:UpdateItem(lockout)",
            crate::error::AwsErrorKind::ConditionFailed,
            "no such identity or contended counter",
        ))
    }

    async fn reset_failures(&self, principal_id: &PrincipalId) -> Result<()> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(principal_item_key(principal_id.as_str())))
            .update_expression("SET failed_attempts = :zero REMOVE window_started_at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match aws_error("dynamodb:UpdateItem(reset)", e) {
                e if e.is_condition_failed() => Ok(()),
                e => Err(e),
            },
        }
    }
}
