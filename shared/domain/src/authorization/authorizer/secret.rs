//! Device secrets: what a certificate-less device presents as its MQTT password.
//!
//! A device secret is machine-generated (`fleetctl devices set-password --generate`: 256 random bits)
//! or supplied and at least [`DeviceSecret::MIN_BITS`] strong. Because it cannot be guessed, it needs
//! no slow hash and no attempt limit: the registry keeps `SHA-256(context ‖ serial ‖ secret)` and the
//! authorizer compares digests in constant time, microseconds per attempt. So a flood of guesses
//! costs no more than the invocations AWS bills anyway, and nothing a stranger sends can keep the
//! device out (an attempt limit would: the right secret refused while a delay runs).
//!
//! Hashes written before (argon2id PHC strings) are still verified, at argon2's cost; setting the
//! secret again moves a device to the digest.

use crate::model::Serial;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Marks a stored digest (a legacy hash is an argon2id PHC string, `$argon2id$...`).
const PREFIX: &str = "fleetguard-secret-v1$";

/// Why a supplied secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeakSecret(pub &'static str);

/// A device secret, validated: a secret (`Debug` redacts it, [`DeviceSecret::expose`] reads it).
#[derive(Debug, Clone)]
pub struct DeviceSecret(SecretString);

impl DeviceSecret {
    /// Least estimated strength of a supplied secret.
    pub const MIN_BITS: f64 = 128.0;
    /// Longest secret (AWS IoT passes at most this much MQTT password to an authorizer anyway).
    pub const MAX_LEN: usize = 256;

    /// 256 random bits, base64url without padding (43 characters).
    pub fn generate() -> crate::Result<Self> {
        use aws_lc_rs::rand::SecureRandom;
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| crate::Error::Config("no system randomness".to_owned()))?;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(bytes)
                .into(),
        ))
    }

    /// A supplied secret: printable ASCII without spaces, at most [`Self::MAX_LEN`] characters, at
    /// least 10 distinct characters, and at least [`Self::MIN_BITS`] by the estimate length ×
    /// log2(alphabet), the alphabet being the character classes it uses. A generated secret passes;
    /// a word, a date or a serial does not.
    pub fn parse(s: &str) -> Result<Self, WeakSecret> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(WeakSecret("a secret is 1..=256 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WeakSecret(
                "a secret is printable ASCII without spaces (generate one with --generate)",
            ));
        }
        if Self::estimated_bits(s) < Self::MIN_BITS {
            return Err(WeakSecret(
                "the secret is weaker than 128 bits (generate one with --generate)",
            ));
        }
        let mut distinct: Vec<u8> = s.bytes().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 10 {
            return Err(WeakSecret(
                "the secret repeats too few characters (generate one with --generate)",
            ));
        }
        Ok(Self(s.into()))
    }

    /// Length × log2 of the alphabet of the classes used (lower, upper, digits, symbols).
    pub fn estimated_bits(s: &str) -> f64 {
        let b = s.as_bytes();
        let pool: u32 = [
            (b.iter().any(u8::is_ascii_lowercase), 26),
            (b.iter().any(u8::is_ascii_uppercase), 26),
            (b.iter().any(u8::is_ascii_digit), 10),
            (b.iter().any(u8::is_ascii_punctuation), 32),
        ]
        .iter()
        .filter(|(used, _)| *used)
        .map(|(_, n)| n)
        .sum();
        if pool < 2 {
            return 0.0;
        }
        b.len() as f64 * f64::from(pool).log2()
    }

    /// The secret itself, to print once or hand to the device.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// What the registry stores for this secret of `serial`.
    pub fn digest(&self, serial: &Serial) -> String {
        digest(serial, self.expose().as_bytes())
    }
}

fn digest(serial: &Serial, presented: &[u8]) -> String {
    let mut h = Sha256::new();
    // Context and serial first, length-delimited: the same secret on two devices stores differently.
    h.update(b"fleetguard-device-secret-v1\0");
    h.update(serial.as_str().as_bytes());
    h.update(b"\0");
    h.update(presented);
    format!("{PREFIX}{}", hex::encode(h.finalize()))
}

/// Outcome of checking a presented password against what the registry stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCheck {
    Match,
    Mismatch,
    /// What is stored is neither a digest nor an argon2id hash within bounds.
    BadHash,
}

/// Whether the stored value is a legacy argon2id hash (slow: check it off the async executor).
pub fn is_legacy(stored: &str) -> bool {
    !stored.starts_with(PREFIX)
}

/// Checks `presented` against `stored`: a digest in constant time, a legacy hash with argon2id.
pub fn verify(serial: &Serial, presented: &[u8], stored: &str) -> SecretCheck {
    if is_legacy(stored) {
        return match super::identity::verify_password(presented, stored) {
            super::identity::PasswordCheck::Match => SecretCheck::Match,
            super::identity::PasswordCheck::Mismatch => SecretCheck::Mismatch,
            super::identity::PasswordCheck::BadHash => SecretCheck::BadHash,
        };
    }
    if stored.len() != PREFIX.len() + 64 {
        return SecretCheck::BadHash;
    }
    let got = digest(serial, presented);
    match aws_lc_rs::constant_time::verify_slices_are_equal(got.as_bytes(), stored.as_bytes()) {
        Ok(()) => SecretCheck::Match,
        Err(_) => SecretCheck::Mismatch,
    }
}

/// The cost of a check whose answer is ignored: refusals before the check (unknown serial, device
/// not active) take as long as a wrong secret, so timing does not tell which serials exist.
pub fn decoy(serial: &Serial, presented: &[u8]) {
    std::hint::black_box(digest(serial, presented));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial() -> Serial {
        Serial::parse("SN-1").unwrap()
    }

    #[test]
    fn generated_secrets_are_strong_distinct_and_verify() {
        let a = DeviceSecret::generate().unwrap();
        let b = DeviceSecret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        assert!(
            DeviceSecret::parse(a.expose()).is_ok(),
            "a generated secret passes"
        );
        let stored = a.digest(&serial());
        assert_eq!(
            verify(&serial(), a.expose().as_bytes(), &stored),
            SecretCheck::Match
        );
        assert_eq!(
            verify(&serial(), b.expose().as_bytes(), &stored),
            SecretCheck::Mismatch
        );
        let other = Serial::parse("SN-2").unwrap();
        assert_eq!(
            verify(&other, a.expose().as_bytes(), &stored),
            SecretCheck::Mismatch
        );
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn weak_secrets_are_refused() {
        for weak in [
            "",
            "correct horse",
            "password123",
            "SN-1",
            "2026-12-07",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abcdefabcdefabcdefabcdefabcdef",
        ] {
            assert!(DeviceSecret::parse(weak).is_err(), "{weak:?}");
        }
        // 32 hex characters of a random 128-bit value: just enough.
        assert!(DeviceSecret::parse("9f86d081884c7d659a2feaa0c55ad015").is_ok());
    }

    #[test]
    fn a_corrupt_stored_digest_is_bad_not_a_match() {
        let stored = format!("{PREFIX}abc");
        assert_eq!(verify(&serial(), b"x", &stored), SecretCheck::BadHash);
    }
}
