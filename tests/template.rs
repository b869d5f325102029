//! Static checks of infra/template.yaml beyond cfn-lint: least-privilege IAM and confused-deputy
//! protection on every invoke permission.

use fleetguard_tests::workspace_root;
use serde_json::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("infra/template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

#[test]
fn every_function_has_least_privilege_statements() {
    let t = template();
    let mut functions = 0;
    for (name, res) in t["Resources"].as_object().unwrap() {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        functions += 1;
        assert_eq!(res["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        for policy in as_list(&res["Properties"]["Policies"]) {
            for st in as_list(&policy["Statement"]) {
                for action in as_list(&st["Action"]) {
                    let a = action.as_str().unwrap();
                    assert!(!a.contains('*'), "{name}: wildcard action {a}");
                }
                for resource in as_list(&st["Resource"]) {
                    assert_ne!(resource, Value::String("*".into()), "{name}: * resource");
                }
                assert_eq!(st["Effect"], "Allow", "{name}");
            }
        }
    }
    assert!(functions >= 4);
}

#[test]
fn every_invoke_permission_names_its_source() {
    let t = template();
    let mut permissions = 0;
    for (name, res) in t["Resources"].as_object().unwrap() {
        if res["Type"] != "AWS::Lambda::Permission" {
            continue;
        }
        permissions += 1;
        let p = &res["Properties"];
        assert_eq!(p["Principal"], "iot.amazonaws.com", "{name}");
        assert!(
            p["SourceArn"].is_object() || p["SourceArn"].is_string(),
            "{name}: SourceArn"
        );
        assert_eq!(
            p["SourceAccount"]["Ref"], "AWS::AccountId",
            "{name}: SourceAccount"
        );
    }
    assert!(permissions >= 4);
}

#[test]
fn rules_never_select_star_beside_identity() {
    let t = template();
    for (name, res) in t["Resources"].as_object().unwrap() {
        if res["Type"] != "AWS::IoT::TopicRule" {
            continue;
        }
        let payload = &res["Properties"]["TopicRulePayload"];
        assert!(payload["ErrorAction"].is_object(), "{name}: error action");
        if let Some(sql) = payload["Sql"].as_str() {
            if sql.contains("principal()") {
                assert!(!sql.contains('*'), "{name}: SELECT * beside principal()");
            }
        }
    }
}
