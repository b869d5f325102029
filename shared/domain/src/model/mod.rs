//! Domain types: validated identifiers, device lifecycle, audit entries and reason codes.

mod audit;
mod device;
mod ids;
mod principal;
mod record;
mod timestamp;

pub use audit::{truncate_utf8, AuditAction, AuditEntry, Outcome, Reason, MAX_DETAIL_BYTES};
pub use device::{
    CertificateFacts, CertificateRecord, CertificateStatus, Device, DeviceStatus, Enrollment,
    LiveSession, ProofKind, Rotation, ROTATION_DEADLINE,
};
pub use ids::{CertificateId, RecordId, Serial, ValidationError};
pub use principal::{IdentityKindTag, InvalidPrincipalId, Principal, PrincipalId};
pub use record::Record;
pub use timestamp::Timestamp;

/// The current time (UTC).
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Current time, RFC 3339 with nanoseconds (sortable as text, as every timestamp we store).
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// An event's own time (ms since the epoch, as AWS stamps events) as an audit time, so an entry keyed
/// by the event is the same entry however late or often it is delivered. Out of range: absent.
pub fn epoch_ms_timestamp(ms: i64) -> Option<Timestamp> {
    epoch_ms(ms).map(Timestamp::at)
}

/// A time in ms since the epoch; out of range (or not after the epoch): absent.
pub fn epoch_ms(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .filter(|_| ms > 0)
}

/// Formats a time as RFC 3339 UTC with a fixed number of fraction digits so text order is time order.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    // The format is fixed and valid for every UTC date AWS can represent.
    t.format(&fmt)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
