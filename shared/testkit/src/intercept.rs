//! An [`IotControl`] a test can cut into: before each call a [`Hook`] sees it and may run another
//! writer's whole action first (a lost race) or answer with an error (an injected fault). One
//! delegating wrapper, so a race or fault test states only where it cuts in.

use fleetguard_domain::model::{CertificateId, CertificateStatus, Serial};
use fleetguard_domain::ports::{IotCertificate, IotControl};
use fleetguard_domain::Result;
use std::future::Future;

/// One AWS IoT call, as a hook sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IotCall<'a> {
    DescribeCertificate(&'a CertificateId),
    DescribeCaCertificate(&'a CertificateId),
    EnsureThing(&'a Serial),
    AttachPolicy {
        policy: &'a str,
        cert_arn: &'a str,
    },
    AttachThingPrincipal {
        thing: &'a Serial,
        cert_arn: &'a str,
    },
    SetCertificateStatus {
        id: &'a CertificateId,
        status: CertificateStatus,
    },
    DetachPolicy {
        policy: &'a str,
        cert_arn: &'a str,
    },
    DetachThingPrincipal {
        thing: &'a Serial,
        cert_arn: &'a str,
    },
    RegisterCertificate {
        status: CertificateStatus,
    },
    CaCertificates,
    SetGroupMembership {
        group: &'a str,
        thing: &'a Serial,
        member: bool,
    },
}

/// Runs before every call: `Err` is the call's answer (nothing reaches AWS IoT), `Ok` lets it
/// through.
pub trait Hook: Send + Sync {
    fn before(&self, call: IotCall<'_>) -> impl Future<Output = Result<()>> + Send;
}

/// `inner` with `hook` cutting in before each call.
#[derive(Clone, Default)]
pub struct Intercepted<I, H> {
    pub inner: I,
    pub hook: H,
}

impl<I, H> Intercepted<I, H> {
    pub fn new(inner: I, hook: H) -> Self {
        Self { inner, hook }
    }
}

impl<I: IotControl, H: Hook> IotControl for Intercepted<I, H> {
    async fn describe_certificate(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        self.hook.before(IotCall::DescribeCertificate(id)).await?;
        self.inner.describe_certificate(id).await
    }
    async fn describe_ca_certificate(&self, id: &CertificateId) -> Result<Option<IotCertificate>> {
        self.hook.before(IotCall::DescribeCaCertificate(id)).await?;
        self.inner.describe_ca_certificate(id).await
    }
    async fn ensure_thing(&self, name: &Serial) -> Result<()> {
        self.hook.before(IotCall::EnsureThing(name)).await?;
        self.inner.ensure_thing(name).await
    }
    async fn attach_policy(&self, policy: &str, cert_arn: &str) -> Result<()> {
        let call = IotCall::AttachPolicy { policy, cert_arn };
        self.hook.before(call).await?;
        self.inner.attach_policy(policy, cert_arn).await
    }
    async fn attach_thing_principal(&self, thing: &Serial, cert_arn: &str) -> Result<()> {
        let call = IotCall::AttachThingPrincipal { thing, cert_arn };
        self.hook.before(call).await?;
        self.inner.attach_thing_principal(thing, cert_arn).await
    }
    async fn set_certificate_status(
        &self,
        id: &CertificateId,
        status: CertificateStatus,
    ) -> Result<()> {
        let call = IotCall::SetCertificateStatus { id, status };
        self.hook.before(call).await?;
        self.inner.set_certificate_status(id, status).await
    }
    async fn detach_policy(&self, policy: &str, cert_arn: &str) -> Result<()> {
        let call = IotCall::DetachPolicy { policy, cert_arn };
        self.hook.before(call).await?;
        self.inner.detach_policy(policy, cert_arn).await
    }
    async fn detach_thing_principal(&self, thing: &Serial, cert_arn: &str) -> Result<()> {
        let call = IotCall::DetachThingPrincipal { thing, cert_arn };
        self.hook.before(call).await?;
        self.inner.detach_thing_principal(thing, cert_arn).await
    }
    async fn register_certificate(
        &self,
        pem: &str,
        ca_pem: Option<&str>,
        status: CertificateStatus,
    ) -> Result<(IotCertificate, bool)> {
        self.hook
            .before(IotCall::RegisterCertificate { status })
            .await?;
        self.inner.register_certificate(pem, ca_pem, status).await
    }
    async fn ca_certificates(&self) -> Result<Vec<IotCertificate>> {
        self.hook.before(IotCall::CaCertificates).await?;
        self.inner.ca_certificates().await
    }
    async fn set_group_membership(&self, group: &str, thing: &Serial, member: bool) -> Result<()> {
        let call = IotCall::SetGroupMembership {
            group,
            thing,
            member,
        };
        self.hook.before(call).await?;
        self.inner.set_group_membership(group, thing, member).await
    }
}
