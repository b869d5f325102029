//! Policy documents the authorizer returns, rendered concretely from typed structs (no policy
//! variables, no wildcards except the trailing `/*` under an identity's own namespace).
//!
//! Every name placed in a resource goes through [`safe_name`], which refuses the characters that
//! mean something in a topic, a topic filter or a policy (`* ? + # $ { } /`), so no stored or
//! requested value can widen a grant. Operators owning many serials get several resources per
//! statement and up to [`MAX_DOCUMENTS`] documents; past that the decision is `policy_too_large`,
//! never a broader grant.
//!
//! Every rendering also carries an explicit Deny of `iot:Publish` on the functions' replies
//! of every serial ([`REPLY_TOPICS`]): `*` in a policy spans `/`, so the Allow on
//! `P/<serial>/deleterecords/*` covers `.../<record_id>/accepted` too, and a client could forge a
//! reply that another subscriber trusts. ARNs use the partition of the region
//! ([`partition_for_region`]), never a hard-coded `arn:aws:`.

use crate::model::Reason;
use crate::model::Serial;
use iot_policy::{partition_for_region, policy_size, MAX_POLICY_CHARS};
use serde::Serialize;
use std::collections::BTreeSet;

/// Most policy documents AWS accepts in one response.
pub const MAX_DOCUMENTS: usize = 10;
/// The topic root every device namespace lives under (`P/<serial>/...`).
pub const TOPIC_ROOT: &str = "P";
/// Characters never allowed in a name placed in a resource.
pub const FORBIDDEN: [char; 8] = ['*', '?', '+', '#', '$', '{', '}', '/'];
/// The functions' replies, for every serial (delete-record's, the rotator's and the expiry watch's
/// nudge): only the functions publish them (through the data plane, with IAM), so every rendered
/// policy denies `iot:Publish` on them, as the fleet policy does for certificate devices. The trailing
/// `*` covers every topic below a reply (`.../accepted/x`), which a subscriber to `.../accepted/#`
/// would take for one.
pub const REPLY_TOPICS: [&str; 7] = [
    "P/*/deleterecords/*/accepted*",
    "P/*/deleterecords/*/rejected*",
    "P/*/certificates/rotate/accepted*",
    "P/*/certificates/rotate/rejected*",
    "P/*/certificates/rotate/required*",
    "P/*/certificates/confirm/accepted*",
    "P/*/certificates/confirm/rejected*",
];

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
    pub fn to_json(&self) -> Result<String, Reason> {
        serde_json::to_string(self).map_err(|_| Reason::InternalError)
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

fn lower_dashed(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Where the ARNs point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    partition: String,
    region: String,
    account: String,
}

impl ArnScope {
    /// Region (`[a-z0-9-]{1,32}`) and account (12 digits), validated; the partition is the
    /// region's ([`partition_for_region`]: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`, ...).
    pub fn new(region: &str, account: &str) -> Result<Self, String> {
        Self::with_partition(partition_for_region(region), region, account)
    }

    /// As [`ArnScope::new`] with an explicit partition (`aws` or `aws-[a-z0-9-]+`), for a
    /// partition the region prefixes do not tell apart.
    pub fn with_partition(partition: &str, region: &str, account: &str) -> Result<Self, String> {
        if !(lower_dashed(partition) && (partition == "aws" || partition.starts_with("aws-"))) {
            return Err(format!(
                "partition must be aws or aws-[a-z0-9-]+, not {partition:?}"
            ));
        }
        if !lower_dashed(region) {
            return Err(format!(
                "region must match [a-z0-9-]{{1,32}}, not {region:?}"
            ));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err("account must be 12 digits".to_owned());
        }
        Ok(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }

    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        format!(
            "arn:{}:iot:{}:{}:{kind}/{name}",
            self.partition, self.region, self.account
        )
    }

    /// Deny `iot:Publish` on every serial's delete-record replies ([`REPLY_TOPICS`]).
    fn reply_deny(&self) -> Statement {
        Statement {
            effect: Effect::Deny,
            action: vec![Action::Publish],
            resource: REPLY_TOPICS.iter().map(|t| self.arn("topic", t)).collect(),
        }
    }

    fn client(&self, id: &str) -> Result<String, Reason> {
        if safe_name(id) {
            Ok(self.arn("client", id))
        } else {
            Err(Reason::WildcardInjection)
        }
    }

    /// `topic/P/<id>/<suffix>` and `topicfilter/P/<id>/<suffix>`; `suffix` is ours (constant).
    fn namespace(&self, id: &str, suffix: &str) -> Result<(String, String), Reason> {
        if !safe_name(id) {
            return Err(Reason::WildcardInjection);
        }
        let name = format!("{TOPIC_ROOT}/{id}/{suffix}");
        Ok((self.arn("topic", &name), self.arn("topicfilter", &name)))
    }
}

fn render_all(docs: &[PolicyDocument]) -> Result<Vec<String>, Reason> {
    let out = docs
        .iter()
        .map(PolicyDocument::to_json)
        .collect::<Result<Vec<_>, _>>()?;
    if out.len() > MAX_DOCUMENTS || out.iter().any(|d| policy_size(d) > MAX_POLICY_CHARS) {
        return Err(Reason::PolicyTooLarge);
    }
    Ok(out)
}

/// The policy of a password device: what a certificate device gets from the fleet policy, made
/// concrete. Connect as `client/<serial>`; Publish and Receive on `topic/P/<serial>/*`; Subscribe
/// on `topicfilter/P/<serial>/*`; never Publish on a delete-record reply ([`REPLY_TOPICS`]).
pub fn device_policy(scope: &ArnScope, serial: &Serial) -> Result<Vec<String>, Reason> {
    let (topic, filter) = scope.namespace(serial.as_str(), "*")?;
    let doc = PolicyDocument::new(vec![
        Statement {
            effect: Effect::Allow,
            action: vec![Action::Connect],
            resource: vec![scope.client(serial.as_str())?],
        },
        scope.reply_deny(),
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
/// `topicfilter/P/<serial>/deleterecords/*`; never Publish on a delete-record reply
/// ([`REPLY_TOPICS`]). Serials are deduplicated and sorted; documents are filled greedily (each
/// holds a Publish/Receive and a Subscribe statement over as many serials as fit in 2,048
/// characters). The Connect and reply Deny statements are in the first document only (an
/// explicit Deny in any of the documents wins), and count towards its size. More than
/// [`MAX_DOCUMENTS`] documents: `policy_too_large`.
pub fn operator_policy(
    scope: &ArnScope,
    principal_id: &str,
    serials: &[Serial],
) -> Result<Vec<String>, Reason> {
    let connect = Statement {
        effect: Effect::Allow,
        action: vec![Action::Connect],
        resource: vec![scope.client(principal_id)?],
    };
    let unique: BTreeSet<&Serial> = serials.iter().collect();
    let mut done: Vec<PolicyDocument> = Vec::new();
    let mut topics: Vec<String> = Vec::new();
    let mut filters: Vec<String> = Vec::new();
    let mut first = Some(vec![connect, scope.reply_deny()]);

    let build = |first: &Option<Vec<Statement>>, topics: &[String], filters: &[String]| {
        let mut st: Vec<Statement> = first.iter().flatten().cloned().collect();
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
            _ => return Err(Reason::InternalError),
        };
        if topics.is_empty() && first.is_none() {
            // A single serial does not fit in an empty document: cannot happen with validated
            // serials; refuse rather than over-grant.
            return Err(Reason::PolicyTooLarge);
        }
        done.push(build(&first, &topics, &filters));
        if done.len() >= MAX_DOCUMENTS {
            return Err(Reason::PolicyTooLarge);
        }
        first = None;
        topics = vec![topic];
        filters = vec![filter];
        size = policy_size(&build(&first, &topics, &filters).to_json()?);
        if size > MAX_POLICY_CHARS {
            return Err(Reason::PolicyTooLarge);
        }
    }
    if first.is_some() || !topics.is_empty() {
        done.push(build(&first, &topics, &filters));
    }
    render_all(&done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iot_policy::{
        evaluate, lint, prove_scoped_to_identity, ConnectionContext, Request, ScopeCheck, Severity,
        Verdict,
    };

    const ACCOUNT: &str = "123456789012";
    const PRINCIPAL: &str = "op0123456789abcdef0123456789abcdef01234567";

    fn serials(n: usize) -> Vec<Serial> {
        (0..n)
            .map(|i| Serial::parse(&format!("SERIAL-{i:06}")).expect("serial"))
            .collect()
    }

    fn ctx(client_id: &str, region: &str) -> ConnectionContext {
        ConnectionContext {
            client_id: Some(client_id.to_owned()),
            principal_id: Some(client_id.to_owned()),
            ..ConnectionContext::default()
        }
        .in_account(region, ACCOUNT)
    }

    fn verdict(docs: &[String], ctx: &ConnectionContext, action: &str, target: &str) -> Verdict {
        let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let req = Request::for_target(action, target, ctx).expect("request");
        evaluate(&docs, &req, ctx).expect("evaluate").verdict
    }

    /// Own request topic publishable; own replies receivable and subscribable, never publishable;
    /// another serial's replies not publishable either.
    fn assert_replies_read_only(docs: &[String], me: &ConnectionContext, serial: &str) {
        let request = format!("P/{serial}/deleterecords/r1");
        assert_eq!(verdict(docs, me, "iot:Publish", &request), Verdict::Allow);
        for reply in ["accepted", "rejected"] {
            let own = format!("{request}/{reply}");
            assert_eq!(
                verdict(docs, me, "iot:Publish", &own),
                Verdict::ExplicitDeny,
                "{own}"
            );
            assert_eq!(verdict(docs, me, "iot:Receive", &own), Verdict::Allow);
            assert_eq!(verdict(docs, me, "iot:Subscribe", &own), Verdict::Allow);
            let filter = format!("P/{serial}/deleterecords/+/{reply}");
            assert_eq!(verdict(docs, me, "iot:Subscribe", &filter), Verdict::Allow);
            let foreign = format!("P/SN-OTHER/deleterecords/r1/{reply}");
            assert_eq!(
                verdict(docs, me, "iot:Publish", &foreign),
                Verdict::ExplicitDeny
            );
        }
    }

    fn assert_lint_clean(docs: &[String]) {
        let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let serious: Vec<_> = lint(&docs)
            .expect("lint")
            .into_iter()
            .filter(|f| f.severity >= Severity::Medium)
            .collect();
        assert!(serious.is_empty(), "{serious:#?}");
    }

    #[test]
    fn device_policy_never_lets_a_device_publish_replies() {
        let scope = ArnScope::new("eu-west-1", ACCOUNT).expect("scope");
        let docs = device_policy(&scope, &Serial::parse("SN1").expect("serial")).expect("fits");
        let me = ctx("SN1", "eu-west-1");
        assert_replies_read_only(&docs, &me, "SN1");
        assert_eq!(
            verdict(&docs, &me, "iot:Publish", "P/SN1/telemetry"),
            Verdict::Allow
        );
        // The rotator's requests are the device's to send, its answers are not.
        for (topic, allowed) in [
            ("P/SN1/certificates/rotate", Verdict::Allow),
            ("P/SN1/certificates/confirm", Verdict::Allow),
            ("P/SN1/certificates/rotate/accepted", Verdict::ExplicitDeny),
            ("P/SN1/certificates/rotate/required", Verdict::ExplicitDeny),
            ("P/SN1/certificates/confirm/rejected", Verdict::ExplicitDeny),
            // Below a reply too: a subscriber to `.../accepted/#` would take it for one.
            (
                "P/SN1/certificates/rotate/accepted/x",
                Verdict::ExplicitDeny,
            ),
            ("P/SN1/deleterecords/r1/accepted/x", Verdict::ExplicitDeny),
        ] {
            assert_eq!(
                verdict(&docs, &me, "iot:Publish", topic),
                allowed,
                "{topic}"
            );
        }
        assert_lint_clean(&docs);
        let check = ScopeCheck::new("eu-west-1", ACCOUNT, "P/{id}/")
            .with_context(|id| ctx(id, "eu-west-1"))
            .require_attachment(false);
        assert_eq!(check.read_only_suffixes.len(), 2);
        assert_eq!(
            prove_scoped_to_identity(
                &docs.iter().map(String::as_str).collect::<Vec<_>>(),
                &check,
                "SN1",
                "SN2"
            ),
            Ok(())
        );
    }

    #[test]
    fn operator_policy_never_lets_an_operator_publish_replies() {
        let me = ctx(PRINCIPAL, "eu-west-1");
        let scope = ArnScope::new("eu-west-1", ACCOUNT).expect("scope");
        for n in [0, 1, 20, 100] {
            let owned = serials(n);
            let docs = operator_policy(&scope, PRINCIPAL, &owned).expect("fits");
            // The Deny is stated once, in the first document, and covers every document's grants.
            let denies: usize = docs.iter().map(|d| d.matches(r#""Deny""#).count()).sum();
            assert_eq!(denies, 1, "{n}");
            assert!(docs[0].contains(r#""Deny""#));
            for s in owned.iter().take(1).chain(owned.last()) {
                assert_replies_read_only(&docs, &me, s.as_str());
            }
            assert_lint_clean(&docs);
        }
    }

    /// The most serials that fit, found by asking the renderer itself.
    fn capacity(scope: &ArnScope) -> usize {
        let mut n = 0;
        while operator_policy(scope, PRINCIPAL, &serials(n + 1)).is_ok() {
            n += 1;
            assert!(n < 1000, "no limit");
        }
        n
    }

    #[test]
    fn policy_too_large_is_exactly_past_capacity() {
        // With 13-character serials (measured: 117, 108 and 98); longer partition and region
        // names leave less room, and the reply Deny costs about one serial.
        for (region, at_least) in [
            ("eu-west-1", 110),
            ("cn-north-1", 100),
            ("us-gov-west-1", 95),
        ] {
            let scope = ArnScope::new(region, ACCOUNT).expect("scope");
            let max = capacity(&scope);
            assert!((at_least..=130).contains(&max), "{region}: capacity {max}");
            let docs = operator_policy(&scope, PRINCIPAL, &serials(max)).expect("fits");
            assert!(docs.len() <= MAX_DOCUMENTS);
            for d in &docs {
                assert!(
                    policy_size(d) <= MAX_POLICY_CHARS,
                    "{region}: {}",
                    policy_size(d)
                );
            }
            // Packed tightly: no document but the last could take another serial (both of its
            // resources and their separators).
            let (topic, filter) = scope
                .namespace("SERIAL-000000", "deleterecords/*")
                .expect("names");
            let per_serial = topic.len() + filter.len() + 6;
            for d in &docs[..docs.len() - 1] {
                assert!(policy_size(d) + per_serial > MAX_POLICY_CHARS, "{region}");
            }
            assert_eq!(
                operator_policy(&scope, PRINCIPAL, &serials(max + 1)),
                Err(Reason::PolicyTooLarge),
                "{region}"
            );
            let me = ctx(PRINCIPAL, region);
            let owned = serials(max);
            for s in owned.iter().step_by(9).chain(owned.last()) {
                assert_replies_read_only(&docs, &me, s.as_str());
            }
        }
    }

    #[test]
    fn arns_use_the_partition_of_the_region() {
        for (region, partition) in [
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
        ] {
            let scope = ArnScope::new(region, ACCOUNT).expect("scope");
            assert_eq!(scope.partition(), partition);
            let prefix = format!("arn:{partition}:iot:{region}:{ACCOUNT}:");
            let device = device_policy(&scope, &Serial::parse("SN1").expect("serial"))
                .expect("device policy");
            let operator =
                operator_policy(&scope, PRINCIPAL, &serials(30)).expect("operator policy");
            for doc in device.iter().chain(&operator) {
                let v: serde_json::Value = serde_json::from_str(doc).expect("json");
                let resources = v["Statement"]
                    .as_array()
                    .expect("statements")
                    .iter()
                    .flat_map(|s| s["Resource"].as_array().expect("resources").clone());
                for r in resources {
                    let r = r.as_str().expect("string");
                    assert!(r.starts_with(&prefix), "{region}: {r}");
                }
                if partition != "aws" {
                    assert!(!doc.contains("arn:aws:"), "{region}: {doc}");
                }
            }
            // The evaluator builds request ARNs in the same partition, so the grants apply.
            let me = ctx("SN1", region);
            assert_eq!(
                verdict(&device, &me, "iot:Connect", "SN1"),
                Verdict::Allow,
                "{region}"
            );
            assert_replies_read_only(&device, &me, "SN1");
            let op = ctx(PRINCIPAL, region);
            assert_replies_read_only(&operator, &op, "SERIAL-000029");
        }
    }

    #[test]
    fn cn_and_gov_renderings() {
        let sn1 = Serial::parse("SN1").expect("serial");
        let cn = ArnScope::new("cn-north-1", ACCOUNT).expect("scope");
        assert_eq!(
            device_policy(&cn, &sn1).expect("policy"),
            vec![format!(
                concat!(
                    r#"{{"Version":"2012-10-17","Statement":["#,
                    r#"{{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws-cn:iot:cn-north-1:{a}:client/SN1"]}},"#,
                    r#"{{"Effect":"Deny","Action":["iot:Publish"],"Resource":["arn:aws-cn:iot:cn-north-1:{a}:topic/P/*/deleterecords/*/accepted*","arn:aws-cn:iot:cn-north-1:{a}:topic/P/*/deleterecords/*/rejected*","#,
                    r#""arn:aws-cn:iot:cn-north-1:{a}:topic/P/*/certificates/rotate/accepted*","arn:aws-cn:iot:cn-north-1:{a}:topic/P/*/certificates/rotate/rejected*","#,
                    r#""arn:aws-cn:iot:cn-north-1:{a}:topic/P/*/certificates/rotate/required*","arn:aws-cn:iot:cn-north-1:{a}:topic/P/*/certificates/confirm/accepted*","#,
                    r#""arn:aws-cn:iot:cn-north-1:{a}:topic/P/*/certificates/confirm/rejected*"]}},"#,
                    r#"{{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws-cn:iot:cn-north-1:{a}:topic/P/SN1/*"]}},"#,
                    r#"{{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws-cn:iot:cn-north-1:{a}:topicfilter/P/SN1/*"]}}]}}"#
                ),
                a = ACCOUNT
            )]
        );
        let gov = ArnScope::new("us-gov-west-1", ACCOUNT).expect("scope");
        let docs = operator_policy(&gov, PRINCIPAL, &[sn1]).expect("policy");
        assert_eq!(
            docs,
            vec![format!(
                concat!(
                    r#"{{"Version":"2012-10-17","Statement":["#,
                    r#"{{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws-us-gov:iot:us-gov-west-1:{a}:client/{p}"]}},"#,
                    r#"{{"Effect":"Deny","Action":["iot:Publish"],"Resource":["arn:aws-us-gov:iot:us-gov-west-1:{a}:topic/P/*/deleterecords/*/accepted*","arn:aws-us-gov:iot:us-gov-west-1:{a}:topic/P/*/deleterecords/*/rejected*","#,
                    r#""arn:aws-us-gov:iot:us-gov-west-1:{a}:topic/P/*/certificates/rotate/accepted*","arn:aws-us-gov:iot:us-gov-west-1:{a}:topic/P/*/certificates/rotate/rejected*","#,
                    r#""arn:aws-us-gov:iot:us-gov-west-1:{a}:topic/P/*/certificates/rotate/required*","arn:aws-us-gov:iot:us-gov-west-1:{a}:topic/P/*/certificates/confirm/accepted*","#,
                    r#""arn:aws-us-gov:iot:us-gov-west-1:{a}:topic/P/*/certificates/confirm/rejected*"]}},"#,
                    r#"{{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws-us-gov:iot:us-gov-west-1:{a}:topic/P/SN1/deleterecords/*"]}},"#,
                    r#"{{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws-us-gov:iot:us-gov-west-1:{a}:topicfilter/P/SN1/deleterecords/*"]}}]}}"#
                ),
                a = ACCOUNT,
                p = PRINCIPAL
            )]
        );
    }

    #[test]
    fn partition_can_be_overridden_and_is_validated() {
        let s = ArnScope::with_partition("aws-cn", "cn-north-1", ACCOUNT).expect("scope");
        assert_eq!(s, ArnScope::new("cn-north-1", ACCOUNT).expect("scope"));
        let s = ArnScope::with_partition("aws-iso-e", "eu-isoe-west-1", ACCOUNT).expect("scope");
        assert_eq!(s.partition(), "aws-iso-e");
        let long = "aws-x".repeat(10);
        for bad in ["", "*", "aws*", "AWS", "azure", "aws:cn", long.as_str()] {
            assert!(
                ArnScope::with_partition(bad, "eu-west-1", ACCOUNT).is_err(),
                "{bad:?}"
            );
        }
        assert!(ArnScope::with_partition("aws", "*", ACCOUNT).is_err());
        assert!(ArnScope::with_partition("aws", "eu-west-1", "1").is_err());
    }
}
