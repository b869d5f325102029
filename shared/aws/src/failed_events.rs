//! Failed asynchronous events: what Lambda sends to a function's on-failure destination (the stack's
//! `FailedEventsQueue`) once every attempt failed, read back by `fleetctl events list` and replayed by
//! `fleetctl events replay`. The record is Lambda's (invocation-async-retain-records): `requestContext`
//! (`functionArn`, `condition`, `approximateInvokeCount`), `requestPayload` (the event as the function
//! got it), `responsePayload` (its last error).

use crate::aws_error;
use fleetguard_domain::{Error, Result};
use serde_json::Value;

/// One failed event, as the queue holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedEvent {
    pub message_id: String,
    /// The function's name (from `requestContext.functionArn`).
    pub function: String,
    /// `RetriesExhausted`, `EventAgeExceeded`...
    pub condition: String,
    pub attempts: u64,
    pub timestamp: String,
    /// The event as the function got it.
    pub event: Value,
    /// The last error the function gave (`responsePayload.errorMessage`), if any.
    pub error: Option<String>,
    /// For deleting it once replayed (valid while the message is in flight).
    pub receipt: String,
}

impl FailedEvent {
    /// Parses Lambda's destination record. A body that is not one is an error naming what is missing.
    pub fn parse(message_id: &str, receipt: &str, body: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(body)
            .map_err(|e| Error::Corrupt(format!("failed event {message_id}: not JSON: {e}")))?;
        let ctx = &v["requestContext"];
        let function_arn = ctx["functionArn"].as_str().ok_or_else(|| {
            Error::Corrupt(format!(
                "failed event {message_id}: no requestContext.functionArn"
            ))
        })?;
        // arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
        let function = function_arn
            .split(":function:")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "failed event {message_id}: bad functionArn {function_arn}"
                ))
            })?;
        if v.get("requestPayload").is_none() {
            return Err(Error::Corrupt(format!(
                "failed event {message_id}: no requestPayload"
            )));
        }
        Ok(Self {
            message_id: message_id.to_owned(),
            function: function.to_owned(),
            condition: ctx["condition"].as_str().unwrap_or_default().to_owned(),
            attempts: ctx["approximateInvokeCount"].as_u64().unwrap_or_default(),
            timestamp: v["timestamp"].as_str().unwrap_or_default().to_owned(),
            event: v["requestPayload"].clone(),
            error: v["responsePayload"]["errorMessage"]
                .as_str()
                .map(str::to_owned),
            receipt: receipt.to_owned(),
        })
    }
}

/// Lambda's destination record for an event that failed `attempts` times with `error`.
pub fn destination_record(
    function_arn: &str,
    request_id: &str,
    timestamp: &str,
    attempts: u32,
    event: &Value,
    error: &str,
) -> Value {
    serde_json::json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": error},
    })
}

/// The queue of failed events.
#[derive(Clone, Debug)]
pub struct FailedEvents {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl FailedEvents {
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(sdk),
            queue_url: queue_url.into(),
        }
    }

    /// By queue name (`<stack>-failed-events`), as fleetctl knows it.
    pub async fn by_name(sdk: &aws_config::SdkConfig, name: &str) -> Result<Self> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let url = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| aws_error("sqs:GetQueueUrl", e))?
            .queue_url
            .ok_or_else(|| Error::Corrupt(format!("GetQueueUrl {name}: no URL")))?;
        Ok(Self {
            sqs,
            queue_url: url,
        })
    }

    /// The queue whose ARN is `arn` (an `OnFailure` destination), looked up with `lookup` (Lambda's own
    /// view), written with `send` (the function's role, as Lambda writes a destination record).
    pub async fn for_arn(
        lookup: &aws_config::SdkConfig,
        send: &aws_config::SdkConfig,
        arn: &str,
    ) -> Result<Self> {
        let name = arn.rsplit(':').next().unwrap_or_default();
        let url = Self::by_name(lookup, name).await?.queue_url;
        Ok(Self::new(send, url))
    }

    /// Sends one destination record (what Lambda does after the last failed attempt).
    pub async fn send(&self, record: &Value) -> Result<()> {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(record.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("sqs:SendMessage", e))
    }

    /// Up to `max` failed events (at most 10 per call, SQS's limit), held from other readers for
    /// `hold_secs` (0: only a look; they stay visible). A message that is not Lambda's record comes
    /// back as an error entry, never dropped.
    pub async fn receive(&self, max: i32, hold_secs: i32) -> Result<Vec<Result<FailedEvent>>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10))
            .visibility_timeout(hold_secs)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| aws_error("sqs:ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                FailedEvent::parse(
                    m.message_id().unwrap_or_default(),
                    m.receipt_handle().unwrap_or_default(),
                    m.body().unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Deletes a replayed event.
    pub async fn delete(&self, event: &FailedEvent) -> Result<()> {
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&event.receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("sqs:DeleteMessage", e))
    }
}

/// Invokes functions synchronously to replay an event (`lambda:InvokeFunction`).
#[derive(Clone, Debug)]
pub struct Invoker {
    lambda: aws_sdk_lambda::Client,
}

impl Invoker {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            lambda: aws_sdk_lambda::Client::new(sdk),
        }
    }

    /// Invokes `function` with `event` and waits for its answer: `Ok(answer)`, or `Err` with the
    /// function's error or the call's.
    pub async fn invoke(&self, function: &str, event: &Value) -> Result<Value> {
        let out = self
            .lambda
            .invoke()
            .function_name(function)
            .payload(aws_smithy_types::Blob::new(event.to_string()))
            .send()
            .await
            .map_err(|e| aws_error("lambda:InvokeFunction", e))?;
        let body = out
            .payload
            .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
            .unwrap_or_default();
        if let Some(kind) = out.function_error {
            return Err(Error::Config(format!("{function}: {kind}: {body}")));
        }
        serde_json::from_str(&body).or_else(|_| Ok(Value::String(body.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_s_record_round_trips_and_bad_ones_say_why() {
        let event = serde_json::json!({"kind": "tamper", "serial": "SN1"});
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:fg-RevokerFunction-AB12:$LATEST";
        let record = destination_record(arn, "r1", "2026-12-07T00:00:00Z", 3, &event, "boom");
        let e = FailedEvent::parse("m1", "h1", &record.to_string()).expect("parses");
        assert_eq!(e.function, "fg-RevokerFunction-AB12");
        assert_eq!((e.attempts, e.condition.as_str()), (3, "RetriesExhausted"));
        assert_eq!(e.event, event);
        assert_eq!(e.error.as_deref(), Some("boom"));
        for bad in [
            "",
            "{}",
            r#"{"requestContext":{"functionArn":"x"},"requestPayload":{}}"#,
            r#"{"requestContext":{"functionArn":"arn:aws:lambda:r:1:function:f"}}"#,
        ] {
            assert!(FailedEvent::parse("m", "h", bad).is_err(), "{bad}");
        }
    }
}
