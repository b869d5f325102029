//! The authorizer's identity store contract: reads, the count of wrong passwords, conditional puts.

use super::*;

/// An active operator's identity, stored.
async fn stored<W: World>(w: &W) -> Identity {
    let op = operator(w, vec![], OperatorStatus::Active);
    w.identities().put_identity(&op).await.expect("put");
    op
}

/// An identity is read back as put; a missing one reads as none.
pub async fn an_identity_is_read_back_as_put<W: World>(w: &W) {
    let st = w.identities();
    let op = operator(w, vec![], OperatorStatus::Active);
    let missing = PrincipalId::operator("https://contract.example/", &w.unique("missing"));
    assert_eq!(st.get_identity(&missing).await.expect("get"), None);
    st.put_identity(&op).await.expect("put");
    assert_eq!(
        st.get_identity(&op.principal_id).await.expect("get"),
        Some(op.clone())
    );
}

/// Wrong passwords are counted in a window, without a read; a count older than the cutoff starts
/// again at one; a missing identity counts nothing.
pub async fn wrong_passwords_are_counted_in_a_window<W: World>(w: &W) {
    let st = w.identities();
    let pid = stored(w).await.principal_id;
    let missing = PrincipalId::operator("https://contract.example/", &w.unique("missing"));
    let t = |m: u32| Timestamp::parse(&format!("2030-01-01T00:{m:02}:00Z")).expect("time");
    let before = &Timestamp::parse("2029-12-31T23:50:00Z").expect("time");
    assert_eq!(
        st.count_failure(&pid, &t(0), before).await.expect("first"),
        Some(1)
    );
    assert_eq!(
        st.count_failure(&pid, &t(1), before).await.expect("second"),
        Some(2)
    );
    assert_eq!(
        st.count_failure(&pid, &t(2), before).await.expect("third"),
        Some(3)
    );
    assert_eq!(
        st.count_failure(&pid, &t(20), &t(10))
            .await
            .expect("after the window"),
        Some(1)
    );
    assert_eq!(
        st.count_failure(&missing, &t(20), &t(10))
            .await
            .expect("missing"),
        None
    );
    let got = st.get_identity(&pid).await.expect("get").expect("identity");
    assert_eq!((got.failed_attempts, got.failures_since), (1, Some(t(20))));
}

/// A conditional put: an active identity is written, an inactive one never revived.
pub async fn an_inactive_identity_is_never_revived<W: World>(w: &W) {
    let st = w.identities();
    let op = stored(w).await;
    assert!(st
        .put_identity_unless_inactive(&op)
        .await
        .expect("put active"));
    let disabled = operator(w, vec![], OperatorStatus::Disabled);
    st.put_identity(&disabled).await.expect("put disabled");
    let revived = Identity {
        kind: op.kind.clone(),
        ..disabled.clone()
    };
    assert!(!st
        .put_identity_unless_inactive(&revived)
        .await
        .expect("refused"));
    assert_eq!(
        st.get_identity(&disabled.principal_id).await.expect("get"),
        Some(disabled.clone()),
        "still disabled"
    );
}

/// Replacing an identity keeps one item.
pub async fn replacing_an_identity_keeps_one_item<W: World>(w: &W) {
    let st = w.identities();
    let op = stored(w).await;
    let mut again = op.clone();
    if let IdentityKind::Operator { operator_id, .. } = &mut again.kind {
        *operator_id = "renamed".into();
    }
    st.put_identity(&again).await.expect("replace");
    assert_eq!(
        st.get_identity(&op.principal_id).await.expect("get"),
        Some(again)
    );
}

/// A device identity's kind survives the round trip.
pub async fn a_device_identity_round_trips<W: World>(w: &W) {
    let st = w.identities();
    let s = manufactured(w).await;
    let device = Identity {
        principal_id: fleetguard_domain::authorization::authorizer::device_principal(&s),
        kind: IdentityKind::Device {
            serial: s.clone(),
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            status: DeviceStatus::Manufactured,
        },
        failed_attempts: 0,
        failures_since: None,
    };
    st.put_identity(&device).await.expect("put device");
    assert_eq!(
        st.get_identity(&device.principal_id).await.expect("get"),
        Some(device)
    );
}
