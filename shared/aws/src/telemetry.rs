//! Structured JSON logs, at the edge (the domain only emits `tracing` events). Call [`init`] once at
//! cold start.
//!
//! Never log tokens, passwords, private keys or whole certificates: log ids, serials and reason codes.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// JSON lines on stdout (CloudWatch parses them), level from `RUST_LOG` (default `info`): a level
/// (`debug`) or `target=level` pairs (`info,fleetguard=debug`). A filter that does not parse means
/// `info`. `Targets` rather than `EnvFilter`: same syntax for what we use, without a regex engine in
/// every binary.
pub fn init() {
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_target(false),
        )
        .with(filter(std::env::var("RUST_LOG").ok().as_deref()))
        .try_init();
}

fn filter(spec: Option<&str>) -> Targets {
    spec.and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use super::filter;
    use tracing::Level;

    #[test]
    fn rust_log_levels_and_targets() {
        assert!(filter(None).would_enable("fleetguard", &Level::INFO));
        assert!(!filter(None).would_enable("fleetguard", &Level::DEBUG));
        assert!(filter(Some("debug")).would_enable("x", &Level::DEBUG));
        let f = filter(Some("warn,fleetguard=debug"));
        assert!(f.would_enable(
            "fleetguard_domain::authorization::authorizer",
            &Level::DEBUG
        ));
        assert!(!f.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(filter(Some("=[{bad")).would_enable("x", &Level::INFO));
    }
}
