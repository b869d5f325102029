//! Certificate rotation over the fakes: rotate, confirm, the sweep, the expiry watch, every refusal,
//! replays, faults and an isolation in the middle.

use fleetguard_domain::lifecycle::expiry;
use fleetguard_domain::lifecycle::revocation::{Action, Command, RevocationConfig, Revoker};
use fleetguard_domain::lifecycle::rotation::{RotationConfig, RotationService, RotationSweep};
use fleetguard_domain::model::{
    CertificateId, CertificateStatus, Device, DeviceStatus, Enrollment, Reason, Serial,
};
use fleetguard_domain::ports::{IotControl, Registry, Rotations};
use fleetguard_domain::{Error, Result};
use fleetguard_testkit::fakes::{
    InMemoryAudit, InMemoryIot, InMemoryRecords, InMemoryRegistry, InMemoryRotations,
    RecordingConnections, RecordingPublisher,
};
use fleetguard_testkit::intercept::{Hook, Intercepted, IotCall};
use fleetguard_testkit::pki::{certificate_id, csr_pem, TestCa, TestSigner};
use rcgen::KeyPair;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

mod concurrency;
mod expiry_watch;
mod flow;
mod refusals;

const POLICY: &str = "fleet-device";

/// Fails the named call once (a fault between two steps of a rotation).
#[derive(Clone, Default)]
struct FailOnce(Arc<Mutex<Option<&'static str>>>);

impl Hook for FailOnce {
    async fn before(&self, call: IotCall<'_>) -> Result<()> {
        let name = match call {
            IotCall::DescribeCertificate(_) => "describe",
            IotCall::AttachPolicy { .. } => "attach_policy",
            IotCall::AttachThingPrincipal { .. } => "attach_thing",
            IotCall::SetCertificateStatus { .. } => "status",
            IotCall::RegisterCertificate { .. } => "register",
            _ => return Ok(()),
        };
        let mut fail = self.0.lock().unwrap();
        if *fail == Some(name) {
            *fail = None;
            return Err(Error::aws(
                name,
                fleetguard_domain::error::AwsErrorKind::Throttled,
                "injected",
            ));
        }
        Ok(())
    }
}

/// AWS IoT that fails the named call once.
type Faulty = Intercepted<InMemoryIot, FailOnce>;

type Service = RotationService<
    InMemoryRegistry,
    InMemoryRotations,
    Faulty,
    TestSigner,
    RecordingPublisher,
    InMemoryAudit,
>;

struct Fleet {
    registry: InMemoryRegistry,
    audit: InMemoryAudit,
    rotations: InMemoryRotations,
    iot: Faulty,
    publisher: RecordingPublisher,
    service: Service,
    factory_ca: TestCa,
}

fn config() -> RotationConfig {
    RotationConfig {
        fleet_policy: POLICY.into(),
        validity_days: 365,
        confirm_hours: 24,
        grace_hours: 24,
        min_interval_hours: 24,
        expiry_window_days: 30,
    }
}

impl Fleet {
    async fn new() -> Self {
        let registry = InMemoryRegistry::default();
        let audit = InMemoryAudit::default();
        let rotations = InMemoryRotations {
            registry: registry.clone(),
            audit: audit.clone(),
        };
        let iot = Faulty::default();
        let signer = TestSigner::default();
        let ca_pem = signer.ca_pem("fleet CA (KMS)", 3650).await;
        iot.inner.register_ca(&ca_pem).expect("CA");
        let publisher = RecordingPublisher::default();
        let service = RotationService {
            registry: registry.clone(),
            rotations: rotations.clone(),
            control: iot.clone(),
            signer,
            publisher: publisher.clone(),
            audit: audit.clone(),
            config: config(),
            ca_pem,
        };
        Self {
            registry,
            audit,
            rotations,
            iot,
            publisher,
            service,
            factory_ca: TestCa::new("factory CA"),
        }
    }

    /// A provisioned device: its certificate (factory CA) ACTIVE with the policy and the thing, bound.
    async fn device(&self, serial: &str) -> (Serial, CertificateId, KeyPair) {
        let (s, id, key) = self.bound(serial).await;
        // Its factory certificate is far from expiry: an operator asks for the rotation (what
        // `fleetctl devices request-rotation` does), so it is due.
        let asked = fleetguard_domain::lifecycle::rotation::request_rotation(
            &self.registry,
            &self.rotations,
            &self.publisher,
            &s,
            "fleetctl:test",
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        assert!(asked);
        (s, id, key)
    }

    /// As [`Self::device`], with no rotation asked for.
    async fn bound(&self, serial: &str) -> (Serial, CertificateId, KeyPair) {
        let s = Serial::parse(serial).unwrap();
        let key = KeyPair::generate().unwrap();
        let pem = self.factory_ca.issue_for_key(serial, &key);
        let id = self.iot.inner.register_certificate(&pem).unwrap();
        let iot = &self.iot.inner;
        iot.set_certificate_status(&id, CertificateStatus::Active)
            .await
            .unwrap();
        let arn = iot.describe_certificate(&id).await.unwrap().unwrap().arn;
        iot.ensure_thing(&s).await.unwrap();
        iot.attach_policy(POLICY, &arn).await.unwrap();
        iot.attach_thing_principal(&s, &arn).await.unwrap();
        self.registry.import_serial(&s).await.unwrap();
        self.registry
            .bind_certificate(&s, &id, None, None)
            .await
            .unwrap();
        (s, id, key)
    }

    async fn send(
        &self,
        action: &str,
        serial: &Serial,
        principal: &str,
        csr: Option<&str>,
    ) -> Value {
        self.send_at(action, serial, principal, csr, 1_764_000_000_000)
            .await
    }

    async fn send_at(
        &self,
        action: &str,
        serial: &Serial,
        principal: &str,
        csr: Option<&str>,
        received_at: i64,
    ) -> Value {
        let d = self
            .service
            .handle(json!({
                "action": action, "serial": serial.as_str(), "principal": principal,
                "client_id": serial.as_str(), "received_at": received_at, "csr": csr,
                "request_id": "r1",
            }))
            .await
            .expect("handled");
        serde_json::to_value(d).unwrap()
    }

    fn last_reply(&self) -> (String, Value) {
        self.publisher.published().last().cloned().expect("a reply")
    }

    async fn device_now(&self, s: &Serial) -> Device {
        self.registry.get_device(s).await.unwrap().unwrap()
    }

    fn sweep(&self) -> RotationSweep<InMemoryRegistry, InMemoryRotations, Faulty, InMemoryAudit> {
        RotationSweep {
            registry: self.registry.clone(),
            rotations: self.rotations.clone(),
            control: self.iot.clone(),
            audit: self.audit.clone(),
            fleet_policy: POLICY.into(),
        }
    }

    fn revoker(
        &self,
    ) -> Revoker<InMemoryRegistry, Faulty, RecordingConnections, InMemoryRecords, InMemoryAudit>
    {
        let mut config = RevocationConfig::operators_only();
        config.fleet_policy = POLICY.into();
        config.quarantine_group = "quarantine".into();
        Revoker {
            registry: self.registry.clone(),
            control: self.iot.clone(),
            connections: RecordingConnections::default(),
            records: InMemoryRecords::new(self.audit.clone()),
            audit: self.audit.clone(),
            config,
        }
    }

    async fn isolate(&self, serial: &Serial, action: Action) {
        self.revoker()
            .command(
                Command {
                    action,
                    serial: Some(serial.clone()),
                    certificate_id: None,
                    principal: None,
                    reason: None,
                    compromised_since: None,
                    rollback: false,
                    actor: Some("ops".into()),
                },
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("isolate");
    }

    fn arn(id: &CertificateId) -> String {
        format!("arn:aws:iot:us-east-1:123456789012:cert/{id}")
    }

    /// The reasons audited after the set-up (an operator's rotation request).
    fn reasons(&self) -> Vec<Reason> {
        self.audit
            .entries()
            .iter()
            .filter(|e| e.action != "request_rotation")
            .map(|e| e.reason)
            .collect()
    }
}

fn new_csr(serial: &str) -> (KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let csr = csr_pem(&key, serial);
    (key, csr)
}
