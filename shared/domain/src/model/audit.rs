//! Audit entries and the stable reason codes every decision carries (in the audit table and the logs).

use serde::{Deserialize, Serialize};

/// What a decision came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Rejected,
    /// Nothing to do: the requested state already holds (replays land here).
    Noop,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Noop => "noop",
            Self::Error => "error",
        }
    }
}

macro_rules! reasons {
    ($($variant:ident => $code:literal),+ $(,)?) => {
        /// Stable reason codes. The text form is an interface: dashboards and alarms match on it, so a
        /// code is never renamed, only added.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Reason { $($variant),+ }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $code),+ }
            }
            /// The reason with this code, if any.
            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $($code => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

reasons! {
    // provisioning
    Provisioned => "provisioned",
    AlreadyProvisioned => "already_provisioned",
    MalformedEvent => "malformed_event",
    CertificateNotFound => "certificate_not_found",
    CertificateNotPending => "certificate_not_pending",
    MalformedCertificate => "malformed_certificate",
    CertificateIdMismatch => "certificate_id_mismatch",
    CaUnknown => "ca_unknown",
    CaInactive => "ca_inactive",
    NotSignedByCa => "not_signed_by_ca",
    CertificateExpired => "certificate_expired",
    CertificateNotYetValid => "certificate_not_yet_valid",
    SerialMissing => "serial_missing",
    InvalidSerial => "invalid_serial",
    SerialMismatch => "serial_mismatch",
    SerialNotAllowed => "serial_not_allowed",
    SerialBoundToOtherCertificate => "serial_bound_to_other_certificate",
    CertificateRevoked => "certificate_revoked",
    SerialRevoked => "serial_revoked",
    DeviceQuarantined => "device_quarantined",
    RegistryConflict => "registry_conflict",
    Imported => "imported",
    // fleet provisioning by claim (pre-provisioning hook)
    ProofMissing => "proof_missing",
    MalformedProof => "malformed_proof",
    ProofInvalid => "proof_invalid",
    ProofReplayed => "proof_replayed",
    ProofExpired => "proof_expired",
    ProofKindMismatch => "proof_kind_mismatch",
    NoEnrollmentProof => "no_enrollment_proof",
    ClaimNotAllowed => "claim_not_allowed",
    // delete-record and restore
    Deleted => "deleted",
    AlreadyDeleted => "already_deleted",
    NotFound => "not_found",
    InvalidTopic => "invalid_topic",
    InvalidPayload => "invalid_payload",
    UnknownPrincipal => "unknown_principal",
    PrincipalMismatch => "principal_mismatch",
    DeviceNotActive => "device_not_active",
    OperatorNotActive => "operator_not_active",
    SerialNotGranted => "serial_not_granted",
    Restored => "restored",
    NotDeleted => "not_deleted",
    RecordBusy => "record_busy",
    // revocation
    Revoked => "revoked",
    Quarantined => "quarantined",
    Released => "released",
    RevokedIsFinal => "revoked_is_final",
    NotQuarantined => "not_quarantined",
    UnknownDevice => "unknown_device",
    DefenderInAlarm => "defender_in_alarm",
    DefenderAlarmCleared => "defender_alarm_cleared",
    TamperReported => "tamper_reported",
    SecurityViolation => "security_violation",
    BelowThreshold => "below_threshold",
    // a signal whose reported decision is not in the audit log (forged, or not delete-record's)
    UnverifiedSignal => "unverified_signal",
    ReplacementApproved => "replacement_approved",
    NotCurrentCertificate => "not_current_certificate",
    NothingToRollBack => "nothing_to_roll_back",
    // certificate rotation
    MalformedCsr => "malformed_csr",
    CsrSignatureInvalid => "csr_signature_invalid",
    CsrKeyNotAllowed => "csr_key_not_allowed",
    CsrKeyReused => "csr_key_reused",
    CertificateIssued => "certificate_issued",
    RotationConfirmed => "rotation_confirmed",
    RotationInFlight => "rotation_in_flight",
    RotationRateLimited => "rotation_rate_limited",
    RotationNotDue => "rotation_not_due",
    RotationRequested => "rotation_requested",
    NoRotation => "no_rotation",
    RotationExpired => "rotation_expired",
    CertificateRetired => "certificate_retired",
    // expiry watch
    CertificateExpiring => "certificate_expiring",
    CaExpiring => "ca_expiring",
    // TLS handshake (custom client certificate validation)
    HandshakeAllowed => "handshake_allowed",
    FirstConnect => "first_connect",
    CertificateHeld => "certificate_held",
    // custom authorizer
    Authorized => "authorized",
    MalformedToken => "malformed_token",
    UnsupportedAlgorithm => "unsupported_algorithm",
    UnknownKey => "unknown_key",
    // the JWKS from a URL is past its max age without a successful refresh: no token is trusted
    KeysStale => "keys_stale",
    BadSignature => "bad_signature",
    WrongIssuer => "wrong_issuer",
    WrongAudience => "wrong_audience",
    TokenExpired => "token_expired",
    TokenNotYetValid => "token_not_yet_valid",
    TokenExpiring => "token_expiring",
    MalformedRequest => "malformed_request",
    WildcardInjection => "wildcard_injection",
    ClientIdMismatch => "client_id_mismatch",
    UnknownIdentity => "unknown_identity",
    IdentityDisabled => "identity_disabled",
    BadPassword => "bad_password",
    PasswordBurst => "password_burst",
    SerialShared => "serial_shared",
    PresenceNoted => "presence_noted",
    WeakSecret => "weak_secret",
    PolicyTooLarge => "policy_too_large",
    OperatorAdded => "operator_added",
    OperatorDisabled => "operator_disabled",
    PasswordSet => "password_set",
    PasswordActivated => "password_activated",
    HasCertificate => "has_certificate",
    // shared
    InternalError => "internal_error",
    Timeout => "timeout",
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! actions {
    ($($variant:ident => $code:literal),+ $(,)?) => {
        /// What an audit entry decided on. Like [`Reason`], a closed set whose text form is an interface
        /// (the audit table's `action`, the logs, `fleetctl audit`): never renamed, only added.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum AuditAction { $($variant),+ }

        impl AuditAction {
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $code),+ }
            }
            /// The action with this code, if any.
            pub fn from_code(code: &str) -> Option<AuditAction> {
                match code { $($code => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

actions! {
    // provisioning
    Provision => "provision",
    PreProvision => "pre_provision",
    Import => "import",
    // authorization
    Handshake => "handshake",
    Authorize => "authorize",
    PasswordBurst => "password_burst",
    OperatorAdd => "operator_add",
    SetPassword => "set_password",
    ActivatePassword => "activate_password",
    // records
    DeleteRecord => "delete_record",
    RestoreRecord => "restore_record",
    // lifecycle: isolation and its signals
    Revoke => "revoke",
    Quarantine => "quarantine",
    Release => "release",
    Rollback => "rollback",
    Revocation => "revocation",
    TamperReport => "tamper_report",
    SecurityViolation => "security_violation",
    DefenderViolation => "defender_violation",
    Presence => "presence",
    ApproveReplacement => "approve_replacement",
    // lifecycle: rotation and expiry
    RequestRotation => "request_rotation",
    RotateCertificate => "rotate_certificate",
    ConfirmRotation => "confirm_rotation",
    RotationSweep => "rotation_sweep",
    ExpiryWatch => "expiry_watch",
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tests and tools compare an entry's action with its code (`e.action == "revoke"`).
impl PartialEq<&str> for AuditAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One decision, as written to the audit table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// RFC 3339 UTC, nanoseconds (text order is time order).
    pub at: super::Timestamp,
    /// Who acted: a function name (`provisioner`), an operator id, or a device principal.
    pub actor: String,
    /// The connection principal the decision is about (certificate id or authorizer principal), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The device serial concerned, if known and valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The action decided on.
    pub action: AuditAction,
    pub outcome: Outcome,
    pub reason: Reason,
    /// The record concerned (delete-record, restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// Short human-readable detail; never a token, password, key or whole certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Idempotency key: an entry with the same `at` and key is written once, so a replayed message does
    /// not duplicate its audit entry. Not stored as an attribute of its own.
    #[serde(skip)]
    pub dedupe: Option<String>,
}

impl AuditEntry {
    pub fn new(actor: &str, action: AuditAction, outcome: Outcome, reason: Reason) -> Self {
        Self {
            at: super::Timestamp::now(),
            actor: actor.to_owned(),
            principal: None,
            serial: None,
            action,
            outcome,
            reason,
            record_id: None,
            detail: None,
            dedupe: None,
        }
    }
    pub fn principal(mut self, p: impl Into<String>) -> Self {
        self.principal = Some(p.into());
        self
    }
    pub fn serial(mut self, s: impl Into<String>) -> Self {
        self.serial = Some(s.into());
        self
    }
    pub fn record(mut self, r: impl Into<String>) -> Self {
        self.record_id = Some(r.into());
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        // Bounded so a hostile input cannot bloat the audit item.
        self.detail = Some(truncate_utf8(&d.into(), MAX_DETAIL_BYTES).to_owned());
        self
    }

    /// The decision's log line: the entry's own fields, so the logs and the audit table always say
    /// the same thing. Refusals and errors at warn (with the detail), the rest at info.
    pub fn log(&self) {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        let (principal, serial, record_id) = (
            dash(&self.principal),
            dash(&self.serial),
            dash(&self.record_id),
        );
        let (action, outcome, reason, actor) = (
            self.action.as_str(),
            self.outcome.as_str(),
            self.reason.as_str(),
            &self.actor,
        );
        match self.outcome {
            Outcome::Accepted | Outcome::Noop => tracing::info!(
                action, outcome, reason, actor, principal, serial, record_id, "decision"
            ),
            Outcome::Rejected | Outcome::Error => tracing::warn!(
                action,
                outcome,
                reason,
                actor,
                principal,
                serial,
                record_id,
                detail = self.detail.as_deref().unwrap_or(""),
                "decision"
            ),
        }
    }
}

/// Longest `detail` kept in an audit entry, bytes.
pub const MAX_DETAIL_BYTES: usize = 512;

/// `s` cut to at most `max` bytes on a character boundary (the one truncation helper: details,
/// topics and messages from hostile input all go through it).
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code is snake_case and unique, and serde writes exactly it: the audit table, the logs
    /// and the replies carry one text.
    fn assert_codes<T: Serialize + Copy>(all: &[T], code: fn(T) -> &'static str) {
        let mut seen = std::collections::HashSet::new();
        for t in all {
            let c = code(*t);
            assert!(
                c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c}"
            );
            assert!(seen.insert(c), "duplicate {c}");
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(c));
        }
    }

    #[test]
    fn reason_and_action_codes_are_snake_case_unique_and_serde_agrees() {
        assert_codes(Reason::ALL, Reason::as_str);
        assert_codes(AuditAction::ALL, AuditAction::as_str);
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::from_code(a.as_str()), Some(*a));
        }
    }

    #[test]
    fn detail_is_bounded() {
        let e = AuditEntry::new(
            "t",
            AuditAction::Authorize,
            Outcome::Rejected,
            Reason::MalformedEvent,
        )
        .detail("é".repeat(600));
        assert!(e.detail.unwrap().len() <= 512);
    }
}
