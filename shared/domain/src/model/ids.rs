//! Validated identifiers. Each is parsed once at the edge; the rest of the code cannot hold an invalid one.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused. The messages never echo more than a bounded prefix of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("serial must match [A-Za-z0-9_-]{{1,64}}")]
    Serial,
    #[error("certificate id must be 64 lowercase hex characters")]
    CertificateId,
    #[error("record id must match [A-Za-z0-9_.-]{{1,128}}")]
    RecordId,
    #[error("principal must be a certificate id or a fleetguard authorizer principal")]
    Principal,
    #[error("time must be RFC 3339")]
    Timestamp,
}

fn all_chars(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, ValidationError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl std::str::FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, ValidationError> {
                Self::parse(s)
            }
        }
    };
}

/// A device serial: the thing name and the MQTT client id. The grammar excludes every character that
/// means something in an MQTT topic or an IoT policy (`/ + # * ? $ {`), so a serial can be placed in a
/// topic or a policy resource without widening it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Serial(String);

impl Serial {
    pub const MAX_LEN: usize = 64;
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if all_chars(s, Self::MAX_LEN, b"_-") {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::Serial)
        }
    }
}
string_newtype!(Serial);

/// An AWS IoT certificate id: SHA-256 of the certificate's DER encoding, 64 lowercase hex characters.
/// It is also what the rules engine's `principal()` returns for a certificate connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertificateId(String);

impl CertificateId {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::CertificateId)
        }
    }

    /// The id AWS IoT gives a certificate: SHA-256 over its DER bytes.
    pub fn of_der(der: &[u8]) -> Self {
        use sha2::Digest;
        Self(hex::encode(sha2::Sha256::digest(der)))
    }
}
string_newtype!(CertificateId);

/// A record's id within one serial (the records table's sort key). Bounded well under DynamoDB's
/// 1,024-byte sort-key limit and free of topic wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordId(String);

impl RecordId {
    pub const MAX_LEN: usize = 128;
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if all_chars(s, Self::MAX_LEN, b"_.-") && s != "." && s != ".." {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::RecordId)
        }
    }
}
string_newtype!(RecordId);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn serial_accepts_grammar() {
        for ok in ["SN1", "a", "A-b_9", &"x".repeat(64)] {
            assert!(Serial::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn serial_rejects_policy_and_topic_metacharacters() {
        for bad in [
            "",
            "SN/1",
            "SN+",
            "#",
            "SN*",
            "S?",
            "$aws",
            "${iot:ClientId}",
            "a b",
            "é",
            "SN.1",
            &"x".repeat(65),
        ] {
            assert_eq!(Serial::parse(bad), Err(ValidationError::Serial), "{bad:?}");
        }
    }

    #[test]
    fn certificate_id_is_lowercase_sha256_hex() {
        let id = CertificateId::of_der(b"abc");
        assert_eq!(
            id.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(CertificateId::parse(id.as_str()).is_ok());
        assert!(CertificateId::parse(&id.as_str().to_uppercase()).is_err());
        assert!(CertificateId::parse(&id.as_str()[1..]).is_err());
        assert!(CertificateId::parse("").is_err());
    }

    #[test]
    fn record_id_bounds() {
        assert!(RecordId::parse("rec-1.v2_x").is_ok());
        for bad in ["", ".", "..", "a/b", "+", "#", "*", &"r".repeat(129)] {
            assert!(RecordId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<Serial>("\"SN+1\"").is_err());
        assert_eq!(
            serde_json::from_str::<Serial>("\"SN1\"").unwrap().as_str(),
            "SN1"
        );
    }

    proptest! {
        #[test]
        fn serial_never_contains_metacharacters(s in ".{0,80}") {
            if let Ok(serial) = Serial::parse(&s) {
                let forbidden = ['/', '+', '#', '*', '?', '$', '{'];
                prop_assert!(!serial.as_str().contains(forbidden), "{}", serial);
            }
        }
    }
}
