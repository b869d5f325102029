//! The audit log contract: written once per idempotency key, read by serial (newest first, bounded)
//! and by principal (since a time).

use super::*;
use fleetguard_domain::model::AuditAction;

/// Three entries (`n=0` to `n=2`, in that order) of a fresh serial and principal, and their times.
async fn three_entries<W: World>(w: &W) -> (Serial, Principal, Vec<Timestamp>) {
    let a = w.audit();
    let s = serial(w);
    let principal = unique_principal(w, "pr");
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
    (s, principal, times)
}

/// Read by serial: newest first, bounded; another serial has none.
pub async fn entries_by_serial_are_newest_first_and_bounded<W: World>(w: &W) {
    let a = w.audit();
    let (s, _, _) = three_entries(w).await;
    let newest = a.for_serial(s.as_str(), 2).await.expect("for_serial");
    assert_eq!(newest.len(), 2, "bounded");
    assert_eq!(newest[0].detail.as_deref(), Some("n=2"), "newest first");
    assert_eq!(newest[1].detail.as_deref(), Some("n=1"));
    assert!(a
        .for_serial(serial(w).as_str(), 10)
        .await
        .expect("none")
        .is_empty());
}

/// Read by principal: the entries since a time.
pub async fn entries_by_principal_are_read_since_a_time<W: World>(w: &W) {
    let a = w.audit();
    let (_, principal, times) = three_entries(w).await;
    let since = by_principal_eventually(a, &principal, &times[1], 2).await;
    let mut details: Vec<_> = since.iter().filter_map(|e| e.detail.clone()).collect();
    details.sort();
    assert_eq!(details, vec!["n=1".to_owned(), "n=2".to_owned()]);
    assert_eq!(
        by_principal_eventually(a, &principal, &Timestamp::epoch(), 3)
            .await
            .len(),
        3
    );
}

/// An entry with an idempotency key (`message-1`), of a fresh serial.
fn keyed<W: World>(w: &W) -> (Serial, AuditEntry) {
    let s = serial(w);
    let mut e = AuditEntry::new(
        "contract",
        AuditAction::Authorize,
        Outcome::Noop,
        Reason::AlreadyProvisioned,
    )
    .serial(s.as_str());
    e.dedupe = Some("message-1".into());
    (s, e)
}

/// Idempotency: the same time and key are written once.
pub async fn an_entry_is_written_once_per_key<W: World>(w: &W) {
    let a = w.audit();
    let (s, e) = keyed(w);
    assert!(a.record(&e).await.expect("first"));
    assert!(
        !a.record(&e).await.expect("replay"),
        "a replay writes nothing"
    );
    let same = a.for_serial(s.as_str(), 10).await.expect("for_serial");
    assert_eq!(
        same.iter()
            .filter(|x| x.reason == Reason::AlreadyProvisioned)
            .count(),
        1
    );
}

/// Found by its key, consistently; another key finds nothing.
pub async fn an_entry_is_found_by_its_key<W: World>(w: &W) {
    let a = w.audit();
    let (s, e) = keyed(w);
    assert!(a.record(&e).await.expect("record"));
    let found = a.find(s.as_str(), &e.at, "message-1").await.expect("find");
    assert_eq!(found.map(|x| x.reason), Some(Reason::AlreadyProvisioned));
    assert_eq!(
        a.find(s.as_str(), &e.at, "message-2").await.expect("find"),
        None
    );
}

/// Round trip of every field.
pub async fn every_field_round_trips<W: World>(w: &W) {
    let a = w.audit();
    let (s, _, _) = three_entries(w).await;
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
}

/// Entries without a serial are found by principal.
pub async fn entries_without_a_serial_are_found_by_principal<W: World>(w: &W) {
    let a = w.audit();
    let lone = unique_principal(w, "lone");
    let e = AuditEntry::new(
        "contract",
        AuditAction::Authorize,
        Outcome::Rejected,
        Reason::BadSignature,
    )
    .principal(lone.as_str());
    assert!(a.record(&e).await.expect("record"));
    let back = by_principal_eventually(a, &lone, &Timestamp::epoch(), 1).await;
    assert_eq!(back, vec![e]);
}

/// The entries of `principal` since `since`, read until `want` are there: the index behind this read
/// is eventually consistent on AWS (a GSI), so a write is not promised to be visible at once.
async fn by_principal_eventually<A: AuditLog>(
    a: &A,
    principal: &Principal,
    since: &Timestamp,
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
