//! Who sent a message, as the rules engine's `principal()` reports it.

use super::{CertificateId, ValidationError};

/// A connection principal. For an X.509 connection it is the certificate id (64 hex); for a custom
/// authorizer connection it is the authorizer's principalId, which fleetguard always mints as `op` or
/// `dv` followed by 40 hex characters (operators and password devices). Anything else is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    Certificate(CertificateId),
    Authorizer(String),
}

impl Principal {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if let Ok(id) = CertificateId::parse(s) {
            return Ok(Self::Certificate(id));
        }
        let minted = s.len() == 42
            && (s.starts_with("op") || s.starts_with("dv"))
            && s[2..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if minted {
            Ok(Self::Authorizer(s.to_owned()))
        } else {
            Err(ValidationError::Principal)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Certificate(c) => c.as_str(),
            Self::Authorizer(p) => p,
        }
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
            "${iot:ClientId}",
            "+",
            "#",
        ] {
            assert!(Principal::parse(bad).is_err(), "{bad:?}");
        }
    }
}
