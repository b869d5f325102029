//! The registry as fleet provisioning by claim uses it ([`Enrollments`]), over DynamoDB: one
//! BatchGetItem to decide, one TransactWriteItems to bind (with its audit entry).

use crate::dynamodb::{batch_get, transact_reasons, DynamoAudit, DynamoRegistry, ROTATION_STATE};
use crate::schema::{cert_key, device_key, from_item, s};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use fleetguard_domain::model::{AuditEntry, CertificateId, Serial};
use fleetguard_domain::ports::{
    EnrollmentContext, Enrollments, PendingBinding, ProofSpend, Registry,
};
use fleetguard_domain::{Error, Result};

#[derive(Clone, Debug)]
pub struct DynamoEnrollments {
    registry: DynamoRegistry,
    audit: DynamoAudit,
}

impl DynamoEnrollments {
    pub fn new(registry: DynamoRegistry, audit: DynamoAudit) -> Self {
        Self { registry, audit }
    }
}

impl Enrollments for DynamoEnrollments {
    async fn load(&self, serial: &Serial, cert: &CertificateId) -> Result<EnrollmentContext> {
        let table = self.registry.table();
        let mut found = batch_get(
            self.registry.client(),
            vec![(table, vec![device_key(serial), cert_key(cert)])],
            "dynamodb:BatchGetItem(enrollment)",
        )
        .await?;
        let mut context = EnrollmentContext::default();
        for item in found.remove(table).unwrap_or_default() {
            match item.get("sk") {
                Some(AttributeValue::S(sk)) if sk == "DEVICE" => {
                    context.device = Some(from_item(item)?)
                }
                Some(AttributeValue::S(sk)) if sk == "CERT" => {
                    context.certificate = Some(from_item(item)?)
                }
                _ => return Err(Error::Corrupt("registry item of unknown kind".into())),
            }
        }
        Ok(context)
    }

    async fn bind_pending(&self, b: &PendingBinding, audit: &AuditEntry) -> Result<bool> {
        let now = fleetguard_domain::model::Timestamp::now();
        let mut update = Update::builder()
            .table_name(self.registry.table())
            .set_key(Some(device_key(&b.serial)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":cert", s(b.certificate.as_str()))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":v", AttributeValue::N(b.expected_version.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        // The device is as the decision read it (version), and the proof is still unspent: two
        // requests with one proof cannot both commit.
        let (spend, proof_condition) = match &b.spend {
            ProofSpend::FactoryKey { timestamp } => {
                update = update
                    .expression_attribute_values(":ts", AttributeValue::N(timestamp.to_string()));
                (
                    "enrollment.proof_last_ts = :ts",
                    "(attribute_not_exists(enrollment.proof_last_ts) OR enrollment.proof_last_ts < :ts)",
                )
            }
            ProofSpend::Secret { hash } => {
                update = update.expression_attribute_values(":hash", s(hash));
                let unspent = match &b.replaces {
                    Some(stale) => {
                        update = update.expression_attribute_values(":stale", s(stale.as_str()));
                        "enrollment.secret_sha256 = :hash AND \
                         (attribute_not_exists(enrollment.secret_used_by) \
                         OR enrollment.secret_used_by = :stale)"
                    }
                    None => {
                        "enrollment.secret_sha256 = :hash AND \
                         attribute_not_exists(enrollment.secret_used_by)"
                    }
                };
                ("enrollment.secret_used_by = :cert", unspent)
            }
        };
        let update = update
            .update_expression(format!(
                "SET #status = :active, certificate_id = :cert, binding_pending = :true, \
                 replacement_approved = :false, updated_at = :now, {spend} \
                 REMOVE certificate_key_sha256, certificate_not_after, expiry_month, {ROTATION_STATE} \
                 ADD version :one"
            ))
            .condition_expression(format!(
                "attribute_exists(pk) AND version = :v AND {proof_condition}"
            ))
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut items = vec![
            self.registry.put_binding(&b.serial, &b.certificate, &now)?,
            TransactWriteItem::builder().update(update).build(),
            self.audit.transact_put(audit)?,
            self.registry.drop_password_identity(&b.serial)?,
        ];
        if let Some(stale) = &b.replaces {
            items.push(self.registry.deny_item(stale, &b.serial, &now)?);
        }
        let committed = transact_reasons(
            self.registry.client(),
            items,
            "dynamodb:TransactWriteItems(enrollment)",
        )
        .await?
        .is_none();
        Ok(committed)
    }

    async fn confirm(&self, serial: &Serial, cert: &CertificateId) -> Result<()> {
        self.registry.confirm_binding(serial, cert).await
    }
}
