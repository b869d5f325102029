//! Custom-authorizer identities in the registry table ([`IdentityStore`]): items
//! `PRINCIPAL#<principal id>`/`PRINCIPAL`, the serialized [`Identity`] (tagged by `kind`). The
//! delete-record handler reads the same items (decoded by [`crate::schema::decode_principal`]).

use crate::aws_error;
use crate::schema::{cert_key, device_key, from_item, identity_item, principal_key, s};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use fleetguard_domain::authorizer::identity::Lockout;
use fleetguard_domain::authorizer::{Identity, IdentityKind, IdentityStore, PrincipalId};
use fleetguard_domain::Result;

#[derive(Clone, Debug)]
pub struct DynamoIdentityStore {
    client: Client,
    table: String,
}

impl DynamoIdentityStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Sets an identity's `status` (operators: active|disabled). False if it does not exist.
    pub async fn set_status(&self, principal_id: &PrincipalId, status: &str) -> Result<bool> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(principal_key(principal_id.as_str())))
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
}

impl IdentityStore for DynamoIdentityStore {
    async fn get_identity(&self, principal_id: &PrincipalId) -> Result<Option<Identity>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(principal_key(principal_id.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb:GetItem(identity)", e))?;
        out.item.map(from_item).transpose()
    }

    async fn reserve_attempt(
        &self,
        principal_id: &PrincipalId,
        seen: &Lockout,
        next: &Lockout,
    ) -> Result<bool> {
        // Compare-and-set on what the decision read: of concurrent attempts, one wins each slot.
        let mut condition = vec!["attribute_exists(pk)".to_owned()];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(principal_key(principal_id.as_str())))
            .update_expression("SET failed_attempts = :n, next_attempt_at = :next")
            .expression_attribute_values(":n", AttributeValue::N(next.failed_attempts.to_string()))
            .expression_attribute_values(
                ":next",
                s(next.next_attempt_at.as_deref().unwrap_or_default()),
            )
            .expression_attribute_values(
                ":seen_n",
                AttributeValue::N(seen.failed_attempts.to_string()),
            );
        condition.push(if seen.failed_attempts == 0 {
            "(attribute_not_exists(failed_attempts) OR failed_attempts = :seen_n)".to_owned()
        } else {
            "failed_attempts = :seen_n".to_owned()
        });
        match &seen.next_attempt_at {
            Some(at) => {
                condition.push("next_attempt_at = :seen_next".to_owned());
                req = req.expression_attribute_values(":seen_next", s(at));
            }
            None => condition.push("attribute_not_exists(next_attempt_at)".to_owned()),
        }
        match req
            .condition_expression(condition.join(" AND "))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match aws_error("dynamodb:UpdateItem(reserve attempt)", e) {
                e if e.is_condition_failed() => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn put_device_identity(
        &self,
        identity: &Identity,
        device_status: fleetguard_domain::domain::DeviceStatus,
    ) -> Result<bool> {
        let IdentityKind::Device { serial, .. } = &identity.kind else {
            return Err(fleetguard_domain::Error::Config(
                "not a device identity".into(),
            ));
        };
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(device_key(serial)))
            .condition_expression("#status = :seen AND attribute_not_exists(certificate_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", s(device_status.as_str()))
            .build()
            .map_err(|e| fleetguard_domain::Error::Corrupt(e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(identity_item(identity)?))
            .build()
            .map_err(|e| fleetguard_domain::Error::Corrupt(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        Ok(crate::dynamodb::transact_reasons(
            &self.client,
            items,
            "dynamodb:TransactWriteItems(device identity)",
        )
        .await?
        .is_none())
    }

    async fn get_certificate(
        &self,
        id: &fleetguard_domain::domain::CertificateId,
    ) -> Result<Option<fleetguard_domain::domain::CertificateRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(cert_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb:GetItem(certificate)", e))?;
        out.item.map(from_item).transpose()
    }

    async fn put_identity_unless_inactive(&self, identity: &Identity) -> Result<bool> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(identity_item(identity)?))
            .condition_expression("attribute_not_exists(pk) OR #status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match aws_error("dynamodb:PutItem(identity unless inactive)", e) {
                e if e.is_condition_failed() => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn put_identity(&self, identity: &Identity) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(identity_item(identity)?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("dynamodb:PutItem(identity)", e))
    }

    async fn reset_failures(&self, principal_id: &PrincipalId, reserved: &Lockout) -> Result<()> {
        // Only this attempt's own reservation is cleared: a guess reserved meanwhile stays counted.
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(principal_key(principal_id.as_str())))
            .update_expression("SET failed_attempts = :zero REMOVE next_attempt_at")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(
                ":n",
                AttributeValue::N(reserved.failed_attempts.to_string()),
            );
        let condition = match &reserved.next_attempt_at {
            Some(at) => {
                req = req.expression_attribute_values(":next", s(at));
                "failed_attempts = :n AND next_attempt_at = :next"
            }
            None => "failed_attempts = :n AND attribute_not_exists(next_attempt_at)",
        };
        match req.condition_expression(condition).send().await {
            Ok(_) => Ok(()),
            Err(e) => match aws_error("dynamodb:UpdateItem(reset)", e) {
                e if e.is_condition_failed() => Ok(()),
                e => Err(e),
            },
        }
    }
}
