//! The AWS IoT data plane's HTTP API, as far as the functions use it: Publish
//! (`POST /topics/{topic}`) delivers to the MQTT sessions subscribed (Receive checked per session),
//! DeleteConnection (`DELETE /connections/{clientId}`) closes a live session (404
//! `ResourceNotFoundException` when none, as AWS answers). Point the SDK at it with
//! `FLEETGUARD_IOT_DATA_ENDPOINT` (the template's `IotDataEndpoint`) or
//! `AWS_ENDPOINT_URL_IOT_DATA_PLANE`. HTTP/1.1 is hyper's server (the stack the AWS SDK and
//! [`fleetguard_aws::http`] already use): a request is at most [`MAX_REQUEST`] bytes with at most 64
//! headers (larger: refused, 413 or 431); keep-alive until the client closes. As on AWS, each
//! must be SigV4-signed by a caller whose IAM permission allows it ([`crate::iam`]): `iot:Publish` on
//! the topic, `iot:DeleteConnection` on the client.

use crate::router::Router;
use crate::rules::{Publisher, Rules};
use crate::topics;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Largest request accepted (AWS IoT: 128 KB messages): the head (hyper's read buffer) and the body
/// each.
pub const MAX_REQUEST: usize = 256 * 1024;
/// Most headers a request may have.
const MAX_HEADERS: usize = 64;

/// Who decides the callers' permissions: the emulator holding the stack's roles.
pub struct Callers {
    /// The emulator (`None`: every request is refused).
    pub emulator: Option<String>,
    pub region: String,
    pub account: String,
    pub client: fleetguard_aws::http::HttpClient,
}

impl Callers {
    /// The signature, then the caller's permission for `action` on `resource` (`topic/...`).
    async fn allow(
        &self,
        req: &Request,
        action: &str,
        resource: &str,
    ) -> Result<(), crate::iam::Refusal> {
        let caller = crate::iam::verify(
            &req.method,
            &req.uri,
            &req.headers,
            &req.body,
            std::time::SystemTime::now(),
        )?;
        let Some(emulator) = &self.emulator else {
            return Err(crate::iam::Refusal {
                status: 403,
                code: "ForbiddenException",
                message: "no emulator to decide IAM permissions".into(),
            });
        };
        let arn = format!("arn:aws:iot:{}:{}:{resource}", self.region, self.account);
        crate::iam::authorize(&self.client, emulator, &caller, action, &arn).await
    }
}

/// One request as received.
struct Request {
    method: String,
    /// Path and query, as sent (percent-encoded).
    uri: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

pub async fn serve(
    listener: TcpListener,
    router: Router,
    rules: Arc<Rules>,
    callers: Arc<Callers>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (router, rules, callers) = (router.clone(), rules.clone(), callers.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (router, rules, callers) = (router.clone(), rules.clone(), callers.clone());
                async move { Ok::<_, Infallible>(handle(request, &router, &rules, &callers).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .max_buf_size(MAX_REQUEST)
                .max_headers(MAX_HEADERS)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What `principal()` and `clientid()` give for a publish through the data plane's HTTP API: an IAM
/// principal (a fixed role id here) and `n/a`.
const DATA_PLANE: Publisher<'static> = Publisher {
    principal: "AROALOCALGATEWAY:function",
    client_id: "n/a",
};

/// `%XX` decoded (the SDK percent-encodes the topic in the path, `/` included); `None` unless UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// One request: its body read (bounded), then routed.
async fn handle(
    request: hyper::Request<Incoming>,
    router: &Router,
    rules: &Rules,
    callers: &Callers,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok());
    // Too large: refused without reading it, and the connection closed.
    if declared.is_some_and(|n| n > MAX_REQUEST) {
        return respond(413, None, "{}", true);
    }
    let body = match Limited::new(body, MAX_REQUEST).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return respond(413, None, "{}", true)
        }
        Err(_) => return respond(400, None, "{}", true),
    };
    let request = Request {
        method: parts.method.as_str().to_owned(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let (status, error, message) = route(&request, router, rules, callers).await;
    let body = message
        .map(|m| serde_json::json!({ "message": m }).to_string())
        .unwrap_or_else(|| "{}".to_owned());
    respond(status, error, &body, false)
}

/// The API's answer to one request: status, error type, message.
async fn route(
    request: &Request,
    router: &Router,
    rules: &Rules,
    callers: &Callers,
) -> (u16, Option<&'static str>, Option<String>) {
    let path_only = request.uri.split('?').next().unwrap_or("");
    match (request.method.as_str(), path_only) {
        ("POST", p) if p.starts_with("/topics/") => {
            match percent_decode(&p["/topics/".len()..]).filter(|t| topics::valid_topic(t)) {
                None => (400, Some("InvalidRequestException"), None),
                Some(topic) => match callers
                    .allow(request, "iot:Publish", &format!("topic/{topic}"))
                    .await
                {
                    Err(r) => (r.status, Some(r.code), Some(r.message)),
                    // Only AWS IoT publishes its own events.
                    Ok(()) if topics::reserved_for_aws(&topic) => {
                        (403, Some("ForbiddenException"), None)
                    }
                    Ok(()) if request.body.len() > crate::wire::MAX_PACKET as usize - 1024 => {
                        (413, Some("RequestEntityTooLargeException"), None)
                    }
                    Ok(()) => {
                        crate::session::publish(
                            router,
                            rules,
                            &topic,
                            request.body.clone(),
                            &DATA_PLANE,
                        );
                        (200, None, None)
                    }
                },
            }
        }
        ("DELETE", p) if p.starts_with("/connections/") => {
            match percent_decode(&p["/connections/".len()..]) {
                None => (400, Some("InvalidRequestException"), None),
                Some(client_id) => match callers
                    .allow(
                        request,
                        "iot:DeleteConnection",
                        &format!("client/{client_id}"),
                    )
                    .await
                {
                    Err(r) => (r.status, Some(r.code), Some(r.message)),
                    Ok(()) if router.close(&client_id) => (200, None, None),
                    Ok(()) => (404, Some("ResourceNotFoundException"), None),
                },
            }
        }
        _ => (404, Some("ResourceNotFoundException"), None),
    }
}

/// A JSON answer; `close` ends the connection after it.
fn respond(
    status: u16,
    error: Option<&str>,
    body: &str,
    close: bool,
) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(e) = error.and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.insert("x-amzn-errortype", e);
    }
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
