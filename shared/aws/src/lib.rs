//! AWS adapters: the only place the AWS SDK is used. Clients are built once (cold start) and reused.
//!
//! Every client honours `AWS_ENDPOINT_URL`, so the same code runs against AWS, the local emulator
//! (moto, see `scripts/emulator.py`) or LocalStack.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod ca_init;
pub mod dynamodb;
pub mod enrollments;
pub mod failed_events;
pub mod http;
pub mod identities;
pub mod iot;
pub mod iot_data;
pub mod jwks;
pub mod kms;
pub mod lambda;
pub mod local;
pub mod records;
pub mod rotations;
pub mod schema;
pub mod services;
pub mod settings;
pub mod telemetry;
pub mod template;

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use fleetguard_domain::error::{AwsErrorKind, Error};

pub use aws_config::SdkConfig;

/// Loads the shared AWS configuration (region, credentials, endpoint) from the environment.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Maps an SDK error to our typed error by its AWS error code, never by message text.
pub fn aws_error<E>(operation: &'static str, err: E) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let kind = match err.code() {
        Some("ResourceNotFoundException") => AwsErrorKind::NotFound,
        Some("ConditionalCheckFailedException") => AwsErrorKind::ConditionFailed,
        Some(
            "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "LimitExceededException",
        ) => AwsErrorKind::Throttled,
        _ => AwsErrorKind::Other,
    };
    Error::aws(operation, kind, DisplayErrorContext(&err).to_string())
}
