//! The authorizer's answer to AWS IoT Core (custom-auth-lambda), and the check that it keeps to
//! the contract.

use iot_policy::{policy_size, MAX_POLICY_CHARS};
use serde::{Deserialize, Serialize};

/// Shortest `disconnectAfterInSeconds` / `refreshAfterInSeconds` AWS accepts.
pub const MIN_DURATION_SECS: u32 = 300;
/// Longest `disconnectAfterInSeconds` / `refreshAfterInSeconds` AWS accepts.
pub const MAX_DURATION_SECS: u32 = 86_400;
/// Most policy documents in one response.
pub const MAX_POLICY_DOCUMENTS: usize = super::render::MAX_DOCUMENTS;
/// The principal id of every deny (no real principal id has this form: ours are `op`/`dv` + 40 hex).
pub const DENIED_PRINCIPAL: &str = "denied";

/// The response. Every field is always present and never `null`: the contract does not mark any
/// of them optional, so a deny carries fixed safe values (principal `denied`, 300 s, no policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub is_authenticated: bool,
    pub principal_id: String,
    pub disconnect_after_in_seconds: u32,
    pub refresh_after_in_seconds: u32,
    /// Each a compact JSON policy document.
    pub policy_documents: Vec<String>,
}

impl AuthorizerResponse {
    /// The deny: not authenticated, nothing granted.
    pub fn deny() -> Self {
        Self {
            is_authenticated: false,
            principal_id: DENIED_PRINCIPAL.to_owned(),
            disconnect_after_in_seconds: MIN_DURATION_SECS,
            refresh_after_in_seconds: MIN_DURATION_SECS,
            policy_documents: Vec::new(),
        }
    }

    /// The response as JSON for the Lambda runtime.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "isAuthenticated": self.is_authenticated,
            "principalId": self.principal_id,
            "disconnectAfterInSeconds": self.disconnect_after_in_seconds,
            "refreshAfterInSeconds": self.refresh_after_in_seconds,
            "policyDocuments": self.policy_documents,
        })
    }
}

fn has_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.iter().any(has_null),
        serde_json::Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

/// Checks a response against the AWS contract and our own rules: principal id
/// `[A-Za-z0-9]{1,128}`; both durations in 300..=86400 and refresh ≤ disconnect; at most 10
/// documents, each a JSON object of at most 2,048 non-whitespace characters that the offline
/// evaluator parses; no `null` anywhere; a deny grants nothing (no documents).
pub fn validate_response(r: &AuthorizerResponse) -> Result<(), String> {
    check_response(r, true)
}

/// [`validate_response`] with or without running each document through the offline policy
/// parser (the decision path skips it: its documents are typed renderings, and the parse is most
/// of the cost of a large operator's decision).
pub(crate) fn check_response(r: &AuthorizerResponse, parse_policies: bool) -> Result<(), String> {
    let mut problems = Vec::new();
    if !aws_principal_id(&r.principal_id) {
        problems.push("principalId must match [A-Za-z0-9]{1,128}".to_owned());
    }
    for (name, v) in [
        ("disconnectAfterInSeconds", r.disconnect_after_in_seconds),
        ("refreshAfterInSeconds", r.refresh_after_in_seconds),
    ] {
        if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&v) {
            problems.push(format!(
                "{name} = {v} is outside {MIN_DURATION_SECS}..={MAX_DURATION_SECS}"
            ));
        }
    }
    if r.refresh_after_in_seconds > r.disconnect_after_in_seconds {
        problems.push("refreshAfterInSeconds exceeds disconnectAfterInSeconds".to_owned());
    }
    if r.policy_documents.len() > MAX_POLICY_DOCUMENTS {
        problems.push(format!(
            "{} policy documents (at most {MAX_POLICY_DOCUMENTS})",
            r.policy_documents.len()
        ));
    }
    if r.is_authenticated && r.policy_documents.is_empty() {
        problems.push("an authenticated response carries no policy".to_owned());
    }
    if !r.is_authenticated && !r.policy_documents.is_empty() {
        problems.push("a deny carries policy documents".to_owned());
    }
    if has_null(&r.to_json()) {
        problems.push("response contains null".to_owned());
    }
    for (i, doc) in r.policy_documents.iter().enumerate() {
        let size = policy_size(doc);
        if size > MAX_POLICY_CHARS {
            problems.push(format!(
                "document {i} has {size} characters (at most {MAX_POLICY_CHARS})"
            ));
        }
        match serde_json::from_str::<serde_json::Value>(doc) {
            Ok(v) if v.is_object() => {
                if has_null(&v) {
                    problems.push(format!("document {i} contains null"));
                }
            }
            _ => problems.push(format!("document {i} is not a JSON object")),
        }
        if parse_policies {
            if let Err(e) = iot_policy::PolicyDocument::parse(i, doc) {
                problems.push(format!("document {i} does not parse as an IoT policy: {e}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// AWS's contract for a returned principal id: `[A-Za-z0-9]{1,128}` (fleetguard returns a minted
/// [`crate::model::PrincipalId`], a certificate id, or the denied placeholder).
pub fn aws_principal_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}
