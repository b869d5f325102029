//! `fleetctl records ...`: restore a soft-deleted record, show a record's history.

use crate::Ctx;
use clap::Subcommand;
use fleetguard_domain::model::{RecordId, Serial};
use fleetguard_domain::ports::{AuditLog, Records, RestoreResult};
use fleetguard_domain::records::delete::describe;
use fleetguard_domain::records::restore::restore_record;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum RecordsCmd {
    /// Undoes a soft delete (conditional, audited; a no-op if the record is live).
    Restore { serial: String, record_id: String },
    /// The record's current state and every audited decision about it, newest first.
    History { serial: String, record_id: String },
}

pub async fn run(ctx: &Ctx, cmd: RecordsCmd) -> anyhow::Result<ExitCode> {
    let (audit, records) = (ctx.audit(), ctx.records());
    match cmd {
        RecordsCmd::Restore { serial, record_id } => {
            let (serial, record_id) = (Serial::parse(&serial)?, RecordId::parse(&record_id)?);
            let actor = crate::actor::actor(ctx).await?;
            match restore_record(&records, &audit, &serial, &record_id, &actor, None).await? {
                RestoreResult::Restored { version } => {
                    println!("{serial}/{record_id}: restored (version {version})");
                    Ok(ExitCode::SUCCESS)
                }
                RestoreResult::NotDeleted { version } => {
                    println!(
                        "{serial}/{record_id}: not deleted, nothing to do (version {version})"
                    );
                    Ok(ExitCode::SUCCESS)
                }
                RestoreResult::NotFound => {
                    eprintln!("{serial}/{record_id}: no such record");
                    Ok(ExitCode::from(1))
                }
            }
        }
        RecordsCmd::History { serial, record_id } => {
            let (serial, record_id) = (Serial::parse(&serial)?, RecordId::parse(&record_id)?);
            match records.get(&serial, &record_id).await? {
                Some(r) => println!("{serial}/{record_id}: {}", describe(&r)),
                None => println!("{serial}/{record_id}: no such record"),
            }
            for e in audit
                .for_serial(serial.as_str(), 1000)
                .await?
                .into_iter()
                .filter(|e| e.record_id.as_deref() == Some(record_id.as_str()))
            {
                println!(
                    "{}  {:<14} {:<9} {:<20} by {}",
                    e.at,
                    e.action,
                    e.outcome.as_str(),
                    e.reason.as_str(),
                    e.principal.as_deref().unwrap_or(&e.actor)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
