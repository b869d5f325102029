//! The AWS IoT data plane's HTTP API, as far as the functions use it: Publish
//! (`POST /topics/{topic}`) delivers to the MQTT sessions subscribed (Receive checked per session),
//! DeleteConnection (`DELETE /connections/{clientId}`) closes a live session (404
//! `ResourceNotFoundException` when none, as AWS answers). Point the SDK at it with
//! `FLEETGUARD_IOT_DATA_ENDPOINT` (the template's `IotDataEndpoint`) or
//! `AWS_ENDPOINT_URL_IOT_DATA_PLANE`. Requests are parsed with the `httparse` crate. As on AWS, each
//! must be SigV4-signed by a caller whose IAM permission allows it ([`crate::iam`]): `iot:Publish` on
//! the topic, `iot:DeleteConnection` on the client.

use crate::router::Router;
use crate::rules::{Publisher, Rules};
use crate::topics;
use bytes::Bytes;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request accepted (AWS IoT: 128 KB messages).
const MAX_REQUEST: usize = 256 * 1024;

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
            let _ = connection(stream, router, rules, callers).await;
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

/// One keep-alive connection: requests until the client closes.
async fn connection(
    mut stream: TcpStream,
    router: Router,
    rules: Arc<Rules>,
    callers: Arc<Callers>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Headers, then the body by Content-Length.
        let (head_len, method, path, length, headers) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let length = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                        .unwrap_or(0usize);
                    let headers: Vec<(String, String)> = req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    break (
                        n,
                        req.method.unwrap_or("").to_owned(),
                        req.path.unwrap_or("").to_owned(),
                        length,
                        headers,
                    );
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => {
                    let mut chunk = [0u8; 8192];
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                _ => return respond(&mut stream, 400, None, "{}").await,
            }
        };
        if head_len + length > MAX_REQUEST {
            return respond(&mut stream, 413, None, "{}").await;
        }
        while buf.len() < head_len + length {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = Bytes::copy_from_slice(&buf[head_len..head_len + length]);
        buf.drain(..head_len + length);
        let close = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        let request = Request {
            method,
            uri: path,
            headers,
            body,
        };
        let path_only = request.uri.split('?').next().unwrap_or("").to_owned();
        let (status, error, message) = match (request.method.as_str(), path_only.as_str()) {
            ("POST", p) if p.starts_with("/topics/") => {
                match percent_decode(&p["/topics/".len()..]).filter(|t| topics::valid_topic(t)) {
                    None => (400, Some("InvalidRequestException"), None),
                    Some(topic) => match callers
                        .allow(&request, "iot:Publish", &format!("topic/{topic}"))
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
                                &router,
                                &rules,
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
                            &request,
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
        };
        let body = message
            .map(|m| serde_json::json!({ "message": m }).to_string())
            .unwrap_or_else(|| "{}".to_owned());
        respond(&mut stream, status, error, &body).await?;
        if close {
            return Ok(());
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    error: Option<&str>,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        413 => "Payload Too Large",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(e) = error {
        head.push_str(&format!("x-amzn-errortype: {e}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await
}
