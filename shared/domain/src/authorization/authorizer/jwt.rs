//! Operator tokens: JWKS loading and JWT verification (RS256 / ES256 only).
//!
//! The header is parsed here before any key is chosen, so `alg: none`, HS*, PS*, EdDSA and the
//! rest are refused with `unsupported_algorithm` whatever the JWKS holds; `crit` is refused (no
//! extension is understood). Signature checking is delegated to `jsonwebtoken` (aws-lc-rs) with the
//! algorithm pinned by the key: an RSA key only verifies RS256, a P-256 key only ES256, and a key
//! whose JWK names another `alg` or whose `use` is not `sig` is not loaded. Claims are checked here,
//! against the decision's `now` rather than the system clock, so every failure has its own reason.

use crate::model::Reason;
use crate::{Error, Result};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use time::OffsetDateTime;

/// Largest token accepted, in bytes (anything bigger is refused before decoding).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Most keys a JWKS may hold.
const MAX_KEYS: usize = 64;
/// Smallest RSA modulus accepted, in bytes (2,048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// Longest `sub` accepted.
const MAX_SUB_LEN: usize = 255;

/// The two signature algorithms operators' tokens may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlg {
    Rs256,
    Es256,
}

impl JwtAlg {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

struct Key {
    alg: JwtAlg,
    key: DecodingKey,
}

/// The IdP's signing keys, by `kid`. Loaded once at cold start.
pub struct Jwks {
    keys: HashMap<String, Key>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Jwks").field("kids", &kids).finish()
    }
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`). Keys that cannot verify RS256 or ES256 (HMAC
    /// secrets, other curves, RSA under 2,048 bits, `use` other than `sig`, `alg` other than
    /// RS256/ES256 or not matching the key type) and keys without a `kid` are skipped; an error
    /// when no usable key is left, when a `kid` repeats or when the text is not a JWKS.
    pub fn from_json(text: &str) -> Result<Self> {
        let doc: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("JWKS is not JSON: {e}")))?;
        let Some(items) = doc.get("keys").and_then(|k| k.as_array()) else {
            return Err(Error::Config("JWKS has no \"keys\" array".to_owned()));
        };
        if items.len() > MAX_KEYS {
            return Err(Error::Config(format!("JWKS has more than {MAX_KEYS} keys")));
        }
        let mut keys = HashMap::new();
        for item in items {
            let Ok(jwk) = serde_json::from_value::<Jwk>(item.clone()) else {
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone().filter(|k| !k.is_empty()) else {
                continue;
            };
            let Some(key) = usable_key(&jwk) else {
                continue;
            };
            if keys.insert(kid.clone(), key).is_some() {
                return Err(Error::Config(format!("JWKS repeats kid {kid:?}")));
            }
        }
        if keys.is_empty() {
            return Err(Error::Config(
                "JWKS holds no usable RS256/ES256 signing key with a kid".to_owned(),
            ));
        }
        Ok(Self { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn usable_key(jwk: &Jwk) -> Option<Key> {
    use jsonwebtoken::jwk::{KeyAlgorithm, PublicKeyUse};
    if let Some(u) = &jwk.common.public_key_use {
        if *u != PublicKeyUse::Signature {
            return None;
        }
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = base64_url_len(&p.n)?;
            if n < MIN_RSA_MODULUS_BYTES {
                return None;
            }
            JwtAlg::Rs256
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => JwtAlg::Es256,
        _ => return None,
    };
    match (jwk.common.key_algorithm, alg) {
        (None, _) | (Some(KeyAlgorithm::RS256), JwtAlg::Rs256) => {}
        (Some(KeyAlgorithm::ES256), JwtAlg::Es256) => {}
        _ => return None,
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { alg, key })
}

/// Decoded length of a base64url value, ignoring a leading zero byte of an RSA modulus.
fn base64_url_len(v: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v.trim_end_matches('='))
        .ok()?;
    let lead = bytes.iter().take_while(|b| **b == 0).count();
    Some(bytes.len() - lead)
}

/// What the authorizer needs from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub sub: String,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
}

/// What a token is checked against.
#[derive(Debug, Clone)]
pub struct TokenRules {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// Clock skew allowed on `nbf` and `iat`, seconds.
    pub leeway_secs: i64,
}

#[derive(serde::Deserialize)]
struct RawHeader {
    alg: Option<serde_json::Value>,
    kid: Option<serde_json::Value>,
    crit: Option<serde_json::Value>,
}

/// Whether `s` has the JWS compact shape (three non-empty base64url parts). Used to tell a JWT in
/// the MQTT password from a device password.
pub fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && s.starts_with("eyJ")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Verifies an operator token: shape, header, algorithm, key, signature, then issuer, audience,
/// `exp`, `nbf` and `iat` against `now`. Never echoes the token.
pub fn verify(
    jwks: &Jwks,
    rules: &TokenRules,
    token: &str,
    now: OffsetDateTime,
) -> std::result::Result<VerifiedToken, Reason> {
    use base64::Engine;
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(Reason::MalformedToken);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reason::MalformedToken);
    };
    let header_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| Reason::MalformedToken)?;
    let header: RawHeader =
        serde_json::from_slice(&header_bytes).map_err(|_| Reason::MalformedToken)?;
    let alg = match header.alg.as_ref().and_then(|a| a.as_str()) {
        Some(a) => JwtAlg::parse(a).ok_or(Reason::UnsupportedAlgorithm)?,
        None => return Err(Reason::MalformedToken),
    };
    if header.crit.is_some() {
        return Err(Reason::MalformedToken);
    }
    let kid = match header.kid {
        Some(serde_json::Value::String(k)) => k,
        Some(_) => return Err(Reason::MalformedToken),
        None => return Err(Reason::UnknownKey),
    };
    let key = jwks.keys.get(&kid).ok_or(Reason::UnknownKey)?;
    if key.alg != alg {
        return Err(Reason::UnsupportedAlgorithm);
    }

    let mut validation = Validation::new(alg.algorithm());
    validation.algorithms = vec![alg.algorithm()];
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
        token,
        &key.key,
        &validation,
    )
    .map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_) => Reason::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                Reason::UnsupportedAlgorithm
            }
            _ => Reason::MalformedToken,
        }
    })?;
    check_claims(&data.claims, rules, now)
}

fn numeric_date(v: Option<&serde_json::Value>) -> std::result::Result<Option<i64>, Reason> {
    match v {
        None => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                    _ => Err(Reason::MalformedToken),
                }
            }
        }
        Some(_) => Err(Reason::MalformedToken),
    }
}

fn check_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    rules: &TokenRules,
    now: OffsetDateTime,
) -> std::result::Result<VerifiedToken, Reason> {
    let issuer = match claims.get("iss") {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err(Reason::MalformedToken),
        None => return Err(Reason::WrongIssuer),
    };
    if *issuer != rules.issuer {
        return Err(Reason::WrongIssuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => rules.audiences.iter().any(|r| r == a),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|a| a.as_str())
            .any(|a| rules.audiences.iter().any(|r| r == a)),
        Some(_) => return Err(Reason::MalformedToken),
        None => false,
    };
    if !audience_ok {
        return Err(Reason::WrongAudience);
    }
    let sub = match claims.get("sub") {
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= MAX_SUB_LEN => s,
        _ => return Err(Reason::MalformedToken),
    };
    // The sub never reaches a policy (the principal id is a hash of it), but a subject carrying
    // topic or policy metacharacters or control characters is not one our IdP issues.
    if sub
        .chars()
        .any(|c| c.is_control() || super::render::FORBIDDEN.contains(&c))
    {
        return Err(Reason::WildcardInjection);
    }
    let now_s = now.unix_timestamp();
    let exp = numeric_date(claims.get("exp"))?.ok_or(Reason::MalformedToken)?;
    // No leeway on exp: a token needs minutes left to be accepted at all (see token_expiring).
    if exp <= now_s {
        return Err(Reason::TokenExpired);
    }
    if let Some(nbf) = numeric_date(claims.get("nbf"))? {
        if nbf > now_s.saturating_add(rules.leeway_secs) {
            return Err(Reason::TokenNotYetValid);
        }
    }
    if let Some(iat) = numeric_date(claims.get("iat"))? {
        if iat > now_s.saturating_add(rules.leeway_secs) {
            return Err(Reason::TokenNotYetValid);
        }
    }
    Ok(VerifiedToken {
        issuer: issuer.clone(),
        sub: sub.clone(),
        expires_at: exp,
    })
}
