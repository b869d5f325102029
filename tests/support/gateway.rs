//! A local IoT gateway for a test stack: the template's topic rules (and, when asked, its custom
//! authorizer and handshake validator) with the real functions under `cargo lambda watch`, which
//! answer through the gateway's data plane. Used by the gateway's tests, its load run and the
//! demo's gateway mode.

use crate::local_lambda::{function_env, LocalLambda};
use crate::Stack;
use fleetguard_gateway::{rules, Config, Gateway};
use std::collections::HashMap;
use std::time::Duration;

pub struct LocalGateway {
    pub gw: Gateway,
    pub lambda: LocalLambda,
}

/// How to start one.
pub struct Options<'a> {
    /// The device CA (the template's `CaCertificateId`; the handshake validator's fleet CA).
    pub ca_id: &'a str,
    /// Call the template's authorizer and handshake validator on connect.
    pub connect_functions: bool,
    /// Instances of each function (`cargo lambda watch --concurrency`), and the gateway's limit.
    pub instances: usize,
    /// How long one of the authorizer's seconds lasts.
    pub auth_second: Duration,
    /// More environment for the functions.
    pub env: &'a [(&'a str, &'a str)],
    /// Lambda's wait before an asynchronous retry (a minute on AWS), here.
    pub retry_delay: Duration,
}

impl<'a> Options<'a> {
    pub fn new(ca_id: &'a str) -> Self {
        Options {
            ca_id,
            connect_functions: true,
            instances: 1,
            auth_second: Duration::from_secs(1),
            env: &[],
            retry_delay: Duration::from_millis(500),
        }
    }
}

pub async fn start(stack: &Stack, o: Options<'_>) -> Result<LocalGateway, String> {
    let template = std::fs::read_to_string(crate::workspace_root().join("infra/template.yaml"))
        .map_err(|e| e.to_string())?;
    let params = HashMap::from([
        ("AWS::StackName".to_owned(), stack.prefix.clone()),
        ("CaCertificateId".to_owned(), o.ca_id.to_owned()),
    ]);
    let connect = if o.connect_functions {
        rules::connect_functions(&template)?
    } else {
        Default::default()
    };
    let local = stack.local.lock().expect("local stack").clone();
    let provisioning = fleetguard_gateway::claim::load(
        &template,
        &local.clone().parameter("CaCertificateId", o.ca_id),
    )?;
    // The template's domain configurations (the devices' validated domain, X.509 custom
    // authentication), with their handshake validator only when asked.
    let mut endpoints = fleetguard_gateway::endpoints::load(&template, &local)?;
    if !o.connect_functions {
        endpoints.iter_mut().for_each(|e| e.validator = None);
    }
    let gw = Gateway::start(
        &stack.sdk,
        Config {
            auth_second: o.auth_second,
            provisioning,
            endpoints,
            ..Config::local(rules::load(&template, &params)?, connect)
        },
    )
    .await?;
    // RegisterThing's resources under the template's provisioning role, as AWS IoT assumes it.
    gw.provisioning
        .set_role(&fleetguard_aws::local::role_config(
            &stack.sdk,
            fleetguard_aws::template::PROVISIONING_ROLE,
            &stack.prefix,
        ));
    // The functions' data plane is the gateway's (the template's IotDataEndpoint), their device CA
    // the template's CaCertificateId.
    stack.set_parameter("IotDataEndpoint", &format!("http://{}", gw.data_plane_addr));
    stack.set_parameter("CaCertificateId", o.ca_id);
    let lambda = LocalLambda::start_concurrent(&function_env(stack, o.env), false, o.instances);
    // Lambda's asynchronous invokes: the template's retries and on-failure queue for each function.
    let functions = local.functions(&template).map_err(|e| e.to_string())?;
    gw.rules
        .configure_async_invokes(
            &functions,
            &stack.sdk,
            &stack.prefix,
            crate::REGION,
            crate::ACCOUNT,
        )
        .await?;
    gw.rules.set_retry_delay(o.retry_delay);
    gw.rules.set_lambda_endpoint(&lambda.endpoint);
    gw.rules.lambda.set_concurrency(o.instances);
    Ok(LocalGateway { gw, lambda })
}

/// A gateway's configuration for a stack without the local runtime (no rules, no connect functions):
/// the stack's ways in without their handshake validator, so its devices still come in through the
/// validated domain.
pub fn bare_config(stack: &Stack) -> Config {
    let local = stack.local.lock().expect("local stack").clone();
    let mut endpoints = fleetguard_gateway::endpoints::load(&crate::template_text(), &local)
        .expect("the template's domain configurations");
    endpoints.iter_mut().for_each(|e| e.validator = None);
    Config {
        endpoints,
        ..Config::local(Vec::new(), Default::default())
    }
}

/// An MQTT client of `gw`'s validated device domain over mutual TLS with a device's certificate and
/// key (PEM).
pub fn device_client(
    gw: &Gateway,
    client_id: &str,
    cert_pem: &str,
    key_pem: &str,
) -> (rumqttc::AsyncClient, rumqttc::EventLoop) {
    let mut o = rumqttc::MqttOptions::new(client_id, "localhost", gw.devices_addr().port());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca: gw.server_cert_pem.clone().into_bytes(),
            alpn: None,
            client_auth: Some((cert_pem.as_bytes().to_vec(), key_pem.as_bytes().to_vec())),
        },
    ));
    rumqttc::AsyncClient::new(o, 16)
}
