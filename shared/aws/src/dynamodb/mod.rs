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

/// A new binding starts without the previous one's rotation state (`Device::clear_rotation_state`).
pub(crate) const ROTATION_STATE: &str =
    "rotation, previous_certificate_id, live_session, retire_at, deadline, deadline_kind";

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

/// The DynamoDB client for an SDK configuration (built once per cold start).
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    Client::new(sdk)
}
