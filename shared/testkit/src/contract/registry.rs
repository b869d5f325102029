//! The registry contract: conditional imports, bindings, transitions, deny-list, hold, replacement
//! approval, operator status.

use super::*;

/// Import is conditional: the second import of a serial changes nothing.
pub async fn import_is_conditional<W: World>(w: &W) {
    let r = w.registry();
    let s = serial(w);
    assert_eq!(r.get_device(&s).await.expect("get"), None, "unknown serial");
    assert!(r.import_serial(&s).await.expect("import"), "first import");
    assert!(!r.import_serial(&s).await.expect("import"), "second import");
    let d = r.get_device(&s).await.expect("get").expect("device");
    assert_eq!(d.status, DeviceStatus::Manufactured);
    assert_eq!(d.certificate_id, None);
}

/// Binding a manufactured serial makes it active with a certificate record.
pub async fn binding_activates_a_manufactured_serial<W: World>(w: &W) {
    let r = w.registry();
    let s = manufactured(w).await;
    let c = cert_id(w);
    r.bind_certificate(&s, &c, None, None).await.expect("bind");
    let d = r.get_device(&s).await.expect("get").expect("device");
    assert_eq!(d.status, DeviceStatus::Active);
    assert_eq!(d.certificate_id.as_ref(), Some(&c));
    assert!(d.version >= 1, "a binding counts as a version");
    let rec = r.get_certificate(&c).await.expect("get").expect("record");
    assert_eq!(
        (rec.serial.clone(), rec.denied, rec.held),
        (s.clone(), false, false)
    );
}

/// The same binding again is a no-op; a second certificate for an active serial is refused.
pub async fn rebinding_is_a_noop_and_a_second_certificate_is_refused<W: World>(w: &W) {
    let r = w.registry();
    let (s, c) = active(w).await;
    r.bind_certificate(&s, &c, None, None)
        .await
        .expect("rebind same");
    let other = cert_id(w);
    let err = r
        .bind_certificate(&s, &other, None, None)
        .await
        .expect_err("second certificate");
    assert!(err.is_condition_failed(), "{err}");
    assert_eq!(
        r.get_certificate(&other).await.expect("get"),
        None,
        "all or nothing"
    );
}

/// An active device without a certificate (a password device) takes its first certificate.
pub async fn a_password_device_takes_its_first_certificate<W: World>(w: &W) {
    let r = w.registry();
    let pw = manufactured(w).await;
    assert!(r
        .transition(&pw, &[DeviceStatus::Manufactured], DeviceStatus::Active)
        .await
        .expect("activate"));
    let first = cert_id(w);
    r.bind_certificate(&pw, &first, None, None)
        .await
        .expect("password device gets a certificate");
    let d = r.get_device(&pw).await.expect("get").expect("device");
    assert_eq!(
        (d.status, d.certificate_id.as_ref()),
        (DeviceStatus::Active, Some(&first))
    );
}

/// Binding an unknown serial is refused.
pub async fn binding_an_unknown_serial_is_refused<W: World>(w: &W) {
    let err = w
        .registry()
        .bind_certificate(&serial(w), &cert_id(w), None, None)
        .await
        .expect_err("unknown serial");
    assert!(err.is_condition_failed(), "{err}");
}

/// Transitions are conditional on the current status.
pub async fn transitions_are_conditional_on_the_status<W: World>(w: &W) {
    let r = w.registry();
    let (s, _) = active(w).await;
    assert!(r
        .transition(&s, &[DeviceStatus::Active], DeviceStatus::Quarantined)
        .await
        .expect("quarantine"));
    assert!(!r
        .transition(&s, &[DeviceStatus::Active], DeviceStatus::Quarantined)
        .await
        .expect("again"));
    assert!(!r
        .transition(&serial(w), &[DeviceStatus::Active], DeviceStatus::Revoked)
        .await
        .expect("unknown"));
    assert!(r
        .transition(
            &s,
            &[DeviceStatus::Active, DeviceStatus::Quarantined],
            DeviceStatus::Revoked
        )
        .await
        .expect("revoke"));
}

/// Replacement: only a revoked device, and then exactly one new certificate binds.
pub async fn only_a_revoked_device_binds_one_replacement<W: World>(w: &W) {
    let r = w.registry();
    let (s, _) = active(w).await;
    assert!(r
        .transition(&s, &[DeviceStatus::Active], DeviceStatus::Revoked)
        .await
        .expect("revoke"));
    let (live, _) = active(w).await;
    assert!(
        !r.approve_replacement(&live).await.expect("approve"),
        "active device"
    );
    assert!(
        r.approve_replacement(&s).await.expect("approve"),
        "revoked device"
    );
    let replacement = cert_id(w);
    r.bind_certificate(&s, &replacement, None, None)
        .await
        .expect("approved replacement binds");
    let d = r.get_device(&s).await.expect("get").expect("device");
    assert_eq!(
        (d.status, d.certificate_id.as_ref(), d.replacement_approved),
        (DeviceStatus::Active, Some(&replacement), false)
    );
}

/// The deny-list: a denied certificate is never bound again, even to its own serial.
pub async fn a_denied_certificate_never_binds<W: World>(w: &W) {
    let r = w.registry();
    let (s, c) = active(w).await;
    r.deny_certificate(&c, &s).await.expect("deny");
    let rec = r.get_certificate(&c).await.expect("get").expect("record");
    assert!(rec.denied);
    assert_eq!(rec.serial, s);
    let fresh = manufactured(w).await;
    let denied_elsewhere = cert_id(w);
    r.deny_certificate(&denied_elsewhere, &fresh)
        .await
        .expect("deny");
    let err = r
        .bind_certificate(&fresh, &denied_elsewhere, None, None)
        .await
        .expect_err("denied certificate");
    assert!(err.is_condition_failed(), "{err}");
}

/// Hold and release a certificate.
pub async fn a_certificate_is_held_and_released<W: World>(w: &W) {
    let r = w.registry();
    let (s, c) = active(w).await;
    r.hold_certificate(&c, &s, true).await.expect("hold");
    assert!(r.get_certificate(&c).await.expect("get").expect("rec").held);
    r.hold_certificate(&c, &s, false).await.expect("release");
    assert!(!r.get_certificate(&c).await.expect("get").expect("rec").held);
}

/// Operators are read as principals, with their status and serials.
pub async fn operators_are_read_as_principals<W: World>(w: &W) {
    let r = w.registry();
    assert_eq!(
        r.get_principal(&PrincipalId::operator(
            "https://contract.example/",
            "nobody"
        ))
        .await
        .expect("get"),
        None
    );
    let s = manufactured(w).await;
    let op = operator(w, vec![s.clone()], OperatorStatus::Active);
    let id = op.principal_id.clone();
    w.put_identity(&op).await;
    match r.get_principal(&id).await.expect("get") {
        Some(AuthorizerPrincipal::Operator {
            active,
            status,
            serials,
            ..
        }) => assert_eq!(
            (active, status, serials),
            (true, OperatorStatus::Active, vec![s.clone()])
        ),
        other => panic!("operator expected, got {other:?}"),
    }
}

/// An operator's status changes only from one of the statuses named.
pub async fn operator_status_changes_are_conditional<W: World>(w: &W) {
    let r = w.registry();
    let s = manufactured(w).await;
    let op = operator(w, vec![s], OperatorStatus::Active);
    let id = op.principal_id.clone();
    w.put_identity(&op).await;
    assert!(r
        .set_operator_status(&id, &[OperatorStatus::Active], OperatorStatus::Disabled)
        .await
        .expect("disable"));
    assert!(!r
        .set_operator_status(&id, &[OperatorStatus::Active], OperatorStatus::Revoked)
        .await
        .expect("not active any more"));
    assert!(!r
        .set_operator_status(
            &PrincipalId::operator("https://contract.example/", "nobody"),
            &[OperatorStatus::Active],
            OperatorStatus::Revoked
        )
        .await
        .expect("unknown"));
    assert!(!r
        .set_operator_status(&id, &[], OperatorStatus::Revoked)
        .await
        .expect("empty from"));
}
