//! `fleetctl revoke|quarantine|release|audit` and `devices approve-replacement`: the revoker's operator
//! commands, run through the same shared domain the revoker Lambda uses.

use crate::Ctx;
use fleetguard_domain::domain::{Outcome, Principal, Serial};
use fleetguard_domain::ports::AuditLog;
use fleetguard_domain::replacement;
use fleetguard_domain::revocation::{Action, Command, RevocationConfig};
use std::process::ExitCode;

/// Runs a revocation command through the same domain the revoker Lambda uses. `target`: a serial, a
/// certificate id, or a principal id (`dv…`, `op…`).
pub async fn run_action(
    ctx: &Ctx,
    action: Action,
    target: &str,
    since: Option<String>,
    rollback: bool,
    reason: Option<String>,
) -> anyhow::Result<ExitCode> {
    let principal = Principal::parse(target).ok();
    let config = match (RevocationConfig::from_env(), &principal) {
        (Ok(c), _) => c,
        // An operator is only disabled and disconnected: no policy or thing group is involved.
        (Err(_), Some(Principal::Authorizer(p))) if p.starts_with("op") => {
            RevocationConfig::operators_only()
        }
        (Err(e), _) => {
            anyhow::bail!("{e} (set FLEETGUARD_FLEET_POLICY and FLEETGUARD_QUARANTINE_GROUP)")
        }
    };
    let revoker = ctx.revoker(config);
    let (serial, principal) = match principal {
        Some(p) => (None, Some(p.as_str().to_owned())),
        None => (Some(target.to_owned()), None),
    };
    // `--since T` implies `--rollback`.
    let rollback = rollback || since.is_some();
    let command = Command {
        action,
        serial,
        certificate_id: None,
        principal,
        reason,
        compromised_since: since,
        rollback,
        actor: Some(crate::records::operator()),
    };
    let report = revoker
        .command(command, fleetguard_domain::domain::now())
        .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.outcome == Outcome::Rejected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn approve_replacement(ctx: &Ctx, serial: &str) -> anyhow::Result<ExitCode> {
    let serial = Serial::parse(serial)?;
    let actor = format!("fleetctl:{}", crate::records::operator());
    if !replacement::approve_replacement(&ctx.registry(), &ctx.audit(), &serial, &actor).await? {
        eprintln!("{serial}: not revoked; nothing to approve");
        return Ok(ExitCode::from(1));
    }
    println!("{serial}: one replacement certificate will be accepted at its next first connect");
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(
    ctx: &Ctx,
    serial: Option<String>,
    principal: Option<String>,
) -> anyhow::Result<ExitCode> {
    let audit = ctx.audit();
    let mut entries = match (serial, principal) {
        (Some(s), None) => audit.for_serial(Serial::parse(&s)?.as_str(), 1000).await?,
        (None, Some(p)) => audit.for_principal(&p, "0").await?,
        _ => anyhow::bail!("give a serial or --principal <id>"),
    };
    entries.sort_by(|a, b| b.at.cmp(&a.at));
    println!(
        "{:<31} {:<20} {:<9} {:<34} {:<14} {:<12} record",
        "at", "action", "outcome", "reason", "serial", "principal"
    );
    for e in entries {
        let principal = e.principal.as_deref().unwrap_or("-");
        println!(
            "{:<31} {:<20} {:<9} {:<34} {:<14} {:<12} {}",
            e.at,
            e.action,
            e.outcome.as_str(),
            e.reason.as_str(),
            e.serial.as_deref().unwrap_or("-"),
            &principal[..principal.len().min(12)],
            e.record_id.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}
