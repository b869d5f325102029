//! Who sent a message, as the rules engine's `principal()` reports it: one type, one grammar, parsed
//! once where a principal enters (a rule's event, a command, the registry's items).

use super::{CertificateId, ValidationError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why a principal id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a principal id is `op` or `dv` followed by 40 lowercase hex characters")]
pub struct InvalidPrincipalId;

/// A principal fleetguard's custom authorizer mints: `op` (an operator) or `dv` (a password
/// device) followed by 40 lowercase hex characters of a SHA-256 ([`PrincipalId::operator`],
/// [`PrincipalId::device`]). Within AWS's `[A-Za-z0-9]{1,128}`, and it is also the client id an
/// operator connects with and what `principal()` returns, so it never holds a character that means
/// something in a topic or a policy. Anything else is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrincipalId(String);

/// The two kinds of minted principal ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKindTag {
    Operator,
    Device,
}

impl PrincipalId {
    pub fn parse(s: &str) -> Result<Self, InvalidPrincipalId> {
        let minted = s.len() == 42
            && (s.starts_with("op") || s.starts_with("dv"))
            && s[2..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if minted {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidPrincipalId)
        }
    }

    /// An operator's: `op` + the first 40 hex characters of SHA-256(`issuer` + "\n" + `sub`).
    /// Deterministic, so a handler holding `principal()` finds the operator with one read; the
    /// issuer is part of it so two IdPs cannot collide on a `sub`.
    pub fn operator(issuer: &str, sub: &str) -> Self {
        let mut input = Vec::with_capacity(issuer.len() + sub.len() + 1);
        input.extend_from_slice(issuer.as_bytes());
        input.push(b'\n');
        input.extend_from_slice(sub.as_bytes());
        Self::derived("op", &input)
    }

    /// A password device's: `dv` + the first 40 hex characters of SHA-256(serial).
    pub fn device(serial: &super::Serial) -> Self {
        Self::derived("dv", serial.as_str().as_bytes())
    }

    fn derived(prefix: &str, input: &[u8]) -> Self {
        let digest = hex::encode(Sha256::digest(input));
        Self(format!("{prefix}{}", &digest[..40]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Which kind of identity the id was minted for.
    pub fn kind(&self) -> IdentityKindTag {
        if self.0.starts_with("op") {
            IdentityKindTag::Operator
        } else {
            IdentityKindTag::Device
        }
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PrincipalId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PrincipalId {
    type Error = InvalidPrincipalId;
    fn try_from(s: String) -> Result<Self, InvalidPrincipalId> {
        Self::parse(&s)
    }
}

impl From<PrincipalId> for String {
    fn from(p: PrincipalId) -> String {
        p.0
    }
}

/// A connection principal: for an X.509 connection its certificate id (64 hex); for a custom
/// authorizer connection the [`PrincipalId`] the authorizer minted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Principal {
    Certificate(CertificateId),
    Authorizer(PrincipalId),
}

impl Principal {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if let Ok(id) = CertificateId::parse(s) {
            return Ok(Self::Certificate(id));
        }
        PrincipalId::parse(s)
            .map(Self::Authorizer)
            .map_err(|_| ValidationError::Principal)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Certificate(c) => c.as_str(),
            Self::Authorizer(p) => p.as_str(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<CertificateId> for Principal {
    fn from(c: CertificateId) -> Self {
        Self::Certificate(c)
    }
}

impl From<PrincipalId> for Principal {
    fn from(p: PrincipalId) -> Self {
        Self::Authorizer(p)
    }
}

impl TryFrom<String> for Principal {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, ValidationError> {
        Self::parse(&s)
    }
}

impl From<Principal> for String {
    fn from(p: Principal) -> String {
        p.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_certificate_and_minted_principals_only() {
        assert!(matches!(
            Principal::parse(&"a".repeat(64)),
            Ok(Principal::Certificate(_))
        ));
        let op = format!("op{}", "0".repeat(40));
        assert!(matches!(
            Principal::parse(&op),
            Ok(Principal::Authorizer(_))
        ));
        for bad in [
            "",
            "n/a",
            "A".repeat(64).as_str(),
            "op",
            "opXYZ",
            &format!("xx{}", "0".repeat(40)),
            &format!("op{}", "0".repeat(41)),
            &format!("op{}", "A".repeat(40)),
            "${iot:ClientId}",
            "+",
            "#",
        ] {
            assert!(Principal::parse(bad).is_err(), "{bad:?}");
            assert!(PrincipalId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn minted_ids_parse_and_say_their_kind() {
        let op = PrincipalId::operator("https://idp", "alice");
        let dv = PrincipalId::device(&super::super::Serial::parse("SN0001").unwrap());
        assert_eq!(PrincipalId::parse(op.as_str()), Ok(op.clone()));
        assert_eq!(PrincipalId::parse(dv.as_str()), Ok(dv.clone()));
        assert_eq!(op.kind(), IdentityKindTag::Operator);
        assert_eq!(dv.kind(), IdentityKindTag::Device);
        // Two IdPs never share an operator's id.
        assert_ne!(op, PrincipalId::operator("https://other", "alice"));
        let json = serde_json::to_string(&Principal::from(op.clone())).unwrap();
        assert_eq!(json, format!("\"{op}\""));
        assert!(serde_json::from_str::<Principal>("\"opnobody\"").is_err());
    }
}
