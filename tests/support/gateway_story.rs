//! The story through the local IoT gateway (`scripts/demo.sh --gateway`, and `tests/gateway_story.rs`
//! runs exactly it): real MQTT clients with real certificates and a JWT, the template's rules and
//! functions under `cargo lambda watch`. Each step prints the `mosquitto_pub` / `mosquitto_sub`
//! command a person can type against the same gateway, with the files it writes under
//! `target/demo-gateway/` (generated keys, never committed).

use crate::story::{Narrator, AUDIENCE, ISSUER};
use crate::{certificate_id_of, unique, Stack, TestCa, TestIdp};
use fleetguard_domain::authorization::authorizer::operator_principal;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{DeviceStatus, RecordId, Serial};
use fleetguard_domain::ports::Registry;
use fleetguard_gateway::Gateway;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS};
use std::path::PathBuf;
use std::time::Duration;

/// A device: its serial and where its certificate and key are written.
struct Device {
    serial: Serial,
    cert_pem: String,
    key_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

pub struct GatewayStory<'a> {
    stack: &'a Stack,
    narrator: Narrator,
    /// After the story, keep the gateway and the functions serving (until Ctrl-C) for a person's
    /// own mosquitto commands.
    pub hold: bool,
    dir: PathBuf,
}

impl std::ops::Deref for GatewayStory<'_> {
    type Target = Narrator;
    fn deref(&self) -> &Narrator {
        &self.narrator
    }
}

impl std::ops::DerefMut for GatewayStory<'_> {
    fn deref_mut(&mut self) -> &mut Narrator {
        &mut self.narrator
    }
}

type StepResult = Result<(), String>;

/// The next packet (PINGRESP skipped) or the connection's error, within `secs`.
pub async fn incoming(ev: &mut EventLoop, secs: u64) -> Result<Packet, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, ev.poll()).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(Event::Incoming(p))) if !matches!(p, Packet::PingResp) => return Ok(p),
            Ok(Ok(_)) => {}
        }
    }
}

/// The CONNACK's code, or why there was none.
pub async fn connack(ev: &mut EventLoop) -> Result<ConnectReturnCode, String> {
    match incoming(ev, 20).await {
        Ok(Packet::ConnAck(a)) => Ok(a.code),
        Ok(p) => Err(format!("expected CONNACK, got {p:?}")),
        Err(e) if e.contains("NotAuthorized") => Ok(ConnectReturnCode::NotAuthorized),
        Err(e) if e.contains("ServiceUnavailable") => Ok(ConnectReturnCode::ServiceUnavailable),
        Err(e) => Err(e),
    }
}

/// Whether the connection ends within `secs`.
pub async fn closes(ev: &mut EventLoop, secs: u64) -> bool {
    // Only the connection's end counts: a wait that runs out is a connection still open.
    for _ in 0..10 {
        match incoming(ev, secs).await {
            Err(e) if e == "timed out" => return false,
            Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

impl<'a> GatewayStory<'a> {
    pub fn new(stack: &'a Stack, print: bool) -> Self {
        let dir = crate::workspace_root().join("target/demo-gateway");
        GatewayStory {
            stack,
            narrator: Narrator::new(print),
            hold: false,
            dir,
        }
    }

    fn device(&self, ca: &TestCa) -> Result<Device, String> {
        let serial = Serial::parse(&unique("SN")).map_err(|e| e.to_string())?;
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert_pem = ca.issue_for_key(serial.as_str(), &key);
        let (cert, key_path) = (
            self.dir.join(format!("{serial}.pem")),
            self.dir.join(format!("{serial}.key")),
        );
        std::fs::write(&cert, &cert_pem).map_err(|e| e.to_string())?;
        std::fs::write(&key_path, key.serialize_pem()).map_err(|e| e.to_string())?;
        Ok(Device {
            serial,
            cert_pem,
            key_pem: key.serialize_pem(),
            cert,
            key: key_path,
        })
    }

    fn client(
        gw: &Gateway,
        client_id: &str,
        device: Option<&Device>,
        login: Option<(&str, &str)>,
    ) -> (AsyncClient, EventLoop) {
        // A device through the validated domain, anyone else through the default endpoint.
        let port = match device {
            Some(_) => gw.devices_addr().port(),
            None => gw.addr.port(),
        };
        let mut o = MqttOptions::new(client_id, "localhost", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Simple {
                ca: gw.server_cert_pem.clone().into_bytes(),
                alpn: None,
                client_auth: device.map(|d| {
                    (
                        d.cert_pem.clone().into_bytes(),
                        d.key_pem.clone().into_bytes(),
                    )
                }),
            },
        ));
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        AsyncClient::new(o, 16)
    }

    /// The mosquitto command for `device` (`pub` or `sub`), with `rest` appended.
    fn mosquitto(&self, gw: &Gateway, tool: &str, device: &Device, rest: &str) -> String {
        format!(
            "mosquitto_{tool} -h localhost -p {} --cafile {} --cert {} --key {} -V mqttv311 -i {} {rest}",
            gw.devices_addr().port(),
            self.dir.join("gateway-ca.pem").display(),
            device.cert.display(),
            device.key.display(),
            device.serial
        )
    }

    /// A device's first connection (dropped: JITR), then its certificate becomes ACTIVE.
    async fn first_connect(&mut self, gw: &Gateway, d: &Device) -> StepResult {
        let (_c, mut ev) = Self::client(gw, d.serial.as_str(), Some(d), None);
        let first = connack(&mut ev).await;
        self.check(
            "the first connection is dropped (its certificate registered PENDING_ACTIVATION)",
            first.is_err(),
        );
        let cert = certificate_id_of(&d.cert_pem);
        let mut status = CertificateStatus::Unknown;
        for _ in 0..1200 {
            status = self.stack.certificate_status(&cert).await;
            if status == CertificateStatus::Active {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.check(
            format!("the registration event ran the provisioner: certificate {status}"),
            status == CertificateStatus::Active,
        );
        Ok(())
    }

    /// The story; an `Err` is a step that could not run at all.
    pub async fn run(&mut self) -> StepResult {
        let stack = self.stack;
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        self.step(
            1,
            "The local stack with the gateway: AWS IoT Core's device side on localhost",
        );
        let ca = TestCa::new("fleetguard demo device CA");
        let ca_id = stack.register_ca(&ca).await;
        let idp = TestIdp::new(ISSUER, AUDIENCE);
        let local = crate::gateway::start(
            stack,
            crate::gateway::Options {
                env: &[
                    ("FLEETGUARD_JWT_ISSUER", ISSUER),
                    ("FLEETGUARD_JWT_AUDIENCE", AUDIENCE),
                    ("FLEETGUARD_JWKS", idp.jwks.as_str()),
                ],
                ..crate::gateway::Options::new(&ca_id)
            },
        )
        .await?;
        let (gw, lambda) = (&local.gw, &local.lambda);
        std::fs::write(self.dir.join("gateway-ca.pem"), &gw.server_cert_pem)
            .map_err(|e| e.to_string())?;
        let data_plane = format!("http://{}", gw.data_plane_addr);
        self.say(format!(
            "gateway mqtts://localhost:{} (devices, the validated domain) and :{} (the default endpoint: operators, password devices; server CA {}), data plane {data_plane}",
            gw.devices_addr().port(),
            gw.addr.port(),
            self.dir.join("gateway-ca.pem").display()
        ));
        self.say(format!(
            "device CA {ca_id} registered with auto-registration; functions under cargo lambda watch on {}",
            lambda.endpoint
        ));
        self.say("building and starting the functions the connections call...");
        for f in [
            "authorizer",
            "handshake-validator",
            "provisioner",
            "delete-record",
            "revoker",
        ] {
            let _ = lambda.invoke(f, &serde_json::json!({})).await;
        }

        self.step(2, "A device connects for the first time: JITR");
        let a = self.device(&ca)?;
        let b = self.device(&ca)?;
        for d in [&a, &b] {
            stack
                .registry()
                .import_serial(&d.serial)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.say(self.mosquitto(gw, "sub", &a, &format!("-t 'P/{}/#'", a.serial)));
        self.first_connect(gw, &a).await?;
        self.first_connect(gw, &b).await?;
        let (c, mut ev) = Self::client(gw, a.serial.as_str(), Some(&a), None);
        self.check(
            "it reconnects and is allowed",
            connack(&mut ev).await == Ok(ConnectReturnCode::Success),
        );

        self.step(3, "It deletes its own record and receives /accepted");
        stack.seed_record(&a.serial, "r1").await;
        stack.seed_record(&b.serial, "r9").await;
        let accepted = format!("P/{}/deleterecords/+/accepted", a.serial);
        c.subscribe(&accepted, QoS::AtLeastOnce)
            .await
            .map_err(|e| e.to_string())?;
        let _ = incoming(&mut ev, 10).await;
        self.say(self.mosquitto(
            gw,
            "pub",
            &a,
            &format!(
                "-t 'P/{}/deleterecords/r1' -m '{{\"request_id\": \"q1\"}}'",
                a.serial
            ),
        ));
        c.publish(
            format!("P/{}/deleterecords/r1", a.serial),
            QoS::AtLeastOnce,
            false,
            br#"{"request_id": "q1"}"#.to_vec(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut reply = None;
        for _ in 0..6 {
            if let Ok(Packet::Publish(p)) = incoming(&mut ev, 120).await {
                reply = Some(p);
                break;
            }
        }
        let body: serde_json::Value = reply
            .as_ref()
            .and_then(|p| serde_json::from_slice(&p.payload).ok())
            .unwrap_or_default();
        self.say(format!(
            "<- {} {body}",
            reply
                .as_ref()
                .map(|p| p.topic.as_str())
                .unwrap_or("(nothing)")
        ));
        self.check(
            "delete-record answered deleted on .../r1/accepted",
            body["reason"] == "deleted",
        );

        self.step(
            4,
            "It publishes into another serial's namespace: disconnected by policy, quarantined by the tripwire",
        );
        self.say(self.mosquitto(
            gw,
            "pub",
            &a,
            &format!("-t 'P/{}/deleterecords/r9' -m '{{}}'", b.serial),
        ));
        c.publish(
            format!("P/{}/deleterecords/r9", b.serial),
            QoS::AtLeastOnce,
            false,
            b"{}".to_vec(),
        )
        .await
        .map_err(|e| e.to_string())?;
        self.check(
            "the gateway closed its connection",
            closes(&mut ev, 10).await,
        );
        let r9 = RecordId::parse("r9").map_err(|e| e.to_string())?;
        let untouched = stack
            .record(&b.serial, &r9)
            .await
            .is_some_and(|r| r.deleted_at.is_none());
        self.check("the other serial's record is untouched", untouched);
        // AWS IoT's presence event says why it ended (AUTH_ERROR): the template's rule hands it to
        // the revoker, and the tripwire quarantines the device.
        let mut status = stack.device_status(&a.serial).await;
        for _ in 0..600 {
            if status == DeviceStatus::Quarantined {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = stack.device_status(&a.serial).await;
        }
        self.check(
            "the tripwire quarantined it (presence event: disconnectReason AUTH_ERROR)",
            status == DeviceStatus::Quarantined,
        );
        let release = serde_json::json!({"action": "release", "serial": a.serial.as_str(),
            "reason": "the demo's own attempt", "actor": "ops"});
        self.say(format!(
            "an operator looks and lets it back: fleetctl release {} --reason 'the demo's own attempt'",
            a.serial
        ));
        lambda.invoke("revoker", &release).await?;
        self.check(
            "released: the device is active again",
            stack.device_status(&a.serial).await == DeviceStatus::Active,
        );

        self.step(
            5,
            "Its key under the other serial's client id (a hijacked key): refused at connect",
        );
        self.say(format!(
            "(as step 2 with -i {} instead of -i {})",
            b.serial, a.serial
        ));
        let (_h, mut hev) = Self::client(gw, b.serial.as_str(), Some(&a), None);
        self.check(
            "CONNACK not authorized",
            connack(&mut hev).await == Ok(ConnectReturnCode::NotAuthorized),
        );

        self.step(
            6,
            "An operator signs in with a JWT through the custom authorizer",
        );
        let sub = unique("alice");
        let principal = operator_principal(ISSUER, &sub).to_string();
        stack.put_operator(&principal, true, &[&b.serial]).await;
        let token = idp.token(&sub, 3600);
        // For the person typing the command: a token of the demo's throwaway IdP, never printed.
        let token_file = self.dir.join("operator.jwt");
        std::fs::write(&token_file, &token).map_err(|e| e.to_string())?;
        self.say(format!(
            "mosquitto_pub -h localhost -p {} --cafile {} -V mqttv311 -i {principal} \\\n        -u 'alice?SDK=mosquitto&Version=2' -P \"$(cat {})\" -t 'P/{}/deleterecords/r9' -m '{{}}'",
            gw.addr.port(),
            self.dir.join("gateway-ca.pem").display(),
            token_file.display(),
            b.serial
        ));
        let (op, mut oev) = Self::client(
            gw,
            &principal,
            None,
            Some(("alice?SDK=mosquitto&Version=2", &token)),
        );
        self.check(
            "the authorizer let the operator in",
            connack(&mut oev).await == Ok(ConnectReturnCode::Success),
        );
        op.publish(
            format!("P/{}/deleterecords/r9", b.serial),
            QoS::AtLeastOnce,
            false,
            br#"{"request_id": "op-1"}"#.to_vec(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let _ = incoming(&mut oev, 5).await;
        let mut by = None;
        for _ in 0..600 {
            by = stack
                .record(&b.serial, &r9)
                .await
                .and_then(|r| r.deleted_by);
            if by.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.check(
            "it deleted the granted serial's record, as its principal",
            by.as_deref() == Some(principal.as_str()),
        );

        self.step(
            7,
            "The device is revoked (key compromised): its live session is cut",
        );
        tokio::time::sleep(Duration::from_millis(1100)).await; // one CONNECT a second per client id
        let (_c, mut ev) = Self::client(gw, a.serial.as_str(), Some(&a), None);
        let live = connack(&mut ev).await == Ok(ConnectReturnCode::Success);
        let revoke = serde_json::json!({"action": "revoke", "serial": a.serial.as_str(),
            "reason": "key extracted", "compromised_since": "2020-01-01T00:00:00Z",
            "rollback": true, "actor": "ops"});
        self.say(format!("-> invoke revoker {revoke}"));
        let r = lambda.invoke("revoker", &revoke).await?;
        self.say(format!("<- {r}"));
        self.check(
            "DeleteConnection closed the live session",
            live && closes(&mut ev, 20).await,
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (_c, mut ev) = Self::client(gw, a.serial.as_str(), Some(&a), None);
        let again = connack(&mut ev).await;
        self.check(
            "the reconnect is refused",
            again.is_err() || again == Ok(ConnectReturnCode::NotAuthorized),
        );

        self.step(8, "The rollback undid what it did since the compromise");
        let r1 = RecordId::parse("r1").map_err(|e| e.to_string())?;
        let restored = stack
            .record(&a.serial, &r1)
            .await
            .is_some_and(|r| r.deleted_at.is_none());
        self.check("its deleted record r1 is back", restored);
        if self.hold {
            self.say(format!(
                "\nThe gateway keeps serving on mqtts://localhost:{} (device {} is live, {} revoked); \
                 try the commands above. Ctrl-C to stop.",
                gw.addr.port(),
                b.serial,
                a.serial
            ));
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}
