//! Instants as fleetguard stores and compares them, parsed once where they enter.

use super::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// A UTC instant, held as its stored text: RFC 3339 with nine fraction digits and `Z`
/// (`2026-12-07T23:09:13.000000000Z`), so text order is time order in the tables' keys and
/// conditions. Any RFC 3339 text is accepted and normalised to that form; its instant is kept
/// beside it, so no use parses it again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp {
    // First, so the derived order is the text's, which is the instant's.
    text: String,
    at: OffsetDateTime,
}

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Self::at(OffsetDateTime::now_utc())
    }

    /// The instant `t`.
    pub fn at(t: OffsetDateTime) -> Self {
        let at = t.to_offset(time::UtcOffset::UTC);
        Self {
            text: super::rfc3339(at),
            at,
        }
    }

    /// Any RFC 3339 time.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(Self::at)
            .map_err(|_| ValidationError::Timestamp)
    }

    /// The Unix epoch: before every time fleetguard writes ("since the beginning").
    pub fn epoch() -> Self {
        Self::at(OffsetDateTime::UNIX_EPOCH)
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The instant.
    pub fn instant(&self) -> OffsetDateTime {
        self.at
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Self {
        Self::at(t)
    }
}

impl TryFrom<String> for Timestamp {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, ValidationError> {
        Self::parse(&s)
    }
}

impl From<&Timestamp> for String {
    fn from(t: &Timestamp) -> String {
        t.text.clone()
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_normalised_and_its_order_is_time_order() {
        let a = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(a.as_str(), "2026-01-01T00:00:00.000000000Z");
        let b = Timestamp::parse("2026-01-01T01:00:00.5+01:00").unwrap();
        assert_eq!(b.as_str(), "2026-01-01T00:00:00.500000000Z");
        assert!(a < b && a.as_str() < b.as_str());
        assert_eq!(Timestamp::parse(a.as_str()), Ok(a.clone()));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"2026-01-01T00:00:00.000000000Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), a);
        for bad in ["", "0", "yesterday", "2026-13-01T00:00:00Z"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
    }
}
