//! The AWS IoT control and data plane contract: descriptions, idempotent attachments, status
//! changes (REVOKED is final), thing groups; the data plane: publishes and forced disconnects.

use super::*;
use crate::pki::{certificate_id, TestCa};
use fleetguard_domain::ports::IotCertificate;

/// A CA no other case uses, registered (ACTIVE, auto-registration on), and its id.
async fn registered_ca<W: IotWorld>(w: &W) -> (TestCa, CertificateId) {
    let ca = TestCa::new(&w.unique("contract CA "));
    let ca_id = w.register_ca(&ca.pem()).await;
    (ca, ca_id)
}

fn fresh_serial<W: IotWorld>(w: &W) -> Serial {
    Serial::parse(&w.unique("SN")).expect("serial")
}

/// A device certificate of a fresh serial issued by a registered CA, registered
/// PENDING_ACTIVATION as auto-registration does, and as AWS IoT describes it.
struct Registered {
    serial: Serial,
    pem: String,
    id: CertificateId,
    cert: IotCertificate,
}

async fn registered<W: IotWorld>(w: &W) -> Registered {
    let (ca, _) = registered_ca(w).await;
    let serial = fresh_serial(w);
    let pem = ca.issue(serial.as_str());
    let id = w.register_certificate(&pem, &ca.pem()).await;
    let cert = w
        .iot()
        .describe_certificate(&id)
        .await
        .expect("describe")
        .expect("certificate");
    Registered {
        serial,
        pem,
        id,
        cert,
    }
}

/// An unknown certificate or CA is described as none.
pub async fn unknown_certificates_are_described_as_none<W: IotWorld>(w: &W) {
    let iot = w.iot();
    let unknown = CertificateId::parse(&secret_hash(w.unique("none").as_bytes())).expect("id");
    assert_eq!(
        iot.describe_certificate(&unknown).await.expect("describe"),
        None
    );
    assert_eq!(
        iot.describe_ca_certificate(&unknown)
            .await
            .expect("describe"),
        None
    );
}

/// A registered CA is ACTIVE, and its id is SHA-256 of its DER.
pub async fn a_registered_ca_is_active_and_named_by_its_der_hash<W: IotWorld>(w: &W) {
    let (ca, ca_id) = registered_ca(w).await;
    assert_eq!(
        ca_id,
        certificate_id(&ca.pem()),
        "a CA's id is SHA-256 of its DER"
    );
    let described = w
        .iot()
        .describe_ca_certificate(&ca_id)
        .await
        .expect("describe")
        .expect("CA");
    assert_eq!(described.status, CertificateStatus::Active);
}

/// The registered CAs are listed, each with the PEM AWS holds.
pub async fn registered_cas_are_listed_with_their_pem<W: IotWorld>(w: &W) {
    let (_, ca_id) = registered_ca(w).await;
    assert!(w
        .iot()
        .ca_certificates()
        .await
        .expect("CAs")
        .iter()
        .any(|c| c.id == ca_id && certificate_id(&c.pem) == ca_id));
}

/// A registered device certificate is PENDING_ACTIVATION, its id SHA-256 of its DER, described with
/// its ARN and the PEM AWS holds.
pub async fn a_registered_certificate_is_pending_and_named_by_its_der_hash<W: IotWorld>(w: &W) {
    let Registered { pem, id, cert, .. } = registered(w).await;
    assert_eq!(id, certificate_id(&pem), "an id is SHA-256 of the DER");
    assert_eq!(cert.status, CertificateStatus::PendingActivation);
    assert!(cert.arn.ends_with(&format!("cert/{id}")), "{}", cert.arn);
    assert_eq!(certificate_id(&cert.pem), id, "the PEM AWS holds");
}

/// Things and their principals: each call idempotent; no principal attaches to a missing thing.
pub async fn things_and_principals_attach_idempotently<W: IotWorld>(w: &W) {
    let iot = w.iot();
    let Registered { serial, cert, .. } = registered(w).await;
    iot.ensure_thing(&serial).await.expect("thing");
    iot.ensure_thing(&serial).await.expect("thing again");
    iot.attach_thing_principal(&serial, &cert.arn)
        .await
        .expect("attach");
    iot.attach_thing_principal(&serial, &cert.arn)
        .await
        .expect("attach again");
    assert_eq!(
        w.thing_principals(serial.as_str()).await,
        vec![cert.arn.clone()]
    );
    let missing = fresh_serial(w);
    assert!(
        iot.attach_thing_principal(&missing, &cert.arn)
            .await
            .is_err(),
        "no such thing"
    );
    iot.detach_thing_principal(&serial, &cert.arn)
        .await
        .expect("detach thing");
    iot.detach_thing_principal(&serial, &cert.arn)
        .await
        .expect("detach thing again");
    assert!(w.thing_principals(serial.as_str()).await.is_empty());
}

/// Policies attach to and detach from a certificate, each call idempotent.
pub async fn policies_attach_and_detach_idempotently<W: IotWorld>(w: &W) {
    let iot = w.iot();
    let Registered { cert, .. } = registered(w).await;
    let policy = w.unique("policy");
    w.create_policy(&policy).await;
    iot.attach_policy(&policy, &cert.arn).await.expect("policy");
    iot.attach_policy(&policy, &cert.arn)
        .await
        .expect("policy again");
    assert_eq!(w.attached_policies(&cert.arn).await, vec![policy.clone()]);
    iot.detach_policy(&policy, &cert.arn).await.expect("detach");
    iot.detach_policy(&policy, &cert.arn)
        .await
        .expect("detach again");
    assert!(w.attached_policies(&cert.arn).await.is_empty());
}

/// Status: ACTIVE, INACTIVE, back, REVOKED; REVOKED is final; an unknown certificate has none.
pub async fn revoked_is_the_final_status<W: IotWorld>(w: &W) {
    let iot = w.iot();
    let Registered { id, .. } = registered(w).await;
    for status in [
        CertificateStatus::Active,
        CertificateStatus::Inactive,
        CertificateStatus::Active,
        CertificateStatus::Revoked,
    ] {
        iot.set_certificate_status(&id, status)
            .await
            .expect("status");
        let now = iot.describe_certificate(&id).await.expect("d").expect("c");
        assert_eq!(now.status, status);
    }
    assert!(
        iot.set_certificate_status(&id, CertificateStatus::Active)
            .await
            .is_err(),
        "a revoked certificate never becomes active again"
    );
    assert_eq!(
        iot.describe_certificate(&id)
            .await
            .expect("d")
            .expect("c")
            .status,
        CertificateStatus::Revoked
    );
    let unknown = CertificateId::parse(&secret_hash(w.unique("none").as_bytes())).expect("id");
    assert!(
        iot.set_certificate_status(&unknown, CertificateStatus::Inactive)
            .await
            .is_err(),
        "no such certificate"
    );
}

/// Thing groups: created on first use, membership idempotent both ways.
pub async fn thing_group_membership_is_idempotent<W: IotWorld>(w: &W) {
    let iot = w.iot();
    let serial = fresh_serial(w);
    iot.ensure_thing(&serial).await.expect("thing");
    let group = w.unique("group");
    iot.set_group_membership(&group, &serial, true)
        .await
        .expect("join");
    iot.set_group_membership(&group, &serial, true)
        .await
        .expect("join again");
    assert_eq!(w.group_members(&group).await, vec![serial.to_string()]);
    iot.set_group_membership(&group, &serial, false)
        .await
        .expect("leave");
    iot.set_group_membership(&group, &serial, false)
        .await
        .expect("leave again");
    assert!(w.group_members(&group).await.is_empty());
}

/// RegisterCertificate (rotation): registered with the status asked; again, the status stands.
pub async fn a_registered_certificate_keeps_its_first_status<W: IotWorld>(w: &W) {
    let iot = w.iot();
    let (ca, _) = registered_ca(w).await;
    let rotated = ca.issue(fresh_serial(w).as_str());
    let (c, created) = iot
        .register_certificate(&rotated, Some(&ca.pem()), CertificateStatus::Active)
        .await
        .expect("register");
    assert!(created);
    assert_eq!(
        (c.id.clone(), c.status),
        (certificate_id(&rotated), CertificateStatus::Active)
    );
    assert!(c.arn.ends_with(&format!("cert/{}", c.id)), "{}", c.arn);
    iot.set_certificate_status(&c.id, CertificateStatus::Revoked)
        .await
        .expect("revoke");
    let (again, created) = iot
        .register_certificate(&rotated, Some(&ca.pem()), CertificateStatus::Active)
        .await
        .expect("register again");
    assert!(!created, "registered already");
    assert_eq!(
        (again.status, again.arn),
        (CertificateStatus::Revoked, c.arn)
    );
}

/// An isolation registers a certificate it must keep from ever being usable: cut off (REVOKED,
/// without its CA).
pub async fn an_isolation_registers_a_certificate_revoked<W: IotWorld>(w: &W) {
    let (ca, _) = registered_ca(w).await;
    let preempted = ca.issue(fresh_serial(w).as_str());
    let (p, _) = w
        .iot()
        .register_certificate(&preempted, None, CertificateStatus::Revoked)
        .await
        .expect("register revoked");
    assert_eq!(p.status, CertificateStatus::Revoked);
}

/// Data plane: a reply publishes; cutting a client that is not connected is done.
pub async fn the_data_plane_publishes_and_disconnects<W: IotWorld>(w: &W) {
    let serial = fresh_serial(w);
    w.publisher()
        .publish(
            &format!("P/{serial}/deleterecords/r1/accepted"),
            &serde_json::json!({"outcome": "accepted"}),
        )
        .await
        .expect("publish");
    w.connections()
        .disconnect(serial.as_str())
        .await
        .expect("disconnect");
}
