//! AWS IoT data plane adapter ([`Publisher`]).
//!
//! On AWS the data plane needs the account's endpoint (`aws iot describe-endpoint --endpoint-type
//! iot:Data-ATS`): set `FLEETGUARD_IOT_DATA_ENDPOINT`, or `AWS_ENDPOINT_URL_IOT_DATA_PLANE`.

use super::aws_error;
use aws_sdk_iotdataplane::primitives::Blob;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use fleetguard_domain::ports::{Connections, Publisher};
use fleetguard_domain::{Error, Result};

#[derive(Clone, Debug)]
pub struct IotPublisher {
    client: aws_sdk_iotdataplane::Client,
}

/// AWS IoT topic limits: at most 256 bytes and 7 slashes; no wildcards in a publish topic. The emulator
/// accepts anything, AWS does not, so we check before publishing.
pub fn validate_publish_topic(topic: &str) -> Result<()> {
    let ok = !topic.is_empty()
        && topic.len() <= 256
        && topic.matches('/').count() <= 7
        && !topic.contains(['+', '#', '\0'])
        && !topic.split('/').any(str::is_empty);
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "invalid publish topic ({} bytes)",
            topic.len()
        )))
    }
}

impl IotPublisher {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self::with_endpoint(config, None)
    }

    /// With the data plane at `endpoint` when it is not the SDK's (the local gateway).
    pub fn with_endpoint(config: &aws_config::SdkConfig, endpoint: Option<&str>) -> Self {
        let mut builder = aws_sdk_iotdataplane::config::Builder::from(config);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: aws_sdk_iotdataplane::Client::from_conf(builder.build()),
        }
    }

    pub fn client(&self) -> &aws_sdk_iotdataplane::Client {
        &self.client
    }
}

impl Publisher for IotPublisher {
    async fn publish(&self, topic: &str, payload: &serde_json::Value) -> Result<()> {
        validate_publish_topic(topic)?;
        let body = serde_json::to_vec(payload).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.client
            .publish()
            .topic(topic)
            .qos(1)
            .payload(Blob::new(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iot-data:Publish", e))
    }
}

impl Connections for IotPublisher {
    async fn disconnect(&self, client_id: &str) -> Result<()> {
        match self
            .client
            .delete_connection()
            .client_id(client_id)
            .clean_session(true)
            .prevent_will_message(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Not connected right now: nothing to cut.
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(aws_error("iot-data:DeleteConnection", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::validate_publish_topic;

    #[test]
    fn publish_topics_follow_aws_limits() {
        assert!(validate_publish_topic("P/SN1/deleterecords/r1/accepted").is_ok());
        for bad in [
            "",
            "P/+/x",
            "P/#",
            "a//b",
            &"x".repeat(257),
            "a/b/c/d/e/f/g/h/i",
        ] {
            assert!(validate_publish_topic(bad).is_err(), "{bad:?}");
        }
    }
}
