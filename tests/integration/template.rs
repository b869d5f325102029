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

/// IAM actions without resource-level permissions (the Service Authorization Reference's AWS IoT
/// table lists no resource type for them): a statement for one of them must say `"*"`.
const NO_RESOURCE_LEVEL: [&str; 2] = ["iot:RegisterCertificate", "iot:ListCACertificates"];

#[test]
fn every_function_has_least_privilege_statements() {
    let t = template();
    let mut functions = 0;
    for (name, res) in t["Resources"].as_object().unwrap() {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        functions += 1;
        assert_eq!(res["Metadata"]["BuildMethod"], "makefile", "{name}");
        for policy in as_list(&res["Properties"]["Policies"]) {
            for st in as_list(&policy["Statement"]) {
                for action in as_list(&st["Action"]) {
                    let a = action.as_str().unwrap();
                    assert!(!a.contains('*'), "{name}: wildcard action {a}");
                }
                for resource in as_list(&st["Resource"]) {
                    // Only actions AWS gives no resource-level permission may take "*", alone.
                    if resource == Value::String("*".into()) {
                        let actions = as_list(&st["Action"]);
                        assert!(
                            actions.len() == 1
                                && NO_RESOURCE_LEVEL.contains(&actions[0].as_str().unwrap()),
                            "{name}: * resource for {actions:?}"
                        );
                    }
                }
                assert_eq!(st["Effect"], "Allow", "{name}");
            }
        }
    }
    assert!(functions >= 4);
}

/// `sam build` runs `make build-<LogicalId>` in infra/Makefile for each function: the rule must copy
/// the function's own binary (its `BuildProperties.Binary`, which the local stack runs too), and the
/// one cargo-lambda build must build exactly these binaries.
#[test]
fn every_function_is_built_by_the_makefile_from_its_own_binary() {
    let t = template();
    let makefile = std::fs::read_to_string(workspace_root().join("infra/Makefile")).unwrap();
    let makefile = makefile.replace("\\\n", " ");
    let bins: Vec<&str> = makefile
        .lines()
        .find_map(|l| l.strip_prefix("BINS :="))
        .expect("BINS in infra/Makefile")
        .split_whitespace()
        .collect();
    let mut built = Vec::new();
    for (name, res) in t["Resources"].as_object().unwrap() {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        assert_eq!(
            res["Metadata"]["ContextPath"], ".",
            "{name}: the Makefile beside the template"
        );
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let rule = format!("build-{name}: functions\n\t$(call copy,{binary})\n");
        assert!(
            makefile.contains(&rule),
            "{name}: infra/Makefile lacks {rule:?}"
        );
        built.push(binary);
    }
    built.sort_unstable();
    let mut bins = bins;
    bins.sort_unstable();
    assert_eq!(
        bins, built,
        "infra/Makefile's BINS are the template's functions"
    );
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

/// Topics carry signals, never commands: every rule that reaches the revoker names the fields it
/// forwards (no `*`, so nothing a publisher adds passes) and sets `trigger` itself, and the revoker
/// never reads an event with a trigger as an operator command.
#[test]
fn rules_to_the_revoker_set_the_trigger_and_forward_named_fields_only() {
    let t = template();
    let mut seen = 0;
    for (name, res) in t["Resources"].as_object().unwrap() {
        if res["Type"] != "AWS::IoT::TopicRule" {
            continue;
        }
        let payload = &res["Properties"]["TopicRulePayload"];
        let to_revoker = payload["Actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["Lambda"]["FunctionArn"]["Fn::GetAtt"][0] == "RevokerFunction");
        if !to_revoker {
            continue;
        }
        seen += 1;
        let sql = payload["Sql"]
            .as_str()
            .or_else(|| payload["Sql"]["Fn::Sub"].as_str())
            .unwrap();
        let select = sql.split(" FROM ").next().unwrap();
        assert!(!select.contains('*'), "{name}: SELECT *");
        assert!(
            select.contains("' AS trigger"),
            "{name}: the rule must set the trigger: {sql}"
        );
    }
    assert!(
        seen >= 3,
        "the tamper, security and authorization-failure rules"
    );
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
    // Its only control-plane access: describe / revoke certificates, and take an approved
    // replacement's thing out of the quarantine group (never put one in).
    for policy in as_list(&hook["Policies"]) {
        for st in as_list(&policy["Statement"]) {
            let actions = as_list(&st["Action"]);
            if actions.contains(&Value::from("iot:RemoveThingFromThingGroup")) {
                assert_eq!(
                    actions,
                    [
                        Value::from("iot:DescribeThingGroup"),
                        Value::from("iot:RemoveThingFromThingGroup")
                    ]
                );
                assert_eq!(
                    as_list(&st["Resource"])[0].to_string(),
                    get_att("QuarantineGroup", "Arn")
                );
                continue;
            }
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
    let mut resources = Vec::new();
    for deny in &denies {
        assert_eq!(as_list(&deny["Action"]), [Value::from("iot:Publish")]);
        assert!(deny.get("Condition").is_none(), "the Deny is unconditional");
        resources.extend(as_list(&deny["Resource"]).iter().map(|v| sub(v).to_owned()));
    }
    let mut expected: Vec<String> = [
        "deleterecords/*/accepted",
        "deleterecords/*/rejected",
        "certificates/rotate/accepted",
        "certificates/rotate/rejected",
        "certificates/rotate/required",
        "certificates/confirm/accepted",
        "certificates/confirm/rejected",
    ]
    .iter()
    // `*` after each: a topic below a reply is denied too.
    .map(|t| format!("{ARN_PREFIX}topic/P/*/{t}*"))
    .collect();
    resources.sort();
    expected.sort();
    assert_eq!(resources, expected);
}

// ------------------------------------------------------------------ certificate rotation

/// The fleet CA key: P-256, signing only, kept when the stack goes; only the rotator's role (and,
/// if given, the CA admin role for `fleetctl ca init-kms`) may sign with it, never the account as a
/// whole; `kms:CreateGrant` is not among the account's administrative rights.
#[test]
fn only_the_rotator_may_sign_with_the_fleet_ca_key() {
    let t = template();
    let key = resource(&t, "FleetCaKey");
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["DeletionPolicy"], "Retain");
    let p = &key["Properties"];
    assert_eq!(
        (p["KeySpec"].as_str(), p["KeyUsage"].as_str()),
        (Some("ECC_NIST_P256"), Some("SIGN_VERIFY"))
    );
    let mut signers = Vec::new();
    for st in as_list(&p["KeyPolicy"]["Statement"]) {
        // A conditional statement: [condition, statement, AWS::NoValue].
        let st = match st.get("Fn::If") {
            Some(branches) => branches[1].clone(),
            None => st,
        };
        let actions: Vec<String> = as_list(&st["Action"])
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert!(
            !actions
                .iter()
                .any(|a| a == "kms:*" || a.starts_with("kms:Create") && a != "kms:CreateAlias"),
            "{actions:?}"
        );
        if actions.iter().any(|a| a == "kms:Sign") {
            assert_eq!(actions, ["kms:Sign"]);
            assert_eq!(
                st["Condition"]["StringEquals"]["kms:SigningAlgorithm"],
                "ECDSA_SHA_256"
            );
            signers.push(st["Principal"]["AWS"].to_string());
        }
    }
    assert_eq!(
        signers,
        [
            get_att("RotatorFunctionRole", "Arn"),
            serde_json::json!({"Ref": "CaAdminRoleArn"}).to_string()
        ]
    );
    let rotator = resource(&t, "RotatorFunction");
    assert!(
        !grants(rotator).iter().any(|(a, _)| a.starts_with("kms:")),
        "the key policy grants it"
    );
}

/// Only the functions that may register a rotation's certificate hold RegisterCertificate: the
/// rotator (ACTIVE), and the revoker and the watch, which register an issued but unregistered
/// certificate cut off before the registry forgets it.
#[test]
fn only_rotation_s_parties_may_register_certificates() {
    let t = template();
    let mut holders = Vec::new();
    for (name, res) in t["Resources"].as_object().unwrap() {
        if res["Type"] == "AWS::Serverless::Function"
            && grants(res)
                .iter()
                .any(|(a, r)| a == "iot:RegisterCertificate" && r == "\"*\"")
        {
            holders.push(name.as_str());
        }
    }
    assert_eq!(
        holders,
        [
            "CertificateWatchFunction",
            "RevokerFunction",
            "RotatorFunction"
        ]
    );
}

/// The rotation rules: the step as a literal, identity from computed fields, the CSR by name.
#[test]
fn rotation_rules_forward_the_principal_to_the_rotator() {
    let t = template();
    for (rule, action, topic) in [
        ("RotateCertificateRule", "rotate", "P/+/certificates/rotate"),
        ("ConfirmRotationRule", "confirm", "P/+/certificates/confirm"),
    ] {
        let r = resource(&t, rule);
        let sql = r["Properties"]["TopicRulePayload"]["Sql"].as_str().unwrap();
        assert!(sql.contains(&format!("'{action}' AS action")), "{sql}");
        assert!(
            sql.contains("principal() AS principal") && sql.contains("topic(2) AS serial"),
            "{sql}"
        );
        assert!(sql.ends_with(&format!("FROM '{topic}'")), "{sql}");
        assert_eq!(r["Condition"], "RotationEnabled");
        let target = &r["Properties"]["TopicRulePayload"]["Actions"][0]["Lambda"]["FunctionArn"];
        assert_eq!(target.to_string(), get_att("RotatorFunction", "Arn"));
    }
    let watch = resource(&t, "CertificateWatchFunction");
    let events = watch["Properties"]["Events"].as_object().unwrap();
    assert!(events
        .values()
        .any(|e| e["Type"].as_str().unwrap_or("").starts_with("Schedule")));
}

/// The template declares every table index the code queries (`schema::table_specs`).
#[test]
fn the_tables_declare_the_indexes_the_code_queries() {
    let t = template();
    let tables = fleetguard_domain::config::Tables {
        registry: "RegistryTable".into(),
        audit: "AuditTable".into(),
        records: "RecordsTable".into(),
    };
    for (table, hash, range, indexes) in fleetguard_aws::schema::table_specs(&tables) {
        let props = &resource(&t, table)["Properties"];
        let keys: Vec<String> = as_list(&props["KeySchema"])
            .iter()
            .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(keys, [hash, range], "{table}");
        for (name, ihash, irange) in indexes {
            let gsi = as_list(&props["GlobalSecondaryIndexes"])
                .into_iter()
                .find(|g| g["IndexName"] == name)
                .unwrap_or_else(|| panic!("{table}: no index {name}"));
            let keys: Vec<String> = as_list(&gsi["KeySchema"])
                .iter()
                .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(keys, [ihash, irange], "{table}.{name}");
        }
    }
}

// ------------------------------------------------------------------ handshake validation

/// Every (action, resource) pair a function's inline policies grant.
fn grants(function: &Value) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for policy in as_list(&function["Properties"]["Policies"]) {
        for st in statements(&policy) {
            assert_eq!(st["Effect"], "Allow");
            for action in as_list(&st["Action"]) {
                for resource in as_list(&st["Resource"]) {
                    out.insert((action.as_str().unwrap().to_owned(), resource.to_string()));
                }
            }
        }
    }
    out
}

fn get_att(resource: &str, attribute: &str) -> String {
    serde_json::json!({"Fn::GetAtt": [resource, attribute]}).to_string()
}

fn sub_value(text: &str) -> String {
    serde_json::json!({"Fn::Sub": text}).to_string()
}

/// The domain configurations whose handshake calls the validator, by logical id.
const VALIDATED_DOMAINS: [(&str, &str); 2] = [
    (
        "DeviceDomainConfiguration",
        "HandshakeValidatorDevicesInvokePermission",
    ),
    (
        "X509AuthDomainConfiguration",
        "HandshakeValidatorX509AuthInvokePermission",
    ),
];

#[test]
fn handshake_validator_is_invoked_only_by_our_domain_configurations() {
    let t = template();
    let mut permissions = Vec::new();
    for (name, res) in t["Resources"].as_object().unwrap() {
        if res["Type"] == "AWS::Lambda::Permission"
            && res["Properties"]["FunctionName"]["Ref"] == "HandshakeValidatorFunction"
        {
            permissions.push(name.clone());
        }
    }
    permissions.sort();
    let mut expected: Vec<String> = VALIDATED_DOMAINS
        .iter()
        .map(|(_, p)| p.to_string())
        .collect();
    expected.sort();
    assert_eq!(
        permissions, expected,
        "one permission per domain configuration"
    );

    for (domain, permission) in VALIDATED_DOMAINS {
        let p = &resource(&t, permission)["Properties"];
        assert_eq!(p["Principal"], "iot.amazonaws.com", "{permission}");
        assert_eq!(p["Action"], "lambda:InvokeFunction", "{permission}");
        assert_eq!(p["SourceAccount"]["Ref"], "AWS::AccountId", "{permission}");
        // AWS appends a generated suffix to a domain configuration's ARN: the name, then "/*".
        let name = sub(&resource(&t, domain)["Properties"]["DomainConfigurationName"]);
        assert!(
            name.starts_with("${AWS::StackName}-"),
            "{domain}: one per stack"
        );
        assert_eq!(
            sub(&p["SourceArn"]),
            format!("{ARN_PREFIX}domainconfiguration/{name}/*"),
            "{permission}"
        );
    }
}

#[test]
fn handshake_validator_reads_the_registry_and_audits_refusals_only() {
    let t = template();
    let f = resource(&t, "HandshakeValidatorFunction");
    assert_eq!(f["Type"], "AWS::Serverless::Function");
    assert_eq!(
        f["Metadata"]["BuildProperties"]["Binary"],
        "handshake-validator"
    );
    let p = &f["Properties"];
    assert!(
        p["Timeout"].as_u64().unwrap() <= 3,
        "answers within the TLS handshake"
    );
    assert!(
        p["ReservedConcurrentExecutions"].as_u64().is_some(),
        "bounded by a reconnect storm"
    );
    let env = &p["Environment"]["Variables"];
    assert_eq!(
        env["FLEETGUARD_CA_CERTIFICATE_IDS"]["Ref"],
        "CaCertificateId"
    );
    assert_eq!(
        env["FLEETGUARD_HANDSHAKE_CACHE_SECONDS"]["Ref"],
        "HandshakeCacheSeconds"
    );
    // The table names come from Globals, like every other function's.
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(globals["FLEETGUARD_REGISTRY_TABLE"]["Ref"], "RegistryTable");
    assert_eq!(globals["FLEETGUARD_AUDIT_TABLE"]["Ref"], "AuditTable");
    let cache = &t["Parameters"]["HandshakeCacheSeconds"];
    assert_eq!(cache["Type"], "Number");
    assert_eq!(cache["Default"], 5);
    assert_eq!(cache["MinValue"], 0);
    assert_eq!(cache["MaxValue"], 60);

    let expected: std::collections::BTreeSet<(String, String)> = [
        (
            "dynamodb:GetItem".to_owned(),
            get_att("RegistryTable", "Arn"),
        ),
        ("dynamodb:PutItem".to_owned(), get_att("AuditTable", "Arn")),
        (
            "iot:DescribeCACertificate".to_owned(),
            sub_value(&format!("{ARN_PREFIX}cacert/${{CaCertificateId}}")),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(grants(f), expected);
}

#[test]
fn domain_configurations_call_the_handshake_validator() {
    let t = template();
    let condition = resource(&t, "HandshakeValidatorFunction")["Condition"].clone();
    for (domain, permission) in VALIDATED_DOMAINS {
        let r = resource(&t, domain);
        assert_eq!(r["Type"], "AWS::IoT::DomainConfiguration");
        // Created and removed with the function and its permissions.
        assert_eq!(r["Condition"], condition, "{domain}");
        assert_eq!(
            resource(&t, permission)["Condition"],
            condition,
            "{permission}"
        );
        assert!(
            as_list(&r["DependsOn"]).contains(&Value::from(permission)),
            "{domain}: the validator is invokable before the first handshake"
        );
        let p = &r["Properties"];
        assert_eq!(p["ServiceType"], "DATA", "{domain}");
        assert_eq!(p["ApplicationProtocol"], "SECURE_MQTT", "{domain}");
        assert_eq!(
            p["ClientCertificateConfig"]["ClientCertificateCallbackArn"]["Fn::GetAtt"],
            serde_json::json!(["HandshakeValidatorFunction", "Arn"]),
            "{domain}"
        );
        // An AWS-managed domain: no custom name or server certificate to supply.
        assert!(p.get("DomainName").is_none() && p.get("ServerCertificateArns").is_none());
        let output = &t["Outputs"][format!("{domain}Name")];
        assert_eq!(
            output["Value"]["Ref"], domain,
            "{domain}: operators need its name"
        );
        assert_eq!(output["Condition"], condition, "{domain}: output");
    }
    let devices = &resource(&t, "DeviceDomainConfiguration")["Properties"];
    assert_eq!(devices["AuthenticationType"], "AWS_X509");
    let x509 = &resource(&t, "X509AuthDomainConfiguration")["Properties"];
    assert_eq!(x509["AuthenticationType"], "CUSTOM_AUTH_X509");
    assert_eq!(
        x509["AuthorizerConfig"]["DefaultAuthorizerName"]["Ref"],
        "FleetAuthorizer"
    );
    assert_eq!(x509["AuthorizerConfig"]["AllowAuthorizerOverride"], false);
    assert_eq!(t["Parameters"]["HandshakeValidation"]["Default"], "enabled");
}

#[test]
fn revoker_queries_the_records_table_for_rollback() {
    let t = template();
    let g = grants(resource(&t, "RevokerFunction"));
    let records = get_att("RecordsTable", "Arn");
    let registry = get_att("RegistryTable", "Arn");
    assert!(g.contains(&("dynamodb:Query".to_owned(), records)));
    // PRINCIPAL#<id> items live in the registry: read and updated by the revoker.
    for action in ["dynamodb:GetItem", "dynamodb:UpdateItem"] {
        assert!(
            g.contains(&(action.to_owned(), registry.clone())),
            "{action}"
        );
    }
    // Never a Scan, and the registry is never queried (items are read by key).
    assert!(!g.iter().any(|(a, _)| a == "dynamodb:Scan"));
    assert!(!g.contains(&("dynamodb:Query".to_owned(), registry)));
}

#[test]
fn provisioner_only_takes_things_out_of_the_quarantine_group() {
    let t = template();
    let f = resource(&t, "ProvisionerFunction");
    assert_eq!(
        f["Properties"]["Environment"]["Variables"]["FLEETGUARD_QUARANTINE_GROUP"]["Ref"],
        "QuarantineGroup"
    );
    let group_actions: std::collections::BTreeSet<(String, String)> = grants(f)
        .into_iter()
        .filter(|(a, _)| a.contains("ThingGroup"))
        .collect();
    let group = get_att("QuarantineGroup", "Arn");
    let things = sub_value(&format!("{ARN_PREFIX}thing/*"));
    let expected: std::collections::BTreeSet<(String, String)> = [
        ("iot:DescribeThingGroup", &group),
        ("iot:DescribeThingGroup", &things),
        ("iot:RemoveThingFromThingGroup", &group),
        ("iot:RemoveThingFromThingGroup", &things),
    ]
    .into_iter()
    .map(|(a, r)| (a.to_owned(), r.clone()))
    .collect();
    assert_eq!(
        group_actions, expected,
        "no AddThingToThingGroup, no other group"
    );
}

/// Every `FLEETGUARD_*` variable the functions' code reads is set by the template or listed, with its
/// default, under *Optional settings* in `docs/deploy.md`; and that list names only variables still read.
#[test]
fn every_variable_the_code_reads_is_in_the_template_or_documented_optional() {
    let root = workspace_root();
    let mut read = std::collections::BTreeSet::new();
    for (_, text) in function_sources() {
        for part in text.split("\"FLEETGUARD_").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if part[name.len()..].starts_with('"') {
                read.insert(format!("FLEETGUARD_{name}"));
            }
        }
    }
    let template = std::fs::read_to_string(root.join("infra/template.yaml")).unwrap();
    let deploy = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    let optional = &deploy[deploy.find("## Optional settings").expect("the section")..];
    let documented: Vec<&str> = optional
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let missing: Vec<&String> = read
        .iter()
        .filter(|v| !template.contains(&format!("{v}:")) && !documented.contains(&v.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "read but neither in the template nor documented: {missing:?}"
    );
    let stale: Vec<&&str> = documented.iter().filter(|v| !read.contains(**v)).collect();
    assert!(stale.is_empty(), "documented but no longer read: {stale:?}");
}

/// The functions read their environment in one place, `shared/aws/src/settings.rs` (and `RUST_LOG` in
/// the telemetry set-up): the domain never does, so a setting has one name, default and check.
#[test]
fn only_the_settings_read_the_environment() {
    let mut readers: Vec<String> = function_sources()
        .into_iter()
        .filter(|(_, text)| text.contains("env::var"))
        .map(|(path, _)| path)
        .collect();
    readers.sort();
    assert_eq!(
        readers,
        ["shared/aws/src/settings.rs", "shared/aws/src/telemetry.rs"]
    );
}

/// The Rust sources the functions run (the domain, the adapters, each function's crate): each file's
/// path from the workspace root, and its text.
fn function_sources() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut dirs = vec![root.join("shared/domain/src"), root.join("shared/aws/src")];
    dirs.extend(
        std::fs::read_dir(root.join("functions"))
            .unwrap()
            .map(|e| e.unwrap().path().join("src")),
    );
    let mut out = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let name = path.strip_prefix(&root).unwrap().display().to_string();
                out.push((name, text));
            }
        }
    }
    out
}
