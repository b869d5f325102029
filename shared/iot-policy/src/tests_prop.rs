//! Property tests: the fleet device policy confines every device to its own identity.
//!
//! `FLEET_POLICY` mirrors `FleetDevicePolicy` in infra/template.yaml (tests/policy_gate.rs checks
//! the template itself).

use super::*;
use proptest::prelude::*;

pub(crate) const FLEET_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"ConnectAsOwnThing","Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
 {"Sid":"PublishOwnTopics","Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/P/${iot:Connection.Thing.ThingName}/*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
 {"Sid":"SubscribeOwnTopics","Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/P/${iot:Connection.Thing.ThingName}/*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
 {"Sid":"ReceiveOwnTopics","Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:us-east-1:123456789012:topic/P/${iot:Connection.Thing.ThingName}/*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
 {"Sid":"NeverPublishDeleteRecordReplies","Effect":"Deny","Action":"iot:Publish","Resource":["arn:aws:iot:us-east-1:123456789012:topic/P/*/deleterecords/*/accepted","arn:aws:iot:us-east-1:123456789012:topic/P/*/deleterecords/*/rejected"]}
]}"#;

const R: &str = "us-east-1";
const ACCT: &str = "123456789012";

fn serial() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

fn topic_suffix() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_/+#-]{1,40}"
}

fn allowed(ctx: &ConnectionContext, action: &str, target: &str) -> bool {
    let req = Request::for_target(action, target, ctx).expect("request");
    evaluate(&[FLEET_POLICY], &req, ctx)
        .expect("evaluate")
        .is_allowed()
}

#[test]
fn fleet_policy_passes_the_scope_check_for_a_sample_pair() {
    let check = ScopeCheck::new(R, ACCT, "P/{id}/");
    assert_eq!(
        prove_scoped_to_identity(&[FLEET_POLICY], &check, "SN1", "SN12"),
        Ok(())
    );
    assert_eq!(
        prove_scoped_to_identity(&[FLEET_POLICY], &check, "SN12", "SN1"),
        Ok(())
    );
}

#[test]
fn scope_check_catches_leaky_policies() {
    let check = ScopeCheck::new(R, ACCT, "P/{id}/");
    let leaky = [
        // ClientId-bound connect: any client id connects.
        FLEET_POLICY.replace(
            "client/${iot:Connection.Thing.ThingName}",
            "client/${iot:ClientId}",
        ),
        // Prefix without separator: SN1 reaches SN12's topics.
        FLEET_POLICY.replace(
            "topic/P/${iot:Connection.Thing.ThingName}/*",
            "topic/P/${iot:Connection.Thing.ThingName}*",
        ),
        // Fleet-wide subscribe.
        FLEET_POLICY.replace(
            "topicfilter/P/${iot:Connection.Thing.ThingName}/*",
            "topicfilter/P/*",
        ),
        // No attachment check and ClientId everywhere.
        FLEET_POLICY.replace("${iot:Connection.Thing.ThingName}", "${iot:ClientId}"),
        // MQTT wildcards are literal in policies: this Deny stops nothing.
        FLEET_POLICY.replace("deleterecords/*/accepted", "deleterecords/+/accepted"),
        // The reply Deny scoped to other devices only.
        FLEET_POLICY.replace("topic/P/*/deleterecords/*/rejected", "topic/Q/*/rejected"),
    ];
    for p in &leaky {
        let r = prove_scoped_to_identity(&[p], &check, "SN1", "SN12");
        assert!(r.is_err(), "not caught:\n{p}");
    }
    // The authorizer-style policy rendered for one device passes without attachment.
    let rendered = r#"{"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/SN1"},
      {"Effect":"Deny","Action":"iot:Publish","Resource":["arn:aws:iot:us-east-1:123456789012:topic/P/*/deleterecords/*/accepted","arn:aws:iot:us-east-1:123456789012:topic/P/*/deleterecords/*/rejected"]},
      {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/P/SN1/*"},
      {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/P/SN1/*"}]}"#;
    let authz = ScopeCheck::new(R, ACCT, "P/{id}/")
        .require_attachment(false)
        .with_context(|id| {
            ConnectionContext {
                client_id: Some(id.to_owned()),
                principal_id: Some(format!("principal-{id}")),
                ..ConnectionContext::default()
            }
            .in_account(R, ACCT)
        });
    assert_eq!(
        prove_scoped_to_identity(&[rendered], &authz, "SN1", "SN2"),
        Ok(())
    );
    assert!(prove_scoped_to_identity(&[rendered], &authz, "SN2", "SN1").is_err());
    assert!(prove_scoped_to_identity(&[FLEET_POLICY], &check, "SN1", "SN1").is_err());
}

#[test]
fn replies_are_receive_only_for_their_device() {
    let ctx = ConnectionContext::device("SN1", true).in_account(R, ACCT);
    for reply in ["accepted", "rejected"] {
        // Explicitly denied for its own serial and, by the same statement, for every other.
        for serial in ["SN1", "SN2"] {
            let t = format!("P/{serial}/deleterecords/r1/{reply}");
            let req = Request::for_target("iot:Publish", &t, &ctx).expect("request");
            let d = evaluate(&[FLEET_POLICY], &req, &ctx).expect("evaluate");
            assert_eq!(d.verdict, Verdict::ExplicitDeny, "{t}");
        }
        let own = format!("P/SN1/deleterecords/r1/{reply}");
        assert!(allowed(&ctx, "iot:Receive", &own));
        assert!(allowed(&ctx, "iot:Subscribe", &own));
        assert!(allowed(
            &ctx,
            "iot:Subscribe",
            &format!("P/SN1/deleterecords/+/{reply}")
        ));
    }
    assert!(allowed(&ctx, "iot:Publish", "P/SN1/deleterecords/r1"));
    // Only the exact reply topics are closed: a record id that merely ends in "accepted" is not.
    assert!(allowed(&ctx, "iot:Publish", "P/SN1/deleterecords/accepted"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fleet_policy_scoped_for_random_serials(a in serial(), b in serial()) {
        prop_assume!(a != b);
        let check = ScopeCheck::new(R, ACCT, "P/{id}/");
        let r = prove_scoped_to_identity(&[FLEET_POLICY], &check, &a, &b);
        prop_assert!(r.is_ok(), "{}", r.err().unwrap_or_default());
    }

    #[test]
    fn device_a_gets_only_its_own_namespace(a in serial(), b in serial(), s in topic_suffix()) {
        prop_assume!(a != b);
        let ctx = ConnectionContext::device(&a, true).in_account(R, ACCT);
        prop_assert!(allowed(&ctx, "iot:Connect", &a));
        prop_assert!(!allowed(&ctx, "iot:Connect", &b));
        for action in ["iot:Publish", "iot:Subscribe", "iot:Receive"] {
            let t = format!("P/{}/{}", a, s);
            prop_assert!(allowed(&ctx, action, &t));
            let t = format!("P/{}/{}", b, s);
            prop_assert!(!allowed(&ctx, action, &t));
        }
        let t = format!("P/{}/{}", a, s);
            prop_assert!(!allowed(&ctx, "iot:RetainPublish", &t));
        prop_assert!(!allowed(&ctx, "iot:UpdateThingShadow", &a));
    }

    #[test]
    fn nothing_is_allowed_when_the_thing_is_not_attached(a in serial(), s in topic_suffix()) {
        let ctx = ConnectionContext::device(&a, false).in_account(R, ACCT);
        prop_assert!(!allowed(&ctx, "iot:Connect", &a));
        for action in ["iot:Publish", "iot:Subscribe", "iot:Receive"] {
            let t = format!("P/{}/{}", a, s);
            prop_assert!(!allowed(&ctx, action, &t));
        }
    }

    #[test]
    fn connecting_with_another_client_id_is_denied(a in serial(), c in "[ -~]{1,32}") {
        prop_assume!(a != c);
        let mut ctx = ConnectionContext::device(&a, true).in_account(R, ACCT);
        ctx.client_id = Some(c.clone());
        prop_assert!(!allowed(&ctx, "iot:Connect", &c));
    }

    /// Fuzz-ish: arbitrary text never panics the parser, linter or evaluator.
    #[test]
    fn arbitrary_policy_text_never_panics(text in ".{0,300}") {
        let ctx = ConnectionContext::device("a", true).in_account(R, ACCT);
        let req = Request::for_target("iot:Publish", "x", &ctx).expect("request");
        let _ = evaluate(&[&text], &req, &ctx);
        let _ = lint(&[&text]);
    }

    #[test]
    fn arbitrary_resources_and_conditions_never_panic(
        res in "[a-z*?$(){}:/#+A-Z.\\[\\]]{0,60}",
        op in "(ForAnyValue:|ForAllValues:)?(StringLike|StringEquals|IpAddress|Bool|Null|StringNotEquals)(IfExists)?",
        key in "(iot:ClientId|aws:SourceIp|iot:Certificate.Subject.CommonName(.List|.1)?|iot:Connection.Thing.Attributes\\[[a-z]{1,3}\\])",
        val in "[a-z0-9*?$(){}:./]{0,20}",
        client in "[ -~]{0,20}",
    ) {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:*",
                "Resource": format!("arn:aws:iot:us-east-1:123456789012:topic/{res}"),
                "Condition": {op: {key: val}}}]
        }).to_string();
        let mut ctx = ConnectionContext::device("a", true).in_account(R, ACCT).with_subject("CN", &client);
        ctx.client_id = Some(client.clone());
        ctx.source_ip = "10.0.0.1".parse().ok();
        ctx.thing_attributes.insert("ab".into(), client.clone());
        let req = Request::for_target("iot:Publish", &format!("t/{client}"), &ctx).expect("request");
        let _ = evaluate(&[&policy], &req, &ctx);
        let _ = lint(&[&policy]);
    }
}
