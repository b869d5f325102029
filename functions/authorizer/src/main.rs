//! AWS IoT Core custom authorizer Lambda: operators sign in with a JWT, certificate-less devices with a
//! password; both get least-privilege policies ([`fleetguard_domain::authorization::authorizer`]). Fail closed: every error,
//! including a failed audit write, is `isAuthenticated: false`.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use fleetguard_aws::services::Services;
use fleetguard_aws::settings;
use fleetguard_domain::authorization::authorizer::{authorize_and_audit, Authorizer};
use fleetguard_domain::model::now;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

fn main() -> Result<(), Error> {
    // Legacy argon2id password hashes are checked on blocking threads, 19 MiB each (secrets set now
    // are digests, microseconds). An instance serves one invocation at a time: two blocking threads
    // are plenty. (What bounds the memory is the template's MALLOC_MMAP_THRESHOLD_: see there.)
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Error> {
    fleetguard_aws::telemetry::init();
    // Keys (JWKS), config and clients once per cold start. A JWKS URL is fetched now: an instance
    // that cannot get keys fails its init and never allows anyone.
    let settings = settings::Authorizer::from_env()?;
    let keys = settings.keys.key_ring(now()).await?;
    let authorizer = Authorizer::with_keys(settings.config, keys)?;
    let services = Services::connect(&settings.common).await;
    let (store, audit) = (services.identities(), services.audit());
    let (authorizer, store, audit) = (&authorizer, &store, &audit);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(authorize_and_audit(authorizer, store, audit, event.payload, now()).await)
    }))
    .await
}
