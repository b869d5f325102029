//! Our own policies must pass our own linter and the A ≠ B isolation proof (policy-engine issue).
//! The fleet policy is read from infra/template.yaml itself, not from a copy.

use fleetguard::policy::{lint, prove_scoped_to_identity, ScopeCheck, Severity};
use fleetguard_tests::template_fleet_policy;
use proptest::prelude::*;

#[test]
fn fleet_device_policy_has_no_finding_at_medium_or_above() {
    let doc = template_fleet_policy("eu-west-1", "210987654321");
    let findings = lint(&[&doc]).expect("policy parses");
    let serious: Vec<_> = findings
        .iter()
        .filter(|f| f.severity >= Severity::Medium)
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn fleet_device_policy_confines_a_to_its_own_serial(
        a in "[A-Za-z0-9_-]{1,64}",
        b in "[A-Za-z0-9_-]{1,64}",
    ) {
        prop_assume!(a != b);
        let doc = template_fleet_policy("eu-west-1", "210987654321");
        let check = ScopeCheck::new("eu-west-1", "210987654321", "P/{id}/");
        prop_assert_eq!(prove_scoped_to_identity(&[&doc], &check, &a, &b), Ok(()));
    }
}
