//! `fleetctl ca ...` (the fleet CA in KMS) and `fleetctl certificates ...` (the expiry watch, on
//! demand).

use crate::Ctx;
use clap::Subcommand;
use fleetguard_aws::ca_init::{ensure_key, init_kms_ca};
use fleetguard_domain::lifecycle::expiry;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum CaCmd {
    /// Makes the CA certificate of the fleet CA's KMS key (ECC_NIST_P256, SIGN_VERIFY) and registers
    /// it with AWS IoT (ACTIVE, auto-registration on), proving possession of the key with a
    /// verification certificate. Prints the CA certificate id for the template's
    /// RotationCaCertificateId. Idempotent: a CA already registered for the key is printed as it is.
    InitKms {
        /// The key (id, ARN or alias): the stack's FleetCaKeyId output.
        #[arg(long, conflicts_with = "create_alias")]
        key_id: Option<String>,
        /// Local stacks: use (or create) the key behind this alias, e.g. alias/fleetguard-local-ca.
        #[arg(long)]
        create_alias: Option<String>,
        #[arg(long, default_value = "fleetguard fleet CA")]
        name: String,
        /// Validity of the CA certificate, days.
        #[arg(long, default_value_t = 3650)]
        days: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum CertificatesCmd {
    /// Device certificates expiring within a window (and CA certificates within another), as the
    /// scheduled watch finds them; read-only (nothing nudged or audited).
    Expiring {
        /// Window for device certificates, e.g. 30d.
        #[arg(long, default_value = "30d")]
        within: String,
        /// Window for CA certificates, e.g. 90d.
        #[arg(long, default_value = "90d")]
        ca_within: String,
        #[arg(long)]
        json: bool,
    },
}

/// `30d` or `30` (days).
fn days(text: &str) -> anyhow::Result<u32> {
    text.strip_suffix('d')
        .unwrap_or(text)
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?}: a number of days, e.g. 30d"))
}

pub async fn run_ca(ctx: &Ctx, cmd: CaCmd) -> anyhow::Result<ExitCode> {
    let CaCmd::InitKms {
        key_id,
        create_alias,
        name,
        days,
        json,
    } = cmd;
    let key_id = match (key_id, create_alias) {
        (Some(k), _) => k,
        (None, Some(alias)) => ensure_key(ctx, &alias).await?,
        (None, None) => anyhow::bail!("give --key-id (the stack's FleetCaKeyId) or --create-alias"),
    };
    let ca = init_kms_ca(ctx, &key_id, &name, days).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&ca)?);
    } else {
        println!(
            "fleet CA {} ({}) for KMS key {}\nredeploy with: sam deploy --parameter-overrides RotationCaCertificateId={}",
            ca.ca_certificate_id,
            if ca.created { "registered now" } else { "already registered" },
            ca.key_id,
            ca.ca_certificate_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_certificates(ctx: &Ctx, cmd: CertificatesCmd) -> anyhow::Result<ExitCode> {
    let CertificatesCmd::Expiring {
        within,
        ca_within,
        json,
    } = cmd;
    let report = expiry::find(
        &ctx.rotations(),
        &ctx.iot(),
        fleetguard_domain::model::now(),
        days(&within)?,
        days(&ca_within)?,
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    for e in report.devices.iter().chain(&report.cas) {
        println!(
            "{:<6} {:<24} {} expires {}",
            e.kind, e.subject, e.certificate_id, e.not_after
        );
    }
    println!(
        "{} device and {} CA certificates inside the windows ({} / {} days)",
        report.devices.len(),
        report.cas.len(),
        report.device_window_days,
        report.ca_window_days
    );
    Ok(ExitCode::SUCCESS)
}
