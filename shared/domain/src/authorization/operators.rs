//! Operators: humans (or operator services) who sign in over MQTT with a JWT from the IdP. Adding
//! one writes its identity and audits it; disabling, enabling and revoking are revocation actions
//! on its principal ([`crate::lifecycle::revocation`]).

use crate::authorization::authorizer::{
    Identity, IdentityKind, IdentityStore, OperatorStatus, PrincipalId,
};
use crate::model::AuditAction;
use crate::model::{AuditEntry, Outcome, Reason};
use crate::ports::{AuditLog, AuthorizerPrincipal, Registry};
use crate::Result;

/// What adding an operator came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOperator {
    /// Written (new, or its serials replaced): it signs in with this principal id as client id.
    Added { principal_id: PrincipalId },
    /// It exists and is disabled or revoked: updating its serials must never quietly undo that, so
    /// nothing was written (re-enrol deliberately to mean it).
    NotReEnabled { status: OperatorStatus },
}

/// Adds (or replaces) an operator. An existing disabled or revoked operator is re-enabled only with
/// `re_enrol` (e.g. after their IdP account was recovered).
pub async fn add_operator<R, S, A>(
    registry: &R,
    store: &S,
    audit: &A,
    identity: Identity,
    re_enrol: bool,
    actor: &str,
) -> Result<AddOperator>
where
    R: Registry,
    S: IdentityStore,
    A: AuditLog,
{
    let pid = identity.principal_id.clone();
    if let Some(AuthorizerPrincipal::Operator { status, .. }) = registry.get_principal(&pid).await?
    {
        if status != OperatorStatus::Active && !re_enrol {
            return Ok(AddOperator::NotReEnabled { status });
        }
    }
    let name = match &identity.kind {
        IdentityKind::Operator { operator_id, .. } => operator_id.clone(),
        IdentityKind::Device { .. } => {
            return Err(crate::Error::Config(
                "add_operator takes an operator identity".into(),
            ))
        }
    };
    // Unless the operator meant to re-enrol: conditional on the identity still being active (or
    // absent), so a disable or revoke landing after the read above is never undone.
    if re_enrol {
        store.put_identity(&identity).await?;
    } else if !store.put_identity_unless_inactive(&identity).await? {
        let status = match registry.get_principal(&pid).await? {
            Some(AuthorizerPrincipal::Operator { status, .. }) => status,
            _ => OperatorStatus::Disabled,
        };
        return Ok(AddOperator::NotReEnabled { status });
    }
    let entry = AuditEntry::new(
        actor,
        AuditAction::OperatorAdd,
        Outcome::Accepted,
        Reason::OperatorAdded,
    )
    .principal(pid.as_str())
    .detail(format!("name={name}"));
    crate::ports::record_decision(audit, &entry).await?;
    Ok(AddOperator::Added { principal_id: pid })
}
