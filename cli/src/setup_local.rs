//! `fleetctl setup-local`: a local stack (the emulator, LocalStack) set up as `sam deploy` sets up
//! AWS: the tables, the fleet policy read from the SAM template itself, the quarantine group, the fleet
//! CA in KMS with the template's key policy, and each function's role registered with the emulator.

use crate::Ctx;
use anyhow::Context;
use fleetguard_aws::ca_init::{ensure_key, init_kms_ca};
use fleetguard_aws::local::{
    dev_jwks, ensure_failed_events_queue, ensure_policy, ensure_thing_group,
    fleet_policy_from_template, put_key_policy, register_roles,
};
use fleetguard_aws::schema::create_tables;
use fleetguard_aws::template::LocalStack;
use std::path::Path;
use std::process::ExitCode;

pub async fn run(
    ctx: &Ctx,
    stack: Option<&str>,
    template: &Path,
    account: &str,
    local: LocalOptions,
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
    let policy = format!("{stack}-fleet-device");
    let iot = aws_sdk_iot::Client::new(&ctx.sdk);
    let quarantine = format!("{stack}-quarantine");
    ensure_thing_group(&iot, &quarantine).await?;
    // The fleet CA in KMS, as `fleetctl ca init-kms` makes it after `sam deploy` created the key.
    let key = ensure_key(ctx, &format!("alias/{stack}-fleet-ca")).await?;
    let ca = init_kms_ca(ctx, &key, &format!("{stack} fleet CA"), 3650).await?;
    // The template for this stack: the names above and the parameters a local stack sets. The JWKS
    // holds one public key whose private half is already gone: the local operator flow brings its own.
    let failed_events =
        ensure_failed_events_queue(&ctx.sdk, &format!("{stack}-failed-events")).await?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let resolved = LocalStack::new(stack, &region, account)
        .parameter(
            "CaCertificateId",
            local
                .device_ca
                .unwrap_or_else(|| ca.ca_certificate_id.to_string()),
        )
        .parameter("RotationCaCertificateId", ca.ca_certificate_id.as_str())
        .parameter(
            "IotDataEndpoint",
            local
                .data_plane
                .or_else(|| endpoint.clone())
                .unwrap_or_default(),
        )
        .parameter("JwtIssuer", "https://login.fleetguard.test")
        .parameter("JwtAudience", "fleetguard")
        .parameter("JwksJson", dev_jwks()?)
        .resource("RegistryTable", ctx.tables.registry.as_str())
        .resource("AuditTable", ctx.tables.audit.as_str())
        .resource("RecordsTable", ctx.tables.records.as_str())
        .resource("FleetDevicePolicy", policy.as_str())
        .resource("QuarantineGroup", quarantine.as_str())
        .resource("FleetCaKey", key.as_str())
        .resource("FailedEventsQueue", failed_events.as_str());
    // The devices' validated domain as the local gateway serves it (a deploy's second pass).
    let domain = resolved.device_domain_name(&text)?;
    let resolved = resolved.parameter("DeviceDomainName", domain);
    ensure_policy(
        &iot,
        &policy,
        &fleet_policy_from_template(&text, &resolved)?,
    )
    .await?;
    // The batch claim certificates' policy (fleet provisioning by claim through the local gateway).
    let claim = resolved.resource_property(&text, "ClaimPolicy", "PolicyDocument")?;
    ensure_policy(&iot, &format!("{stack}-claim"), &claim.to_string()).await?;
    let key_policy = resolved.resource_property(&text, "FleetCaKey", "KeyPolicy")?;
    put_key_policy(&fleetguard_aws::kms::client(&ctx.sdk), &key, &key_policy).await?;
    // Each function's role and the operators', enforced by the emulator from here on.
    let roles = resolved.roles(&text)?;
    if let Some(endpoint) = &endpoint {
        register_roles(endpoint, stack, &roles).await?;
    }
    if !local.env {
        println!(
            "tables ready: {}, {}, {}; fleet policy {policy} (from {}); fleet CA {} (KMS key {}); {} roles",
            ctx.tables.registry,
            ctx.tables.audit,
            ctx.tables.records,
            template.display(),
            ca.ca_certificate_id,
            key,
            roles.len(),
        );
        return Ok(ExitCode::SUCCESS);
    }
    // What the template sets for the functions, for this stack, and the session token their roles
    // are registered under (each function's access key comes from its crate's metadata).
    let mut vars = resolved.shared_environment(&text)?;
    vars.insert("AWS_SESSION_TOKEN".into(), stack.to_owned());
    for (name, value) in vars {
        println!("export {name}='{}'", value.replace('\'', r"'\''"));
    }
    Ok(ExitCode::SUCCESS)
}

/// What a local stack sets that AWS would take from `sam deploy`'s parameters.
pub struct LocalOptions {
    /// Print `export NAME=value` lines for the functions' environment.
    pub env: bool,
    /// The template's `CaCertificateId` (default: the local fleet CA).
    pub device_ca: Option<String>,
    /// The template's `IotDataEndpoint` (default: `AWS_ENDPOINT_URL`; the local gateway's data plane
    /// under `scripts/dev.sh`).
    pub data_plane: Option<String>,
}
