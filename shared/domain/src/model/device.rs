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
    pub updated_at: super::Timestamp,
    #[serde(default)]
    pub version: u64,
    /// The binding was made by the pre-provisioning hook and its certificate has not yet been seen
    /// ACTIVE: if it never becomes active, the serial can be provisioned again with a fresh proof.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binding_pending: bool,
    /// Fleet provisioning by claim: how the device proves who it is, and what it has used (a map
    /// attribute `enrollment`; absent for devices without proof material).
    #[serde(default, skip_serializing_if = "Enrollment::is_empty")]
    pub enrollment: Enrollment,
    /// SHA-256 (hex) of the current certificate's SubjectPublicKeyInfo, once fleetguard issued it (a
    /// rotation then proves a new key without describing the old certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_key_sha256: Option<String>,
    /// When the current certificate expires (RFC 3339), if fleetguard knows it: the expiry watch's
    /// index (`by_expiry`: `expiry_month` / `certificate_not_after`) holds only these devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_not_after: Option<super::Timestamp>,
    /// `YYYY-MM` of `certificate_not_after`: the expiry index's partition, so a watch reads only the
    /// months inside its window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_month: Option<String>,
    /// A rotation in flight: its certificate is issued and ACTIVE, not yet proven by the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// The certificate a confirmed rotation replaced: still ACTIVE until `retire_at` (grace period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_certificate_id: Option<CertificateId>,
    /// During a grace period only: the newest session AWS IoT's presence events showed for this
    /// client id (see [`crate::lifecycle::revocation`]: two certificates of the serial taking the session from
    /// each other means two parties hold it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_session: Option<LiveSession>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<super::Timestamp>,
    /// When the last rotation was requested (the per-device rate limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_at: Option<super::Timestamp>,
    /// The earliest pending rotation deadline (an unconfirmed rotation's expiry or a retirement):
    /// the sweep's sparse index (`by_deadline`: `deadline_kind` / `deadline`) holds only these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<super::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_kind: Option<String>,
    /// When an operator asked this device to rotate (`fleetctl devices request-rotation`): its next
    /// rotation is due whatever its certificate's expiry. Cleared when a certificate is issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_requested_at: Option<super::Timestamp>,
}

/// What the registry keeps of a device's current certificate once fleetguard has read it: its expiry
/// (RFC 3339; the expiry watch's index) and the SHA-256 (hex) of its SubjectPublicKeyInfo (a rotation
/// must change the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub not_after: super::Timestamp,
    pub key_sha256: String,
}

/// A certificate rotation in flight: issued, registered ACTIVE, waiting for the device to prove it
/// holds the new key (a confirm sent over a connection made with the new certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub next_certificate_id: CertificateId,
    /// The issued certificate (public; kept so a replayed request gets the same certificate back).
    pub certificate_pem: String,
    /// SHA-256 (hex) of the CSR's DER: the same request again is a replay, not a new rotation.
    pub request_sha256: String,
    pub key_sha256: String,
    pub not_after: super::Timestamp,
    pub requested_at: super::Timestamp,
    /// Unconfirmed by then: the new certificate is deactivated and the old one stays.
    pub expires_at: super::Timestamp,
    /// Asked for by the replaced certificate in its grace period (a device that lost its new key,
    /// with an operator's request): this current certificate is cut off when the rotation is
    /// confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuts_off: Option<CertificateId>,
}

/// One MQTT session of a device's certificate, from AWS IoT's presence events
/// (developerguide/life-cycle-events.html): `versionNumber` orders the sessions of a client id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSession {
    pub certificate_id: CertificateId,
    pub session: String,
    pub version: u64,
    /// AWS IoT ended it because another connection took the client id (`DUPLICATE_CLIENTID`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub taken_over: bool,
}

/// The deadline kind every pending rotation deadline carries (the sparse index's one partition:
/// only devices mid-rotation are in it, a handful at any time).
pub const ROTATION_DEADLINE: &str = "rotation";

impl Device {
    /// A new allow-list entry.
    pub fn manufactured(serial: Serial, enrollment: Enrollment, now: super::Timestamp) -> Self {
        Self {
            serial,
            status: DeviceStatus::Manufactured,
            certificate_id: None,
            replacement_approved: false,
            updated_at: now,
            version: 1,
            binding_pending: false,
            enrollment,
            certificate_key_sha256: None,
            certificate_not_after: None,
            expiry_month: None,
            rotation: None,
            previous_certificate_id: None,
            live_session: None,
            retire_at: None,
            last_rotation_at: None,
            deadline: None,
            deadline_kind: None,
            rotation_requested_at: None,
        }
    }

    /// Records the current certificate's expiry (and its index month).
    pub fn set_certificate_not_after(&mut self, not_after: &super::Timestamp) {
        self.certificate_not_after = Some(not_after.clone());
        self.expiry_month = Some(not_after.as_str().chars().take(7).collect());
    }

    /// Records what fleetguard read of the current certificate, or forgets it (a certificate it did
    /// not read must not inherit its predecessor's expiry or key).
    pub fn set_certificate_facts(&mut self, facts: Option<&CertificateFacts>) {
        match facts {
            Some(f) => {
                self.set_certificate_not_after(&f.not_after);
                self.certificate_key_sha256 = Some(f.key_sha256.clone());
            }
            None => {
                self.certificate_not_after = None;
                self.expiry_month = None;
                self.certificate_key_sha256 = None;
            }
        }
    }

    /// Forgets the previous binding's rotation state (a new binding starts with none).
    pub fn clear_rotation_state(&mut self) {
        self.rotation = None;
        self.previous_certificate_id = None;
        self.live_session = None;
        self.retire_at = None;
        self.deadline = None;
        self.deadline_kind = None;
    }

    /// Recomputes the sweep's deadline from the rotation in flight and the pending retirement.
    pub fn refresh_deadline(&mut self) {
        let candidates = [
            self.rotation.as_ref().map(|r| r.expires_at.clone()),
            self.retire_at.clone(),
        ];
        self.deadline = candidates.into_iter().flatten().min();
        self.deadline_kind = self.deadline.as_ref().map(|_| ROTATION_DEADLINE.to_owned());
    }

    /// Every certificate of the device that may still be usable: the current one, a rotation's next
    /// one, and a replaced one in its grace period. An isolation cuts them all off.
    pub fn certificates(&self) -> Vec<&CertificateId> {
        let mut all: Vec<&CertificateId> = self.certificate_id.iter().collect();
        all.extend(self.rotation.as_ref().map(|r| &r.next_certificate_id));
        all.extend(self.previous_certificate_id.as_ref());
        all
    }
}

/// A device's enrollment material for fleet provisioning by claim (from manufacturing), and what of it
/// has been spent. Never a secret: the one-time secret is kept only as its SHA-256.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// Factory attestation public key (P-256), base64 of its SubjectPublicKeyInfo DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_key: Option<String>,
    /// SHA-256 (hex) of the one-time enrollment secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    /// The certificate the one-time secret was spent on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_used_by: Option<CertificateId>,
    /// Timestamp (Unix seconds) of the last accepted factory-key statement: only newer ones are fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_last_ts: Option<i64>,
    /// Claim certificates allowed to provision this device (its batch's); empty: any claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<CertificateId>,
}

/// Which kind of proof an allow-list entry expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    FactoryKey,
    OneTimeSecret,
    None,
}

impl Enrollment {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn kind(&self) -> ProofKind {
        match (&self.attestation_key, &self.secret_sha256) {
            (Some(_), _) => ProofKind::FactoryKey,
            (None, Some(_)) => ProofKind::OneTimeSecret,
            (None, None) => ProofKind::None,
        }
    }

    /// Whether the proof was spent (a secret consumed, or a factory statement accepted).
    pub fn used(&self) -> bool {
        self.secret_used_by.is_some() || self.proof_last_ts.is_some()
    }
}

/// A certificate the registry has seen. `denied` puts it on the deny-list that provisioning and the
/// authorizer consult: a denied certificate is never accepted again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub certificate_id: CertificateId,
    pub serial: Serial,
    #[serde(default)]
    pub denied: bool,
    /// Held while its device is quarantined: the handshake validator refuses it (reversible, unlike
    /// `denied`).
    #[serde(default)]
    pub held: bool,
    pub updated_at: super::Timestamp,
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

impl std::fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
