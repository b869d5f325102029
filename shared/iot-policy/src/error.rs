//! Typed errors of the policy evaluator and linter.
//!
//! Every malformed input (policy text, request, context) maps to one of these variants; nothing in
//! the module panics on input-derived data, and a request that cannot be evaluated is an error,
//! never an allow.

/// Why a policy document, request or context could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is not valid JSON (or has a duplicate object key).
    #[error("document {doc}: invalid JSON: {message}")]
    Json {
        /// Index of the document in the input slice.
        doc: usize,
        /// Parser message.
        message: String,
    },
    /// The document has more than 2,048 non-whitespace characters (AWS IoT policy size quota).
    #[error("document {doc}: {chars} characters (excluding whitespace) exceeds the AWS IoT limit of {limit}")]
    TooLarge {
        /// Index of the document.
        doc: usize,
        /// Counted characters.
        chars: usize,
        /// The limit (2,048).
        limit: usize,
    },
    /// The document is JSON but not a valid policy (wrong type, missing or conflicting element).
    #[error("document {doc}: {path}: {message}")]
    Invalid {
        /// Index of the document.
        doc: usize,
        /// Where in the document, e.g. `Statement[1].Resource`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An element name the policy grammar does not know (typo'd keys are rejected, not ignored).
    #[error("document {doc}: {path}: unknown key {key:?}")]
    UnknownKey {
        /// Index of the document.
        doc: usize,
        /// Enclosing element.
        path: String,
        /// The offending key.
        key: String,
    },
    /// `Version` other than `2012-10-17` / `2008-10-17`.
    #[error("document {doc}: unsupported Version {version:?} (expected \"2012-10-17\")")]
    UnsupportedVersion {
        /// Index of the document.
        doc: usize,
        /// The given version.
        version: String,
    },
    /// A condition operator this evaluator does not implement; rejected loudly, never ignored.
    #[error("document {doc}: {path}: unknown or unsupported condition operator {operator:?}")]
    UnknownOperator {
        /// Index of the document.
        doc: usize,
        /// Where.
        path: String,
        /// The operator text.
        operator: String,
    },
    /// A `${...}` variable from a namespace AWS IoT policies do not support (e.g. `${aws:username}`).
    #[error("document {doc}: {path}: unsupported policy variable ${{{variable}}}")]
    UnsupportedVariable {
        /// Index of the document.
        doc: usize,
        /// Where.
        path: String,
        /// Variable name without `${` `}`.
        variable: String,
    },
    /// `${` without a closing `}` or an empty variable name.
    #[error("document {doc}: {path}: malformed policy variable in {text:?}")]
    MalformedVariable {
        /// Index of the document.
        doc: usize,
        /// Where.
        path: String,
        /// The whole string.
        text: String,
    },
    /// An IP address or CIDR block that does not parse.
    #[error("invalid IP address or CIDR block {0:?}")]
    InvalidCidr(String),
    /// The request itself is unusable (bad ARN, action/resource type mismatch, bad context).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Expanding multi-valued (`.List`) variables would produce too many alternatives.
    #[error("document {doc}: {path}: too many alternatives when expanding multi-valued variables")]
    TooManyExpansions {
        /// Index of the document.
        doc: usize,
        /// Where.
        path: String,
    },
}
