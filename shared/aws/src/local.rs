//! The local stack (the emulator, LocalStack): what `sam deploy` creates on AWS, created instead by
//! `fleetctl setup-local` and the test harness. The tables come from [`crate::schema`]; the fleet
//! policy is read from the SAM template itself, so what runs locally is what gets deployed.

use crate::aws_error;
use fleetguard_domain::{Error, Result};
use serde_json::Value;

/// The fleet device policy exactly as `template` (the text of `infra/template.yaml`) deploys it for
/// `stack` (its parameters: `DeviceDomainName` adds the validated-domain condition), resolved, with
/// `${!...}` unescaped to the IoT policy variable it stands for.
pub fn fleet_policy_from_template(
    template: &str,
    stack: &crate::template::LocalStack,
) -> Result<String> {
    let doc = stack.resource_property(template, "FleetDevicePolicy", "PolicyDocument")?;
    if !doc.is_object() {
        return Err(Error::Config(
            "template: FleetDevicePolicy.PolicyDocument missing".into(),
        ));
    }
    Ok(doc.to_string())
}

/// Creates the IoT policy `name` unless it exists. Returns whether it was created.
pub async fn ensure_policy(iot: &aws_sdk_iot::Client, name: &str, document: &str) -> Result<bool> {
    match iot
        .create_policy()
        .policy_name(name)
        .policy_document(document)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_already_exists_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws_error("iot:CreatePolicy", e)),
    }
}

/// A development JWKS for the authorizer: one P-256 public key whose private half is dropped at once,
/// so no token verifies against it (a local operator flow brings a key of its own).
pub fn dev_jwks() -> Result<String> {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| Error::Config("could not generate a P-256 key".into()))?;
    // Uncompressed point: 0x04 || x || y.
    let point = key.public_key().as_ref().to_vec();
    let (x, y) = (&point[1..33], &point[33..65]);
    Ok(serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "dev", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    }]})
    .to_string())
}

/// Creates the quarantine thing group unless it exists (CloudFormation creates it from the template's
/// `QuarantineGroup`; no function's role may).
pub async fn ensure_thing_group(iot: &aws_sdk_iot::Client, name: &str) -> Result<()> {
    match iot
        .describe_thing_group()
        .thing_group_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_not_found_exception()) =>
        {
            iot.create_thing_group()
                .thing_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("iot:CreateThingGroup", e))
        }
        Err(e) => Err(aws_error("iot:DescribeThingGroup", e)),
    }
}

/// Sets the KMS key's policy to `policy` (the template's `KeyPolicy`, resolved), as CloudFormation does.
pub async fn put_key_policy(kms: &aws_sdk_kms::Client, key_id: &str, policy: &Value) -> Result<()> {
    kms.put_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_error("kms:PutKeyPolicy", e))
}

/// Registers `functions`' roles with the local emulator at `endpoint` (its `/_fleetguard/iam/roles`),
/// under `stack` (the session token the functions sign with): from then on the emulator authorizes
/// each function's calls with the policies the template gives it.
pub async fn register_roles(
    endpoint: &str,
    stack: &str,
    functions: &[crate::template::LocalFunction],
) -> Result<()> {
    let body = roles_request(stack, functions, "");
    let url = format!("{}/_fleetguard/iam/roles", endpoint.trim_end_matches('/'));
    let response = crate::http::HttpClient::new()?
        .post_json(&url, &body, std::time::Duration::from_secs(10), 1 << 16)
        .await?;
    if response.status != 200 {
        return Err(Error::Config(format!(
            "{url} answered {}: is it fleetguard's emulator (scripts/emulator.py)?",
            response.status
        )));
    }
    Ok(())
}

/// The emulator's `/_fleetguard/iam/roles` request for `stack`'s roles. A non-empty `tag` marks them
/// in the emulator's usage records (`<function>~<tag>`: a test refusing on purpose), which
/// `scripts/iam-report.sh` leaves out.
pub fn roles_request(
    stack: &str,
    functions: &[crate::template::LocalFunction],
    tag: &str,
) -> Value {
    let roles: Vec<Value> = functions
        .iter()
        .map(|f| {
            let function = if tag.is_empty() {
                f.binary.clone()
            } else {
                format!("{}~{tag}", f.binary)
            };
            serde_json::json!({
                "access_key_id": crate::template::local_access_key(&f.binary),
                "function": function,
                "role_name": f.role_name,
                "role_arn": f.role_arn,
                "session_name": f.binary,
                "policies": f.policies,
            })
        })
        .collect();
    serde_json::json!({"session_token": stack, "roles": roles})
}

/// Creates the failed-events queue (the template's `FailedEventsQueue`: 14 days' retention) unless it
/// exists, and returns its URL (its `Ref`).
pub async fn ensure_failed_events_queue(sdk: &aws_config::SdkConfig, name: &str) -> Result<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    sqs.create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod,
            "1209600",
        )
        .send()
        .await
        .map_err(|e| aws_error("sqs:CreateQueue", e))?
        .queue_url
        .ok_or_else(|| Error::Corrupt(format!("CreateQueue {name}: no URL")))
}

/// `sdk` (its endpoint, region and retries kept) signed as local role `binary` of `stack`: its access
/// key and the stack's session token, which the emulator maps to the role the template gives that
/// function. The test harness runs each function's use cases with it, and the local runtime acts as
/// Lambda with it (an on-failure destination is written with the function's role).
pub fn role_config(
    sdk: &aws_config::SdkConfig,
    binary: &str,
    stack: &str,
) -> aws_config::SdkConfig {
    use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
    sdk.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            crate::template::local_access_key(binary),
            crate::template::LOCAL_SECRET,
            Some(stack.to_owned()),
            None,
            "fleetguard-local-role",
        )))
        .build()
}
