//! Lost races over the in-memory fakes: a competing writer lands at the one point where it hurts (an
//! AWS IoT status change has no condition, so it can land between a use case's registry write and its
//! certificate write). Each loser answers from the winner's state at once, never with an error, and
//! the winner's isolation is left intact. The emulator-backed suite (`tests/races.rs`) runs the same
//! races as separate function processes.

use fleetguard_domain::lifecycle::revocation::{Action, Command, RevocationConfig, Revoker};
use fleetguard_domain::model::{
    CertificateId, CertificateStatus, Device, DeviceStatus, Enrollment, Outcome, Reason, Serial,
};
use fleetguard_domain::ports::{IotControl, Registry};
use fleetguard_domain::provisioning::jitr::Provisioner;
use fleetguard_domain::Result;
use fleetguard_testkit::fakes::{
    InMemoryAudit, InMemoryIot, InMemoryRecords, InMemoryRegistry, RecordingConnections,
};
use fleetguard_testkit::intercept::{Hook, Intercepted, IotCall};
use fleetguard_testkit::pki::TestCa;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

type Interloper = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the interloper cuts in.
#[derive(Clone, Copy, PartialEq)]
enum Step {
    /// Just before the first status change to this status.
    Status(CertificateStatus),
    /// Just before the first thing attachment.
    AttachThing,
    /// Just before the first certificate registration (a rotation's new certificate).
    Register,
}

/// Another writer's whole action, run once just before the first call at `at`.
#[derive(Clone)]
struct Interloping {
    at: Step,
    interloper: Arc<Mutex<Option<Interloper>>>,
}

impl Hook for Interloping {
    async fn before(&self, call: IotCall<'_>) -> Result<()> {
        let step = match call {
            IotCall::SetCertificateStatus { status, .. } => Some(Step::Status(status)),
            IotCall::AttachThingPrincipal { .. } => Some(Step::AttachThing),
            IotCall::RegisterCertificate { .. } => Some(Step::Register),
            _ => None,
        };
        if step == Some(self.at) {
            let interloper = self.interloper.lock().unwrap().take();
            if let Some(run) = interloper {
                run.await;
            }
        }
        Ok(())
    }
}

/// AWS IoT where, at `at`, another writer's whole action runs first.
type Racing = Intercepted<InMemoryIot, Interloping>;

fn racing(inner: &InMemoryIot, at: Step, interloper: Interloper) -> Racing {
    Intercepted::new(
        inner.clone(),
        Interloping {
            at,
            interloper: Arc::new(Mutex::new(Some(interloper))),
        },
    )
}

const POLICY: &str = "fleet";
const GROUP: &str = "quarantine";

struct Fleet {
    registry: InMemoryRegistry,
    iot: InMemoryIot,
    audit: InMemoryAudit,
    ca: TestCa,
    ca_id: CertificateId,
}

fn config() -> RevocationConfig {
    RevocationConfig {
        fleet_policy: POLICY.into(),
        quarantine_group: GROUP.into(),
        ..RevocationConfig::operators_only()
    }
}

impl Fleet {
    fn new() -> Fleet {
        let iot = InMemoryIot::default();
        let ca = TestCa::new("races CA");
        let ca_id = iot.register_ca(&ca.pem()).expect("CA");
        Fleet {
            registry: InMemoryRegistry::default(),
            iot,
            audit: InMemoryAudit::default(),
            ca,
            ca_id,
        }
    }

    fn revoker<C: IotControl>(
        &self,
        control: C,
    ) -> Revoker<InMemoryRegistry, C, RecordingConnections, InMemoryRecords, InMemoryAudit> {
        Revoker {
            registry: self.registry.clone(),
            control,
            connections: RecordingConnections::default(),
            records: InMemoryRecords::new(self.audit.clone()),
            audit: self.audit.clone(),
            config: config(),
        }
    }

    fn provisioner<C: IotControl>(
        &self,
        control: C,
    ) -> Provisioner<InMemoryRegistry, C, InMemoryAudit> {
        Provisioner::new(
            self.registry.clone(),
            control,
            self.audit.clone(),
            POLICY.into(),
            CertificateStatus::Revoked,
        )
        .with_quarantine_group(Some(GROUP.into()))
    }

    /// A manufactured (allow-listed) serial and its first certificate, auto-registered.
    async fn manufactured(&self, serial: &str) -> (Serial, CertificateId) {
        let serial = Serial::parse(serial).expect("serial");
        let device = Device::manufactured(
            serial.clone(),
            Enrollment::default(),
            fleetguard_domain::model::Timestamp::now(),
        );
        self.registry.import_device(&device).await.expect("import");
        let cert = self
            .iot
            .register_certificate(&self.ca.issue(serial.as_str()))
            .expect("register");
        (serial, cert)
    }

    /// A provisioned device (ACTIVE certificate, policy, thing).
    async fn provisioned(&self, serial: &str) -> (Serial, CertificateId) {
        let (serial, cert) = self.manufactured(serial).await;
        let d = self
            .provisioner(self.iot.clone())
            .handle(self.jitr(&cert), OffsetDateTime::now_utc())
            .await
            .expect("provisioned");
        assert_eq!(d.reason, Reason::Provisioned);
        (serial, cert)
    }

    fn jitr(&self, cert: &CertificateId) -> serde_json::Value {
        serde_json::json!({
            "certificateId": cert.as_str(),
            "caCertificateId": self.ca_id.as_str(),
            "timestamp": 1_700_000_000_000_i64,
            "certificateStatus": "PENDING_ACTIVATION",
            "awsAccountId": "123456789012",
            "certificateRegistrationTimestamp": "1700000000000"
        })
    }

    /// Everything a revoked device must be: revoked in the registry, its certificate REVOKED, denied,
    /// holding no policy, off its thing, its thing quarantined.
    async fn assert_revoked(&self, serial: &Serial, cert: &CertificateId) {
        let device = self.registry.get_device(serial).await.unwrap().unwrap();
        assert_eq!(device.status, DeviceStatus::Revoked);
        assert_eq!(self.iot.status(cert), Some(CertificateStatus::Revoked));
        assert!(
            self.registry
                .get_certificate(cert)
                .await
                .unwrap()
                .unwrap()
                .denied
        );
        let arn = format!("arn:aws:iot:us-east-1:123456789012:cert/{cert}");
        assert!(
            self.iot.attached_policies(&arn).is_empty(),
            "policy left attached"
        );
        assert!(!self.iot.thing_principals(serial.as_str()).contains(&arn));
        assert!(self.iot.group_members(GROUP).contains(&serial.to_string()));
    }

    /// How many audit entries say `action` came to `reason`.
    fn count(&self, action: &str, reason: Reason) -> usize {
        self.audit
            .entries()
            .iter()
            .filter(|e| e.action == action && e.reason == reason)
            .count()
    }
}

fn command(action: Action, serial: &Serial) -> Command {
    serde_json::from_value(serde_json::json!({
        "action": match action {
            Action::Revoke => "revoke",
            Action::Quarantine => "quarantine",
            Action::Release => "release",
        },
        "serial": serial.as_str(),
        "actor": "race",
    }))
    .expect("command")
}

impl Fleet {
    /// AWS IoT where a whole revoke of `serial` runs at `at`.
    fn revoked_at(&self, serial: &Serial, at: Step) -> Racing {
        racing(&self.iot, at, revoke_of(self, serial))
    }
}

/// A revoke of `serial`, run to completion, as the interloper.
fn revoke_of(fleet: &Fleet, serial: &Serial) -> Interloper {
    let revoker = fleet.revoker(fleet.iot.clone());
    let cmd = command(Action::Revoke, serial);
    Box::pin(async move {
        let r = revoker.command(cmd, OffsetDateTime::now_utc()).await;
        assert_eq!(r.expect("revoke").reason, Reason::Revoked);
    })
}

#[tokio::test]
async fn a_release_that_loses_to_a_revoke_is_answered_and_undoes_its_attaches() {
    let f = Fleet::new();
    let (serial, cert) = f.provisioned("RACE1").await;
    let now = OffsetDateTime::now_utc();
    f.revoker(f.iot.clone())
        .command(command(Action::Quarantine, &serial), now)
        .await
        .expect("quarantine");
    // The revoke lands after the release re-attached the policy and the thing, just before it sets
    // the certificate ACTIVE again.
    let racing = f.revoked_at(&serial, Step::Status(CertificateStatus::Active));
    let report = f
        .revoker(racing)
        .command(command(Action::Release, &serial), now)
        .await
        .expect("a lost race is an answer, not an error");
    assert_eq!(
        (report.outcome, report.reason),
        (Outcome::Rejected, Reason::RevokedIsFinal)
    );
    f.assert_revoked(&serial, &cert).await;
    assert_eq!(f.count("revoke", Reason::Revoked), 1);
    assert_eq!(f.count("release", Reason::Released), 0);
}

#[tokio::test]
async fn a_quarantine_that_meets_a_revoked_certificate_leaves_it_revoked() {
    let f = Fleet::new();
    let (serial, cert) = f.provisioned("RACE2").await;
    // The revoke runs between the quarantine's registry write and its INACTIVE.
    let racing = f.revoked_at(&serial, Step::Status(CertificateStatus::Inactive));
    let report = f
        .revoker(racing)
        .command(
            command(Action::Quarantine, &serial),
            OffsetDateTime::now_utc(),
        )
        .await
        .expect("a lost race is an answer, not an error");
    assert_eq!(report.reason, Reason::Quarantined);
    f.assert_revoked(&serial, &cert).await;
}

#[tokio::test]
async fn a_provisioning_that_loses_to_a_revoke_is_answered_and_the_revoke_stands() {
    let f = Fleet::new();
    let (serial, cert) = f.manufactured("RACE3").await;
    // The revoke lands after the provisioning bound the serial, just before it activates.
    let racing = f.revoked_at(&serial, Step::Status(CertificateStatus::Active));
    let d = f
        .provisioner(racing)
        .handle(f.jitr(&cert), OffsetDateTime::now_utc())
        .await
        .expect("a lost race is an answer, not an error");
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::SerialRevoked)
    );
    f.assert_revoked(&serial, &cert).await;
    assert_eq!(f.count("provision", Reason::Provisioned), 0);
}

#[tokio::test]
async fn a_provisioning_that_loses_to_a_quarantine_leaves_the_certificate_inactive() {
    let f = Fleet::new();
    let (serial, cert) = f.manufactured("RACE4").await;
    let revoker = f.revoker(f.iot.clone());
    let cmd = command(Action::Quarantine, &serial);
    let quarantine: Interloper = Box::pin(async move {
        let r = revoker.command(cmd, OffsetDateTime::now_utc()).await;
        assert_eq!(r.expect("quarantine").reason, Reason::Quarantined);
    });
    let racing = racing(&f.iot, Step::Status(CertificateStatus::Active), quarantine);
    let d = f
        .provisioner(racing)
        .handle(f.jitr(&cert), OffsetDateTime::now_utc())
        .await
        .expect("a lost race is an answer, not an error");
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::DeviceQuarantined)
    );
    // AWS IoT has no conditional status update: the provisioning's ACTIVE landed after the
    // quarantine's INACTIVE, and the provisioning put it back.
    assert_eq!(f.iot.status(&cert), Some(CertificateStatus::Inactive));
    let device = f.registry.get_device(&serial).await.unwrap().unwrap();
    assert_eq!(device.status, DeviceStatus::Quarantined);
    let arn = format!("arn:aws:iot:us-east-1:123456789012:cert/{cert}");
    assert!(f.iot.attached_policies(&arn).is_empty());
}

#[tokio::test]
async fn of_two_certificates_of_one_serial_the_loser_keeps_no_policy_and_no_thing() {
    let f = Fleet::new();
    let (serial, first) = f.manufactured("RACE5").await;
    let second = f
        .iot
        .register_certificate(&f.ca.issue(serial.as_str()))
        .expect("register");
    let winner = f.provisioner(f.iot.clone());
    let event = f.jitr(&second);
    let interloper: Interloper = Box::pin(async move {
        let d = winner.handle(event, OffsetDateTime::now_utc()).await;
        assert_eq!(d.expect("winner").reason, Reason::Provisioned);
    });
    // The second certificate's provisioning runs to the end after the first passed its checks and
    // before it attached its thing: the first then loses its bind.
    let racing = racing(&f.iot, Step::AttachThing, interloper);
    let d = f
        .provisioner(racing)
        .handle(f.jitr(&first), OffsetDateTime::now_utc())
        .await
        .expect("a lost race is an answer, not an error");
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Rejected, Reason::RegistryConflict)
    );
    let loser_arn = format!("arn:aws:iot:us-east-1:123456789012:cert/{first}");
    assert!(f.iot.attached_policies(&loser_arn).is_empty());
    assert!(!f.iot.thing_principals(serial.as_str()).contains(&loser_arn));
    assert_eq!(f.iot.status(&first), Some(CertificateStatus::Revoked));
    assert_eq!(f.iot.status(&second), Some(CertificateStatus::Active));
    let device = f.registry.get_device(&serial).await.unwrap().unwrap();
    assert_eq!(device.certificate_id, Some(second));
}
