//! `fleetctl devices ...`

use crate::Ctx;
use clap::Subcommand;
use fleetguard_aws::dynamodb::{DynamoAudit, DynamoRegistry};
use fleetguard_domain::model::AuditAction;
use fleetguard_domain::model::{AuditEntry, Device, Outcome, Reason, Serial, Timestamp};
use fleetguard_domain::ports::{AuditLog, Registry};
use fleetguard_domain::provisioning::enrollment::enrollment_from_columns;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DevicesCmd {
    /// Imports the allow-list from manufacturing: a CSV with the columns
    /// `serial[,attestation_key[,secret_sha256[,claims]]]` (a header row starting with `serial` is
    /// skipped). `attestation_key`: the factory P-256 public key, base64 (or PEM) SubjectPublicKeyInfo
    /// or uncompressed point; `secret_sha256`: hex SHA-256 of the one-time enrollment secret; one of
    /// the two per device, or neither (JITR and password devices). `claims`: `;`-separated claim
    /// certificate ids allowed to provision the device (empty: any). A malformed line is reported with
    /// its number and nothing of it is written; existing serials are left as they are.
    Import { csv: PathBuf },
    /// Shows a device's registry entry (its proof kind and whether it was used, never the material)
    /// and its latest audit entries.
    Show { serial: String },
    /// Sets the secret (MQTT password) of a certificate-less device: `--generate` makes one of 256
    /// bits and prints it once; otherwise it is read from stdin and refused below 128 bits. Only its
    /// digest is stored. A manufactured device stays unusable unless `--activate` is given.
    SetPassword {
        serial: String,
        /// Make a manufactured device active: it can connect with this password from now on.
        #[arg(long)]
        activate: bool,
        #[arg(long)]
        generate: bool,
    },
    /// Lets a revoked serial be provisioned once more, with a new certificate.
    ApproveReplacement { serial: String },
    /// Asks a device to rotate its certificate now: its next rotation request is served whatever
    /// its certificate's expiry (otherwise only inside the expiry window), and it is told so on
    /// `P/<serial>/certificates/rotate/required`.
    RequestRotation { serial: String },
}

pub async fn run(ctx: &Ctx, cmd: DevicesCmd) -> anyhow::Result<ExitCode> {
    let (registry, audit) = (ctx.registry(), ctx.audit());
    match cmd {
        DevicesCmd::Import { csv } => {
            import(&registry, &audit, &csv, &crate::actor::actor(ctx).await?).await
        }
        DevicesCmd::SetPassword {
            serial,
            activate,
            generate,
        } => crate::operators::set_password(ctx, &serial, activate, generate).await,
        DevicesCmd::ApproveReplacement { serial } => {
            crate::revoke::approve_replacement(ctx, &serial).await
        }
        DevicesCmd::RequestRotation { serial } => {
            let serial = Serial::parse(&serial)?;
            let actor = crate::actor::actor(ctx).await?;
            let asked = fleetguard_domain::lifecycle::rotation::request_rotation(
                &registry,
                &ctx.rotations(),
                &ctx.iot_data(),
                &serial,
                &actor,
                fleetguard_domain::model::now(),
            )
            .await?;
            if !asked {
                eprintln!("{serial}: no active device with a certificate; nothing asked");
                return Ok(ExitCode::from(1));
            }
            println!("{serial}: asked to rotate (P/{serial}/certificates/rotate/required)");
            Ok(ExitCode::SUCCESS)
        }
        DevicesCmd::Show { serial } => {
            let serial = Serial::parse(&serial)?;
            let Some(device) = registry.get_device(&serial).await? else {
                eprintln!("{serial}: not in the registry");
                return Ok(ExitCode::from(1));
            };
            println!("{}", serde_json::to_string_pretty(&device_view(&device))?);
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

/// What `devices show` prints: the registry entry with its enrollment reduced to the proof kind and
/// whether it was spent. The key is public and the hash is not the secret, but neither is needed to
/// operate the fleet, so neither is printed.
fn device_view(device: &Device) -> serde_json::Value {
    let e = &device.enrollment;
    serde_json::json!({
        "serial": device.serial,
        "status": device.status,
        "certificate_id": device.certificate_id,
        "binding": match (&device.certificate_id, device.binding_pending) {
            (None, _) => "none",
            (Some(_), true) => "pending (its certificate not yet seen ACTIVE by fleetguard)",
            (Some(_), false) => "confirmed",
        },
        "replacement_approved": device.replacement_approved,
        "proof": {
            "kind": e.kind(),
            "used": e.used(),
            "claims": e.claims,
        },
        "version": device.version,
        "updated_at": device.updated_at,
    })
}

/// One line of the manufacturing CSV, or why it cannot be imported.
fn parse_line(row: &csv::StringRecord) -> Result<Device, String> {
    let col = |i| row.get(i).unwrap_or("");
    let serial = Serial::parse(col(0)).map_err(|e| e.to_string())?;
    let enrollment =
        enrollment_from_columns(col(1), col(2), col(3)).map_err(|e| e.detail.to_owned())?;
    Ok(Device::manufactured(serial, enrollment, Timestamp::now()))
}

async fn import(
    registry: &DynamoRegistry,
    audit: &DynamoAudit,
    path: &PathBuf,
    actor: &str,
) -> anyhow::Result<ExitCode> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)?;
    let (mut added, mut existing, mut invalid) = (0usize, 0usize, 0usize);
    for (line, row) in reader.records().enumerate() {
        let row = row?;
        let first = row.get(0).unwrap_or("");
        if first.is_empty() || (line == 0 && first.eq_ignore_ascii_case("serial")) {
            continue;
        }
        // Validate the whole line first: a line with a bad key or hash writes nothing.
        let device = match parse_line(&row) {
            Ok(d) => d,
            Err(e) => {
                invalid += 1;
                eprintln!("line {}: {e}", line + 1);
                continue;
            }
        };
        if registry.import_device(&device).await? {
            added += 1;
            let entry = AuditEntry::new(
                actor,
                AuditAction::Import,
                Outcome::Accepted,
                Reason::Imported,
            )
            .serial(device.serial.as_str())
            .detail(format!("proof: {:?}", device.enrollment.kind()));
            audit.record(&entry).await?;
        } else {
            existing += 1;
        }
    }
    println!("imported {added}, already present {existing}, invalid {invalid}");
    Ok(if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
