//! The hook over the in-memory fakes: seconds, no emulator. The emulator-backed suite
//! (`tests/integration/claim.rs`) runs the same decisions through DynamoDB and AWS IoT.
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{CertificateId, Device, Reason, Serial};
use fleetguard_domain::ports::IotControl;
use fleetguard_domain::ports::Registry;
use fleetguard_domain::provisioning::claim::*;
use fleetguard_domain::provisioning::enrollment::{self};
use fleetguard_testkit::fakes::{InMemoryAudit, InMemoryEnrollments, InMemoryIot};
use time::OffsetDateTime;

struct World {
    hook: ClaimHook<InMemoryEnrollments, InMemoryIot, InMemoryAudit>,
    key: EcdsaKeyPair,
    serial: Serial,
    now: OffsetDateTime,
}

/// A certificate AWS issued to a claim device, registered PENDING_ACTIVATION.
fn issued(iot: &InMemoryIot) -> (String, CertificateId) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "csr-subject");
    let pem = p
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let id = iot.register_certificate(&pem).unwrap();
    (pem, id)
}

async fn world() -> World {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let der = key.public_key().as_der().unwrap();
    let enrollment =
        enrollment::enrollment_from_columns(&STANDARD.encode(der.as_ref()), "", "").unwrap();
    let serial = Serial::parse("SN0001").unwrap();
    let enrollments = InMemoryEnrollments::default();
    let device = Device::manufactured(
        serial.clone(),
        enrollment,
        fleetguard_domain::model::Timestamp::now(),
    );
    enrollments.registry.import_device(&device).await.unwrap();
    let audit = enrollments.audit.clone();
    World {
        hook: ClaimHook::new(enrollments, InMemoryIot::default(), audit, 300),
        key,
        serial,
        now: OffsetDateTime::now_utc(),
    }
}

impl World {
    fn request(&self, pem: &str, cert: &CertificateId, ts: i64) -> serde_json::Value {
        let statement = enrollment::statement(&self.serial, cert, ts);
        let sig = self
            .key
            .sign(&SystemRandom::new(), statement.as_bytes())
            .unwrap();
        serde_json::json!({
            "claimCertificateId": "c1".repeat(32), "certificateId": cert.as_str(),
            "certificatePem": pem, "templateArn": "arn:aws:iot:us-east-1:1:provisioningtemplate/t",
            "clientId": format!("claim.{}", self.serial),
            "parameters": {"SerialNumber": self.serial.as_str(), "ProofTimestamp": ts.to_string(),
                "ProofSignature": STANDARD.encode(sig.as_ref())}
        })
    }

    async fn device(&self) -> Device {
        self.hook
            .enrollments
            .registry
            .get_device(&self.serial)
            .await
            .unwrap()
            .unwrap()
    }

    fn last_reason(&self) -> Reason {
        self.hook.audit.entries().last().unwrap().reason
    }
}

#[tokio::test]
async fn allows_a_fresh_factory_proof_and_binds_pending() {
    let w = world().await;
    let (pem, cert) = issued(&w.hook.control);
    let t = w.now.unix_timestamp();
    let r = w.hook.handle(w.request(&pem, &cert, t), w.now).await;
    assert!(r.allow_provisioning);
    assert_eq!(r.parameter_overrides["SerialNumber"], "SN0001");
    let d = w.device().await;
    assert!(d.binding_pending);
    assert_eq!(d.certificate_id, Some(cert.clone()));
    assert_eq!(d.enrollment.proof_last_ts, Some(t));
    assert_eq!(w.last_reason(), Reason::Provisioned);
    // The same statement again: a replay.
    let r = w.hook.handle(w.request(&pem, &cert, t), w.now).await;
    assert!(!r.allow_provisioning);
    assert_eq!(w.last_reason(), Reason::ProofReplayed);
}

#[tokio::test]
async fn a_stale_binding_is_replaced_and_a_live_one_never() {
    let w = world().await;
    let t = w.now.unix_timestamp();
    let (pem1, cert1) = issued(&w.hook.control);
    assert!(
        w.hook
            .handle(w.request(&pem1, &cert1, t), w.now)
            .await
            .allow_provisioning
    );
    // cert1 never became ACTIVE: a fresh proof for cert2 replaces it, cert1 is REVOKED and denied.
    let (pem2, cert2) = issued(&w.hook.control);
    assert!(
        w.hook
            .handle(w.request(&pem2, &cert2, t + 1), w.now)
            .await
            .allow_provisioning
    );
    assert_eq!(
        w.hook.control.status(&cert1),
        Some(CertificateStatus::Revoked)
    );
    let stale = w.hook.enrollments.registry.get_certificate(&cert1).await;
    assert!(stale.unwrap().unwrap().denied);
    // cert2 goes ACTIVE (RegisterThing finished): nothing takes the serial over any more.
    w.hook
        .control
        .set_certificate_status(&cert2, CertificateStatus::Active)
        .await
        .unwrap();
    let (pem3, cert3) = issued(&w.hook.control);
    let r = w.hook.handle(w.request(&pem3, &cert3, t + 2), w.now).await;
    assert!(!r.allow_provisioning);
    assert_eq!(w.last_reason(), Reason::SerialBoundToOtherCertificate);
    let d = w.device().await;
    assert_eq!(d.certificate_id, Some(cert2));
    assert!(!d.binding_pending, "seen ACTIVE: confirmed");
}

#[tokio::test]
async fn revoked_and_quarantined_serials_are_refused_after_a_valid_proof() {
    for (status, reason) in [
        (
            fleetguard_domain::model::DeviceStatus::Revoked,
            Reason::SerialRevoked,
        ),
        (
            fleetguard_domain::model::DeviceStatus::Quarantined,
            Reason::DeviceQuarantined,
        ),
    ] {
        let w = world().await;
        w.hook
            .enrollments
            .registry
            .transition(
                &w.serial,
                &[fleetguard_domain::model::DeviceStatus::Manufactured],
                status,
            )
            .await
            .unwrap();
        let (pem, cert) = issued(&w.hook.control);
        let r = w
            .hook
            .handle(w.request(&pem, &cert, w.now.unix_timestamp()), w.now)
            .await;
        assert!(!r.allow_provisioning);
        assert_eq!(w.last_reason(), reason);
        assert_eq!(
            w.device().await.enrollment.proof_last_ts,
            None,
            "proof not spent"
        );
    }
}

#[tokio::test]
async fn malformed_requests_are_denied_and_audited() {
    // A request whose certificate id is not its PEM's hash, and garbage: denied, audited.
    let w = world().await;
    let (pem, cert) = issued(&w.hook.control);
    let mut req = w.request(&pem, &cert, w.now.unix_timestamp());
    req["certificateId"] = "ab".repeat(32).into();
    assert!(!w.hook.handle(req, w.now).await.allow_provisioning);
    assert_eq!(w.last_reason(), Reason::CertificateIdMismatch);
    assert!(
        !w.hook
            .handle(serde_json::json!([1, 2]), w.now)
            .await
            .allow_provisioning
    );
    assert_eq!(w.last_reason(), Reason::MalformedEvent);
}
