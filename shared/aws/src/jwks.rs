//! The JWKS over HTTPS: the authorizer's [`KeySource`] when `FLEETGUARD_JWKS_URL` is set.

use super::http::HttpClient;
use fleetguard_domain::authorization::authorizer::KeySource;
use fleetguard_domain::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A JWKS is a few keys; anything near this is not one.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Fetches the IdP's JWKS. HTTPS only, except for loopback (the local stack and tests).
#[derive(Debug, Clone)]
pub struct HttpJwks {
    client: HttpClient,
    url: String,
    timeout: Duration,
}

impl HttpJwks {
    pub fn new(client: HttpClient, url: &str, timeout: Duration) -> Result<Self> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| Error::Config("FLEETGUARD_JWKS_URL is not a URL".to_owned()))?;
        let loopback = matches!(
            uri.host(),
            Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
        );
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => {
                return Err(Error::Config(
                    "FLEETGUARD_JWKS_URL must be https (http only on loopback)".to_owned(),
                ))
            }
        }
        Ok(Self {
            client,
            url: url.to_owned(),
            timeout,
        })
    }
}

impl KeySource for HttpJwks {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<String>> + Send + '_>> {
        Box::pin(async move {
            let response = self
                .client
                .get(&self.url, self.timeout, MAX_JWKS_BYTES)
                .await?;
            if response.status != 200 {
                return Err(Error::Http(format!(
                    "JWKS fetch answered {}",
                    response.status
                )));
            }
            String::from_utf8(response.body.to_vec())
                .map_err(|_| Error::Http("JWKS is not UTF-8".to_owned()))
        })
    }
}
