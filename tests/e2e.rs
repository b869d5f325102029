//! End to end: the README's story and every event fixture through the real function binaries
//! served by `cargo lambda watch` (the Lambda runtime API), against the emulator. One `cargo lambda
//! watch` for both phases: each function is built once on its first invoke.

use fleetguard_tests::local_lambda::{LocalLambda, FIXTURES, FUNCTIONS};
use fleetguard_tests::story::{Story, AUDIENCE, ISSUER};
use fleetguard_tests::{Stack, TestIdp};

#[tokio::test]
async fn the_story_and_every_fixture_through_the_lambda_runtime_api() {
    let stack = Stack::new().await;
    let idp = TestIdp::new(ISSUER, AUDIENCE);
    let ca = Story::register_ca(&stack).await;
    let lambda = LocalLambda::for_stack(&stack, &idp, false);

    // The story: every outcome asserted.
    let mut story = Story::new(&stack, &lambda, ca, false);
    let run = story.run(&idp).await;
    let failed: Vec<String> = story.failures().iter().map(|c| c.what.clone()).collect();
    assert!(
        run.is_ok(),
        "a step failed to run: {run:?}; log {}",
        lambda.log.display()
    );
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    assert!(story.checks.len() >= 25, "{} checks", story.checks.len());

    every_fixture_can_be_invoked(&lambda).await;
    every_hostile_event_gets_an_answer(&lambda).await;

    // Every line the five functions logged during all of the above: no token (a JWT always
    // starts `eyJ`), no key, no certificate body, no password.
    // (The functions log JSON lines; cargo lambda's own lines are not theirs.)
    let log = std::fs::read_to_string(&lambda.log).unwrap();
    let ours: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    assert!(ours.len() > 20, "the functions logged their decisions");
    for secret in [
        "eyJ",
        "PRIVATE KEY",
        "BEGIN CERTIFICATE",
        "cGFzc3dvcmQ",
        "bm90LWEtcmVhbC1wYXNzd29yZA",
        "not-a-real-password",
    ] {
        let hit = ours.iter().find(|l| l.contains(secret));
        assert!(hit.is_none(), "a function logged {secret:?}: {hit:?}");
    }
}

/// The hostile corpus through every function's runtime loop: an answer (decision or clean
/// function error) each time, never a crash or a hang; the authorizer denies all of it.
async fn every_hostile_event_gets_an_answer(lambda: &LocalLambda) {
    let events = fleetguard_tests::corpus_json("events.json");
    for function in FUNCTIONS {
        for event in &events {
            let answer = lambda.invoke(function, event).await;
            match (function, answer) {
                ("authorizer", Ok(r)) => assert_eq!(r["isAuthenticated"], false, "{event}"),
                (_, Ok(_)) => {}
                // A named kind of failure (`AwsThrottled`, `Corrupt`, ...), never a Rust type name.
                (_, Err(e)) => assert!(
                    e.contains("errorType") && !e.contains("alloc::boxed::Box"),
                    "{function} {event}: {e}"
                ),
            }
        }
    }
}

/// Every fixture in tests/fixtures goes through its function's runtime loop (as
/// `cargo lambda invoke <fn> --data-file tests/fixtures/<file>` does): the function answers with a
/// decision, never a crash, and is still serving afterwards; garbage gets a clean answer too.
async fn every_fixture_can_be_invoked(lambda: &LocalLambda) {
    let dir = fleetguard_tests::workspace_root().join("tests/fixtures");
    let listed: Vec<&str> = FIXTURES.iter().map(|(f, _)| *f).collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            assert!(
                listed.contains(&name.as_str()),
                "{name} has no function in FIXTURES"
            );
        }
    }
    for (file, function) in FIXTURES {
        let payload: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        // The fixtures name devices this stack has never seen: each is a clean decision.
        let answer = lambda.invoke(function, &payload).await;
        assert!(answer.is_ok(), "{file} -> {function}: {answer:?}");
    }
    for function in FUNCTIONS {
        let answer = lambda
            .invoke(function, &serde_json::json!({"garbage": [1, 2]}))
            .await;
        match function {
            "authorizer" | "handshake-validator" => {
                assert_eq!(answer.unwrap()["isAuthenticated"], false)
            }
            "provisioning-hook" => assert_eq!(answer.unwrap()["allowProvisioning"], false),
            // A decision (rejected/malformed) or a clean function error; never a hang.
            _ => {
                if let Err(e) = &answer {
                    assert!(
                        e.contains("errorType") && !e.contains("alloc::boxed::Box"),
                        "{function}: {e}"
                    );
                }
            }
        }
    }
}
