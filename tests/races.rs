//! Races through the real function binaries: `cargo lambda watch --concurrency` serves up to
//! [`INSTANCES`] processes of each function (each its own cold start, as Lambda scales out), and each
//! race's events are sent at once. Every race has exactly one winner, every loser gets an answer (a
//! decision, never a Lambda error, which on AWS would mean a retry minutes later), nothing is lost,
//! and the audit log holds each decision once.
//!
//! One test in this binary: one `cargo lambda watch`, the races one after another.

use fleetguard_domain::authorization::authorizer::IdentityStore;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{AuditEntry, Serial};
use fleetguard_domain::ports::{AuditLog, Registry, RestoreResult};
use fleetguard_domain::records::restore::restore_record;
use fleetguard_tests::local_lambda::{LocalLambda, FUNCTIONS};
use fleetguard_tests::story::{AUDIENCE, ISSUER};
use fleetguard_tests::{
    delete_event, enrollment_secret, hook_request, jitr_event, mqtt_connect, now_ms,
    secret_parameters, unique, Fleet, TestCa, TestIdp,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Processes of each function at most.
const INSTANCES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_race_has_one_winner_and_every_loser_an_answer() {
    let f = Fleet::new().await;
    let idp = TestIdp::new(ISSUER, AUDIENCE);
    let lambda = Arc::new(LocalLambda::for_stack_concurrent(
        &f.stack, &idp, false, INSTANCES,
    ));
    let r = Races { f, lambda };
    r.warm_up().await;
    r.same_serial_jitr().await;
    r.concurrent_deletes().await;
    r.delete_racing_restore().await;
    r.deletes_racing_revoke_with_rollback().await;
    r.revoke_racing_release_and_quarantine().await;
    r.provisioning_racing_revoke().await;
    r.wrong_passwords_at_once().await;
    r.one_secret_two_claims().await;
}

struct Races {
    f: Fleet,
    lambda: Arc<LocalLambda>,
}

impl Races {
    /// Sends every event at once and returns the answers in order. A Lambda error fails the test:
    /// losing a race is not an error.
    async fn together(&self, calls: Vec<(&'static str, Value)>) -> Vec<Value> {
        self.lambda
            .invoke_all(calls)
            .await
            .into_iter()
            .map(|a| a.unwrap_or_else(|e| panic!("a Lambda error where an answer was due: {e}")))
            .collect()
    }

    /// Starts the instances: each function gets events it refuses, at once, so the races below
    /// meet warm processes rather than one process and three cold starts. (A malformed event may be
    /// a clean function error for some functions: only the start matters here.)
    async fn warm_up(&self) {
        let calls = FUNCTIONS
            .iter()
            .flat_map(|f| std::iter::repeat_n(*f, INSTANCES))
            .map(|f| (f, json!({"warm": "up"})))
            .collect();
        self.lambda.invoke_all(calls).await;
    }

    /// The serial's audit entries that `keep` selects, counted by `outcome:reason`.
    async fn tally_audit(
        &self,
        serial: &Serial,
        keep: impl Fn(&AuditEntry) -> bool,
    ) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        let entries = self
            .f
            .stack
            .audit()
            .for_serial(serial.as_str(), 1000)
            .await
            .unwrap();
        for e in entries.iter().filter(|e| keep(e)) {
            *counts
                .entry(format!("{}:{}", e.outcome.as_str(), e.reason.as_str()))
                .or_default() += 1;
        }
        counts
    }

    async fn audit_reasons(&self, serial: &Serial, action: &str) -> BTreeMap<String, usize> {
        self.tally_audit(serial, |e| e.action == action).await
    }

    async fn delete_audit(&self, serial: &Serial, record: &str) -> BTreeMap<String, usize> {
        self.tally_audit(serial, |e| e.record_id.as_deref() == Some(record))
            .await
    }

    /// Four certificates of one serial reach JITR at once: one is provisioned; the others are
    /// refused, REVOKED, and keep neither the policy nor the thing.
    async fn same_serial_jitr(&self) {
        let s = &self.f.stack;
        let serial = Serial::parse(&unique("SN")).unwrap();
        s.registry().import_serial(&serial).await.unwrap();
        let mut certs = Vec::new();
        for _ in 0..INSTANCES {
            certs.push(
                s.auto_register(&self.f.ca.issue(serial.as_str()), &self.f.ca)
                    .await,
            );
        }
        let answers = self
            .together(
                certs
                    .iter()
                    .map(|c| ("provisioner", jitr_event(c, &self.f.ca_id)))
                    .collect(),
            )
            .await;
        let winners: Vec<&String> = certs
            .iter()
            .zip(&answers)
            .filter(|(_, a)| a["reason"] == "provisioned")
            .map(|(c, _)| c)
            .collect();
        assert_eq!(winners.len(), 1, "same-serial JITR: {answers:?}");
        let winner = winners[0];
        for (cert, answer) in certs.iter().zip(&answers) {
            let arn = s.certificate_arn(cert).await;
            if cert == winner {
                assert_eq!(s.certificate_status(cert).await, CertificateStatus::Active);
                assert_eq!(
                    s.principal_policies(&arn).await,
                    vec![s.fleet_policy.clone()]
                );
            } else {
                assert_eq!(answer["outcome"], "rejected", "{answer}");
                assert_eq!(s.certificate_status(cert).await, CertificateStatus::Revoked);
                assert!(
                    s.principal_policies(&arn).await.is_empty(),
                    "loser kept the policy"
                );
            }
        }
        assert_eq!(
            s.thing_principals(serial.as_str()).await,
            vec![s.certificate_arn(winner).await]
        );
        let device = s.registry().get_device(&serial).await.unwrap().unwrap();
        assert_eq!(device.certificate_id.unwrap().as_str(), winner.as_str());
        let audit = self.audit_reasons(&serial, "provision").await;
        assert_eq!(audit.get("accepted:provisioned"), Some(&1), "{audit:?}");
        assert_eq!(audit.values().sum::<usize>(), INSTANCES, "{audit:?}");
    }

    /// Four deletes of one record with distinct request ids: one deletes, three are answered
    /// `already_deleted` at once.
    async fn concurrent_deletes(&self) {
        let (serial, cert) = &self.f.a;
        let rid = self.f.stack.seed_record(serial, "race-deletes").await;
        let calls = (0..INSTANCES)
            .map(|i| {
                let mut e = delete_event(serial.as_str(), "race-deletes", cert, now_ms());
                e["request_id"] = format!("req-{i}").into();
                ("delete-record", e)
            })
            .collect();
        let answers = self.together(calls).await;
        let reasons = tally(&answers);
        assert_eq!(reasons.get("deleted"), Some(&1), "{reasons:?}");
        assert_eq!(
            reasons.get("already_deleted"),
            Some(&(INSTANCES - 1)),
            "{reasons:?}"
        );
        let record = self.f.stack.record(serial, &rid).await.unwrap();
        assert_eq!(record.version, 2);
        let audit = self.delete_audit(serial, "race-deletes").await;
        assert_eq!(audit.get("accepted:deleted"), Some(&1), "{audit:?}");
        assert_eq!(audit.values().sum::<usize>(), INSTANCES, "{audit:?}");
    }

    /// Deletes and restores of one record at once (the restores as `fleetctl records restore`
    /// runs them, in this process): every change is one version step, every answer is a
    /// decision, and the audit holds each change once.
    async fn delete_racing_restore(&self) {
        let s = &self.f.stack;
        let (serial, cert) = &self.f.a;
        let rid = s.seed_record(serial, "race-restore").await;
        // Deleted once, so the first restores have something to restore.
        let first = self
            .together(vec![(
                "delete-record",
                delete_event(serial.as_str(), "race-restore", cert, now_ms()),
            )])
            .await;
        assert_eq!(first[0]["reason"], "deleted");
        let restores: Vec<_> = (0..3)
            .map(|_| {
                let (records, audit, serial, rid) =
                    (s.records(), s.audit(), serial.clone(), rid.clone());
                tokio::spawn(async move {
                    restore_record(&records, &audit, &serial, &rid, "operator:race", None).await
                })
            })
            .collect();
        let deletes = self.together(
            (0..3)
                .map(|i| {
                    let mut e = delete_event(serial.as_str(), "race-restore", cert, now_ms());
                    e["request_id"] = format!("restore-race-{i}").into();
                    ("delete-record", e)
                })
                .collect(),
        );
        let answers = deletes.await;
        let mut restored = 0;
        for r in restores {
            match r.await.unwrap().expect("a restore is an answer") {
                RestoreResult::Restored { .. } => restored += 1,
                RestoreResult::NotDeleted { .. } => {}
                RestoreResult::NotFound => panic!("record lost"),
            }
        }
        let reasons = tally(&answers);
        let deleted = reasons.get("deleted").copied().unwrap_or(0);
        for reason in reasons.keys() {
            assert!(
                ["deleted", "already_deleted", "record_busy"].contains(&reason.as_str()),
                "{reasons:?}"
            );
        }
        // Version 1, +1 for the first delete, then one step per change that won.
        let record = s.record(serial, &rid).await.unwrap();
        assert_eq!(
            record.version,
            2 + deleted as u64 + restored as u64,
            "deletes {deleted}, restores {restored}: {reasons:?}"
        );
        // Alternating changes: deleted now iff the deletes that won outnumber the restores.
        assert_eq!(record.is_deleted(), deleted == restored, "{reasons:?}");
        let audit = self.delete_audit(serial, "race-restore").await;
        assert_eq!(
            audit.get("accepted:deleted"),
            Some(&(1 + deleted)),
            "{audit:?}"
        );
        assert_eq!(
            audit.get("accepted:restored").copied().unwrap_or(0),
            restored,
            "{audit:?}"
        );
    }

    /// A device deletes six records while it is revoked with rollback: every delete is answered,
    /// and no record is left deleted by the revoked certificate.
    async fn deletes_racing_revoke_with_rollback(&self) {
        let s = &self.f.stack;
        let (serial, cert) = s.provision_device(&self.f.ca, &self.f.ca_id).await;
        let mut calls = Vec::new();
        for i in 0..6 {
            let id = format!("rollback-{i}");
            s.seed_record(&serial, &id).await;
            calls.push((
                "delete-record",
                delete_event(serial.as_str(), &id, &cert, now_ms() + i),
            ));
        }
        calls.insert(
            3,
            (
                "revoker",
                json!({"action": "revoke", "serial": serial.as_str(), "rollback": true,
                       "actor": "race", "reason": "race"}),
            ),
        );
        let answers = self.together(calls).await;
        let revoke = &answers[3];
        assert_eq!(revoke[0]["reason"], "revoked", "{revoke}");
        let deletes: Vec<Value> = answers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, a)| a.clone())
            .collect();
        let reasons = tally(&deletes);
        for reason in reasons.keys() {
            assert!(
                ["deleted", "device_not_active"].contains(&reason.as_str()),
                "{reasons:?}"
            );
        }
        let accepted = reasons.get("deleted").copied().unwrap_or(0);
        for i in 0..6 {
            let id = fleetguard_domain::model::RecordId::parse(&format!("rollback-{i}")).unwrap();
            let record = s.record(&serial, &id).await.unwrap();
            assert!(
                !record.is_deleted(),
                "rollback-{i} left deleted: {reasons:?}"
            );
        }
        assert_eq!(revoke[0]["restored"], accepted, "{revoke}");
        let audit = self.audit_reasons(&serial, "revoke").await;
        assert_eq!(audit.get("accepted:revoked"), Some(&1), "{audit:?}");
        self.assert_revoked(&serial, &cert).await;
    }

    /// Revoked: registry, AWS IoT status, deny-list, policy, thing, quarantine group.
    async fn assert_revoked(&self, serial: &Serial, cert: &str) {
        let s = &self.f.stack;
        let device = s.registry().get_device(serial).await.unwrap().unwrap();
        assert_eq!(
            device.status,
            fleetguard_domain::model::DeviceStatus::Revoked,
            "{serial}"
        );
        assert_eq!(
            s.certificate_status(cert).await,
            CertificateStatus::Revoked,
            "{serial}"
        );
        let id = fleetguard_domain::model::CertificateId::parse(cert).unwrap();
        assert!(
            s.registry()
                .get_certificate(&id)
                .await
                .unwrap()
                .unwrap()
                .denied
        );
        let arn = s.certificate_arn(cert).await;
        assert!(
            s.principal_policies(&arn).await.is_empty(),
            "{serial}: policy left"
        );
        assert!(
            !s.thing_principals(serial.as_str()).await.contains(&arn),
            "{serial}: still on its thing"
        );
        let group = format!("{}-quarantine", s.prefix);
        assert!(
            s.group_members(&group).await.contains(&serial.to_string()),
            "{serial}: not in the quarantine group"
        );
    }

    /// A quarantined device is revoked, released and quarantined at once, three times over:
    /// revoked is final whatever the order, and the revoke is audited once.
    async fn revoke_racing_release_and_quarantine(&self) {
        let s = &self.f.stack;
        for round in 0..3 {
            let (serial, cert) = s.provision_device(&self.f.ca, &self.f.ca_id).await;
            let command = |action: &str| {
                json!({"action": action, "serial": serial.as_str(), "actor": "race",
                       "reason": format!("round {round}")})
            };
            let first = self
                .together(vec![("revoker", command("quarantine"))])
                .await;
            assert_eq!(first[0][0]["reason"], "quarantined");
            let mut calls = vec![
                ("revoker", command("release")),
                ("revoker", command("revoke")),
                ("revoker", command("quarantine")),
            ];
            calls.rotate_left(round);
            let answers = self.together(calls).await;
            for a in &answers {
                let reason = a[0]["reason"].as_str().unwrap_or_default();
                assert!(
                    [
                        "revoked",
                        "released",
                        "revoked_is_final",
                        "quarantined",
                        "not_quarantined"
                    ]
                    .contains(&reason),
                    "{answers:?}"
                );
            }
            self.assert_revoked(&serial, &cert).await;
            let audit = self.audit_reasons(&serial, "revoke").await;
            assert_eq!(audit.get("accepted:revoked"), Some(&1), "{audit:?}");
        }
    }

    /// A device's first connection and its revocation at once, three times over: the device ends
    /// revoked and its certificate unusable, whichever came first.
    async fn provisioning_racing_revoke(&self) {
        let s = &self.f.stack;
        for round in 0..3 {
            let serial = Serial::parse(&unique("SN")).unwrap();
            s.registry().import_serial(&serial).await.unwrap();
            let cert = s
                .auto_register(&self.f.ca.issue(serial.as_str()), &self.f.ca)
                .await;
            let mut calls = vec![
                ("provisioner", jitr_event(&cert, &self.f.ca_id)),
                (
                    "revoker",
                    json!({"action": "revoke", "serial": serial.as_str(), "actor": "race"}),
                ),
            ];
            calls.rotate_left(round % 2);
            let answers = self.together(calls).await;
            let device = s.registry().get_device(&serial).await.unwrap().unwrap();
            assert_eq!(
                device.status,
                fleetguard_domain::model::DeviceStatus::Revoked,
                "{answers:?}"
            );
            assert_eq!(
                s.certificate_status(&cert).await,
                CertificateStatus::Revoked,
                "{answers:?}"
            );
            let arn = s.certificate_arn(&cert).await;
            assert!(s.principal_policies(&arn).await.is_empty(), "{answers:?}");
            assert!(
                !s.thing_principals(serial.as_str()).await.contains(&arn),
                "{answers:?}"
            );
            let audit = self.audit_reasons(&serial, "revoke").await;
            assert_eq!(audit.get("accepted:revoked"), Some(&1), "{audit:?}");
            let provision = self.audit_reasons(&serial, "provision").await;
            assert_eq!(provision.values().sum::<usize>(), 1, "{provision:?}");
        }
    }

    /// Twenty wrong passwords for one device through the authorizer's instances at once (the
    /// burst threshold): every one is counted, one burst signal is audited, nothing is locked.
    async fn wrong_passwords_at_once(&self) {
        let s = &self.f.stack;
        let serial = Serial::parse(&unique("SN")).unwrap();
        let registry = s.registry();
        registry.import_serial(&serial).await.unwrap();
        let secret =
            fleetguard_domain::authorization::authorizer::secret::DeviceSecret::generate().unwrap();
        fleetguard_domain::authorization::password_devices::set_password(
            &registry,
            &s.services.identities(),
            &s.audit(),
            &serial,
            secret.digest(&serial),
            true,
            "test",
        )
        .await
        .unwrap();
        let calls = (0..20)
            .map(|i| {
                (
                    "authorizer",
                    mqtt_connect(
                        serial.as_str(),
                        format!("guess {i}").as_bytes(),
                        serial.as_str(),
                    ),
                )
            })
            .collect();
        let answers = self.together(calls).await;
        assert!(answers.iter().all(|a| a["isAuthenticated"] == false));
        let principal = fleetguard_domain::authorization::authorizer::device_principal(&serial);
        let stored = s
            .services
            .identities()
            .get_identity(&principal)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.failed_attempts, 20, "DynamoDB's ADD loses none");
        let bursts = s
            .audit()
            .for_serial(serial.as_str(), 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.reason.as_str() == "password_burst")
            .count();
        assert_eq!(bursts, 1);
        let right = mqtt_connect(serial.as_str(), secret.expose().as_bytes(), serial.as_str());
        let answers = self.together(vec![("authorizer", right)]).await;
        assert_eq!(answers[0]["isAuthenticated"], true, "nothing was locked");
    }

    /// One one-time secret in two claim requests at once: one certificate gets the serial.
    async fn one_secret_two_claims(&self) {
        let s = &self.f.stack;
        let issuer = TestCa::new("AWS IoT issuer (races)");
        s.register_issuer_ca(&issuer).await;
        let serial = Serial::parse(&unique("SN")).unwrap();
        let secret = enrollment_secret();
        s.import_enrolled(
            &serial,
            "",
            &fleetguard_domain::provisioning::enrollment::secret_hash(&secret),
            "",
        )
        .await;
        let p = secret_parameters(serial.as_str(), &secret);
        let (pem1, _) = s.issue_by_aws(&issuer, serial.as_str()).await;
        let (pem2, _) = s.issue_by_aws(&issuer, serial.as_str()).await;
        let claim = "c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1";
        let answers = self
            .together(vec![
                (
                    "provisioning-hook",
                    hook_request(claim, &pem1, None, p.clone()),
                ),
                ("provisioning-hook", hook_request(claim, &pem2, None, p)),
            ])
            .await;
        let allowed = answers
            .iter()
            .filter(|a| a["allowProvisioning"] == true)
            .count();
        assert_eq!(allowed, 1, "{answers:?}");
    }
}

/// Each answer's `reason`, counted.
fn tally(answers: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for a in answers {
        let reason = a["reason"].as_str().unwrap_or("?").to_owned();
        *counts.entry(reason).or_default() += 1;
    }
    counts
}
