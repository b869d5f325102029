//! The contract suites of `fleetguard-testkit` over the DynamoDB adapters, against the emulator:
//! the same assertions the in-memory fakes pass (`shared/testkit/tests/contracts.rs`).

use fleetguard_aws::dynamodb::{DynamoAudit, DynamoRegistry};
use fleetguard_aws::enrollments::DynamoEnrollments;
use fleetguard_aws::identities::DynamoIdentityStore;
use fleetguard_aws::iot::IotControlAdapter;
use fleetguard_aws::iot_data::IotPublisher;
use fleetguard_aws::records::DynamoRecords;
use fleetguard_aws::rotations::DynamoRotations;
use fleetguard_domain::authorization::authorizer::{Identity, IdentityStore};
use fleetguard_domain::model::CertificateId;
use fleetguard_testkit::contract::{
    audit_contract, enrollments_contract, identity_store_contract, iot_contract, records_contract,
    registry_contract, rotations_contract, IotWorld, World,
};
use fleetguard_tests::Stack;
use std::sync::atomic::{AtomicU64, Ordering};

struct DynamoWorld {
    registry: DynamoRegistry,
    records: DynamoRecords,
    audit: DynamoAudit,
    identities: DynamoIdentityStore,
    enrollments: DynamoEnrollments,
    rotations: DynamoRotations,
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
            enrollments: stack.services.enrollments(),
            rotations: stack.services.rotations(),
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
    type Enrollments = DynamoEnrollments;
    type Rotations = DynamoRotations;

    fn registry(&self) -> &DynamoRegistry {
        &self.registry
    }
    fn enrollments(&self) -> &DynamoEnrollments {
        &self.enrollments
    }
    fn rotations(&self) -> &DynamoRotations {
        &self.rotations
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

#[tokio::test]
async fn enrollments() {
    enrollments_contract(&DynamoWorld::new().await).await;
}

#[tokio::test]
async fn rotations() {
    rotations_contract(&DynamoWorld::new().await).await;
}

/// AWS IoT on the emulator, observed through the SDK.
struct AwsIotWorld {
    stack: Stack,
    iot: IotControlAdapter,
    data: IotPublisher,
    next: AtomicU64,
}

impl IotWorld for AwsIotWorld {
    type Iot = IotControlAdapter;
    type Publisher = IotPublisher;
    type Connections = IotPublisher;

    fn iot(&self) -> &IotControlAdapter {
        &self.iot
    }
    fn publisher(&self) -> &IotPublisher {
        &self.data
    }
    fn connections(&self) -> &IotPublisher {
        &self.data
    }
    async fn register_ca(&self, pem: &str) -> CertificateId {
        CertificateId::parse(&self.stack.register_ca_pem(pem).await).expect("id")
    }
    async fn register_certificate(&self, pem: &str, ca_pem: &str) -> CertificateId {
        CertificateId::parse(&self.stack.register_pending(pem, ca_pem).await).expect("id")
    }
    async fn create_policy(&self, name: &str) {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
        fleetguard_aws::local::ensure_policy(&self.stack.iot, name, doc)
            .await
            .expect("create policy");
    }
    async fn thing_principals(&self, thing: &str) -> Vec<String> {
        self.stack.thing_principals(thing).await
    }
    async fn attached_policies(&self, cert_arn: &str) -> Vec<String> {
        self.stack.principal_policies(cert_arn).await
    }
    async fn group_members(&self, group: &str) -> Vec<String> {
        self.stack.group_members(group).await
    }
    fn unique(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}{}",
            self.stack
                .prefix
                .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
            self.next.fetch_add(1, Ordering::SeqCst)
        )
    }
}

#[tokio::test]
async fn iot() {
    let stack = Stack::new().await;
    let world = AwsIotWorld {
        iot: stack.services.iot(),
        data: stack.services.iot_data(),
        stack,
        next: AtomicU64::new(1),
    };
    iot_contract(&world).await;
}
