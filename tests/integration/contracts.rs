//! The contract suites of `fleetguard-testkit` over the DynamoDB and AWS IoT adapters, against the
//! emulator: one test per clause (`contracts::registry::import_is_conditional`), from the same list
//! the in-memory fakes run (`shared/testkit/tests/contracts.rs`).
//!
//! One stack (tables, policies, roles) serves every clause of this test binary: it is created once,
//! on a runtime of its own, and each test builds its own SDK clients for its tables inside its own
//! runtime (a client must not outlive the runtime that made it). Clauses never collide on it: every
//! name comes from [`World::unique`] / [`IotWorld::unique`], unique across the process.

use fleetguard_aws::dynamodb::{DynamoAudit, DynamoRegistry};
use fleetguard_aws::enrollments::DynamoEnrollments;
use fleetguard_aws::identities::DynamoIdentityStore;
use fleetguard_aws::iot::IotControlAdapter;
use fleetguard_aws::iot_data::IotPublisher;
use fleetguard_aws::records::DynamoRecords;
use fleetguard_aws::rotations::DynamoRotations;
use fleetguard_aws::services::Services;
use fleetguard_domain::authorization::authorizer::{Identity, IdentityStore};
use fleetguard_domain::config::Tables;
use fleetguard_domain::model::CertificateId;
use fleetguard_testkit::contract::{IotWorld, World};
use fleetguard_tests::iot_view;
use fleetguard_tests::{Emulator, Stack};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fleetguard_testkit::contract_tests!(
    world: DynamoWorld::new().await,
    iot_world: AwsIotWorld::new().await,
);

/// The contract stack's names: its tables, and its prefix for unique names.
struct Shared {
    tables: Tables,
    prefix: String,
}

/// The contract stack, created by the first test that asks (the others wait for it).
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        // Its own thread and runtime: a test's runtime cannot block on another inside it, and the
        // stack's clients die with this runtime (only the names are kept).
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async {
                    let stack = Stack::new().await;
                    Shared {
                        tables: stack.tables.clone(),
                        prefix: stack
                            .prefix
                            .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
                    }
                })
        })
        .join()
        .expect("the contract stack")
    })
}

/// This test's clients for the contract stack (no AWS call: the tables exist).
async fn services() -> Services {
    let sdk = Emulator::shared().sdk_config().await;
    Services::new(sdk, shared().tables.clone(), 30)
}

/// A name no other clause of this process uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{prefix}{}{}",
        shared().prefix,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

struct DynamoWorld {
    registry: DynamoRegistry,
    records: DynamoRecords,
    audit: DynamoAudit,
    identities: DynamoIdentityStore,
    enrollments: DynamoEnrollments,
    rotations: DynamoRotations,
}

impl DynamoWorld {
    async fn new() -> Self {
        let services = services().await;
        Self {
            registry: services.registry(),
            records: services.records(),
            audit: services.audit(),
            identities: services.identities(),
            enrollments: services.enrollments(),
            rotations: services.rotations(),
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
        unique(prefix)
    }
}

/// AWS IoT on the emulator, observed through the SDK (with the deployer's credentials, as the
/// stack's own helpers).
struct AwsIotWorld {
    sdk: aws_sdk_iot::Client,
    iot: IotControlAdapter,
    data: IotPublisher,
}

impl AwsIotWorld {
    async fn new() -> Self {
        let services = services().await;
        Self {
            sdk: aws_sdk_iot::Client::new(&services.sdk),
            iot: services.iot(),
            data: services.iot_data(),
        }
    }
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
        CertificateId::parse(&iot_view::register_ca(&self.sdk, pem).await).expect("id")
    }
    async fn register_certificate(&self, pem: &str, ca_pem: &str) -> CertificateId {
        let id = iot_view::register_pending(&self.sdk, pem, ca_pem).await;
        CertificateId::parse(&id).expect("id")
    }
    async fn create_policy(&self, name: &str) {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
        fleetguard_aws::local::ensure_policy(&self.sdk, name, doc)
            .await
            .expect("create policy");
    }
    async fn thing_principals(&self, thing: &str) -> Vec<String> {
        iot_view::thing_principals(&self.sdk, thing).await
    }
    async fn attached_policies(&self, cert_arn: &str) -> Vec<String> {
        iot_view::attached_policies(&self.sdk, cert_arn).await
    }
    async fn group_members(&self, group: &str) -> Vec<String> {
        iot_view::group_members(&self.sdk, group).await
    }
    fn unique(&self, prefix: &str) -> String {
        unique(prefix)
    }
}
