//! The hostile corpus of raw MQTT bytes (`tests/corpus/gateway.json`), replayed through a device
//! session in process (no TLS, no emulator: the principal is a provisioned device's, with the
//! template's fleet policy): each input ends the session the way the corpus says, no session is
//! left registered, and nothing panics. Derived cases: every input cut at every length.

use fleetguard_gateway::identity::CertificatePrincipal;
use fleetguard_gateway::router::Router;
use fleetguard_gateway::rules::Rules;
use fleetguard_gateway::session::{self, Authentication, Ended, Settings};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AWS_EVENTS_PUBLISHER: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Action": "iot:Publish", "Resource": "arn:aws:iot:us-east-1:123456789012:topic/$aws/events/*"}]}"#;

/// Serves `input` to a session of device SN-0001 (a router of its own: the CONNECT quota is per
/// client id), the client closing after it; how it ended and how many sessions were left.
async fn replay(policy: &str, input: &[u8]) -> (Ended, usize) {
    let router = Router::default();
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let principal = CertificatePrincipal {
        certificate_id: "a".repeat(64),
        status: "ACTIVE".into(),
        arn: "arn:aws:iot:us-east-1:123456789012:cert/x".into(),
        // Besides the fleet policy, one that would let it publish AWS IoT's own events: only the
        // gateway's reservation of those topics stands in the way.
        policies: vec![policy.to_owned(), AWS_EVENTS_PUBLISHER.to_owned()],
        things: vec!["SN-0001".into()],
        ca_certificate_id: None,
    };
    let settings = Arc::new(Settings {
        region: "us-east-1".into(),
        account: "123456789012".into(),
        rules: Arc::new(Rules::default()),
        authorizer: None,
        auth_second: Duration::from_secs(1),
        iot: None,
        policy_refresh: Duration::from_secs(3600),
        provisioning: None,
    });
    let served = tokio::spawn(session::serve(
        server,
        Authentication::Certificate(Some(principal)),
        "localhost",
        ([127, 0, 0, 1], 1).into(),
        router.clone(),
        settings,
    ));
    let _ = client.write_all(input).await;
    let _ = client.shutdown().await;
    // Drain what the gateway answers until it closes.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), client.read_to_end(&mut sink)).await;
    let ended = tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .expect("the session ends")
        .expect("no panic");
    (ended, router.sessions())
}

#[tokio::test]
async fn the_hostile_mqtt_corpus_is_refused() {
    let policy = fleetguard_tests::template_fleet_policy("us-east-1", "123456789012");
    let corpus: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(
            fleetguard_tests::workspace_root().join("tests/corpus/gateway.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(corpus.len() >= 20);
    let mut wrong = Vec::new();
    for case in &corpus {
        let input = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        let (ended, left) = replay(&policy, &input).await;
        let expected = case["ends"].as_str().unwrap();
        // A protocol error's text is the codec's; every other ending is compared whole.
        let got = format!("{ended:?}");
        let matches = if expected == "ProtocolError" {
            got.starts_with(expected)
        } else {
            got == expected
        };
        if !matches {
            wrong.push(format!(
                "{}: ended {ended:?}, expected {expected}",
                case["what"]
            ));
        }
        assert_eq!(left, 0, "{}", case["what"]);
        // Every prefix: ends without a panic, never leaves a session behind.
        for cut in 0..input.len().min(64) {
            assert_eq!(replay(&policy, &input[..cut]).await.1, 0);
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
