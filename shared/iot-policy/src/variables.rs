//! Policy-variable templates: parsing `${...}` / `$(...)` in resources and condition values, and
//! substituting them from a [`ConnectionContext`].
//!
//! Decisions (iot-policy-variables, basic-policy-variables, thing-policy-variables,
//! cert-policy-variables):
//! * Substitution is textual and single-pass: the substituted value is not scanned for further
//!   variables, but a `*` or `?` inside it **acts as a wildcard**. AWS substitutes text and then
//!   matches, so a client id of `*` turns `client/${iot:ClientId}` into `client/*`; modelling that
//!   widening is the conservative choice. `+` and `#` stay literal, as everywhere in policies.
//! * `$(*)`, `$(?)`, `$($)` (and the IAM spellings `${*}`, `${?}`, `${$}`) are literal `*`, `?`, `$`.
//! * The documented variables, and only those: basic `${iot:ClientId}`, `${aws:SourceIp}`,
//!   `${iot:DomainName}` (resolve from the connection); thing variables
//!   (`${iot:Connection.Thing.ThingName|ThingTypeName|IsAttached|Attributes[x]}`) resolve only
//!   when the thing is attached to the principal and the value exists; certificate variables
//!   `${iot:CertificateId}` (the certificate id, 64 hex, of an X.509 connection; a
//!   custom-authorizer connection has no certificate, so it does not resolve there),
//!   `${iot:Certificate.Subject|Issuer.<F>}` with `<F>` one of the 13 attribute names or
//!   `AlternativeName.RFC822Name|DNSName|DirectoryName|UniformResourceIdentifier|IPAddress`,
//!   `${iot:Certificate.SerialNumber}` (decimal, as AWS gives it) and
//!   `${iot:Certificate.AvailableKeys}` (the names of the certificate variables that have values,
//!   one alternative per name). Anything else in `iot:` (`iot:Certificate.Validity.NotBefore`,
//!   `iot:Certificate.SubjectAlternativeName.DNSName`, `iot:Thing.ThingName`, ...) is not an AWS
//!   IoT policy variable.
//! * Certificate variables other than `AvailableKeys`: a value containing any of `* $ + ? #` or longer than
//!   1,024 characters is not substituted, the literal `${...}` text stays and only matches itself.
//!   Multi-valued fields: the bare name is the first value and `.N` selects by the index the
//!   page's example uses (`Country.1` is "the second country name", i.e. zero-based; older
//!   revisions of cert-policy-variables call the same index "one-based", we follow the example),
//!   only the first five values exist ("Array fields ... limited to five items"), a missing index
//!   does not resolve. `.List` in a resource or condition value expands to one alternative per
//!   value (any may match), again conservative.
//! * Any variable that does not resolve (unknown `iot:` name such as the `${iot:Thing.ThingName}`
//!   of some pub-sub-policy examples, thing not attached, missing attribute, missing cert field)
//!   makes the **whole statement not apply** (recorded as "unresolved" in the decision).
//! * `${aws:...}` other than `aws:SourceIp`, and any other namespace (e.g.
//!   `${cognito-identity.amazonaws.com:sub}`, which belongs in IAM role policies), is a
//!   [`PolicyError::UnsupportedVariable`](super::error::PolicyError::UnsupportedVariable) rather than a silent literal.
//! * With `Version` absent or `2008-10-17` nothing is substituted (IAM semantics): `${...}` is
//!   literal text and only `*`/`?` are wildcards.

use super::condition::available_keys;
use super::context::{canonical_cert_field, ConnectionContext};
use super::glob::{self, Tok};

/// Characters that stop a certificate attribute from being substituted (cert-policy-variables).
pub(crate) const CERT_SPECIAL: &[char] = &['*', '$', '+', '?', '#'];
/// Longest certificate attribute value that is substituted.
pub(crate) const CERT_MAX_LEN: usize = 1024;
/// Certificate array fields are limited to five values.
pub(crate) const CERT_MAX_VALUES: usize = 5;
const MAX_ALTERNATIVES: usize = 256;

/// Which of a multi-valued certificate field's values a variable selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertSel {
    First,
    Index(usize),
    List,
}

/// A recognised policy variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Var {
    ClientId,
    SourceIp,
    DomainName,
    CertificateId,
    CertAvailableKeys,
    ThingName,
    ThingTypeName,
    ThingIsAttached,
    ThingAttribute(String),
    Cert {
        subject: bool,
        field: &'static str,
        sel: CertSel,
    },
    CertSerial,
    /// An `iot:` name AWS does not define: never resolves.
    UnknownIot(String),
}

impl Var {
    pub(crate) fn is_thing(&self) -> bool {
        matches!(
            self,
            Var::ThingName | Var::ThingTypeName | Var::ThingIsAttached | Var::ThingAttribute(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Lit(char),
    Star,
    One,
    Var { var: Var, text: String },
}

/// Why a template could not be parsed (the caller attaches document and path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateError {
    Malformed,
    Unsupported(String),
}

/// A resource or condition-value string with its variables parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    segs: Vec<Seg>,
}

/// Outcome of substituting a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// One compiled pattern per alternative (several only with `.List`).
    Patterns(Vec<Vec<Tok>>),
    /// A variable did not resolve; the reason is for explanations.
    Unresolved(String),
    /// `.List` expansion exceeded the cap.
    TooMany,
}

fn parse_var_name(name: &str) -> Result<Var, TemplateError> {
    let lower = name.to_ascii_lowercase();
    if lower == "aws:sourceip" {
        return Ok(Var::SourceIp);
    }
    if !lower.starts_with("iot:") {
        return Err(TemplateError::Unsupported(name.to_owned()));
    }
    let rest = &name[4..];
    let rest_l = &lower[4..];
    match rest_l {
        "clientid" => return Ok(Var::ClientId),
        "domainname" => return Ok(Var::DomainName),
        "certificateid" => return Ok(Var::CertificateId),
        "certificate.availablekeys" => return Ok(Var::CertAvailableKeys),
        "connection.thing.thingname" => return Ok(Var::ThingName),
        "connection.thing.thingtypename" => return Ok(Var::ThingTypeName),
        "connection.thing.isattached" => return Ok(Var::ThingIsAttached),
        "certificate.serialnumber" => return Ok(Var::CertSerial),
        _ => {}
    }
    const ATTR: &str = "connection.thing.attributes[";
    if rest_l.starts_with(ATTR) && rest.ends_with(']') && rest.len() > ATTR.len() + 1 {
        let attr = &rest[ATTR.len()..rest.len() - 1];
        return Ok(Var::ThingAttribute(attr.to_owned()));
    }
    for (prefix, subject) in [
        ("certificate.subject.", true),
        ("certificate.issuer.", false),
    ] {
        if rest_l.starts_with(prefix) {
            if let Some((field, sel)) = parse_cert_field(&rest[prefix.len()..]) {
                return Ok(Var::Cert {
                    subject,
                    field,
                    sel,
                });
            }
        }
    }
    Ok(Var::UnknownIot(name.to_owned()))
}

/// `CommonName`, `OrganizationalUnit.1`, `Organization.List`, `AlternativeName.DNSName.0`...
pub(crate) fn parse_cert_field(text: &str) -> Option<(&'static str, CertSel)> {
    if let Some(f) = canonical_cert_field(text) {
        return Some((f, CertSel::First));
    }
    let (head, last) = text.rsplit_once('.')?;
    let field = canonical_cert_field(head)?;
    if last.eq_ignore_ascii_case("list") {
        return Some((field, CertSel::List));
    }
    if !last.is_empty() && last.len() <= 6 && last.bytes().all(|b| b.is_ascii_digit()) {
        let n: usize = last.parse().ok()?;
        return Some((field, CertSel::Index(n)));
    }
    None
}

impl Template {
    /// Parses `raw`; with `vars` false (Version absent / 2008-10-17) nothing but `*`/`?` is special.
    pub(crate) fn parse(raw: &str, vars: bool) -> Result<Template, TemplateError> {
        let chars: Vec<char> = raw.chars().collect();
        let mut segs = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' => segs.push(Seg::Star),
                '?' => segs.push(Seg::One),
                '$' if vars && chars.get(i + 1) == Some(&'(') => {
                    // $(*) $(?) $($): three-character escapes; anything else is literal text.
                    match (chars.get(i + 2), chars.get(i + 3)) {
                        (Some(e @ ('*' | '?' | '$')), Some(')')) => {
                            segs.push(Seg::Lit(*e));
                            i += 4;
                            continue;
                        }
                        _ => segs.push(Seg::Lit('$')),
                    }
                }
                '$' if vars && chars.get(i + 1) == Some(&'{') => {
                    let close = chars[i + 2..]
                        .iter()
                        .position(|&c| c == '}')
                        .map(|p| p + i + 2)
                        .ok_or(TemplateError::Malformed)?;
                    let name: String = chars[i + 2..close].iter().collect();
                    let text: String = chars[i..=close].iter().collect();
                    match name.as_str() {
                        "" => return Err(TemplateError::Malformed),
                        "*" | "?" | "$" => {
                            segs.extend(name.chars().map(Seg::Lit));
                        }
                        _ => {
                            if name.contains('{') || name.contains('$') {
                                return Err(TemplateError::Malformed);
                            }
                            let var = parse_var_name(&name)?;
                            segs.push(Seg::Var { var, text });
                        }
                    }
                    i = close + 1;
                    continue;
                }
                other => segs.push(Seg::Lit(other)),
            }
            i += 1;
        }
        Ok(Template {
            raw: raw.to_owned(),
            segs,
        })
    }

    /// The string as written in the policy.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub(crate) fn segs(&self) -> &[Seg] {
        &self.segs
    }

    pub(crate) fn vars(&self) -> impl Iterator<Item = &Var> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Var { var, .. } => Some(var),
            _ => None,
        })
    }

    pub(crate) fn has_vars(&self) -> bool {
        self.vars().next().is_some()
    }

    /// Substitutes variables from `ctx`.
    pub(crate) fn resolve(&self, ctx: &ConnectionContext) -> Resolution {
        let mut alts: Vec<Vec<Tok>> = vec![Vec::with_capacity(self.segs.len())];
        for seg in &self.segs {
            let pieces: Vec<Vec<Tok>> = match seg {
                Seg::Lit(c) => vec![vec![Tok::Lit(*c)]],
                Seg::Star => vec![vec![Tok::Star]],
                Seg::One => vec![vec![Tok::One]],
                Seg::Var { var, text } => match lookup(var, text, ctx) {
                    Ok(p) => p,
                    Err(reason) => return Resolution::Unresolved(reason),
                },
            };
            if pieces.len() == 1 {
                for a in &mut alts {
                    a.extend_from_slice(&pieces[0]);
                }
            } else {
                if alts.len().saturating_mul(pieces.len()) > MAX_ALTERNATIVES {
                    return Resolution::TooMany;
                }
                let mut next = Vec::with_capacity(alts.len() * pieces.len());
                for a in &alts {
                    for p in &pieces {
                        let mut n = a.clone();
                        n.extend_from_slice(p);
                        next.push(n);
                    }
                }
                alts = next;
            }
        }
        Resolution::Patterns(alts)
    }
}

/// Substituted text: wildcards in it act as wildcards (see module docs).
fn substituted(value: &str) -> Vec<Tok> {
    glob::compile(value)
}

fn literal(text: &str) -> Vec<Tok> {
    text.chars().map(Tok::Lit).collect()
}

fn cert_piece(value: &str, text: &str) -> Vec<Tok> {
    if value.contains(CERT_SPECIAL) || value.chars().count() > CERT_MAX_LEN {
        literal(text)
    } else {
        substituted(value)
    }
}

fn lookup(var: &Var, text: &str, ctx: &ConnectionContext) -> Result<Vec<Vec<Tok>>, String> {
    let thing = || -> Result<&str, String> {
        match (&ctx.thing_name, ctx.thing_attached) {
            (Some(name), true) => Ok(name.as_str()),
            (Some(_), false) => Err(format!(
                "{text}: the thing is not attached to the principal"
            )),
            (None, _) => Err(format!("{text}: no thing for this connection")),
        }
    };
    match var {
        Var::ClientId => ctx
            .client_id
            .as_deref()
            .map(|c| vec![substituted(c)])
            .ok_or_else(|| format!("{text}: no client id")),
        Var::SourceIp => ctx
            .source_ip
            .map(|ip| vec![literal(&ip.to_string())])
            .ok_or_else(|| format!("{text}: no source IP")),
        Var::DomainName => ctx
            .domain_name
            .as_deref()
            .map(|d| vec![substituted(d)])
            .ok_or_else(|| format!("{text}: no domain name")),
        Var::CertificateId => ctx
            .certificate_id
            .as_deref()
            .map(|id| vec![cert_piece(id, text)])
            .ok_or_else(|| format!("{text}: no certificate (not an X.509 connection)")),
        Var::CertAvailableKeys => {
            let keys = available_keys(ctx);
            if keys.is_empty() {
                Err(format!("{text}: the certificate has no attribute values"))
            } else {
                Ok(keys.iter().map(|k| literal(k)).collect())
            }
        }
        Var::ThingName => thing().map(|n| vec![substituted(n)]),
        Var::ThingIsAttached => thing().map(|_| vec![literal("true")]),
        Var::ThingTypeName => {
            thing()?;
            ctx.thing_type_name
                .as_deref()
                .map(|t| vec![substituted(t)])
                .ok_or_else(|| format!("{text}: the thing has no type"))
        }
        Var::ThingAttribute(a) => {
            thing()?;
            ctx.thing_attributes
                .get(a)
                .map(|v| vec![substituted(v)])
                .ok_or_else(|| format!("{text}: the thing has no attribute {a:?}"))
        }
        Var::CertSerial => ctx
            .cert_serial_number
            .as_deref()
            .map(|v| vec![cert_piece(v, text)])
            .ok_or_else(|| format!("{text}: no certificate serial number")),
        Var::Cert {
            subject,
            field,
            sel,
        } => {
            let values = ctx
                .cert_values(*subject, field)
                .ok_or_else(|| format!("{text}: the certificate has no such attribute"))?;
            let values: Vec<&str> = values.into_iter().take(CERT_MAX_VALUES).collect();
            let pick = |n: usize| -> Result<Vec<Vec<Tok>>, String> {
                values
                    .get(n)
                    .map(|v| vec![cert_piece(v, text)])
                    .ok_or_else(|| format!("{text}: the attribute has no value at index {n}"))
            };
            match sel {
                CertSel::First => pick(0),
                CertSel::Index(n) => pick(*n),
                CertSel::List => {
                    if values.is_empty() {
                        Err(format!("{text}: the attribute has no values"))
                    } else {
                        Ok(values.iter().map(|v| cert_piece(v, text)).collect())
                    }
                }
            }
        }
        Var::UnknownIot(name) => Err(format!("${{{name}}} is not an AWS IoT policy variable")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(raw: &str, ctx: &ConnectionContext) -> Vec<String> {
        match Template::parse(raw, true).expect("parse").resolve(ctx) {
            Resolution::Patterns(p) => p.iter().map(|t| glob::to_text(t)).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn escapes_and_variables() {
        let ctx = ConnectionContext::device("SN1", true);
        let t = Template::parse("a$(*)b$(?)c$($)d${*}", true).expect("parse");
        assert_eq!(t.segs().len(), 8);
        assert!(t.segs().iter().all(|s| matches!(s, Seg::Lit(_))));
        assert_eq!(pats("x/${iot:ClientId}/y", &ctx), vec!["x/SN1/y"]);
        assert_eq!(pats("$(x)", &ctx), vec!["$(x)"]);
        assert_eq!(pats("cost$", &ctx), vec!["cost$"]);
        assert!(matches!(
            Template::parse("${iot:ClientId", true),
            Err(TemplateError::Malformed)
        ));
        assert!(matches!(
            Template::parse("${}", true),
            Err(TemplateError::Malformed)
        ));
        assert!(matches!(
            Template::parse("${aws:username}", true),
            Err(TemplateError::Unsupported(_))
        ));
        assert!(Template::parse("${aws:username}", false).is_ok());
        let unknown = Template::parse("${iot:Thing.ThingName}", true).expect("parse");
        assert!(matches!(unknown.resolve(&ctx), Resolution::Unresolved(_)));
    }

    #[test]
    fn cert_indexing_follows_the_example() {
        let ctx = ConnectionContext::default()
            .with_subject("OU", "a")
            .with_subject("OU", "b")
            .with_subject("OrganizationalUnit", "c");
        assert_eq!(
            pats("${iot:Certificate.Subject.OrganizationalUnit}", &ctx),
            vec!["a"]
        );
        assert_eq!(
            pats("${iot:Certificate.Subject.OrganizationalUnit.1}", &ctx),
            vec!["b"]
        );
        assert_eq!(
            pats("${iot:Certificate.Subject.OrganizationalUnit.List}", &ctx),
            vec!["a", "b", "c"]
        );
        let t = Template::parse("${iot:Certificate.Subject.OrganizationalUnit.3}", true)
            .expect("parse");
        assert!(matches!(t.resolve(&ctx), Resolution::Unresolved(_)));
    }
}
