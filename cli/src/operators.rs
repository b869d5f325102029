//! `fleetctl operators add|disable` and `fleetctl devices set-password`: custom-authorizer identities.

use crate::Ctx;
use anyhow::Context;
use clap::Subcommand;
use fleetguard::adapters::dynamodb::{DynamoAudit, DynamoRegistry};
use fleetguard::adapters::identities::DynamoIdentityStore;
use fleetguard::authorizer::{
    hash_password, operator_principal, Identity, IdentityKind, PrincipalId,
};
use fleetguard::domain::{AuditEntry, Outcome, Reason, Serial};
use fleetguard::ports::{AuditLog, Registry};
use std::io::Read;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum OperatorsCmd {
    /// Adds (or replaces) an operator: the JWT issuer and subject that identify them, and the serials
    /// they may act on. Prints the MQTT client id (= principal id) they must connect with.
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
    },
    /// Disables an operator (takes effect within the authorizer's cache TTL and refresh interval).
    Disable {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        subject: String,
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
        } => {
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
        OperatorsCmd::Disable { issuer, subject } => {
            let pid = operator_principal(&issuer, &subject);
            if !store.set_status(&pid, "disabled").await? {
                eprintln!("no such operator");
                return Ok(ExitCode::from(1));
            }
            let entry = AuditEntry::new(
                &actor(),
                "operator_disable",
                Outcome::Accepted,
                Reason::OperatorDisabled,
            )
            .principal(pid.as_str());
            audit.record(&entry).await?;
            println!("operator {} disabled", pid.as_str());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `fleetctl devices set-password <serial>`: reads the password from stdin, stores only its argon2id hash.
pub async fn set_password(ctx: &Ctx, serial: &str) -> anyhow::Result<ExitCode> {
    let serial = Serial::parse(serial)?;
    let registry = DynamoRegistry::new(ctx.ddb.clone(), &ctx.tables.registry);
    let Some(device) = registry.get_device(&serial).await? else {
        eprintln!("{serial}: not in the registry (import it first)");
        return Ok(ExitCode::from(1));
    };
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("empty password on stdin");
    }
    let mut identity = Identity::device(serial.clone(), hash_password(password)?);
    // The identity mirrors the registry's device status (the revoker keeps them in step).
    if let IdentityKind::Device { status, .. } = &mut identity.kind {
        *status = device.status;
    }
    let store = DynamoIdentityStore::new(ctx.ddb.clone(), &ctx.tables.registry);
    store.put_identity(&identity).await?;
    let audit = DynamoAudit::new(ctx.ddb.clone(), &ctx.tables.audit, 0);
    let entry = AuditEntry::new(
        &actor(),
        "set_password",
        Outcome::Accepted,
        Reason::PasswordSet,
    )
    .serial(serial.as_str())
    .principal(identity.principal_id.as_str());
    audit.record(&entry).await?;
    let pid: &PrincipalId = &identity.principal_id;
    println!("{serial}: password set (principal {})", pid.as_str());
    Ok(ExitCode::SUCCESS)
}
