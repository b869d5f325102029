//! Custom-authorizer identities in the registry table ([`IdentityStore`]): items
//! `PRINCIPAL#<principal id>`/`PRINCIPAL`, the serialized [`Identity`] (tagged by `kind`). The
//! delete-record handler reads the same items (decoded by [`crate::schema::decode_principal`]).

use crate::aws_error;
use crate::schema::{cert_key, device_key, from_item, identity_item, principal_key, s};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use fleetguard_domain::authorization::authorizer::{
    Identity, IdentityKind, IdentityStore, PrincipalId,
};
use fleetguard_domain::model::Timestamp;
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

    async fn count_failure(
        &self,
        principal_id: &PrincipalId,
        now: &Timestamp,
        cutoff: &Timestamp,
    ) -> Result<Option<u32>> {
        // Two conditional updates, no read: add to a count that began after the cutoff, else start
        // one. Losing both means another attempt moved the count meanwhile: try again (bounded).
        for _ in 0..3 {
            let added = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(principal_key(principal_id.as_str())))
                .update_expression("ADD failed_attempts :one")
                .condition_expression("attribute_exists(pk) AND failures_since > :cutoff")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":cutoff", s(cutoff))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
                .send()
                .await;
            match added {
                Ok(out) => return Ok(Some(count_of(out.attributes.as_ref()))),
                Err(e) => match aws_error("dynamodb:UpdateItem(count failure)", e) {
                    e if e.is_condition_failed() => {}
                    e => return Err(e),
                },
            }
            let started = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(principal_key(principal_id.as_str())))
                .update_expression("SET failed_attempts = :one, failures_since = :now")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(failures_since) OR failures_since <= :cutoff)",
                )
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":now", s(now))
                .expression_attribute_values(":cutoff", s(cutoff))
                .send()
                .await;
            match started {
                Ok(_) => return Ok(Some(1)),
                Err(e) => match aws_error("dynamodb:UpdateItem(start failure count)", e) {
                    e if e.is_condition_failed() => {}
                    e => return Err(e),
                },
            }
            if self.get_identity(principal_id).await?.is_none() {
                return Ok(None);
            }
        }
        Err(fleetguard_domain::Error::Corrupt(
            "failure count kept moving".to_owned(),
        ))
    }

    async fn put_device_identity(
        &self,
        identity: &Identity,
        device_status: fleetguard_domain::model::DeviceStatus,
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
        id: &fleetguard_domain::model::CertificateId,
    ) -> Result<Option<fleetguard_domain::model::CertificateRecord>> {
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
}

/// The count an `ADD ... RETURN UPDATED_NEW` left.
fn count_of(attributes: Option<&std::collections::HashMap<String, AttributeValue>>) -> u32 {
    attributes
        .and_then(|a| a.get("failed_attempts"))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}
