//! A small HTTP(S) client for the two places fleetguard speaks plain HTTP: fetching the IdP's JWKS
//! (the authorizer) and invoking functions through a local Lambda invoke API (demo, tests, bench).
//! Built on the hyper + rustls (aws-lc-rs) stack the AWS SDK already uses. Bodies are size-capped,
//! every call has a deadline, redirects are not followed.

use fleetguard_domain::{Error, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A reusable client: build once, clone freely (connections are pooled).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<Connector, Full<Bytes>>,
}

/// A response: status and the (capped) body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Bytes,
}

impl HttpClient {
    /// A client trusting the system's root certificates (Lambda's AL2023 has them).
    pub fn new() -> Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| Error::Config(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            inner: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// GET `url`; the body is read up to `max_bytes` (more is an error).
    pub async fn get(
        &self,
        url: &str,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<HttpResponse> {
        let request = http::Request::get(url)
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| http_error("GET", e))?;
        self.send(request, timeout, max_bytes).await
    }

    /// POST a JSON body to `url`.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<HttpResponse> {
        let bytes = serde_json::to_vec(body).map_err(|e| http_error("POST", e))?;
        let request = http::Request::post(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| http_error("POST", e))?;
        self.send(request, timeout, max_bytes).await
    }

    async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<HttpResponse> {
        let method = request.method().to_string();
        let call = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| http_error(&method, e))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), max_bytes)
                .collect()
                .await
                .map_err(|e| http_error(&method, e))?
                .to_bytes();
            Ok(HttpResponse { status, body })
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| Error::Http("timed out".to_owned()))?
    }
}

fn http_error(method: &str, e: impl std::fmt::Display) -> Error {
    Error::Http(format!("{method}: {e}"))
}
