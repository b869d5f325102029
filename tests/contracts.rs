//! The contract suites of `fleetguard-testkit` over the DynamoDB adapters, against the emulator:
//! the same assertions the in-memory fakes pass (`shared/testkit/tests/contracts.rs`).

use fleetguard_aws::dynamodb::{DynamoAudit, DynamoRegistry};
use fleetguard_aws::identities::DynamoIdentityStore;
use fleetguard_aws::records::DynamoRecords;
use fleetguard_domain::authorizer::{Identity, IdentityStore};
use fleetguard_testkit::contract::{
    audit_contract, identity_store_contract, records_contract, registry_contract, World,
};
use fleetguard_tests::Stack;
use std::sync::atomic::{AtomicU64, Ordering};

struct DynamoWorld {
    registry: DynamoRegistry,
    records: DynamoRecords,
    audit: DynamoAudit,
    identities: DynamoIdentityStore,
    prefix: String,
    next: AtomicU64,
}

impl DynamoWorld {
    async fn new() -> Self {
        let stack = Stack::new().await;
        Self {
            registry: stack.services.registry(),
            records: stack.services.records(),
            audit: stack.services.audit(),
            identities: stack.services.identities(),
            prefix: stack
                .prefix
                .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
            next: AtomicU64::new(1),
        }
    }
}

impl World for DynamoWorld {
    type Registry = DynamoRegistry;
    type Records = DynamoRecords;
    type Audit = DynamoAudit;
    type Identities = DynamoIdentityStore;

    fn registry(&self) -> &DynamoRegistry {
        &self.registry
    }
    fn records(&self) -> &DynamoRecords {
        &self.records
    }
    fn audit(&self) -> &DynamoAudit {
        &self.audit
    }
    fn identities(&self) -> &DynamoIdentityStore {
        &self.identities
    }
    // One item: the registry reads the identity the store wrote.
    async fn put_identity(&self, identity: &Identity) {
        self.identities
            .put_identity(identity)
            .await
            .expect("put identity");
    }
    fn unique(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::SeqCst)
        )
    }
}

#[tokio::test]
async fn registry() {
    registry_contract(&DynamoWorld::new().await).await;
}

#[tokio::test]
async fn records() {
    records_contract(&DynamoWorld::new().await).await;
}

#[tokio::test]
async fn audit() {
    audit_contract(&DynamoWorld::new().await).await;
}

#[tokio::test]
async fn identity_store() {
    identity_store_contract(&DynamoWorld::new().await).await;
}
