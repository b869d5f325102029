//! Store errors and the deadline.

use super::*;

#[tokio::test]
async fn store_errors_deny_without_secrets() {
    let fx = fx();
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    put_device(&fx, "SN1", "hunter2");
    fx.store.fail.store(true, Ordering::SeqCst);
    let token = sign(&fx.key, &claims("alice", 3600));
    for raw in [token_request(&token), mqtt_request("SN1", b"hunter2", None)] {
        let d = run(&fx, raw).await;
        assert_deny(&d, Reason::InternalError);
        let text = format!("{d:?}");
        assert!(d.detail.is_some());
        assert!(
            !text.contains(&token) && !text.contains("hunter2") && !text.contains("argon2"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn slow_store_times_out() {
    let mut c = config();
    c.deadline = std::time::Duration::from_millis(50);
    let fx = fx_with(c);
    fx.store.put(Identity::operator(
        ISSUER,
        "alice",
        "Alice",
        serials(&["SN1"]),
    ));
    *fx.store.delay.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(std::time::Duration::from_millis(500));
    let d = run(&fx, token_request(&sign(&fx.key, &claims("alice", 3600)))).await;
    assert_deny(&d, Reason::Timeout);
    assert!(
        d.principal_id.is_some(),
        "the verified principal is still audited"
    );
}

#[test]
fn secrets_are_redacted_from_debug() {
    let hash = cheap_hash("pw");
    let id = Identity::device(Serial::parse("SN1").expect("serial"), hash.clone());
    assert!(!format!("{id:?}").contains(&hash));
    let req = AuthorizerRequest::parse(mqtt_request("SN1", b"s3cret-pw", None)).expect("parse");
    let text = format!("{req:?} {:?}", req.credential());
    assert!(
        !text.contains("s3cret") && !text.contains(&b64(b"s3cret-pw")),
        "{text}"
    );
    let key = ec_key("k");
    let t = sign(&key, &claims("a", 3600));
    assert!(!format!("{:?}", Credential::Jwt(t.clone().into())).contains(&t));
    let mut raw = token_request(&t);
    raw["protocolData"]["http"] = json!({"headers": {"Authorization": format!("Bearer {t}")}, "queryString": format!("?token={t}")});
    let req = AuthorizerRequest::parse(raw).expect("parse");
    let text = format!("{req:?}");
    assert!(!text.contains(&t[..20]), "{text}");
    assert!(text.contains("Authorization"));
}

/// An audit log that is down.
struct DownAudit;

impl fleetguard_domain::ports::AuditLog for DownAudit {
    async fn record(&self, _: &fleetguard_domain::model::AuditEntry) -> Result<bool> {
        Err(Error::Corrupt("audit down".into()))
    }
    async fn for_serial(
        &self,
        _: &str,
        _: usize,
    ) -> Result<Vec<fleetguard_domain::model::AuditEntry>> {
        Ok(Vec::new())
    }
    async fn for_principal(
        &self,
        _: &fleetguard_domain::model::Principal,
        _: &fleetguard_domain::model::Timestamp,
    ) -> Result<Vec<fleetguard_domain::model::AuditEntry>> {
        Ok(Vec::new())
    }
    async fn find(
        &self,
        _: &str,
        _: &fleetguard_domain::model::Timestamp,
        _: &str,
    ) -> Result<Option<fleetguard_domain::model::AuditEntry>> {
        Ok(None)
    }
}

#[tokio::test]
async fn an_answer_that_cannot_be_audited_is_a_deny_and_every_answer_is_audited() {
    let fx = fx();
    put_device(&fx, "SN1", "an old password");
    let request = || mqtt_request("SN1", b"an old password", None);
    let audit = fleetguard_testkit::fakes::InMemoryAudit::default();
    let allowed = authorize_and_audit(&fx.engine, &fx.store, &audit, request(), NOW).await;
    assert!(allowed.is_authenticated);
    use fleetguard_domain::ports::AuditLog;
    let written = audit.for_serial("SN1", 10).await.expect("audit");
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].reason, Reason::Authorized);
    // The same allow, with the audit log down: denied.
    let denied = authorize_and_audit(&fx.engine, &fx.store, &DownAudit, request(), NOW).await;
    assert!(!denied.is_authenticated);
    validate_response(&denied).expect("a valid deny");
}
