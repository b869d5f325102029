//! Who a connection is, from its TLS session only: the certificate id is SHA-256 of the peer's leaf
//! certificate (DER), as AWS IoT computes it; nothing the client sends can change it. What it may do
//! comes from AWS IoT (the emulator): the certificate's status, its attached policies, its things.

use aws_sdk_iot::Client;
use iot_policy::{ConnectionContext, PolicySet};

/// An X.509 connection's principal and what AWS IoT says of it.
#[derive(Debug, Clone)]
pub struct CertificatePrincipal {
    pub certificate_id: String,
    pub status: String,
    pub arn: String,
    pub policies: Vec<String>,
    pub things: Vec<String>,
    /// The CA AWS IoT registered it under, if any.
    pub ca_certificate_id: Option<String>,
}

/// The certificate id of a DER certificate: the domain's one definition.
pub fn certificate_id(der: &[u8]) -> String {
    fleetguard_domain::model::CertificateId::of_der(der).to_string()
}

/// Looks the certificate up in AWS IoT. `None` if AWS IoT does not know it.
pub async fn lookup(iot: &Client, der: &[u8]) -> Result<Option<CertificatePrincipal>, String> {
    describe(iot, &certificate_id(der)).await
}

/// As [`lookup`], by certificate id (a live session reads its policies again).
pub async fn describe(iot: &Client, id: &str) -> Result<Option<CertificatePrincipal>, String> {
    let id = id.to_owned();
    let d = match iot.describe_certificate().certificate_id(&id).send().await {
        Ok(out) => match out.certificate_description {
            Some(d) => d,
            None => return Ok(None),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(format!("DescribeCertificate: {e}")),
    };
    let arn = d.certificate_arn.unwrap_or_default();
    let attached = iot
        .list_attached_policies()
        .target(&arn)
        .send()
        .await
        .map_err(|e| format!("ListAttachedPolicies: {e}"))?;
    let mut policies = Vec::new();
    for p in attached.policies.unwrap_or_default() {
        let name = p.policy_name.unwrap_or_default();
        let doc = iot
            .get_policy()
            .policy_name(&name)
            .send()
            .await
            .map_err(|e| format!("GetPolicy {name}: {e}"))?;
        policies.push(doc.policy_document.unwrap_or_default());
    }
    let things = iot
        .list_principal_things()
        .principal(&arn)
        .send()
        .await
        .map_err(|e| format!("ListPrincipalThings: {e}"))?
        .things
        .unwrap_or_default();
    Ok(Some(CertificatePrincipal {
        certificate_id: id,
        status: d.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        arn,
        policies,
        things,
        ca_certificate_id: d.ca_certificate_id,
    }))
}

impl CertificatePrincipal {
    /// The policy context of a connection with `client_id`: the thing of that name, if attached to
    /// this certificate, resolves the thing policy variables (as on AWS).
    pub fn context(&self, client_id: &str, region: &str, account: &str) -> ConnectionContext {
        let attached = self.things.iter().any(|t| t == client_id);
        ConnectionContext::device(client_id, attached)
            .in_account(region, account)
            .with_certificate_id(&self.certificate_id)
    }

    /// The attached policies, parsed. A document the engine refuses grants nothing.
    pub fn policy_set(&self) -> PolicySet {
        let docs: Vec<&str> = self.policies.iter().map(String::as_str).collect();
        PolicySet::parse(&docs).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "attached policy not usable: nothing granted");
            PolicySet::from_documents(Vec::new())
        })
    }
}
