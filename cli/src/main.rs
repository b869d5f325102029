//! `fleetctl`: the operator CLI. It talks to the same tables through the same shared adapters as the
//! Lambdas. Table names come from FLEETGUARD_REGISTRY_TABLE / _AUDIT_TABLE / _RECORDS_TABLE, or from
//! `--stack <prefix>` (tables `<prefix>-registry`, ...). `AWS_ENDPOINT_URL` points it at an emulator.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod actor;
mod certificates;
mod devices;
#[cfg(test)]
mod docs_check;
mod events;
mod operators;
mod policy_cmd;
mod records;
mod revoke;
mod setup_local;

use clap::{Parser, Subcommand};
use fleetguard_aws::sdk_config;
use fleetguard_aws::services::{Services, KEEP_FOREVER};
use fleetguard_domain::config::Tables;
use fleetguard_domain::lifecycle::revocation::Action;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fleetctl",
    version,
    about = "Operate a fleetguard-secured AWS IoT fleet"
)]
struct Cli {
    /// Table-name prefix (overrides the FLEETGUARD_*_TABLE variables when given).
    #[arg(long, global = true, env = "FLEETGUARD_STACK")]
    stack: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Devices: the manufacturing allow-list and the registry.
    #[command(subcommand)]
    Devices(devices::DevicesCmd),
    /// Operators who sign in over MQTT with their own login (custom authorizer).
    #[command(subcommand)]
    Operators(operators::OperatorsCmd),
    /// The fleet CA in AWS KMS (signs rotated device certificates).
    #[command(subcommand)]
    Ca(certificates::CaCmd),
    /// Device and CA certificates: what expires soon.
    #[command(subcommand)]
    Certificates(certificates::CertificatesCmd),
    /// Records: restore soft deletes, show history.
    #[command(subcommand)]
    Records(records::RecordsCmd),
    /// Revokes a compromised identity now. TARGET is a serial, a certificate id (a replaced
    /// certificate is revoked alone; the serial's current one stays live) or a principal id (`dv…`
    /// password device, `op…` operator). A device: certificate REVOKED (final), deny-listed,
    /// password identity revoked, session cut, detached, quarantine group. Optionally rolls back the
    /// soft deletes that principal made.
    Revoke {
        #[command(flatten)]
        target: revoke::Target,
        #[command(flatten)]
        args: revoke::RollbackArgs,
    },
    /// Isolates a device (or operator) reversibly: certificate INACTIVE or identity disabled, session cut.
    Quarantine {
        #[command(flatten)]
        target: revoke::Target,
        #[command(flatten)]
        args: revoke::RollbackArgs,
    },
    /// Ends a quarantine (never a revocation).
    Release {
        #[command(flatten)]
        target: revoke::Target,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The audit trail of a serial, or of a principal, newest first.
    Audit {
        serial: Option<String>,
        #[arg(long, conflicts_with = "serial")]
        principal: Option<String>,
    },
    /// Asynchronous events that failed every attempt (the failed-events queue): list, replay.
    /// The queue: FLEETGUARD_FAILED_EVENTS_QUEUE (the stack's output FailedEventsQueueName), else
    /// `<stack>-failed-events`.
    #[command(subcommand)]
    Events(events::EventsCmd),
    /// IoT policies, offline: lint (`check`) and evaluate (`eval`) policy documents.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCmd),
    /// Sets up a local stack (the emulator, LocalStack) as `sam deploy` would on AWS: the tables and
    /// the fleet policy `<stack>-fleet-device` read from the SAM template. With `--env`, prints the
    /// `export` lines the functions read (with a throwaway development JWKS) for a shell to eval.
    SetupLocal {
        /// The SAM template whose fleet policy is created.
        #[arg(long, default_value = "infra/template.yaml")]
        template: std::path::PathBuf,
        /// The account id in the policy's ARNs (the emulator's default).
        #[arg(long, default_value = "123456789012")]
        account: String,
        /// Print `export NAME=value` lines for the functions' environment (the template's).
        #[arg(long)]
        env: bool,
        /// The template's CaCertificateId: the device CA (default: the local fleet CA).
        #[arg(long)]
        device_ca: Option<String>,
        /// The template's IotDataEndpoint (default: AWS_ENDPOINT_URL).
        #[arg(long)]
        data_plane: Option<String>,
    },
}

/// Shared context of every command: the services, wired once (as the Lambdas wire them).
pub type Ctx = Services;

fn tables(stack: Option<&str>) -> anyhow::Result<Tables> {
    match stack {
        Some(prefix) => Ok(Tables::with_prefix(prefix)),
        None => Tables::from_vars(&fleetguard_aws::settings::Environment)
            .map_err(|e| anyhow::anyhow!("{e} (or pass --stack <prefix> / set FLEETGUARD_STACK)")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Offline commands first: no AWS configuration needed.
    let command = match cli.command {
        Command::Policy(cmd) => return Ok(ExitCode::from(policy_cmd::run(cmd))),
        other => other,
    };
    // Audit entries written by operators are kept forever (no TTL).
    let ctx = Services::new(
        sdk_config().await,
        tables(cli.stack.as_deref())?,
        KEEP_FOREVER,
    );
    match command {
        Command::Policy(_) => unreachable!("handled above"),
        Command::Devices(cmd) => devices::run(&ctx, cmd).await,
        Command::Records(cmd) => records::run(&ctx, cmd).await,
        Command::Ca(cmd) => certificates::run_ca(&ctx, cmd).await,
        Command::Certificates(cmd) => certificates::run_certificates(&ctx, cmd).await,
        Command::Operators(cmd) => operators::run(&ctx, cmd).await,
        Command::Events(cmd) => {
            let queue = match (
                std::env::var("FLEETGUARD_FAILED_EVENTS_QUEUE").ok(),
                cli.stack.as_deref(),
            ) {
                (Some(q), _) if !q.is_empty() => q,
                (_, Some(stack)) => format!("{stack}-failed-events"),
                _ => anyhow::bail!("set FLEETGUARD_FAILED_EVENTS_QUEUE or pass --stack"),
            };
            events::run(&ctx, &queue, cmd).await
        }
        Command::Revoke { target, args } => {
            revoke::run_action(&ctx, Action::Revoke, target, args).await
        }
        Command::Quarantine { target, args } => {
            revoke::run_action(&ctx, Action::Quarantine, target, args).await
        }
        Command::Release { target, reason } => {
            let args = revoke::RollbackArgs::reason_only(reason);
            revoke::run_action(&ctx, Action::Release, target, args).await
        }
        Command::Audit { serial, principal } => revoke::audit(&ctx, serial, principal).await,
        Command::SetupLocal {
            template,
            account,
            env,
            device_ca,
            data_plane,
        } => {
            let local = setup_local::LocalOptions {
                env,
                device_ca,
                data_plane,
            };
            setup_local::run(&ctx, cli.stack.as_deref(), &template, &account, local).await
        }
    }
}
