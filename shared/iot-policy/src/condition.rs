//! Condition keys of the request context and the IAM condition-operator semantics.
//!
//! IAM user guide (condition operators; conditions with multiple context keys or values):
//! * operators AND, keys within an operator AND, values of one key OR (NOR for negated
//!   operators);
//! * a key absent from the request makes a positive operator false and a negated operator
//!   (`StringNotEquals`, `StringNotLike`, `NotIpAddress`, `Arn*Not*`) true; `...IfExists` makes
//!   an absent key true; `Null` tests presence;
//! * `ForAllValues:` is true when every request value matches some policy value (vacuously true
//!   for an absent or empty key); `ForAnyValue:` is true when at least one does (false when
//!   absent). With a negated operator the per-value test is "matches none of the policy values".
//! * Without a qualifier a multi-valued key (e.g. `...Organization.List`) is treated like
//!   `ForAnyValue` for positive operators and as "no value matches" for negated ones.
//!
//! Condition keys (case-insensitive names): `iot:ClientId`, `aws:SourceIp`, `iot:DomainName`,
//! `iot:CertificateId` (absent unless the connection is X.509),
//! `iot:Connection.Thing.ThingName|ThingTypeName|Attributes[x]` (present only when the thing is
//! attached), `iot:Connection.Thing.IsAttached` (always present: `"true"`/`"false"`),
//! `iot:Certificate.Subject|Issuer.<Field>[.N|.List]`, `iot:Certificate.SerialNumber`,
//! `iot:Certificate.AvailableKeys`, and anything in [`ConnectionContext::extra_keys`]. Condition
//! keys carry the raw request values: the "special characters are not substituted" rule of
//! cert-policy-variables applies to `${...}` variables, not to keys. Unknown keys are absent.

use super::cidr::Cidr;
use super::context::{ConnectionContext, CERT_FIELDS};
use super::document::{Condition, Operator, Qualifier};
use super::error::PolicyError;
use super::glob::{self, Tok};
use super::variables::{parse_cert_field, CertSel, CERT_MAX_VALUES};
use std::net::IpAddr;

/// Values of a condition key in the request context; `None` when absent.
pub(crate) fn key_values(key: &str, ctx: &ConnectionContext) -> Option<Vec<String>> {
    let lower = key.to_ascii_lowercase();
    let one = |v: Option<&String>| v.map(|s| vec![s.clone()]);
    let attached_thing = ctx.thing_attached && ctx.thing_name.is_some();
    match lower.as_str() {
        "iot:clientid" => return one(ctx.client_id.as_ref()),
        "aws:sourceip" => return ctx.source_ip.map(|ip| vec![ip.to_string()]),
        "iot:domainname" => return one(ctx.domain_name.as_ref()),
        "iot:certificateid" => return one(ctx.certificate_id.as_ref()),
        "iot:connection.thing.thingname" => {
            return if attached_thing {
                one(ctx.thing_name.as_ref())
            } else {
                None
            }
        }
        "iot:connection.thing.thingtypename" => {
            return if attached_thing {
                one(ctx.thing_type_name.as_ref())
            } else {
                None
            }
        }
        "iot:connection.thing.isattached" => {
            return Some(vec![attached_thing.to_string()]);
        }
        "iot:certificate.serialnumber" => return one(ctx.cert_serial_number.as_ref()),
        "iot:certificate.availablekeys" => return Some(available_keys(ctx)),
        _ => {}
    }
    const ATTR: &str = "iot:connection.thing.attributes[";
    if lower.starts_with(ATTR) && key.ends_with(']') && key.len() > ATTR.len() + 1 {
        let name = &key[ATTR.len()..key.len() - 1];
        return if attached_thing {
            one(ctx.thing_attributes.get(name))
        } else {
            None
        };
    }
    for (prefix, subject) in [
        ("iot:certificate.subject.", true),
        ("iot:certificate.issuer.", false),
    ] {
        if lower.starts_with(prefix) {
            let (field, sel) = parse_cert_field(&key[prefix.len()..])?;
            let values: Vec<&str> = ctx
                .cert_values(subject, field)?
                .into_iter()
                .take(CERT_MAX_VALUES)
                .collect();
            return match sel {
                CertSel::First => values.first().map(|v| vec![(*v).to_owned()]),
                CertSel::Index(n) => values.get(n).map(|v| vec![(*v).to_owned()]),
                CertSel::List => Some(values.iter().map(|v| (*v).to_owned()).collect()),
            };
        }
    }
    ctx.extra_keys
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.clone())
}

/// Names of the certificate variables that have a value (`iot:Certificate.AvailableKeys`).
pub(crate) fn available_keys(ctx: &ConnectionContext) -> Vec<String> {
    let mut out = Vec::new();
    for (which, subject) in [("Subject", true), ("Issuer", false)] {
        for f in CERT_FIELDS {
            if ctx.cert_values(subject, f).is_some_and(|v| !v.is_empty()) {
                out.push(format!("iot:Certificate.{which}.{f}"));
            }
        }
    }
    if ctx.cert_serial_number.is_some() {
        out.push("iot:Certificate.SerialNumber".to_owned());
    }
    out
}

fn lower(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// The positive form of the operator applied to one request value and one policy value.
fn base_match(op: Operator, request: &str, policy: &[Tok]) -> Result<bool, PolicyError> {
    Ok(match op {
        Operator::StringEquals | Operator::StringNotEquals => request == glob::to_text(policy),
        Operator::StringEqualsIgnoreCase | Operator::StringNotEqualsIgnoreCase => {
            lower(request) == lower(&glob::to_text(policy))
        }
        Operator::StringLike
        | Operator::StringNotLike
        | Operator::ArnEquals
        | Operator::ArnLike
        | Operator::ArnNotEquals
        | Operator::ArnNotLike => glob::matches(policy, request, false),
        Operator::Bool => request.eq_ignore_ascii_case(&glob::to_text(policy)),
        Operator::IpAddress | Operator::NotIpAddress => {
            let cidr = Cidr::parse(&glob::to_text(policy))?;
            match request.parse::<IpAddr>() {
                Ok(ip) => cidr.contains(ip),
                Err(_) => false,
            }
        }
        // Handled by the caller.
        Operator::Null => false,
    })
}

/// Evaluates one condition test given its already-substituted policy values.
pub(crate) fn evaluate(
    cond: &Condition,
    policy_values: &[Vec<Tok>],
    ctx: &ConnectionContext,
) -> Result<bool, PolicyError> {
    let request = key_values(&cond.key, ctx);
    if cond.operator == Operator::Null {
        let absent = request.as_ref().is_none_or(|v| v.is_empty());
        return Ok(policy_values.iter().any(|p| {
            let want_absent = glob::to_text(p).eq_ignore_ascii_case("true");
            want_absent == absent
        }));
    }
    let Some(values) = request else {
        return Ok(match (cond.if_exists, cond.qualifier) {
            (true, _) => true,
            (false, Qualifier::ForAllValues) => true,
            (false, Qualifier::ForAnyValue) => false,
            (false, Qualifier::None) => cond.operator.is_negated(),
        });
    };
    // For each request value: does it match any policy value (positive form)?
    let mut hits = Vec::with_capacity(values.len());
    for r in &values {
        let mut hit = false;
        for p in policy_values {
            if base_match(cond.operator, r, p)? {
                hit = true;
                break;
            }
        }
        hits.push(hit);
    }
    let negated = cond.operator.is_negated();
    // Per-value outcome: positive → hit; negated → !hit.
    let ok = |h: &bool| *h != negated;
    Ok(match cond.qualifier {
        Qualifier::ForAllValues => hits.iter().all(ok),
        Qualifier::ForAnyValue => hits.iter().any(ok),
        Qualifier::None => {
            if negated {
                hits.iter().all(ok)
            } else {
                hits.iter().any(ok)
            }
        }
    })
}
