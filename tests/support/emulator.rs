//! The emulator: one per test binary, started on 127.0.0.1, and what the tests read from it; the hostile corpus; unique names.

use super::*;

/// A running emulator. One per test binary; it exits with the test process (`--watch-parent`).
pub struct Emulator {
    pub endpoint: String,
    port: u16,
    _child: Option<Child>,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

impl Emulator {
    /// The emulator for this test process: `FLEETGUARD_TEST_ENDPOINT` if set (an emulator you run
    /// yourself), else a new one started from the project's venv.
    pub fn shared() -> &'static Emulator {
        EMULATOR.get_or_init(|| {
            if let Ok(endpoint) = std::env::var("FLEETGUARD_TEST_ENDPOINT") {
                let port = endpoint
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim_end_matches('/').parse().ok())
                    .expect("FLEETGUARD_TEST_ENDPOINT must be http://127.0.0.1:<port>");
                return Emulator {
                    endpoint,
                    port,
                    _child: None,
                };
            }
            Self::start()
        })
    }

    fn start() -> Emulator {
        let root = workspace_root();
        let python = std::env::var("FLEETGUARD_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join(".venv/bin/python"));
        assert!(
            python.exists(),
            "{} not found: run scripts/setup.sh first (it installs the pinned emulator)",
            python.display()
        );
        let port = free_port();
        let child = Command::new(python)
            .arg(root.join("scripts/emulator.py"))
            .args(["--port", &port.to_string(), "--watch-parent"])
            // What each function's role used and was refused, for scripts/iam-report.sh.
            .env(
                "FLEETGUARD_IAM_USAGE_DIR",
                std::env::var("FLEETGUARD_IAM_USAGE_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|_| root.join("target/iam-usage")),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start emulator");
        let emulator = Emulator {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            _child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while emulator.control("GET", "/_fleetguard/health", "").is_err() {
            assert!(Instant::now() < deadline, "emulator did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }

    /// A plain HTTP/1.1 call to the emulator's control endpoints (`/_fleetguard/...`).
    pub fn control(&self, method: &str, path: &str, body: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("bad HTTP response"))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(std::io::Error::other(head.to_owned()));
        }
        Ok(body.to_owned())
    }

    fn control_json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(
            &self
                .control("GET", path, "")
                .expect("emulator control call"),
        )
        .expect("control JSON")
    }

    /// Messages published through the IoT data plane: (topic, payload).
    pub fn published(&self) -> Vec<(String, Vec<u8>)> {
        use base64::Engine;
        self.control_json("/_fleetguard/published")
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let payload = base64::engine::general_purpose::STANDARD
                    .decode(m["payload_b64"].as_str().unwrap_or(""))
                    .unwrap_or_default();
                (m["topic"].as_str().unwrap_or("").to_owned(), payload)
            })
            .collect()
    }

    /// Client ids disconnected through the IoT data plane's DeleteConnection.
    pub fn disconnects(&self) -> Vec<String> {
        self.control_json("/_fleetguard/disconnects")
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| d["client_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// AWS API calls per operation since start.
    pub fn calls(&self) -> serde_json::Value {
        self.control_json("/_fleetguard/calls")
    }

    /// Recent AWS API calls per operation whose path or body contains `needle` (one test's tables or
    /// resources, while other tests share the emulator).
    pub fn calls_matching(&self, needle: &str) -> serde_json::Value {
        self.control_json(&format!("/_fleetguard/calls?contains={needle}"))
    }

    /// Fails calls of `operation` (as counted by `calls()`, e.g. `iot:PUT /target-policies/{id}`)
    /// `times` times in a row, starting with the `nth` next one, with HTTP `status`.
    /// Only requests whose path contains `path_contains` count (scope a fault to one test's resources).
    pub fn inject_fault(
        &self,
        operation: &str,
        path_contains: &str,
        nth: u32,
        times: u32,
        status: u16,
    ) {
        let body = serde_json::json!({"operation": operation, "path_contains": path_contains,
            "nth": nth, "times": times, "status": status});
        self.control("POST", "/_fleetguard/faults", &body.to_string())
            .expect("inject fault");
    }

    /// Like [`Self::inject_fault`], answering with AWS's error code `error` (e.g. a 404
    /// `ResourceNotFoundException`).
    pub fn inject_error(&self, operation: &str, path_contains: &str, status: u16, error: &str) {
        let body = serde_json::json!({"operation": operation, "path_contains": path_contains,
            "nth": 1, "times": 1, "status": status, "error": error});
        self.control("POST", "/_fleetguard/faults", &body.to_string())
            .expect("inject error");
    }

    /// Fails every `every`th call of `operation` (`"dynamodb:*"`: any call of that service) with
    /// `status` and AWS's error code `error`, until [`Self::clear_faults`]: a steady throttling rate.
    pub fn inject_steady(&self, operation: &str, every: u32, status: u16, error: &str) {
        let body = serde_json::json!({"operation": operation, "every": every,
            "status": status, "error": error});
        self.control("POST", "/_fleetguard/faults", &body.to_string())
            .expect("inject steady fault");
    }

    /// How many calls each fault has failed: `[{"operation", "every", "failed"}]`.
    pub fn faults_failed(&self) -> serde_json::Value {
        self.control_json("/_fleetguard/faults")
    }

    /// Drops the faults not yet spent.
    pub fn clear_faults(&self) {
        self.control("DELETE", "/_fleetguard/faults", "")
            .expect("clear faults");
    }

    /// SDK configuration pointing at the emulator, with the deployer's credentials (not authorized
    /// by the emulator: the tests' own setup and assertions) and quick retries.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing",
                LOCAL_SECRET,
                None,
                None,
                "fleetguard-tests",
            ))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(5)),
            )
            .load()
            .await
    }
}

/// A file of the hostile-input corpus (`tests/corpus/`).
pub fn corpus(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("tests/corpus").join(name)).expect(name)
}

/// A JSON-array file of the hostile-input corpus.
pub fn corpus_json(name: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&corpus(name)).expect("corpus is a JSON array")
}

/// Unique name for per-test isolation.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}
