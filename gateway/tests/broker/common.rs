//! What the gateway's tests share: clients, reading their packets, watching what they receive.
// Each test binary uses its own part of these helpers.
#![allow(dead_code, unused_imports)]

pub use fleetguard_tests::gateway_story::{closes, connack, incoming};
use rumqttc::{Event, EventLoop, Packet};
use std::time::Duration;

/// A client of the gateway at `port` trusting `server_ca`, with a client certificate (PEM cert, PEM
/// key) or, without one, username and password for the custom authorizer.
pub fn client(
    port: u16,
    server_ca: &str,
    client_id: &str,
    cert: Option<(&str, &str)>,
    login: Option<(&str, &str)>,
) -> (rumqttc::AsyncClient, EventLoop) {
    let mut o = rumqttc::MqttOptions::new(client_id, "localhost", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca: server_ca.as_bytes().to_vec(),
            alpn: None,
            client_auth: cert.map(|(c, k)| (c.as_bytes().to_vec(), k.as_bytes().to_vec())),
        },
    ));
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    let (c, mut ev) = rumqttc::AsyncClient::new(o, 16);
    // TLS and CONNECT within a minute (rumqttc's default is 5 s; a load run queues connections).
    let mut network = rumqttc::NetworkOptions::new();
    network.set_connection_timeout(60);
    ev.set_network_options(network);
    (c, ev)
}

/// Messages received by a watching client: (topic, JSON payload).
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// Polls `ev` in the background, keeping every message it receives.
pub fn watch(mut ev: EventLoop) -> Seen {
    let seen: Seen = Default::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok(e) = ev.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = e {
                let v = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                s.lock().unwrap().push((p.topic.clone(), v));
            }
        }
    });
    seen
}

/// The first message seen on `topic` matching `pred`, waiting up to `secs`.
pub async fn seen_on(
    seen: &Seen,
    topic: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
    secs: u64,
) -> Option<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((_, v)) = seen
            .lock()
            .unwrap()
            .iter()
            .find(|(t, v)| t == topic && pred(v))
        {
            return Some(v.clone());
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A device and the key it holds.
pub struct Device {
    pub serial: fleetguard_domain::model::Serial,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A device provisioned through JITR (the provisioner's use case), with a key we hold.
pub async fn provisioned(
    stack: &fleetguard_tests::Stack,
    ca: &fleetguard_tests::TestCa,
    ca_id: &str,
) -> Device {
    let d = stack.provision_device_with_key(ca, ca_id).await;
    Device {
        serial: d.serial,
        cert_pem: d.cert_pem,
        key_pem: d.key_pem,
    }
}

/// A stack with a registered device CA and a gateway with mutual TLS only (no custom authorizer, no
/// rules): the fixture of the broker's policy tests.
pub struct BareGateway {
    pub stack: fleetguard_tests::Stack,
    pub ca: fleetguard_tests::TestCa,
    pub ca_id: String,
    pub gw: fleetguard_gateway::Gateway,
}

impl BareGateway {
    pub async fn start(ca_name: &str) -> Self {
        Self::with(ca_name, |c| c).await
    }

    /// With the bare configuration changed by `config`.
    pub async fn with(
        ca_name: &str,
        config: impl FnOnce(fleetguard_gateway::Config) -> fleetguard_gateway::Config,
    ) -> Self {
        let stack = fleetguard_tests::Stack::new().await;
        let ca = fleetguard_tests::TestCa::new(ca_name);
        let ca_id = stack.register_ca(&ca).await;
        let bare = fleetguard_tests::gateway::bare_config(&stack);
        let gw = fleetguard_gateway::Gateway::start(&stack.sdk, config(bare))
            .await
            .expect("gateway");
        Self {
            stack,
            ca,
            ca_id,
            gw,
        }
    }

    /// A device provisioned through JITR, with a key we hold.
    pub async fn device(&self) -> Device {
        provisioned(&self.stack, &self.ca, &self.ca_id).await
    }

    /// Two devices: the one acting and the neighbour it must not reach.
    pub async fn two_devices(&self) -> (Device, Device) {
        (self.device().await, self.device().await)
    }
}
