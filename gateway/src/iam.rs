//! Who may call the data plane, as AWS IoT decides it: a SigV4 signature over the request (recomputed
//! with `aws-sigv4`, the SDK's own signer, and compared), then the caller's IAM permission for the
//! action on its resource (`iot:Publish` on `topic/<topic>`, `iot:DeleteConnection` on
//! `client/<clientId>`), decided by the emulator, which holds the local stack's roles
//! (`POST /_fleetguard/iam/authorize`). Every local key's secret is the local stack's (`testing`).

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use std::time::{Duration, SystemTime};

use fleetguard_aws::template::LOCAL_SECRET;
/// Signatures older or newer than this are refused, as AWS refuses them (15 minutes).
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// A refusal: HTTP status, AWS error code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

/// The signer of a request whose signature is right: access key id, session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    pub session_token: Option<String>,
    pub region: String,
}

/// Checks the request's SigV4 signature (`headers` as received, `uri` its raw path and query).
pub fn verify(
    method: &str,
    uri: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: SystemTime,
) -> Result<Caller, Refusal> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let auth = header("authorization")
        .ok_or_else(|| refuse(403, "ForbiddenException", "Missing Authentication Token"))?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        refuse(
            403,
            "ForbiddenException",
            "unsupported authorization scheme",
        )
    })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(refuse(
            403,
            "ForbiddenException",
            "incomplete authorization header",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, _date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(refuse(
            403,
            "ForbiddenException",
            "malformed credential scope",
        ));
    };
    let date = header("x-amz-date")
        .ok_or_else(|| refuse(403, "ForbiddenException", "missing X-Amz-Date"))?;
    let time = parse_amz_date(date)
        .ok_or_else(|| refuse(403, "ForbiddenException", "malformed X-Amz-Date"))?;
    let skew = now
        .duration_since(time)
        .or_else(|_| time.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(refuse(403, "ForbiddenException", "Signature expired"));
    }
    let token = header("x-amz-security-token").map(str::to_owned);
    // Only the headers the client signed, as it signed them.
    let wanted: Vec<&str> = signed.split(';').collect();
    let signed_headers: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| wanted.iter().any(|w| k.eq_ignore_ascii_case(w)))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let identity = aws_credential_types::Credentials::new(
        *key,
        LOCAL_SECRET,
        token.clone(),
        None,
        "fleetguard-gateway",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| refuse(403, "ForbiddenException", e.to_string()))?
        .into();
    let request = SignableRequest::new(
        method,
        uri,
        signed_headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| refuse(400, "InvalidRequestException", e.to_string()))?;
    let (_, expected) = sign(request, &params)
        .map_err(|e| refuse(403, "ForbiddenException", e.to_string()))?
        .into_parts();
    // A difference in the hex signature reveals nothing an attacker can use (the key is local).
    if expected != signature {
        return Err(refuse(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(Caller {
        access_key_id: (*key).to_owned(),
        session_token: token,
        region: (*region).to_owned(),
    })
}

/// `20261207T161500Z` as a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, format).ok()?.assume_utc();
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix_timestamp()).ok()?))
}

/// Asks the emulator at `endpoint` whether `caller` may perform `action` on `resource`.
pub async fn authorize(
    client: &fleetguard_aws::http::HttpClient,
    endpoint: &str,
    caller: &Caller,
    action: &str,
    resource: &str,
) -> Result<(), Refusal> {
    let body = serde_json::json!({
        "access_key_id": caller.access_key_id,
        "session_token": caller.session_token.clone().unwrap_or_default(),
        "region": caller.region,
        "action": action,
        "resource": resource,
    });
    let url = format!(
        "{}/_fleetguard/iam/authorize",
        endpoint.trim_end_matches('/')
    );
    let answer = client
        .post_json(&url, &body, Duration::from_secs(10), 1 << 16)
        .await
        .map_err(|e| refuse(500, "InternalFailureException", e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|e| refuse(500, "InternalFailureException", e.to_string()))?;
    if v["allowed"] == true {
        return Ok(());
    }
    // Fail closed: anything but an explicit allow refuses.
    let code = match v["code"].as_str() {
        Some("UnrecognizedClientException") => "UnauthorizedException",
        _ => "ForbiddenException",
    };
    Err(refuse(
        403,
        code,
        v["message"].as_str().unwrap_or("not authorized").to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, body: &[u8], when: SystemTime) -> Vec<(String, String)> {
        let identity = aws_credential_types::Credentials::new(
            "FGLOCALREVOKER",
            secret,
            Some("stack1".into()),
            None,
            "t",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("iotdata")
            .time(when)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("host", "127.0.0.1:8088"),
            ("content-type", "application/json"),
        ];
        let request = SignableRequest::new(
            "POST",
            "/topics/P%2FSN1%2Ftamper?qos=1",
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut out: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in instructions.headers() {
            out.push((k.to_owned(), v.to_owned()));
        }
        out
    }

    #[test]
    fn the_sdk_s_signature_verifies_and_any_change_is_refused() {
        let now = SystemTime::now();
        let body = br#"{"a":1}"#;
        let headers = signed(LOCAL_SECRET, body, now);
        let uri = "/topics/P%2FSN1%2Ftamper?qos=1";
        let caller = verify("POST", uri, &headers, body, now).expect("verifies");
        assert_eq!(caller.access_key_id, "FGLOCALREVOKER");
        assert_eq!(caller.session_token.as_deref(), Some("stack1"));
        let bad = |r: Result<Caller, Refusal>| r.expect_err("refused").code;
        assert_eq!(
            bad(verify("POST", uri, &headers, b"{\"a\":2}", now)),
            "InvalidSignatureException"
        );
        assert_eq!(
            bad(verify(
                "POST",
                "/topics/P%2FSN2%2Ftamper?qos=1",
                &headers,
                body,
                now
            )),
            "InvalidSignatureException"
        );
        let wrong_secret = signed("guessed", body, now);
        assert_eq!(
            bad(verify("POST", uri, &wrong_secret, body, now)),
            "InvalidSignatureException"
        );
        let later = now + Duration::from_secs(16 * 60);
        assert_eq!(
            bad(verify("POST", uri, &headers, body, later)),
            "ForbiddenException"
        );
        let unsigned: Vec<(String, String)> = headers
            .into_iter()
            .filter(|(k, _)| k != "authorization")
            .collect();
        assert_eq!(
            bad(verify("POST", uri, &unsigned, body, now)),
            "ForbiddenException"
        );
    }
}
