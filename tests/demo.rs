//! The local demo: the whole fleetguard story against the local emulator, printed step by step.
//! Run with `scripts/demo.sh` (it sets up the emulator first).

use fleetguard::domain::Serial;
use fleetguard::ports::{AuditLog, Registry};
use fleetguard_tests::{jitr_event, unique, Stack, TestCa};

fn now_ms() -> i64 {
    (fleetguard::domain::now().unix_timestamp_nanos() / 1_000_000) as i64
}

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

    let provisioner = stack.provisioner();

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

    step(7, "A second device is provisioned; each device has records");
    let (other, other_cert) = stack.provision_device(&ca, &ca_id).await;
    stack.seed_record(&good, "rec-1").await;
    let victim_record = stack.seed_record(&other, "rec-9").await;
    println!("    devices {good} and {other}; records {good}/rec-1 and {other}/rec-9");

    step(
        8,
        "The device deletes its own record: soft delete, reply on .../accepted",
    );
    let svc = stack.delete_service();
    let d = svc
        .handle(fleetguard_tests::delete_event(
            good.as_str(),
            "rec-1",
            &cert,
            now_ms(),
        ))
        .await?;
    println!(
        "    decision {} / {} version {:?} reply {:?}",
        d.outcome.as_str(),
        d.reason,
        d.version,
        d.reply_topic
    );

    step(
        9,
        "The device is hijacked: it tries another serial's record. Refused, security event published",
    );
    let d = svc
        .handle(fleetguard_tests::delete_event(
            other.as_str(),
            "rec-9",
            &cert,
            now_ms(),
        ))
        .await?;
    println!(
        "    decision {} / {}  security event: {}",
        d.outcome.as_str(),
        d.reason,
        d.security_event
    );
    let record = stack.record(&other, &victim_record).await.ok_or("record")?;
    println!(
        "    {other}/rec-9 is {}",
        fleetguard::delete_record::describe(&record)
    );
    for event in stack.published_on(&stack.security_topic) {
        println!("    {}: {event}", stack.security_topic);
    }
    let _ = other_cert;

    step(10, "The tripwire: the security event reaches the revoker, which quarantines the hijacked device");
    let revoker = stack.revoker();
    if let Some(event) = stack.published_on(&stack.security_topic).pop() {
        for r in revoker.handle(event, fleetguard::domain::now()).await? {
            println!(
                "    {} / {} serial {:?}",
                r.outcome.as_str(),
                r.reason,
                r.serial
            );
        }
    }
    println!(
        "    certificate {}  disconnected: {:?}",
        stack.certificate_status(&cert).await,
        stack.emulator.disconnects()
    );

    step(
        11,
        "An operator revokes it for good and rolls back its deletes",
    );
    let cmd = serde_json::json!({"action": "revoke", "serial": good.as_str(), "rollback": true,
        "reason": "key extracted", "actor": "demo-operator"});
    for r in revoker.handle(cmd, fleetguard::domain::now()).await? {
        println!(
            "    {} / {}  restored {} record(s) deleted since {:?}",
            r.outcome.as_str(),
            r.reason,
            r.restored,
            r.rolled_back_since
        );
    }
    let rid = fleetguard::domain::RecordId::parse("rec-1")?;
    let record = stack.record(&good, &rid).await.ok_or("record")?;
    println!(
        "    {good}/rec-1 is {}; certificate {}",
        fleetguard::delete_record::describe(&record),
        stack.certificate_status(&cert).await
    );

    step(12, "Audit trail (newest first)");
    let mut entries = stack.audit().for_serial(good.as_str(), 50).await?;
    entries.extend(stack.audit().for_serial("-", 20).await?);
    entries.sort_by(|a, b| b.at.cmp(&a.at));
    for e in entries {
        println!(
            "    {}  {:<14} {:<9} {:<26} principal={}",
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
