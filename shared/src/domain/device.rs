//! A device's lifecycle in the registry, and the certificate → serial binding.

use super::{CertificateId, Serial};
use serde::{Deserialize, Serialize};

/// Where a device stands. `Manufactured` is the allow-list: the serial was imported from manufacturing
/// and may be provisioned once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Manufactured,
    Active,
    Quarantined,
    Revoked,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manufactured => "manufactured",
            Self::Active => "active",
            Self::Quarantined => "quarantined",
            Self::Revoked => "revoked",
        }
    }
}

/// A device as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub serial: Serial,
    pub status: DeviceStatus,
    /// The certificate currently bound to the serial, once provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<CertificateId>,
    /// An operator approved one replacement certificate for a revoked serial.
    #[serde(default)]
    pub replacement_approved: bool,
    pub updated_at: String,
    #[serde(default)]
    pub version: u64,
}

/// A certificate the registry has seen. `denied` puts it on the deny-list that provisioning and the
/// authorizer consult: a denied certificate is never accepted again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub certificate_id: CertificateId,
    pub serial: Serial,
    #[serde(default)]
    pub denied: bool,
    pub updated_at: String,
}

/// AWS IoT certificate status, as the control plane reports and sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
    PendingActivation,
    PendingTransfer,
    RegisterInactive,
    Unknown,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
            Self::PendingActivation => "PENDING_ACTIVATION",
            Self::PendingTransfer => "PENDING_TRANSFER",
            Self::RegisterInactive => "REGISTER_INACTIVE",
            Self::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "ACTIVE" => Self::Active,
            "INACTIVE" => Self::Inactive,
            "REVOKED" => Self::Revoked,
            "PENDING_ACTIVATION" => Self::PendingActivation,
            "PENDING_TRANSFER" => Self::PendingTransfer,
            "REGISTER_INACTIVE" => Self::RegisterInactive,
            _ => Self::Unknown,
        }
    }
}
