//! Cases taken from the AWS IoT developer guide examples (page named on each group) plus the
//! evaluator's own semantic edge cases. Each case is its own test.

#![allow(clippy::useless_format)] // templates stay uniform: some cases interpolate, some do not

use super::*;

const R: &str = "us-east-1";
const A: &str = "123456789012";

fn dev(id: &str, attached: bool) -> ConnectionContext {
    ConnectionContext::device(id, attached).in_account(R, A)
}

fn client(id: &str) -> ConnectionContext {
    ConnectionContext {
        client_id: Some(id.to_owned()),
        ..ConnectionContext::default()
    }
    .in_account(R, A)
}

fn verdict(policy: &str, ctx: &ConnectionContext, action: &str, target: &str) -> Verdict {
    let req = Request::from_arn_or_target(action, target, ctx).expect("request");
    match evaluate(&[policy], &req, ctx) {
        Ok(d) => d.verdict,
        Err(e) => panic!("evaluation error: {e}"),
    }
}

use Verdict::{Allow, ExplicitDeny as XDeny, ImplicitDeny as Deny};

macro_rules! case {
    ($name:ident, $policy:expr, $ctx:expr, $action:expr, $target:expr, $want:expr) => {
        #[test]
        fn $name() {
            assert_eq!(verdict($policy, &$ctx, $action, $target), $want);
        }
    };
}

// ---- basic-policy-variables ------------------------------------------------------------------
const BASIC: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123451234510:client/${iot:ClientId}"]},
 {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123451234510:topic/my/topic/${iot:ClientId}"]}]}"#;
const BASIC_FILTER: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/my/${iot:ClientId}/topic"]}]}"#;
const BASIC_CLIENTID1: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/clientid1"]}]}"#;

fn basic_ctx(id: &str) -> ConnectionContext {
    client(id).in_account(R, "123451234510")
}
case!(
    basic_connect_with_own_client_id,
    BASIC,
    basic_ctx("100-234-3456"),
    "iot:Connect",
    "100-234-3456",
    Allow
);
case!(
    basic_publish_own_client_topic,
    BASIC,
    basic_ctx("100-234-3456"),
    "iot:Publish",
    "my/topic/100-234-3456",
    Allow
);
case!(
    basic_publish_other_client_topic_denied,
    BASIC,
    basic_ctx("100-234-3456"),
    "iot:Publish",
    "my/topic/999",
    Deny
);
// "A client can connect using + as the client ID. This would allow the user to subscribe to any
// topic that matches the topic filter my/+/topic."
case!(
    basic_plus_client_id_widens_topic_filter,
    BASIC_FILTER,
    client("+"),
    "iot:Subscribe",
    "my/+/topic",
    Allow
);
case!(
    basic_normal_client_id_cannot_subscribe_plus,
    BASIC_FILTER,
    client("c1"),
    "iot:Subscribe",
    "my/+/topic",
    Deny
);
case!(
    basic_normal_client_id_own_filter,
    BASIC_FILTER,
    client("c1"),
    "iot:Subscribe",
    "my/c1/topic",
    Allow
);
// A client id of `*` substitutes a wildcard: modelled as widening (conservative).
case!(
    basic_star_client_id_is_a_wildcard,
    BASIC_FILTER,
    client("*"),
    "iot:Subscribe",
    "my/anything/at/all/topic",
    Allow
);
case!(
    basic_connect_only_clientid1,
    BASIC_CLIENTID1,
    client("clientid1"),
    "iot:Connect",
    "clientid1",
    Allow
);
case!(
    basic_connect_other_than_clientid1_denied,
    BASIC_CLIENTID1,
    client("+"),
    "iot:Connect",
    "+",
    Deny
);

// ---- connect-policy ----------------------------------------------------------------------------
const CONNECT_CLIENT1: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1"]}]}"#;
const CONNECT_DENY_LIST: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Deny","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1","arn:aws:iot:us-east-1:123456789012:client/client2"]},
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}]}"#;
const CONNECT_REGISTERED_3: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/my/topic/filter"]}]}"#;
const PERSISTENT_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}]}"#;
const NO_PERSISTENT: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":"*"},
 {"Effect":"Deny","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAnyValue:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}]}"#;
const DEFAULT_FEATURES_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":[]}}}]}"#;

fn with_attrs(mut ctx: ConnectionContext, attrs: &[&str]) -> ConnectionContext {
    ctx.extra_keys.insert(
        "iot:ConnectAttributes".to_owned(),
        attrs.iter().map(|s| (*s).to_owned()).collect(),
    );
    ctx
}

case!(
    connect_client1_allowed,
    CONNECT_CLIENT1,
    client("client1"),
    "iot:Connect",
    "client1",
    Allow
);
case!(
    connect_client2_denied,
    CONNECT_CLIENT1,
    client("client2"),
    "iot:Connect",
    "client2",
    Deny
);
case!(
    connect_deny_list_beats_thing_name,
    CONNECT_DENY_LIST,
    dev("client1", true),
    "iot:Connect",
    "client1",
    XDeny
);
case!(
    connect_thing_name_allowed,
    CONNECT_DENY_LIST,
    dev("thing9", true),
    "iot:Connect",
    "thing9",
    Allow
);
case!(
    connect_thing_name_unattached_denied,
    CONNECT_DENY_LIST,
    dev("thing9", false),
    "iot:Connect",
    "thing9",
    Deny
);
case!(
    connect_registered_subscribe_filter,
    CONNECT_REGISTERED_3,
    dev("t1", true),
    "iot:Subscribe",
    "my/topic/filter",
    Allow
);
case!(
    connect_registered_other_filter_denied,
    CONNECT_REGISTERED_3,
    dev("t1", true),
    "iot:Subscribe",
    "my/topic",
    Deny
);
case!(
    connect_persistent_only_allows_persistent,
    PERSISTENT_ONLY,
    with_attrs(client("c"), &["PersistentConnect"]),
    "iot:Connect",
    "c",
    Allow
);
case!(
    connect_persistent_only_denies_lastwill,
    PERSISTENT_ONLY,
    with_attrs(client("c"), &["PersistentConnect", "LastWill"]),
    "iot:Connect",
    "c",
    Deny
);
case!(
    connect_persistent_only_allows_clean_connect,
    PERSISTENT_ONLY,
    with_attrs(client("c"), &[]),
    "iot:Connect",
    "c",
    Allow
);
case!(
    connect_no_persistent_denies_persistent,
    NO_PERSISTENT,
    with_attrs(client("c"), &["PersistentConnect"]),
    "iot:Connect",
    "c",
    XDeny
);
case!(
    connect_no_persistent_allows_lastwill,
    NO_PERSISTENT,
    with_attrs(client("c"), &["LastWill"]),
    "iot:Connect",
    "c",
    Allow
);
case!(
    connect_default_features_only_allows_none,
    DEFAULT_FEATURES_ONLY,
    with_attrs(client("c"), &[]),
    "iot:Connect",
    "c",
    Allow
);
case!(
    connect_default_features_only_denies_lastwill,
    DEFAULT_FEATURES_ONLY,
    with_attrs(client("c"), &["LastWill"]),
    "iot:Connect",
    "c",
    Deny
);

// ---- pub-sub-policy ----------------------------------------------------------------------------
const PUBSUB_REG_5: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*"]}]}"#;
const PUBSUB_UNREG_5: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1","arn:aws:iot:us-east-1:123456789012:client/client2","arn:aws:iot:us-east-1:123456789012:client/client3"]},
 {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"]}]}"#;
const PUBSUB_REG_6: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/${iot:Connection.Thing.ThingName}/room*"]},
 {"Effect":"Allow","Action":["iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/room*"]}]}"#;
const PUBSUB_4: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1"]},
 {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/some/+/topic"]}]}"#;
const PUBSUB_UNREG_9: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1","arn:aws:iot:us-east-1:123456789012:client/client2"]},
 {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"]},
 {"Effect":"Deny","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/bar"]}]}"#;
const PUBSUB_REG_9: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Thing.ThingName}/*"]},
 {"Effect":"Deny","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Thing.ThingName}/bar"]}]}"#;
const PUBSUB_RECEIVE_11: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/my/topic"]},
 {"Effect":"Allow","Action":["iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/my/topic"]}]}"#;
const PUBSUB_IOTMONITOR: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1"]},
 {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/iotmonitor/provisioning/987654321098"]},
 {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/iotmonitor/provisioning/987654321098"]}]}"#;

case!(
    pubsub_registered_publish_own_prefix,
    PUBSUB_REG_5,
    dev("thing1", true),
    "iot:Publish",
    "thing1/a/b",
    Allow
);
case!(
    pubsub_registered_publish_other_prefix_denied,
    PUBSUB_REG_5,
    dev("thing1", true),
    "iot:Publish",
    "thing2/a",
    Deny
);
case!(
    pubsub_registered_connect_as_thing,
    PUBSUB_REG_5,
    dev("thing1", true),
    "iot:Connect",
    "thing1",
    Allow
);
case!(
    pubsub_unregistered_publish_client_prefix,
    PUBSUB_UNREG_5,
    client("client1"),
    "iot:Publish",
    "client1/x",
    Allow
);
case!(
    pubsub_unregistered_connect_client4_denied,
    PUBSUB_UNREG_5,
    client("client4"),
    "iot:Connect",
    "client4",
    Deny
);
case!(
    pubsub_room_subscribe,
    PUBSUB_REG_6,
    dev("thing1", true),
    "iot:Subscribe",
    "thing1/room1",
    Allow
);
case!(
    pubsub_room_receive,
    PUBSUB_REG_6,
    dev("thing1", true),
    "iot:Receive",
    "thing1/room2",
    Allow
);
case!(
    pubsub_room_other_subscribe_denied,
    PUBSUB_REG_6,
    dev("thing1", true),
    "iot:Subscribe",
    "thing1/kitchen",
    Deny
);
// "MQTT wildcard characters + and # are treated as literal characters"
case!(
    pubsub_plus_is_literal_exact_filter,
    PUBSUB_4,
    client("client1"),
    "iot:Subscribe",
    "some/+/topic",
    Allow
);
case!(
    pubsub_plus_is_literal_not_a_wildcard,
    PUBSUB_4,
    client("client1"),
    "iot:Subscribe",
    "some/a/topic",
    Deny
);
case!(
    pubsub_publish_prefix_allowed,
    PUBSUB_UNREG_9,
    client("client1"),
    "iot:Publish",
    "client1/foo",
    Allow
);
case!(
    pubsub_publish_bar_explicitly_denied,
    PUBSUB_UNREG_9,
    client("client1"),
    "iot:Publish",
    "client1/bar",
    XDeny
);
// `${iot:Thing.ThingName}` (as printed in registered-devices example 9) is not an AWS IoT policy
// variable: it never resolves, so the Allow does not apply (and neither does the Deny).
case!(
    pubsub_unknown_variable_never_resolves,
    PUBSUB_REG_9,
    dev("thing1", true),
    "iot:Publish",
    "thing1/foo",
    Deny
);
case!(
    pubsub_receive_my_topic,
    PUBSUB_RECEIVE_11,
    dev("t", true),
    "iot:Receive",
    "my/topic",
    Allow
);
case!(
    pubsub_receive_other_denied,
    PUBSUB_RECEIVE_11,
    dev("t", true),
    "iot:Receive",
    "my/other",
    Deny
);
case!(
    pubsub_iotmonitor_publish,
    PUBSUB_IOTMONITOR,
    client("client1"),
    "iot:Publish",
    "iotmonitor/provisioning/987654321098",
    Allow
);
case!(
    pubsub_iotmonitor_receive,
    PUBSUB_IOTMONITOR,
    client("client1"),
    "iot:Receive",
    "iotmonitor/provisioning/987654321098",
    Allow
);
case!(
    pubsub_iotmonitor_subscribe,
    PUBSUB_IOTMONITOR,
    client("client1"),
    "iot:Subscribe",
    "iotmonitor/provisioning/987654321098",
    Allow
);
// `topic/a/#` does not allow publishing to a/b: # is literal.
case!(
    pubsub_hash_is_literal,
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/a/#"}]}"#,
    client("c"),
    "iot:Publish",
    "a/b",
    Deny
);

// ---- thing-policy-variables --------------------------------------------------------------------
const THING_VARS: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingTypeName}/${iot:Connection.Thing.Attributes[floor]}/*"},
 {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]}"#;

fn typed(attached: bool) -> ConnectionContext {
    let mut c = dev("lamp1", attached);
    c.thing_type_name = Some("Lamp".to_owned());
    c.thing_attributes
        .insert("floor".to_owned(), "3".to_owned());
    c
}
case!(
    thing_type_and_attribute_substituted,
    THING_VARS,
    typed(true),
    "iot:Publish",
    "Lamp/3/status",
    Allow
);
case!(
    thing_attribute_other_value_denied,
    THING_VARS,
    typed(true),
    "iot:Publish",
    "Lamp/4/status",
    Deny
);
case!(
    thing_vars_unresolved_when_not_attached,
    THING_VARS,
    typed(false),
    "iot:Publish",
    "Lamp/3/status",
    Deny
);
case!(
    thing_is_attached_condition_true,
    THING_VARS,
    typed(true),
    "iot:Connect",
    "lamp1",
    Allow
);
case!(
    thing_is_attached_condition_false,
    THING_VARS,
    typed(false),
    "iot:Connect",
    "lamp1",
    Deny
);

#[test]
fn thing_missing_attribute_does_not_resolve() {
    let mut c = typed(true);
    c.thing_attributes.clear();
    let req = Request::for_target("iot:Publish", "Lamp/3/status", &c).expect("req");
    let d = evaluate(&[THING_VARS], &req, &c).expect("eval");
    assert_eq!(d.verdict, Deny);
    assert_eq!(d.unresolved.len(), 1);
    assert!(d.unresolved[0].reason.contains("floor"));
}

// ---- cert-policy-variables ---------------------------------------------------------------------
const CERT_REG_2: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:Connection.Thing.ThingName}"],
  "Condition":{"ForAllValues:StringEquals":{"iot:Certificate.Subject.Organization.List":["Example Corp","AnyCompany"]}}}]}"#;
const CERT_UNREG_2: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1","arn:aws:iot:us-east-1:123456789012:client/client2","arn:aws:iot:us-east-1:123456789012:client/client3"]},
 {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:ClientId}"],
  "Condition":{"ForAllValues:StringEquals":{"iot:Certificate.Subject.Organization.List":["Example Corp","AnyCompany"]}}}]}"#;
const CERT_CN_TOPIC: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.CommonName}/*"}]}"#;
const CERT_OU_1: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/ou/${iot:Certificate.Subject.OrganizationalUnit.1}"}]}"#;

fn org(orgs: &[&str]) -> ConnectionContext {
    orgs.iter().fold(dev("thing1", true), |c, o| {
        c.with_subject("Organization", o)
    })
}
fn cn(value: &str) -> ConnectionContext {
    client("c").with_subject("CommonName", value)
}

case!(
    cert_org_listed_allows,
    CERT_REG_2,
    org(&["Example Corp"]),
    "iot:Publish",
    "my/topic/thing1",
    Allow
);
case!(
    cert_org_both_listed_allows,
    CERT_REG_2,
    org(&["Example Corp", "AnyCompany"]),
    "iot:Publish",
    "my/topic/thing1",
    Allow
);
case!(
    cert_org_unlisted_value_denies,
    CERT_REG_2,
    org(&["Example Corp", "Evil Inc"]),
    "iot:Publish",
    "my/topic/thing1",
    Deny
);
case!(
    cert_unregistered_client_topic,
    CERT_UNREG_2,
    client("client1").with_subject("O", "AnyCompany"),
    "iot:Publish",
    "my/topic/client1",
    Allow
);
case!(
    cert_cn_substituted,
    CERT_CN_TOPIC,
    cn("dev1"),
    "iot:Publish",
    "dev1/x",
    Allow
);
// "If wildcard characters are present in certificate attributes, the policy variable is not
// replaced ... leaving the ${policy-variable} text in the policy document."
case!(
    cert_cn_with_star_not_substituted,
    CERT_CN_TOPIC,
    cn("*"),
    "iot:Publish",
    "anything/x",
    Deny
);
case!(
    cert_cn_with_star_matches_only_literal_text,
    CERT_CN_TOPIC,
    cn("*"),
    "iot:Publish",
    "${iot:Certificate.Subject.CommonName}/x",
    Allow
);
case!(
    cert_cn_with_hash_not_substituted,
    CERT_CN_TOPIC,
    cn("a#"),
    "iot:Publish",
    "a#/x",
    Deny
);
case!(
    cert_cn_over_1024_not_substituted,
    CERT_CN_TOPIC,
    cn(&"a".repeat(1025)),
    "iot:Publish",
    &format!("{}/x", "a".repeat(1025)),
    Deny
);
case!(
    cert_cn_of_1024_substituted,
    CERT_CN_TOPIC,
    cn(&"a".repeat(1024)),
    "iot:Publish",
    &format!("{}/x", "a".repeat(1024)),
    Allow
);
// `Country.1` "is replaced by the second country name" → .1 selects the second value.
case!(
    cert_ou_index_1_is_second_value,
    CERT_OU_1,
    client("c")
        .with_subject("OU", "first")
        .with_subject("OU", "second"),
    "iot:Publish",
    "ou/second",
    Allow
);
case!(
    cert_ou_index_1_not_first_value,
    CERT_OU_1,
    client("c")
        .with_subject("OU", "first")
        .with_subject("OU", "second"),
    "iot:Publish",
    "ou/first",
    Deny
);
case!(
    cert_ou_index_missing_does_not_resolve,
    CERT_OU_1,
    client("c").with_subject("OU", "only"),
    "iot:Publish",
    "ou/only",
    Deny
);

// ---- evaluator semantics ----------------------------------------------------------------------
const P: &str = "arn:aws:iot:us-east-1:123456789012";

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

#[test]
fn deny_wins_across_documents() {
    let allow = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:*","Resource":"*"}}"#
    ));
    let deny = doc(&format!(
        r#"{{"Sid":"NoBar","Effect":"Deny","Action":"iot:Publish","Resource":"{P}:topic/bar"}}"#
    ));
    let ctx = client("c");
    let req = Request::for_target("iot:Publish", "bar", &ctx).expect("req");
    let d = evaluate(&[&allow, &deny], &req, &ctx).expect("eval");
    assert_eq!(d.verdict, XDeny);
    assert_eq!(d.denied_by.len(), 1);
    assert_eq!(d.denied_by[0].document, 1);
    assert_eq!(d.denied_by[0].sid.as_deref(), Some("NoBar"));
    assert_eq!(d.allowed_by.len(), 1);
    assert!(d
        .to_string()
        .contains("denied by document 1 statement 0 (NoBar)"));
}

#[test]
fn action_names_case_insensitive_with_wildcards() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"IOT:pub*","Resource":"{P}:topic/t"}}"#
    ));
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "t"), Allow);
    assert_eq!(verdict(&p, &client("c"), "iot:Receive", "t"), Deny);
    let star = doc(&format!(
        r#"{{"Effect":"Allow","Action":"*","Resource":"{P}:topic/t"}}"#
    ));
    assert_eq!(verdict(&star, &client("c"), "iot:Receive", "t"), Allow);
}

#[test]
fn not_resource_allow_grants_everything_else() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","NotResource":"{P}:topic/secret"}}"#
    ));
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "anything"), Allow);
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "secret"), Deny);
    let na = doc(&format!(
        r#"{{"Effect":"Allow","NotAction":"iot:Connect","Resource":"*"}}"#
    ));
    assert_eq!(verdict(&na, &client("c"), "iot:Publish", "x"), Allow);
    assert_eq!(verdict(&na, &client("c"), "iot:Connect", "c"), Deny);
}

#[test]
fn statement_with_wrong_resource_type_grants_nothing() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{P}:topic/a/*"}}"#
    ));
    assert_eq!(verdict(&p, &client("c"), "iot:Subscribe", "a/b"), Deny);
}

#[test]
fn request_with_wrong_resource_type_is_an_error() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"*","Resource":"*"}}"#
    ));
    let req = Request::new("iot:Subscribe", format!("{P}:topic/a"));
    assert!(matches!(
        evaluate(&[&p], &req, &client("c")),
        Err(PolicyError::InvalidRequest(_))
    ));
    let req = Request::new("iot:Publish", "topic/a");
    assert!(matches!(
        evaluate(&[&p], &req, &client("c")),
        Err(PolicyError::InvalidRequest(_))
    ));
}

#[test]
fn escapes_are_literal() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{P}:topic/a/$(*)/b$(?)/c$($)"}}"#
    ));
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "a/*/b?/c$"), Allow);
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "a/x/b?/c$"), Deny);
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "a/*/bx/c$"), Deny);
}

#[test]
fn question_mark_matches_one_character() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{P}:topic/dev?"}}"#
    ));
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "dev1"), Allow);
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "dev"), Deny);
    assert_eq!(verdict(&p, &client("c"), "iot:Publish", "dev12"), Deny);
}

#[test]
fn ip_conditions_v4_and_v6() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{{"IpAddress":{{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32"]}}}}}},
           {{"Effect":"Deny","Action":"iot:Connect","Resource":"*","Condition":{{"NotIpAddress":{{"aws:SourceIp":["203.0.113.0/25","2001:db8::/32"]}}}}}}"#
    ));
    let at = |ip: &str| {
        let mut c = client("c");
        c.source_ip = Some(ip.parse().expect("ip"));
        verdict(&p, &c, "iot:Connect", "c")
    };
    assert_eq!(at("203.0.113.5"), Allow);
    assert_eq!(at("203.0.113.200"), XDeny);
    assert_eq!(at("2001:db8::7"), Allow);
    assert_eq!(at("198.51.100.1"), XDeny);
    // No source IP: IpAddress false (absent key), NotIpAddress true (negated, absent key).
    assert_eq!(verdict(&p, &client("c"), "iot:Connect", "c"), XDeny);
}

#[test]
fn null_and_if_exists() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{{"Null":{{"iot:Connection.Thing.ThingTypeName":"false"}},"StringEqualsIfExists":{{"iot:Connection.Thing.Attributes[env]":"prod"}}}}}}"#
    ));
    let mut c = dev("t1", true);
    assert_eq!(
        verdict(&p, &c, "iot:Connect", "t1"),
        Deny,
        "no type: Null false fails"
    );
    c.thing_type_name = Some("Lamp".into());
    assert_eq!(
        verdict(&p, &c, "iot:Connect", "t1"),
        Allow,
        "attribute absent: IfExists true"
    );
    c.thing_attributes.insert("env".into(), "dev".into());
    assert_eq!(verdict(&p, &c, "iot:Connect", "t1"), Deny);
    c.thing_attributes.insert("env".into(), "prod".into());
    assert_eq!(verdict(&p, &c, "iot:Connect", "t1"), Allow);
}

#[test]
fn string_operators() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{{"StringEqualsIgnoreCase":{{"iot:ClientId":"ABC"}},"StringNotLike":{{"iot:ClientId":"*x*"}},"StringLike":{{"iot:ClientId":"a?c"}}}}}}"#
    ));
    assert_eq!(verdict(&p, &client("abc"), "iot:Connect", "abc"), Allow);
    assert_eq!(verdict(&p, &client("aBc"), "iot:Connect", "aBc"), Allow);
    let q = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{{"StringNotEquals":{{"iot:ClientId":["a","b"]}},"StringNotEqualsIgnoreCase":{{"iot:ClientId":"C"}}}}}}"#
    ));
    assert_eq!(verdict(&q, &client("a"), "iot:Connect", "a"), Deny);
    assert_eq!(verdict(&q, &client("c"), "iot:Connect", "c"), Deny);
    assert_eq!(verdict(&q, &client("d"), "iot:Connect", "d"), Allow);
}

#[test]
fn variables_in_condition_values() {
    let p = doc(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"StringEquals":{"iot:ClientId":"${iot:Connection.Thing.ThingName}"}}}"#,
    );
    let mut c = dev("t1", true);
    assert_eq!(verdict(&p, &c, "iot:Connect", "t1"), Allow);
    c.client_id = Some("other".into());
    assert_eq!(verdict(&p, &c, "iot:Connect", "other"), Deny);
}

#[test]
fn for_any_value_with_negated_operator() {
    let p = doc(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"ForAnyValue:StringNotEquals":{"iot:Certificate.Subject.OrganizationalUnit.List":["a","b"]}}}"#,
    );
    let c = client("c").with_subject("OU", "a").with_subject("OU", "z");
    assert_eq!(verdict(&p, &c, "iot:Connect", "c"), Allow);
    let c = client("c").with_subject("OU", "a").with_subject("OU", "b");
    assert_eq!(verdict(&p, &c, "iot:Connect", "c"), Deny);
    assert_eq!(
        verdict(&p, &client("c"), "iot:Connect", "c"),
        Deny,
        "absent key: ForAnyValue false"
    );
}

#[test]
fn missing_version_substitutes_nothing() {
    let p = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Action":"iot:Connect","Resource":"{P}:client/${{iot:ClientId}}"}}]}}"#
    );
    assert_eq!(verdict(&p, &client("c1"), "iot:Connect", "c1"), Deny);
    assert_eq!(
        verdict(&p, &client("x"), "iot:Connect", "${iot:ClientId}"),
        Allow
    );
}

#[test]
fn single_statement_object_is_accepted() {
    let p = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"iot:Connect","Resource":"{P}:client/c"}}}}"#
    );
    assert_eq!(verdict(&p, &client("c"), "iot:Connect", "c"), Allow);
}

fn parse_err(text: &str) -> PolicyError {
    match PolicySet::parse(&[text]) {
        Err(e) => e,
        Ok(_) => panic!("expected an error for {text}"),
    }
}

#[test]
fn malformed_policies_are_typed_errors() {
    let st = |s: &str| doc(s);
    assert!(matches!(parse_err("{"), PolicyError::Json { .. }));
    assert!(matches!(parse_err("[]"), PolicyError::Invalid { .. }));
    assert!(matches!(
        parse_err(r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#),
        PolicyError::UnknownKey { .. }
    ));
    assert!(matches!(
        parse_err(
            r#"{"Version":"2024-01-01","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        ),
        PolicyError::UnsupportedVersion { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}"#
        )),
        PolicyError::UnknownKey { .. }
    ));
    assert!(matches!(
        parse_err(&st(r#"{"Effect":"allow","Action":"*","Resource":"*"}"#)),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(r#"{"Effect":"Allow","Resource":"*"}"#)),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(r#"{"Effect":"Allow","Action":"*"}"#)),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}"#
        )),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#)),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"Publish","Resource":"*"}"#
        )),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","Resource":"topic/x"}"#
        )),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(r#"{"Effect":"Allow","Action":"*","Resource":1}"#)),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*"}"#
        )),
        PolicyError::Json { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"iot:ClientId":"a"}}}"#
        )),
        PolicyError::UnknownOperator { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericEquals":{"k":"1"}}}"#
        )),
        PolicyError::UnknownOperator { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAnyValue:Null":{"k":"true"}}}"#
        )),
        PolicyError::UnknownOperator { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}"#
        )),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"k":"maybe"}}}"#
        )),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(
            r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":null}}}"#
        )),
        PolicyError::Invalid { .. }
    ));
    assert!(matches!(
        parse_err(&st(&format!(
            r#"{{"Effect":"Allow","Action":"*","Resource":"{P}:topic/${{aws:username}}"}}"#
        ))),
        PolicyError::UnsupportedVariable { .. }
    ));
    assert!(matches!(
        parse_err(&st(&format!(
            r#"{{"Effect":"Allow","Action":"*","Resource":"{P}:topic/${{iot:ClientId"}}"#
        ))),
        PolicyError::MalformedVariable { .. }
    ));
}

#[test]
fn size_limit_counts_non_whitespace() {
    let filler = |n: usize| "x".repeat(n);
    let base = |pad: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{pad}","Effect":"Allow","Action":"*","Resource":"*"}}]}}"#
        )
    };
    let overhead = policy_size(&base(""));
    let exact = base(&filler(MAX_POLICY_CHARS - overhead));
    assert_eq!(policy_size(&exact), MAX_POLICY_CHARS);
    assert!(PolicySet::parse(&[&exact]).is_ok());
    let spaced = exact.replace(',', " ,\n   ");
    assert!(
        PolicySet::parse(&[&spaced]).is_ok(),
        "whitespace does not count"
    );
    let over = base(&filler(MAX_POLICY_CHARS - overhead + 1));
    assert!(matches!(
        PolicySet::parse(&[&over]),
        Err(PolicyError::TooLarge { chars: 2049, .. })
    ));
}

#[test]
fn bool_values_may_be_json_booleans() {
    let p = doc(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":true}}}"#,
    );
    assert_eq!(verdict(&p, &dev("t", true), "iot:Connect", "t"), Allow);
    assert_eq!(verdict(&p, &dev("t", false), "iot:Connect", "t"), Deny);
}

#[test]
fn unknown_cert_field_in_context_is_an_error() {
    let p = doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    let c = client("c").with_subject("Colour", "red");
    let req = Request::for_target("iot:Connect", "c", &c).expect("req");
    assert!(matches!(
        evaluate(&[&p], &req, &c),
        Err(PolicyError::InvalidRequest(_))
    ));
}

#[test]
fn arn_helpers_follow_the_action() {
    let c = client("c");
    assert_eq!(
        Request::for_target("iot:Connect", "c", &c)
            .expect("r")
            .resource,
        format!("{P}:client/c")
    );
    assert_eq!(
        Request::for_target("iot:Receive", "a/b", &c)
            .expect("r")
            .resource,
        format!("{P}:topic/a/b")
    );
    assert_eq!(
        Request::for_target("iot:RetainPublish", "a/b", &c)
            .expect("r")
            .resource,
        format!("{P}:topic/a/b")
    );
    assert_eq!(
        Request::for_target("iot:Subscribe", "a/#", &c)
            .expect("r")
            .resource,
        format!("{P}:topicfilter/a/#")
    );
    assert_eq!(
        Request::for_target("iot:UpdateThingShadow", "t", &c)
            .expect("r")
            .resource,
        format!("{P}:thing/t")
    );
    assert!(Request::for_target("iot:Frobnicate", "t", &c).is_err());
}

#[test]
fn shadow_actions_use_thing_arns() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":["iot:GetThingShadow","iot:UpdateThingShadow"],"Resource":"{P}:thing/${{iot:Connection.Thing.ThingName}}","Condition":{{"Bool":{{"iot:Connection.Thing.IsAttached":"true"}}}}}}"#
    ));
    assert_eq!(
        verdict(&p, &dev("t1", true), "iot:GetThingShadow", "t1"),
        Allow
    );
    assert_eq!(
        verdict(&p, &dev("t1", true), "iot:DeleteThingShadow", "t1"),
        Deny
    );
    assert_eq!(
        verdict(&p, &dev("t1", true), "iot:UpdateThingShadow", "t2"),
        Deny
    );
}

// ---- cert-policy-variables: CertificateId (certificate-policy-examples) ------------------------
// "The following policy allows a device to publish on a topic whose name is equal to the
// certificateId of the certificate with which the device authenticated itself."
const CERT_ID_TOPIC: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:CertificateId}"]},
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}]}"#;
const CERT_ID: &str = "4f8e3b2a1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";
const OTHER_CERT_ID: &str = "0f8e3b2a1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";

fn x509(thing: &str) -> ConnectionContext {
    dev(thing, true).with_certificate_id(CERT_ID)
}

case!(
    cert_id_topic_allows_own_certificate_id,
    CERT_ID_TOPIC,
    x509("thing1"),
    "iot:Publish",
    CERT_ID,
    Allow
);
case!(
    cert_id_topic_denies_another_certificate_id,
    CERT_ID_TOPIC,
    x509("thing1"),
    "iot:Publish",
    OTHER_CERT_ID,
    Deny
);
case!(
    cert_id_is_not_a_prefix_match,
    CERT_ID_TOPIC,
    x509("thing1"),
    "iot:Publish",
    &format!("{CERT_ID}/x"),
    Deny
);

#[test]
fn cert_id_does_not_resolve_without_a_certificate() {
    // A custom-authorizer connection has no certificate: the statement does not apply (it is
    // not matched against a literal "${iot:CertificateId}" either).
    let ctx = client("SN1");
    for target in [CERT_ID, "${iot:CertificateId}"] {
        let req = Request::for_target("iot:Publish", target, &ctx).expect("request");
        let d = evaluate(&[CERT_ID_TOPIC], &req, &ctx).expect("evaluate");
        assert_eq!(d.verdict, Deny, "{target}");
        assert_eq!(d.unresolved.len(), 1, "{target}");
        assert!(
            d.unresolved[0].reason.contains("no certificate"),
            "{}",
            d.unresolved[0].reason
        );
    }
}

#[test]
fn cert_id_in_the_context_must_be_64_lowercase_hex() {
    let req = Request::for_target("iot:Publish", CERT_ID, &client("c")).expect("request");
    let upper = CERT_ID.to_uppercase();
    let starred = format!("{}*", &CERT_ID[..63]);
    for bad in ["", "*", &CERT_ID[..63], upper.as_str(), starred.as_str()] {
        let ctx = client("c").with_certificate_id(bad);
        assert!(
            matches!(
                evaluate(&[CERT_ID_TOPIC], &req, &ctx),
                Err(PolicyError::InvalidRequest(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn cert_id_as_a_condition_key() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{P}:topic/t","Condition":{{"StringEquals":{{"iot:CertificateId":"{CERT_ID}"}}}}}}"#
    ));
    assert_eq!(verdict(&p, &x509("a"), "iot:Publish", "t"), Allow);
    let other = dev("a", true).with_certificate_id(OTHER_CERT_ID);
    assert_eq!(verdict(&p, &other, "iot:Publish", "t"), Deny);
    assert_eq!(verdict(&p, &client("a"), "iot:Publish", "t"), Deny);
    // Null: the key is absent exactly for connections without a certificate.
    let null = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{P}:topic/t","Condition":{{"Null":{{"iot:CertificateId":"true"}}}}}}"#
    ));
    assert_eq!(verdict(&null, &client("a"), "iot:Publish", "t"), Allow);
    assert_eq!(verdict(&null, &x509("a"), "iot:Publish", "t"), Deny);
}

#[test]
fn cert_id_binds_connect_and_scopes_topics_for_the_linter() {
    let p = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{P}:client/${{iot:CertificateId}}"}},
           {{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"{P}:topic/d/${{iot:CertificateId}}/*"}},
           {{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{P}:topicfilter/d/${{iot:CertificateId}}/*"}}"#
    ));
    let findings = lint(&[&p]).expect("lint");
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(verdict(&p, &x509("a"), "iot:Connect", CERT_ID), Allow);
    assert_eq!(
        verdict(&p, &x509("a"), "iot:Subscribe", &format!("d/{CERT_ID}/#")),
        Allow
    );
    assert_eq!(
        verdict(
            &p,
            &x509("a"),
            "iot:Subscribe",
            &format!("d/{OTHER_CERT_ID}/#")
        ),
        Deny
    );
}

// ---- basic-policy-variables: iot:DomainName -----------------------------------------------------
#[test]
fn domain_name_variable_and_condition_key() {
    let mut ctx = client("c");
    ctx.domain_name = Some("iot.example.com".to_owned());
    let cond = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{P}:client/c","Condition":{{"StringEquals":{{"iot:DomainName":"iot.example.com"}}}}}}"#
    ));
    assert_eq!(verdict(&cond, &ctx, "iot:Connect", "c"), Allow);
    assert_eq!(verdict(&cond, &client("c"), "iot:Connect", "c"), Deny);
    let var = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{P}:topic/${{iot:DomainName}}/x"}}"#
    ));
    assert_eq!(
        verdict(&var, &ctx, "iot:Publish", "iot.example.com/x"),
        Allow
    );
    assert_eq!(
        verdict(&var, &client("c"), "iot:Publish", "iot.example.com/x"),
        Deny
    );
}

// ---- every documented variable is known; anything else is flagged ------------------------------
const CERT_ATTRIBUTES: [&str; 18] = [
    "DistinguishedNameQualifier",
    "Country",
    "Organization",
    "OrganizationalUnit",
    "State",
    "CommonName",
    "SerialNumber",
    "Title",
    "Surname",
    "GivenName",
    "Initials",
    "Pseudonym",
    "GenerationQualifier",
    "AlternativeName.RFC822Name",
    "AlternativeName.DNSName",
    "AlternativeName.DirectoryName",
    "AlternativeName.UniformResourceIdentifier",
    "AlternativeName.IPAddress",
];

fn documented_variables() -> Vec<String> {
    let mut v: Vec<String> = [
        "iot:ClientId",
        "aws:SourceIp",
        "iot:DomainName",
        "iot:CertificateId",
        "iot:Certificate.SerialNumber",
        "iot:Certificate.AvailableKeys",
        "iot:Connection.Thing.ThingName",
        "iot:Connection.Thing.ThingTypeName",
        "iot:Connection.Thing.IsAttached",
        "iot:Connection.Thing.Attributes[floor]",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for which in ["Subject", "Issuer"] {
        for f in CERT_ATTRIBUTES {
            v.push(format!("iot:Certificate.{which}.{f}"));
            v.push(format!("iot:Certificate.{which}.{f}.1"));
            v.push(format!("iot:Certificate.{which}.{f}.List"));
        }
    }
    v
}

fn unknown_variable_findings(effect: &str, var: &str) -> Vec<Finding> {
    let p = doc(&format!(
        r#"{{"Effect":"{effect}","Action":"iot:Publish","Resource":"{P}:topic/x/${{{var}}}","Condition":{{"Bool":{{"iot:Connection.Thing.IsAttached":"true"}}}}}}"#
    ));
    lint(&[&p])
        .expect("lint")
        .into_iter()
        .filter(|f| f.code == FindingCode::UnknownPolicyVariable)
        .collect()
}

#[test]
fn every_documented_variable_is_known() {
    for var in documented_variables() {
        assert!(
            unknown_variable_findings("Allow", &var).is_empty(),
            "{var} flagged as unknown"
        );
    }
}

#[test]
fn undocumented_iot_variables_are_flagged_and_never_apply() {
    for var in [
        "iot:Certificate.Validity.NotBefore",
        "iot:Certificate.Validity.NotAfter",
        "iot:Certificate.SubjectAlternativeName.DNSName",
        "iot:Certificate.IssuerAlternativeName.DNSName",
        "iot:Certificate.Subject.Colour",
        "iot:Certificate.Id",
        "iot:Thing.ThingName",
        "iot:Domain",
    ] {
        let allow = unknown_variable_findings("Allow", var);
        assert_eq!(allow.len(), 1, "{var}");
        assert_eq!(allow[0].severity, Severity::Medium, "{var}");
        // A Deny that silently never applies is worse than an Allow that never applies.
        let deny = unknown_variable_findings("Deny", var);
        assert_eq!(deny.len(), 1, "{var}");
        assert_eq!(deny[0].severity, Severity::High, "{var}");
        // And it is not matched as literal text: the statement does not apply at all.
        let p = doc(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{P}:topic/x/${{{var}}}"}}"#
        ));
        let ctx = x509("t").with_subject("CN", "t");
        let req =
            Request::for_target("iot:Publish", &format!("x/${{{var}}}"), &ctx).expect("request");
        let d = evaluate(&[&p], &req, &ctx).expect("evaluate");
        assert_eq!(d.verdict, Deny, "{var}");
        assert_eq!(d.unresolved.len(), 1, "{var}");
    }
}

#[test]
fn available_keys_names_the_certificate_variables_with_values() {
    let ctx = x509("t")
        .with_subject("CN", "t")
        .with_issuer("O", "Example CA");
    let cond = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{P}:client/t","Condition":{{"ForAnyValue:StringEquals":{{"iot:Certificate.AvailableKeys":"iot:Certificate.Subject.CommonName"}}}}}}"#
    ));
    assert_eq!(verdict(&cond, &ctx, "iot:Connect", "t"), Allow);
    assert_eq!(verdict(&cond, &x509("t"), "iot:Connect", "t"), Deny);
    let var = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{P}:topic/k/${{iot:Certificate.AvailableKeys}}"}}"#
    ));
    for key in [
        "iot:Certificate.Subject.CommonName",
        "iot:Certificate.Issuer.Organization",
    ] {
        assert_eq!(
            verdict(&var, &ctx, "iot:Publish", &format!("k/{key}")),
            Allow
        );
    }
    assert_eq!(
        verdict(
            &var,
            &ctx,
            "iot:Publish",
            "k/iot:Certificate.Subject.Country"
        ),
        Deny
    );
}

// ---- partitions ------------------------------------------------------------------------------
#[test]
fn requests_from_bare_names_use_the_region_partition() {
    let policy = |partition: &str, region: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:{partition}:iot:{region}:{A}:topic/t"}}]}}"#
        )
    };
    for (partition, region) in [
        ("aws", "eu-west-1"),
        ("aws-cn", "cn-north-1"),
        ("aws-us-gov", "us-gov-west-1"),
    ] {
        let ctx = client("c").in_account(region, A);
        let req = Request::for_target("iot:Publish", "t", &ctx).expect("request");
        assert!(
            req.resource
                .starts_with(&format!("arn:{partition}:iot:{region}:")),
            "{}",
            req.resource
        );
        assert_eq!(
            verdict(&policy(partition, region), &ctx, "iot:Publish", "t"),
            Allow
        );
        // A policy written for another partition grants nothing here.
        assert_eq!(
            verdict(&policy("aws", region), &ctx, "iot:Publish", "t"),
            if partition == "aws" { Allow } else { Deny }
        );
    }
}

/// AWS IoT developer guide cases the engine follows: a document whose `Statement` is empty allows
/// nothing (an implicit deny, not an error), and `.1` of a multi-valued certificate field is its
/// second value (cert-policy-variables: `Country.1`).
#[test]
fn empty_statement_denies_and_country_1_is_the_second_country() {
    let empty = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let ctx = dev("SN1", true);
    assert_eq!(verdict(empty, &ctx, "iot:Connect", "client/SN1"), Deny);
    let policy = doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/c/${iot:Certificate.Subject.Country.1}"}"#,
    );
    let ctx = dev("SN1", true)
        .with_subject("Country", "US")
        .with_subject("Country", "DE");
    assert_eq!(verdict(&policy, &ctx, "iot:Publish", "c/DE"), Allow);
    assert_eq!(verdict(&policy, &ctx, "iot:Publish", "c/US"), Deny);
}
