//! The in-memory [`World`]: every fake sharing state as the tables do on AWS.

use crate::contract::World;
use crate::fakes::{InMemoryAudit, InMemoryIdentityStore, InMemoryRecords, InMemoryRegistry};
use fleetguard_domain::authorizer::{Identity, IdentityStore};
use fleetguard_domain::ports::AuthorizerPrincipal;
use std::sync::atomic::{AtomicU64, Ordering};

/// The fakes, linked: records check entitlements in the registry and write their audit entries
/// to the audit log; identities are also registry principals.
pub struct FakeWorld {
    pub registry: InMemoryRegistry,
    pub records: InMemoryRecords,
    pub audit: InMemoryAudit,
    pub identities: InMemoryIdentityStore,
    next: AtomicU64,
}

impl Default for FakeWorld {
    fn default() -> Self {
        let registry = InMemoryRegistry::default();
        let audit = InMemoryAudit::default();
        Self {
            records: InMemoryRecords::with_registry(audit.clone(), registry.clone()),
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

    fn registry(&self) -> &InMemoryRegistry {
        &self.registry
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
