//! AWS IoT Core custom authorizer Lambda: operators sign in with a JWT, certificate-less devices with a
//! password; both get least-privilege policies ([`fleetguard::authorizer`]). Fail closed: every error,
//! including a failed audit write, is `isAuthenticated: false`.

use fleetguard::adapters::{dynamodb, identities::DynamoIdentityStore, jwks::HttpJwks, sdk_config};
use fleetguard::authorizer::{authorize, Authorizer, AuthorizerResponse, KeySource};
use fleetguard::config::{opt_u32, Tables};
use fleetguard::domain::{AuditEntry, Outcome, Reason};
use fleetguard::ports::AuditLog;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

fn main() -> Result<(), Error> {
    // Password checks (and the decoy of refusals) run argon2 on blocking threads, 19 MiB each. An
    // instance serves one invocation at a time: two blocking threads are plenty. (What bounds the
    // memory is the template's MALLOC_MMAP_THRESHOLD_: see there.)
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Error> {
    fleetguard::telemetry::init();
    // Keys (JWKS), config and clients once per cold start. A JWKS URL is fetched now: an instance
    // that cannot get keys fails its init and never allows anyone.
    let tables = Tables::from_env()?;
    let jwks_url = HttpJwks::from_env(std::time::Duration::from_secs(2))?
        .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn KeySource>);
    let authorizer = Authorizer::from_env(jwks_url, fleetguard::domain::now()).await?;
    let retention = opt_u32("FLEETGUARD_AUDIT_RETENTION_DAYS", 400)?;
    let sdk = sdk_config().await;
    let ddb = dynamodb::client(&sdk);
    let store = DynamoIdentityStore::new(ddb.clone(), tables.registry);
    let audit = dynamodb::DynamoAudit::new(ddb, tables.audit, retention);
    let (authorizer, store, audit) = (&authorizer, &store, &audit);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let decision = authorize(authorizer, store, event.payload, fleetguard::domain::now()).await;
        let allowed = decision.response.is_authenticated;
        let reason = Reason::from_code(decision.reason.as_str()).unwrap_or(Reason::InternalError);
        let outcome = if allowed { Outcome::Accepted } else { Outcome::Rejected };
        let mut entry = AuditEntry::new("authorizer", "authorize", outcome, reason);
        if let Some(p) = &decision.principal_id {
            entry = entry.principal(p.clone());
        }
        if let Some(s) = &decision.serial {
            entry = entry.serial(s.clone());
        }
        if let Some(d) = &decision.detail {
            entry = entry.detail(d.clone());
        }
        let principal = decision.principal_id.as_deref().unwrap_or("-");
        if let Err(e) = audit.record(&entry).await {
            tracing::error!(error = %e, reason = "internal_error", principal, "audit write failed; denying");
            return Ok::<_, Error>(AuthorizerResponse::deny());
        }
        tracing::info!(action = "authorize", outcome = outcome.as_str(), reason = reason.as_str(), principal, "decision");
        Ok(decision.response)
    }))
    .await
}
