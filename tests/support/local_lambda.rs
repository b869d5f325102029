//! The functions served locally through the Lambda runtime API by `cargo lambda watch` (installed
//! in the project's venv by `scripts/setup.sh`), invoked over its Invoke API exactly as
//! `cargo lambda invoke` does. Each function is the real binary, built by cargo, with its real
//! cold start (config from the environment, SDK clients built once) against the emulator.

use crate::{free_port, workspace_root, Stack, REGION};
use fleetguard_aws::http::HttpClient;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every function of the workspace, by the name `cargo lambda` serves it under (the binary name).
pub const FUNCTIONS: [&str; 8] = [
    "provisioner",
    "provisioning-hook",
    "delete-record",
    "revoker",
    "authorizer",
    "handshake-validator",
    "rotator",
    "certificate-watch",
];

/// Every event fixture in `tests/fixtures/` and the function it is for.
pub const FIXTURES: [(&str, &str); 13] = [
    ("authorizer-x509.json", "authorizer"),
    ("client-certificate-validation.json", "handshake-validator"),
    ("jitr-registered.json", "provisioner"),
    ("pre-provisioning-hook.json", "provisioning-hook"),
    ("delete-record.json", "delete-record"),
    ("authorizer-mqtt.json", "authorizer"),
    ("authorizer-http.json", "authorizer"),
    ("security-event.json", "revoker"),
    ("tamper.json", "revoker"),
    ("defender-violation-sns.json", "revoker"),
    ("revoke-command.json", "revoker"),
    ("rotate-certificate.json", "rotator"),
    ("scheduled-event.json", "certificate-watch"),
];

/// The variables of the caller's environment passed to `cargo lambda watch` (besides `RUSTUP_*`
/// and `LC_*`). The clippy wrapper of `scripts/test.sh` too: without it, cargo would see our crates'
/// fingerprints as changed and rebuild them.
const KEEP_ENV: [&str; 11] = [
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_INCREMENTAL",
    "HOME",
    "USER",
    "LANG",
    "TERM",
    "TMPDIR",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "SSL_CERT_FILE",
];

/// `cargo lambda watch` running in its own process group (killed with everything it started).
pub struct LocalLambda {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
    client: HttpClient,
}

/// The environment the functions get for `stack`: what `infra/template.yaml` gives them (its
/// `Globals` and each function's `Environment`, resolved for this stack; see
/// `fleetguard_aws::template`), then `extra`. Credentials: the stack's session token here, and each
/// function's own access key from its crate's `[package.metadata.lambda.env]`, which the emulator maps
/// to that function's role.
pub fn function_env(stack: &Stack, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let local = stack.local.lock().expect("local stack").clone();
    let mut env: Vec<(String, String)> = local
        .shared_environment(&crate::template_text())
        .expect("the template's environments")
        .into_iter()
        .collect();
    env.extend(
        [
            ("AWS_ENDPOINT_URL", stack.emulator.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", stack.prefix.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// A `cargo` with only what a shell would have: under `cargo test`/`cargo run` this process carries
/// CARGO_*, OUT_DIR and friends, and a cargo started with them sees every fingerprint as changed and
/// rebuilds the world.
fn clean_cargo(venv_bin: &std::path::Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.env_clear();
    for (k, v) in std::env::vars() {
        if KEEP_ENV.contains(&k.as_str()) || k.starts_with("RUSTUP_") || k.starts_with("LC_") {
            cmd.env(k, v);
        }
    }
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.current_dir(workspace_root()).env("PATH", path);
    cmd
}

/// Builds every function (debug) exactly as `cargo lambda watch` runs them, so the first invoke
/// finds them built. With `print`, cargo's progress goes to this terminal (a cold build takes
/// minutes); otherwise to `log`.
pub fn build_functions(print: bool, log: &std::path::Path) {
    let mut cmd = clean_cargo(&workspace_root().join(".venv/bin"));
    cmd.arg("build");
    for f in FUNCTIONS {
        cmd.args(["-p", f]);
    }
    if !print {
        let out = std::fs::File::create(log).expect("log file");
        cmd.stdout(out.try_clone().expect("log")).stderr(out);
    }
    let status = cmd.status().expect("run cargo build");
    assert!(
        status.success(),
        "building the functions failed{}",
        if print {
            String::new()
        } else {
            format!("; see {}", log.display())
        }
    );
}

impl LocalLambda {
    /// Builds the functions (see [`build_functions`]), starts `cargo lambda watch` on a free
    /// loopback port with `env` for the functions, and waits until it listens.
    pub fn start(env: &[(String, String)], print: bool) -> LocalLambda {
        Self::start_concurrent(env, print, 1)
    }

    /// As [`Self::start`], with up to `instances` instances of each function, each its own process
    /// with its own cold start, as Lambda scales out (`cargo lambda watch --concurrency`).
    pub fn start_concurrent(
        env: &[(String, String)],
        print: bool,
        instances: usize,
    ) -> LocalLambda {
        let root = workspace_root();
        let venv_bin = root.join(".venv/bin");
        assert!(
            venv_bin.join("cargo-lambda").exists(),
            "cargo-lambda not found in .venv: run scripts/setup.sh first"
        );
        let port = free_port();
        build_functions(print, &root.join(format!("target/cargo-build-{port}.log")));
        let log = root.join(format!("target/cargo-lambda-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = clean_cargo(&venv_bin);
        cmd.args(["lambda", "watch", "--ignore-changes", "--quiet"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .args(["--concurrency", &instances.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            // Its own group, so Drop stops cargo, the watcher and every function it started.
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start cargo lambda watch");
        let lambda = LocalLambda {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            client: HttpClient::new().expect("http client"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not start; see {}",
                lambda.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        lambda
    }

    /// The functions of `stack`, with operator tokens from `idp` trusted by the authorizer.
    pub fn for_stack(stack: &Stack, idp: &crate::TestIdp, print: bool) -> LocalLambda {
        Self::for_stack_concurrent(stack, idp, print, 1)
    }

    /// As [`Self::for_stack`], with up to `instances` processes of each function.
    pub fn for_stack_concurrent(
        stack: &Stack,
        idp: &crate::TestIdp,
        print: bool,
        instances: usize,
    ) -> LocalLambda {
        Self::start_concurrent(
            &function_env(
                stack,
                &[
                    ("FLEETGUARD_JWT_ISSUER", &idp.issuer),
                    ("FLEETGUARD_JWT_AUDIENCE", &idp.audience),
                    ("FLEETGUARD_JWKS", &idp.jwks),
                ],
            ),
            print,
            instances,
        )
    }

    /// Invokes `function` with `payload` through the Invoke API and returns its response, or
    /// the function's error (`errorType: errorMessage`). The first invoke of a function builds it,
    /// hence the long timeout.
    pub async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.endpoint
        );
        let response = self
            .client
            .post_json(&url, payload, Duration::from_secs(900), 1 << 20)
            .await
            .map_err(|e| format!("{function}: {e}; see {}", self.log.display()))?;
        let body: serde_json::Value = serde_json::from_slice(&response.body).map_err(|_| {
            format!(
                "{function}: HTTP {} {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )
        })?;
        if response.status != 200 || body.get("errorType").is_some() {
            return Err(format!("{function}: HTTP {} {body}", response.status));
        }
        Ok(body)
    }
}

impl LocalLambda {
    /// Invokes every `(function, event)` at once (one task each, so as many instances as `--concurrency`
    /// allows serve them together); the answers or function errors, in order.
    pub async fn invoke_all(
        self: &std::sync::Arc<Self>,
        calls: Vec<(&'static str, serde_json::Value)>,
    ) -> Vec<Result<serde_json::Value, String>> {
        let tasks: Vec<_> = calls
            .into_iter()
            .map(|(function, event)| {
                let lambda = self.clone();
                tokio::spawn(async move { lambda.invoke(function, &event).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.expect("invoke task"));
        }
        answers
    }
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}
