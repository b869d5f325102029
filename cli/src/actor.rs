//! Who acts, for the audit trail (issue 29): the AWS caller identity, with the operator's chosen name
//! beside it. The name is a label anyone can set; the ARN is what AWS says the request's credentials
//! are (sts:GetCallerIdentity, which needs no IAM permission).

use crate::Ctx;
use anyhow::Context;
use std::sync::OnceLock;

/// The actor, resolved once per run (only commands that write audit ask for it).
static ACTOR: OnceLock<String> = OnceLock::new();

/// The operator's chosen name: `FLEETGUARD_OPERATOR`, else the login name. Not an identity.
fn chosen_name() -> String {
    std::env::var("FLEETGUARD_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

/// `fleetctl:<name> <caller ARN>`, e.g. `fleetctl:alice arn:aws:sts::123456789012:assumed-role/Ops/alice`.
/// Fails when AWS does not say who the credentials are: a command then writes nothing, rather than
/// an audit entry with an unproven actor.
pub async fn actor(ctx: &Ctx) -> anyhow::Result<String> {
    if let Some(actor) = ACTOR.get() {
        return Ok(actor.clone());
    }
    let identity = aws_sdk_sts::Client::new(&ctx.sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| fleetguard_aws::aws_error("sts:GetCallerIdentity", e))
        .context(
            "cannot tell who is acting (the audit names the AWS caller identity); nothing was done",
        )?;
    let arn = identity
        .arn()
        .filter(|arn| arn.starts_with("arn:"))
        .context("sts:GetCallerIdentity answered no caller ARN; nothing was done")?;
    Ok(ACTOR
        .get_or_init(|| format!("fleetctl:{} {arn}", chosen_name()))
        .clone())
}
