//! Certificate-less devices that sign in with MQTT username = serial and a password, through the
//! custom authorizer: setting the password and making the device usable.
//!
//! A manufactured device never becomes usable by accident: storing a password leaves it as it is, and
//! only an explicit activation moves it from `manufactured` to `active`. Only a device without a
//! certificate and without claim-enrollment proof material can be a password device: a certificate
//! device signs in with its certificate, and a claim device must prove itself with its factory key or
//! one-time secret.

use crate::authorization::authorizer::{device_principal, Identity, IdentityKind, IdentityStore};
use crate::model::AuditAction;
use crate::model::{AuditEntry, DeviceStatus, Outcome, ProofKind, Reason, Serial};
use crate::ports::{AuditLog, Registry};
use crate::Result;

/// What setting a password came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordResult {
    /// The device is active: it can connect with this password now.
    Active,
    /// The hash is stored; the device keeps this status (not usable until activated or released).
    Stored { status: DeviceStatus },
    /// Nothing was written.
    Refused {
        reason: Reason,
        detail: &'static str,
    },
}

/// Stores `password_hash` (argon2id PHC) for `serial`; with `activate`, a `manufactured` device
/// becomes `active`. The password identity mirrors the registry's status (the registry's transitions
/// carry it along, so a later revoke or quarantine reaches it).
pub async fn set_password<R: Registry, S: IdentityStore, A: AuditLog>(
    registry: &R,
    store: &S,
    audit: &A,
    serial: &Serial,
    password_hash: String,
    activate: bool,
    actor: &str,
) -> Result<PasswordResult> {
    let refused = |reason, detail| Ok(PasswordResult::Refused { reason, detail });
    let Some(device) = registry.get_device(serial).await? else {
        return refused(
            Reason::UnknownDevice,
            "not in the registry (import it first)",
        );
    };
    if device.certificate_id.is_some() {
        return refused(
            Reason::HasCertificate,
            "the device has a certificate: it signs in with it",
        );
    }
    if device.enrollment.kind() != ProofKind::None {
        return refused(
            Reason::ProofKindMismatch,
            "the device is enrolled for claim provisioning: it must prove itself with its proof",
        );
    }
    if device.status == DeviceStatus::Revoked {
        return refused(Reason::RevokedIsFinal, "the device is revoked");
    }
    let mut identity = Identity::device(serial.clone(), password_hash);
    if let IdentityKind::Device { status, .. } = &mut identity.kind {
        *status = device.status;
    }
    // Conditional on the device as read: a revoke or a certificate that lands meanwhile wins.
    if !store.put_device_identity(&identity, device.status).await? {
        return refused(
            Reason::RegistryConflict,
            "the device changed meanwhile (revoked, isolated or given a certificate): look, then run again",
        );
    }
    let principal = device_principal(serial);
    let entry = AuditEntry::new(
        actor,
        AuditAction::SetPassword,
        Outcome::Accepted,
        Reason::PasswordSet,
    )
    .serial(serial.as_str())
    .principal(principal.as_str());
    crate::ports::record_decision(audit, &entry).await?;
    if !activate || device.status != DeviceStatus::Manufactured {
        let status = registry
            .get_device(serial)
            .await?
            .map_or(device.status, |d| d.status);
        return Ok(if status == DeviceStatus::Active {
            PasswordResult::Active
        } else {
            PasswordResult::Stored { status }
        });
    }
    // The registry's transition carries the new status to the password identity.
    registry
        .transition(serial, &[DeviceStatus::Manufactured], DeviceStatus::Active)
        .await?;
    let now = registry.get_device(serial).await?;
    match now {
        Some(d) if d.status == DeviceStatus::Active && d.certificate_id.is_none() => {
            let entry = AuditEntry::new(
                actor,
                AuditAction::ActivatePassword,
                Outcome::Accepted,
                Reason::PasswordActivated,
            )
            .serial(serial.as_str())
            .principal(principal.as_str());
            crate::ports::record_decision(audit, &entry).await?;
            Ok(PasswordResult::Active)
        }
        // Provisioned with a certificate meanwhile: its binding removed the password identity.
        Some(d) if d.certificate_id.is_some() => refused(
            Reason::HasCertificate,
            "a certificate was bound meanwhile: the device signs in with it",
        ),
        // Isolated meanwhile: the identity follows that status.
        Some(d) => Ok(PasswordResult::Stored { status: d.status }),
        None => refused(Reason::UnknownDevice, "removed from the registry meanwhile"),
    }
}
