//! Every fixture parses into the event type its function expects, and (where it can run offline)
//! gets the expected decision.

use fleetguard::delete_record::DeleteRecordEvent;
use fleetguard::provisioning::{HookRequest, JitrEvent};
use fleetguard_tests::workspace_root;

fn fixture(name: &str) -> serde_json::Value {
    let path = workspace_root().join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

#[test]
fn jitr_fixture_parses() {
    let e: JitrEvent = serde_json::from_value(fixture("jitr-registered.json")).unwrap();
    assert_eq!(e.certificate_status.as_deref(), Some("PENDING_ACTIVATION"));
    assert!(fleetguard::domain::CertificateId::parse(&e.certificate_id).is_ok());
}

#[test]
fn hook_fixture_parses() {
    let e: HookRequest = serde_json::from_value(fixture("pre-provisioning-hook.json")).unwrap();
    assert_eq!(
        e.parameters.get("SerialNumber").map(String::as_str),
        Some("SN0001")
    );
}

#[test]
fn delete_record_fixture_parses() {
    let e: DeleteRecordEvent = serde_json::from_value(fixture("delete-record.json")).unwrap();
    assert_eq!(
        (e.serial.as_str(), e.record_id.as_str()),
        ("SN0001", "rec-42")
    );
    assert!(fleetguard::domain::Principal::parse(&e.principal).is_ok());
}
