//! The local Lambda runtime's Invoke API (`cargo lambda watch`), as AWS IoT calls functions: the
//! rules engine asynchronously (errors only logged), the custom authorizer and the handshake
//! validator synchronously, within a time limit, failing closed.

use serde_json::Value;
use std::sync::RwLock;
use std::time::Duration;

/// Where functions are invoked: set once the local runtime is up (a gateway can start before it).
#[derive(Default)]
pub struct Lambda {
    endpoint: RwLock<Option<String>>,
    /// Built on first use, then reused (it loads the system's root certificates).
    client: std::sync::OnceLock<fleetguard_aws::http::HttpClient>,
}

impl Lambda {
    pub fn set_endpoint(&self, endpoint: &str) {
        *self.endpoint.write().unwrap_or_else(|e| e.into_inner()) = Some(endpoint.to_owned());
    }

    pub fn endpoint(&self) -> Option<String> {
        self.endpoint
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Invokes `function` with `event` and returns its answer. An error for no runtime, a transport
    /// failure, a status other than 200, a function error or an answer that is not JSON.
    pub async fn invoke(
        &self,
        function: &str,
        event: &Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let endpoint = self
            .endpoint()
            .ok_or("no local Lambda runtime configured")?;
        let url = format!("{endpoint}/2015-03-31/functions/{function}/invocations");
        let client = match self.client.get() {
            Some(c) => c,
            None => {
                let c = fleetguard_aws::http::HttpClient::new().map_err(|e| e.to_string())?;
                self.client.get_or_init(|| c)
            }
        };
        let r = client
            .post_json(&url, event, timeout, 1 << 20)
            .await
            .map_err(|e| format!("{function}: {e}"))?;
        let body: Value = serde_json::from_slice(&r.body)
            .map_err(|_| format!("{function}: HTTP {}, not JSON", r.status))?;
        if r.status != 200 || body.get("errorType").is_some() {
            return Err(format!("{function}: HTTP {} {body}", r.status));
        }
        Ok(body)
    }
}
