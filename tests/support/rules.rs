//! The template: its text, the fleet policy, and its topic rules run on a message as AWS IoT's rules engine would.

use super::*;

/// The fleet device policy exactly as `infra/template.yaml` deploys it, with `Fn::Sub` resolved for
/// `region` and `account` (and `${!...}` unescaped to the IoT policy variable it stands for). Loaded from
/// the template itself, so what the tests prove is what gets deployed.
/// (A first deploy's: `DeviceDomainName` not set, devices may connect through any endpoint.)
pub fn template_fleet_policy(region: &str, account: &str) -> String {
    fleetguard_aws::local::fleet_policy_from_template(
        &template_text(),
        &LocalStack::new("fg", region, account),
    )
    .expect("the template's fleet policy")
}

/// The fleet policy for the emulator's default account.
pub fn fleet_policy_document() -> String {
    template_fleet_policy(REGION, "123456789012")
}

/// What the template's topic rule `rule` sends its Lambda action for a message `payload` on `topic`
/// published by `principal` as `client_id` (what AWS IoT's rules engine would send; the local gateway
/// runs the same code), or `None` where its FROM or WHERE leaves the message out. `None` as the
/// publisher: AWS IoT's own events.
pub fn through_rule(
    rule: &str,
    topic: &str,
    payload: &serde_json::Value,
    publisher: Option<(&str, &str)>,
) -> Option<serde_json::Value> {
    let publisher = match publisher {
        Some((principal, client_id)) => fleetguard_gateway::rules::Publisher {
            principal,
            client_id,
        },
        None => fleetguard_gateway::rules::AWS_IOT,
    };
    let params = std::collections::HashMap::from([
        ("AWS::StackName".to_owned(), "fg".to_owned()),
        ("CaCertificateId".to_owned(), "ca".to_owned()),
    ]);
    let rules = fleetguard_gateway::rules::load(&template_text(), &params).expect("the rules");
    let rule = rules
        .iter()
        .find(|r| r.name == rule)
        .unwrap_or_else(|| panic!("no rule {rule}"));
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    rule.event(topic, payload.to_string().as_bytes(), &publisher, now_ms)
}

/// A security event as delete-record published it, as the template's SecurityViolationRule hands it
/// to the revoker.
pub fn security_rule_event(published: &serde_json::Value) -> serde_json::Value {
    through_rule(
        "SecurityViolationRule",
        "fleetguard/fg/security/violations",
        published,
        None,
    )
    .expect("the security rule takes every message on its topic")
}

/// The template's text.
pub fn template_text() -> String {
    std::fs::read_to_string(workspace_root().join("infra/template.yaml"))
        .expect("infra/template.yaml")
}

/// AWS IoT's presence event (life-cycle-events.html: `clientId`, `timestamp`, `eventType`,
/// `sessionIdentifier`, `principalIdentifier`, `versionNumber`, and for a disconnect
/// `clientInitiatedDisconnect` and `disconnectReason`) through the template's PresenceRule.
pub fn through_presence(
    event: &str,
    principal: &str,
    client_id: &str,
    session: &str,
    version: u64,
    reason: Option<&str>,
) -> serde_json::Value {
    let mut presence = serde_json::json!({
        "clientId": client_id, "timestamp": 1_763_900_000_000i64, "eventType": event,
        "sessionIdentifier": session, "principalIdentifier": principal, "versionNumber": version});
    if event == "connected" {
        presence["ipAddress"] = "192.0.2.10".into();
    }
    if let Some(r) = reason {
        presence["clientInitiatedDisconnect"] = false.into();
        presence["disconnectReason"] = r.into();
    }
    through_rule(
        "PresenceRule",
        &format!("$aws/events/presence/{event}/{client_id}"),
        &presence,
        None,
    )
    .expect("the presence rule takes every presence event")
}
