//! The local Lambda runtime's Invoke API (`cargo lambda watch`), as AWS IoT calls functions: the
//! rules engine asynchronously (errors only logged), the custom authorizer and the handshake
//! validator synchronously, within a time limit, failing closed. At most [`Lambda::concurrency`]
//! invocations of a function are in flight; the others wait their turn, as Lambda's queue holds
//! asynchronous invocations beyond a function's concurrency (the local runtime serves that many
//! instances and loses requests queued beyond them).

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// In-flight invocations per function unless set otherwise: `cargo lambda watch`'s default
/// concurrency (`FLEETGUARD_LAMBDA_CONCURRENCY` for the binary; the load run sets its own).
pub const DEFAULT_CONCURRENCY: usize = 1;
/// Longest wait for a turn.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(60);

/// Where functions are invoked: set once the local runtime is up (a gateway can start before it).
#[derive(Default)]
pub struct Lambda {
    endpoint: RwLock<Option<String>>,
    /// In-flight invocations per function (0: [`DEFAULT_CONCURRENCY`]).
    concurrency: std::sync::atomic::AtomicUsize,
    turns: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Built on first use, then reused (it loads the system's root certificates).
    client: std::sync::OnceLock<fleetguard_aws::http::HttpClient>,
}

impl Lambda {
    pub fn set_endpoint(&self, endpoint: &str) {
        *self.endpoint.write().unwrap_or_else(|e| e.into_inner()) = Some(endpoint.to_owned());
    }

    /// At most `n` invocations of each function in flight (the local runtime's `--concurrency`).
    pub fn set_concurrency(&self, n: usize) {
        self.concurrency
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn turn(&self, function: &str) -> Arc<Semaphore> {
        let n = match self.concurrency.load(std::sync::atomic::Ordering::Relaxed) {
            0 => DEFAULT_CONCURRENCY,
            n => n,
        };
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        turns
            .entry(function.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(n)))
            .clone()
    }

    pub fn endpoint(&self) -> Option<String> {
        self.endpoint
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Invokes `function` with `event` and returns its answer within `timeout` of its turn. An
    /// error for no runtime, a transport failure, a status other than 200, a function error or an
    /// answer that is not JSON.
    pub async fn invoke(
        &self,
        function: &str,
        event: &Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let endpoint = self
            .endpoint()
            .ok_or("no local Lambda runtime configured")?;
        // Waiting for a turn is bounded apart: Lambda would scale out where the local runtime
        // queues, so a burst waits its turn (up to [`TURN_TIMEOUT`]) and then has `timeout`.
        let turn = self.turn(function);
        let _permit = tokio::time::timeout(TURN_TIMEOUT, turn.acquire())
            .await
            .map_err(|_| format!("{function}: no turn within {TURN_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
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
