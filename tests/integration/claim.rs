//! Fleet provisioning by claim: the pre-provisioning hook through the real adapters (DynamoDB, AWS IoT)
//! against the local emulator. Requests are shaped as developerguide/pre-provisioning-hook.html shows;
//! the certificates are issued the way AWS issues them to a claim device (its subject chosen by whoever
//! wrote the CSR), and RegisterThing's work after an allow is done by `Stack::register_thing`.

use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{AuditEntry, CertificateId, DeviceStatus, Outcome, Reason, Serial};
use fleetguard_domain::ports::{AuditLog, Registry};
use fleetguard_domain::provisioning::enrollment::secret_hash;
use fleetguard_tests::{
    call_diff, delete_event, enrollment_secret, hook_request, secret_parameters, unique,
    FactoryKey, Stack, TestCa,
};
use time::OffsetDateTime;

/// The batch's claim certificate id (the claim's own certificate is AWS's business, not the hook's).
const CLAIM: &str = "c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1";
const OTHER_BATCH: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

struct Claim {
    stack: Stack,
    /// Stands in for AWS's own issuer of claim-provisioned certificates.
    aws: TestCa,
}

async fn claim() -> Claim {
    let stack = Stack::new().await;
    let aws = TestCa::new("AWS IoT issuer (test)");
    stack.register_issuer_ca(&aws).await;
    Claim { stack, aws }
}

fn serial() -> Serial {
    Serial::parse(&unique("SN")).unwrap()
}

impl Claim {
    async fn factory_device(&self, claims: &str) -> (Serial, FactoryKey) {
        let (serial, key) = (serial(), FactoryKey::new());
        self.stack
            .import_enrolled(&serial, &key.public_b64(), "", claims)
            .await;
        (serial, key)
    }

    async fn secret_device(&self) -> (Serial, Vec<u8>) {
        let (serial, secret) = (serial(), enrollment_secret());
        self.stack
            .import_enrolled(&serial, "", &secret_hash(&secret), "")
            .await;
        (serial, secret)
    }

    async fn ask(&self, request: serde_json::Value) -> Option<String> {
        let r = self
            .stack
            .claim_hook()
            .handle(request, OffsetDateTime::now_utc())
            .await;
        if r.allow_provisioning {
            Some(r.parameter_overrides["SerialNumber"].clone())
        } else {
            assert_eq!(
                serde_json::to_value(&r).unwrap(),
                serde_json::json!({"allowProvisioning": false}),
                "a refusal says nothing more"
            );
            None
        }
    }

    async fn audit(&self, cert_id: &str) -> Vec<AuditEntry> {
        self.stack
            .audit()
            .for_principal(
                &fleetguard_domain::model::Principal::parse(cert_id).unwrap(),
                &fleetguard_domain::model::Timestamp::epoch(),
            )
            .await
            .unwrap()
    }

    /// Refused with `reason`, audited once, and nothing else written: no binding for the certificate,
    /// the device as it was.
    async fn assert_refused(&self, cert_id: &str, serial: &Serial, reason: Reason, before: &str) {
        let entries = self.audit(cert_id).await;
        let last = entries.last().expect("refusal audited");
        assert_eq!(
            (last.outcome, last.reason),
            (Outcome::Rejected, reason),
            "{entries:?}"
        );
        let registry = self.stack.registry();
        let cert = CertificateId::parse(cert_id).unwrap();
        assert_eq!(registry.get_certificate(&cert).await.unwrap(), None);
        let now = registry.get_device(serial).await.unwrap();
        assert_eq!(
            serde_json::to_string(&now).unwrap(),
            before,
            "device changed"
        );
    }

    /// The device asks with a fresh factory-key proof for a new AWS-issued certificate: allowed.
    /// Returns the certificate id (pending: RegisterThing has not run).
    async fn enroll(&self, serial: &Serial, key: &FactoryKey) -> String {
        let (pem, cert) = self.stack.issue_by_aws(&self.aws, serial.as_str()).await;
        let params = key.prove_now(serial.as_str(), &cert);
        let allowed = self.ask(hook_request(CLAIM, &pem, None, params)).await;
        assert_eq!(allowed.as_deref(), Some(serial.as_str()));
        cert
    }

    async fn device(&self, serial: &Serial) -> fleetguard_domain::model::Device {
        let device = self.stack.registry().get_device(serial).await.unwrap();
        device.expect("device in the registry")
    }

    async fn device_json(&self, serial: &Serial) -> String {
        serde_json::to_string(&self.stack.registry().get_device(serial).await.unwrap()).unwrap()
    }
}

#[tokio::test]
async fn a_claim_device_lives_its_whole_life_and_binds_in_two_round_trips() {
    let c = claim().await;
    let (serial, key) = c.factory_device(CLAIM).await;
    // Whatever the CSR's subject says is ignored: here it names nobody.
    let (pem, cert) = c
        .stack
        .issue_by_aws(&c.aws, "anything-the-device-wrote")
        .await;
    let scope = |id: &str| {
        let mut all = c.stack.emulator.calls_matching(&c.stack.prefix);
        let by_cert = c.stack.emulator.calls_matching(id);
        for (op, n) in by_cert.as_object().unwrap() {
            if op.starts_with("iot:") {
                all[op] = n.clone();
            }
        }
        all
    };
    let before = scope(&cert);
    let allowed = c
        .ask(hook_request(
            CLAIM,
            &pem,
            Some(&format!("claim.{serial}")),
            key.prove_now(serial.as_str(), &cert),
        ))
        .await;
    let calls = call_diff(&before, &scope(&cert));
    assert_eq!(allowed.as_deref(), Some(serial.as_str()));
    let dynamo: u64 = calls
        .iter()
        .filter(|(op, _)| op.starts_with("dynamodb:"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        dynamo, 2,
        "one BatchGetItem, one TransactWriteItems: {calls:?}"
    );
    assert!(
        calls.keys().all(|op| op.starts_with("dynamodb:")),
        "{calls:?}"
    );

    let device = c.device(&serial).await;
    assert_eq!(device.status, DeviceStatus::Active);
    assert_eq!(device.certificate_id.as_ref().unwrap().as_str(), cert);
    assert!(device.binding_pending, "pending until seen ACTIVE");
    assert!(device.enrollment.proof_last_ts.is_some());
    let entries = c.audit(&cert).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].outcome, entries[0].reason),
        (Outcome::Accepted, Reason::Provisioned)
    );

    // AWS finishes RegisterThing; the device acts on its own serial and nowhere else.
    c.stack.register_thing(&serial, &cert).await;
    let record = c.stack.seed_record(&serial, "r1").await;
    let svc = c.stack.delete_service();
    let d = svc
        .handle(delete_event(
            serial.as_str(),
            record.as_str(),
            &cert,
            // The rules engine's timestamp(): after the provisioning, as on AWS.
            (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        ))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Deleted);
    let other = self::serial();
    let d = svc
        .handle(delete_event(other.as_str(), "r1", &cert, 2))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::PrincipalMismatch);

    // Revoked with rollback: cut off, its delete undone, and no proof brings the serial back.
    let reports = c
        .stack
        .revoker()
        .handle(
            serde_json::json!({"action": "revoke", "serial": serial.as_str(), "reason": "key extracted",
                "rollback": true, "actor": "alice"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(reports[0].reason, Reason::Revoked);
    assert_eq!(
        c.stack.certificate_status(&cert).await,
        CertificateStatus::Revoked
    );
    let restored = c.stack.record(&serial, &record).await.unwrap();
    assert!(!restored.is_deleted(), "rolled back");
    let d = svc
        .handle(delete_event(serial.as_str(), record.as_str(), &cert, 3))
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::DeviceNotActive);
    let (pem2, cert2) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    let again = c
        .ask(hook_request(
            CLAIM,
            &pem2,
            None,
            key.prove(
                serial.as_str(),
                &cert2,
                OffsetDateTime::now_utc().unix_timestamp() + 1,
            ),
        ))
        .await;
    assert_eq!(again, None);
    assert_eq!(
        c.audit(&cert2).await.pop().unwrap().reason,
        Reason::SerialRevoked
    );
}

#[tokio::test]
async fn a_device_provisions_by_claim_with_a_one_time_secret_spent_once() {
    let c = claim().await;
    let (serial, secret) = c.secret_device().await;
    let (pem, cert) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    let params = secret_parameters(serial.as_str(), &secret);
    assert_eq!(
        c.ask(hook_request(CLAIM, &pem, None, params.clone()))
            .await
            .as_deref(),
        Some(serial.as_str())
    );
    let device = c.device(&serial).await;
    assert_eq!(
        device.enrollment.secret_used_by.as_ref().unwrap().as_str(),
        cert
    );
    c.stack.register_thing(&serial, &cert).await;

    // The secret again, for a new certificate, once the first one is live: refused, binding kept.
    let (pem2, cert2) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    assert_eq!(c.ask(hook_request(CLAIM, &pem2, None, params)).await, None);
    let last = c.audit(&cert2).await.pop().unwrap();
    assert_eq!(last.reason, Reason::SerialBoundToOtherCertificate);
    let device = c.device(&serial).await;
    assert_eq!(device.certificate_id.unwrap().as_str(), cert);
}

#[tokio::test]
async fn a_stranger_with_the_claim_cannot_take_another_serial() {
    let c = claim().await;
    let (mine, my_key) = c.factory_device("").await;
    let (victim, _victim_key) = c.factory_device("").await;
    let before = c.device_json(&victim).await;

    // A CSR naming the victim, with the attacker's own (valid) proof presented for the victim.
    let (pem, cert) = c.stack.issue_by_aws(&c.aws, victim.as_str()).await;
    let mut params = my_key.prove_now(mine.as_str(), &cert);
    params["SerialNumber"] = victim.as_str().into();
    assert_eq!(c.ask(hook_request(CLAIM, &pem, None, params)).await, None);
    c.assert_refused(&cert, &victim, Reason::ProofInvalid, &before)
        .await;

    // The subject alone proves nothing: no proof, no provisioning.
    let (pem, cert) = c.stack.issue_by_aws(&c.aws, victim.as_str()).await;
    let params = serde_json::json!({"SerialNumber": victim.as_str()});
    assert_eq!(c.ask(hook_request(CLAIM, &pem, None, params)).await, None);
    c.assert_refused(&cert, &victim, Reason::ProofMissing, &before)
        .await;

    // With its own proof, the attacker's device is provisioned as itself, whatever its CSR said.
    let (pem, cert) = c.stack.issue_by_aws(&c.aws, victim.as_str()).await;
    let params = my_key.prove_now(mine.as_str(), &cert);
    assert_eq!(
        c.ask(hook_request(CLAIM, &pem, None, params))
            .await
            .as_deref(),
        Some(mine.as_str())
    );
    assert_eq!(c.device_json(&victim).await, before, "victim untouched");
}

/// The parameters of one bad request, made once the request's certificate is known.
enum Params<'a> {
    /// `key` signs a statement for `signed_serial` at `ts` (over `over`, else the request's
    /// certificate), presented as `SerialNumber` = `presented`.
    Signed {
        key: &'a FactoryKey,
        signed_serial: &'a str,
        presented: &'a str,
        ts: i64,
        over: Option<&'a str>,
    },
    /// Parameters that do not depend on the certificate.
    Fixed(serde_json::Value),
}

impl Params<'_> {
    fn make(&self, cert: &str) -> serde_json::Value {
        match self {
            Params::Signed {
                key,
                signed_serial,
                presented,
                ts,
                over,
            } => {
                let mut p = key.prove(signed_serial, over.unwrap_or(cert), *ts);
                p["SerialNumber"] = (*presented).into();
                p
            }
            Params::Fixed(v) => v.clone(),
        }
    }
}

/// (case, the device it is about, params, client id, claim, reason)
type Case<'a> = (
    &'a str,
    &'a Serial,
    Params<'a>,
    Option<&'a str>,
    &'a str,
    Reason,
);

#[tokio::test]
async fn each_bad_proof_is_refused_with_its_own_reason_and_writes_only_the_audit() {
    let c = claim().await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (a, key_a) = c.factory_device(CLAIM).await;
    let (b, key_b) = c.factory_device("").await;
    let (s, _secret) = c.secret_device().await;
    let plain = serial();
    c.stack.registry().import_serial(&plain).await.unwrap();
    let nobody = serial();

    // A proof that worked once, for the replay cases.
    let (pem0, cert0) = c.stack.issue_by_aws(&c.aws, a.as_str()).await;
    let used = key_a.prove(a.as_str(), &cert0, now);
    assert!(c
        .ask(hook_request(CLAIM, &pem0, None, used.clone()))
        .await
        .is_some());

    let signed = |key, signed_serial, presented, ts| Params::Signed {
        key,
        signed_serial,
        presented,
        ts,
        over: None,
    };
    let (a_s, b_s, s_s, p_s) = (a.as_str(), b.as_str(), s.as_str(), plain.as_str());
    let claim_a = format!("claim.{a}");
    let e64 = "e".repeat(64);
    let fixed = |v| Params::Fixed(v);
    let cases: Vec<Case> = vec![
        (
            "proof for A presented for B",
            &b,
            signed(&key_a, a_s, b_s, now + 1),
            None,
            CLAIM,
            Reason::ProofInvalid,
        ),
        (
            "replayed proof, new certificate",
            &a,
            fixed(used.clone()),
            None,
            CLAIM,
            Reason::ProofInvalid,
        ),
        (
            "replayed statement, same certificate",
            &a,
            fixed(used.clone()),
            None,
            CLAIM,
            Reason::ProofReplayed,
        ),
        (
            "expired proof",
            &b,
            signed(&key_b, b_s, b_s, now - 3600),
            None,
            CLAIM,
            Reason::ProofExpired,
        ),
        (
            "proof from the future",
            &b,
            signed(&key_b, b_s, b_s, now + 3600),
            None,
            CLAIM,
            Reason::ProofExpired,
        ),
        (
            "proof over another certificate",
            &b,
            Params::Signed {
                key: &key_b,
                signed_serial: b_s,
                presented: b_s,
                ts: now,
                over: Some(&e64),
            },
            None,
            CLAIM,
            Reason::ProofInvalid,
        ),
        (
            "client id naming another serial",
            &b,
            signed(&key_b, b_s, b_s, now),
            Some(a_s),
            CLAIM,
            Reason::ClientIdMismatch,
        ),
        (
            "claim client id naming another serial",
            &b,
            signed(&key_b, b_s, b_s, now),
            Some(&claim_a),
            CLAIM,
            Reason::ClientIdMismatch,
        ),
        (
            "claim from another batch",
            &a,
            signed(&key_a, a_s, a_s, now + 2),
            None,
            OTHER_BATCH,
            Reason::ClaimNotAllowed,
        ),
        (
            "a serial nobody allow-listed",
            &nobody,
            signed(&key_b, nobody.as_str(), nobody.as_str(), now),
            None,
            CLAIM,
            Reason::SerialNotAllowed,
        ),
        (
            "a device with no proof material",
            &plain,
            signed(&key_b, p_s, p_s, now),
            None,
            CLAIM,
            Reason::NoEnrollmentProof,
        ),
        (
            "a signature for a secret device",
            &s,
            signed(&key_b, s_s, s_s, now),
            None,
            CLAIM,
            Reason::ProofKindMismatch,
        ),
        (
            "a wrong secret",
            &s,
            fixed(secret_parameters(s_s, &enrollment_secret())),
            None,
            CLAIM,
            Reason::ProofInvalid,
        ),
        (
            "malformed: not base64",
            &b,
            fixed(
                serde_json::json!({"SerialNumber": b_s, "ProofTimestamp": now.to_string(), "ProofSignature": "%%%"}),
            ),
            None,
            CLAIM,
            Reason::MalformedProof,
        ),
        (
            "malformed: oversize",
            &b,
            fixed(serde_json::json!({"SerialNumber": b_s, "EnrollmentSecret": "A".repeat(4096)})),
            None,
            CLAIM,
            Reason::MalformedProof,
        ),
        (
            "malformed: garbage signature",
            &b,
            fixed(
                serde_json::json!({"SerialNumber": b_s, "ProofTimestamp": now.to_string(), "ProofSignature": "MAYCAQECAQE="}),
            ),
            None,
            CLAIM,
            Reason::ProofInvalid,
        ),
        (
            "malformed: missing serial",
            &b,
            fixed(serde_json::json!({"ProofTimestamp": now.to_string()})),
            None,
            CLAIM,
            Reason::SerialMissing,
        ),
    ];
    for (name, serial, params, client, claim, reason) in cases {
        let before = c.device_json(serial).await;
        // The replay of the same statement reuses its certificate; every other case gets a new one.
        let (pem, cert) = if name == "replayed statement, same certificate" {
            (pem0.clone(), cert0.clone())
        } else {
            c.stack.issue_by_aws(&c.aws, serial.as_str()).await
        };
        let request = hook_request(claim, &pem, client, params.make(&cert));
        assert_eq!(c.ask(request).await, None, "{name}");
        let entries = c.audit(&cert).await;
        let last = entries
            .last()
            .unwrap_or_else(|| panic!("{name}: not audited"));
        assert_eq!(
            (last.outcome, last.reason),
            (Outcome::Rejected, reason),
            "{name}"
        );
        if cert != cert0 {
            c.assert_refused(&cert, serial, reason, &before).await;
        }
        assert_eq!(
            c.device_json(serial).await,
            before,
            "{name}: device changed"
        );
    }
}

#[tokio::test]
async fn a_provisioning_that_failed_after_the_hook_is_retried_with_a_fresh_proof() {
    let c = claim().await;
    let (serial, key) = c.factory_device("").await;
    // The hook allows, then AWS fails the provisioning (template error, throttling, reboot).
    let (pem1, cert1) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    let t = OffsetDateTime::now_utc().unix_timestamp();
    assert!(c
        .ask(hook_request(
            CLAIM,
            &pem1,
            None,
            key.prove(serial.as_str(), &cert1, t)
        ))
        .await
        .is_some());
    // The retry with a fresh proof replaces the stale binding, and the stale certificate is done for.
    let (pem2, cert2) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    assert!(c
        .ask(hook_request(
            CLAIM,
            &pem2,
            None,
            key.prove(serial.as_str(), &cert2, t + 1)
        ))
        .await
        .is_some());
    let registry = c.stack.registry();
    let device = c.device(&serial).await;
    assert_eq!(device.certificate_id.unwrap().as_str(), cert2);
    let stale = registry
        .get_certificate(&CertificateId::parse(&cert1).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stale.denied, "the stale certificate is refused for good");
    assert_eq!(
        c.stack.certificate_status(&cert1).await,
        CertificateStatus::Revoked
    );
    c.stack.register_thing(&serial, &cert2).await;

    // The same for a one-time secret: it may be presented again only to replace its stale binding.
    let (s, secret) = c.secret_device().await;
    let (pem3, cert3) = c.stack.issue_by_aws(&c.aws, s.as_str()).await;
    let p = secret_parameters(s.as_str(), &secret);
    assert!(c
        .ask(hook_request(CLAIM, &pem3, None, p.clone()))
        .await
        .is_some());
    let (pem4, cert4) = c.stack.issue_by_aws(&c.aws, s.as_str()).await;
    assert!(c
        .ask(hook_request(CLAIM, &pem4, None, p.clone()))
        .await
        .is_some());
    assert_eq!(
        c.stack.certificate_status(&cert3).await,
        CertificateStatus::Revoked
    );
    let d = c.device(&s).await;
    assert_eq!(d.enrollment.secret_used_by.unwrap().as_str(), cert4);
}

#[tokio::test]
async fn a_live_binding_can_never_be_taken_over_and_is_confirmed_when_seen() {
    let c = claim().await;
    let (serial, key) = c.factory_device("").await;
    let cert1 = c.enroll(&serial, &key).await;
    c.stack.register_thing(&serial, &cert1).await;

    // Even with a valid fresh proof (a cloned firmware, a stolen key): refused; the live binding stays.
    let (pem2, cert2) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    let t = OffsetDateTime::now_utc().unix_timestamp() + 1;
    assert_eq!(
        c.ask(hook_request(
            CLAIM,
            &pem2,
            None,
            key.prove(serial.as_str(), &cert2, t)
        ))
        .await,
        None
    );
    let last = c.audit(&cert2).await.pop().unwrap();
    assert_eq!(last.reason, Reason::SerialBoundToOtherCertificate);
    let device = c.device(&serial).await;
    assert_eq!(device.certificate_id.unwrap().as_str(), cert1);
    assert!(!device.binding_pending, "seen ACTIVE: confirmed");
    assert_eq!(
        c.stack.certificate_status(&cert1).await,
        CertificateStatus::Active
    );
}

#[tokio::test]
async fn a_jitr_device_replaces_a_stale_claim_binding_through_the_shared_validator() {
    let c = claim().await;
    let (serial, key) = c.factory_device("").await;
    let cert1 = c.enroll(&serial, &key).await;
    // The claim provisioning never finished; the device comes back through JITR with a CA-signed cert.
    let ca = TestCa::new("device CA");
    let ca_id = c.stack.register_ca(&ca).await;
    let cert2 = c.stack.auto_register(&ca.issue(serial.as_str()), &ca).await;
    let d = c
        .stack
        .provisioner()
        .handle(
            fleetguard_tests::jitr_event(&cert2, &ca_id),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::Provisioned);
    assert_eq!(
        c.stack.certificate_status(&cert1).await,
        CertificateStatus::Revoked
    );
    let device = c.device(&serial).await;
    assert_eq!(device.certificate_id.unwrap().as_str(), cert2);
    assert!(!device.binding_pending);
}

#[tokio::test]
async fn two_requests_with_one_secret_bind_once() {
    let c = claim().await;
    let (serial, secret) = c.secret_device().await;
    let p = secret_parameters(serial.as_str(), &secret);
    let (pem1, _) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    let (pem2, _) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    let (r1, r2) = tokio::join!(
        c.ask(hook_request(CLAIM, &pem1, None, p.clone())),
        c.ask(hook_request(CLAIM, &pem2, None, p.clone()))
    );
    assert_eq!(
        [r1.is_some(), r2.is_some()].iter().filter(|x| **x).count(),
        1,
        "exactly one winner"
    );
}

/// A claim device revoked, then a replacement approved: the new certificate is provisioned by claim
/// and the thing leaves the quarantine group, as a JITR replacement's does.
#[tokio::test]
async fn an_approved_claim_replacement_leaves_the_quarantine_group() {
    let c = claim().await;
    let (serial, key) = c.factory_device("").await;
    let cert1 = c.enroll(&serial, &key).await;
    c.stack.register_thing(&serial, &cert1).await;
    let revoked = c
        .stack
        .revoker()
        .handle(
            serde_json::json!({"action": "revoke", "serial": serial.as_str(), "actor": "ops"}),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(revoked[0].reason, Reason::Revoked);
    let groups = || async {
        c.stack
            .iot
            .list_thing_groups_for_thing()
            .thing_name(serial.as_str())
            .send()
            .await
            .unwrap()
            .thing_groups
            .unwrap_or_default()
            .len()
    };
    assert_eq!(groups().await, 1, "quarantined");
    assert!(
        fleetguard_domain::lifecycle::replacement::approve_replacement(
            &c.stack.registry(),
            &c.stack.audit(),
            &serial,
            "fleetctl:ops",
        )
        .await
        .unwrap()
    );
    let (pem2, cert2) = c.stack.issue_by_aws(&c.aws, serial.as_str()).await;
    let t = OffsetDateTime::now_utc().unix_timestamp() + 1;
    assert!(c
        .ask(hook_request(
            CLAIM,
            &pem2,
            None,
            key.prove(serial.as_str(), &cert2, t)
        ))
        .await
        .is_some());
    assert_eq!(groups().await, 0, "out of quarantine");
}
