//! Undoing what a compromised principal did: the identities a serial has had, the window, and the
//! restores.

use super::*;
use crate::model::{AuditAction, IdentityKindTag};

impl<R, C, N, D, A> Revoker<R, C, N, D, A>
where
    R: Registry,
    C: IotControl,
    N: Connections,
    D: Records,
    A: AuditLog,
{
    /// Every identity `serial` has had, `current` first: the certificates and the password principal
    /// its audit trail shows acting as it (provisioned, rotated to, deleting its records), never an
    /// operator, never another serial's certificate (a refused cross-serial attempt is not accepted).
    pub(super) async fn identities(
        &self,
        serial: &Serial,
        current: &Principal,
    ) -> Result<Vec<Principal>> {
        let mut out = vec![current.clone()];
        for e in self.audit.for_serial(serial.as_str(), usize::MAX).await? {
            let Some(Ok(p)) = e.principal.as_deref().map(Principal::parse) else {
                continue;
            };
            let device = match &p {
                Principal::Certificate(_) => true,
                Principal::Authorizer(id) => id.kind() == IdentityKindTag::Device,
            };
            if device && e.outcome == Outcome::Accepted && !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish_rollback(
        &self,
        mut report: Report,
        cmd: &Command,
        principals: &[Principal],
        serials: Vec<Serial>,
        audit_serial: Option<&Serial>,
        since: Option<OffsetDateTime>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Report> {
        // A refused command (e.g. releasing a revoked device) rolls nothing back.
        if cmd.rollback && cmd.action != Action::Release && report.outcome != Outcome::Rejected {
            let done = self
                .rollback(principals, &serials, audit_serial, since, actor, now)
                .await?;
            report.restored = done.restored;
            report.rolled_back_since = Some(done.since);
            report.rollback = Some(done.reason);
        }
        Ok(report)
    }

    /// Restores every record soft-deleted by `principal` (a certificate, a password device or an
    /// operator) on `serials` at or after `since`; other principals' deletes are never touched.
    /// Default `since`: `rollback_lookback` before the first security signal recorded about the
    /// principal since it was last admitted (provisioned, released, enabled), or before now if there
    /// is none, and never before that admission: a false alarm released in January does not widen
    /// June's rollback.
    ///
    /// The candidates come from the records table, read consistently per serial, not from the audit
    /// log's by-principal index: that index is eventually consistent on AWS, and a delete committed
    /// just before the revoke must still be rolled back.
    pub(super) async fn rollback(
        &self,
        principals: &[Principal],
        serials: &[Serial],
        audit_serial: Option<&Serial>,
        since: Option<OffsetDateTime>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Rollback> {
        // The default window opens at the earliest signal against any of the identities.
        let since = match since {
            Some(s) => s,
            None => {
                let mut earliest = now;
                for p in principals {
                    earliest = earliest.min(self.default_since(p, now).await?);
                }
                earliest
            }
        };
        // The window start, formatted once for the reads, the detail and the report.
        let since_text = Timestamp::at(since);
        let mut restored = 0;
        let mut found = 0;
        let who = principals
            .iter()
            .map(Principal::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        // Collected first: a lazy flat_map held across the awaits would make the future's Send
        // bound depend on a closure lifetime the compiler cannot generalise.
        let pairs: Vec<(&Serial, &Principal)> = serials
            .iter()
            .flat_map(|s| principals.iter().map(move |p| (s, p)))
            .collect();
        for (serial, principal) in pairs {
            let deleted = self
                .records
                .deleted_by(serial, principal, &since_text)
                .await?;
            found += deleted.len();
            let batch: Vec<_> = deleted
                .into_iter()
                .map(|record| {
                    let entry = AuditEntry::new(
                        actor,
                        AuditAction::RestoreRecord,
                        Outcome::Accepted,
                        Reason::Restored,
                    )
                    .serial(record.serial.as_str())
                    .record(record.record_id.as_str())
                    .principal(principal.as_str())
                    .detail("rollback");
                    (record, entry)
                })
                .collect();
            restored += self
                .records
                .restore_deleted_by(&batch, actor, principal)
                .await?;
        }
        let (outcome, reason, detail) = if restored > 0 {
            (
                Outcome::Accepted,
                Reason::Restored,
                format!("restored {restored} record(s) deleted by {who} since {since_text}"),
            )
        } else if found > 0 {
            (
                Outcome::Noop,
                Reason::NothingToRollBack,
                format!("{found} delete(s) by {who} since {since_text} were restored by someone else meanwhile"),
            )
        } else {
            (
                Outcome::Noop,
                Reason::NothingToRollBack,
                format!("no record deleted by {who} since {since_text} is still deleted"),
            )
        };
        // Under the principal the command named (the serial's current one): its history shows it.
        let mut entry =
            AuditEntry::new(actor, AuditAction::Rollback, outcome, reason).detail(detail);
        if let Some(p) = principals.first() {
            entry = entry.principal(p.as_str());
        }
        if let Some(s) = audit_serial {
            entry = entry.serial(s.as_str());
        }
        crate::ports::record_decision(&self.audit, &entry).await?;
        Ok(Rollback {
            restored,
            since: since_text.to_string(),
            reason,
        })
    }

    /// The default start of a rollback window (see [`Self::rollback`]).
    pub(super) async fn default_since(
        &self,
        principal: &Principal,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime> {
        let history = self
            .audit
            .for_principal(principal, &Timestamp::at(OffsetDateTime::UNIX_EPOCH))
            .await?;
        let last = |reasons: &[Reason]| {
            history
                .iter()
                .filter(|e| e.outcome == Outcome::Accepted && reasons.contains(&e.reason))
                .map(|e| e.at.instant())
                .max()
        };
        // Signals count from the principal's last admission on.
        let admitted = last(&[
            Reason::Provisioned,
            Reason::Released,
            Reason::OperatorAdded,
            Reason::PasswordActivated,
        ]);
        let first_signal = history
            .iter()
            .filter(|e| {
                matches!(
                    e.reason,
                    Reason::SecurityViolation
                        | Reason::TamperReported
                        | Reason::DefenderInAlarm
                        | Reason::PrincipalMismatch
                )
            })
            .map(|e| e.at.instant())
            .filter(|t| admitted.is_none_or(|a| *t >= a))
            .min()
            .unwrap_or(now);
        let since = first_signal - self.config.rollback_lookback;
        // Never before a release: the principal was isolated until then, and what it did before its
        // isolation was judged when it was released. (Not clamped to a provisioning: the rules
        // engine's clock and ours may disagree by a little, and nothing precedes a first admission.)
        Ok(last(&[Reason::Released]).map_or(since, |r| since.max(r)))
    }
}
