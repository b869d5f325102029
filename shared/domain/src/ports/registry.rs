//! The device registry: allow-list, device states, certificate bindings, deny-list, and the
//! custom-authorizer principals it holds.

use super::*;

/// The device registry (DynamoDB): allow-list, device states, certificate bindings, deny-list.
pub trait Registry: Send + Sync {
    fn get_device(&self, serial: &Serial) -> impl Future<Output = Result<Option<Device>>> + Send;

    fn get_certificate(
        &self,
        id: &CertificateId,
    ) -> impl Future<Output = Result<Option<CertificateRecord>>> + Send;

    /// Adds a serial without enrollment material to the allow-list (JITR and password devices).
    fn import_serial(&self, serial: &Serial) -> impl Future<Output = Result<bool>> + Send {
        let device = Device::manufactured(serial.clone(), Enrollment::default(), Timestamp::now());
        async move { self.import_device(&device).await }
    }

    /// Adds a device to the allow-list (status `manufactured`) with its enrollment material, unless the
    /// serial already exists. Returns whether it was added.
    fn import_device(&self, device: &Device) -> impl Future<Output = Result<bool>> + Send;

    /// Atomically binds `cert` to `serial` and marks the device active, the binding confirmed, with
    /// `facts` (its expiry and key) if read, else none (never the previous certificate's).
    /// Conditional: the device exists and is `manufactured`, or already active with this certificate,
    /// or has a replacement approved, or (with `replaces`) is still bound, pending, to that stale
    /// certificate, which is then denied in the same transaction; the certificate is not denied and not
    /// bound to another serial. A failed condition is `Error::Aws { kind: ConditionFailed, .. }`.
    fn bind_certificate(
        &self,
        serial: &Serial,
        cert: &CertificateId,
        replaces: Option<&CertificateId>,
        facts: Option<&crate::model::CertificateFacts>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Marks a pending binding confirmed: its certificate was seen ACTIVE. No-op if the serial is
    /// bound to another certificate by now.
    fn confirm_binding(
        &self,
        serial: &Serial,
        cert: &CertificateId,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Records `session` as the device's live one, only while the device has a replaced certificate
    /// in its grace period and only if no newer session (higher `version`) is recorded. Not a
    /// version-counted change: it is a hint the presence events keep, and must not make rotation's
    /// conditional writes lose. Returns whether it was written.
    fn note_session(
        &self,
        serial: &Serial,
        session: &crate::model::LiveSession,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Forgets the live session if it is still `session` (it ended).
    fn end_session(
        &self,
        serial: &Serial,
        session: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Moves a device to `to` if its status is one of `from`. Returns whether it changed.
    fn transition(
        &self,
        serial: &Serial,
        from: &[DeviceStatus],
        to: DeviceStatus,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Puts a certificate on the deny-list (idempotent). Provisioning and the authorizer refuse it forever.
    fn deny_certificate(
        &self,
        cert: &CertificateId,
        serial: &Serial,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Holds (`true`) or lets go (`false`) a certificate while its device is quarantined: the handshake
    /// validator refuses a held certificate. Idempotent.
    fn hold_certificate(
        &self,
        cert: &CertificateId,
        serial: &Serial,
        held: bool,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Lets a revoked serial be provisioned once more with a new certificate. False if not revoked.
    fn approve_replacement(&self, serial: &Serial) -> impl Future<Output = Result<bool>> + Send;

    /// A custom-authorizer principal (item `PRINCIPAL#<id>`): an operator or a password device.
    fn get_principal(
        &self,
        id: &PrincipalId,
    ) -> impl Future<Output = Result<Option<AuthorizerPrincipal>>> + Send;

    /// Moves an operator to `to` if its status is one of `from`. Returns whether it changed.
    fn set_operator_status(
        &self,
        id: &PrincipalId,
        from: &[OperatorStatus],
        to: OperatorStatus,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// What the registry says about a custom-authorizer principal (item `PRINCIPAL#<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizerPrincipal {
    Operator {
        name: String,
        active: bool,
        status: OperatorStatus,
        serials: Vec<Serial>,
    },
    Device {
        serial: Serial,
    },
}

impl From<&crate::authorization::authorizer::Identity> for AuthorizerPrincipal {
    /// The registry's one identity model, as delete-record and revocation see it.
    fn from(identity: &crate::authorization::authorizer::Identity) -> Self {
        use crate::authorization::authorizer::IdentityKind;
        match &identity.kind {
            IdentityKind::Operator {
                operator_id,
                serials,
                status,
            } => Self::Operator {
                name: operator_id.clone(),
                active: *status == OperatorStatus::Active,
                status: *status,
                serials: serials.clone(),
            },
            IdentityKind::Device { serial, .. } => Self::Device {
                serial: serial.clone(),
            },
        }
    }
}
