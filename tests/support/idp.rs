//! A test IdP: its keys and the tokens it signs, and the authorizer that trusts it.

use super::*;

/// An identity provider for operator tokens, with an ES256 key generated at run time (nothing
/// committed).
pub struct TestIdp {
    pub issuer: String,
    pub audience: String,
    key: jsonwebtoken::EncodingKey,
    /// The public JWKS (`{"keys": [...]}`), as the IdP publishes it.
    pub jwks: String,
}

impl TestIdp {
    pub fn new(issuer: &str, audience: &str) -> TestIdp {
        const B64URL: base64::engine::GeneralPurpose =
            base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let point = key.public_key_raw(); // 0x04 || x || y
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": B64URL.encode(&point[1..33]), "y": B64URL.encode(&point[33..65])
        }]})
        .to_string();
        TestIdp {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            key: jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
                .expect("ec pem"),
            jwks,
        }
    }

    /// Authorizer settings trusting this IdP (the emulator's region and account).
    pub fn config(&self) -> fleetguard_domain::authorization::authorizer::AuthorizerConfig {
        fleetguard_domain::authorization::authorizer::AuthorizerConfig::new(
            REGION,
            "123456789012",
            &self.issuer,
            &[&self.audience],
        )
        .expect("authorizer config")
    }

    /// An authorizer with this IdP's keys, fixed.
    pub fn authorizer(&self) -> fleetguard_domain::authorization::authorizer::Authorizer {
        let jwks = fleetguard_domain::authorization::authorizer::Jwks::from_json(&self.jwks)
            .expect("jwks");
        fleetguard_domain::authorization::authorizer::Authorizer::new(self.config(), jwks)
            .expect("authorizer")
    }

    /// A token for `sub`, valid from now for `lifetime_s` seconds.
    pub fn token(&self, sub: &str, lifetime_s: i64) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        let claims = serde_json::json!({"iss": self.issuer, "aud": self.audience, "sub": sub,
            "iat": now, "nbf": now, "exp": now + lifetime_s});
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }
}
