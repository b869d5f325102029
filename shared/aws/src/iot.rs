//! AWS IoT control plane adapter ([`IotControl`]).

use super::aws_error;
use aws_sdk_iot::types::CertificateStatus as SdkStatus;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use fleetguard_domain::model::{CertificateId, CertificateStatus, Serial};
use fleetguard_domain::ports::{IotCertificate, IotControl};
use fleetguard_domain::{Error, Result};

#[derive(Clone, Debug)]
pub struct IotControlAdapter {
    client: aws_sdk_iot::Client,
}

impl IotControlAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_iot::Client::new(config),
        }
    }

    pub fn client(&self) -> &aws_sdk_iot::Client {
        &self.client
    }
}

fn is_not_found<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ResourceNotFoundException")
}

fn to_sdk_status(s: CertificateStatus) -> Result<SdkStatus> {
    Ok(match s {
        CertificateStatus::Active => SdkStatus::Active,
        CertificateStatus::Inactive => SdkStatus::Inactive,
        CertificateStatus::Revoked => SdkStatus::Revoked,
        // PENDING_* cannot be set by UpdateCertificate on AWS (API_UpdateCertificate).
        other => {
            return Err(Error::Config(format!(
                "certificate status {} cannot be set",
                other.as_str()
            )))
        }
    })
}

fn describe(
    id: &CertificateId,
    arn: Option<&str>,
    status: Option<&str>,
    pem: Option<&str>,
) -> Result<IotCertificate> {
    Ok(IotCertificate {
        id: id.clone(),
        arn: arn
            .ok_or_else(|| Error::Corrupt("certificate without ARN".into()))?
            .to_owned(),
        status: CertificateStatus::parse(status.unwrap_or("")),
        pem: pem
            .ok_or_else(|| Error::Corrupt("certificate without PEM".into()))?
            .to_owned(),
    })
}

impl IotControl for IotControlAdapter {
    async fn describe_certificate(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        match self
            .client
            .describe_certificate()
            .certificate_id(id.as_str())
            .send()
            .await
        {
            Ok(out) => {
                let d = out
                    .certificate_description
                    .ok_or_else(|| Error::Corrupt("empty DescribeCertificate".into()))?;
                describe(
                    id,
                    d.certificate_arn(),
                    d.status().map(|s| s.as_str()),
                    d.certificate_pem(),
                )
                .map(Some)
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(aws_error("iot:DescribeCertificate", e)),
        }
    }

    async fn describe_ca_certificate(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        match self
            .client
            .describe_ca_certificate()
            .certificate_id(id.as_str())
            .send()
            .await
        {
            Ok(out) => {
                let d = out
                    .certificate_description
                    .ok_or_else(|| Error::Corrupt("empty DescribeCACertificate".into()))?;
                describe(
                    id,
                    d.certificate_arn(),
                    d.status().map(|s| s.as_str()),
                    d.certificate_pem(),
                )
                .map(Some)
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(aws_error("iot:DescribeCACertificate", e)),
        }
    }

    async fn ensure_thing(&self, name: &Serial) -> Result<()> {
        // One call: CreateThing with the same name and configuration returns the existing thing, and a
        // thing an operator has since given attributes answers ResourceAlreadyExists (API_CreateThing).
        match self
            .client
            .create_thing()
            .thing_name(name.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(()),
            Err(e) => Err(aws_error("iot:CreateThing", e)),
        }
    }

    async fn attach_policy(&self, policy: &str, cert_arn: &str) -> Result<()> {
        self.client
            .attach_policy()
            .policy_name(policy)
            .target(cert_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iot:AttachPolicy", e))
    }

    async fn attach_thing_principal(&self, thing: &Serial, cert_arn: &str) -> Result<()> {
        self.client
            .attach_thing_principal()
            .thing_name(thing.as_str())
            .principal(cert_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iot:AttachThingPrincipal", e))
    }

    async fn detach_policy(&self, policy: &str, cert_arn: &str) -> Result<()> {
        match self
            .client
            .detach_policy()
            .policy_name(policy)
            .target(cert_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(aws_error("iot:DetachPolicy", e)),
        }
    }

    async fn detach_thing_principal(&self, thing: &Serial, cert_arn: &str) -> Result<()> {
        match self
            .client
            .detach_thing_principal()
            .thing_name(thing.as_str())
            .principal(cert_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(aws_error("iot:DetachThingPrincipal", e)),
        }
    }

    async fn register_certificate(
        &self,
        pem: &str,
        ca_pem: Option<&str>,
        status: CertificateStatus,
    ) -> Result<(IotCertificate, bool)> {
        let id = fleetguard_domain::x509::pem_to_der(pem)
            .map(|der| CertificateId::of_der(&der))
            .map_err(|e| Error::Config(e.detail))?;
        match self
            .client
            .register_certificate()
            .certificate_pem(pem)
            .set_ca_certificate_pem(ca_pem.map(str::to_owned))
            .status(to_sdk_status(status)?)
            .send()
            .await
        {
            Ok(out) => Ok((
                describe(&id, out.certificate_arn(), Some(status.as_str()), Some(pem))?,
                true,
            )),
            // Registered already: a replay, or an isolation that came first. Its status stands.
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {
                match self.describe_certificate(&id).await? {
                    Some(c) => Ok((c, false)),
                    None => Err(Error::aws(
                        "iot:RegisterCertificate",
                        fleetguard_domain::error::AwsErrorKind::Other,
                        "exists, yet DescribeCertificate finds nothing",
                    )),
                }
            }
            Err(e) => Err(aws_error("iot:RegisterCertificate", e)),
        }
    }

    async fn ca_certificates(&self) -> Result<Vec<IotCertificate>> {
        let mut ids = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .client
                .list_ca_certificates()
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| aws_error("iot:ListCACertificates", e))?;
            for c in out.certificates() {
                if let Some(id) = c
                    .certificate_id()
                    .and_then(|i| CertificateId::parse(i).ok())
                {
                    ids.push(id);
                }
            }
            marker = out
                .next_marker()
                .filter(|m| !m.is_empty())
                .map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        let mut cas = Vec::new();
        for id in ids {
            cas.extend(self.describe_ca_certificate(&id).await?);
        }
        Ok(cas)
    }

    async fn set_group_membership(&self, group: &str, thing: &Serial, member: bool) -> Result<()> {
        // Look up before create: creating an existing group fails on the emulator where AWS returns it.
        match self
            .client
            .describe_thing_group()
            .thing_group_name(group)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) && !member => return Ok(()),
            Err(e) if is_not_found(&e) => match self
                .client
                .create_thing_group()
                .thing_group_name(group)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {}
                Err(e) => return Err(aws_error("iot:CreateThingGroup", e)),
            },
            Err(e) => return Err(aws_error("iot:DescribeThingGroup", e)),
        }
        if member {
            return self
                .client
                .add_thing_to_thing_group()
                .thing_group_name(group)
                .thing_name(thing.as_str())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("iot:AddThingToThingGroup", e));
        }
        match self
            .client
            .remove_thing_from_thing_group()
            .thing_group_name(group)
            .thing_name(thing.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(aws_error("iot:RemoveThingFromThingGroup", e)),
        }
    }

    async fn set_certificate_status(
        &self,
        id: &CertificateId,
        status: CertificateStatus,
    ) -> Result<()> {
        self.client
            .update_certificate()
            .certificate_id(id.as_str())
            .new_status(to_sdk_status(status)?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iot:UpdateCertificate", e))
    }
}

impl IotControlAdapter {
    /// Registers a CA certificate ACTIVE, proving possession of its key with `verification_pem`
    /// (CN = the account's registration code). Auto-registration stays off: the rotator registers
    /// what this CA issues, and an issued certificate that was never registered must not reach JITR
    /// by connecting. Returns its id.
    pub async fn register_ca_certificate(
        &self,
        pem: &str,
        verification_pem: &str,
    ) -> Result<CertificateId> {
        let out = self
            .client
            .register_ca_certificate()
            .ca_certificate(pem)
            .verification_certificate(verification_pem)
            .set_as_active(true)
            .allow_auto_registration(false)
            .send()
            .await
            .map_err(|e| aws_error("iot:RegisterCACertificate", e))?;
        out.certificate_id()
            .and_then(|id| CertificateId::parse(id).ok())
            .ok_or_else(|| Error::Corrupt("RegisterCACertificate returned no id".into()))
    }

    /// The account's CA registration code (the CN a verification certificate must carry).
    pub async fn registration_code(&self) -> Result<String> {
        self.client
            .get_registration_code()
            .send()
            .await
            .map_err(|e| aws_error("iot:GetRegistrationCode", e))?
            .registration_code
            .ok_or_else(|| Error::Corrupt("GetRegistrationCode returned no code".into()))
    }
}
