//! The AWS IoT data plane's HTTP API, as far as the functions use it: Publish
//! (`POST /topics/{topic}`) delivers to the MQTT sessions subscribed (Receive checked per session),
//! DeleteConnection (`DELETE /connections/{clientId}`) closes a live session (404
//! `ResourceNotFoundException` when none, as AWS answers). Point the SDK at it with
//! `AWS_ENDPOINT_URL_IOT_DATA_PLANE` (or `FLEETGUARD_IOT_DATA_ENDPOINT`). Requests are parsed with
//! the `httparse` crate; signatures are not checked (a local stand-in, bound to 127.0.0.1).

use crate::router::Router;
use crate::rules::{Publisher, Rules};
use crate::topics;
use bytes::Bytes;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request accepted (AWS IoT: 128 KB messages).
const MAX_REQUEST: usize = 256 * 1024;

pub async fn serve(listener: TcpListener, router: Router, rules: Arc<Rules>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (router, rules) = (router.clone(), rules.clone());
        tokio::spawn(async move {
            let _ = connection(stream, router, rules).await;
        });
    }
}

/// What `principal()` and `clientid()` give for a publish through the data plane's HTTP API: an IAM
/// principal (here a fixed role id, signatures are not checked) and `n/a`.
const DATA_PLANE: Publisher<'static> = Publisher {
    principal: "AROALOCALGATEWAY:function",
    client_id: "n/a",
};

/// `%XX` decoded (the SDK percent-encodes the topic in the path, `/` included).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One keep-alive connection: requests until the client closes.
async fn connection(
    mut stream: TcpStream,
    router: Router,
    rules: Arc<Rules>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Headers, then the body by Content-Length.
        let (head_len, method, path, length) = loop {
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
                    break (
                        n,
                        req.method.unwrap_or("").to_owned(),
                        req.path.unwrap_or("").to_owned(),
                        length,
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
        let path_only = path.split('?').next().unwrap_or("");
        let (status, error) = match (method.as_str(), path_only) {
            ("POST", p) if p.starts_with("/topics/") => {
                match percent_decode(&p["/topics/".len()..]).filter(|t| topics::valid_topic(t)) {
                    // Only AWS IoT publishes its own events.
                    Some(topic) if topics::reserved_for_aws(&topic) => {
                        (403, Some("ForbiddenException"))
                    }
                    Some(_) if body.len() > crate::wire::MAX_PACKET as usize - 1024 => {
                        (413, Some("RequestEntityTooLargeException"))
                    }
                    Some(topic) => {
                        crate::session::publish(&router, &rules, &topic, body, &DATA_PLANE);
                        (200, None)
                    }
                    None => (400, Some("InvalidRequestException")),
                }
            }
            ("DELETE", p) if p.starts_with("/connections/") => {
                match percent_decode(&p["/connections/".len()..]) {
                    Some(client_id) if router.close(&client_id) => (200, None),
                    _ => (404, Some("ResourceNotFoundException")),
                }
            }
            _ => (404, Some("ResourceNotFoundException")),
        };
        respond(&mut stream, status, error, "{}").await?;
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
