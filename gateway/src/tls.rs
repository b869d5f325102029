//! TLS as AWS IoT Core's device endpoint does it: mutual TLS against the CA certificates registered
//! (ACTIVE) in the account, read again at most a second after the last reading, so a CA registered
//! a moment ago is trusted from the next second; a client without a certificate is served too, for
//! the custom authorizer. The server certificate is generated at start for `localhost` (a test stand-in: clients
//! trust [`ServerIdentity::cert_pem`]).

use fleetguard_aws::iot::IotControlAdapter;
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::ports::IotControl;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::sync::Arc;

/// The gateway's own certificate and key (generated, never written to disk by the gateway).
pub struct ServerIdentity {
    /// The CA clients must trust (PEM).
    pub cert_pem: String,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
    /// Client-certificate issuers trusted besides the registered CAs (AWS's own).
    trusted: Vec<CertificateDer<'static>>,
}

impl ServerIdentity {
    /// A throwaway CA and, signed by it, a server certificate for `localhost`, `127.0.0.1` and
    /// `names` (the domain configurations' host names). `cert_pem` is the CA (what clients trust, as
    /// they trust Amazon's root CA on AWS).
    pub fn generate(names: &[String]) -> Result<Self, String> {
        let err = |e: rcgen::Error| e.to_string();
        let ca_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "fleetguard local gateway CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        let issuer = rcgen::CertifiedIssuer::self_signed(ca, ca_key).map_err(err)?;
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        sans.extend(names.iter().cloned());
        let leaf = rcgen::CertificateParams::new(sans)
            .map_err(err)?
            .signed_by(&key, &issuer)
            .map_err(err)?;
        Ok(Self {
            cert_pem: issuer.pem(),
            cert: leaf.der().clone(),
            key: key.serialize_der(),
            trusted: Vec::new(),
        })
    }

    /// Trusts client certificates issued by `ca_der` too (AWS IoT's own CA).
    pub fn trust(&mut self, ca_der: Vec<u8>) {
        self.trusted.push(CertificateDer::from(ca_der));
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// How long a server configuration (the registered CAs it trusts) is reused: a CA registered or
/// deactivated counts from the next second's connections (AWS IoT's own propagation takes longer),
/// and a burst of connections does not list the CAs once each.
pub const CA_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// A server configuration and when it was built.
type Built = Option<(std::time::Instant, Arc<ServerConfig>)>;

/// The server configuration, rebuilt from the registered CAs at most every [`CA_REFRESH`].
#[derive(Default, Clone)]
pub struct ConfigCache {
    last: Arc<tokio::sync::Mutex<Built>>,
}

impl ConfigCache {
    pub async fn get(
        &self,
        control: &IotControlAdapter,
        identity: &ServerIdentity,
    ) -> Result<Arc<ServerConfig>, String> {
        // Held across the rebuild: a burst waits for one listing instead of making one each.
        let mut last = self.last.lock().await;
        if let Some((at, config)) = last.as_ref() {
            if at.elapsed() < CA_REFRESH {
                return Ok(config.clone());
            }
        }
        let config = server_config(control, identity).await?;
        *last = Some((std::time::Instant::now(), config.clone()));
        Ok(config)
    }
}

/// The server configuration: client certificates must chain to a CA registered ACTIVE in AWS IoT
/// (the handshake signature is verified by rustls: holding a device's public certificate is not
/// enough).
pub async fn server_config(
    control: &IotControlAdapter,
    identity: &ServerIdentity,
) -> Result<Arc<ServerConfig>, String> {
    let mut roots = RootCertStore::empty();
    for ca in control.ca_certificates().await.map_err(|e| e.to_string())? {
        if ca.status != CertificateStatus::Active {
            continue;
        }
        if let Ok(der) = fleetguard_domain::x509::pem_to_der(&ca.pem) {
            // A CA rustls cannot parse is not trusted (reported, not fatal).
            if let Err(e) = roots.add(CertificateDer::from(der)) {
                tracing::warn!(ca = %ca.id, error = %e, "registered CA not usable as a trust anchor");
            }
        }
    }
    for ca in &identity.trusted {
        roots.add(ca.clone()).map_err(|e| e.to_string())?;
    }
    // A client without a certificate goes to the custom authorizer (on AWS: another endpoint or
    // port with ALPN `mqtt`; one port here). A certificate, if presented, must verify.
    let verifier = if roots.is_empty() {
        WebPkiClientVerifier::no_client_auth()
    } else {
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| e.to_string())?
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}
