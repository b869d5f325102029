//! Every use case wired to its AWS adapters, in one place. The Lambdas, `fleetctl` and the test
//! harness build their services here, so an adapter is constructed the same way everywhere and a
//! new port is wired once. Configuration comes from the environment, read once at cold start; the
//! SDK clients are built once and cloned (cheap: they share one connection pool).

use crate::dynamodb::{DynamoAudit, DynamoRegistry};
use crate::enrollments::DynamoEnrollments;
use crate::identities::DynamoIdentityStore;
use crate::iot::IotControlAdapter;
use crate::iot_data::IotPublisher;
use crate::kms::KmsSigner;
use crate::records::DynamoRecords;
use crate::rotations::DynamoRotations;
use crate::settings::Common;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use fleetguard_domain::authorization::handshake::{HandshakeConfig, HandshakeValidator};
use fleetguard_domain::config::{ProvisioningConfig, Tables};
use fleetguard_domain::lifecycle::revocation::{RevocationConfig, Revoker};
use fleetguard_domain::lifecycle::rotation::{RotationConfig, RotationService, RotationSweep};
use fleetguard_domain::model::CertificateId;
use fleetguard_domain::ports::IotControl;
use fleetguard_domain::provisioning::claim::ClaimHook;
use fleetguard_domain::provisioning::jitr::Provisioner;
use fleetguard_domain::records::delete::DeleteRecordService;
use fleetguard_domain::{Error, Result};

/// The revoker over AWS.
pub type AwsRevoker =
    Revoker<DynamoRegistry, IotControlAdapter, IotPublisher, DynamoRecords, DynamoAudit>;
/// Just-in-time provisioning over AWS.
pub type AwsProvisioner = Provisioner<DynamoRegistry, IotControlAdapter, DynamoAudit>;
/// The pre-provisioning hook over AWS.
pub type AwsClaimHook = ClaimHook<DynamoEnrollments, IotControlAdapter, DynamoAudit>;
/// Delete-record over AWS.
pub type AwsDeleteRecord = DeleteRecordService<DynamoRecords, DynamoAudit, IotPublisher>;
/// The TLS handshake validator over AWS.
pub type AwsHandshakeValidator = HandshakeValidator<DynamoRegistry, IotControlAdapter, DynamoAudit>;

/// Certificate rotation over AWS (the CA key in KMS).
pub type AwsRotation = RotationService<
    DynamoRegistry,
    DynamoRotations,
    IotControlAdapter,
    KmsSigner,
    IotPublisher,
    DynamoAudit,
>;
/// The rotation sweep over AWS.
pub type AwsRotationSweep =
    RotationSweep<DynamoRegistry, DynamoRotations, IotControlAdapter, DynamoAudit>;

pub use crate::settings::DEFAULT_AUDIT_RETENTION_DAYS;

/// Audit retention of entries written by operators through fleetctl: kept forever (no TTL).
pub const KEEP_FOREVER: u32 = 0;

/// The AWS side of fleetguard: one SDK configuration, one client per service, the table names.
#[derive(Clone, Debug)]
pub struct Services {
    pub sdk: SdkConfig,
    pub ddb: Client,
    pub tables: Tables,
    /// Days an audit entry is kept (DynamoDB TTL); 0 ([`KEEP_FOREVER`]) keeps it forever.
    pub audit_retention_days: u32,
    iot: IotControlAdapter,
    iot_data: IotPublisher,
}

impl Services {
    /// A function's services: its settings (read at cold start) and the AWS configuration (region,
    /// credentials, `AWS_ENDPOINT_URL`). No AWS call.
    pub async fn connect(common: &Common) -> Self {
        let mut services = Self::new(
            crate::sdk_config().await,
            common.tables.clone(),
            common.audit_retention_days,
        );
        if let Some(endpoint) = &common.iot_data_endpoint {
            services.iot_data = IotPublisher::with_endpoint(&services.sdk, Some(endpoint));
        }
        services
    }

    pub fn new(sdk: SdkConfig, tables: Tables, audit_retention_days: u32) -> Self {
        Self {
            ddb: Client::new(&sdk),
            iot: IotControlAdapter::new(&sdk),
            iot_data: IotPublisher::new(&sdk),
            sdk,
            tables,
            audit_retention_days,
        }
    }

    pub fn registry(&self) -> DynamoRegistry {
        DynamoRegistry::new(self.ddb.clone(), &self.tables.registry)
    }

    pub fn audit(&self) -> DynamoAudit {
        DynamoAudit::new(
            self.ddb.clone(),
            &self.tables.audit,
            self.audit_retention_days,
        )
    }

    pub fn records(&self) -> DynamoRecords {
        DynamoRecords::new(
            self.ddb.clone(),
            &self.tables.records,
            &self.tables.registry,
            self.audit(),
        )
    }

    pub fn identities(&self) -> DynamoIdentityStore {
        DynamoIdentityStore::new(self.ddb.clone(), &self.tables.registry)
    }

    pub fn enrollments(&self) -> DynamoEnrollments {
        DynamoEnrollments::new(self.registry(), self.audit())
    }

    pub fn iot(&self) -> IotControlAdapter {
        self.iot.clone()
    }

    /// The IoT data plane: replies, security events, and DeleteConnection.
    pub fn iot_data(&self) -> IotPublisher {
        self.iot_data.clone()
    }

    pub fn revoker(&self, config: RevocationConfig) -> AwsRevoker {
        Revoker {
            registry: self.registry(),
            control: self.iot(),
            connections: self.iot_data(),
            records: self.records(),
            audit: self.audit(),
            config,
        }
    }

    pub fn provisioner(&self, config: ProvisioningConfig) -> AwsProvisioner {
        Provisioner::new(
            self.registry(),
            self.iot(),
            self.audit(),
            config.fleet_policy,
            config.refused_status,
        )
        .with_ca_cache(config.ca_cache)
        .with_quarantine_group(config.quarantine_group)
        .with_trusted_cas(config.trusted_cas)
    }

    pub fn claim_hook(&self, proof_window_secs: i64) -> AwsClaimHook {
        ClaimHook::new(
            self.enrollments(),
            self.iot(),
            self.audit(),
            proof_window_secs,
        )
    }

    pub fn delete_record(&self, security_topic: impl Into<String>) -> AwsDeleteRecord {
        DeleteRecordService {
            records: self.records(),
            audit: self.audit(),
            publisher: self.iot_data(),
            security_topic: security_topic.into(),
        }
    }

    pub fn rotations(&self) -> DynamoRotations {
        DynamoRotations::new(self.registry(), self.audit())
    }

    /// The fleet CA's KMS key (reads its public key).
    pub async fn kms_signer(&self, key_id: &str) -> Result<KmsSigner> {
        KmsSigner::new(crate::kms::client(&self.sdk), key_id).await
    }

    /// Rotation: the CA key `key_id` in KMS, and the CA certificate `ca_id` as registered with AWS IoT
    /// (read once: its PEM is what issued certificates chain to).
    pub async fn rotation(
        &self,
        config: RotationConfig,
        key_id: &str,
        ca_id: &str,
    ) -> Result<AwsRotation> {
        let ca_id = CertificateId::parse(ca_id)
            .map_err(|e| Error::Config(format!("FLEETGUARD_CA_CERTIFICATE_ID: {e}")))?;
        let ca = self
            .iot()
            .describe_ca_certificate(&ca_id)
            .await?
            .ok_or_else(|| Error::Config(format!("CA certificate {ca_id} is not registered")))?;
        Ok(RotationService {
            registry: self.registry(),
            rotations: self.rotations(),
            control: self.iot(),
            signer: self.kms_signer(key_id).await?,
            publisher: self.iot_data(),
            audit: self.audit(),
            config,
            ca_pem: ca.pem,
        })
    }

    pub fn rotation_sweep(&self, fleet_policy: impl Into<String>) -> AwsRotationSweep {
        RotationSweep {
            registry: self.registry(),
            rotations: self.rotations(),
            control: self.iot(),
            audit: self.audit(),
            fleet_policy: fleet_policy.into(),
        }
    }

    pub fn handshake_validator(&self, config: HandshakeConfig) -> AwsHandshakeValidator {
        HandshakeValidator::new(self.registry(), self.iot(), self.audit(), config)
    }
}
