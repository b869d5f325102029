//! Typed errors. Rejections (a decision with a reason code) are not errors: they are outcomes. Errors are
//! what stops us from deciding (AWS unreachable, throttled, misconfigured); on an authorization path
//! every error is a deny.

use crate::model::ValidationError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How an AWS call failed, so callers can branch without string matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    NotFound,
    /// A DynamoDB condition or transaction condition failed: someone else changed the item first.
    ConditionFailed,
    Throttled,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),
    #[error("AWS {operation} failed ({kind:?}): {message}")]
    Aws {
        operation: &'static str,
        kind: AwsErrorKind,
        message: String,
    },
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    #[error("configuration: {0}")]
    Config(String),
    /// A plain HTTP call (JWKS fetch, local invoke) failed or timed out.
    #[error("HTTP {0}")]
    Http(String),
}

impl Error {
    pub fn aws(operation: &'static str, kind: AwsErrorKind, message: impl Into<String>) -> Self {
        Self::Aws {
            operation,
            kind,
            message: message.into(),
        }
    }

    /// A stable name for what kind of failure this is (Lambda's `errorType`, alarms, logs): the
    /// variant, and for an AWS call how it failed.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "Invalid",
            Self::Aws { kind, .. } => match kind {
                AwsErrorKind::NotFound => "AwsNotFound",
                AwsErrorKind::ConditionFailed => "AwsConditionFailed",
                AwsErrorKind::Throttled => "AwsThrottled",
                AwsErrorKind::Other => "AwsError",
            },
            Self::Corrupt(_) => "Corrupt",
            Self::Config(_) => "Config",
            Self::Http(_) => "Http",
        }
    }

    pub fn is_condition_failed(&self) -> bool {
        matches!(
            self,
            Self::Aws {
                kind: AwsErrorKind::ConditionFailed,
                ..
            }
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Aws {
                kind: AwsErrorKind::NotFound,
                ..
            }
        )
    }
}
