//! `scripts/demo.sh --gateway`, exactly: the story through the local IoT gateway with real MQTT
//! clients (JITR on first connect, a delete answered over MQTT, a policy disconnect, a hijacked key
//! refused, an operator's JWT through the authorizer, a revoke cutting the live session, the
//! rollback), every check asserted.

use fleetguard_tests::gateway_story::GatewayStory;
use fleetguard_tests::Stack;

#[tokio::test]
async fn the_story_through_the_gateway() {
    let stack = Stack::new().await;
    let mut story = GatewayStory::new(&stack, false);
    let run = story.run().await;
    let failed: Vec<String> = story.failures().iter().map(|c| c.what.clone()).collect();
    assert!(run.is_ok(), "{run:?}");
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(story.checks.len() >= 12, "{} checks", story.checks.len());
}
