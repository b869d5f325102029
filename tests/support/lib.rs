//! Test harness: starts the project's AWS emulator (moto in server mode, `scripts/emulator.py`) on
//! 127.0.0.1, builds real AWS SDK clients against it, creates isolated stacks (unique table and policy
//! names per test, so tests run in parallel without resets), and generates test CAs and device
//! certificates at run time (no key is ever committed).

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use fleetguard_aws::dynamodb::{self, DynamoAudit, DynamoRegistry};
use fleetguard_aws::iot::IotControlAdapter;
use fleetguard_aws::iot_data::IotPublisher;
use fleetguard_aws::records::DynamoRecords;
use fleetguard_aws::services::{
    AwsClaimHook, AwsDeleteRecord, AwsProvisioner, AwsRevoker, Services,
};
use fleetguard_aws::template::{local_access_key, LocalStack, LOCAL_SECRET};
use fleetguard_domain::config::{ProvisioningConfig, Tables};
use fleetguard_domain::model::{CertificateId, CertificateStatus, Record, RecordId, Serial};
use fleetguard_domain::ports::{Records, Registry};
use rcgen::KeyPair;
pub mod gateway;
pub mod gateway_story;
pub mod local_lambda;
pub mod story;

mod claim;
mod emulator;
mod events;
mod fleet;
mod idp;
pub mod iot_view;
mod rules;
mod stack;
pub use claim::*;
pub use emulator::*;
pub use events::*;
pub use fleet::*;
pub use idp::*;
pub use rules::*;
pub use stack::*;

use base64::Engine as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

pub const REGION: &str = "us-east-1";

/// Root of the workspace.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub use fleetguard_testkit::pki::TestCa;
/// The MQTT client the gateway tests drive devices with.
pub use rumqttc;
