//! Offline AWS IoT Core policy evaluator and linter.
//!
//! * [`evaluate`] / [`PolicySet::evaluate`]: decide whether a set of IoT policy documents allows
//!   an action on a resource for a given connection ([`ConnectionContext`]), with the statements
//!   that decided it ([`Decision`]). Deny by default, an explicit Deny in any document wins, and
//!   anything that cannot be evaluated (malformed JSON, unknown element, unknown condition
//!   operator, unsupported variable, oversize document, invalid request) is a [`PolicyError`],
//!   never an allow.
//! * [`lint()`]: Device Defender-style offline audit with stable finding codes ([`FindingCode`]).
//! * [`prove_scoped_to_identity`]: checks that rendered policies confine identity A to its own
//!   client id and topics and give it nothing of identity B's.
//!
//! Semantics follow the AWS IoT developer guide pages iot-policies, iot-policy-variables,
//! basic-policy-variables, thing-policy-variables, cert-policy-variables, pub-sub-policy,
//! connect-policy and iot-action-resources, and the IAM user guide where they defer to it. The
//! decisions taken where those pages are silent or ambiguous are documented on the submodules:
//! [`document`] (grammar, Version, size), [`variables`] (substitution), [`condition`]
//! (operators and keys), [`arn`] (resource types), [`mod@lint`] (finding heuristics).
//!
//! The module only refers to its own submodules through `super::`, so it can be moved between
//! crates unchanged.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod arn;
pub mod cidr;
pub mod condition;
pub mod context;
pub mod document;
pub mod error;
pub mod eval;
mod glob;
mod json;
pub mod lint;
pub mod prove;
pub mod variables;

#[cfg(test)]
mod tests_docs;
#[cfg(test)]
mod tests_lint;
#[cfg(test)]
mod tests_prop;

pub use arn::{
    arn_for_action, client_arn, iot_arn, parse_arn, partition_for_region, resource_type_for_action,
    thing_arn, topic_arn, topic_filter_arn, ParsedArn, ResourceType, KNOWN_ACTIONS,
};
pub use context::{canonical_cert_field, ConnectionContext, Request};
pub use document::{
    policy_size, ActionList, Condition, Effect, Operator, PolicyDocument, Qualifier, ResourceList,
    Statement, MAX_POLICY_CHARS,
};
pub use error::PolicyError;
pub use eval::{Decision, PolicySet, StatementRef, Unresolved, Verdict};
pub use lint::{lint, lint_documents, Finding, FindingCode, Severity};
pub use prove::{prove_scoped_to_identity, ScopeCheck};

pub use variables::Template;

/// Parses `docs` and evaluates one request: the one-shot form of [`PolicySet::evaluate`].
pub fn evaluate(
    docs: &[&str],
    request: &Request,
    ctx: &ConnectionContext,
) -> Result<Decision, PolicyError> {
    PolicySet::parse(docs)?.evaluate(request, ctx)
}
