//! `fleetctl operators add|disable|enable|revoke` and `fleetctl devices set-password`: custom-authorizer
//! identities.

use crate::revoke::run_action;
use crate::Ctx;
use anyhow::Context;
use clap::Subcommand;
use fleetguard_domain::authorization::authorizer::{
    device_principal, operator_principal, secret::DeviceSecret, Identity,
};
use fleetguard_domain::authorization::operators::{add_operator, AddOperator};
use fleetguard_domain::authorization::password_devices::{self, PasswordResult};
use fleetguard_domain::lifecycle::revocation::Action;
use fleetguard_domain::model::{DeviceStatus, Reason, Serial};
use std::io::Read;
use std::process::ExitCode;

/// Who an operator is: the JWT issuer and subject that identify them.
#[derive(clap::Args)]
pub struct Login {
    #[arg(long)]
    issuer: String,
    #[arg(long)]
    subject: String,
}

impl Login {
    /// Their principal id (= MQTT client id).
    fn principal(&self) -> fleetguard_domain::authorization::authorizer::PrincipalId {
        operator_principal(&self.issuer, &self.subject)
    }
}

#[derive(Subcommand)]
pub enum OperatorsCmd {
    /// Adds (or replaces) an operator: the JWT issuer and subject that identify them, and the serials
    /// they may act on. Prints the MQTT client id (= principal id) they must connect with. An existing
    /// disabled or revoked operator is not re-enabled by this unless `--re-enrol` is given.
    Add {
        #[command(flatten)]
        who: Login,
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
        #[command(flatten)]
        who: Login,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Re-enables a disabled operator (never a revoked one: `add` them again for that).
    Enable {
        #[command(flatten)]
        who: Login,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Revokes an operator (a hijacked login): refused from now on, live session cut, and with
    /// `--rollback`/`--since` every delete they made since then restored.
    Revoke {
        #[command(flatten)]
        who: Login,
        #[command(flatten)]
        args: crate::revoke::RollbackArgs,
    },
}

pub async fn run(ctx: &Ctx, cmd: OperatorsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        OperatorsCmd::Add {
            who,
            name,
            serials,
            re_enrol,
        } => {
            let serials = serials
                .iter()
                .map(|s| Serial::parse(s).with_context(|| format!("serial {s:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let identity = Identity::operator(&who.issuer, &who.subject, &name, serials);
            let (registry, store, audit) = (ctx.registry(), ctx.identities(), ctx.audit());
            let actor = crate::actor::actor(ctx).await?;
            match add_operator(&registry, &store, &audit, identity, re_enrol, &actor).await? {
                AddOperator::Added { principal_id } => {
                    println!(
                        "operator {name}: principal / MQTT client id {}",
                        principal_id.as_str()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                AddOperator::NotReEnabled { status } => {
                    eprintln!(
                        "operator {} is {}: not re-enabled (pass --re-enrol to mean it)",
                        who.principal(),
                        status.as_str()
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
        OperatorsCmd::Disable { who, reason } => {
            run_action(
                ctx,
                Action::Quarantine,
                crate::revoke::Target::principal(who.principal().as_str()),
                crate::revoke::RollbackArgs::reason_only(reason),
            )
            .await
        }
        OperatorsCmd::Enable { who, reason } => {
            run_action(
                ctx,
                Action::Release,
                crate::revoke::Target::principal(who.principal().as_str()),
                crate::revoke::RollbackArgs::reason_only(reason),
            )
            .await
        }
        OperatorsCmd::Revoke { who, args } => {
            run_action(
                ctx,
                Action::Revoke,
                crate::revoke::Target::principal(who.principal().as_str()),
                args,
            )
            .await
        }
    }
}

/// `fleetctl devices set-password <serial> [--activate] [--generate]`: the device's secret, generated
/// (printed once, alone on the first line of stdout) or read from stdin and refused below 128 bits
/// (`weak_secret`); only its digest is stored. `--activate` makes a manufactured device usable.
pub async fn set_password(
    ctx: &Ctx,
    serial: &str,
    activate: bool,
    generate: bool,
) -> anyhow::Result<ExitCode> {
    let serial = Serial::parse(serial)?;
    let secret = if generate {
        DeviceSecret::generate()?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        match DeviceSecret::parse(text.trim_end_matches(['\n', '\r'])) {
            Ok(secret) => secret,
            Err(weak) => {
                eprintln!("{serial}: refused ({}): {weak}", Reason::WeakSecret);
                return Ok(ExitCode::from(1));
            }
        }
    };
    let (registry, store, audit) = (ctx.registry(), ctx.identities(), ctx.audit());
    let actor = crate::actor::actor(ctx).await?;
    let result = password_devices::set_password(
        &registry,
        &store,
        &audit,
        &serial,
        secret.digest(&serial),
        activate,
        &actor,
    )
    .await?;
    if generate && !matches!(result, PasswordResult::Refused { .. }) {
        // The only time it is ever shown: the registry keeps a digest.
        println!("{}", secret.expose());
    }
    let pid = device_principal(&serial);
    match result {
        PasswordResult::Active => {
            println!("{serial}: secret set; active (principal {pid})");
            Ok(ExitCode::SUCCESS)
        }
        PasswordResult::Stored { status } => {
            let hint = if status == DeviceStatus::Manufactured {
                "; not usable until `fleetctl devices set-password --activate`"
            } else {
                ""
            };
            println!(
                "{serial}: secret set; device is {} (principal {pid}){hint}",
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
