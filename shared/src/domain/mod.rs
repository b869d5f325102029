//! Domain types: validated identifiers, device lifecycle, audit entries and reason codes.

mod audit;
mod device;
mod ids;
mod principal;
mod record;

pub use audit::{AuditEntry, Outcome, Reason};
pub use device::{
    CertificateRecord, CertificateStatus, Device, DeviceStatus, Enrollment, ProofKind,
};
pub use ids::{CertificateId, RecordId, Serial, ValidationError};
pub use principal::Principal;
pub use record::Record;

/// The current time (UTC).
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Current time, RFC 3339 with nanoseconds (sortable as text, as every timestamp we store).
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
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
