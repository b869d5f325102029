//! `fleetctl setup-local`: a local stack (the emulator, LocalStack) set up as `sam deploy` sets up
//! AWS: the tables, the fleet policy read from the SAM template itself, and the fleet CA in KMS.

use crate::Ctx;
use anyhow::Context;
use fleetguard_aws::ca_init::{ensure_key, init_kms_ca};
use fleetguard_aws::local::{dev_jwks, ensure_policy, fleet_policy_from_template};
use fleetguard_aws::schema::create_tables;
use std::path::Path;
use std::process::ExitCode;

pub async fn run(
    ctx: &Ctx,
    stack: Option<&str>,
    template: &Path,
    account: &str,
    env: bool,
) -> anyhow::Result<ExitCode> {
    let stack = stack.unwrap_or("fleetguard-local");
    create_tables(&ctx.ddb, &ctx.tables).await?;
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("read {}", template.display()))?;
    let region = ctx
        .sdk
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_else(|| "us-east-1".into());
    let document = fleet_policy_from_template(&text, &region, account)?;
    let policy = format!("{stack}-fleet-device");
    ensure_policy(&aws_sdk_iot::Client::new(&ctx.sdk), &policy, &document).await?;
    // The fleet CA in KMS, as `fleetctl ca init-kms` makes it after `sam deploy` created the key.
    let key = ensure_key(ctx, &format!("alias/{stack}-fleet-ca")).await?;
    let ca = init_kms_ca(ctx, &key, &format!("{stack} fleet CA"), 3650).await?;
    if !env {
        println!(
            "tables ready: {}, {}, {}; fleet policy {policy} (from {}); fleet CA {} (KMS key {})",
            ctx.tables.registry,
            ctx.tables.audit,
            ctx.tables.records,
            template.display(),
            ca.ca_certificate_id,
            ca.key_id
        );
        return Ok(ExitCode::SUCCESS);
    }
    // What the template sets for the functions, for this local stack. The JWKS holds one public
    // key whose private half is already gone: the local operator flow brings a key of its own.
    let vars = [
        ("FLEETGUARD_REGISTRY_TABLE", ctx.tables.registry.clone()),
        ("FLEETGUARD_AUDIT_TABLE", ctx.tables.audit.clone()),
        ("FLEETGUARD_RECORDS_TABLE", ctx.tables.records.clone()),
        ("FLEETGUARD_FLEET_POLICY", policy),
        ("FLEETGUARD_SECURITY_TOPIC", "fleetguard/security".into()),
        ("FLEETGUARD_QUARANTINE_GROUP", format!("{stack}-quarantine")),
        ("FLEETGUARD_ACCOUNT_ID", account.to_owned()),
        ("FLEETGUARD_CA_KEY_ID", ca.key_id),
        (
            "FLEETGUARD_CA_CERTIFICATE_ID",
            ca.ca_certificate_id.to_string(),
        ),
        (
            "FLEETGUARD_ALERTS_TOPIC",
            format!("fleetguard/{stack}/alerts/certificates"),
        ),
        (
            "FLEETGUARD_JWT_ISSUER",
            "https://login.fleetguard.test".into(),
        ),
        ("FLEETGUARD_JWT_AUDIENCE", "fleetguard".into()),
        ("FLEETGUARD_JWKS", dev_jwks()?),
        ("RUST_LOG", "info".into()),
        // As the template sets it for the authorizer (argon2's memory goes back to the OS).
        ("MALLOC_MMAP_THRESHOLD_", "1048576".into()),
    ];
    for (name, value) in vars {
        println!("export {name}='{}'", value.replace('\'', r"'\''"));
    }
    Ok(ExitCode::SUCCESS)
}
