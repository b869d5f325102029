//! The local demo: the whole fleetguard story against the local emulator, printed step by step.
//! Run with `scripts/demo.sh` (it sets up the emulator first).

use fleetguard::domain::{CertificateStatus, Serial};
use fleetguard::ports::{AuditLog, Registry};
use fleetguard::provisioning::Provisioner;
use fleetguard_tests::{jitr_event, unique, Stack, TestCa};

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    step(
        1,
        "Start the local AWS emulator (moto, server mode, valid certificate ids)",
    );
    let stack = Stack::new().await;
    println!(
        "    endpoint {}  tables {:?}",
        stack.emulator.endpoint, stack.tables
    );
    println!(
        "    fleet device policy {} (policy variables: own client id and topics only)",
        stack.fleet_policy
    );

    step(
        2,
        "Register our device CA with AWS IoT (auto-registration on)",
    );
    let ca = TestCa::new("fleetguard demo CA");
    let ca_id = stack.register_ca(&ca).await;
    println!("    CA certificate id {ca_id}");

    step(3, "Import the manufacturing allow-list");
    let good = Serial::parse(&unique("SN"))?;
    stack.registry().import_serial(&good).await?;
    println!("    allow-listed serial {good}");

    let provisioner = Provisioner {
        registry: stack.registry(),
        control: stack.control(),
        audit: stack.audit(),
        fleet_policy: stack.fleet_policy.clone(),
        refused_status: CertificateStatus::Revoked,
    };

    step(
        4,
        "Device connects for the first time (JITR): certificate PENDING_ACTIVATION -> provisioner",
    );
    let cert = stack.auto_register(&ca.issue(good.as_str()), &ca).await;
    let d = provisioner
        .handle_jitr(jitr_event(&cert, &ca_id), fleetguard::domain::now())
        .await?;
    println!("    decision {} / {}", d.outcome.as_str(), d.reason);
    println!(
        "    certificate {} thing {} exists={} policies={:?}",
        stack.certificate_status(&cert).await,
        good,
        stack.thing_exists(good.as_str()).await,
        stack
            .principal_policies(&stack.certificate_arn(&cert).await)
            .await
    );

    step(
        5,
        "A device whose serial is not on the allow-list connects: refused, certificate revoked",
    );
    let stranger = unique("SN");
    let cert2 = stack.auto_register(&ca.issue(&stranger), &ca).await;
    let d = provisioner
        .handle_jitr(jitr_event(&cert2, &ca_id), fleetguard::domain::now())
        .await?;
    println!(
        "    decision {} / {}  certificate {}",
        d.outcome.as_str(),
        d.reason,
        stack.certificate_status(&cert2).await
    );

    step(
        6,
        "A clone with the same serial but a certificate from another CA: refused",
    );
    let rogue = TestCa::new("fleetguard demo CA");
    let cert3 = stack.auto_register(&rogue.issue(good.as_str()), &ca).await;
    let d = provisioner
        .handle_jitr(jitr_event(&cert3, &ca_id), fleetguard::domain::now())
        .await?;
    println!(
        "    decision {} / {}  certificate {}",
        d.outcome.as_str(),
        d.reason,
        stack.certificate_status(&cert3).await
    );

    step(7, "Audit trail (newest first)");
    let mut entries = stack.audit().for_serial(good.as_str(), 20).await?;
    entries.extend(stack.audit().for_serial("-", 20).await?);
    for e in entries {
        println!(
            "    {}  {:<10} {:<9} {:<26} principal={}",
            e.at,
            e.action,
            e.outcome.as_str(),
            e.reason.as_str(),
            e.principal
                .as_deref()
                .map(|p| &p[..12.min(p.len())])
                .unwrap_or("-")
        );
    }
    println!("\nDemo finished.");
    Ok(())
}
