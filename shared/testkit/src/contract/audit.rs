//! The audit log contract.

use super::*;
use fleetguard_domain::model::AuditAction;

/// The audit log: written once per idempotency key, read by serial (newest first, bounded) and by
/// principal (since a time).
pub async fn audit_contract<W: World>(w: &W) {
    let a = w.audit();
    let s = serial(w);
    let principal = w.unique("pr");
    let mut times = Vec::new();
    for i in 0..3 {
        let e = AuditEntry::new(
            "contract",
            AuditAction::Authorize,
            Outcome::Accepted,
            Reason::Provisioned,
        )
        .serial(s.as_str())
        .principal(principal.as_str())
        .detail(format!("n={i}"));
        times.push(e.at.clone());
        assert!(a.record(&e).await.expect("record"));
        // Distinct timestamps (nanoseconds; the order is the text order).
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let newest = a.for_serial(s.as_str(), 2).await.expect("for_serial");
    assert_eq!(newest.len(), 2, "bounded");
    assert_eq!(newest[0].detail.as_deref(), Some("n=2"), "newest first");
    assert_eq!(newest[1].detail.as_deref(), Some("n=1"));
    assert!(a
        .for_serial(serial(w).as_str(), 10)
        .await
        .expect("none")
        .is_empty());
    let since = by_principal_eventually(a, &principal, &times[1], 2).await;
    let mut details: Vec<_> = since.iter().filter_map(|e| e.detail.clone()).collect();
    details.sort();
    assert_eq!(details, vec!["n=1".to_owned(), "n=2".to_owned()]);
    assert_eq!(
        by_principal_eventually(a, &principal, "0", 3).await.len(),
        3
    );

    // Idempotency: the same time and key are written once.
    let mut e = AuditEntry::new(
        "contract",
        AuditAction::Authorize,
        Outcome::Noop,
        Reason::AlreadyProvisioned,
    )
    .serial(s.as_str());
    e.dedupe = Some("message-1".into());
    assert!(a.record(&e).await.expect("first"));
    assert!(
        !a.record(&e).await.expect("replay"),
        "a replay writes nothing"
    );
    // Found by its key, consistently; another key finds nothing.
    let found = a.find(s.as_str(), &e.at, "message-1").await.expect("find");
    assert_eq!(found.map(|x| x.reason), Some(Reason::AlreadyProvisioned));
    assert_eq!(
        a.find(s.as_str(), &e.at, "message-2").await.expect("find"),
        None
    );
    let same = a.for_serial(s.as_str(), 10).await.expect("for_serial");
    assert_eq!(
        same.iter()
            .filter(|x| x.reason == Reason::AlreadyProvisioned)
            .count(),
        1
    );
    // Round trip of every field.
    let full = AuditEntry::new(
        "contract",
        AuditAction::DeleteRecord,
        Outcome::Rejected,
        Reason::PrincipalMismatch,
    )
    .serial(s.as_str())
    .principal("p")
    .record("rec-1")
    .detail("why");
    assert!(a.record(&full).await.expect("record"));
    let back = a.for_serial(s.as_str(), 1).await.expect("read");
    assert_eq!(back[0], full);
    // Entries without a serial are found by principal.
    let lone = w.unique("lone");
    let e = AuditEntry::new(
        "contract",
        AuditAction::Authorize,
        Outcome::Rejected,
        Reason::BadSignature,
    )
    .principal(lone.as_str());
    assert!(a.record(&e).await.expect("record"));
    let back = by_principal_eventually(a, &lone, "0", 1).await;
    assert_eq!(back, vec![e]);
}

/// The entries of `principal` since `since`, read until `want` are there: the index behind this read
/// is eventually consistent on AWS (a GSI), so a write is not promised to be visible at once.
async fn by_principal_eventually<A: AuditLog>(
    a: &A,
    principal: &str,
    since: &str,
    want: usize,
) -> Vec<AuditEntry> {
    for _ in 0..50 {
        let got = a
            .for_principal(principal, since)
            .await
            .expect("for_principal");
        if got.len() >= want {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    a.for_principal(principal, since)
        .await
        .expect("for_principal")
}
