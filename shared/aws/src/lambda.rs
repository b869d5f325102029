//! What a function's failure tells Lambda: the domain error's kind as `errorType` (throttled, a lost
//! condition, configuration, a corrupt item, ...), so the asynchronous retries, the failed-events queue
//! and the alarms say what went wrong instead of a boxed error's type name.

use fleetguard_domain::Error;
use lambda_runtime::Diagnostic;

/// The error as Lambda records it.
pub fn diagnostic(e: Error) -> Diagnostic {
    Diagnostic {
        error_type: e.error_type().to_owned(),
        error_message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::diagnostic;
    use fleetguard_domain::error::AwsErrorKind;
    use fleetguard_domain::Error;

    #[test]
    fn the_error_type_names_the_kind_of_failure() {
        let d = diagnostic(Error::aws(
            "dynamodb:PutItem",
            AwsErrorKind::Throttled,
            "slow down",
        ));
        assert_eq!(d.error_type, "AwsThrottled");
        assert!(d.error_message.contains("dynamodb:PutItem"));
        assert_eq!(diagnostic(Error::Config("x".into())).error_type, "Config");
    }
}
