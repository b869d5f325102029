//! Offline Device Defender-style audit of IoT policies.
//!
//! Each [`Finding`] has a stable snake_case [`FindingCode`], a [`Severity`] and the document /
//! statement that caused it. Heuristics (documented because the audit checks are not specified
//! precisely by AWS):
//! * A resource is a *wildcard resource* when it is `*`, its resource part (after the fifth `:`)
//!   is `*` or starts with `*` (`arn:aws:iot:*:*:*`, `...:123456789012:*`), or names a type with a
//!   bare `*` (`topic/*`, `topicfilter/*`, `client/*`, `thing/*`).
//! * A topic / topic-filter resource is *identity-scoped* when it contains a per-identity variable
//!   (`${iot:Connection.Thing.ThingName}`, `${iot:CertificateId}`, `${iot:Certificate...}`
//!   other than `AvailableKeys`, or `${iot:ClientId}` on
//!   `topic/`) not immediately followed by a wildcard (`P/${thing}*` would let `SN1` reach
//!   `SN12`'s topics), or when it is concrete: no wildcard at all, or at least two complete
//!   literal topic levels before the first wildcard (three under `$aws/`). So `topic/P/SN123/*`
//!   (rendered by a custom authorizer for one device) passes and `topic/P/*` does not.
//! * `iot:Connect` is *bound* when the client id is `${iot:Connection.Thing.ThingName}`, a
//!   certificate variable, or a concrete id, with no wildcard; `client/${iot:ClientId}` is as
//!   good as `client/*` (the client chooses its own id).

use super::arn::{pattern_resource_types, ResourceType, KNOWN_ACTIONS};
use super::document::{
    policy_size, Effect, Operator, PolicyDocument, Qualifier, Statement, MAX_POLICY_CHARS,
};
use super::error::PolicyError;
use super::glob;
use super::variables::{Seg, Template, Var};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Finding severity, ordered `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Hygiene.
    Low,
    /// Weakens isolation between devices.
    Medium,
    /// Grants far more than intended.
    High,
    /// Grants (nearly) everything.
    Critical,
}

impl Severity {
    /// `low`, `medium`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Severity, String> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!("unknown severity {s:?} (low|medium|high|critical)")),
        }
    }
}

/// Stable finding codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    /// Allow with `*` or `iot:*` actions (critical together with a wildcard resource).
    WildcardAction,
    /// Allow on `*`, `...:*` or `<type>/*`.
    WildcardResource,
    /// Allow with `NotAction` (grants every other action).
    AllowWithNotAction,
    /// Allow with `NotResource` (grants every other resource).
    AllowWithNotResource,
    /// Publish / subscribe / receive on topics not scoped to the connecting identity.
    UnscopedTopicAccess,
    /// `iot:Connect` not bound to the thing name, a certificate field or a concrete client id.
    ConnectNotBoundToIdentity,
    /// `${iot:ClientId}` in a `topicfilter/` resource (client id `+` or `#` widens it).
    ClientIdInTopicFilter,
    /// Thing variables without `"Bool": {"iot:Connection.Thing.IsAttached": "true"}`.
    ThingVariableWithoutAttachedCheck,
    /// Deny on a narrower topic filter next to an Allow on a broader one, with no Deny on
    /// `iot:Receive` for the topic: a wildcard subscription still gets the messages.
    DenyBypassableByWildcardSubscription,
    /// Actions and resource types can never match: the statement does nothing.
    DeadStatement,
    /// Over 2,048 non-whitespace characters: AWS rejects the document.
    DocumentTooLarge,
    /// `Version` absent or `2008-10-17`: policy variables are not substituted.
    MissingVersion,
    /// `${iot:...}` that is not an AWS IoT policy variable: the statement never applies.
    UnknownPolicyVariable,
}

impl FindingCode {
    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::WildcardAction => "wildcard_action",
            FindingCode::WildcardResource => "wildcard_resource",
            FindingCode::AllowWithNotAction => "allow_with_not_action",
            FindingCode::AllowWithNotResource => "allow_with_not_resource",
            FindingCode::UnscopedTopicAccess => "unscoped_topic_access",
            FindingCode::ConnectNotBoundToIdentity => "connect_not_bound_to_identity",
            FindingCode::ClientIdInTopicFilter => "client_id_in_topic_filter",
            FindingCode::ThingVariableWithoutAttachedCheck => {
                "thing_variable_without_attached_check"
            }
            FindingCode::DenyBypassableByWildcardSubscription => {
                "deny_bypassable_by_wildcard_subscription"
            }
            FindingCode::DeadStatement => "dead_statement",
            FindingCode::DocumentTooLarge => "document_too_large",
            FindingCode::MissingVersion => "missing_version",
            FindingCode::UnknownPolicyVariable => "unknown_policy_variable",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code.
    pub code: FindingCode,
    /// Severity.
    pub severity: Severity,
    /// Document index.
    pub document: usize,
    /// Statement index, when the finding is about one statement.
    pub statement: Option<usize>,
    /// The statement's `Sid`.
    pub sid: Option<String>,
    /// The resource concerned, when there is one.
    pub resource: Option<String>,
    /// Human explanation.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {} document {}",
            self.severity, self.code, self.document
        )?;
        if let Some(s) = self.statement {
            write!(f, " statement {s}")?;
        }
        if let Some(sid) = &self.sid {
            write!(f, " ({sid})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(r) = &self.resource {
            write!(f, " [{r}]")?;
        }
        Ok(())
    }
}

const TOPIC_ACTIONS: &[&str] = &[
    "iot:Publish",
    "iot:Subscribe",
    "iot:Receive",
    "iot:RetainPublish",
];

/// Lints policy texts. Oversize documents are a finding (and still linted); JSON or grammar
/// errors are returned as errors. Findings are sorted by severity (highest first), document,
/// statement.
pub fn lint(docs: &[&str]) -> Result<Vec<Finding>, PolicyError> {
    let mut findings = Vec::new();
    let mut parsed = Vec::with_capacity(docs.len());
    for (i, text) in docs.iter().enumerate() {
        let size = policy_size(text);
        if size > MAX_POLICY_CHARS {
            findings.push(Finding {
                code: FindingCode::DocumentTooLarge,
                severity: Severity::High,
                document: i,
                statement: None,
                sid: None,
                resource: None,
                message: format!("{size} characters excluding whitespace; AWS IoT rejects policies over {MAX_POLICY_CHARS}"),
            });
        }
        parsed.push(PolicyDocument::parse_any_size(i, text)?);
    }
    findings.extend(lint_documents(&parsed));
    sort(&mut findings);
    Ok(findings)
}

fn sort(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.document.cmp(&b.document))
            .then(a.statement.cmp(&b.statement))
            .then(a.code.cmp(&b.code))
    });
}

/// Lints parsed documents (indices are positions in `docs`). Does not check size.
pub fn lint_documents(docs: &[PolicyDocument]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (di, doc) in docs.iter().enumerate() {
        if !doc.variables_enabled() {
            let uses_vars = doc.statements.iter().any(|s| {
                s.resource.items.iter().any(|t| t.raw().contains("${"))
                    || s.conditions
                        .iter()
                        .any(|c| c.values.iter().any(|t| t.raw().contains("${")))
            });
            out.push(Finding {
                code: FindingCode::MissingVersion,
                severity: if uses_vars {
                    Severity::High
                } else {
                    Severity::Low
                },
                document: di,
                statement: None,
                sid: None,
                resource: None,
                message: "Version is not \"2012-10-17\": policy variables are not substituted"
                    .to_owned(),
            });
        }
        for (si, st) in doc.statements.iter().enumerate() {
            lint_statement(di, si, st, &mut out);
        }
    }
    lint_deny_bypass(docs, &mut out);
    sort(&mut out);
    out
}

fn finding(
    code: FindingCode,
    severity: Severity,
    di: usize,
    si: usize,
    st: &Statement,
    resource: Option<&str>,
    message: impl Into<String>,
) -> Finding {
    Finding {
        code,
        severity,
        document: di,
        statement: Some(si),
        sid: st.sid.clone(),
        resource: resource.map(str::to_owned),
        message: message.into(),
    }
}

/// The segments after `arn:...:<type>/`, with the type; `None` when the type itself is not a
/// literal known type.
fn name_segments(t: &Template) -> Option<(ResourceType, &[Seg])> {
    let segs = t.segs();
    let mut colons = 0;
    let mut ty = String::new();
    for (i, s) in segs.iter().enumerate() {
        if colons < 5 {
            // A wildcard in region/account (`arn:aws:iot:*:*:topic/...`) is read as just that.
            if *s == Seg::Lit(':') {
                colons += 1;
            }
            continue;
        }
        let Seg::Lit(c) = s else { return None };
        if *c == '/' {
            let rt = ResourceType::ALL.into_iter().find(|r| r.prefix() == ty)?;
            return Some((rt, &segs[i + 1..]));
        }
        ty.push(*c);
    }
    None
}

fn is_wildcard_resource(t: &Template) -> bool {
    let raw = t.raw();
    if raw == "*" {
        return true;
    }
    let segs = t.segs();
    // Resource part starts after the fifth literal ':'.
    let mut colons = 0;
    let mut start = None;
    for (i, s) in segs.iter().enumerate() {
        match s {
            Seg::Lit(':') => {
                colons += 1;
                if colons == 5 {
                    start = Some(i + 1);
                    break;
                }
            }
            // `arn:aws:iot:*:*:*` style: a star in region/account followed by a bare star.
            Seg::Star if raw.ends_with(":*") => return true,
            _ => {}
        }
    }
    let Some(start) = start else { return false };
    let rest = &segs[start..];
    if matches!(rest.first(), Some(Seg::Star)) {
        return true;
    }
    match name_segments(t) {
        Some((_, name)) => matches!(name, [Seg::Star]),
        None => false,
    }
}

fn is_identity_var(v: &Var, allow_client_id: bool) -> bool {
    matches!(
        v,
        Var::ThingName | Var::Cert { .. } | Var::CertSerial | Var::CertificateId
    ) || (allow_client_id && *v == Var::ClientId)
}

/// See module docs: identity variable not followed by a wildcard, or concrete enough.
fn topic_identity_scoped(name: &[Seg], rt: ResourceType) -> bool {
    let allow_client_id = rt == ResourceType::Topic;
    let mut has_identity = false;
    for (i, s) in name.iter().enumerate() {
        if let Seg::Var { var, .. } = s {
            if is_identity_var(var, allow_client_id) {
                if matches!(name.get(i + 1), Some(Seg::Star | Seg::One)) {
                    return false;
                }
                has_identity = true;
            }
        }
    }
    if has_identity {
        return true;
    }
    // Concrete: literal levels before the first wildcard or variable.
    let mut prefix = String::new();
    let mut wildcard = false;
    for s in name {
        match s {
            Seg::Lit(c) => prefix.push(*c),
            _ => {
                wildcard = true;
                break;
            }
        }
    }
    if !wildcard {
        return true;
    }
    let levels: Vec<&str> = prefix.split('/').collect();
    let complete = levels.len().saturating_sub(1);
    if levels.iter().take(complete).any(|l| l.is_empty()) {
        return false;
    }
    let needed = if prefix.starts_with("$aws/") { 3 } else { 2 };
    complete >= needed
}

fn connect_bound(name: &[Seg]) -> bool {
    !name.is_empty()
        && name.iter().all(|s| match s {
            Seg::Lit(_) => true,
            Seg::Var { var, .. } => is_identity_var(var, false),
            Seg::Star | Seg::One => false,
        })
}

fn has_attached_check(st: &Statement) -> bool {
    st.conditions.iter().any(|c| {
        c.operator == Operator::Bool
            && c.qualifier == Qualifier::None
            && !c.if_exists
            && c.key
                .eq_ignore_ascii_case("iot:Connection.Thing.IsAttached")
            && !c.values.is_empty()
            && c.values
                .iter()
                .all(|v| v.raw().eq_ignore_ascii_case("true"))
    })
}

fn lint_statement(di: usize, si: usize, st: &Statement, out: &mut Vec<Finding>) {
    let all_templates = || {
        st.resource
            .items
            .iter()
            .chain(st.conditions.iter().flat_map(|c| c.values.iter()))
    };
    for t in all_templates() {
        for v in t.vars() {
            if let Var::UnknownIot(name) = v {
                // A Deny that never applies is a hole the author believes closed.
                let sev = if st.effect == Effect::Deny {
                    Severity::High
                } else {
                    Severity::Medium
                };
                out.push(finding(FindingCode::UnknownPolicyVariable, sev, di, si, st, Some(t.raw()),
                    format!("${{{name}}} is not an AWS IoT policy variable; the statement never applies")));
            }
        }
    }
    lint_dead(di, si, st, out);
    if st.effect != Effect::Allow {
        return;
    }
    if st.action.negated {
        out.push(finding(
            FindingCode::AllowWithNotAction,
            Severity::High,
            di,
            si,
            st,
            None,
            "Allow with NotAction grants every action not listed",
        ));
    }
    if st.resource.negated {
        out.push(finding(
            FindingCode::AllowWithNotResource,
            Severity::High,
            di,
            si,
            st,
            None,
            "Allow with NotResource grants every resource not listed",
        ));
    }
    let wildcard_resource =
        !st.resource.negated && st.resource.items.iter().any(is_wildcard_resource);
    if !st.action.negated {
        for a in &st.action.items {
            if a == "*" || a.eq_ignore_ascii_case("iot:*") {
                let sev = if wildcard_resource || st.resource.negated {
                    Severity::Critical
                } else {
                    Severity::High
                };
                out.push(finding(
                    FindingCode::WildcardAction,
                    sev,
                    di,
                    si,
                    st,
                    None,
                    format!("Allow on action {a:?} grants every IoT action"),
                ));
            }
        }
    }
    let thing_vars = all_templates().any(|t| t.vars().any(Var::is_thing));
    if thing_vars && !has_attached_check(st) {
        out.push(finding(FindingCode::ThingVariableWithoutAttachedCheck, Severity::Medium, di, si, st, None,
            "thing policy variables used without a Bool iot:Connection.Thing.IsAttached = \"true\" condition"));
    }
    if st.resource.negated {
        return;
    }
    let covers_connect = st.action.covers("iot:Connect");
    let covers_topics = TOPIC_ACTIONS.iter().any(|a| st.action.covers(a));
    for t in &st.resource.items {
        if is_wildcard_resource(t) {
            out.push(finding(
                FindingCode::WildcardResource,
                Severity::High,
                di,
                si,
                st,
                Some(t.raw()),
                "Allow on a wildcard resource",
            ));
            continue;
        }
        let Some((rt, name)) = name_segments(t) else {
            continue;
        };
        match rt {
            ResourceType::Client if covers_connect && !connect_bound(name) => {
                out.push(finding(FindingCode::ConnectNotBoundToIdentity, Severity::High, di, si, st, Some(t.raw()),
                    "iot:Connect is not bound to ${iot:Connection.Thing.ThingName}, a certificate field or a concrete client id (client/${iot:ClientId} lets any client id connect)"));
            }
            ResourceType::Topic | ResourceType::TopicFilter if covers_topics => {
                if rt == ResourceType::TopicFilter
                    && name.iter().any(|s| {
                        matches!(
                            s,
                            Seg::Var {
                                var: Var::ClientId,
                                ..
                            }
                        )
                    })
                {
                    out.push(finding(FindingCode::ClientIdInTopicFilter, Severity::High, di, si, st, Some(t.raw()),
                        "${iot:ClientId} in a topic filter: a client id of + or # widens the filter (basic-policy-variables)"));
                } else if !topic_identity_scoped(name, rt) {
                    out.push(finding(FindingCode::UnscopedTopicAccess, Severity::Medium, di, si, st, Some(t.raw()),
                        "topic access is not scoped to the connecting identity (no thing-name / certificate variable, not a concrete per-device topic)"));
                }
            }
            _ => {}
        }
    }
}

fn lint_dead(di: usize, si: usize, st: &Statement, out: &mut Vec<Finding>) {
    if st.action.negated || st.resource.negated {
        return;
    }
    // Only statements whose actions are all exact, known data-plane actions can be proven dead:
    // a wildcard or unknown action may cover actions (and resource types) we do not know.
    let mut needed: Vec<ResourceType> = Vec::new();
    for a in &st.action.items {
        match KNOWN_ACTIONS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(a))
        {
            Some((_, t)) => needed.push(*t),
            None => return,
        }
    }
    let offered: Vec<ResourceType> = st
        .resource
        .items
        .iter()
        .flat_map(|t| pattern_resource_types(t.raw()))
        .collect();
    if !needed.iter().any(|t| offered.contains(t)) {
        let sev = if st.effect == Effect::Deny {
            Severity::High
        } else {
            Severity::Low
        };
        out.push(finding(FindingCode::DeadStatement, sev, di, si, st, None,
            format!("the actions need {} resources but the statement only names other resource types: it never applies",
                describe(&needed))));
    }
}

fn describe(types: &[ResourceType]) -> String {
    let mut names: Vec<&str> = types.iter().map(|t| t.prefix()).collect();
    names.sort_unstable();
    names.dedup();
    names.join("/")
}

fn lint_deny_bypass(docs: &[PolicyDocument], out: &mut Vec<Finding>) {
    let stmts: Vec<(usize, usize, &Statement)> = docs
        .iter()
        .enumerate()
        .flat_map(|(di, d)| {
            d.statements
                .iter()
                .enumerate()
                .map(move |(si, s)| (di, si, s))
        })
        .collect();
    let plain = |s: &Statement| !s.action.negated && !s.resource.negated;
    for &(di, si, deny) in &stmts {
        if deny.effect != Effect::Deny || !plain(deny) || !deny.action.covers("iot:Subscribe") {
            continue;
        }
        for rd in &deny.resource.items {
            if !matches!(name_segments(rd), Some((ResourceType::TopicFilter, _))) {
                continue;
            }
            let denied = rd.raw();
            let broader_allow = stmts.iter().any(|&(_, _, a)| {
                a.effect == Effect::Allow
                    && !a.resource.negated
                    && a.action.covers("iot:Subscribe")
                    && a.resource.items.iter().any(|ra| {
                        ra.raw() != denied && glob::matches(&glob::compile(ra.raw()), denied, false)
                    })
            });
            if !broader_allow {
                continue;
            }
            let topic = denied.replacen(":topicfilter/", ":topic/", 1);
            let receive_denied = stmts.iter().any(|&(_, _, d)| {
                d.effect == Effect::Deny
                    && plain(d)
                    && d.action.covers("iot:Receive")
                    && d.resource
                        .items
                        .iter()
                        .any(|r| glob::matches(&glob::compile(r.raw()), &topic, false))
            });
            if !receive_denied {
                out.push(finding(FindingCode::DenyBypassableByWildcardSubscription, Severity::High, di, si, deny, Some(denied),
                    "Deny on this topic filter is bypassed by subscribing to a broader filter the Allow grants (e.g. with # or +); add a Deny on iot:Receive for the topic"));
            }
        }
    }
}
