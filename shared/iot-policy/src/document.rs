//! Parsing and validating AWS IoT policy documents.
//!
//! Grammar decisions (iot-policies; IAM user guide "IAM JSON policy elements" where IoT defers):
//! * Top level: `Version`, optional `Id`, `Statement` (an object or an array; an empty array is a
//!   document that allows nothing: requests evaluate to an implicit deny, as AWS IoT does). Any other
//!   key is an error ([`PolicyError::UnknownKey`]), as are `Principal`/`NotPrincipal`, which IoT
//!   policies do not have.
//! * `Version`: `"2012-10-17"` enables policy variables. IAM treats an absent `Version` as
//!   `"2008-10-17"`, under which `${...}` is **not** substituted; we model exactly that (the
//!   linter reports `missing_version`). Any other value is [`PolicyError::UnsupportedVersion`].
//! * Statement: `Sid`, `Effect` (`Allow`|`Deny`, exact case), exactly one of `Action`/`NotAction`
//!   and exactly one of `Resource`/`NotResource` (a string or a non-empty array of strings),
//!   optional `Condition`. Element names are case-sensitive as in IAM.
//! * Size: a document over 2,048 characters, counting every non-whitespace character of the text
//!   (inside strings too), is invalid ([`PolicyError::TooLarge`]).
//! * Condition operators are matched case-insensitively against the supported list (see
//!   [`Operator`]); anything else is [`PolicyError::UnknownOperator`]. Values may be strings,
//!   booleans or numbers (converted to their text, as IAM does) or arrays of those.

use super::cidr::Cidr;
use super::error::PolicyError;
use super::glob::{self, Tok};
use super::json::Json;
use super::variables::{Template, TemplateError};
use serde::{Deserialize, Serialize};

/// Maximum document size in non-whitespace characters.
pub const MAX_POLICY_CHARS: usize = 2048;

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    /// Grants when matched (unless some Deny matches).
    Allow,
    /// Denies when matched, overriding every Allow in every document.
    Deny,
}

/// `Action` or `NotAction`, with compiled case-insensitive patterns.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionList {
    /// True for `NotAction`.
    pub negated: bool,
    /// Patterns as written.
    pub items: Vec<String>,
    compiled: Vec<Vec<Tok>>,
}

impl ActionList {
    /// Whether the listed patterns match `action` (ignoring `negated`).
    pub fn lists(&self, action: &str) -> bool {
        self.compiled.iter().any(|p| glob::matches(p, action, true))
    }

    /// Whether the statement covers `action` (taking `NotAction` into account).
    pub fn covers(&self, action: &str) -> bool {
        self.lists(action) != self.negated
    }
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceList {
    /// True for `NotResource`.
    pub negated: bool,
    /// Parsed templates.
    pub items: Vec<Template>,
}

/// Base comparison of a condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Operator {
    /// Case-sensitive equality.
    StringEquals,
    /// Negated `StringEquals`.
    StringNotEquals,
    /// Case-insensitive equality.
    StringEqualsIgnoreCase,
    /// Negated `StringEqualsIgnoreCase`.
    StringNotEqualsIgnoreCase,
    /// Case-sensitive match with `*` / `?`.
    StringLike,
    /// Negated `StringLike`.
    StringNotLike,
    /// `true`/`false`, case-insensitive.
    Bool,
    /// Source address inside one of the CIDR blocks.
    IpAddress,
    /// Negated `IpAddress`.
    NotIpAddress,
    /// ARN match (wildcards allowed, as in IAM).
    ArnEquals,
    /// ARN match (wildcards allowed).
    ArnLike,
    /// Negated `ArnEquals`.
    ArnNotEquals,
    /// Negated `ArnLike`.
    ArnNotLike,
    /// Key absent (`"true"`) or present (`"false"`).
    Null,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("StringEquals", Operator::StringEquals),
    ("StringNotEquals", Operator::StringNotEquals),
    ("StringEqualsIgnoreCase", Operator::StringEqualsIgnoreCase),
    (
        "StringNotEqualsIgnoreCase",
        Operator::StringNotEqualsIgnoreCase,
    ),
    ("StringLike", Operator::StringLike),
    ("StringNotLike", Operator::StringNotLike),
    ("Bool", Operator::Bool),
    ("IpAddress", Operator::IpAddress),
    ("NotIpAddress", Operator::NotIpAddress),
    ("ArnEquals", Operator::ArnEquals),
    ("ArnLike", Operator::ArnLike),
    ("ArnNotEquals", Operator::ArnNotEquals),
    ("ArnNotLike", Operator::ArnNotLike),
    ("Null", Operator::Null),
];

impl Operator {
    /// Whether this is a negated operator (true when the key is absent).
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
                | Operator::NotIpAddress
                | Operator::ArnNotEquals
                | Operator::ArnNotLike
        )
    }
}

/// `ForAllValues:` / `ForAnyValue:` set qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Qualifier {
    /// No qualifier: single-valued comparison (any request value, for multi-valued keys).
    None,
    /// Every request value must match (true when the key is absent or empty).
    ForAllValues,
    /// At least one request value must match (false when the key is absent).
    ForAnyValue,
}

/// One `operator: { key: values }` test.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator as written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub operator_text: String,
    /// Base operator.
    pub operator: Operator,
    /// Set qualifier.
    pub qualifier: Qualifier,
    /// `...IfExists` suffix.
    pub if_exists: bool,
    /// Condition key as written.
    pub key: String,
    /// Policy values (templates: they may contain variables).
    pub values: Vec<Template>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `Sid`, if any.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Action` / `NotAction`.
    pub action: ActionList,
    /// `Resource` / `NotResource`.
    pub resource: ResourceList,
    /// All condition tests (ANDed).
    pub conditions: Vec<Condition>,
}

/// A parsed, validated policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    /// `Version` as written (`None` when absent).
    pub version: Option<String>,
    /// `Id`, if any.
    pub id: Option<String>,
    /// Statements in order.
    pub statements: Vec<Statement>,
    /// Non-whitespace character count of the text.
    pub size: usize,
}

impl PolicyDocument {
    /// Whether policy variables are substituted (Version `2012-10-17`).
    pub fn variables_enabled(&self) -> bool {
        self.version.as_deref() == Some("2012-10-17")
    }

    /// Parses and validates one document (`doc` is its index, used in errors).
    pub fn parse(doc: usize, text: &str) -> Result<PolicyDocument, PolicyError> {
        let size = policy_size(text);
        if size > MAX_POLICY_CHARS {
            return Err(PolicyError::TooLarge {
                doc,
                chars: size,
                limit: MAX_POLICY_CHARS,
            });
        }
        PolicyDocument::parse_any_size(doc, text)
    }

    /// Like [`PolicyDocument::parse`] without the size limit (the linter reports size itself).
    pub fn parse_any_size(doc: usize, text: &str) -> Result<PolicyDocument, PolicyError> {
        let json = Json::parse(text).map_err(|message| PolicyError::Json { doc, message })?;
        Parser { doc }.document(&json, policy_size(text))
    }
}

/// Characters of `text` that count against the size limit (everything but whitespace).
pub fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

struct Parser {
    doc: usize,
}

impl Parser {
    fn invalid(&self, path: &str, message: impl Into<String>) -> PolicyError {
        PolicyError::Invalid {
            doc: self.doc,
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn template_err(&self, path: &str, raw: &str, e: TemplateError) -> PolicyError {
        match e {
            TemplateError::Malformed => PolicyError::MalformedVariable {
                doc: self.doc,
                path: path.to_owned(),
                text: raw.to_owned(),
            },
            TemplateError::Unsupported(variable) => PolicyError::UnsupportedVariable {
                doc: self.doc,
                path: path.to_owned(),
                variable,
            },
        }
    }

    fn object<'a>(&self, v: &'a Json, path: &str) -> Result<&'a [(String, Json)], PolicyError> {
        match v {
            Json::Obj(o) => Ok(o),
            other => Err(self.invalid(path, format!("expected an object, found {}", other.kind()))),
        }
    }

    fn string<'a>(&self, v: &'a Json, path: &str) -> Result<&'a str, PolicyError> {
        match v {
            Json::Str(s) => Ok(s),
            other => Err(self.invalid(path, format!("expected a string, found {}", other.kind()))),
        }
    }

    fn string_list<'a>(&self, v: &'a Json, path: &str) -> Result<Vec<&'a str>, PolicyError> {
        let out = match v {
            Json::Str(s) => vec![s.as_str()],
            Json::Arr(items) => items
                .iter()
                .enumerate()
                .map(|(i, it)| self.string(it, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(self.invalid(
                    path,
                    format!(
                        "expected a string or an array of strings, found {}",
                        other.kind()
                    ),
                ))
            }
        };
        if out.is_empty() {
            return Err(self.invalid(path, "must not be empty"));
        }
        Ok(out)
    }

    fn document(&self, json: &Json, size: usize) -> Result<PolicyDocument, PolicyError> {
        let top = self.object(json, "(document)")?;
        let (mut version, mut id, mut statements) = (None, None, None);
        for (k, v) in top {
            match k.as_str() {
                "Version" => version = Some(self.string(v, "Version")?.to_owned()),
                "Id" => id = Some(self.string(v, "Id")?.to_owned()),
                "Statement" => statements = Some(v),
                _ => {
                    return Err(PolicyError::UnknownKey {
                        doc: self.doc,
                        path: "(document)".to_owned(),
                        key: k.clone(),
                    })
                }
            }
        }
        if let Some(v) = &version {
            if v != "2012-10-17" && v != "2008-10-17" {
                return Err(PolicyError::UnsupportedVersion {
                    doc: self.doc,
                    version: v.clone(),
                });
            }
        }
        let vars = version.as_deref() == Some("2012-10-17");
        let statements = match statements {
            None => return Err(self.invalid("(document)", "missing Statement")),
            Some(obj @ Json::Obj(_)) => vec![self.statement(obj, "Statement", vars)?],
            Some(Json::Arr(items)) => items
                .iter()
                .enumerate()
                .map(|(i, s)| self.statement(s, &format!("Statement[{i}]"), vars))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(self.invalid(
                    "Statement",
                    format!("expected an object or an array, found {}", other.kind()),
                ))
            }
        };
        Ok(PolicyDocument {
            version,
            id,
            statements,
            size,
        })
    }

    fn statement(&self, v: &Json, path: &str, vars: bool) -> Result<Statement, PolicyError> {
        let obj = self.object(v, path)?;
        let mut sid = None;
        let mut effect = None;
        let mut action: Option<ActionList> = None;
        let mut resource: Option<ResourceList> = None;
        let mut conditions = Vec::new();
        for (k, val) in obj {
            let p = format!("{path}.{k}");
            match k.as_str() {
                "Sid" => sid = Some(self.string(val, &p)?.to_owned()),
                "Effect" => {
                    effect = Some(match self.string(val, &p)? {
                        "Allow" => Effect::Allow,
                        "Deny" => Effect::Deny,
                        other => {
                            return Err(self.invalid(
                                &p,
                                format!("must be \"Allow\" or \"Deny\", not {other:?}"),
                            ))
                        }
                    })
                }
                "Action" | "NotAction" => {
                    if action.is_some() {
                        return Err(self.invalid(path, "has both Action and NotAction"));
                    }
                    action = Some(self.actions(val, &p, k == "NotAction")?);
                }
                "Resource" | "NotResource" => {
                    if resource.is_some() {
                        return Err(self.invalid(path, "has both Resource and NotResource"));
                    }
                    resource = Some(self.resources(val, &p, k == "NotResource", vars)?);
                }
                "Condition" => conditions = self.conditions(val, &p, vars)?,
                _ => {
                    return Err(PolicyError::UnknownKey {
                        doc: self.doc,
                        path: path.to_owned(),
                        key: k.clone(),
                    })
                }
            }
        }
        Ok(Statement {
            sid,
            effect: effect.ok_or_else(|| self.invalid(path, "missing Effect"))?,
            action: action.ok_or_else(|| self.invalid(path, "missing Action or NotAction"))?,
            resource: resource
                .ok_or_else(|| self.invalid(path, "missing Resource or NotResource"))?,
            conditions,
        })
    }

    fn actions(&self, v: &Json, path: &str, negated: bool) -> Result<ActionList, PolicyError> {
        let items = self.string_list(v, path)?;
        for a in &items {
            let ok = *a == "*"
                || a.split_once(':').is_some_and(|(svc, name)| {
                    !svc.is_empty() && !name.is_empty() && !a.contains(char::is_whitespace)
                });
            if !ok {
                return Err(self.invalid(
                    path,
                    format!("{a:?} is not an action (expected \"service:Name\" or \"*\")"),
                ));
            }
        }
        Ok(ActionList {
            negated,
            compiled: items.iter().map(|a| glob::compile(a)).collect(),
            items: items.into_iter().map(str::to_owned).collect(),
        })
    }

    fn resources(
        &self,
        v: &Json,
        path: &str,
        negated: bool,
        vars: bool,
    ) -> Result<ResourceList, PolicyError> {
        let items = self.string_list(v, path)?;
        let mut out = Vec::with_capacity(items.len());
        for r in items {
            if r != "*" && !(r.starts_with("arn:") && r.matches(':').count() >= 5) {
                return Err(self.invalid(path, format!("{r:?} is not \"*\" or an ARN")));
            }
            out.push(Template::parse(r, vars).map_err(|e| self.template_err(path, r, e))?);
        }
        Ok(ResourceList {
            negated,
            items: out,
        })
    }

    fn conditions(&self, v: &Json, path: &str, vars: bool) -> Result<Vec<Condition>, PolicyError> {
        let mut out = Vec::new();
        for (op_text, block) in self.object(v, path)? {
            let p = format!("{path}.{op_text}");
            let (operator, qualifier, if_exists) =
                parse_operator(op_text).ok_or_else(|| PolicyError::UnknownOperator {
                    doc: self.doc,
                    path: path.to_owned(),
                    operator: op_text.clone(),
                })?;
            for (key, vals) in self.object(block, &p)? {
                let kp = format!("{p}.{key}");
                let raw_values: Vec<String> = match vals {
                    Json::Arr(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, it)| self.scalar(it, &format!("{kp}[{i}]")))
                        .collect::<Result<_, _>>()?,
                    other => vec![self.scalar(other, &kp)?],
                };
                let mut values = Vec::with_capacity(raw_values.len());
                for raw in &raw_values {
                    let t =
                        Template::parse(raw, vars).map_err(|e| self.template_err(&kp, raw, e))?;
                    if !t.has_vars() {
                        match operator {
                            Operator::IpAddress | Operator::NotIpAddress => {
                                Cidr::parse(raw).map_err(|_| {
                                    self.invalid(
                                        &kp,
                                        format!("{raw:?} is not an IP address or CIDR block"),
                                    )
                                })?;
                            }
                            Operator::Null
                                if !raw.eq_ignore_ascii_case("true")
                                    && !raw.eq_ignore_ascii_case("false") =>
                            {
                                return Err(self.invalid(
                                    &kp,
                                    format!("Null takes \"true\" or \"false\", not {raw:?}"),
                                ));
                            }
                            _ => {}
                        }
                    }
                    values.push(t);
                }
                out.push(Condition {
                    operator_text: op_text.clone(),
                    operator,
                    qualifier,
                    if_exists,
                    key: key.clone(),
                    values,
                });
            }
        }
        Ok(out)
    }

    fn scalar(&self, v: &Json, path: &str) -> Result<String, PolicyError> {
        match v {
            Json::Str(s) => Ok(s.clone()),
            Json::Bool(b) => Ok(b.to_string()),
            Json::Num(n) => Ok(n.clone()),
            other => Err(self.invalid(
                path,
                format!(
                    "expected a string, boolean or number, found {}",
                    other.kind()
                ),
            )),
        }
    }
}

/// Splits `ForAnyValue:StringLikeIfExists` into its parts; `None` for anything unsupported.
pub(crate) fn parse_operator(text: &str) -> Option<(Operator, Qualifier, bool)> {
    let lower = text.to_ascii_lowercase();
    let (qualifier, rest) = if let Some(r) = lower.strip_prefix("forallvalues:") {
        (Qualifier::ForAllValues, r)
    } else if let Some(r) = lower.strip_prefix("foranyvalue:") {
        (Qualifier::ForAnyValue, r)
    } else {
        (Qualifier::None, lower.as_str())
    };
    let (base, if_exists) = match rest.strip_suffix("ifexists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let op = OPERATORS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(base))
        .map(|(_, op)| *op)?;
    if op == Operator::Null && (if_exists || qualifier != Qualifier::None) {
        return None;
    }
    Some((op, qualifier, if_exists))
}
