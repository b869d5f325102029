//! The ways into AWS IoT Core the stack sets up, each served here as AWS serves it:
//! - the account's default endpoint (`iot:Data-ATS`): mutual TLS with no handshake validation, or,
//!   without a client certificate, the custom authorizer;
//! - each domain configuration of the template (developerguide/iot-custom-endpoints-configurable.html):
//!   its own host name, which the client names in SNI; `AWS_X509` (a client certificate is required) or
//!   `CUSTOM_AUTH_X509` (the certificate and then the custom authorizer, custom-auth-509cert.html);
//!   its handshake validator if `ClientCertificateConfig` names one (customize-client-auth.html).
//!
//! `iot:DomainName` is the endpoint's host name. Locally a host name does not resolve, so each endpoint
//! also listens on a port of its own (the stand-in for its DNS name); a client naming another endpoint's
//! host in SNI reaches that one, as on AWS.

use fleetguard_aws::template::{local_domain_name, LocalStack};
use serde_json::Value;

/// The default endpoint's configuration name.
pub const DEFAULT: &str = "iot:Data-ATS";

/// How an endpoint authenticates its clients (a domain configuration's `AuthenticationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// The default endpoint: a client certificate, or the custom authorizer without one.
    Default,
    /// `AWS_X509`: a client certificate, nothing else.
    AwsX509,
    /// `CUSTOM_AUTH_X509`: a client certificate, then the custom authorizer with it.
    CustomAuthX509,
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The domain configuration's name ([`DEFAULT`] for the default endpoint).
    pub configuration: String,
    /// Its host name: `iot:DomainName`, and the SNI that reaches it.
    pub domain_name: String,
    pub authentication: Authentication,
    /// The handshake validator's function (its binary), if the configuration names one.
    pub validator: Option<String>,
}

impl Endpoint {
    /// The default endpoint, as local clients name it (`localhost`).
    pub fn default_endpoint() -> Endpoint {
        Endpoint {
            configuration: DEFAULT.to_owned(),
            domain_name: "localhost".to_owned(),
            authentication: Authentication::Default,
            validator: None,
        }
    }
}

/// The `AWS::IoT::DomainConfiguration`s the template creates for `stack` (a false `Condition` leaves
/// one out), as endpoints.
pub fn load(template_text: &str, stack: &LocalStack) -> Result<Vec<Endpoint>, String> {
    let t: Value = serde_norway::from_str(template_text).map_err(|e| format!("template: {e}"))?;
    let resources = t["Resources"].as_object().ok_or("template: no Resources")?;
    let configurations = stack
        .resources_of(template_text, "AWS::IoT::DomainConfiguration")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (id, properties) in configurations {
        let name = properties["DomainConfigurationName"]
            .as_str()
            .ok_or(format!("template: {id} has no DomainConfigurationName"))?
            .to_owned();
        let authentication = match properties["AuthenticationType"].as_str() {
            Some("AWS_X509") => Authentication::AwsX509,
            Some("CUSTOM_AUTH_X509") => Authentication::CustomAuthX509,
            other => {
                return Err(format!(
                    "template: {id}: authentication {other:?} not served locally"
                ))
            }
        };
        // The function's binary, from the unresolved GetAtt (the local runtime names functions so).
        let raw = &resources[&id]["Properties"]["ClientCertificateConfig"]
            ["ClientCertificateCallbackArn"];
        let validator = crate::rules::function_binary(resources, raw);
        out.push(Endpoint {
            domain_name: local_domain_name(&name),
            configuration: name,
            authentication,
            validator,
        });
    }
    Ok(out)
}

/// The endpoint a connection reached: the domain configuration its SNI names, else the one whose
/// port it came in on (`localhost`, what every local client sends, names none).
pub fn reached<'a>(
    endpoints: &'a [Endpoint],
    port_of: &'a Endpoint,
    sni: Option<&str>,
) -> &'a Endpoint {
    sni.and_then(|s| {
        endpoints
            .iter()
            .filter(|e| e.configuration != DEFAULT)
            .find(|e| e.domain_name.eq_ignore_ascii_case(s))
    })
    .unwrap_or(port_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_names_the_endpoint_else_the_port_does() {
        let default = Endpoint::default_endpoint();
        let devices = Endpoint {
            configuration: "fg-devices".into(),
            domain_name: local_domain_name("fg-devices"),
            authentication: Authentication::AwsX509,
            validator: Some("handshake-validator".into()),
        };
        let all = [default.clone(), devices.clone()];
        assert_eq!(
            reached(&all, &all[0], Some("fg-devices.iot.localhost")),
            &devices
        );
        assert_eq!(reached(&all, &all[1], Some("localhost")), &devices);
        assert_eq!(reached(&all, &all[1], None), &devices);
        assert_eq!(reached(&all, &all[0], Some("elsewhere")), &default);
    }
}
