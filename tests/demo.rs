//! The local demo: the whole fleetguard story, step by step, through the real functions served by
//! `cargo lambda watch` (Lambda runtime API) against the local emulator. Run with `scripts/demo.sh`
//! (it sets up the emulator and cargo-lambda first). `--gateway`: the story through the local IoT
//! gateway with real MQTT clients, printing the mosquitto commands that do the same (`--hold`:
//! then keep serving them until Ctrl-C).

use fleetguard_tests::local_lambda::LocalLambda;
use fleetguard_tests::story::{Story, AUDIENCE, ISSUER};
use fleetguard_tests::{Stack, TestIdp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--gateway") {
        return gateway().await;
    }
    println!("[0] Start the local stack");
    let stack = Stack::new().await;
    println!(
        "    emulator (moto, server mode) {}  tables {} / {} / {}",
        stack.emulator.endpoint, stack.tables.registry, stack.tables.audit, stack.tables.records
    );
    println!(
        "    fleet device policy {} (from infra/template.yaml: own client id and topics only)",
        stack.fleet_policy
    );
    let idp = TestIdp::new(ISSUER, AUDIENCE);
    let ca = Story::register_ca(&stack).await;
    println!(
        "    device CA {} registered with AWS IoT (the template's CaCertificateId)",
        ca.1
    );
    println!("    building the functions (cargo build; minutes on a cold checkout):");
    let lambda = LocalLambda::for_stack(&stack, &idp, true);
    println!(
        "    cargo lambda watch on {} (functions built above; log {})",
        lambda.endpoint,
        lambda.log.display()
    );

    let mut story = Story::new(&stack, &lambda, ca, true);
    story.run(&idp).await?;
    let failed = story.failures();
    println!(
        "\nDemo finished: {} checks, {} failed.",
        story.checks.len(),
        failed.len()
    );
    if !failed.is_empty() {
        return Err(format!("failed: {failed:?}").into());
    }
    Ok(())
}

/// The story through the local IoT gateway.
async fn gateway() -> Result<(), Box<dyn std::error::Error>> {
    println!("[0] Start the local stack (emulator: moto, server mode)");
    let stack = Stack::new().await;
    let mut story = fleetguard_tests::gateway_story::GatewayStory::new(&stack, true);
    story.hold = std::env::args().any(|a| a == "--hold");
    story.run().await?;
    let failed = story.failures();
    println!(
        "\nDemo (gateway) finished: {} checks, {} failed.",
        story.checks.len(),
        failed.len()
    );
    if !failed.is_empty() {
        return Err(format!("failed: {failed:?}").into());
    }
    Ok(())
}
