//! The AWS IoT control and data plane contract.

use super::*;

/// The IoT control plane: descriptions, idempotent attachments, status changes (REVOKED is
/// final), thing groups; the data plane: publishes and forced disconnects.
pub async fn iot_contract<W: IotWorld>(w: &W) {
    let iot = w.iot();
    let ca = crate::pki::TestCa::new(&w.unique("contract CA "));
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
    let ca_id = w.register_ca(&ca.pem()).await;
    assert_eq!(
        ca_id,
        crate::pki::certificate_id(&ca.pem()),
        "a CA's id is SHA-256 of its DER"
    );
    let described = iot
        .describe_ca_certificate(&ca_id)
        .await
        .expect("describe")
        .expect("CA");
    assert_eq!(described.status, CertificateStatus::Active);
    let serial = Serial::parse(&w.unique("SN")).expect("serial");
    let pem = ca.issue(serial.as_str());
    let id = w.register_certificate(&pem, &ca.pem()).await;
    assert_eq!(
        id,
        crate::pki::certificate_id(&pem),
        "an id is SHA-256 of the DER"
    );
    let cert = iot
        .describe_certificate(&id)
        .await
        .expect("describe")
        .expect("certificate");
    assert_eq!(cert.status, CertificateStatus::PendingActivation);
    assert!(cert.arn.ends_with(&format!("cert/{id}")), "{}", cert.arn);
    assert_eq!(
        crate::pki::certificate_id(&cert.pem),
        id,
        "the PEM AWS holds"
    );

    // Things and attachments: each call idempotent.
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
    let missing = Serial::parse(&w.unique("SN")).expect("serial");
    assert!(
        iot.attach_thing_principal(&missing, &cert.arn)
            .await
            .is_err(),
        "no such thing"
    );
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
    iot.detach_thing_principal(&serial, &cert.arn)
        .await
        .expect("detach thing");
    iot.detach_thing_principal(&serial, &cert.arn)
        .await
        .expect("detach thing again");
    assert!(w.thing_principals(serial.as_str()).await.is_empty());

    // Status: ACTIVE, INACTIVE, back, REVOKED; REVOKED is final.
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
    assert!(
        iot.set_certificate_status(&unknown, CertificateStatus::Inactive)
            .await
            .is_err(),
        "no such certificate"
    );

    // Thing groups: created on first use, membership idempotent both ways.
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

    // RegisterCertificate (rotation): registered with the status asked; again, the status stands.
    let rotated = ca.issue(serial.as_str());
    let (c, created) = iot
        .register_certificate(&rotated, Some(&ca.pem()), CertificateStatus::Active)
        .await
        .expect("register");
    assert!(created);
    assert_eq!(
        (c.id.clone(), c.status),
        (
            crate::pki::certificate_id(&rotated),
            CertificateStatus::Active
        )
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
    // An isolation registers a certificate it must keep from ever being usable: cut off.
    let preempted = ca.issue(serial.as_str());
    let (p, _) = iot
        .register_certificate(&preempted, None, CertificateStatus::Revoked)
        .await
        .expect("register revoked");
    assert_eq!(p.status, CertificateStatus::Revoked);
    assert!(iot
        .ca_certificates()
        .await
        .expect("CAs")
        .iter()
        .any(|c| c.id == ca_id && crate::pki::certificate_id(&c.pem) == ca_id));

    // Data plane: a reply publishes; cutting a client that is not connected is done.
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
