//! fleetguard's local IoT gateway: AWS IoT Core's device side on localhost, for tests and the demo
//! (a stand-in, not a production broker). MQTT 3.1.1 over TLS; with a client certificate, the
//! certificate id is computed from the peer certificate, its status and attached policies come from
//! AWS IoT (the emulator); without one, the custom authorizer decides. fleetguard's policy engine
//! decides Connect, Publish, Subscribe and Receive.
//!
//! - [`endpoints`]: the default endpoint and the template's domain configurations (SNI, validator).
//! - [`tls`]: the server certificate, mutual TLS against the registered CAs.
//! - [`identity`]: a certificate connection's principal and what AWS IoT says of it.
//! - [`jitr`]: just-in-time registration on a device's first connection.
//! - [`authorizer`]: the custom authorizer and the handshake validator, called as AWS calls them.
//! - [`wire`]: MQTT 3.1.1 and 5 through rmqtt-codec; [`session`]: one MQTT connection; [`router`]: sessions, subscriptions, delivery, CONNECT quota.
//! - [`claim`]: fleet provisioning's MQTT API (AWS-issued certificates, RegisterThing).
//! - [`lifecycle`]: the presence events.
//! - [`topics`]: topic and filter rules.
//! - [`data_plane`]: the IoT data plane's HTTP API (Publish, DeleteConnection) for the functions.
//! - [`rules`]: the template's topic rules; [`lambda`]: the local runtime's Invoke API.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod authorizer;
pub mod claim;
pub mod data_plane;
pub mod endpoints;
pub mod iam;
pub mod identity;
pub mod jitr;
pub mod lambda;
pub mod lifecycle;
pub mod router;
pub mod rules;
pub mod session;
pub mod tls;
pub mod topics;
pub mod wire;

use aws_sdk_iot::Client;
use fleetguard_aws::iot::IotControlAdapter;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Where and as whom the gateway serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// MQTT over TLS, the default endpoint; `127.0.0.1:0` picks a free port. Each of `endpoints`
    /// listens on the next port up (free ports if this is 0).
    pub bind: SocketAddr,
    /// The template's domain configurations (see [`endpoints::load`]).
    pub endpoints: Vec<endpoints::Endpoint>,
    /// The data plane's HTTP API (the functions' Publish and DeleteConnection).
    pub data_plane_bind: SocketAddr,
    pub region: String,
    pub account: String,
    /// The topic rules to run (see [`rules::load`]).
    pub rules: Vec<rules::Rule>,
    /// The functions called while clients connect (see [`rules::connect_functions`]).
    pub connect: rules::ConnectFunctions,
    /// How long one of the custom authorizer's seconds lasts (one second; tests shorten it to watch
    /// `disconnectAfterInSeconds` run out).
    pub auth_second: std::time::Duration,
    /// How soon a certificate's policy changes reach its live sessions (AWS IoT: minutes).
    pub policy_refresh: std::time::Duration,
    /// The stack's provisioning templates (fleet provisioning by claim over MQTT).
    pub provisioning: Vec<claim::Template>,
}

impl Config {
    /// On free ports of 127.0.0.1, in the emulator's account, running `rules` and calling `connect`.
    pub fn local(rules: Vec<rules::Rule>, connect: rules::ConnectFunctions) -> Config {
        Config {
            bind: ([127, 0, 0, 1], 0).into(),
            data_plane_bind: ([127, 0, 0, 1], 0).into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            rules,
            connect,
            endpoints: Vec::new(),
            auth_second: std::time::Duration::from_secs(1),
            policy_refresh: std::time::Duration::from_secs(10),
            provisioning: Vec::new(),
        }
    }
}

/// A running gateway.
pub struct Gateway {
    /// The default endpoint (`iot:Data-ATS`).
    pub addr: SocketAddr,
    /// Each domain configuration's endpoint and where it listens.
    pub endpoints: Vec<(endpoints::Endpoint, SocketAddr)>,
    /// Where the functions' iot-data calls go (`AWS_ENDPOINT_URL_IOT_DATA_PLANE=http://<this>`).
    pub data_plane_addr: SocketAddr,
    /// The server certificate clients must trust (PEM).
    pub server_cert_pem: String,
    pub router: router::Router,
    pub rules: Arc<rules::Rules>,
    /// Fleet provisioning's MQTT API and AWS's CA for the certificates it issues.
    pub provisioning: Arc<claim::Provisioning>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    data_plane: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
        self.data_plane.abort();
    }
}

impl Gateway {
    /// Listens on `config.bind` and serves until dropped.
    pub async fn start(sdk: &fleetguard_aws::SdkConfig, config: Config) -> Result<Gateway, String> {
        let provisioning = Arc::new(claim::Provisioning::new(
            Client::new(sdk),
            config.provisioning,
            &config.region,
            &config.account,
        )?);
        let names: Vec<String> = config
            .endpoints
            .iter()
            .map(|e| e.domain_name.clone())
            .collect();
        let mut identity = tls::ServerIdentity::generate(&names)?;
        // AWS IoT trusts the certificates it issues itself (fleet provisioning, CreateKeysAndCertificate).
        identity.trust(provisioning.issuer_der());
        let identity = Arc::new(identity);
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| format!("bind {}: {e}", config.bind))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut listeners = vec![(endpoints::Endpoint::default_endpoint(), listener)];
        for (i, e) in config.endpoints.iter().enumerate() {
            let port = match config.bind.port() {
                0 => 0,
                p => p + 1 + i as u16,
            };
            let bind = SocketAddr::new(config.bind.ip(), port);
            let l = TcpListener::bind(bind)
                .await
                .map_err(|err| format!("bind {bind} ({}): {err}", e.configuration))?;
            listeners.push((e.clone(), l));
        }
        let dp_listener = TcpListener::bind(config.data_plane_bind)
            .await
            .map_err(|e| format!("bind {}: {e}", config.data_plane_bind))?;
        let data_plane_addr = dp_listener.local_addr().map_err(|e| e.to_string())?;
        let router = router::Router::default();
        let rules = Arc::new(rules::Rules::new(
            config.rules,
            Arc::new(lambda::Lambda::default()),
        ));
        let callers = data_plane::Callers {
            emulator: sdk.endpoint_url().map(str::to_owned),
            region: config.region.clone(),
            account: config.account.clone(),
            client: fleetguard_aws::http::HttpClient::new().map_err(|e| e.to_string())?,
        };
        let data_plane = tokio::spawn(data_plane::serve(
            dp_listener,
            router.clone(),
            rules.clone(),
            Arc::new(callers),
        ));
        let settings = Arc::new(session::Settings {
            region: config.region,
            account: config.account,
            rules: rules.clone(),
            authorizer: config.connect.authorizer,
            auth_second: config.auth_second,
            iot: Some(Client::new(sdk)),
            policy_refresh: config.policy_refresh,
            provisioning: Some(provisioning.clone()),
        });
        let shared = Services {
            identity,
            tls: tls::ConfigCache::default(),
            control: IotControlAdapter::new(sdk),
            iot: Client::new(sdk),
            router: router.clone(),
            settings,
            endpoint: Arc::new(endpoints::Endpoint::default_endpoint()),
            endpoints: Arc::new(config.endpoints.clone()),
        };
        let server_cert_pem = shared.identity.cert_pem.clone();
        let mut served = Vec::new();
        let mut tasks = Vec::new();
        for (endpoint, listener) in listeners {
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            if endpoint.configuration != endpoints::DEFAULT {
                served.push((endpoint.clone(), local));
            }
            let services = Services {
                endpoint: Arc::new(endpoint),
                ..shared.clone()
            };
            tasks.push(tokio::spawn(accept(listener, services)));
        }
        Ok(Gateway {
            addr,
            endpoints: served,
            data_plane_addr,
            server_cert_pem,
            router,
            rules,
            provisioning,
            tasks,
            data_plane,
        })
    }

    /// Where a domain configuration's endpoint listens.
    pub fn endpoint(&self, configuration: &str) -> Option<SocketAddr> {
        self.endpoints
            .iter()
            .find(|(e, _)| e.configuration == configuration)
            .map(|(_, a)| *a)
    }

    /// Where devices connect: the first `AWS_X509` domain configuration (the validated domain), else
    /// the default endpoint.
    pub fn devices_addr(&self) -> SocketAddr {
        self.endpoints
            .iter()
            .find(|(e, _)| e.authentication == endpoints::Authentication::AwsX509)
            .map_or(self.addr, |(_, a)| *a)
    }
}

/// Serves the connections of one endpoint's listener.
async fn accept(listener: TcpListener, services: Services) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of file descriptors, say: wait rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let services = services.clone();
        tokio::spawn(async move {
            let ended = connection(stream, peer, services).await;
            tracing::info!(%peer, ?ended, "connection ended");
        });
    }
}

/// What a connection's handling needs.
#[derive(Clone)]
struct Services {
    identity: Arc<tls::ServerIdentity>,
    tls: tls::ConfigCache,
    control: IotControlAdapter,
    iot: Client,
    router: router::Router,
    settings: Arc<session::Settings>,
    /// The endpoint whose port the connection came in on, and every domain configuration's.
    endpoint: Arc<endpoints::Endpoint>,
    endpoints: Arc<Vec<endpoints::Endpoint>>,
}

/// One TCP connection: the TLS handshake, then who it is (a client certificate: the handshake
/// validator, AWS IoT's view of the certificate, JITR; none: the custom authorizer on CONNECT), MQTT.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    s: Services,
) -> session::Ended {
    use session::Ended;
    let config = match s.tls.get(&s.control, &s.identity).await {
        Ok(c) => c,
        Err(e) => return Ended::ProtocolError(format!("TLS configuration: {e}")),
    };
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Ended::ProtocolError(format!("TLS handshake: {e}")),
        Err(_) => return Ended::NoConnect,
    };
    let server_name = tls.get_ref().1.server_name().map(str::to_owned);
    let endpoint = endpoints::reached(&s.endpoints, &s.endpoint, server_name.as_deref()).clone();
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec());
    let identify = identify(&s, &endpoint, leaf, server_name);
    let auth = match tokio::time::timeout(IDENTIFY_TIMEOUT, identify).await {
        Ok(Ok(auth)) => auth,
        Ok(Err(ended)) => return ended,
        Err(_) => return Ended::ProtocolError("identifying the client timed out".into()),
    };
    session::serve(tls, auth, &endpoint.domain_name, peer, s.router, s.settings).await
}

/// How long the TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the handshake validator, AWS IoT's view of the certificate and JITR may take together
/// (the validator's turn in the local runtime's queue included).
const IDENTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// Who a connection is from its TLS session and the endpoint it reached, or how it ends (JITR, a
/// refusal).
async fn identify(
    s: &Services,
    endpoint: &endpoints::Endpoint,
    leaf: Option<Vec<u8>>,
    server_name: Option<String>,
) -> Result<session::Authentication, session::Ended> {
    use endpoints::Authentication as Kind;
    use session::Ended;
    let Some(leaf) = leaf else {
        return match endpoint.authentication {
            Kind::Default => Ok(session::Authentication::Custom { server_name }),
            // A domain configuration of an X.509 type has no way in without a certificate.
            Kind::AwsX509 | Kind::CustomAuthX509 => Err(Ended::NotAuthorized(
                "a client certificate is required here",
            )),
        };
    };
    let id = identity::certificate_id(&leaf);
    let pem = fleetguard_domain::lifecycle::ca::der_to_pem(&leaf);
    if let Some(function) = endpoint.validator.as_deref() {
        let allowed = authorizer::validate_handshake(
            &s.settings.rules.lambda,
            function,
            &authorizer::connection_id(),
            &id,
            server_name.as_deref(),
            &pem,
        )
        .await;
        if allowed != Ok(true) {
            tracing::info!(certificate = %id, ?allowed, "handshake validator refused");
            return Err(Ended::NotAuthorized("handshake validator refused"));
        }
    }
    let protocol = Ended::ProtocolError;
    // The registration event (again, for a certificate still pending activation).
    let registered = |certificate_id: &str, ca_id: &str| {
        let now = time::OffsetDateTime::now_utc();
        let event = jitr::event(certificate_id, ca_id, &s.settings.account, now);
        session::emit(&s.router, &s.settings.rules, Some(event));
    };
    match identity::lookup(&s.iot, &leaf).await.map_err(protocol)? {
        None => {
            let found = jitr::auto_registering_ca(&s.iot, &leaf).await;
            let Some((ca_id, ca_pem)) = found.map_err(protocol)? else {
                return Ok(session::Authentication::Certificate(None));
            };
            let id = jitr::register(&s.iot, &leaf, &ca_pem)
                .await
                .map_err(protocol)?;
            registered(&id, &ca_id);
            Err(Ended::JustInTimeRegistration)
        }
        Some(p) if p.status == "PENDING_ACTIVATION" => {
            if let Some(ca_id) = &p.ca_certificate_id {
                registered(&p.certificate_id, ca_id);
            }
            Err(Ended::JustInTimeRegistration)
        }
        Some(p) if endpoint.authentication == Kind::CustomAuthX509 => {
            Ok(session::Authentication::CertificateAndCustom {
                principal: p,
                server_name,
                pem,
            })
        }
        Some(p) => Ok(session::Authentication::Certificate(Some(p))),
    }
}
