//! The local demo: the whole fleetguard story, step by step, through the real functions served by
//! `cargo lambda watch` (Lambda runtime API) against the local emulator. Run with `scripts/demo.sh`
//! (it sets up the emulator and cargo-lambda first).

use fleetguard_tests::local_lambda::LocalLambda;
use fleetguard_tests::story::{Story, AUDIENCE, ISSUER};
use fleetguard_tests::{Stack, TestIdp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    println!("    building the functions (cargo build; minutes on a cold checkout):");
    let lambda = LocalLambda::for_stack(&stack, &idp, true);
    println!(
        "    cargo lambda watch on {} (functions built above; log {})",
        lambda.endpoint,
        lambda.log.display()
    );

    let mut story = Story::new(&stack, &lambda, true);
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
