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

// ------------------------------------------------------------------ fleet provisioning by claim

const ARN_PREFIX: &str = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:";

/// The string inside `{"Fn::Sub": "..."}`.
fn sub(v: &Value) -> &str {
    v["Fn::Sub"]
        .as_str()
        .unwrap_or_else(|| panic!("not a Fn::Sub string: {v}"))
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    let r = &t["Resources"][name];
    assert!(r.is_object(), "{name} missing");
    r
}

/// The claim template's name, as the `Fn::Sub` text every reference to it must repeat.
fn claim_template_name(t: &Value) -> String {
    let p = &resource(t, "ClaimProvisioningTemplate")["Properties"];
    sub(&p["TemplateName"]).to_owned()
}

fn statements(doc: &Value) -> Vec<Value> {
    assert_eq!(doc["Version"], "2012-10-17");
    as_list(&doc["Statement"])
}

#[test]
fn claim_template_is_hooked_and_attaches_only_the_fleet_policy() {
    let t = template();
    let r = resource(&t, "ClaimProvisioningTemplate");
    assert_eq!(r["Type"], "AWS::IoT::ProvisioningTemplate");
    let p = &r["Properties"];
    assert_eq!(p["Enabled"], true);
    assert!(
        claim_template_name(&t).contains("${AWS::StackName}"),
        "one template per stack"
    );
    let hook = &p["PreProvisioningHook"];
    assert_eq!(
        hook["TargetArn"]["Fn::GetAtt"],
        serde_json::json!(["ProvisioningHookFunction", "Arn"])
    );
    assert_eq!(hook["PayloadVersion"], "2020-04-01");
    assert_eq!(
        p["ProvisioningRoleArn"]["Fn::GetAtt"],
        serde_json::json!(["ClaimProvisioningRole", "Arn"])
    );

    // The body is JSON once CloudFormation substitutes the fleet policy's name (its only variable).
    let text = sub(&p["TemplateBody"]).replace("${FleetDevicePolicy}", "FLEET-POLICY");
    assert!(
        !text.contains("${"),
        "unexpected substitution in the template body"
    );
    let body: Value = serde_json::from_str(&text).expect("template body is JSON");

    let params = body["Parameters"].as_object().unwrap();
    for name in [
        "SerialNumber",
        "ProofTimestamp",
        "ProofSignature",
        "EnrollmentSecret",
        "AWS::IoT::Certificate::Id",
    ] {
        assert_eq!(params[name]["Type"], "String", "parameter {name}");
    }
    for optional in ["ProofTimestamp", "ProofSignature", "EnrollmentSecret"] {
        assert_eq!(
            params[optional]["Default"], "",
            "{optional} defaults to empty"
        );
    }

    let resources = body["Resources"].as_object().unwrap();
    let of_type =
        |ty: &str| -> Vec<&Value> { resources.values().filter(|r| r["Type"] == ty).collect() };
    assert_eq!(
        resources.len(),
        3,
        "a thing, a certificate and a policy only"
    );
    let things = of_type("AWS::IoT::Thing");
    assert_eq!(things.len(), 1);
    // The hook overrides SerialNumber with the validated serial: the thing is named by the hook.
    assert_eq!(
        things[0]["Properties"]["ThingName"],
        serde_json::json!({"Ref": "SerialNumber"})
    );
    let certs = of_type("AWS::IoT::Certificate");
    assert_eq!(certs.len(), 1);
    assert_eq!(
        certs[0]["Properties"]["CertificateId"],
        serde_json::json!({"Ref": "AWS::IoT::Certificate::Id"})
    );
    assert_eq!(certs[0]["Properties"]["Status"], "ACTIVE");
    let policies = of_type("AWS::IoT::Policy");
    assert_eq!(policies.len(), 1, "exactly one policy");
    let props = policies[0]["Properties"].as_object().unwrap();
    assert_eq!(props.len(), 1, "the existing policy by name, no document");
    assert_eq!(props["PolicyName"], "FLEET-POLICY");
}

#[test]
fn claim_policy_allows_only_this_templates_provisioning_topics() {
    let t = template();
    let r = resource(&t, "ClaimPolicy");
    assert_eq!(r["Type"], "AWS::IoT::Policy");
    let name = claim_template_name(&t);
    let template_topics = format!("$aws/provisioning-templates/{name}/provision/");
    let allowed = |kind: &str, res: &str| {
        let Some(rest) = res.strip_prefix(kind) else {
            return false;
        };
        rest.starts_with("$aws/certificates/create") || rest.starts_with(&template_topics)
    };
    let mut seen = std::collections::BTreeSet::new();
    for st in statements(&r["Properties"]["PolicyDocument"]) {
        assert_eq!(st["Effect"], "Allow");
        assert!(st.get("NotAction").is_none() && st.get("NotResource").is_none());
        for action in as_list(&st["Action"]) {
            let action = action.as_str().unwrap();
            seen.insert(action.to_owned());
            for resource in as_list(&st["Resource"]) {
                let arn = sub(&resource);
                let res = arn
                    .strip_prefix(ARN_PREFIX)
                    .unwrap_or_else(|| panic!("{arn}: not an IoT ARN of this account/region"));
                assert!(
                    !res.contains('#') && !res.contains('+'),
                    "{res}: MQTT wildcard"
                );
                match action {
                    "iot:Publish" | "iot:Receive" => {
                        assert!(allowed("topic/", res), "{action} on {res}")
                    }
                    "iot:Subscribe" => assert!(allowed("topicfilter/", res), "{action} on {res}"),
                    "iot:Connect" => {
                        let client = res.strip_prefix("client/").expect("client resource");
                        assert!(
                            !client.starts_with('*') && !client.contains("${"),
                            "{res}: any client id (client/*, client/${{iot:ClientId}})"
                        );
                    }
                    other => panic!("claim policy grants {other}"),
                }
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe"]
    );
    assert_eq!(
        t["Outputs"]["ClaimPolicyName"]["Value"]["Ref"],
        "ClaimPolicy"
    );
    assert_eq!(
        t["Outputs"]["ClaimProvisioningTemplateName"]["Value"]["Ref"],
        "ClaimProvisioningTemplate"
    );
}

#[test]
fn claim_provisioning_role_is_scoped_and_trusts_only_iot_in_this_account() {
    let t = template();
    let r = resource(&t, "ClaimProvisioningRole");
    assert_eq!(r["Type"], "AWS::IAM::Role");
    let p = &r["Properties"];
    assert!(
        p.get("ManagedPolicyArns").is_none(),
        "no managed (account-wide) policy"
    );
    let trust = statements(&p["AssumeRolePolicyDocument"]);
    assert_eq!(trust.len(), 1);
    assert_eq!(trust[0]["Principal"]["Service"], "iot.amazonaws.com");
    assert_eq!(trust[0]["Action"], "sts:AssumeRole");
    assert_eq!(
        trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"]["Ref"],
        "AWS::AccountId"
    );
    let mut statements_seen = 0;
    for policy in as_list(&p["Policies"]) {
        for st in statements(&policy["PolicyDocument"]) {
            statements_seen += 1;
            assert_eq!(st["Effect"], "Allow");
            for action in as_list(&st["Action"]) {
                let a = action.as_str().unwrap();
                assert!(a.starts_with("iot:") && !a.contains('*'), "action {a}");
            }
            for resource in as_list(&st["Resource"]) {
                let arn = sub(&resource);
                let res = arn
                    .strip_prefix(ARN_PREFIX)
                    .expect("IoT ARN of this account");
                assert!(
                    ["thing/*", "cert/*", "policy/${FleetDevicePolicy}"].contains(&res),
                    "resource {res}"
                );
            }
        }
    }
    assert!(statements_seen > 0);
}

#[test]
fn provisioning_hook_is_invoked_only_by_the_claim_template() {
    let t = template();
    let p = &resource(&t, "ProvisioningHookInvokePermission")["Properties"];
    assert_eq!(p["FunctionName"]["Ref"], "ProvisioningHookFunction");
    assert_eq!(p["SourceAccount"]["Ref"], "AWS::AccountId");
    assert_eq!(
        sub(&p["SourceArn"]),
        format!(
            "{ARN_PREFIX}provisioningtemplate/{}",
            claim_template_name(&t)
        )
    );

    let hook = &resource(&t, "ProvisioningHookFunction")["Properties"];
    assert_eq!(
        hook["Environment"]["Variables"]["FLEETGUARD_PROOF_WINDOW_SECONDS"]["Ref"],
        "EnrollmentProofWindowSeconds"
    );
    let window = &t["Parameters"]["EnrollmentProofWindowSeconds"];
    assert_eq!(window["Type"], "Number");
    assert_eq!(window["Default"], 300);
    // Its only control-plane access: describe / revoke certificates.
    for policy in as_list(&hook["Policies"]) {
        for st in as_list(&policy["Statement"]) {
            let actions = as_list(&st["Action"]);
            if actions
                .iter()
                .any(|a| a.as_str().unwrap().starts_with("iot:"))
            {
                assert_eq!(
                    actions,
                    [
                        Value::from("iot:DescribeCertificate"),
                        Value::from("iot:UpdateCertificate")
                    ]
                );
                assert_eq!(sub(&st["Resource"]), format!("{ARN_PREFIX}cert/*"));
            }
        }
    }
}

// ------------------------------------------------------------------ fleet device policy

/// Only the delete-record function (with IAM, through the data plane) may publish a reply: the
/// Allow on `P/<thing>/*` also covers `.../accepted` (`*` spans `/`), so the policy states an
/// unconditional Deny on every serial's replies. Every ARN takes the stack's partition.
#[test]
fn fleet_device_policy_denies_publishing_delete_record_replies() {
    let t = template();
    let r = resource(&t, "FleetDevicePolicy");
    assert_eq!(r["Type"], "AWS::IoT::Policy");
    let mut denies = Vec::new();
    for st in statements(&r["Properties"]["PolicyDocument"]) {
        assert!(st.get("NotAction").is_none() && st.get("NotResource").is_none());
        for resource in as_list(&st["Resource"]) {
            let arn = sub(&resource);
            assert!(
                arn.starts_with(ARN_PREFIX),
                "{arn}: not arn:${{AWS::Partition}}:iot:${{AWS::Region}}:${{AWS::AccountId}}:"
            );
        }
        if st["Effect"] == "Deny" {
            denies.push(st);
        }
    }
    assert_eq!(denies.len(), 1, "{denies:#?}");
    let deny = &denies[0];
    assert_eq!(as_list(&deny["Action"]), [Value::from("iot:Publish")]);
    assert!(deny.get("Condition").is_none(), "the Deny is unconditional");
    let resources: Vec<String> = as_list(&deny["Resource"])
        .iter()
        .map(|v| sub(v).to_owned())
        .collect();
    assert_eq!(
        resources,
        [
            format!("{ARN_PREFIX}topic/P/*/deleterecords/*/accepted"),
            format!("{ARN_PREFIX}topic/P/*/deleterecords/*/rejected"),
        ]
    );
}
