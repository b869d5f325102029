//! The device registry over DynamoDB: allow-list, bindings, deny-list, principals.

use super::*;

/// Puts a certificate on the deny-list; the serial is kept if the record has one.
const DENY: &str = "SET denied = :true, updated_at = :now, certificate_id = :cert, \
                    serial = if_not_exists(serial, :serial)";

/// The device registry over DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
}

impl DynamoRegistry {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, key: Item, op: &'static str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            // Authorization decisions read the latest state (a revocation must be seen at once).
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error(op, e))?;
        Ok(out.item)
    }
}

impl DynamoRegistry {
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The certificate → serial record of a binding: new, or already this serial's and not denied.
    pub(crate) fn put_binding(
        &self,
        serial: &Serial,
        cert: &CertificateId,
        now: &Timestamp,
    ) -> Result<TransactWriteItem> {
        let record = CertificateRecord {
            certificate_id: cert.clone(),
            serial: serial.clone(),
            denied: false,
            held: false,
            updated_at: now.clone(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record, cert_key(cert))?))
            .condition_expression(
                "attribute_not_exists(pk) OR (serial = :serial AND denied = :false)",
            )
            .expression_attribute_values(":serial", s(serial.as_str()))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Denies a certificate inside a transaction (monotonic, unconditional).
    pub(crate) fn deny_item(
        &self,
        cert: &CertificateId,
        serial: &Serial,
        now: &Timestamp,
    ) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(cert_key(cert)))
            .update_expression(DENY)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":cert", s(cert.as_str()))
            .expression_attribute_values(":serial", s(serial.as_str()))
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A password device's identity item carries its status so the authorizer decides with one read;
    /// keep it in step with the device. One transaction checks that the device *still* has this status
    /// and no certificate: of two racing transitions (quarantine, release) only the one matching the
    /// device's final status lands, and a device that got a certificate never gets a usable password.
    /// No-op when the device has no password identity.
    async fn mirror_to_password_identity(&self, serial: &Serial, to: DeviceStatus) -> Result<()> {
        let pid = fleetguard_domain::authorization::authorizer::device_principal(serial);
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(device_key(serial)))
            .condition_expression("#status = :to AND attribute_not_exists(certificate_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(principal_key(pid.as_str())))
            .update_expression("SET #status = :to")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        // A failed condition: no identity, or the device moved on / has a certificate: nothing to do.
        transact_reasons(
            &self.client,
            items,
            "dynamodb:TransactWriteItems(identity status)",
        )
        .await
        .map(|_| ())
    }

    /// Removes the serial's password identity, in the transaction that binds a certificate: a device
    /// signs in with its certificate from then on, never also with a password.
    pub(crate) fn drop_password_identity(&self, serial: &Serial) -> Result<TransactWriteItem> {
        let pid = fleetguard_domain::authorization::authorizer::device_principal(serial);
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(principal_key(pid.as_str())))
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

impl Registry for DynamoRegistry {
    async fn get_device(&self, serial: &Serial) -> Result<Option<Device>> {
        self.get(device_key(serial), "dynamodb:GetItem(device)")
            .await?
            .map(from_item)
            .transpose()
    }

    async fn get_certificate(&self, id: &CertificateId) -> Result<Option<CertificateRecord>> {
        self.get(cert_key(id), "dynamodb:GetItem(certificate)")
            .await?
            .map(from_item)
            .transpose()
    }

    async fn import_device(&self, device: &Device) -> Result<bool> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(device, device_key(&device.serial))?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match aws_error("dynamodb:PutItem(device)", e) {
                e if e.is_condition_failed() => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn bind_certificate(
        &self,
        serial: &Serial,
        cert: &CertificateId,
        replaces: Option<&CertificateId>,
        facts: Option<&fleetguard_domain::model::CertificateFacts>,
    ) -> Result<()> {
        let now = Timestamp::now();
        const SET: &str = "SET #status = :active, certificate_id = :cert, \
                           replacement_approved = :false, updated_at = :now";
        // The certificate's expiry and key when read, else none: never the previous certificate's.
        let expression = match facts {
            Some(_) => format!(
                "{SET}, certificate_not_after = :na, expiry_month = :em, \
                 certificate_key_sha256 = :key REMOVE binding_pending, {ROTATION_STATE} \
                 ADD version :one"
            ),
            None => format!(
                "{SET} REMOVE binding_pending, certificate_not_after, expiry_month, \
                 certificate_key_sha256, {ROTATION_STATE} ADD version :one"
            ),
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(device_key(serial)))
            .update_expression(expression)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":manufactured", s("manufactured"))
            .expression_attribute_values(":cert", s(cert.as_str()))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        if let Some(f) = facts {
            update = update
                .expression_attribute_values(":na", s(&f.not_after))
                .expression_attribute_values(
                    ":em",
                    s(f.not_after.as_str().chars().take(7).collect::<String>()),
                )
                .expression_attribute_values(":key", s(&f.key_sha256));
        }
        // Bindable: manufactured, already this certificate's, an active password device (no
        // certificate yet: the transaction also drops its password identity), or an approved
        // replacement.
        let mut condition = "attribute_exists(pk) AND (#status = :manufactured \
             OR (#status = :active AND certificate_id = :cert) \
             OR (#status = :active AND attribute_not_exists(certificate_id)) \
             OR replacement_approved = :true"
            .to_owned();
        if let Some(stale) = replaces {
            condition.push_str(
                " OR (#status = :active AND certificate_id = :stale AND binding_pending = :true)",
            );
            update = update.expression_attribute_values(":stale", s(stale.as_str()));
        }
        condition.push(')');
        let update = update
            .condition_expression(condition)
            .build()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut items = vec![
            self.put_binding(serial, cert, &now)?,
            TransactWriteItem::builder().update(update).build(),
            self.drop_password_identity(serial)?,
        ];
        if let Some(stale) = replaces {
            items.push(self.deny_item(stale, serial, &now)?);
        }
        match transact_reasons(&self.client, items, "dynamodb:TransactWriteItems(bind)").await? {
            None => Ok(()),
            Some(_) => Err(Error::aws(
                "dynamodb:TransactWriteItems(bind)",
                AwsErrorKind::ConditionFailed,
                "device or certificate binding condition failed",
            )),
        }
    }

    async fn confirm_binding(&self, serial: &Serial, cert: &CertificateId) -> Result<()> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(device_key(serial)))
            // Bumps the version like every device write: rotation writes the item whole, conditional
            // on the version it read, and must not put a confirmed binding back to pending.
            .update_expression("REMOVE binding_pending ADD version :one")
            .condition_expression("certificate_id = :cert AND binding_pending = :true")
            .expression_attribute_values(":cert", s(cert.as_str()))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match aws_error("dynamodb:UpdateItem(confirm binding)", e) {
                e if e.is_condition_failed() => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn note_session(
        &self,
        serial: &Serial,
        session: &fleetguard_domain::model::LiveSession,
    ) -> Result<bool> {
        let value: AttributeValue = serde_dynamo::to_attribute_value(session)
            .map_err(|e| Error::Corrupt(format!("serialize: {e}")))?;
        // No version bump: a presence hint must not make rotation's conditional writes lose.
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(device_key(serial)))
            .update_expression("SET live_session = :ls")
            .condition_expression(
                "attribute_exists(previous_certificate_id) AND \
                 (attribute_not_exists(live_session) OR live_session.version <= :v)",
            )
            .expression_attribute_values(":ls", value)
            .expression_attribute_values(":v", AttributeValue::N(session.version.to_string()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match aws_error("dynamodb:UpdateItem(note session)", e) {
                e if e.is_condition_failed() => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn end_session(&self, serial: &Serial, session: &str) -> Result<()> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(device_key(serial)))
            .update_expression("REMOVE live_session")
            .condition_expression("live_session.#session = :s")
            .expression_attribute_names("#session", "session")
            .expression_attribute_values(":s", s(session))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match aws_error("dynamodb:UpdateItem(end session)", e) {
                e if e.is_condition_failed() => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn transition(
        &self,
        serial: &Serial,
        from: &[DeviceStatus],
        to: DeviceStatus,
    ) -> Result<bool> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(device_key(serial)))
            .update_expression("SET #status = :to, updated_at = :now ADD version :one")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", s(fleetguard_domain::model::now_rfc3339()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        let Some((req, any_of)) = status_in(req, from.iter().map(|s| s.as_str())) else {
            return Ok(false);
        };
        match req
            .condition_expression(format!("attribute_exists(pk) AND {any_of}"))
            .send()
            .await
        {
            Ok(_) => {
                self.mirror_to_password_identity(serial, to).await?;
                Ok(true)
            }
            Err(e) => match aws_error("dynamodb:UpdateItem(device status)", e) {
                e if e.is_condition_failed() => {
                    // Already there (a replay after a fault between the two writes): the mirror
                    // must still happen, or a password device would keep connecting.
                    if self
                        .get_device(serial)
                        .await?
                        .is_some_and(|d| d.status == to)
                    {
                        self.mirror_to_password_identity(serial, to).await?;
                    }
                    Ok(false)
                }
                e => Err(e),
            },
        }
    }

    async fn deny_certificate(&self, cert: &CertificateId, serial: &Serial) -> Result<()> {
        // Unconditional: denying is monotonic, and a certificate refused at provisioning (never bound)
        // gets its deny entry too.
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(cert_key(cert)))
            .update_expression(DENY)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(fleetguard_domain::model::now_rfc3339()))
            .expression_attribute_values(":cert", s(cert.as_str()))
            .expression_attribute_values(":serial", s(serial.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("dynamodb:UpdateItem(deny)", e))
    }

    async fn hold_certificate(
        &self,
        cert: &CertificateId,
        serial: &Serial,
        held: bool,
    ) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(cert_key(cert)))
            .update_expression(
                "SET held = :held, updated_at = :now, certificate_id = if_not_exists(certificate_id, :cert), \
                 serial = if_not_exists(serial, :serial)",
            )
            .expression_attribute_values(":held", AttributeValue::Bool(held))
            .expression_attribute_values(":now", s(fleetguard_domain::model::now_rfc3339()))
            .expression_attribute_values(":cert", s(cert.as_str()))
            .expression_attribute_values(":serial", s(serial.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("dynamodb:UpdateItem(hold)", e))
    }

    async fn approve_replacement(&self, serial: &Serial) -> Result<bool> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(device_key(serial)))
            // Every device write bumps the version (see confirm_binding).
            .update_expression(
                "SET replacement_approved = :true, updated_at = :now ADD version :one",
            )
            .condition_expression("#status = :revoked")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":revoked", s("revoked"))
            .expression_attribute_values(":now", s(fleetguard_domain::model::now_rfc3339()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match aws_error("dynamodb:UpdateItem(approve)", e) {
                e if e.is_condition_failed() => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn get_principal(&self, id: &PrincipalId) -> Result<Option<AuthorizerPrincipal>> {
        let id = id.as_str();
        self.get(principal_key(id), "dynamodb:GetItem(principal)")
            .await?
            .map(schema::decode_principal)
            .transpose()
    }

    async fn set_operator_status(
        &self,
        id: &PrincipalId,
        from: &[OperatorStatus],
        to: OperatorStatus,
    ) -> Result<bool> {
        let id = id.as_str();
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(principal_key(id)))
            .update_expression("SET #status = :to")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":operator", s("operator"));
        let Some((req, any_of)) = status_in(req, from.iter().map(|s| s.as_str())) else {
            return Ok(false);
        };
        match req
            .condition_expression(format!("#kind = :operator AND {any_of}"))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match aws_error("dynamodb:UpdateItem(operator status)", e) {
                e if e.is_condition_failed() => Ok(false),
                e => Err(e),
            },
        }
    }
}

/// `(#status = :from0 OR #status = :from1 …)` for a conditional status change, with its values bound;
/// `None` when `from` is empty (nothing can match).
fn status_in<'a>(
    mut req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    from: impl Iterator<Item = &'a str>,
) -> Option<(
    aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    String,
)> {
    let mut alternatives = Vec::new();
    for (i, status) in from.enumerate() {
        alternatives.push(format!("#status = :from{i}"));
        req = req.expression_attribute_values(format!(":from{i}"), s(status));
    }
    (!alternatives.is_empty()).then(|| (req, format!("({})", alternatives.join(" OR "))))
}
