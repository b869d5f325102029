//! Policy documents the authorizer returns, rendered concretely from typed structs (no policy
//! variables, no wildcards except the trailing `/*` under an identity's own namespace).
//!
//! Every name placed in a resource goes through [`safe_name`], which refuses the characters that
//! mean something in a topic, a topic filter or a policy (`* ? + # $ { } /`), so no stored or
//! requested value can widen a grant. Operators owning many serials get several resources per
//! statement and up to [`MAX_DOCUMENTS`] documents; past that the decision is `policy_too_large`,
//! never a broader grant.

use super::AuthReason;
use crate::domain::Serial;
use crate::policy::{policy_size, MAX_POLICY_CHARS};
use serde::Serialize;
use std::collections::BTreeSet;

/// Most policy documents AWS accepts in one response.
pub const MAX_DOCUMENTS: usize = 10;
/// The topic root every device namespace lives under (`P/<serial>/...`).
pub const TOPIC_ROOT: &str = "P";
/// Characters never allowed in a name placed in a resource.
pub const FORBIDDEN: [char; 8] = ['*', '?', '+', '#', '$', '{', '}', '/'];

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// The data-plane actions the authorizer grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Action {
    #[serde(rename = "iot:Connect")]
    Connect,
    #[serde(rename = "iot:Publish")]
    Publish,
    #[serde(rename = "iot:Receive")]
    Receive,
    #[serde(rename = "iot:Subscribe")]
    Subscribe,
}

/// One statement. Always `Action` and `Resource` lists (never `Not*`, never a condition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    #[serde(rename = "Effect")]
    pub effect: Effect,
    #[serde(rename = "Action")]
    pub action: Vec<Action>,
    #[serde(rename = "Resource")]
    pub resource: Vec<String>,
}

/// One policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    fn new(statement: Vec<Statement>) -> Self {
        Self {
            version: "2012-10-17",
            statement,
        }
    }

    /// Compact JSON.
    pub fn to_json(&self) -> Result<String, AuthReason> {
        serde_json::to_string(self).map_err(|_| AuthReason::InternalError)
    }
}

/// Whether `s` may be placed in a resource: non-empty, printable ASCII, none of [`FORBIDDEN`],
/// and nothing JSON would escape (`"`, `\`).
pub fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        && !s.contains(FORBIDDEN)
}

/// Where the ARNs point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    region: String,
    account: String,
}

impl ArnScope {
    /// Region (`[a-z0-9-]{1,32}`) and account (12 digits), validated.
    pub fn new(region: &str, account: &str) -> Result<Self, String> {
        let region_ok = !region.is_empty()
            && region.len() <= 32
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(format!(
                "region must match [a-z0-9-]{{1,32}}, not {region:?}"
            ));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err("account must be 12 digits".to_owned());
        }
        Ok(Self {
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{kind}/{name}", self.region, self.account)
    }

    fn client(&self, id: &str) -> Result<String, AuthReason> {
        if safe_name(id) {
            Ok(self.arn("client", id))
        } else {
            Err(AuthReason::WildcardInjection)
        }
    }

    /// `topic/P/<id>/<suffix>` and `topicfilter/P/<id>/<suffix>`; `suffix` is ours (constant).
    fn namespace(&self, id: &str, suffix: &str) -> Result<(String, String), AuthReason> {
        if !safe_name(id) {
            return Err(AuthReason::WildcardInjection);
        }
        let name = format!("{TOPIC_ROOT}/{id}/{suffix}");
        Ok((self.arn("topic", &name), self.arn("topicfilter", &name)))
    }
}

fn render_all(docs: &[PolicyDocument]) -> Result<Vec<String>, AuthReason> {
    let out = docs
        .iter()
        .map(PolicyDocument::to_json)
        .collect::<Result<Vec<_>, _>>()?;
    if out.len() > MAX_DOCUMENTS || out.iter().any(|d| policy_size(d) > MAX_POLICY_CHARS) {
        return Err(AuthReason::PolicyTooLarge);
    }
    Ok(out)
}

/// The policy of a password device: what a certificate device gets from the fleet policy, made
/// concrete. Connect as `client/<serial>`; Publish and Receive on `topic/P/<serial>/*`; Subscribe
/// on `topicfilter/P/<serial>/*`.
pub fn device_policy(scope: &ArnScope, serial: &Serial) -> Result<Vec<String>, AuthReason> {
    let (topic, filter) = scope.namespace(serial.as_str(), "*")?;
    let doc = PolicyDocument::new(vec![
        Statement {
            effect: Effect::Allow,
            action: vec![Action::Connect],
            resource: vec![scope.client(serial.as_str())?],
        },
        Statement {
            effect: Effect::Allow,
            action: vec![Action::Publish, Action::Receive],
            resource: vec![topic],
        },
        Statement {
            effect: Effect::Allow,
            action: vec![Action::Subscribe],
            resource: vec![filter],
        },
    ]);
    render_all(&[doc])
}

/// The policy of an operator: Connect only as its principal id; for each owned serial Publish and
/// Receive on `topic/P/<serial>/deleterecords/*` and Subscribe on
/// `topicfilter/P/<serial>/deleterecords/*`. Serials are deduplicated and sorted; documents are
/// filled greedily (each holds a Publish/Receive and a Subscribe statement over as many serials
/// as fit in 2,048 characters). More than [`MAX_DOCUMENTS`] documents: `policy_too_large`.
pub fn operator_policy(
    scope: &ArnScope,
    principal_id: &str,
    serials: &[Serial],
) -> Result<Vec<String>, AuthReason> {
    let connect = Statement {
        effect: Effect::Allow,
        action: vec![Action::Connect],
        resource: vec![scope.client(principal_id)?],
    };
    let unique: BTreeSet<&Serial> = serials.iter().collect();
    let mut done: Vec<PolicyDocument> = Vec::new();
    let mut topics: Vec<String> = Vec::new();
    let mut filters: Vec<String> = Vec::new();
    let mut first = Some(connect);

    let build = |first: &Option<Statement>, topics: &[String], filters: &[String]| {
        let mut st: Vec<Statement> = first.iter().cloned().collect();
        if !topics.is_empty() {
            st.push(Statement {
                effect: Effect::Allow,
                action: vec![Action::Publish, Action::Receive],
                resource: topics.to_vec(),
            });
            st.push(Statement {
                effect: Effect::Allow,
                action: vec![Action::Subscribe],
                resource: filters.to_vec(),
            });
        }
        PolicyDocument::new(st)
    };

    // Size of the current document as rendered. Adding a serial to non-empty lists adds exactly
    // `,"<topic>"` and `,"<filter>"`: names are printable ASCII without quotes or backslashes,
    // so nothing is escaped. `render_all` re-checks every document from its real text.
    let mut size = 0;
    for serial in unique {
        let (topic, filter) = scope.namespace(serial.as_str(), "deleterecords/*")?;
        let added = topic.len() + filter.len() + 6;
        let empty = topics.is_empty();
        topics.push(topic);
        filters.push(filter);
        size = if empty {
            policy_size(&build(&first, &topics, &filters).to_json()?)
        } else {
            size + added
        };
        if size <= MAX_POLICY_CHARS {
            continue;
        }
        // Close the current document without this serial and start a new one with it.
        let (topic, filter) = match (topics.pop(), filters.pop()) {
            (Some(t), Some(f)) => (t, f),
            _ => return Err(AuthReason::InternalError),
        };
        if topics.is_empty() && first.is_none() {
            // A single serial does not fit in an empty document: cannot happen with validated
            // serials; refuse rather than over-grant.
            return Err(AuthReason::PolicyTooLarge);
        }
        done.push(build(&first, &topics, &filters));
        if done.len() >= MAX_DOCUMENTS {
            return Err(AuthReason::PolicyTooLarge);
        }
        first = None;
        topics = vec![topic];
        filters = vec![filter];
        size = policy_size(&build(&first, &topics, &filters).to_json()?);
        if size > MAX_POLICY_CHARS {
            return Err(AuthReason::PolicyTooLarge);
        }
    }
    if first.is_some() || !topics.is_empty() {
        done.push(build(&first, &topics, &filters));
    }
    render_all(&done)
}
