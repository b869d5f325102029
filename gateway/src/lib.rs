//! fleetguard's local IoT gateway: AWS IoT Core's device side on localhost, for tests and the demo
//! (a stand-in, not a production broker). MQTT 3.1.1 over mutual TLS; the certificate id is computed
//! from the peer certificate; the certificate's status and attached policies come from AWS IoT (the
//! emulator) and fleetguard's policy engine decides Connect, Publish, Subscribe and Receive.
//!
//! - [`tls`]: the server certificate, mutual TLS against the registered CAs.
//! - [`identity`]: the connection's principal and what AWS IoT says of it.
//! - [`session`]: one MQTT connection; [`router`]: sessions, subscriptions, delivery.
//! - [`topics`]: topic and filter rules.
//! - [`data_plane`]: the IoT data plane's HTTP API (Publish, DeleteConnection) for the functions.
//! - [`rules`]: the template's topic rules, their Lambda actions through the local runtime.

pub mod data_plane;
pub mod identity;
pub mod router;
pub mod rules;
pub mod session;
pub mod tls;
pub mod topics;

use aws_sdk_iot::Client;
use fleetguard_aws::iot::IotControlAdapter;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Where and as whom the gateway serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// MQTT over TLS; `127.0.0.1:0` picks a free port.
    pub bind: SocketAddr,
    /// The data plane's HTTP API (the functions' Publish and DeleteConnection).
    pub data_plane_bind: SocketAddr,
    pub region: String,
    pub account: String,
    /// The topic rules to run (see [`rules::load`]).
    pub rules: Vec<rules::Rule>,
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    /// Where the functions' iot-data calls go (`AWS_ENDPOINT_URL_IOT_DATA_PLANE=http://<this>`).
    pub data_plane_addr: SocketAddr,
    /// The server certificate clients must trust (PEM).
    pub server_cert_pem: String,
    pub router: router::Router,
    pub rules: Arc<rules::Rules>,
    task: tokio::task::JoinHandle<()>,
    data_plane: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
        self.data_plane.abort();
    }
}

impl Gateway {
    /// Listens on `config.bind` and serves until dropped.
    pub async fn start(sdk: &fleetguard_aws::SdkConfig, config: Config) -> Result<Gateway, String> {
        let identity = Arc::new(tls::ServerIdentity::generate()?);
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| format!("bind {}: {e}", config.bind))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let dp_listener = TcpListener::bind(config.data_plane_bind)
            .await
            .map_err(|e| format!("bind {}: {e}", config.data_plane_bind))?;
        let data_plane_addr = dp_listener.local_addr().map_err(|e| e.to_string())?;
        let router = router::Router::default();
        let rules = Arc::new(rules::Rules::new(config.rules));
        let data_plane = tokio::spawn(data_plane::serve(
            dp_listener,
            router.clone(),
            rules.clone(),
        ));
        let control = IotControlAdapter::new(sdk);
        let iot = Client::new(sdk);
        let settings = Arc::new(session::Settings {
            region: config.region,
            account: config.account,
            rules: rules.clone(),
        });
        let server_cert_pem = identity.cert_pem.clone();
        let r = router.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let (identity, control, iot, router, settings) = (
                    identity.clone(),
                    control.clone(),
                    iot.clone(),
                    r.clone(),
                    settings.clone(),
                );
                tokio::spawn(async move {
                    let ended = connection(stream, identity, control, iot, router, settings).await;
                    tracing::info!(%peer, ?ended, "connection ended");
                });
            }
        });
        Ok(Gateway {
            addr,
            data_plane_addr,
            server_cert_pem,
            router,
            rules,
            task,
            data_plane,
        })
    }
}

/// One TCP connection: the TLS handshake (mutual), the principal from the peer certificate, MQTT.
async fn connection(
    stream: tokio::net::TcpStream,
    identity: Arc<tls::ServerIdentity>,
    control: IotControlAdapter,
    iot: Client,
    router: router::Router,
    settings: Arc<session::Settings>,
) -> session::Ended {
    let config = match tls::server_config(&control, &identity).await {
        Ok(c) => c,
        Err(e) => return session::Ended::ProtocolError(format!("TLS configuration: {e}")),
    };
    let tls = match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
        Ok(t) => t,
        Err(e) => return session::Ended::ProtocolError(format!("TLS handshake: {e}")),
    };
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec());
    let Some(leaf) = leaf else {
        return session::Ended::NotAuthorized("no client certificate");
    };
    let principal = match identity::lookup(&iot, &leaf).await {
        Ok(p) => p,
        Err(e) => return session::Ended::ProtocolError(e),
    };
    session::serve(tls, principal, router, settings).await
}
