//! `fleetctl revoke|quarantine|release|audit` and `devices approve-replacement`: the revoker's operator
//! commands, run through the same shared domain the revoker Lambda uses.

use crate::Ctx;
use fleetguard_domain::lifecycle::replacement;
use fleetguard_domain::lifecycle::revocation::{Action, Command, RevocationConfig};
use fleetguard_domain::model::{
    CertificateId, IdentityKindTag, Outcome, Principal, Serial, Timestamp,
};
use fleetguard_domain::ports::AuditLog;
use std::process::ExitCode;

/// What a revocation command names: `<target>` (a principal id if it parses as one, else a serial),
/// or explicitly `--serial`, `--certificate` or `--principal` (a serial shaped like a principal id).
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A serial, a certificate id, or a principal id (`dv…`, `op…`).
    target: Option<String>,
    /// A serial, whatever it looks like (one shaped like a principal id).
    #[arg(long)]
    serial: Option<String>,
    /// A certificate id (a replaced certificate is revoked alone).
    #[arg(long)]
    certificate: Option<String>,
    /// A principal id: a certificate id, `dv…` or `op…`.
    #[arg(long)]
    principal: Option<String>,
}

impl Target {
    /// The command's (serial, certificate id, principal), parsed here once: an explicit flag as
    /// given; a bare target as a principal if it parses as one, else as a serial.
    fn resolve(self) -> anyhow::Result<Named> {
        let serial = |s: &str| Serial::parse(s).map_err(|e| anyhow::anyhow!("{s:?}: {e}"));
        Ok(match self {
            Target {
                serial: Some(s), ..
            } => (Some(serial(&s)?), None, None),
            Target {
                certificate: Some(c),
                ..
            } => (
                None,
                Some(CertificateId::parse(&c).map_err(|e| anyhow::anyhow!("{c:?}: {e}"))?),
                None,
            ),
            Target {
                principal: Some(p), ..
            } => (
                None,
                None,
                Some(Principal::parse(&p).map_err(|e| anyhow::anyhow!("{p:?}: {e}"))?),
            ),
            Target {
                target: Some(t), ..
            } => match Principal::parse(&t) {
                Ok(p) => (None, None, Some(p)),
                Err(_) => (Some(serial(&t)?), None, None),
            },
            _ => anyhow::bail!("name a target"),
        })
    }

    /// A principal id, named explicitly.
    pub fn principal(id: &str) -> Self {
        Target {
            target: None,
            serial: None,
            certificate: None,
            principal: Some(id.to_owned()),
        }
    }
}

/// What a command names: (serial, certificate id, principal).
type Named = (Option<Serial>, Option<CertificateId>, Option<Principal>);

/// What undoing a compromised identity's deletes takes, and why: the options of `revoke`,
/// `quarantine` and `operators revoke`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RollbackArgs {
    /// Restore its deletes at or after this RFC 3339 time (implies --rollback).
    #[arg(long)]
    pub since: Option<String>,
    /// Restore its soft deletes (default window: the earliest security signal about it, less the
    /// rollback lookback).
    #[arg(long)]
    pub rollback: bool,
    /// Why (kept in the audit trail).
    #[arg(long)]
    pub reason: Option<String>,
}

impl RollbackArgs {
    /// No rollback, only a reason (`release`, `operators disable|enable`).
    pub fn reason_only(reason: Option<String>) -> Self {
        Self {
            reason,
            ..Self::default()
        }
    }
}

/// Runs a revocation command through the same domain the revoker Lambda uses.
pub async fn run_action(
    ctx: &Ctx,
    action: Action,
    target: Target,
    args: RollbackArgs,
) -> anyhow::Result<ExitCode> {
    let RollbackArgs {
        since,
        rollback,
        reason,
    } = args;
    let (serial, certificate_id, principal) = target.resolve()?;
    let config = match (
        RevocationConfig::from_vars(&fleetguard_aws::settings::Environment),
        &principal,
    ) {
        (Ok(c), _) => c,
        // An operator is only disabled and disconnected: no policy or thing group is involved.
        (Err(_), Some(Principal::Authorizer(p))) if p.kind() == IdentityKindTag::Operator => {
            RevocationConfig::operators_only()
        }
        (Err(e), _) => {
            anyhow::bail!("{e} (set FLEETGUARD_FLEET_POLICY and FLEETGUARD_QUARANTINE_GROUP)")
        }
    };
    let actor = crate::actor::actor(ctx).await?;
    let revoker = ctx.revoker(config);
    // `--since T` implies `--rollback`.
    let rollback = rollback || since.is_some();
    let command = Command {
        action,
        serial,
        certificate_id,
        principal,
        reason,
        compromised_since: since,
        rollback,
        actor: Some(actor),
    };
    let report = revoker
        .command(command, fleetguard_domain::model::now())
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
    let actor = crate::actor::actor(ctx).await?;
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
        (None, Some(p)) => {
            let p = Principal::parse(&p)
                .map_err(|_| anyhow::anyhow!("{p:?} is not a certificate id or a principal id"))?;
            audit.for_principal(&p, &Timestamp::epoch()).await?
        }
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

#[cfg(test)]
mod tests {
    use super::Target;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        target: Target,
    }

    /// The names as text (what a test compares).
    fn resolve(args: &[&str]) -> (Option<String>, Option<String>, Option<String>) {
        let mut argv = vec!["fleetctl"];
        argv.extend_from_slice(args);
        let (serial, cert, principal) = Cli::parse_from(argv).target.resolve().unwrap();
        (
            serial.map(|s| s.to_string()),
            cert.map(|c| c.to_string()),
            principal.map(|p| p.to_string()),
        )
    }

    #[test]
    fn a_serial_shaped_like_a_principal_can_be_named() {
        let serial = fleetguard_domain::model::Serial::parse("SN1").unwrap();
        let dv =
            fleetguard_domain::authorization::authorizer::device_principal(&serial).to_string();
        assert_eq!(resolve(&[&dv]), (None, None, Some(dv.clone())));
        assert_eq!(resolve(&["--serial", &dv]), (Some(dv.clone()), None, None));
        assert_eq!(resolve(&["SN1"]), (Some("SN1".into()), None, None));
        let cert = "ab".repeat(32);
        assert_eq!(
            resolve(&["--certificate", &cert]),
            (None, Some(cert.clone()), None)
        );
        assert!(Cli::try_parse_from(["fleetctl", "SN1", "--serial", "SN2"]).is_err());
        // Parsed once, here: a name that is none of the three is refused before any AWS call.
        let refused = |args: &[&str]| {
            let mut argv = vec!["fleetctl"];
            argv.extend_from_slice(args);
            Cli::parse_from(argv).target.resolve().is_err()
        };
        assert!(refused(&["a/b"]));
        assert!(refused(&["--certificate", "nothex"]));
        assert!(refused(&["--principal", "opnobody"]));
        assert!(Cli::try_parse_from(["fleetctl"]).is_err());
    }
}
