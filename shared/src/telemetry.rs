//! Structured JSON logs. Call [`init`] once at cold start.
//!
//! Never log tokens, passwords, private keys or whole certificates: log ids, serials and reason codes.

use tracing_subscriber::{fmt, EnvFilter};

/// JSON lines on stdout (CloudWatch parses them), level from `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}
