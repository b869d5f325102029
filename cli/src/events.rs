//! `fleetctl events`: asynchronous events that failed every attempt. Lambda retries an asynchronous
//! invoke (a topic rule's, SNS's, a schedule's) twice, then sends it to the function's on-failure
//! destination, the stack's failed-events queue (`<stack>-failed-events`, kept 14 days, alarmed on).
//! `list` looks at them; `replay` invokes each one's function with its event again and removes it
//! from the queue once the function succeeds (a failure stays for later).

use crate::Ctx;
use clap::Subcommand;
use fleetguard_aws::failed_events::{FailedEvents, Invoker};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum EventsCmd {
    /// The failed events (up to --max, at most 10 a call), left in the queue: one JSON line each.
    List {
        #[arg(long, default_value_t = 10)]
        max: i32,
    },
    /// Invokes each failed event's function with its event again, synchronously; an event whose
    /// replay succeeds leaves the queue. Exit code 1 if any replay failed (it stays queued).
    Replay {
        #[arg(long, default_value_t = 10)]
        max: i32,
    },
}

/// How long a replay holds a message from other readers while its function runs.
const REPLAY_HOLD_SECS: i32 = 120;

pub async fn run(ctx: &Ctx, queue: &str, cmd: EventsCmd) -> anyhow::Result<ExitCode> {
    let events = FailedEvents::by_name(&ctx.sdk, queue).await?;
    match cmd {
        EventsCmd::List { max } => {
            for e in events.receive(max, 0).await? {
                let line = match e {
                    Ok(e) => serde_json::json!({
                        "message_id": e.message_id, "function": e.function,
                        "condition": e.condition, "attempts": e.attempts,
                        "failed_at": e.timestamp, "error": e.error, "event": e.event,
                    }),
                    Err(err) => serde_json::json!({"unreadable": err.to_string()}),
                };
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        EventsCmd::Replay { max } => {
            let invoker = Invoker::new(&ctx.sdk);
            let mut failed = 0;
            for e in events.receive(max, REPLAY_HOLD_SECS).await? {
                let e = match e {
                    Ok(e) => e,
                    Err(err) => {
                        // Left in the queue: it is evidence, not ours to drop.
                        println!("{}", serde_json::json!({"unreadable": err.to_string()}));
                        failed += 1;
                        continue;
                    }
                };
                match invoker.invoke(&e.function, &e.event).await {
                    Ok(answer) => {
                        events.delete(&e).await?;
                        println!(
                            "{}",
                            serde_json::json!({"message_id": e.message_id,
                                "function": e.function, "replayed": true, "answer": answer})
                        );
                    }
                    Err(err) => {
                        failed += 1;
                        println!(
                            "{}",
                            serde_json::json!({"message_id": e.message_id,
                                "function": e.function, "replayed": false, "error": err.to_string()})
                        );
                    }
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
