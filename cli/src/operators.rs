//! `fleetctl operators add|disable|enable|revoke` and `fleetctl devices set-password`: custom-authorizer
//! identities.

use crate::revoke::run_action;
use crate::Ctx;
use anyhow::Context;
use clap::Subcommand;
use fleetguard::adapters::dynamodb::{DynamoAudit, DynamoRegistry};
use fleetguard::adapters::identities::DynamoIdentityStore;
use fleetguard::authorizer::OperatorStatus;
use fleetguard::authorizer::{
    device_principal, hash_password, operator_principal, Identity, IdentityStore,
};
use fleetguard::domain::{AuditEntry, DeviceStatus, Outcome, Reason, Serial};
use fleetguard::password_devices::{self, PasswordResult};
use fleetguard::ports::{AuditLog, AuthorizerPrincipal, Registry};
use fleetguard::revocation::Action;
use std::io::Read;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum OperatorsCmd {
    /// Adds (or replaces) an operator: the JWT issuer and subject that identify them, and the serials
    /// they may act on. Prints the MQTT client id (= principal id) they must connect with. An existing
    /// disabled or revoked operator is not re-enabled by this unless `--re-enrol` is given.
    Add {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        subject: String,
        /// Display name for the audit trail.
        #[arg(long)]
        name: String,
        /// Serials the operator may delete records of (comma-separated).
        #[arg(long, value_delimiter = ',')]
        serials: Vec<String>,
        /// Re-enable an operator who was disabled or revoked (e.g. after their IdP account was recovered).
        #[arg(long)]
        re_enrol: bool,
    },
    /// Disables an operator (reversible with `enable`): refused from now on, live session cut.
    Disable {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Re-enables a disabled operator (never a revoked one: `add` them again for that).
    Enable {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Revokes an operator (a hijacked login): refused from now on, live session cut, and with
    /// `--rollback`/`--since` every delete they made since then restored.
    Revoke {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        subject: String,
        /// Restore their deletes at or after this RFC 3339 time (implies --rollback).
        #[arg(long)]
        since: Option<String>,
        /// Restore their soft deletes (default window: see README).
        #[arg(long)]
        rollback: bool,
        #[arg(long)]
        reason: Option<String>,
    },
}

fn actor() -> String {
    format!("fleetctl:{}", crate::records::operator())
}

pub async fn run(ctx: &Ctx, cmd: OperatorsCmd) -> anyhow::Result<ExitCode> {
    let store = DynamoIdentityStore::new(ctx.ddb.clone(), &ctx.tables.registry);
    let audit = DynamoAudit::new(ctx.ddb.clone(), &ctx.tables.audit, 0);
    match cmd {
        OperatorsCmd::Add {
            issuer,
            subject,
            name,
            serials,
            re_enrol,
        } => {
            // Updating an operator's serials must never quietly undo a disable or a revoke.
            let pid = operator_principal(&issuer, &subject);
            let registry = DynamoRegistry::new(ctx.ddb.clone(), &ctx.tables.registry);
            if let Some(AuthorizerPrincipal::Operator { status, .. }) =
                registry.get_principal(pid.as_str()).await?
            {
                if status != OperatorStatus::Active && !re_enrol {
                    eprintln!(
                        "operator {pid} is {}: not re-enabled (pass --re-enrol to mean it)",
                        status.as_str()
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            let serials = serials
                .iter()
                .map(|s| Serial::parse(s).with_context(|| format!("serial {s:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let identity = Identity::operator(&issuer, &subject, &name, serials);
            store.put_identity(&identity).await?;
            let entry = AuditEntry::new(
                &actor(),
                "operator_add",
                Outcome::Accepted,
                Reason::OperatorAdded,
            )
            .principal(identity.principal_id.as_str())
            .detail(format!("name={name}"));
            audit.record(&entry).await?;
            println!(
                "operator {name}: principal / MQTT client id {}",
                identity.principal_id.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        OperatorsCmd::Disable {
            issuer,
            subject,
            reason,
        } => {
            let pid = operator_principal(&issuer, &subject);
            run_action(ctx, Action::Quarantine, pid.as_str(), None, false, reason).await
        }
        OperatorsCmd::Enable {
            issuer,
            subject,
            reason,
        } => {
            let pid = operator_principal(&issuer, &subject);
            run_action(ctx, Action::Release, pid.as_str(), None, false, reason).await
        }
        OperatorsCmd::Revoke {
            issuer,
            subject,
            since,
            rollback,
            reason,
        } => {
            let pid = operator_principal(&issuer, &subject);
            run_action(ctx, Action::Revoke, pid.as_str(), since, rollback, reason).await
        }
    }
}

/// `fleetctl devices set-password <serial> [--activate]`: reads the password from stdin, stores only
/// its argon2id hash; `--activate` makes a manufactured device usable.
pub async fn set_password(ctx: &Ctx, serial: &str, activate: bool) -> anyhow::Result<ExitCode> {
    let serial = Serial::parse(serial)?;
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("empty password on stdin");
    }
    let registry = DynamoRegistry::new(ctx.ddb.clone(), &ctx.tables.registry);
    let store = DynamoIdentityStore::new(ctx.ddb.clone(), &ctx.tables.registry);
    let audit = DynamoAudit::new(ctx.ddb.clone(), &ctx.tables.audit, 0);
    let result = password_devices::set_password(
        &registry,
        &store,
        &audit,
        &serial,
        hash_password(password)?,
        activate,
        &actor(),
    )
    .await?;
    let pid = device_principal(&serial);
    match result {
        PasswordResult::Active => {
            println!("{serial}: password set; active (principal {pid})");
            Ok(ExitCode::SUCCESS)
        }
        PasswordResult::Stored { status } => {
            let hint = if status == DeviceStatus::Manufactured {
                "; not usable until `fleetctl devices set-password --activate`"
            } else {
                ""
            };
            println!(
                "{serial}: password set; device is {} (principal {pid}){hint}",
                status.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        PasswordResult::Refused { reason, detail } => {
            eprintln!("{serial}: refused ({reason}): {detail}");
            Ok(ExitCode::from(1))
        }
    }
}
