//! Our own policies must pass our own linter and the A ≠ B isolation proof (policy-engine issue).
//! The fleet policy is read from infra/template.yaml itself, not from a copy.

use fleetguard_domain::authorization::authorizer::render::{device_policy, ArnScope};
use fleetguard_domain::model::Serial;
use fleetguard_tests::template_fleet_policy;
use iot_policy::{
    evaluate, lint, partition_for_region, prove_scoped_to_identity, ConnectionContext, Request,
    ScopeCheck, Severity, Verdict,
};
use proptest::prelude::*;

const ACCOUNT: &str = "210987654321";

/// The template's fleet policy as CloudFormation renders it in `region`: the support helper
/// substitutes `${AWS::Partition}` with `aws`, so put the region's partition back.
fn fleet_policy_in(region: &str) -> String {
    template_fleet_policy(region, ACCOUNT).replace(
        "arn:aws:",
        &format!("arn:{}:", partition_for_region(region)),
    )
}

fn verdict(docs: &[&str], ctx: &ConnectionContext, action: &str, target: &str) -> Verdict {
    let req = Request::for_target(action, target, ctx).expect("request");
    evaluate(docs, &req, ctx).expect("evaluate").verdict
}

#[test]
fn fleet_device_policy_has_no_finding_at_medium_or_above() {
    let doc = template_fleet_policy("eu-west-1", ACCOUNT);
    let findings = lint(&[&doc]).expect("policy parses");
    let serious: Vec<_> = findings
        .iter()
        .filter(|f| f.severity >= Severity::Medium)
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
}

#[test]
fn fleet_device_policy_never_lets_a_device_publish_delete_record_replies() {
    for region in ["eu-west-1", "cn-north-1", "us-gov-west-1"] {
        let doc = fleet_policy_in(region);
        let docs = [doc.as_str()];
        let me = ConnectionContext::device("SN1", true).in_account(region, ACCOUNT);
        assert_eq!(
            verdict(&docs, &me, "iot:Publish", "P/SN1/deleterecords/r1"),
            Verdict::Allow,
            "{region}"
        );
        // Below a reply too (`.../accepted/x`): a subscriber to `.../accepted/#` takes it for one.
        for below in [
            "P/SN1/deleterecords/r1/accepted/x",
            "P/SN1/certificates/rotate/accepted/x",
        ] {
            assert_eq!(
                verdict(&docs, &me, "iot:Publish", below),
                Verdict::ExplicitDeny,
                "{region}: {below}"
            );
        }
        for reply in ["accepted", "rejected"] {
            let own = format!("P/SN1/deleterecords/r1/{reply}");
            assert_eq!(
                verdict(&docs, &me, "iot:Publish", &own),
                Verdict::ExplicitDeny,
                "{region}: {own}"
            );
            assert_eq!(
                verdict(&docs, &me, "iot:Receive", &own),
                Verdict::Allow,
                "{region}"
            );
            assert_eq!(
                verdict(&docs, &me, "iot:Subscribe", &own),
                Verdict::Allow,
                "{region}"
            );
            assert_eq!(
                verdict(
                    &docs,
                    &me,
                    "iot:Subscribe",
                    &format!("P/SN1/deleterecords/+/{reply}")
                ),
                Verdict::Allow,
                "{region}"
            );
            // Another device's replies: denied as well (explicitly, whatever the Allows say).
            assert_eq!(
                verdict(
                    &docs,
                    &me,
                    "iot:Publish",
                    &format!("P/SN2/deleterecords/r1/{reply}")
                ),
                Verdict::ExplicitDeny,
                "{region}"
            );
        }
    }
}

/// A password device's rendered policy grants what a certificate device gets from the deployed
/// fleet policy: the same verdict on every probe, replies included.
#[test]
fn rendered_device_policy_matches_the_fleet_policy() {
    let probes = [
        ("iot:Connect", "SN1"),
        ("iot:Connect", "SN2"),
        ("iot:Publish", "P/SN1/telemetry"),
        ("iot:Publish", "P/SN1/deleterecords/r1"),
        ("iot:Publish", "P/SN1/deleterecords/r1/accepted"),
        ("iot:Publish", "P/SN1/deleterecords/r1/rejected"),
        ("iot:Publish", "P/SN1/deleterecords/r1/accepted/x"),
        ("iot:Publish", "P/SN2/deleterecords/r1"),
        ("iot:Publish", "P/SN2/deleterecords/r1/accepted"),
        ("iot:RetainPublish", "P/SN1/deleterecords/r1"),
        ("iot:Receive", "P/SN1/deleterecords/r1/accepted"),
        ("iot:Receive", "P/SN2/deleterecords/r1/accepted"),
        ("iot:Subscribe", "P/SN1/deleterecords/+/accepted"),
        ("iot:Subscribe", "P/SN1/#"),
        ("iot:Subscribe", "P/+/deleterecords/+/accepted"),
        ("iot:GetThingShadow", "SN1"),
    ];
    for region in ["eu-west-1", "cn-north-1", "us-gov-west-1"] {
        let fleet = fleet_policy_in(region);
        let scope = ArnScope::new(region, ACCOUNT).expect("scope");
        let rendered =
            device_policy(&scope, &Serial::parse("SN1").expect("serial")).expect("rendered");
        let rendered: Vec<&str> = rendered.iter().map(String::as_str).collect();
        let cert_device = ConnectionContext::device("SN1", true).in_account(region, ACCOUNT);
        let password_device = ConnectionContext {
            client_id: Some("SN1".to_owned()),
            principal_id: Some("dvSN1".to_owned()),
            ..ConnectionContext::default()
        }
        .in_account(region, ACCOUNT);
        for (action, target) in probes {
            assert_eq!(
                verdict(&[&fleet], &cert_device, action, target),
                verdict(&rendered, &password_device, action, target),
                "{region}: {action} {target}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Includes the default `read_only_suffixes`: A never publishes its own delete-record replies
    /// but may subscribe to and receive them.
    #[test]
    fn fleet_device_policy_confines_a_to_its_own_serial(
        a in "[A-Za-z0-9_-]{1,64}",
        b in "[A-Za-z0-9_-]{1,64}",
    ) {
        prop_assume!(a != b);
        let doc = template_fleet_policy("eu-west-1", ACCOUNT);
        let check = ScopeCheck::new("eu-west-1", ACCOUNT, "P/{id}/");
        prop_assert_eq!(prove_scoped_to_identity(&[&doc], &check, &a, &b), Ok(()));
    }
}
