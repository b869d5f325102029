//! The in-memory [`World`]: every fake sharing state as the tables do on AWS.

use crate::contract::{IotWorld, World};
use crate::fakes::{
    InMemoryAudit, InMemoryEnrollments, InMemoryIdentityStore, InMemoryIot, InMemoryRecords,
    InMemoryRegistry, InMemoryRotations, RecordingConnections, RecordingPublisher,
};
use fleetguard_domain::authorization::authorizer::{Identity, IdentityStore};
use fleetguard_domain::model::CertificateId;
use fleetguard_domain::ports::AuthorizerPrincipal;
use std::sync::atomic::{AtomicU64, Ordering};

/// The fakes, linked: records check entitlements in the registry and write their audit entries
/// to the audit log; identities are also registry principals.
pub struct FakeWorld {
    pub registry: InMemoryRegistry,
    pub records: InMemoryRecords,
    pub audit: InMemoryAudit,
    pub identities: InMemoryIdentityStore,
    pub enrollments: InMemoryEnrollments,
    pub rotations: InMemoryRotations,
    next: AtomicU64,
}

impl Default for FakeWorld {
    fn default() -> Self {
        let registry = InMemoryRegistry::default();
        let audit = InMemoryAudit::default();
        Self {
            records: InMemoryRecords::with_registry(audit.clone(), registry.clone()),
            enrollments: InMemoryEnrollments {
                registry: registry.clone(),
                audit: audit.clone(),
            },
            rotations: InMemoryRotations {
                registry: registry.clone(),
                audit: audit.clone(),
            },
            registry,
            audit,
            identities: InMemoryIdentityStore::new(),
            next: AtomicU64::new(1),
        }
    }
}

impl World for FakeWorld {
    type Registry = InMemoryRegistry;
    type Records = InMemoryRecords;
    type Audit = InMemoryAudit;
    type Identities = InMemoryIdentityStore;
    type Enrollments = InMemoryEnrollments;
    type Rotations = InMemoryRotations;

    fn registry(&self) -> &InMemoryRegistry {
        &self.registry
    }
    fn enrollments(&self) -> &InMemoryEnrollments {
        &self.enrollments
    }
    fn rotations(&self) -> &InMemoryRotations {
        &self.rotations
    }
    fn records(&self) -> &InMemoryRecords {
        &self.records
    }
    fn audit(&self) -> &InMemoryAudit {
        &self.audit
    }
    fn identities(&self) -> &InMemoryIdentityStore {
        &self.identities
    }
    async fn put_identity(&self, identity: &Identity) {
        self.identities
            .put_identity(identity)
            .await
            .expect("put identity");
        self.registry.put_principal(
            identity.principal_id.as_str(),
            AuthorizerPrincipal::from(identity),
        );
    }
    fn unique(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.next.fetch_add(1, Ordering::SeqCst))
    }
}

/// The in-memory AWS IoT control and data planes.
#[derive(Default)]
pub struct FakeIotWorld {
    pub iot: InMemoryIot,
    pub publisher: RecordingPublisher,
    pub connections: RecordingConnections,
    next: AtomicU64,
}

impl IotWorld for FakeIotWorld {
    type Iot = InMemoryIot;
    type Publisher = RecordingPublisher;
    type Connections = RecordingConnections;

    fn iot(&self) -> &InMemoryIot {
        &self.iot
    }
    fn publisher(&self) -> &RecordingPublisher {
        &self.publisher
    }
    fn connections(&self) -> &RecordingConnections {
        &self.connections
    }
    async fn register_ca(&self, pem: &str) -> CertificateId {
        self.iot.register_ca(pem).expect("CA")
    }
    async fn register_certificate(&self, pem: &str, _ca_pem: &str) -> CertificateId {
        self.iot.register_certificate(pem).expect("certificate")
    }
    async fn create_policy(&self, _name: &str) {}
    async fn thing_principals(&self, thing: &str) -> Vec<String> {
        self.iot.thing_principals(thing)
    }
    async fn attached_policies(&self, cert_arn: &str) -> Vec<String> {
        self.iot.attached_policies(cert_arn)
    }
    async fn group_members(&self, group: &str) -> Vec<String> {
        self.iot.group_members(group)
    }
    fn unique(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.next.fetch_add(1, Ordering::SeqCst))
    }
}
