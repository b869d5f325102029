//! The request being authorized and the connection it arrives on.

use super::arn::{self, ResourceType};
use super::error::PolicyError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What is being authorized: an action on a full resource ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// e.g. `iot:Publish` (any string; matched case-insensitively).
    pub action: String,
    /// Full ARN, e.g. `arn:aws:iot:us-east-1:123456789012:topic/P/SN1/x`.
    pub resource: String,
}

impl Request {
    /// A request on a full resource ARN.
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Request {
        Request {
            action: action.into(),
            resource: resource.into(),
        }
    }

    /// A request whose resource is given bare (client id, topic, topic filter or thing name,
    /// according to the action) and turned into the ARN with the context's region and account
    /// (and the region's partition).
    pub fn for_target(
        action: &str,
        target: &str,
        ctx: &ConnectionContext,
    ) -> Result<Request, PolicyError> {
        let resource = arn::arn_for_action(action, &ctx.region, &ctx.account, target)?;
        Ok(Request::new(action, resource))
    }

    /// Like [`Request::for_target`] but accepts either a full ARN (anything starting `arn:`) or a
    /// bare name.
    pub fn from_arn_or_target(
        action: &str,
        resource_or_target: &str,
        ctx: &ConnectionContext,
    ) -> Result<Request, PolicyError> {
        if resource_or_target.starts_with("arn:") {
            Ok(Request::new(action, resource_or_target))
        } else {
            Request::for_target(action, resource_or_target, ctx)
        }
    }

    /// Validates the ARN and that its type fits the action (a Subscribe request on a `topic/`
    /// ARN is itself invalid). Returns the resource type of the request, when known.
    pub fn validate(&self) -> Result<Option<ResourceType>, PolicyError> {
        if self.action.is_empty() {
            return Err(PolicyError::InvalidRequest("empty action".to_owned()));
        }
        let parsed = arn::parse_arn(&self.resource)?;
        if let Some(expected) = arn::resource_type_for_action(&self.action) {
            if parsed.resource_type != Some(expected) {
                return Err(PolicyError::InvalidRequest(format!(
                    "action {} is authorized against {}/ resources, not {:?}",
                    self.action,
                    expected.prefix(),
                    self.resource
                )));
            }
        }
        Ok(parsed.resource_type)
    }
}

/// Who is connecting: everything the policy variables and condition keys can refer to.
///
/// Certificate fields use the long names of cert-policy-variables (`CommonName`,
/// `OrganizationalUnit`, `AlternativeName.DNSName`, ...); the short RDN names `CN`, `O`, `OU`, `C`,
/// `ST`, `L`, `SN`... are accepted too and normalised. Each field holds all its values in
/// certificate order (several `OU`s, for example).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionContext {
    /// MQTT client id exactly as sent (may be `+`, `#`, `*`...).
    pub client_id: Option<String>,
    /// Thing name presented for the connection (the client id for MQTT).
    pub thing_name: Option<String>,
    /// Whether that thing is attached to the connecting principal (AttachThingPrincipal). Thing
    /// policy variables resolve only when this is true.
    pub thing_attached: bool,
    /// Thing type of the thing, if any.
    pub thing_type_name: Option<String>,
    /// Thing attributes.
    pub thing_attributes: BTreeMap<String, String>,
    /// Certificate subject fields (multi-valued).
    pub cert_subject: BTreeMap<String, Vec<String>>,
    /// Certificate issuer fields (multi-valued).
    pub cert_issuer: BTreeMap<String, Vec<String>>,
    /// Certificate serial number (`iot:Certificate.SerialNumber`), in decimal as AWS gives it.
    pub cert_serial_number: Option<String>,
    /// Certificate id of an X.509 connection (`iot:CertificateId`): 64 lowercase hex, SHA-256 of
    /// the certificate's DER. `None` for a custom-authorizer connection, which has no certificate
    /// (the variable then does not resolve).
    pub certificate_id: Option<String>,
    /// Domain name the client connected to (`iot:DomainName`), e.g. the account's
    /// `iot:Data-ATS` endpoint or a configured custom domain.
    pub domain_name: Option<String>,
    /// Source IP (`aws:SourceIp`).
    pub source_ip: Option<IpAddr>,
    /// Custom-authorizer principal id. Informational: no documented policy variable or condition
    /// key exposes it; it is reported in explanations.
    pub principal_id: Option<String>,
    /// Region used to build ARNs from bare names.
    pub region: String,
    /// Account used to build ARNs from bare names.
    pub account: String,
    /// Any further condition keys (e.g. `iot:ConnectAttributes`, `iot:LastWillTopic`), by exact
    /// key name, each multi-valued.
    pub extra_keys: BTreeMap<String, Vec<String>>,
}

/// The certificate attribute names of cert-policy-variables.
pub(crate) const CERT_FIELDS: &[&str] = &[
    "DistinguishedNameQualifier",
    "Country",
    "Organization",
    "OrganizationalUnit",
    "State",
    "CommonName",
    "SerialNumber",
    "Title",
    "Surname",
    "GivenName",
    "Initials",
    "Pseudonym",
    "GenerationQualifier",
    "AlternativeName.RFC822Name",
    "AlternativeName.DNSName",
    "AlternativeName.DirectoryName",
    "AlternativeName.UniformResourceIdentifier",
    "AlternativeName.IPAddress",
];

const SHORT_NAMES: &[(&str, &str)] = &[
    ("CN", "CommonName"),
    ("O", "Organization"),
    ("OU", "OrganizationalUnit"),
    ("C", "Country"),
    ("ST", "State"),
    ("S", "State"),
    ("SN", "Surname"),
    ("GN", "GivenName"),
    ("dnQualifier", "DistinguishedNameQualifier"),
    ("serialNumber", "SerialNumber"),
    ("title", "Title"),
    ("initials", "Initials"),
    ("pseudonym", "Pseudonym"),
    ("generationQualifier", "GenerationQualifier"),
];

/// The canonical (cert-policy-variables) spelling of a certificate field name, accepting the
/// canonical names case-insensitively and the common short RDN names case-sensitively.
pub fn canonical_cert_field(name: &str) -> Option<&'static str> {
    if let Some((_, long)) = SHORT_NAMES.iter().find(|(s, _)| *s == name) {
        return Some(long);
    }
    CERT_FIELDS
        .iter()
        .copied()
        .find(|f| f.eq_ignore_ascii_case(name))
}

impl ConnectionContext {
    /// A context for a device whose client id and thing name are both `id`.
    pub fn device(id: &str, attached: bool) -> ConnectionContext {
        ConnectionContext {
            client_id: Some(id.to_owned()),
            thing_name: Some(id.to_owned()),
            thing_attached: attached,
            ..ConnectionContext::default()
        }
    }

    /// Sets region and account (builder style).
    pub fn in_account(mut self, region: &str, account: &str) -> ConnectionContext {
        self.region = region.to_owned();
        self.account = account.to_owned();
        self
    }

    /// Adds a subject field value (builder style).
    pub fn with_subject(mut self, field: &str, value: &str) -> ConnectionContext {
        self.cert_subject
            .entry(field.to_owned())
            .or_default()
            .push(value.to_owned());
        self
    }

    /// Adds an issuer field value (builder style).
    pub fn with_issuer(mut self, field: &str, value: &str) -> ConnectionContext {
        self.cert_issuer
            .entry(field.to_owned())
            .or_default()
            .push(value.to_owned());
        self
    }

    /// Sets the certificate id of an X.509 connection (builder style).
    pub fn with_certificate_id(mut self, id: &str) -> ConnectionContext {
        self.certificate_id = Some(id.to_owned());
        self
    }

    /// Values of a certificate field (subject when `subject`, else issuer), looked up by
    /// canonical name. Unknown field names in the context are reported as an error by
    /// [`ConnectionContext::validate`].
    pub(crate) fn cert_values(&self, subject: bool, canonical: &str) -> Option<Vec<&str>> {
        let map = if subject {
            &self.cert_subject
        } else {
            &self.cert_issuer
        };
        let mut out: Vec<&str> = Vec::new();
        let mut found = false;
        for (k, vs) in map {
            if canonical_cert_field(k) == Some(canonical) {
                found = true;
                out.extend(vs.iter().map(String::as_str));
            }
        }
        found.then_some(out)
    }

    /// Checks the context for names this evaluator would silently ignore, and that a certificate
    /// id is one AWS could give (64 lowercase hex).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if let Some(id) = &self.certificate_id {
            if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(PolicyError::InvalidRequest(format!(
                    "certificate id must be 64 lowercase hex, not {id:?}"
                )));
            }
        }
        for (which, map) in [
            ("subject", &self.cert_subject),
            ("issuer", &self.cert_issuer),
        ] {
            for k in map.keys() {
                if canonical_cert_field(k).is_none() {
                    return Err(PolicyError::InvalidRequest(format!(
                        "unknown certificate {which} field {k:?}"
                    )));
                }
            }
        }
        Ok(())
    }
}
