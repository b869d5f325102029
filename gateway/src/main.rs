//! `fleetguard-gateway`: serves MQTT over mutual TLS on 127.0.0.1 for a local stack (the emulator
//! at `AWS_ENDPOINT_URL`). Prints the port and writes the server certificate clients must trust.
//!   FLEETGUARD_GATEWAY_PORT (8883: the default endpoint; the template's domain configurations on
//!   the next ports, 8884 the devices' validated domain, 8885 X.509 custom authentication),
//!   FLEETGUARD_GATEWAY_DATA_PORT (8088: the data plane for the
//!   functions, `AWS_ENDPOINT_URL_IOT_DATA_PLANE=http://127.0.0.1:8088`),
//!   FLEETGUARD_GATEWAY_CA_OUT (target/gateway-server.pem), FLEETGUARD_TEMPLATE (infra/template.yaml:
//!   its topic rules, its custom authorizer and handshake validator), FLEETGUARD_LAMBDA_ENDPOINT
//!   (the local runtime the rules and the connections invoke, e.g. http://127.0.0.1:9000),
//!   FLEETGUARD_LAMBDA_CONCURRENCY (1: its `--concurrency`),
//!   FLEETGUARD_STACK (its failed-events queue, `fleetctl setup-local` made it, takes the events
//!   whose every attempt failed) and FLEETGUARD_DEVICE_CA_ID (the template's `CaCertificateId`: the JITR rule
//!   hears that CA's registrations; unset: every CA's)
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use fleetguard_gateway::{Config, Gateway};

#[tokio::main]
async fn main() -> Result<(), String> {
    fleetguard_aws::telemetry::init();
    let port: u16 = std::env::var("FLEETGUARD_GATEWAY_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8883);
    let data_port: u16 = std::env::var("FLEETGUARD_GATEWAY_DATA_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8088);
    let sdk = fleetguard_aws::sdk_config().await;
    let region = sdk
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_else(|| "us-east-1".into());
    let account = std::env::var("FLEETGUARD_ACCOUNT_ID").unwrap_or_else(|_| "123456789012".into());
    // The template's topic rules; their Lambda actions go to the local runtime if given.
    let template =
        std::env::var("FLEETGUARD_TEMPLATE").unwrap_or_else(|_| "infra/template.yaml".into());
    let text = std::fs::read_to_string(&template).map_err(|e| format!("{template}: {e}"))?;
    let params = std::collections::HashMap::from([
        (
            "AWS::StackName".to_owned(),
            std::env::var("FLEETGUARD_STACK").unwrap_or_else(|_| "fleetguard-local".into()),
        ),
        (
            "CaCertificateId".to_owned(),
            std::env::var("FLEETGUARD_DEVICE_CA_ID").unwrap_or_else(|_| "+".into()),
        ),
    ]);
    let stack = params["AWS::StackName"].clone();
    let rules = fleetguard_gateway::rules::load(&text, &params)?;
    let connect = fleetguard_gateway::rules::connect_functions(&text)?;
    let (gateway_region, gateway_account) = (region.clone(), account.clone());
    let local = fleetguard_aws::template::LocalStack::new(&stack, &region, &account);
    let provisioning = fleetguard_gateway::claim::load(&text, &local)?;
    let endpoints = fleetguard_gateway::endpoints::load(&text, &local)?;
    let gateway = Gateway::start(
        &sdk,
        Config {
            bind: ([127, 0, 0, 1], port).into(),
            data_plane_bind: ([127, 0, 0, 1], data_port).into(),
            region,
            account,
            provisioning,
            endpoints,
            ..Config::local(rules, connect)
        },
    )
    .await?;
    // RegisterThing's resources under the template's provisioning role, as AWS IoT assumes it.
    gateway
        .provisioning
        .set_role(&fleetguard_aws::local::role_config(
            &sdk,
            fleetguard_aws::template::PROVISIONING_ROLE,
            &stack,
        ));
    let out = std::env::var("FLEETGUARD_GATEWAY_CA_OUT")
        .unwrap_or_else(|_| "target/gateway-server.pem".into());
    std::fs::write(&out, &gateway.server_cert_pem).map_err(|e| format!("{out}: {e}"))?;
    // Lambda's asynchronous invokes: each function's retries and on-failure queue, from the template.
    let functions = local.functions(&text).map_err(|e| e.to_string())?;
    gateway
        .rules
        .configure_async_invokes(&functions, &sdk, &stack, &gateway_region, &gateway_account)
        .await?;
    if let Ok(lambda) = std::env::var("FLEETGUARD_LAMBDA_ENDPOINT") {
        gateway.rules.set_lambda_endpoint(&lambda);
    }
    if let Some(n) = std::env::var("FLEETGUARD_LAMBDA_CONCURRENCY")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        gateway.rules.lambda.set_concurrency(n);
    }
    println!(
        "fleetguard-gateway: mqtts://localhost:{} (iot:Data-ATS; trust {out})",
        gateway.addr.port()
    );
    for (e, addr) in &gateway.endpoints {
        println!(
            "fleetguard-gateway: mqtts://localhost:{} ({}, {})",
            addr.port(),
            e.configuration,
            e.domain_name
        );
    }
    // Serves until killed (Ctrl-C's default action): no signal feature, which would change tokio's
    // features under the AWS SDK (see shared/feature-set).
    std::future::pending::<()>().await;
    Ok(())
}
