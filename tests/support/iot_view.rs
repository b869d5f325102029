//! AWS IoT as a test sets it up and observes it, through the SDK with the deployer's credentials:
//! shared by [`crate::Stack`] and the contract suite's IoT world.

use aws_sdk_iot::Client;

/// Registers a CA (ACTIVE, auto-registration on). Returns its certificate id.
pub async fn register_ca(iot: &Client, pem: &str) -> String {
    iot.register_ca_certificate()
        .ca_certificate(pem)
        .set_as_active(true)
        .allow_auto_registration(true)
        .send()
        .await
        .expect("register CA")
        .certificate_id
        .expect("CA id")
}

/// Registers a device certificate PENDING_ACTIVATION, as JITR's auto-registration does on first
/// connect. Returns its id.
pub async fn register_pending(iot: &Client, pem: &str, ca_pem: &str) -> String {
    iot.register_certificate()
        .certificate_pem(pem)
        .ca_certificate_pem(ca_pem)
        .status(aws_sdk_iot::types::CertificateStatus::PendingActivation)
        .send()
        .await
        .expect("register certificate")
        .certificate_id
        .expect("certificate id")
}

/// The principals (certificate ARNs) attached to a thing; none if it does not exist.
pub async fn thing_principals(iot: &Client, thing: &str) -> Vec<String> {
    iot.list_thing_principals()
        .thing_name(thing)
        .send()
        .await
        .map(|o| o.principals.unwrap_or_default())
        .unwrap_or_default()
}

/// The policy names attached to a target (a certificate ARN).
pub async fn attached_policies(iot: &Client, target: &str) -> Vec<String> {
    iot.list_attached_policies()
        .target(target)
        .send()
        .await
        .map(|o| {
            o.policies
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.policy_name)
                .collect()
        })
        .unwrap_or_default()
}

/// The things in a thing group.
pub async fn group_members(iot: &Client, group: &str) -> Vec<String> {
    iot.list_things_in_thing_group()
        .thing_group_name(group)
        .send()
        .await
        .map(|o| o.things.unwrap_or_default())
        .unwrap_or_default()
}
