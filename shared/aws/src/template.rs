//! `infra/template.yaml` resolved for a local stack: each function's role (its `Policies`, exactly as
//! written) and its environment (`Globals` and its own `Environment`), with `Ref`, `Fn::GetAtt`,
//! `Fn::Sub`, `Fn::If` and `Fn::Join` evaluated against the local stack's names. The test harness,
//! `fleetctl setup-local` and `scripts/dev.sh` take both from here, so what runs locally is what the
//! template deploys: the emulator authorizes each function's calls with its role (scripts/iam_local.py),
//! and no function setting is written a second time.
//!
//! Names follow what CloudFormation and SAM create: a function's role is `<Function>Role`
//! (`<stack>-<Function>Role` here), a resource without an explicit name is `<stack>-<LogicalId>`.

use fleetguard_domain::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The local stack's names for the template's resources and its parameter values.
#[derive(Clone, Debug)]
pub struct LocalStack {
    pub name: String,
    pub region: String,
    pub account: String,
    /// Parameter values; a parameter not given takes the template's `Default`.
    pub parameters: BTreeMap<String, String>,
    /// `Ref` of a resource, where it is not `<stack>-<LogicalId>` (tables, policies, the CA key...).
    pub refs: BTreeMap<String, String>,
}

/// One function of the template, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalFunction {
    /// Its logical id (`ProvisionerFunction`).
    pub logical_id: String,
    /// Its binary (`BuildProperties.Binary`), the name `cargo lambda` serves it under.
    pub binary: String,
    /// The role SAM creates for it (`<stack>-<LogicalId>Role`) and its ARN.
    pub role_name: String,
    pub role_arn: String,
    /// Its `Policies`, each an IAM policy document.
    pub policies: Vec<Value>,
    /// `Globals.Function.Environment` and its own `Environment`.
    pub environment: BTreeMap<String, String>,
    /// Its `EventInvokeConfig`, for a runtime that invokes it asynchronously as Lambda does.
    pub on_failure: Option<OnFailure>,
}

/// How Lambda treats a failed asynchronous invocation of a function (`EventInvokeConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnFailure {
    /// `MaximumRetryAttempts` (Lambda's default: 2).
    pub max_retries: u32,
    /// The SQS queue (ARN) the destination record goes to, if any.
    pub queue_arn: Option<String>,
}

/// The host name of a domain configuration in a local stack (AWS gives an AWS-managed one
/// `<id>-ats.iot.<region>.amazonaws.com`, known only after the deploy): what the local gateway serves
/// it under and what `iot:DomainName` is for its connections.
pub fn local_domain_name(configuration: &str) -> String {
    format!("{configuration}.iot.localhost")
}

/// The name the local stack gives the claim template's provisioning role where it names a function
/// (its access key, the IAM report).
pub const PROVISIONING_ROLE: &str = "claim-provisioning";

/// The secret of every local access key: the emulator maps keys to roles; the secret only has to match
/// for the local gateway's signature check.
pub const LOCAL_SECRET: &str = "testing";

/// The access key id a function signs with locally: the emulator maps it, with the stack's session
/// token, to the function's role. Each function crate's `[package.metadata.lambda.env]` sets it for
/// `cargo lambda watch` (in AWS, Lambda sets the role's credentials).
pub fn local_access_key(binary: &str) -> String {
    format!("FGLOCAL{}", binary.replace('-', "").to_uppercase())
}

impl LocalStack {
    pub fn new(name: &str, region: &str, account: &str) -> Self {
        Self {
            name: name.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            parameters: BTreeMap::new(),
            refs: BTreeMap::new(),
        }
    }

    pub fn parameter(mut self, name: &str, value: impl Into<String>) -> Self {
        self.parameters.insert(name.to_owned(), value.into());
        self
    }

    pub fn resource(mut self, logical_id: &str, reference: impl Into<String>) -> Self {
        self.refs.insert(logical_id.to_owned(), reference.into());
        self
    }

    /// Every function the template creates under these parameters (a function whose `Condition` is
    /// false is left out), resolved.
    pub fn functions(&self, template_text: &str) -> Result<Vec<LocalFunction>> {
        let template: Value = serde_norway::from_str(template_text)
            .map_err(|e| Error::Config(format!("template: not plain YAML: {e}")))?;
        let r = Resolver {
            stack: self,
            template: &template,
        };
        let globals = r.resolve(&template["Globals"]["Function"]["Environment"]["Variables"])?;
        let mut out = Vec::new();
        let resources = template["Resources"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (id, resource) in &resources {
            if resource["Type"] != "AWS::Serverless::Function" {
                continue;
            }
            if let Some(cond) = resource["Condition"].as_str() {
                if !r.condition(cond)? {
                    continue;
                }
            }
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .ok_or_else(|| Error::Config(format!("template: {id} has no Binary")))?
                .to_owned();
            let props = &resource["Properties"];
            let mut policies = match r.resolve(&props["Policies"])? {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                other => vec![other],
            };
            if let Some(p) = policies.iter().find(|p| !p.is_object()) {
                // A SAM policy template or a managed policy name: not expanded here, so refused.
                return Err(Error::Config(format!(
                    "template: {id}: only inline policy documents are resolved locally, not {p}"
                )));
            }
            // What SAM adds for an SQS on-failure destination: its SQSSendMessagePolicy on the queue.
            let on_failure = match r.resolve(&props["EventInvokeConfig"])? {
                Value::Null => None,
                config => {
                    let failure = &config["DestinationConfig"]["OnFailure"];
                    let queue_arn = match failure["Type"].as_str() {
                        None => None,
                        Some("SQS") => failure["Destination"].as_str().map(str::to_owned),
                        Some(other) => {
                            return Err(Error::Config(format!(
                                "template: {id}: on-failure destination {other} is not resolved locally"
                            )))
                        }
                    };
                    if let Some(arn) = &queue_arn {
                        policies.push(serde_json::json!({"Version": "2012-10-17", "Statement": [
                            {"Effect": "Allow", "Action": "sqs:SendMessage*", "Resource": arn}]}));
                    }
                    Some(OnFailure {
                        max_retries: config["MaximumRetryAttempts"].as_u64().unwrap_or(2) as u32,
                        queue_arn,
                    })
                }
            };
            let mut environment = strings(&globals, id)?;
            let own = r.resolve(&props["Environment"]["Variables"])?;
            environment.extend(strings(&own, id)?);
            let role_name = format!("{}-{id}Role", self.name);
            out.push(LocalFunction {
                logical_id: id.clone(),
                binary,
                role_arn: format!("arn:aws:iam::{}:role/{role_name}", self.account),
                role_name,
                policies,
                environment,
                on_failure,
            });
        }
        Ok(out)
    }

    /// The operators' role (`fleetctl`): the template's `OperatorPolicy`, as a role named like a
    /// function's (`binary` "fleetctl", no environment).
    pub fn operator_role(&self, template_text: &str) -> Result<LocalFunction> {
        let policy = self.resource_property(template_text, "OperatorPolicy", "PolicyDocument")?;
        if !policy.is_object() {
            return Err(Error::Config(
                "template: OperatorPolicy has no PolicyDocument".into(),
            ));
        }
        let role_name = format!("{}-operator", self.name);
        Ok(LocalFunction {
            logical_id: "OperatorPolicy".to_owned(),
            binary: "fleetctl".to_owned(),
            role_arn: format!("arn:aws:iam::{}:role/{role_name}", self.account),
            role_name,
            policies: vec![policy],
            environment: BTreeMap::new(),
            on_failure: None,
        })
    }

    /// The role AWS IoT assumes to carry out RegisterThing for the claim template
    /// (`ClaimProvisioningRole`): its inline policies, as a role named like a function's (`binary`
    /// [`PROVISIONING_ROLE`], no environment).
    pub fn provisioning_role(&self, template_text: &str) -> Result<LocalFunction> {
        let policies =
            self.resource_property(template_text, "ClaimProvisioningRole", "Policies")?;
        let policies: Vec<Value> = policies
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["PolicyDocument"].clone())
            .collect();
        if policies.is_empty() || policies.iter().any(|p| !p.is_object()) {
            return Err(Error::Config(
                "template: ClaimProvisioningRole has no inline policy document".into(),
            ));
        }
        let role_name = format!("{}-ClaimProvisioningRole", self.name);
        Ok(LocalFunction {
            logical_id: "ClaimProvisioningRole".to_owned(),
            binary: PROVISIONING_ROLE.to_owned(),
            role_arn: format!("arn:aws:iam::{}:role/{role_name}", self.account),
            role_name,
            policies,
            environment: BTreeMap::new(),
            on_failure: None,
        })
    }

    /// Every role of the local stack: each function's, the operators', AWS IoT's provisioning role.
    pub fn roles(&self, template_text: &str) -> Result<Vec<LocalFunction>> {
        let mut roles = self.functions(template_text)?;
        roles.push(self.operator_role(template_text)?);
        roles.push(self.provisioning_role(template_text)?);
        Ok(roles)
    }

    /// The union of every function's environment, for a runtime that serves them all with one
    /// environment (`cargo lambda watch`). Refused where two functions set one variable differently.
    pub fn shared_environment(&self, template_text: &str) -> Result<BTreeMap<String, String>> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for f in self.functions(template_text)? {
            for (k, v) in f.environment {
                if let Some(old) = env.get(&k) {
                    if *old != v {
                        return Err(Error::Config(format!(
                            "template: {k} differs between functions ({old} / {v})"
                        )));
                    }
                }
                env.insert(k, v);
            }
        }
        Ok(env)
    }

    /// The resources of type `kind` the template creates under these parameters (one whose
    /// `Condition` is false is left out): each logical id and its `Properties`, resolved.
    pub fn resources_of(&self, template_text: &str, kind: &str) -> Result<Vec<(String, Value)>> {
        let template: Value = serde_norway::from_str(template_text)
            .map_err(|e| Error::Config(format!("template: not plain YAML: {e}")))?;
        let r = Resolver {
            stack: self,
            template: &template,
        };
        let mut out = Vec::new();
        for (id, resource) in template["Resources"].as_object().into_iter().flatten() {
            if resource["Type"] != kind {
                continue;
            }
            if let Some(cond) = resource["Condition"].as_str() {
                if !r.condition(cond)? {
                    continue;
                }
            }
            out.push((id.clone(), r.resolve(&resource["Properties"])?));
        }
        Ok(out)
    }

    /// The host name of the devices' validated domain (`DeviceDomainConfiguration`) in a local stack:
    /// the value its `DeviceDomainName` parameter takes, as a deploy's second pass sets it.
    pub fn device_domain_name(&self, template_text: &str) -> Result<String> {
        let name = self.resource_property(
            template_text,
            "DeviceDomainConfiguration",
            "DomainConfigurationName",
        )?;
        let name = name.as_str().ok_or_else(|| {
            Error::Config("template: DeviceDomainConfiguration has no name".into())
        })?;
        Ok(local_domain_name(name))
    }

    /// The template's resolved `Properties.<path>` of resource `logical_id` (a KMS key policy, say).
    pub fn resource_property(
        &self,
        template_text: &str,
        logical_id: &str,
        property: &str,
    ) -> Result<Value> {
        let template: Value = serde_norway::from_str(template_text)
            .map_err(|e| Error::Config(format!("template: not plain YAML: {e}")))?;
        let r = Resolver {
            stack: self,
            template: &template,
        };
        r.resolve(&template["Resources"][logical_id]["Properties"][property])
    }
}

fn strings(v: &Value, id: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in v.as_object().into_iter().flatten() {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(Error::Config(format!(
                    "template: {id}: {k} is not a scalar: {other}"
                )))
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

struct Resolver<'a> {
    stack: &'a LocalStack,
    template: &'a Value,
}

/// `{Ref: AWS::NoValue}` inside `Fn::If`: the property or list item disappears.
const NO_VALUE: &str = "\u{0}fleetguard-no-value";

impl Resolver<'_> {
    fn parameter(&self, name: &str) -> Option<String> {
        if let Some(v) = self.stack.parameters.get(name) {
            return Some(v.clone());
        }
        let p = &self.template["Parameters"][name];
        if p.is_null() {
            return None;
        }
        Some(match &p["Default"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        })
    }

    fn reference(&self, name: &str) -> Result<String> {
        let s = self.stack;
        Ok(match name {
            "AWS::Region" => s.region.clone(),
            "AWS::AccountId" => s.account.clone(),
            "AWS::Partition" => "aws".to_owned(),
            "AWS::StackName" => s.name.clone(),
            "AWS::NoValue" => NO_VALUE.to_owned(),
            _ => {
                if let Some(v) = self.parameter(name) {
                    v
                } else if let Some(v) = s.refs.get(name) {
                    v.clone()
                } else if let Some(queue) = self.template["Resources"][name]["Properties"]
                    .get("QueueName")
                    .filter(|_| self.template["Resources"][name]["Type"] == "AWS::SQS::Queue")
                {
                    // A queue's Ref is its URL; without one given, its name stands in (the ARN
                    // needs only the name).
                    self.resolve(queue)?.as_str().unwrap_or_default().to_owned()
                } else if let Some(named) = self.named(name)? {
                    named
                } else if self.template["Resources"][name].is_object() {
                    format!("{}-{name}", s.name)
                } else {
                    return Err(Error::Config(format!("template: Ref to unknown {name}")));
                }
            }
        })
    }

    /// The name a resource's own property gives it (its `Ref`), for the kinds whose `Ref` is that name.
    fn named(&self, logical_id: &str) -> Result<Option<String>> {
        let r = &self.template["Resources"][logical_id];
        let property = match r["Type"].as_str() {
            Some("AWS::IoT::Policy") => "PolicyName",
            Some("AWS::IoT::ProvisioningTemplate") => "TemplateName",
            Some("AWS::IoT::ThingGroup") => "ThingGroupName",
            Some("AWS::IoT::Authorizer") => "AuthorizerName",
            Some("AWS::IoT::DomainConfiguration") => "DomainConfigurationName",
            _ => return Ok(None),
        };
        match r["Properties"].get(property) {
            Some(v) => Ok(self.resolve(v)?.as_str().map(str::to_owned)),
            None => Ok(None),
        }
    }

    fn arn(&self, name: &str) -> Result<String> {
        let s = self.stack;
        let (region, account) = (&s.region, &s.account);
        // An implicit SAM function role: <Function>Role.
        if let Some(function) = name.strip_suffix("Role") {
            if self.template["Resources"][function]["Type"] == "AWS::Serverless::Function" {
                return Ok(format!("arn:aws:iam::{account}:role/{}-{name}", s.name));
            }
        }
        let kind = self.template["Resources"][name]["Type"]
            .as_str()
            .ok_or_else(|| Error::Config(format!("template: GetAtt of unknown {name}")))?;
        let r = self.reference(name)?;
        Ok(match kind {
            "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{region}:{account}:table/{r}"),
            "AWS::IoT::ThingGroup" => format!("arn:aws:iot:{region}:{account}:thinggroup/{r}"),
            "AWS::IoT::Policy" => format!("arn:aws:iot:{region}:{account}:policy/{r}"),
            "AWS::IoT::TopicRule" => format!("arn:aws:iot:{region}:{account}:rule/{r}"),
            "AWS::IoT::Authorizer" => format!("arn:aws:iot:{region}:{account}:authorizer/{r}"),
            "AWS::KMS::Key" => format!("arn:aws:kms:{region}:{account}:key/{r}"),
            "AWS::IAM::Role" => format!("arn:aws:iam::{account}:role/{r}"),
            "AWS::IAM::ManagedPolicy" => format!("arn:aws:iam::{account}:policy/{r}"),
            "AWS::Logs::LogGroup" => format!("arn:aws:logs:{region}:{account}:log-group:{r}:*"),
            "AWS::Serverless::Function" => {
                format!("arn:aws:lambda:{region}:{account}:function:{r}")
            }
            "AWS::SNS::Topic" => r,
            // Its Ref is the queue's URL, whose last segment is its name.
            "AWS::SQS::Queue" => format!(
                "arn:aws:sqs:{region}:{account}:{}",
                r.rsplit('/').next().unwrap_or_default()
            ),
            other => {
                return Err(Error::Config(format!(
                    "template: no local ARN for {name} ({other})"
                )))
            }
        })
    }

    fn condition(&self, name: &str) -> Result<bool> {
        let c = &self.template["Conditions"][name];
        if c.is_null() {
            return Err(Error::Config(format!("template: unknown condition {name}")));
        }
        self.truth(c)
    }

    fn truth(&self, v: &Value) -> Result<bool> {
        let (f, arg) =
            single(v).ok_or_else(|| Error::Config(format!("template: not a condition: {v}")))?;
        let items = arg.as_array().cloned().unwrap_or_default();
        match f {
            "Fn::Equals" if items.len() == 2 => {
                Ok(self.resolve(&items[0])? == self.resolve(&items[1])?)
            }
            "Fn::Not" if items.len() == 1 => Ok(!self.truth(&items[0])?),
            "Fn::And" => items.iter().try_fold(true, |a, x| Ok(a && self.truth(x)?)),
            "Fn::Or" => items.iter().try_fold(false, |a, x| Ok(a || self.truth(x)?)),
            "Condition" => self.condition(arg.as_str().unwrap_or_default()),
            _ => Err(Error::Config(format!(
                "template: condition {f} not resolved"
            ))),
        }
    }

    fn sub(&self, text: &str, vars: &Map<String, Value>) -> Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| Error::Config(format!("template: unclosed ${{ in {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(self.resolve(v)?.as_str().unwrap_or_default());
            } else if let Some((res, "Arn")) = name.split_once('.') {
                out.push_str(&self.arn(res)?);
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve(&self, v: &Value) -> Result<Value> {
        if let Some((f, arg)) = single(v) {
            let items = arg.as_array().cloned().unwrap_or_default();
            match f {
                "Ref" => {
                    return Ok(Value::String(
                        self.reference(arg.as_str().unwrap_or_default())?,
                    ))
                }
                "Fn::GetAtt" => {
                    let (name, attr) = match (items.first(), items.get(1)) {
                        (Some(n), Some(a)) => (n.as_str().unwrap_or_default(), a.as_str()),
                        _ => arg
                            .as_str()
                            .and_then(|s| s.split_once('.'))
                            .map_or(("", None), |(n, a)| (n, Some(a))),
                    };
                    if attr != Some("Arn") {
                        return Err(Error::Config(format!("template: GetAtt {name}.{attr:?}")));
                    }
                    return Ok(Value::String(self.arn(name)?));
                }
                "Fn::Sub" => {
                    return Ok(Value::String(match arg {
                        Value::String(s) => self.sub(s, &Map::new())?,
                        Value::Array(a) if a.len() == 2 => self.sub(
                            a[0].as_str().unwrap_or_default(),
                            a[1].as_object().unwrap_or(&Map::new()),
                        )?,
                        _ => return Err(Error::Config(format!("template: Fn::Sub {arg}"))),
                    }))
                }
                "Fn::If" if items.len() == 3 => {
                    let cond = self.condition(items[0].as_str().unwrap_or_default())?;
                    return self.resolve(&items[if cond { 1 } else { 2 }]);
                }
                "Fn::Join" if items.len() == 2 => {
                    let sep = items[0].as_str().unwrap_or_default();
                    let parts = match self.resolve(&items[1])? {
                        Value::Array(a) => a,
                        _ => Vec::new(),
                    };
                    let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
                    return Ok(Value::String(parts.join(sep)));
                }
                _ if f.starts_with("Fn::") => {
                    return Err(Error::Config(format!(
                        "template: {f} is not resolved locally"
                    )))
                }
                _ => {}
            }
        }
        Ok(match v {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, x) in map {
                    let r = self.resolve(x)?;
                    if r != Value::String(NO_VALUE.to_owned()) {
                        out.insert(k.clone(), r);
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|x| self.resolve(x))
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .filter(|x| *x != Value::String(NO_VALUE.to_owned()))
                    .collect(),
            ),
            other => other.clone(),
        })
    }
}

/// `{"Fn::X": arg}` (or `{Ref: x}`, `{Condition: x}`): the function and its argument.
fn single(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let (k, arg) = map.iter().next()?;
    (k == "Ref" || k == "Condition" || k.starts_with("Fn::")).then_some((k.as_str(), arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/template.yaml"
        ))
        .expect("template")
    }

    fn stack() -> LocalStack {
        LocalStack::new("fgx", "us-east-1", "123456789012")
            .parameter("CaCertificateId", "a".repeat(64))
            .parameter("RotationCaCertificateId", "b".repeat(64))
            .parameter("JwtIssuer", "https://idp")
            .parameter("JwtAudience", "fleet")
            .parameter("IotDataEndpoint", "http://127.0.0.1:1")
            .resource("RegistryTable", "fgx-registry")
    }

    #[test]
    fn every_function_resolves_with_its_role_and_environment() {
        let functions = stack().functions(&template()).expect("resolves");
        let names: Vec<&str> = functions.iter().map(|f| f.binary.as_str()).collect();
        assert_eq!(names.len(), 8, "{names:?}");
        let delete = functions
            .iter()
            .find(|f| f.binary == "delete-record")
            .expect("delete-record");
        assert_eq!(
            delete.role_arn,
            "arn:aws:iam::123456789012:role/fgx-DeleteRecordFunctionRole"
        );
        assert_eq!(
            delete.environment["FLEETGUARD_SECURITY_TOPIC"],
            "fleetguard/fgx/security/violations"
        );
        assert_eq!(
            delete.environment["FLEETGUARD_REGISTRY_TABLE"],
            "fgx-registry"
        );
        let text = serde_json::to_string(&delete.policies).expect("json");
        assert!(text.contains("arn:aws:dynamodb:us-east-1:123456789012:table/fgx-registry"));
        assert!(!text.contains("Fn::"), "{text}");
        // Asynchronous: SAM's grant on its failed-events queue, which it names.
        let queue = "arn:aws:sqs:us-east-1:123456789012:fgx-failed-events";
        assert_eq!(
            delete.on_failure,
            Some(OnFailure {
                max_retries: 2,
                queue_arn: Some(queue.to_owned())
            })
        );
        assert!(text.contains(queue), "{text}");
        let authorizer = functions
            .iter()
            .find(|f| f.binary == "authorizer")
            .expect("authorizer");
        assert_eq!(authorizer.on_failure, None, "invoked synchronously");
    }

    #[test]
    fn conditions_leave_functions_and_statements_out() {
        let s = LocalStack::new("fgx", "us-east-1", "123456789012")
            .parameter("CaCertificateId", "a".repeat(64))
            .parameter("HandshakeValidation", "disabled");
        let names: Vec<String> = s
            .functions(&template())
            .expect("resolves")
            .into_iter()
            .map(|f| f.binary)
            .collect();
        assert!(!names.contains(&"rotator".to_owned()));
        assert!(!names.contains(&"handshake-validator".to_owned()));
        let key = s
            .resource_property(&template(), "FleetCaKey", "KeyPolicy")
            .expect("key policy");
        assert_eq!(key["Statement"].as_array().map(Vec::len), Some(1), "{key}");
    }

    #[test]
    fn operators_have_their_own_role() {
        let role = stack().operator_role(&template()).expect("operator policy");
        let text = serde_json::to_string(&role.policies).expect("json");
        assert!(text.contains("table/fgx-registry"), "{text}");
        assert!(!text.contains("kms:"), "operators never sign: {text}");
    }

    #[test]
    fn one_environment_serves_every_function() {
        let env = stack()
            .shared_environment(&template())
            .expect("no conflicts");
        assert_eq!(
            env["FLEETGUARD_ALERTS_TOPIC"],
            "fleetguard/fgx/alerts/certificates"
        );
    }
}
