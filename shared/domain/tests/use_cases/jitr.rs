//! Just-in-time provisioning over the in-memory fakes: seconds, no emulator. The emulator-backed
//! suite (`tests/provisioning.rs` at the workspace root) runs the same decisions through DynamoDB
//! and AWS IoT.

use fleetguard_domain::model::{CertificateStatus, DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::ports::Registry;
use fleetguard_domain::provisioning::jitr::Provisioner;
use fleetguard_testkit::fakes::{InMemoryAudit, InMemoryIot, InMemoryRegistry};
use fleetguard_testkit::pki::TestCa;
use serde_json::json;
use time::OffsetDateTime;

struct Fx {
    p: Provisioner<InMemoryRegistry, InMemoryIot, InMemoryAudit>,
    ca: TestCa,
    ca_id: String,
    registry: InMemoryRegistry,
    audit: InMemoryAudit,
}

fn fx() -> Fx {
    let ca = TestCa::new("jitr CA");
    let (registry, iot, audit) = (
        InMemoryRegistry::default(),
        InMemoryIot::default(),
        InMemoryAudit::default(),
    );
    let ca_id = iot.register_ca(&ca.pem()).expect("CA").as_str().to_owned();
    let p = Provisioner::new(
        registry.clone(),
        iot,
        audit.clone(),
        "fleet".into(),
        CertificateStatus::Revoked,
    );
    Fx {
        p,
        ca,
        ca_id,
        registry,
        audit,
    }
}

fn event(cert_id: &str, ca_id: &str) -> serde_json::Value {
    json!({
        "certificateId": cert_id,
        "caCertificateId": ca_id,
        "timestamp": 1_700_000_000_000_i64,
        "certificateStatus": "PENDING_ACTIVATION",
        "awsAccountId": "123456789012",
        "certificateRegistrationTimestamp": "1700000000000"
    })
}

impl Fx {
    /// A certificate for `serial`, auto-registered (PENDING_ACTIVATION) as AWS IoT does.
    fn first_connect(&self, serial: &str) -> String {
        let pem = self.ca.issue(serial);
        self.p
            .control
            .register_certificate(&pem)
            .expect("register")
            .as_str()
            .to_owned()
    }

    async fn jitr(&self, cert: &str) -> fleetguard_domain::provisioning::jitr::Decision {
        self.p
            .handle(event(cert, &self.ca_id), OffsetDateTime::now_utc())
            .await
            .expect("decision")
    }

    fn status(&self, cert: &str) -> Option<CertificateStatus> {
        self.p
            .control
            .status(&fleetguard_domain::model::CertificateId::parse(cert).expect("id"))
    }
}

#[tokio::test]
async fn an_allow_listed_serial_is_provisioned_once_and_a_replay_changes_nothing() {
    let f = fx();
    let serial = Serial::parse("SN100").expect("serial");
    f.registry.import_serial(&serial).await.expect("import");
    let cert = f.first_connect("SN100");
    let d = f.jitr(&cert).await;
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Accepted, Reason::Provisioned)
    );
    assert_eq!(f.status(&cert), Some(CertificateStatus::Active));
    let device = f
        .registry
        .get_device(&serial)
        .await
        .expect("get")
        .expect("device");
    assert_eq!(device.status, DeviceStatus::Active);
    assert_eq!(
        device.certificate_id.map(|c| c.as_str().to_owned()),
        Some(cert.clone())
    );
    let entries = f.audit.entries().len();
    let d = f.jitr(&cert).await;
    assert_eq!(d.reason, Reason::AlreadyProvisioned, "{d:?}");
    assert_eq!(f.status(&cert), Some(CertificateStatus::Active));
    // The same event's acceptance is recorded once (its idempotency key): a replay adds nothing.
    assert_eq!(f.audit.entries().len(), entries);
}

#[tokio::test]
async fn a_stranger_cannot_take_a_serial() {
    let f = fx();
    // Not allow-listed: refused, and the certificate is revoked.
    let cert = f.first_connect("SN404");
    let d = f.jitr(&cert).await;
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::SerialNotAllowed)
    );
    assert_eq!(f.status(&cert), Some(CertificateStatus::Revoked));
    // A second certificate for a bound serial: refused, the first one stays.
    let serial = Serial::parse("SN101").expect("serial");
    f.registry.import_serial(&serial).await.expect("import");
    let first = f.first_connect("SN101");
    assert_eq!(f.jitr(&first).await.reason, Reason::Provisioned);
    let second = f.first_connect("SN101");
    let d = f.jitr(&second).await;
    assert_eq!(d.reason, Reason::SerialBoundToOtherCertificate, "{d:?}");
    assert_eq!(f.status(&second), Some(CertificateStatus::Revoked));
    assert_eq!(f.status(&first), Some(CertificateStatus::Active));
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let f = fx();
    let serial = Serial::parse("SN102").expect("serial");
    f.registry.import_serial(&serial).await.expect("import");
    let rogue = TestCa::new("rogue CA");
    let pem = rogue.issue("SN102");
    let cert =
        f.p.control
            .register_certificate(&pem)
            .expect("register")
            .as_str()
            .to_owned();
    // The event names our CA; the certificate was not signed by it.
    let d = f.jitr(&cert).await;
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::NotSignedByCa),
        "{d:?}"
    );
    let device = f
        .registry
        .get_device(&serial)
        .await
        .expect("get")
        .expect("device");
    assert_eq!(device.status, DeviceStatus::Manufactured, "nothing bound");
}

#[tokio::test]
async fn a_quarantined_or_revoked_serial_gets_no_new_certificate() {
    let f = fx();
    for (serial, to, reason) in [
        (
            "SN103",
            DeviceStatus::Quarantined,
            Reason::DeviceQuarantined,
        ),
        ("SN104", DeviceStatus::Revoked, Reason::SerialRevoked),
    ] {
        let s = Serial::parse(serial).expect("serial");
        f.registry.import_serial(&s).await.expect("import");
        let first = f.first_connect(serial);
        assert_eq!(f.jitr(&first).await.reason, Reason::Provisioned);
        assert!(f
            .registry
            .transition(&s, &[DeviceStatus::Active], to)
            .await
            .expect("transition"));
        let next = f.first_connect(serial);
        let d = f.jitr(&next).await;
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Rejected, reason),
            "{serial}: {d:?}"
        );
        assert_ne!(f.status(&next), Some(CertificateStatus::Active));
    }
}

#[tokio::test]
async fn a_malformed_event_is_an_audited_refusal() {
    let f = fx();
    for bad in [
        json!({}),
        json!({"certificateId": "nothex", "caCertificateId": "x"}),
        json!(42),
    ] {
        let d =
            f.p.handle(bad.clone(), OffsetDateTime::now_utc())
                .await
                .expect("decision");
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Rejected, Reason::MalformedEvent),
            "{bad}"
        );
    }
    assert_eq!(f.audit.entries().len(), 3);
}
