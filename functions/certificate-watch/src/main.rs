//! Certificate-watch Lambda, on a schedule: the rotation sweep (unconfirmed rotations expire, replaced
//! certificates retire after their grace period), then the expiry watch (device certificates expiring
//! within `FLEETGUARD_EXPIRY_WINDOW_DAYS`, CA certificates within `FLEETGUARD_CA_EXPIRY_WINDOW_DAYS`:
//! each device nudged, each audited, a summary on `FLEETGUARD_ALERTS_TOPIC`). The event's content is
//! not read: the schedule only says "now".
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use fleetguard_aws::lambda::diagnostic;
use fleetguard_aws::services::Services;
use fleetguard_aws::settings;
use fleetguard_domain::lifecycle::expiry;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fleetguard_aws::telemetry::init();
    let settings = settings::CertificateWatch::from_env()?;
    let services = Services::connect(&settings.common).await;
    let sweep = services.rotation_sweep(settings.fleet_policy);
    let (device_days, ca_days) = (settings.device_window_days, settings.ca_window_days);
    let alerts = settings.alerts_topic;
    let (rotations, iot, publisher, audit) = (
        services.rotations(),
        services.iot(),
        services.iot_data(),
        services.audit(),
    );
    let (sweep, rotations, iot, publisher, audit, alerts) =
        (&sweep, &rotations, &iot, &publisher, &audit, &alerts);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let now = fleetguard_domain::model::now();
        let swept = sweep.sweep(now).await.map_err(diagnostic)?;
        let report = expiry::find(rotations, iot, now, device_days, ca_days)
            .await
            .map_err(diagnostic)?;
        expiry::notify(publisher, audit, alerts, &report)
            .await
            .map_err(diagnostic)?;
        Ok::<_, Diagnostic>(json!({ "sweep": swept, "expiry": report }))
    }))
    .await
}
