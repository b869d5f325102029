//! The A ≠ B isolation check: do these policies confine identity A to its own client id and
//! topic namespace, and give it nothing of identity B's?
//!
//! Usable on the fleet device policy, on policies rendered by the custom authorizer (pass a
//! [`ScopeCheck::context_for`] that builds the authorizer's connection, and
//! `require_attachment = false`), and on the policy loaded from the SAM template.

use super::arn::{client_arn, thing_arn, topic_arn, topic_filter_arn};
use super::context::{ConnectionContext, Request};
use super::eval::PolicySet;
use std::fmt;

/// Parameters of [`prove_scoped_to_identity`].
pub struct ScopeCheck {
    /// Region of the ARNs probed.
    pub region: String,
    /// Account of the ARNs probed.
    pub account: String,
    /// Topic namespace of an identity with `{id}` standing for it, e.g. `P/{id}/`.
    pub topic_prefix: String,
    /// Sub-topics probed under each namespace (default `telemetry`, `deleterecords/1`, `x/y/z`).
    pub probe_suffixes: Vec<String>,
    /// Actions A must be allowed on its own namespace (default Publish, Subscribe, Receive).
    pub own_actions: Vec<String>,
    /// Sub-topics of A's own namespace that A must never publish (nor retain) but may still
    /// subscribe to and receive, as far as `own_actions` asks (default the delete-record replies
    /// `deleterecords/1/accepted` and `deleterecords/1/rejected`: a device that could publish
    /// them could forge a reply another subscriber trusts).
    pub read_only_suffixes: Vec<String>,
    /// Whether A must be allowed to connect with its own id (default true).
    pub require_connect: bool,
    /// Whether everything must be denied once A's thing is not attached (default true; set false
    /// for custom-authorizer policies, which do not involve thing attachment).
    pub require_attachment: bool,
    /// Builds the connection context of an identity (default: client id = thing name = id,
    /// attached, in `region`/`account`).
    pub context_for: Box<dyn Fn(&str) -> ConnectionContext>,
}

impl fmt::Debug for ScopeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeCheck")
            .field("region", &self.region)
            .field("account", &self.account)
            .field("topic_prefix", &self.topic_prefix)
            .field("probe_suffixes", &self.probe_suffixes)
            .field("own_actions", &self.own_actions)
            .field("read_only_suffixes", &self.read_only_suffixes)
            .field("require_connect", &self.require_connect)
            .field("require_attachment", &self.require_attachment)
            .finish_non_exhaustive()
    }
}

impl ScopeCheck {
    /// Defaults for a fleet whose devices own `topic_prefix` (with `{id}`).
    pub fn new(region: &str, account: &str, topic_prefix: &str) -> ScopeCheck {
        let (r, a) = (region.to_owned(), account.to_owned());
        ScopeCheck {
            region: region.to_owned(),
            account: account.to_owned(),
            topic_prefix: topic_prefix.to_owned(),
            probe_suffixes: vec!["telemetry".into(), "deleterecords/1".into(), "x/y/z".into()],
            own_actions: vec![
                "iot:Publish".into(),
                "iot:Subscribe".into(),
                "iot:Receive".into(),
            ],
            read_only_suffixes: vec![
                "deleterecords/1/accepted".into(),
                "deleterecords/1/rejected".into(),
            ],
            require_connect: true,
            require_attachment: true,
            context_for: Box::new(move |id| ConnectionContext::device(id, true).in_account(&r, &a)),
        }
    }

    /// Replaces the context builder (builder style).
    pub fn with_context(mut self, f: impl Fn(&str) -> ConnectionContext + 'static) -> ScopeCheck {
        self.context_for = Box::new(f);
        self
    }

    /// Sets [`ScopeCheck::require_attachment`] (builder style).
    pub fn require_attachment(mut self, yes: bool) -> ScopeCheck {
        self.require_attachment = yes;
        self
    }

    fn prefix(&self, id: &str) -> String {
        self.topic_prefix.replace("{id}", id)
    }

    fn arn(&self, action: &str, name: &str) -> String {
        let (r, a) = (self.region.as_str(), self.account.as_str());
        match action {
            "iot:Connect" => client_arn(r, a, name),
            "iot:Subscribe" => topic_filter_arn(r, a, name),
            "iot:GetThingShadow" | "iot:UpdateThingShadow" | "iot:DeleteThingShadow" => {
                thing_arn(r, a, name)
            }
            _ => topic_arn(r, a, name),
        }
    }
}

const TOPIC_ACTIONS: &[&str] = &[
    "iot:Publish",
    "iot:Receive",
    "iot:RetainPublish",
    "iot:Subscribe",
];
const SHADOW_ACTIONS: &[&str] = &[
    "iot:GetThingShadow",
    "iot:UpdateThingShadow",
    "iot:DeleteThingShadow",
];

struct Prober<'a> {
    set: PolicySet,
    check: &'a ScopeCheck,
    violations: Vec<String>,
}

impl Prober<'_> {
    fn allowed(&mut self, ctx: &ConnectionContext, action: &str, name: &str) -> Option<bool> {
        let req = Request::new(action, self.check.arn(action, name));
        match self.set.evaluate(&req, ctx) {
            Ok(d) => Some(d.is_allowed()),
            Err(e) => {
                self.violations
                    .push(format!("cannot evaluate {action} on {name:?}: {e}"));
                None
            }
        }
    }

    fn expect(&mut self, ctx: &ConnectionContext, who: &str, action: &str, name: &str, want: bool) {
        if let Some(got) = self.allowed(ctx, action, name) {
            if got != want {
                let verb = if want {
                    "must be ALLOWED"
                } else {
                    "must be DENIED"
                };
                self.violations.push(format!(
                    "{who}: {action} on {name:?} {verb} but was {}",
                    if got { "allowed" } else { "denied" }
                ));
            }
        }
    }
}

/// Checks that `docs` let identity `a` (context from `check.context_for`) connect only as `a` and
/// use only its own topic namespace, and deny it every topic, filter and shadow of `b`, including
/// when it connects with another client id (`b`, `+`, `#`, `*`, `a*`) and subscribes with MQTT
/// wildcards (`#`, `P/+/...`, `P/#`). A may not publish its own `read_only_suffixes` but keeps
/// Subscribe and Receive on them. With `require_attachment`, also checks that nothing is
/// allowed once `a`'s thing is not attached. Returns every violation found, one per line.
pub fn prove_scoped_to_identity(
    docs: &[&str],
    check: &ScopeCheck,
    a: &str,
    b: &str,
) -> Result<(), String> {
    if a == b {
        return Err("identities A and B must differ".to_owned());
    }
    let set = PolicySet::parse(docs).map_err(|e| format!("policy does not parse: {e}"))?;
    let mut p = Prober {
        set,
        check,
        violations: Vec::new(),
    };
    let ctx_a = (check.context_for)(a);
    let own = check.prefix(a);
    let other = check.prefix(b);

    // A's own rights.
    if check.require_connect {
        p.expect(&ctx_a, "A", "iot:Connect", a, true);
    }
    for action in &check.own_actions {
        for s in &check.probe_suffixes {
            p.expect(&ctx_a, "A", action, &format!("{own}{s}"), true);
        }
    }
    for s in &check.read_only_suffixes {
        let topic = format!("{own}{s}");
        for action in ["iot:Publish", "iot:RetainPublish"] {
            p.expect(&ctx_a, "A", action, &topic, false);
        }
        for action in ["iot:Subscribe", "iot:Receive"] {
            if check.own_actions.iter().any(|a| a == action) {
                p.expect(&ctx_a, "A", action, &topic, true);
            }
        }
    }

    // Client ids A might try. A connection that is allowed to connect with a foreign id is a
    // violation by itself; every variant (allowed to connect or not) must get nothing of B's.
    let wild_root = check
        .topic_prefix
        .split("{id}")
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut filters: Vec<String> = check
        .probe_suffixes
        .iter()
        .map(|s| format!("{wild_root}+/{s}"))
        .collect();
    filters.extend([
        "#".to_owned(),
        "+".to_owned(),
        format!("{wild_root}#"),
        format!("{other}#"),
        format!("{other}+"),
        format!("{wild_root}*"),
    ]);
    let mut variants: Vec<(String, ConnectionContext)> = vec![("A".to_owned(), ctx_a.clone())];
    for c in [
        b.to_owned(),
        "+".to_owned(),
        "#".to_owned(),
        "*".to_owned(),
        format!("{a}*"),
    ] {
        let mut same_thing = ctx_a.clone();
        same_thing.client_id = Some(c.clone());
        let mut as_thing = ctx_a.clone();
        as_thing.client_id = Some(c.clone());
        if ctx_a.thing_name.as_deref() == Some(a) {
            as_thing.thing_name = Some(c.clone());
            as_thing.thing_attached = false;
        }
        for (label, ctx) in [("thing A", same_thing), ("thing = client id", as_thing)] {
            let who = format!("A connecting with client id {c:?} ({label})");
            p.expect(&ctx, &who, "iot:Connect", &c, false);
            variants.push((who, ctx));
        }
    }
    for (who, ctx) in &variants {
        p.expect(ctx, who, "iot:Connect", b, false);
        for action in TOPIC_ACTIONS {
            for s in &check.probe_suffixes {
                p.expect(ctx, who, action, &format!("{other}{s}"), false);
            }
        }
        for f in &filters {
            p.expect(ctx, who, "iot:Subscribe", f, false);
        }
        for action in SHADOW_ACTIONS {
            p.expect(ctx, who, action, b, false);
        }
    }

    if check.require_attachment {
        let mut detached = ctx_a.clone();
        detached.thing_attached = false;
        let who = "A with its thing not attached";
        p.expect(&detached, who, "iot:Connect", a, false);
        for action in TOPIC_ACTIONS {
            for s in &check.probe_suffixes {
                p.expect(&detached, who, action, &format!("{own}{s}"), false);
            }
        }
        for action in SHADOW_ACTIONS {
            p.expect(&detached, who, action, a, false);
        }
    }

    if p.violations.is_empty() {
        Ok(())
    } else {
        Err(p.violations.join("\n"))
    }
}
