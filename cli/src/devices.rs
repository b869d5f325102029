//! `fleetctl devices ...`

use crate::Ctx;
use clap::Subcommand;
use fleetguard::adapters::dynamodb::{DynamoAudit, DynamoRegistry};
use fleetguard::domain::{AuditEntry, Outcome, Reason, Serial};
use fleetguard::ports::{AuditLog, Registry};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DevicesCmd {
    /// Imports the allow-list of serials from manufacturing: a CSV whose first column is the serial
    /// (a header row named `serial` is skipped). Existing serials are left as they are.
    Import { csv: PathBuf },
    /// Shows a device's registry entry and its latest audit entries.
    Show { serial: String },
    /// Sets the MQTT password of a certificate-less device (read from stdin; only the argon2id hash is
    /// stored).
    SetPassword { serial: String },
    /// Lets a revoked serial be provisioned once more, with a new certificate.
    ApproveReplacement { serial: String },
}

pub async fn run(ctx: &Ctx, cmd: DevicesCmd) -> anyhow::Result<ExitCode> {
    let registry = DynamoRegistry::new(ctx.ddb.clone(), &ctx.tables.registry);
    let audit = DynamoAudit::new(ctx.ddb.clone(), &ctx.tables.audit, 0);
    match cmd {
        DevicesCmd::Import { csv } => import(&registry, &audit, &csv).await,
        DevicesCmd::SetPassword { serial } => crate::operators::set_password(ctx, &serial).await,
        DevicesCmd::ApproveReplacement { serial } => {
            crate::revoke::approve_replacement(ctx, &serial).await
        }
        DevicesCmd::Show { serial } => {
            let serial = Serial::parse(&serial)?;
            let Some(device) = registry.get_device(&serial).await? else {
                eprintln!("{serial}: not in the registry");
                return Ok(ExitCode::from(1));
            };
            println!("{}", serde_json::to_string_pretty(&device)?);
            for e in audit.for_serial(serial.as_str(), 10).await? {
                println!(
                    "{}  {:<14} {:<9} {:<34} {}",
                    e.at,
                    e.action,
                    e.outcome.as_str(),
                    e.reason.as_str(),
                    e.actor
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn import(
    registry: &DynamoRegistry,
    audit: &DynamoAudit,
    path: &PathBuf,
) -> anyhow::Result<ExitCode> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)?;
    let (mut added, mut existing, mut invalid) = (0usize, 0usize, 0usize);
    for (line, row) in reader.records().enumerate() {
        let row = row?;
        let Some(raw) = row.get(0) else { continue };
        if raw.is_empty() || (line == 0 && raw.eq_ignore_ascii_case("serial")) {
            continue;
        }
        match Serial::parse(raw) {
            Ok(serial) => {
                if registry.import_serial(&serial).await? {
                    added += 1;
                    let entry =
                        AuditEntry::new("fleetctl", "import", Outcome::Accepted, Reason::Imported)
                            .serial(serial.as_str());
                    audit.record(&entry).await?;
                } else {
                    existing += 1;
                }
            }
            Err(e) => {
                invalid += 1;
                eprintln!("line {}: {e}", line + 1);
            }
        }
    }
    println!("imported {added}, already present {existing}, invalid {invalid}");
    Ok(if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
