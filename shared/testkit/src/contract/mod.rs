//! Contract suites: one per port, run against the in-memory fake (`shared/testkit/tests/`) and
//! against the DynamoDB adapter on the emulator (`tests/contracts.rs`). The same assertions on both
//! sides keep the fakes honest: a fake that drifts from what the adapter (and so AWS) does fails
//! here, not in a use-case test that trusted it.
//!
//! A [`World`] is one port set sharing state, as the tables do on AWS: the registry, the records
//! (whose entitlement checks read the registry), the audit log (which the records' transactions
//! write to) and the authorizer's identity store (whose items the registry reads as principals).

use fleetguard_domain::authorization::authorizer::{
    Identity, IdentityKind, IdentityStore, OperatorStatus, PrincipalId,
};
use fleetguard_domain::model::{
    AuditEntry, CertificateId, DeviceStatus, Outcome, Principal, Reason, Record, RecordId, Serial,
};
use fleetguard_domain::model::{CertificateStatus, Enrollment};
use fleetguard_domain::ports::{
    AuditLog, AuthorizerPrincipal, Connections, Enrollments, Entitlement, IotControl,
    PendingBinding, PrincipalFacts, ProofSpend, Publisher, Records, Registry, RestoreResult,
    Rotations, SoftDelete, SoftDeleteResult,
};
use fleetguard_domain::provisioning::enrollment::secret_hash;
use std::future::Future;

mod audit;
mod enrollments;
mod identities;
mod iot;
mod records;
mod registry;
mod rotations;

pub use audit::audit_contract;
pub use enrollments::enrollments_contract;
pub use identities::identity_store_contract;
pub use iot::iot_contract;
pub use records::records_contract;
pub use registry::registry_contract;
pub use rotations::rotations_contract;

/// One set of ports sharing state.
pub trait World: Send + Sync {
    type Registry: Registry;
    type Records: Records;
    type Audit: AuditLog;
    type Identities: IdentityStore;
    type Enrollments: Enrollments;
    type Rotations: Rotations;
    fn registry(&self) -> &Self::Registry;
    /// The registry as rotation uses it (same table).
    fn rotations(&self) -> &Self::Rotations;
    /// The registry as the pre-provisioning hook uses it (same table).
    fn enrollments(&self) -> &Self::Enrollments;
    fn records(&self) -> &Self::Records;
    fn audit(&self) -> &Self::Audit;
    fn identities(&self) -> &Self::Identities;
    /// Stores an authorizer identity where both the authorizer and the registry read it (one item
    /// on AWS).
    fn put_identity(&self, identity: &Identity) -> impl Future<Output = ()> + Send;
    /// A name no other case of this run uses (worlds may share one emulator).
    fn unique(&self, prefix: &str) -> String;
}

fn serial<W: World>(w: &W) -> Serial {
    Serial::parse(&w.unique("SN")).expect("serial")
}

/// A certificate id no other case uses: SHA-256 of a fresh name.
fn cert_id<W: World>(w: &W) -> CertificateId {
    CertificateId::parse(&secret_hash(w.unique("cert").as_bytes())).expect("certificate id")
}

async fn manufactured<W: World>(w: &W) -> Serial {
    let s = serial(w);
    assert!(w.registry().import_serial(&s).await.expect("import"));
    s
}

async fn active<W: World>(w: &W) -> (Serial, CertificateId) {
    let s = manufactured(w).await;
    let c = cert_id(w);
    w.registry()
        .bind_certificate(&s, &c, None, None)
        .await
        .expect("bind");
    (s, c)
}

fn operator(w: &impl World, serials: Vec<Serial>, status: OperatorStatus) -> Identity {
    let mut identity = Identity::operator(
        "https://idp.example.com/",
        &w.unique("sub"),
        "contract-operator",
        serials,
    );
    if let IdentityKind::Operator { status: s, .. } = &mut identity.kind {
        *s = status;
    }
    identity
}

/// The AWS IoT control plane as the functions use it, with what the world can observe of it.
pub trait IotWorld: Send + Sync {
    type Iot: IotControl;
    type Publisher: Publisher;
    type Connections: Connections;
    fn iot(&self) -> &Self::Iot;
    fn publisher(&self) -> &Self::Publisher;
    fn connections(&self) -> &Self::Connections;
    /// Registers a CA, ACTIVE with auto-registration.
    fn register_ca(&self, pem: &str) -> impl Future<Output = CertificateId> + Send;
    /// Registers a device certificate PENDING_ACTIVATION, as auto-registration does.
    fn register_certificate(
        &self,
        pem: &str,
        ca_pem: &str,
    ) -> impl Future<Output = CertificateId> + Send;
    /// Creates an IoT policy (the template's job on AWS; attaching needs it to exist there).
    fn create_policy(&self, name: &str) -> impl Future<Output = ()> + Send;
    fn thing_principals(&self, thing: &str) -> impl Future<Output = Vec<String>> + Send;
    fn attached_policies(&self, cert_arn: &str) -> impl Future<Output = Vec<String>> + Send;
    fn group_members(&self, group: &str) -> impl Future<Output = Vec<String>> + Send;
    fn unique(&self, prefix: &str) -> String;
}
