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

#[tokio::test]
async fn a_rotation_issues_binds_after_proof_and_retires_the_old_certificate() {
    let f = Fleet::new().await;
    let (s, old, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");

    let d = f.send("rotate", &s, old.as_str(), Some(&csr)).await;
    assert_eq!(d["reason"], "certificate_issued", "{d}");
    let (topic, reply) = f.last_reply();
    assert_eq!(topic, "P/SN1/certificates/rotate/accepted");
    let pem = reply["certificate_pem"].as_str().unwrap();
    let next = certificate_id(pem);
    // Signed by the fleet CA, for this serial, with the new key; ACTIVE, with the policy and thing.
    let cert = fleetguard_domain::x509::validate_device_certificate(
        pem,
        &f.service.ca_pem,
        OffsetDateTime::now_utc(),
    )
    .expect("chains to the fleet CA");
    assert_eq!((cert.serial.as_str(), &cert.id), ("SN1", &next));
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Active));
    assert_eq!(f.iot.inner.attached_policies(&Fleet::arn(&next)), [POLICY]);
    assert!(f
        .iot
        .inner
        .thing_principals("SN1")
        .contains(&Fleet::arn(&next)));
    let dev = f.device_now(&s).await;
    assert_eq!(
        dev.certificate_id.as_ref(),
        Some(&old),
        "not bound before proof"
    );
    assert_eq!(dev.rotation.as_ref().unwrap().next_certificate_id, next);

    // The old certificate cannot confirm; the new one can.
    let d = f.send("confirm", &s, old.as_str(), None).await;
    assert_eq!(
        d["reason"], "no_rotation",
        "the current certificate's confirm is refused while a rotation is pending"
    );
    assert_eq!(f.last_reply().0, "P/SN1/certificates/confirm/rejected");
    assert_eq!(f.device_now(&s).await.certificate_id.as_ref(), Some(&old));
    let d = f.send("confirm", &s, next.as_str(), None).await;
    assert_eq!(d["reason"], "rotation_confirmed");
    assert_eq!(f.last_reply().0, "P/SN1/certificates/confirm/accepted");
    let dev = f.device_now(&s).await;
    assert_eq!(dev.certificate_id.as_ref(), Some(&next));
    assert_eq!(dev.previous_certificate_id.as_ref(), Some(&old));
    assert_eq!(
        dev.certificate_not_after,
        Some(
            fleetguard_domain::model::Timestamp::parse(reply["not_after"].as_str().unwrap())
                .unwrap()
        )
    );
    assert_eq!(
        f.iot.inner.status(&old),
        Some(CertificateStatus::Active),
        "grace period"
    );

    // A replayed confirm changes nothing.
    let entries = f.audit.entries().len();
    let d = f.send("confirm", &s, next.as_str(), None).await;
    assert_eq!(d["reason"], "rotation_confirmed");
    assert_eq!(f.audit.entries().len(), entries);
    assert_eq!(f.device_now(&s).await, dev);

    // Before the grace period ends the sweep leaves it; after, the old certificate is retired.
    let r = f.sweep().sweep(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((r.expired, r.retired), (0, 0));
    let later = OffsetDateTime::now_utc() + Duration::hours(25);
    let r = f.sweep().sweep(later).await.unwrap();
    assert_eq!((r.expired, r.retired), (0, 1));
    assert_eq!(f.iot.inner.status(&old), Some(CertificateStatus::Inactive));
    assert!(f.iot.inner.attached_policies(&Fleet::arn(&old)).is_empty());
    assert!(!f
        .iot
        .inner
        .thing_principals("SN1")
        .contains(&Fleet::arn(&old)));
    assert!(
        f.registry
            .get_certificate(&old)
            .await
            .unwrap()
            .unwrap()
            .denied
    );
    let dev = f.device_now(&s).await;
    assert_eq!((dev.previous_certificate_id, dev.deadline), (None, None));
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Active));
    // A second sweep finds nothing.
    let r = f.sweep().sweep(later).await.unwrap();
    assert_eq!((r.expired, r.retired, r.skipped), (0, 0, 0));
    assert_eq!(
        f.reasons(),
        [
            Reason::CertificateIssued,
            // The old certificate's confirm, refused.
            Reason::NoRotation,
            Reason::RotationConfirmed,
            Reason::CertificateRetired
        ]
    );
}

/// Each refused request: its reason, a rejected reply, nothing written but the audit.
#[tokio::test]
async fn refused_requests_write_nothing_but_the_audit() {
    let f = Fleet::new().await;
    let (s, cert, key) = f.device("SN1").await;
    let (_, other_cert, _) = f.device("SN2").await;
    let (_, good) = new_csr("SN1");
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut bad_sig = fleetguard_domain::lifecycle::csr::csr_pem_to_der(&good).unwrap();
    let n = bad_sig.len();
    bad_sig[n - 5] ^= 0x01;
    let bad_sig = pem_of("CERTIFICATE REQUEST", &bad_sig);
    let oversize = format!("{good}{}", " ".repeat(9000));
    let cases: Vec<(&str, String, &str, Reason)> = vec![
        (
            "other serial's certificate",
            good.clone(),
            other_cert.as_str(),
            Reason::NotCurrentCertificate,
        ),
        (
            "current key",
            csr_pem(&key, "SN1"),
            cert.as_str(),
            Reason::CsrKeyReused,
        ),
        (
            "bad self-signature",
            bad_sig,
            cert.as_str(),
            Reason::CsrSignatureInvalid,
        ),
        ("oversize", oversize, cert.as_str(), Reason::MalformedCsr),
        (
            "not a CSR",
            f.factory_ca.issue("SN1"),
            cert.as_str(),
            Reason::MalformedCsr,
        ),
        (
            "P-384 key",
            csr_pem(&p384, "SN1"),
            cert.as_str(),
            Reason::CsrKeyNotAllowed,
        ),
        (
            "subject names another serial",
            csr_pem(&KeyPair::generate().unwrap(), "SN2"),
            cert.as_str(),
            Reason::SerialMismatch,
        ),
    ];
    let before = f.device_now(&s).await;
    for (i, (name, csr, principal, reason)) in cases.into_iter().enumerate() {
        let d = f
            .send_at(
                "rotate",
                &s,
                principal,
                Some(&csr),
                1_764_000_000_000 + i as i64,
            )
            .await;
        assert_eq!(d["reason"], reason.as_str(), "{name}: {d}");
        let (topic, reply) = f.last_reply();
        assert_eq!(topic, "P/SN1/certificates/rotate/rejected", "{name}");
        assert!(reply.get("certificate_pem").is_none(), "{name}");
        assert_eq!(f.device_now(&s).await, before, "{name}: registry unchanged");
        assert_eq!(f.reasons().len(), i + 1, "{name}: one audit entry");
    }
    // Quarantined, then revoked: refused, and still nothing issued.
    f.isolate(&s, Action::Quarantine).await;
    let d = f.send_at("rotate", &s, cert.as_str(), Some(&good), 1).await;
    assert_eq!(d["reason"], "device_quarantined");
    f.isolate(&s, Action::Revoke).await;
    let d = f.send_at("rotate", &s, cert.as_str(), Some(&good), 2).await;
    assert_eq!(d["reason"], "serial_revoked");
    assert!(f.device_now(&s).await.rotation.is_none());
    // Not a certificate principal (an operator, a password device): refused on the rotate reply
    // topic too. An unknown action has no reply topic: audited only.
    for (i, principal) in ["opalice", "dv0123456789abcdef0123456789abcdef01234567"]
        .into_iter()
        .enumerate()
    {
        let d = f
            .send_at("rotate", &s, principal, Some(&good), 3 + i as i64)
            .await;
        assert_eq!(
            (d["reason"].as_str(), d["reply_topic"].as_str()),
            (
                Some("principal_mismatch"),
                Some("P/SN1/certificates/rotate/rejected")
            )
        );
        assert_eq!(f.last_reply().1["reason"], "principal_mismatch");
    }
    let d = f
        .send_at("rotate!", &s, cert.as_str(), Some(&good), 5)
        .await;
    assert_eq!(
        (d["reason"].as_str(), d.get("reply_topic")),
        (Some("malformed_event"), None)
    );
    // An event over the size limit (a CSR padded past it) is answered as well.
    let huge = format!(
        "{good}{}",
        " ".repeat(fleetguard_domain::lifecycle::rotation::MAX_EVENT_BYTES)
    );
    let d = f.send_at("rotate", &s, cert.as_str(), Some(&huge), 6).await;
    assert_eq!(
        (d["reason"].as_str(), d["reply_topic"].as_str()),
        (
            Some("malformed_event"),
            Some("P/SN1/certificates/rotate/rejected")
        )
    );
}

fn pem_of(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}

#[tokio::test]
async fn a_replayed_request_gets_the_same_certificate_and_a_second_one_waits() {
    let f = Fleet::new().await;
    let (s, cert, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    let first = f.last_reply().1;
    f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    let again = f.last_reply().1;
    assert_eq!(first, again, "the same certificate, not a second one");
    assert_eq!(f.reasons(), [Reason::CertificateIssued]);
    // Another CSR while this rotation is in flight, then after it is confirmed (rate limit).
    let (_, other) = new_csr("SN1");
    let d = f
        .send_at("rotate", &s, cert.as_str(), Some(&other), 5)
        .await;
    assert_eq!(d["reason"], "rotation_in_flight");
    let next = CertificateId::parse(first["certificate_id"].as_str().unwrap()).unwrap();
    f.send("confirm", &s, next.as_str(), None).await;
    f.sweep()
        .sweep(OffsetDateTime::now_utc() + Duration::hours(25))
        .await
        .unwrap();
    let d = f
        .send_at("rotate", &s, next.as_str(), Some(&other), 6)
        .await;
    assert_eq!(d["reason"], "rotation_rate_limited");
}

#[tokio::test]
async fn an_unconfirmed_rotation_expires_and_the_old_certificate_stays() {
    let f = Fleet::new().await;
    let (s, cert, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    let next = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
    let later = OffsetDateTime::now_utc() + Duration::hours(25);
    let r = f.sweep().sweep(later).await.unwrap();
    assert_eq!((r.expired, r.retired), (1, 1));
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Inactive));
    assert!(f.iot.inner.attached_policies(&Fleet::arn(&next)).is_empty());
    assert!(
        f.registry
            .get_certificate(&next)
            .await
            .unwrap()
            .unwrap()
            .denied
    );
    assert_eq!(f.iot.inner.status(&cert), Some(CertificateStatus::Active));
    let dev = f.device_now(&s).await;
    assert_eq!(dev.certificate_id.as_ref(), Some(&cert));
    assert!(dev.rotation.is_none() && dev.previous_certificate_id.is_none());
    let d = f.send("confirm", &s, next.as_str(), None).await;
    assert_eq!(d["reason"], "no_rotation");
}

/// A revoke or a quarantine during a rotation isolates both certificates; the new one cannot confirm.
#[tokio::test]
async fn an_isolation_during_a_rotation_isolates_both_certificates() {
    for (action, status, reason) in [
        (Action::Revoke, CertificateStatus::Revoked, "serial_revoked"),
        (
            Action::Quarantine,
            CertificateStatus::Inactive,
            "device_quarantined",
        ),
    ] {
        let f = Fleet::new().await;
        let (s, cert, _) = f.device("SN1").await;
        let (_, csr) = new_csr("SN1");
        f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
        let next = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
        f.isolate(&s, action).await;
        for c in [&cert, &next] {
            assert_eq!(f.iot.inner.status(c), Some(status), "{reason}");
            assert!(f.iot.inner.attached_policies(&Fleet::arn(c)).is_empty());
            let rec = f.registry.get_certificate(c).await.unwrap().unwrap();
            assert!(rec.denied || rec.held, "{reason}");
        }
        let d = f.send("confirm", &s, next.as_str(), None).await;
        assert_eq!(d["reason"], reason);
        assert_eq!(f.device_now(&s).await.certificate_id, Some(cert));
    }
}

#[tokio::test]
async fn a_revoke_between_the_registry_write_and_the_registration_wins() {
    let f = Fleet::new().await;
    let (s, cert, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    *f.iot.hook.0.lock().unwrap() = Some("register");
    assert!(f
        .service
        .handle(
            json!({"action": "rotate", "serial": "SN1", "principal": cert.as_str(),
            "received_at": 1, "csr": csr})
        )
        .await
        .is_err());
    let next = f.device_now(&s).await.rotation.unwrap().next_certificate_id;
    assert_eq!(
        f.iot.inner.status(&next),
        None,
        "issued, not registered yet"
    );
    f.isolate(&s, Action::Revoke).await;
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Revoked));
    // The retried invocation finds it taken: refused, never ACTIVE.
    let d = f.send_at("rotate", &s, cert.as_str(), Some(&csr), 1).await;
    assert_eq!(d["reason"], "serial_revoked");
    assert_eq!(f.iot.inner.status(&next), Some(CertificateStatus::Revoked));
    assert!(f.iot.inner.attached_policies(&Fleet::arn(&next)).is_empty());
}

/// The rotator failed after its registry write, before registering the certificate: whoever then
/// cuts the certificate off (the sweep, a revoke by its id) registers it cut off first, so a late
/// retry of the rotator can never make it ACTIVE.
#[tokio::test]
async fn an_issued_certificate_never_registered_is_registered_cut_off_before_it_is_forgotten() {
    for by in ["sweep", "revoke by id"] {
        let f = Fleet::new().await;
        let (s, cert, _) = f.device("SN1").await;
        let (_, csr) = new_csr("SN1");
        *f.iot.hook.0.lock().unwrap() = Some("register");
        let event = json!({"action": "rotate", "serial": "SN1", "principal": cert.as_str(),
            "received_at": 1, "csr": csr});
        assert!(f.service.handle(event.clone()).await.is_err());
        let next = f.device_now(&s).await.rotation.unwrap().next_certificate_id;
        assert_eq!(f.iot.inner.status(&next), None);
        if by == "sweep" {
            f.sweep()
                .sweep(OffsetDateTime::now_utc() + Duration::hours(25))
                .await
                .unwrap();
            assert_eq!(
                f.iot.inner.status(&next),
                Some(CertificateStatus::Inactive),
                "{by}"
            );
        } else {
            f.revoker()
                .command(
                    Command {
                        action: Action::Revoke,
                        serial: None,
                        certificate_id: Some(next.clone()),
                        principal: None,
                        reason: None,
                        compromised_since: None,
                        rollback: false,
                        actor: Some("ops".into()),
                    },
                    OffsetDateTime::now_utc(),
                )
                .await
                .unwrap();
            assert_eq!(
                f.iot.inner.status(&next),
                Some(CertificateStatus::Revoked),
                "{by}"
            );
        }
        // The rotator's late retry: never ACTIVE, never attached.
        let d = f.service.handle(event).await.expect("retry");
        assert_ne!(
            d.outcome,
            fleetguard_domain::model::Outcome::Accepted,
            "{by}: {d:?}"
        );
        assert_ne!(
            f.iot.inner.status(&next),
            Some(CertificateStatus::Active),
            "{by}"
        );
        assert!(
            f.iot.inner.attached_policies(&Fleet::arn(&next)).is_empty(),
            "{by}"
        );
        assert_eq!(
            f.iot.inner.status(&cert),
            Some(CertificateStatus::Active),
            "{by}"
        );
    }
}

#[tokio::test]
async fn a_fault_at_any_call_converges_on_replay() {
    for call in ["describe", "register", "attach_policy", "attach_thing"] {
        let f = Fleet::new().await;
        let (s, cert, _) = f.device("SN1").await;
        let (_, csr) = new_csr("SN1");
        *f.iot.hook.0.lock().unwrap() = Some(call);
        let event = json!({"action": "rotate", "serial": "SN1", "principal": cert.as_str(),
            "received_at": 1, "csr": csr});
        assert!(f.service.handle(event.clone()).await.is_err(), "{call}");
        let d = f.service.handle(event).await.expect("replay");
        assert_eq!(d.reason, Reason::CertificateIssued, "{call}");
        let next = CertificateId::parse(d.certificate_id.as_deref().unwrap()).unwrap();
        assert_eq!(
            f.iot.inner.status(&next),
            Some(CertificateStatus::Active),
            "{call}"
        );
        assert_eq!(
            f.iot.inner.attached_policies(&Fleet::arn(&next)),
            [POLICY],
            "{call}"
        );
        assert!(
            f.iot
                .inner
                .thing_principals("SN1")
                .contains(&Fleet::arn(&next)),
            "{call}"
        );
        assert_eq!(
            f.device_now(&s).await.rotation.unwrap().next_certificate_id,
            next
        );
        assert_eq!(
            f.reasons(),
            [Reason::CertificateIssued],
            "{call}: audited once"
        );
    }
    // The sweep: a fault while retiring leaves the retirement for the next sweep.
    let f = Fleet::new().await;
    let (s, cert, _) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    let next = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
    f.send("confirm", &s, next.as_str(), None).await;
    *f.iot.hook.0.lock().unwrap() = Some("status");
    let later = OffsetDateTime::now_utc() + Duration::hours(25);
    assert!(f.sweep().sweep(later).await.is_err());
    assert_eq!(
        f.device_now(&s).await.previous_certificate_id,
        Some(cert.clone())
    );
    let r = f.sweep().sweep(later).await.unwrap();
    assert_eq!(r.retired, 1);
    assert_eq!(f.iot.inner.status(&cert), Some(CertificateStatus::Inactive));
}

#[tokio::test]
async fn the_expiry_watch_finds_exactly_the_certificates_inside_the_window() {
    let f = Fleet::new().await;
    let now = OffsetDateTime::now_utc();
    let mut inside = Vec::new();
    for (serial, days) in [("E1", 1), ("E2", 29), ("E3", 31), ("E4", 400), ("E5", -1)] {
        let s = Serial::parse(serial).unwrap();
        let mut d = Device::manufactured(
            s.clone(),
            Enrollment::default(),
            fleetguard_domain::model::Timestamp::at(now),
        );
        d.status = DeviceStatus::Active;
        d.certificate_id = Some(CertificateId::of_der(serial.as_bytes()));
        d.set_certificate_not_after(&fleetguard_domain::model::Timestamp::at(
            now + Duration::days(days),
        ));
        f.registry.import_device(&d).await.unwrap();
        if (0..=30).contains(&days) {
            inside.push(serial);
        }
    }
    // A quarantined device inside the window is not nudged (it cannot rotate).
    let q = Serial::parse("E6").unwrap();
    let mut d = Device::manufactured(
        q,
        Enrollment::default(),
        fleetguard_domain::model::Timestamp::at(now),
    );
    d.status = DeviceStatus::Quarantined;
    d.set_certificate_not_after(&fleetguard_domain::model::Timestamp::at(
        now + Duration::days(2),
    ));
    f.registry.import_device(&d).await.unwrap();
    // A CA expiring in 60 days: inside a 90-day window, outside a 30-day one.
    let short = TestSigner::default().ca_pem("short-lived CA", 60).await;
    let short_id = f.iot.inner.register_ca(&short).unwrap();

    let report = expiry::find(&f.rotations, &f.iot, now, 30, 90)
        .await
        .unwrap();
    let found: Vec<&str> = report.devices.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(found, inside);
    assert_eq!(report.cas.len(), 1);
    assert_eq!(report.cas[0].certificate_id, short_id.to_string());
    assert!(expiry::find(&f.rotations, &f.iot, now, 30, 30)
        .await
        .unwrap()
        .cas
        .is_empty());

    expiry::notify(&f.publisher, &f.audit, "alerts", &report)
        .await
        .unwrap();
    expiry::notify(&f.publisher, &f.audit, "alerts", &report)
        .await
        .unwrap();
    let published = f.publisher.published();
    assert_eq!(published[0].0, "P/E1/certificates/rotate/required");
    assert_eq!(published[0].1["reason"], "certificate_expiring");
    assert_eq!(published[2].0, "alerts");
    assert_eq!(published[2].1["devices"].as_array().unwrap().len(), 2);
    // Audited once a day however often the watch runs.
    assert_eq!(
        f.reasons(),
        [
            Reason::CertificateExpiring,
            Reason::CertificateExpiring,
            Reason::CaExpiring
        ]
    );
    let _ = f
        .rotations
        .due(&fleetguard_domain::model::Timestamp::at(now), 10)
        .await
        .unwrap();
}

/// A stolen current key must not buy a long-lived certificate of its own: a device rotates on its own
/// only inside its certificate's expiry window. Outside it, `rotation_not_due` on /rejected and nothing
/// signed; once an operator asks (the device is told on rotate/required), the rotation is served.
#[tokio::test]
async fn a_rotation_that_is_not_due_is_refused_and_nothing_is_signed() {
    let f = Fleet::new().await;
    let (s, cert, _) = f.bound("SN1").await;
    let (_, csr) = new_csr("SN1");
    let d = f.send("rotate", &s, cert.as_str(), Some(&csr)).await;
    assert_eq!(d["reason"], "rotation_not_due", "{d}");
    assert_eq!(f.last_reply().0, "P/SN1/certificates/rotate/rejected");
    assert!(f.device_now(&s).await.rotation.is_none(), "nothing issued");
    // Inside the window it is due on its own.
    let now = time::OffsetDateTime::now_utc();
    let mut device = f.device_now(&s).await;
    device.certificate_not_after = Some(fleetguard_domain::model::Timestamp::at(
        now + time::Duration::days(10),
    ));
    assert!(fleetguard_domain::lifecycle::rotation::due(
        &device, 30, now
    ));
    device.certificate_not_after = Some(fleetguard_domain::model::Timestamp::at(
        now + time::Duration::days(300),
    ));
    assert!(!fleetguard_domain::lifecycle::rotation::due(
        &device, 30, now
    ));
    // An operator asks: told on rotate/required, and the next request is served.
    assert!(fleetguard_domain::lifecycle::rotation::request_rotation(
        &f.registry,
        &f.rotations,
        &f.publisher,
        &s,
        "fleetctl:alice",
        now,
    )
    .await
    .unwrap());
    assert_eq!(f.last_reply().0, "P/SN1/certificates/rotate/required");
    let d = f
        .send_at("rotate", &s, cert.as_str(), Some(&csr), 1_764_000_000_001)
        .await;
    assert_eq!(d["reason"], "certificate_issued", "{d}");
    assert_eq!(
        f.device_now(&s).await.rotation_requested_at,
        None,
        "used up"
    );
}

/// A device that lost its new key after confirming (before storing it) still holds the replaced
/// one: in the grace period that certificate may ask again, but only on an operator's request (a
/// stolen old key cannot use it to rotate the owner out), and with a key neither certificate has.
/// Once the new rotation is confirmed the lost certificate is cut off at once; the replaced one
/// keeps its grace period.
#[tokio::test]
async fn the_replaced_certificate_may_rotate_again_when_an_operator_asks() {
    let f = Fleet::new().await;
    let (s, old, old_key) = f.device("SN1").await;
    let (_, csr) = new_csr("SN1");
    let d = f.send("rotate", &s, old.as_str(), Some(&csr)).await;
    let lost = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
    assert_eq!(d["reason"], "certificate_issued");
    let d = f.send("confirm", &s, lost.as_str(), None).await;
    assert_eq!(d["reason"], "rotation_confirmed");

    // Without an operator's request: refused, nothing signed.
    let (_, again) = new_csr("SN1");
    let d = f.send_at("rotate", &s, old.as_str(), Some(&again), 2).await;
    assert_eq!(d["reason"], "rotation_not_due");
    assert_eq!(f.last_reply().0, "P/SN1/certificates/rotate/rejected");
    assert!(f.device_now(&s).await.rotation.is_none());

    // Asked: served, but never with a key either certificate already has.
    let asked = fleetguard_domain::lifecycle::rotation::request_rotation(
        &f.registry,
        &f.rotations,
        &f.publisher,
        &s,
        "fleetctl:test",
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert!(asked);
    let reused = rcgen::CertificateParams::new(vec![])
        .map(|mut p| {
            p.distinguished_name.push(rcgen::DnType::CommonName, "SN1");
            p.serialize_request(&old_key).unwrap().pem().unwrap()
        })
        .unwrap();
    let d = f
        .send_at("rotate", &s, old.as_str(), Some(&reused), 3)
        .await;
    assert_eq!(d["reason"], "csr_key_reused", "{d}");
    let d = f.send_at("rotate", &s, old.as_str(), Some(&again), 4).await;
    assert_eq!(d["reason"], "certificate_issued", "{d}");
    let fresh = certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap());
    // A replay gets the same certificate.
    let d = f.send_at("rotate", &s, old.as_str(), Some(&again), 4).await;
    assert_eq!(d["reason"], "certificate_issued");
    assert_eq!(
        certificate_id(f.last_reply().1["certificate_pem"].as_str().unwrap()),
        fresh
    );
    assert_eq!(f.device_now(&s).await.certificate_id.as_ref(), Some(&lost));

    // Confirmed from the fresh certificate: bound; the lost one cut off now, deny-listed; the
    // replaced one keeps its grace period.
    let d = f.send_at("confirm", &s, fresh.as_str(), None, 5).await;
    assert_eq!(d["reason"], "rotation_confirmed");
    let dev = f.device_now(&s).await;
    assert_eq!(dev.certificate_id.as_ref(), Some(&fresh));
    assert_eq!(dev.previous_certificate_id.as_ref(), Some(&old));
    assert_eq!(f.iot.inner.status(&lost), Some(CertificateStatus::Inactive));
    assert!(!f
        .iot
        .inner
        .thing_principals("SN1")
        .contains(&Fleet::arn(&lost)));
    let record = f.registry.get_certificate(&lost).await.unwrap().unwrap();
    assert!(record.denied);
    assert_eq!(f.iot.inner.status(&old), Some(CertificateStatus::Active));
}
