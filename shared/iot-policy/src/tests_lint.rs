//! Linter tests: the fleet policy is clean, each bad pattern produces its finding.

use super::tests_prop::FLEET_POLICY;
use super::*;

const P: &str = "arn:aws:iot:us-east-1:123456789012";

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn codes(docs: &[&str]) -> Vec<(FindingCode, Severity)> {
    lint(docs)
        .expect("lint")
        .into_iter()
        .map(|f| (f.code, f.severity))
        .collect()
}

fn has(docs: &[&str], code: FindingCode) -> bool {
    codes(docs).iter().any(|(c, _)| *c == code)
}

fn allow(action: &str, resource: &str) -> String {
    doc(&format!(
        r#"{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}"#
    ))
}

#[test]
fn fleet_policy_has_no_finding_at_medium_or_above() {
    let f = lint(&[FLEET_POLICY]).expect("lint");
    assert!(f.iter().all(|f| f.severity < Severity::Medium), "{f:#?}");
}

#[test]
fn concrete_per_identity_resources_are_not_flagged() {
    let rendered = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{P}:client/SN123"}},
           {{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"{P}:topic/P/SN123/*"}},
           {{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{P}:topicfilter/P/SN123/*"}},
           {{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{P}:topicfilter/my/topic"}},
           {{"Effect":"Allow","Action":"iot:Publish","Resource":"{P}:topic/$aws/things/SN123/shadow/*"}}"#
    ));
    let f = lint(&[&rendered]).expect("lint");
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn wildcard_action() {
    let both = allow("iot:*", "*");
    assert!(codes(&[&both]).contains(&(FindingCode::WildcardAction, Severity::Critical)));
    let star = allow("*", &format!("{P}:topic/P/SN1/x"));
    assert!(codes(&[&star]).contains(&(FindingCode::WildcardAction, Severity::High)));
}

#[test]
fn wildcard_resources() {
    for r in [
        "*".to_owned(),
        "arn:aws:iot:*:*:*".to_owned(),
        format!("{P}:*"),
        format!("{P}:topic/*"),
        format!("{P}:topicfilter/*"),
        format!("{P}:client/*"),
        format!("{P}:thing/*"),
    ] {
        let d = allow("iot:Publish", &r);
        assert!(has(&[&d], FindingCode::WildcardResource), "{r}");
    }
    // A Deny on * is fine.
    let deny = doc(r#"{"Effect":"Deny","Action":"iot:Publish","Resource":"*"}"#);
    assert!(!has(&[&deny], FindingCode::WildcardResource));
}

#[test]
fn allow_with_not_action_and_not_resource() {
    let na = doc(&format!(
        r#"{{"Effect":"Allow","NotAction":"iot:Connect","Resource":"{P}:topic/a"}}"#
    ));
    assert!(has(&[&na], FindingCode::AllowWithNotAction));
    let nr = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","NotResource":"{P}:topic/a"}}"#
    ));
    assert!(has(&[&nr], FindingCode::AllowWithNotResource));
}

#[test]
fn unscoped_topic_access() {
    for r in [
        format!("{P}:topic/P/*"),
        format!("{P}:topic/P/SN*"),
        format!("{P}:topic/$aws/things/*"),
        format!("{P}:topic/P/${{iot:Connection.Thing.ThingName}}*"),
    ] {
        let d = allow("iot:Publish", &r);
        assert!(has(&[&d], FindingCode::UnscopedTopicAccess), "{r}");
    }
    let any_region = allow("iot:Publish", "arn:aws:iot:*:*:topic/P/*");
    assert!(has(&[&any_region], FindingCode::UnscopedTopicAccess));
    let d = allow("iot:Receive", &format!("{P}:topic/fleet/*"));
    assert!(has(&[&d], FindingCode::UnscopedTopicAccess));
    let cert = allow(
        "iot:Publish",
        &format!("{P}:topic/P/${{iot:Certificate.Subject.CommonName}}/*"),
    );
    assert!(!has(&[&cert], FindingCode::UnscopedTopicAccess));
}

#[test]
fn connect_not_bound_to_identity() {
    let cid = allow("iot:Connect", &format!("{P}:client/${{iot:ClientId}}"));
    assert!(has(&[&cid], FindingCode::ConnectNotBoundToIdentity));
    let prefix = allow("iot:Connect", &format!("{P}:client/SN*"));
    assert!(has(&[&prefix], FindingCode::ConnectNotBoundToIdentity));
    let star = allow("iot:Connect", &format!("{P}:client/*"));
    assert!(has(&[&star], FindingCode::WildcardResource));
    let bound = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{P}:client/${{iot:Connection.Thing.ThingName}}","Condition":{{"Bool":{{"iot:Connection.Thing.IsAttached":"true"}}}}}}"#
    ));
    assert!(lint(&[&bound]).expect("lint").is_empty());
}

#[test]
fn client_id_in_topic_filter() {
    let d = allow(
        "iot:Subscribe",
        &format!("{P}:topicfilter/my/${{iot:ClientId}}/topic"),
    );
    assert!(has(&[&d], FindingCode::ClientIdInTopicFilter));
}

#[test]
fn thing_variable_without_attached_check() {
    let d = allow(
        "iot:Publish",
        &format!("{P}:topic/P/${{iot:Connection.Thing.ThingName}}/*"),
    );
    assert!(codes(&[&d]).contains(&(
        FindingCode::ThingVariableWithoutAttachedCheck,
        Severity::Medium
    )));
}

#[test]
fn deny_bypassable_by_wildcard_subscription() {
    let base = format!(
        r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{P}:topicfilter/P/SN1/*"}},
           {{"Effect":"Allow","Action":"iot:Receive","Resource":"{P}:topic/P/SN1/*"}},
           {{"Effect":"Deny","Action":"iot:Subscribe","Resource":"{P}:topicfilter/P/SN1/secret"}}"#
    );
    let bad = doc(&base);
    let f = lint(&[&bad]).expect("lint");
    let hit = f
        .iter()
        .find(|f| f.code == FindingCode::DenyBypassableByWildcardSubscription)
        .expect("finding");
    assert_eq!((hit.document, hit.statement), (0, Some(2)));
    let fixed = doc(&format!(
        r#"{base},{{"Effect":"Deny","Action":"iot:Receive","Resource":"{P}:topic/P/SN1/secret"}}"#
    ));
    assert!(!has(
        &[&fixed],
        FindingCode::DenyBypassableByWildcardSubscription
    ));
    // The receive deny may live in another document.
    let other = doc(&format!(
        r#"{{"Effect":"Deny","Action":"iot:Receive","Resource":"{P}:topic/P/*/secret"}}"#
    ));
    assert!(!has(
        &[&bad, &other],
        FindingCode::DenyBypassableByWildcardSubscription
    ));
    // And the bypass is real: a `#` subscription is allowed by the evaluator.
    let ctx = ConnectionContext::device("SN1", true).in_account("us-east-1", "123456789012");
    let sub = Request::for_target("iot:Subscribe", "P/SN1/#", &ctx).expect("req");
    assert!(evaluate(&[&bad], &sub, &ctx).expect("eval").is_allowed());
    let recv = Request::for_target("iot:Receive", "P/SN1/secret", &ctx).expect("req");
    assert!(evaluate(&[&bad], &recv, &ctx).expect("eval").is_allowed());
    assert!(!evaluate(&[&fixed], &recv, &ctx).expect("eval").is_allowed());
}

#[test]
fn dead_statements() {
    let sub_topic = allow("iot:Subscribe", &format!("{P}:topic/P/SN1/x"));
    assert!(codes(&[&sub_topic]).contains(&(FindingCode::DeadStatement, Severity::Low)));
    let deny_dead = doc(&format!(
        r#"{{"Effect":"Deny","Action":"iot:Connect","Resource":"{P}:topic/x"}}"#
    ));
    assert!(codes(&[&deny_dead]).contains(&(FindingCode::DeadStatement, Severity::High)));
    let alive = allow("iot:Subscribe", &format!("{P}:topicfilter/P/SN1/x"));
    assert!(!has(&[&alive], FindingCode::DeadStatement));
    let wildcard_action = allow("iot:*", &format!("{P}:job/x"));
    assert!(!has(&[&wildcard_action], FindingCode::DeadStatement));
}

#[test]
fn document_too_large_is_a_finding() {
    let resources: Vec<String> = (0..80)
        .map(|i| format!("\"{P}:topic/P/SN{i:04}/*\""))
        .collect();
    let big = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":[{}]}}"#,
        resources.join(",")
    ));
    assert!(policy_size(&big) > MAX_POLICY_CHARS);
    assert!(codes(&[&big]).contains(&(FindingCode::DocumentTooLarge, Severity::High)));
    assert!(matches!(
        PolicySet::parse(&[&big]),
        Err(PolicyError::TooLarge { .. })
    ));
}

#[test]
fn missing_version_and_unknown_variable() {
    let nov = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Action":"iot:Connect","Resource":"{P}:client/${{iot:Connection.Thing.ThingName}}"}}]}}"#
    );
    assert!(codes(&[&nov]).contains(&(FindingCode::MissingVersion, Severity::High)));
    let unk = allow(
        "iot:Publish",
        &format!("{P}:topic/${{iot:Thing.ThingName}}/x"),
    );
    assert!(has(&[&unk], FindingCode::UnknownPolicyVariable));
}

#[test]
fn findings_are_sorted_and_codes_are_snake_case() {
    let d = doc(&format!(
        r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{P}:topic/x"}},{{"Effect":"Allow","Action":"iot:*","Resource":"*"}}"#
    ));
    let f = lint(&[&d]).expect("lint");
    assert!(f.windows(2).all(|w| w[0].severity >= w[1].severity));
    assert_eq!(f[0].severity, Severity::Critical);
    for x in &f {
        let json = serde_json::to_value(x).expect("json");
        assert_eq!(json["code"], x.code.as_str());
        assert!(x
            .code
            .as_str()
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_'));
    }
    assert!(Severity::Low < Severity::Medium && Severity::High < Severity::Critical);
    assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
}

#[test]
fn malformed_input_is_an_error_not_a_finding() {
    assert!(lint(&["{"]).is_err());
    assert!(lint(&[&doc(
        r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Nope":{}}}"#
    )])
    .is_err());
}
