//! Fleet provisioning's MQTT API as AWS IoT serves it (developerguide/fleet-provision-api.html), for
//! a claim device talking to the gateway as it would to AWS IoT:
//! - `$aws/certificates/create-from-csr/json`: a certificate for the device's own key, issued by AWS's
//!   CA (here [`Provisioning::issuer_pem`], which the gateway's TLS trusts as AWS IoT trusts Amazon's),
//!   its subject copied from the CSR, registered `PENDING_ACTIVATION`, with an ownership token;
//! - `$aws/certificates/create/json`: the same with a key AWS generates (and returns);
//! - `$aws/provisioning-templates/<name>/provision/json` (RegisterThing): the template's
//!   pre-provisioning hook asked first (developerguide/pre-provisioning-hook.html), then the template
//!   body's resources created under the template's provisioning role.
//!
//! Replies go to `<request topic>/accepted` or `/rejected` on the requesting connection only ("through
//! the same MQTT connection used to publish the API request"), which must have subscribed first.
//! Only JSON payloads (the template's claim policy allows only `json`).

use crate::lambda::Lambda;
use fleetguard_aws::template::LocalStack;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One provisioning template of the stack, resolved.
#[derive(Debug, Clone)]
pub struct Template {
    /// Its `TemplateName`.
    pub name: String,
    /// Its `TemplateBody`, parsed.
    pub body: Value,
    /// The pre-provisioning hook's function, as the local runtime names it (its binary).
    pub hook: Option<String>,
}

/// The `AWS::IoT::ProvisioningTemplate`s of a SAM template (its text), resolved for `stack`.
pub fn load(template_text: &str, stack: &LocalStack) -> Result<Vec<Template>, String> {
    let t: Value = serde_norway::from_str(template_text).map_err(|e| format!("template: {e}"))?;
    let resources = t["Resources"].as_object().ok_or("template: no Resources")?;
    let mut out = Vec::new();
    for (id, r) in resources {
        if r["Type"] != "AWS::IoT::ProvisioningTemplate" {
            continue;
        }
        let property = |p: &str| {
            stack
                .resource_property(template_text, id, p)
                .map_err(|e| e.to_string())
        };
        let name = property("TemplateName")?
            .as_str()
            .ok_or(format!("template: {id} has no TemplateName"))?
            .to_owned();
        let body = property("TemplateBody")?;
        let body: Value = match body {
            Value::String(s) => serde_json::from_str(&s).map_err(|e| format!("{id}: body: {e}"))?,
            other => other,
        };
        let hook = crate::rules::function_binary(
            resources,
            &r["Properties"]["PreProvisioningHook"]["TargetArn"],
        );
        out.push(Template { name, body, hook });
    }
    Ok(out)
}

/// A request of the API, from its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    CreateFromCsr,
    CreateKeys,
    RegisterThing { template: String },
}

/// The request a topic names, if any (JSON payloads only).
pub fn request(topic: &str) -> Option<Request> {
    match topic {
        "$aws/certificates/create-from-csr/json" => Some(Request::CreateFromCsr),
        "$aws/certificates/create/json" => Some(Request::CreateKeys),
        _ => {
            let name = topic
                .strip_prefix("$aws/provisioning-templates/")?
                .strip_suffix("/provision/json")?;
            (!name.is_empty() && !name.contains('/')).then(|| Request::RegisterThing {
                template: name.to_owned(),
            })
        }
    }
}

/// The API's topics: only AWS IoT publishes there, except the requests themselves.
pub fn reserved(topic: &str) -> bool {
    (topic.starts_with("$aws/certificates/") || topic.starts_with("$aws/provisioning-templates/"))
        && request(topic).is_none()
}

/// How long a certificate ownership token lasts (fleet-provision-api: one hour).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// AWS gives the pre-provisioning hook 5 seconds (pre-provisioning-hook.html).
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Who asked: the claim connection's principal (its certificate id) and client id.
pub struct Caller<'a> {
    pub principal: &'a str,
    pub client_id: &'a str,
}

/// A certificate issued here and not yet provisioned.
struct Owned {
    certificate_id: String,
    pem: String,
    expires: Instant,
}

/// AWS IoT's side of the API.
pub struct Provisioning {
    /// AWS's CA for the certificates it issues (PEM): trusted by the gateway's TLS.
    pub issuer_pem: String,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    templates: Vec<Template>,
    tokens: Mutex<HashMap<String, Owned>>,
    /// AWS IoT itself (registers what it issues).
    iot: aws_sdk_iot::Client,
    /// The provisioning role's client (RegisterThing's resources); AWS IoT's own if not set.
    role: Mutex<Option<aws_sdk_iot::Client>>,
    region: String,
    account: String,
}

/// A rejection as the API shapes it.
fn rejected(status: u16, code: &str, message: &str) -> Value {
    json!({"statusCode": status, "errorCode": code, "errorMessage": message})
}

impl Provisioning {
    pub fn new(
        iot: aws_sdk_iot::Client,
        templates: Vec<Template>,
        region: &str,
        account: &str,
    ) -> Result<Self, String> {
        let err = |e: rcgen::Error| e.to_string();
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name.push(
            rcgen::DnType::CommonName,
            "fleetguard local stand-in for Amazon's IoT CA",
        );
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        let issuer = rcgen::CertifiedIssuer::self_signed(ca, key).map_err(err)?;
        Ok(Self {
            issuer_pem: issuer.pem(),
            issuer,
            templates,
            tokens: Mutex::new(HashMap::new()),
            iot,
            role: Mutex::new(None),
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }

    /// RegisterThing's resources are created with `sdk` (the template's provisioning role).
    pub fn set_role(&self, sdk: &fleetguard_aws::SdkConfig) {
        *self.role.lock().unwrap_or_else(|e| e.into_inner()) = Some(aws_sdk_iot::Client::new(sdk));
    }

    /// The DER of AWS's CA, for the TLS trust store.
    pub fn issuer_der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// Answers `request`: the reply's topic and payload.
    pub async fn handle(
        &self,
        topic: &str,
        request: &Request,
        payload: &[u8],
        caller: &Caller<'_>,
        lambda: &Lambda,
    ) -> (String, Value) {
        let answer = match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(body)) => match request {
                Request::CreateFromCsr => self.create_from_csr(&body).await,
                Request::CreateKeys => self.create_keys().await,
                Request::RegisterThing { template } => {
                    self.register_thing(template, &body, caller, lambda).await
                }
            },
            _ => Err(rejected(
                400,
                "InvalidPayload",
                "the payload is not a JSON object",
            )),
        };
        match answer {
            Ok(v) => (format!("{topic}/accepted"), v),
            Err(v) => (format!("{topic}/rejected"), v),
        }
    }

    async fn create_from_csr(&self, body: &Map<String, Value>) -> Result<Value, Value> {
        let bad = |m: &str| rejected(400, "InvalidPayload", m);
        let csr = body["certificateSigningRequest"]
            .as_str()
            .ok_or_else(|| bad("certificateSigningRequest is required"))?;
        // AWS checks the request (its signature, its key); the subject is copied, never trusted.
        let valid = fleetguard_domain::lifecycle::csr::validate_csr(csr, None)
            .map_err(|e| bad(&format!("certificateSigningRequest: {e}")))?;
        let params = rcgen::CertificateSigningRequestParams::from_der(&valid.der.clone().into())
            .map_err(|e| bad(&format!("certificateSigningRequest: {e}")))?;
        let cert = params
            .signed_by(&self.issuer)
            .map_err(|e| rejected(500, "InternalFailure", &e.to_string()))?;
        let (id, token) = self.register(cert.pem()).await?;
        Ok(json!({"certificateId": id, "certificatePem": cert.pem(),
                  "certificateOwnershipToken": token}))
    }

    async fn create_keys(&self) -> Result<Value, Value> {
        let (id, pem, key) = self
            .create_keys_and_certificate(false)
            .await
            .map_err(|e| rejected(500, "InternalFailure", &e))?;
        let token = self.token(&id, &pem);
        Ok(json!({"certificateId": id, "certificatePem": pem,
                  "privateKey": key, "certificateOwnershipToken": token}))
    }

    /// The control plane's CreateKeysAndCertificate (how an operator makes a batch's claim
    /// certificate): a key AWS generates and a certificate from AWS's CA, `ACTIVE` if
    /// `set_as_active`, else `PENDING_ACTIVATION`. Returns (certificate id, PEM, private key PEM).
    /// (The emulator's own signs with a key it throws away: no client could use its certificate.)
    pub async fn create_keys_and_certificate(
        &self,
        set_as_active: bool,
    ) -> Result<(String, String, String), String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "AWS IoT Certificate");
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let id = self
            .register_certificate(&cert.pem(), set_as_active)
            .await?;
        Ok((id, cert.pem(), key.serialize_pem()))
    }

    async fn register_certificate(&self, pem: &str, active: bool) -> Result<String, String> {
        use aws_sdk_iot::types::CertificateStatus;
        let out = self
            .iot
            .register_certificate_without_ca()
            .certificate_pem(pem)
            .status(if active {
                CertificateStatus::Active
            } else {
                CertificateStatus::PendingActivation
            })
            .send()
            .await
            .map_err(|e| format!("register: {e}"))?;
        Ok(out.certificate_id.unwrap_or_default())
    }

    /// Registers an issued certificate `PENDING_ACTIVATION` and hands out its ownership token.
    async fn register(&self, pem: String) -> Result<(String, String), Value> {
        let id = self
            .register_certificate(&pem, false)
            .await
            .map_err(|e| rejected(500, "InternalFailure", &e))?;
        let token = self.token(&id, &pem);
        Ok((id, token))
    }

    /// A new ownership token for certificate `id`, good for [`TOKEN_LIFETIME`].
    fn token(&self, id: &str, pem: &str) -> String {
        let id = id.to_owned();
        let token = hex::encode(uuid::Uuid::new_v4().as_bytes())
            + &hex::encode(uuid::Uuid::new_v4().as_bytes());
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        tokens.retain(|_, o| o.expires > now);
        tokens.insert(
            token.clone(),
            Owned {
                certificate_id: id,
                pem: pem.to_owned(),
                expires: now + TOKEN_LIFETIME,
            },
        );
        token
    }

    async fn register_thing(
        &self,
        name: &str,
        body: &Map<String, Value>,
        caller: &Caller<'_>,
        lambda: &Lambda,
    ) -> Result<Value, Value> {
        let bad = |m: &str| rejected(400, "InvalidPayload", m);
        let token = body["certificateOwnershipToken"]
            .as_str()
            .ok_or_else(|| bad("certificateOwnershipToken is required"))?;
        let mut parameters: Map<String, Value> = match &body.get("parameters") {
            None => Map::new(),
            Some(Value::Object(p)) if p.values().all(Value::is_string) => p.clone(),
            Some(_) => return Err(bad("parameters must map strings to strings")),
        };
        let template = self
            .templates
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| rejected(404, "ResourceNotFound", "no such provisioning template"))?;
        let (certificate_id, pem) = {
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            match tokens.get(token).filter(|o| o.expires > Instant::now()) {
                Some(o) => (o.certificate_id.clone(), o.pem.clone()),
                None => {
                    return Err(rejected(
                        400,
                        "InvalidCertificateOwnershipToken",
                        "unknown or expired token",
                    ))
                }
            }
        };
        if let Some(hook) = &template.hook {
            let event = json!({
                "claimCertificateId": caller.principal,
                "certificateId": certificate_id,
                "certificatePem": pem,
                "templateArn": format!("arn:aws:iot:{}:{}:provisioningtemplate/{name}", self.region, self.account),
                "clientId": caller.client_id,
                "parameters": parameters,
            });
            let answer = lambda.invoke(hook, &event, HOOK_TIMEOUT).await;
            match answer {
                Ok(a) if a["allowProvisioning"] == true => {
                    if let Some(o) = a["parameterOverrides"].as_object() {
                        parameters.extend(o.clone());
                    }
                }
                // A refusal, an error or a late answer: the device learns only that it was denied.
                other => {
                    tracing::info!(template = name, refused = ?other.err(), "pre-provisioning hook did not allow");
                    return Err(rejected(
                        403,
                        "AccessDenied",
                        "the pre-provisioning hook did not allow provisioning",
                    ));
                }
            }
        }
        parameters.insert(
            "AWS::IoT::Certificate::Id".into(),
            certificate_id.clone().into(),
        );
        let thing = self
            .create_resources(&template.body, &parameters, &certificate_id)
            .await?;
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
        Ok(json!({"deviceConfiguration": {}, "thingName": thing}))
    }

    /// The template body's resources (thing, certificate status, policy by name), with its
    /// parameters. Returns the thing's name.
    async fn create_resources(
        &self,
        body: &Value,
        parameters: &Map<String, Value>,
        certificate_id: &str,
    ) -> Result<String, Value> {
        let invalid = |m: String| rejected(400, "InvalidParameters", &m);
        let failed = |m: String| rejected(500, "InternalFailure", &m);
        // Every declared parameter without a default must be given.
        let mut values = parameters.clone();
        for (p, decl) in body["Parameters"].as_object().into_iter().flatten() {
            if !values.contains_key(p) {
                match decl.get("Default") {
                    Some(d) => {
                        values.insert(p.clone(), d.clone());
                    }
                    None => return Err(invalid(format!("parameter {p} is required"))),
                }
            }
        }
        let value = |v: &Value| -> Result<String, Value> {
            match v {
                Value::String(s) => Ok(s.clone()),
                v => match v["Ref"].as_str().and_then(|r| values.get(r)) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    _ => Err(invalid(format!("unresolved {v}"))),
                },
            }
        };
        let iot = self
            .role
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| self.iot.clone());
        let arn = format!(
            "arn:aws:iot:{}:{}:cert/{certificate_id}",
            self.region, self.account
        );
        let resources: Vec<&Value> = body["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
            .collect();
        let of = |kind: &'static str| resources.iter().copied().filter(move |r| r["Type"] == kind);
        let mut thing = None;
        for r in of("AWS::IoT::Thing") {
            let name = value(&r["Properties"]["ThingName"])?;
            match iot.create_thing().thing_name(&name).send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
                Err(e) => return Err(failed(format!("CreateThing: {e}"))),
            }
            thing = Some(name);
        }
        for r in of("AWS::IoT::Policy") {
            let name = value(&r["Properties"]["PolicyName"])?;
            iot.attach_policy()
                .policy_name(&name)
                .target(&arn)
                .send()
                .await
                .map_err(|e| failed(format!("AttachPolicy: {e}")))?;
        }
        if let Some(name) = &thing {
            iot.attach_thing_principal()
                .thing_name(name)
                .principal(&arn)
                .send()
                .await
                .map_err(|e| failed(format!("AttachThingPrincipal: {e}")))?;
        }
        for r in of("AWS::IoT::Certificate") {
            let status = value(&r["Properties"]["Status"])?;
            iot.update_certificate()
                .certificate_id(certificate_id)
                .new_status(aws_sdk_iot::types::CertificateStatus::from(status.as_str()))
                .send()
                .await
                .map_err(|e| failed(format!("UpdateCertificate: {e}")))?;
        }
        thing.ok_or_else(|| invalid("the template creates no thing".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_the_requests() {
        assert_eq!(
            request("$aws/certificates/create-from-csr/json"),
            Some(Request::CreateFromCsr)
        );
        assert_eq!(
            request("$aws/provisioning-templates/fg-claim/provision/json"),
            Some(Request::RegisterThing {
                template: "fg-claim".into()
            })
        );
        assert_eq!(request("$aws/provisioning-templates//provision/json"), None);
        assert_eq!(request("$aws/certificates/create/cbor"), None);
        assert!(reserved("$aws/certificates/create-from-csr/json/accepted"));
        assert!(reserved(
            "$aws/provisioning-templates/x/provision/json/rejected"
        ));
        assert!(!reserved("$aws/certificates/create/json"));
        assert!(!reserved("P/SN1/x"));
    }
}
