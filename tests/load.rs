//! The bounded load run (`scripts/load.sh`; ignored by `cargo test`): many instances of the real
//! delete-record and revoker binaries behind `cargo lambda watch --concurrency`, thousands of deletes
//! over hundreds of devices with revokes-with-rollback interleaved and some messages delivered twice,
//! while the emulator throttles DynamoDB and the AWS IoT control plane at a steady rate. Afterwards
//! every invariant is checked against the tables and the audit log; throughput and latency are
//! printed, never asserted (they measure the emulator as much as us).
//!
//! Sizes from the environment: FLEETGUARD_LOAD_DEVICES (500), FLEETGUARD_LOAD_RECORDS per device
//! (10), FLEETGUARD_LOAD_REVOKES (50), FLEETGUARD_LOAD_INSTANCES (20), FLEETGUARD_LOAD_THROTTLE_EVERY
//! (every Nth DynamoDB and IoT control-plane call is throttled; 25; 0: none),
//! FLEETGUARD_LOAD_REPLAY_PERCENT (messages delivered twice; 2).

use fleetguard_domain::model::{Outcome, Reason, RecordId, Serial};
use fleetguard_domain::ports::AuditLog;
use fleetguard_tests::local_lambda::LocalLambda;
use fleetguard_tests::story::{AUDIENCE, ISSUER};
use fleetguard_tests::{delete_event, now_ms, Stack, TestCa, TestIdp};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift): the same run each time, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[derive(Clone)]
enum Job {
    Delete {
        device: usize,
        record: usize,
        event: Value,
        replay: bool,
    },
    Revoke {
        device: usize,
    },
}

struct Done {
    job: Job,
    answer: Value,
    latency: Duration,
    /// Lambda errors this job met before its answer (each retried, as Lambda retries an async
    /// invoke), with their messages.
    errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the load run: scripts/load.sh"]
async fn load_run() {
    let devices = env("FLEETGUARD_LOAD_DEVICES", 500);
    let per_device = env("FLEETGUARD_LOAD_RECORDS", 10);
    let revokes = env("FLEETGUARD_LOAD_REVOKES", 50).min(devices);
    let instances = env("FLEETGUARD_LOAD_INSTANCES", 20);
    let throttle_every = env("FLEETGUARD_LOAD_THROTTLE_EVERY", 25);
    let replay_percent = env("FLEETGUARD_LOAD_REPLAY_PERCENT", 2);

    let stack = Arc::new(Stack::new().await);
    let ca = Arc::new(TestCa::new("fleetguard load CA"));
    let ca_id = stack.register_ca(&ca).await;
    let setup = Instant::now();
    let fleet = provision(&stack, &ca, &ca_id, devices).await;
    for (serial, _) in &fleet {
        for r in 0..per_device {
            stack.seed_record(serial, &format!("rec-{r}")).await;
        }
    }
    println!(
        "setup: {devices} devices provisioned, {} records seeded in {:.1} s",
        devices * per_device,
        setup.elapsed().as_secs_f64()
    );

    // The work: each record deleted once by its own device (some messages delivered twice, as
    // MQTT QoS 1 may), with `revokes` revokes-with-rollback of distinct devices interleaved.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut jobs = Vec::new();
    let base = now_ms();
    for (d, (serial, cert)) in fleet.iter().enumerate() {
        for r in 0..per_device {
            let mut event = delete_event(
                serial.as_str(),
                &format!("rec-{r}"),
                cert,
                base + (d * per_device + r) as i64,
            );
            event["request_id"] = format!("load-{d}-{r}").into();
            if rng.below(100) < replay_percent {
                jobs.push(Job::Delete {
                    device: d,
                    record: r,
                    event: event.clone(),
                    replay: true,
                });
            }
            jobs.push(Job::Delete {
                device: d,
                record: r,
                event,
                replay: false,
            });
        }
    }
    for i in (1..jobs.len()).rev() {
        jobs.swap(i, rng.below(i + 1));
    }
    let mut revoked: Vec<usize> = Vec::new();
    while revoked.len() < revokes {
        let d = rng.below(devices);
        if !revoked.contains(&d) {
            revoked.push(d);
        }
    }
    for &d in &revoked {
        let at = rng.below(jobs.len());
        jobs.insert(at, Job::Revoke { device: d });
    }

    let idp = TestIdp::new(ISSUER, AUDIENCE);
    let lambda = Arc::new(LocalLambda::for_stack_concurrent(
        &stack, &idp, false, instances,
    ));
    warm_up(&lambda, instances).await;
    if throttle_every > 0 {
        let e = &stack.emulator;
        e.inject_steady(
            "dynamodb:*",
            throttle_every as u32,
            400,
            "ThrottlingException",
        );
        e.inject_steady("iot:*", throttle_every as u32, 429, "ThrottlingException");
    }

    let started = Instant::now();
    let done = drive(&lambda, &fleet, jobs, instances).await;
    let wall = started.elapsed();
    let injected = stack.emulator.faults_failed();
    stack.emulator.clear_faults();

    report(&done, wall, instances, &injected);
    check(&stack, &fleet, &revoked, per_device, &done).await;
}

/// Starts every instance before the clock does: `cargo lambda watch` starts an instance (a `cargo
/// run`) when all are busy, and those starts would be counted as latency.
async fn warm_up(lambda: &Arc<LocalLambda>, instances: usize) {
    let calls = ["delete-record", "revoker"]
        .iter()
        .flat_map(|f| std::iter::repeat_n(*f, instances))
        .map(|f| (f, json!({"warm": "up"})))
        .collect();
    lambda.invoke_all(calls).await;
}

/// Provisions `n` devices through JITR (in this process, a few at a time).
async fn provision(
    stack: &Arc<Stack>,
    ca: &Arc<TestCa>,
    ca_id: &str,
    n: usize,
) -> Vec<(Serial, String)> {
    let gate = Arc::new(Semaphore::new(4));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (stack, ca, ca_id, gate) =
                (stack.clone(), ca.clone(), ca_id.to_owned(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.expect("gate");
                stack.provision_device(&ca, &ca_id).await
            })
        })
        .collect();
    let mut fleet = Vec::new();
    for t in tasks {
        fleet.push(t.await.expect("provision"));
    }
    fleet
}

/// Runs every job with at most `instances` in flight. A Lambda error is retried (twice more, as
/// Lambda retries an asynchronous invoke) and kept with the job, to be explained.
async fn drive(
    lambda: &Arc<LocalLambda>,
    fleet: &[(Serial, String)],
    jobs: Vec<Job>,
    instances: usize,
) -> Vec<Done> {
    let gate = Arc::new(Semaphore::new(instances));
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let (function, event) = match &job {
                Job::Delete { event, .. } => ("delete-record", event.clone()),
                Job::Revoke { device } => (
                    "revoker",
                    json!({"action": "revoke", "serial": fleet[*device].0.as_str(),
                           "rollback": true, "actor": "load", "reason": "load run"}),
                ),
            };
            let (lambda, gate) = (lambda.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.expect("gate");
                let started = Instant::now();
                let mut errors = Vec::new();
                loop {
                    match lambda.invoke(function, &event).await {
                        Ok(answer) => {
                            return Done {
                                job,
                                answer,
                                latency: started.elapsed(),
                                errors,
                            }
                        }
                        Err(e) if errors.len() < 2 => {
                            errors.push(e);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("three Lambda errors in a row for one event: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.expect("job"));
    }
    done
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(done: &[Done], wall: Duration, instances: usize, injected: &Value) {
    let mut by_kind: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for d in done {
        let kind = match d.job {
            Job::Delete { .. } => "delete",
            Job::Revoke { .. } => "revoke with rollback",
        };
        by_kind.entry(kind).or_default().push(d.latency);
    }
    println!(
        "load: {} invocations in {:.1} s with {instances} instances per function: {:.0} invocations/s",
        done.len(),
        wall.as_secs_f64(),
        done.len() as f64 / wall.as_secs_f64()
    );
    for (kind, mut latencies) in by_kind {
        latencies.sort();
        println!(
            "  {kind:<22} n={:<6} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0)
        );
    }
    let retried = done.iter().filter(|d| !d.errors.is_empty()).count();
    println!("  throttled by the emulator: {injected}");
    println!("  invocations that met a Lambda error and were retried: {retried}");
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for d in done {
        let reason = match d.job {
            Job::Delete { .. } => d.answer["reason"].as_str().unwrap_or("?").to_owned(),
            Job::Revoke { .. } => d.answer[0]["reason"].as_str().unwrap_or("?").to_owned(),
        };
        *answers.entry(reason).or_default() += 1;
    }
    println!("  answers: {answers:?}");
}

/// Every invariant of the run, from the tables and the audit log.
async fn check(
    stack: &Stack,
    fleet: &[(Serial, String)],
    revoked: &[usize],
    per_device: usize,
    done: &[Done],
) {
    // Every Lambda error is a throttle the SDK's own retries did not absorb, nothing else.
    for d in done {
        for e in &d.errors {
            assert!(
                e.contains("Throttling") || e.contains("injected"),
                "unexplained Lambda error: {e}"
            );
        }
    }
    // The answers, per record and per revoke.
    let mut deleted_answers: HashMap<(usize, usize), usize> = HashMap::new();
    let mut restored_by_revoke: HashMap<usize, u64> = HashMap::new();
    for d in done {
        match &d.job {
            Job::Delete {
                device,
                record,
                replay,
                ..
            } => {
                let reason = d.answer["reason"].as_str().unwrap_or("?");
                let allowed: &[&str] = if revoked.contains(device) {
                    &["deleted", "device_not_active"]
                } else {
                    &["deleted"]
                };
                assert!(allowed.contains(&reason), "{} {}", d.answer, replay);
                // Either copy of a message delivered twice may be the one that deleted (the
                // other gets the same answer, or `device_not_active` once the device is revoked).
                if reason == "deleted" {
                    *deleted_answers.entry((*device, *record)).or_default() += 1;
                }
            }
            Job::Revoke { device } => {
                assert_eq!(d.answer[0]["reason"], "revoked", "{}", d.answer);
                restored_by_revoke.insert(*device, d.answer[0]["restored"].as_u64().unwrap());
            }
        }
    }
    let mut records_checked = 0;
    for (i, (serial, cert)) in fleet.iter().enumerate() {
        let audit = stack
            .audit()
            .for_serial(serial.as_str(), 10_000)
            .await
            .expect("audit");
        let is_revoked = revoked.contains(&i);
        let mut accepted_deletes = 0;
        for r in 0..per_device {
            let name = format!("rec-{r}");
            let record = stack
                .record(serial, &RecordId::parse(&name).unwrap())
                .await
                .unwrap_or_else(|| panic!("{serial}/{name} lost"));
            let count = |action: &str, reason: Reason| {
                audit
                    .iter()
                    .filter(|e| {
                        e.record_id.as_deref() == Some(name.as_str())
                            && e.action == action
                            && e.outcome == Outcome::Accepted
                            && e.reason == reason
                    })
                    .count() as u64
            };
            let deletes = count("delete_record", Reason::Deleted);
            let restores = count("restore_record", Reason::Restored);
            // Every version step is an audited change.
            assert_eq!(
                record.version,
                1 + deletes + restores,
                "{serial}/{name}: version {} for {deletes} deletes and {restores} restores",
                record.version
            );
            assert!(deletes <= 1, "{serial}/{name} deleted {deletes} times");
            assert_eq!(
                deleted_answers.contains_key(&(i, r)),
                deletes == 1,
                "{serial}/{name}: answers and audit disagree"
            );
            if is_revoked {
                // Rolled back exactly: nothing left deleted by the revoked certificate.
                assert!(!record.is_deleted(), "{serial}/{name} left deleted");
                assert_eq!(deletes, restores, "{serial}/{name}");
            } else {
                // Nothing lost: deleted once, by its own device.
                assert!(record.is_deleted(), "{serial}/{name} not deleted");
                assert_eq!(record.deleted_by.as_deref(), Some(cert.as_str()));
                assert_eq!(restores, 0);
            }
            accepted_deletes += deletes;
            records_checked += 1;
        }
        if is_revoked {
            assert_eq!(
                restored_by_revoke.get(&i).copied(),
                Some(accepted_deletes),
                "{serial}: the rollback restored what the device had deleted"
            );
            let revokes = audit
                .iter()
                .filter(|e| e.action == "revoke" && e.outcome == Outcome::Accepted)
                .count();
            assert_eq!(revokes, 1, "{serial}: revoke audited once");
        }
    }
    println!(
        "invariants: {records_checked} records, {} revoked devices: no record lost or deleted twice, \
         every version step audited, every answer matches the audit, every rollback exact, \
         every Lambda error a throttle",
        revoked.len()
    );
}
