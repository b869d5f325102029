//! Contract suites: one module per port, each promise of the port one named clause (`pub async fn
//! import_is_conditional<W: World>(w: &W)`), run against the in-memory fakes
//! (`shared/testkit/tests/contracts.rs`) and against the real adapters on the emulator
//! (`tests/integration/contracts.rs`). The same assertions on both sides keep the fakes honest: a
//! fake that drifts from what the adapter (and so AWS) does fails here, not in a use-case test that
//! trusted it.
//!
//! Both sides generate their tests from one list, [`contract_tests!`](crate::contract_tests): one
//! `#[tokio::test]` per clause and world (`registry::import_is_conditional`), so a failure names the
//! promise broken and no clause hides another. Each clause sets up what it needs on a world of its
//! own or one shared with other clauses (names from [`World::unique`] never collide).
//!
//! A [`World`] is one port set sharing state, as the tables do on AWS: the registry, the records
//! (whose entitlement checks read the registry), the audit log (which the records' transactions
//! write to) and the authorizer's identity store (whose items the registry reads as principals).

use fleetguard_domain::authorization::authorizer::{
    Identity, IdentityKind, IdentityStore, OperatorStatus, PrincipalId,
};
use fleetguard_domain::model::{
    AuditEntry, CertificateId, DeviceStatus, Outcome, Principal, Reason, Record, RecordId, Serial,
    Timestamp,
};
use fleetguard_domain::model::{CertificateStatus, Enrollment};
use fleetguard_domain::ports::{
    AuditLog, AuthorizerPrincipal, Connections, Enrollments, Entitlement, IotControl,
    PendingBinding, PrincipalFacts, ProofSpend, Publisher, Records, Registry, RestoreResult,
    Rotations, SoftDelete, SoftDeleteResult,
};
use fleetguard_domain::provisioning::enrollment::secret_hash;
use std::future::Future;

pub mod audit;
pub mod enrollments;
pub mod identities;
pub mod iot;
pub mod records;
pub mod registry;
pub mod rotations;

/// One `#[tokio::test]` per contract clause, in a module per port (`registry::import_is_conditional`),
/// each on a world of its own: `world` builds a [`World`], `iot_world` an [`IotWorld`] (each may
/// `.await`). Invoked once over the fakes and once over the adapters, so both run every clause; a
/// further test fails when a clause (a `pub async fn` of a port's file) is missing from this list.
#[macro_export]
macro_rules! contract_tests {
    (world: $world:expr, iot_world: $iot:expr $(,)?) => {
        $crate::contract_tests! { @ports [$world] [$iot]
            registry(world) {
                import_is_conditional,
                binding_activates_a_manufactured_serial,
                rebinding_is_a_noop_and_a_second_certificate_is_refused,
                a_password_device_takes_its_first_certificate,
                binding_an_unknown_serial_is_refused,
                transitions_are_conditional_on_the_status,
                only_a_revoked_device_binds_one_replacement,
                a_denied_certificate_never_binds,
                a_certificate_is_held_and_released,
                operators_are_read_as_principals,
                operator_status_changes_are_conditional,
            }
            records(world) {
                a_record_is_read_back_as_put,
                one_read_loads_the_principal_facts_and_the_record,
                a_stale_version_changes_nothing,
                a_certificate_not_current_is_not_entitled,
                an_entitled_delete_moves_the_version_with_its_audit_entry,
                a_deleted_record_is_not_deleted_again,
                a_missing_record_is_not_deleted,
                deletes_are_found_by_principal_in_the_window,
                a_restore_needs_a_record_deleted_by_the_principal_named,
                a_batch_restores_only_what_is_still_deleted_by_the_principal,
                a_revoked_device_is_not_entitled,
                an_operator_is_entitled_to_granted_serials_only,
                a_password_device_is_entitled_without_a_certificate,
            }
            audit(world) {
                entries_by_serial_are_newest_first_and_bounded,
                entries_by_principal_are_read_since_a_time,
                an_entry_is_written_once_per_key,
                an_entry_is_found_by_its_key,
                every_field_round_trips,
                entries_without_a_serial_are_found_by_principal,
            }
            identities(world) {
                an_identity_is_read_back_as_put,
                wrong_passwords_are_counted_in_a_window,
                an_inactive_identity_is_never_revived,
                replacing_an_identity_keeps_one_item,
                a_device_identity_round_trips,
            }
            enrollments(world) {
                one_read_loads_the_device_and_its_certificate,
                a_stale_version_binds_nothing,
                a_wrong_secret_binds_nothing,
                the_binding_activates_spends_the_secret_and_is_audited,
                a_replayed_binding_loses,
                a_stale_pending_certificate_is_replaced_and_denied,
                confirming_clears_the_pending_mark_once,
            }
            rotations(world) {
                a_binding_records_the_certificate_facts,
                a_stale_version_writes_nothing,
                the_write_is_read_back_with_its_record_and_entry,
                a_replayed_audit_entry_fails_the_whole_write,
                a_certificate_of_another_serial_is_not_recorded,
                a_certificate_is_deny_listed_with_the_write,
                the_sweep_index_holds_due_devices_only,
                the_expiry_index_finds_a_window_across_months,
                a_session_is_noted_only_in_a_grace_period,
                the_newest_session_wins_and_is_not_version_counted,
                only_the_session_named_ends,
            }
            iot(iot_world) {
                unknown_certificates_are_described_as_none,
                a_registered_ca_is_active_and_named_by_its_der_hash,
                registered_cas_are_listed_with_their_pem,
                a_registered_certificate_is_pending_and_named_by_its_der_hash,
                things_and_principals_attach_idempotently,
                policies_attach_and_detach_idempotently,
                revoked_is_the_final_status,
                thing_group_membership_is_idempotent,
                a_registered_certificate_keeps_its_first_status,
                an_isolation_registers_a_certificate_revoked,
                the_data_plane_publishes_and_disconnects,
            }
        }
    };
    (@ports [$world:expr] [$iot:expr] $($port:ident($kind:ident) { $($clause:ident),+ $(,)? })+) => {
        $(
            mod $port {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[tokio::test]
                    async fn $clause() {
                        let world = $crate::contract_tests!(@world $kind [$world] [$iot]);
                        $crate::contract::$port::$clause(&world).await;
                    }
                )+
            }
        )+

        /// Every clause of every port's file has its test here.
        #[test]
        fn every_contract_clause_is_listed() {
            $crate::contract::assert_all_listed(&[
                $((stringify!($port), &[$(stringify!($clause)),+])),+
            ]);
        }
    };
    (@world world [$world:expr] [$iot:expr]) => {
        $world
    };
    (@world iot_world [$world:expr] [$iot:expr]) => {
        $iot
    };
}

/// Fails unless `listed` names exactly the clauses (`pub async fn`s) of every port's file in
/// `shared/testkit/src/contract/`, port by port.
pub fn assert_all_listed(listed: &[(&str, &[&str])]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/contract");
    let mut found = std::collections::BTreeMap::new();
    for file in std::fs::read_dir(&dir).expect("the contract sources") {
        let path = file.expect("a contract source").path();
        let port = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a file name")
            .to_owned();
        if port == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a contract source");
        let clauses: std::collections::BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .filter_map(|l| l.split(['<', '(']).next())
            .map(str::to_owned)
            .collect();
        found.insert(port, clauses);
    }
    let listed: std::collections::BTreeSet<(String, String)> = listed
        .iter()
        .flat_map(|(port, clauses)| {
            clauses
                .iter()
                .map(|c| ((*port).to_owned(), (*c).to_owned()))
        })
        .collect();
    let found: std::collections::BTreeSet<(String, String)> = found
        .into_iter()
        .flat_map(|(port, clauses)| clauses.into_iter().map(move |c| (port.clone(), c)))
        .collect();
    let unlisted: Vec<_> = found.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&found).collect();
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "contract_tests! (shared/testkit/src/contract/mod.rs) must list every clause: \
         not listed {unlisted:?}, listed but not a clause {gone:?}"
    );
}

/// One set of ports sharing state.
pub trait World: Send + Sync {
    type Registry: Registry;
    type Records: Records;
    type Audit: AuditLog;
    type Identities: IdentityStore;
    type Enrollments: Enrollments;
    type Rotations: Rotations;
    fn registry(&self) -> &Self::Registry;
    /// The registry as rotation uses it (same table).
    fn rotations(&self) -> &Self::Rotations;
    /// The registry as the pre-provisioning hook uses it (same table).
    fn enrollments(&self) -> &Self::Enrollments;
    fn records(&self) -> &Self::Records;
    fn audit(&self) -> &Self::Audit;
    fn identities(&self) -> &Self::Identities;
    /// Stores an authorizer identity where both the authorizer and the registry read it (one item
    /// on AWS).
    fn put_identity(&self, identity: &Identity) -> impl Future<Output = ()> + Send;
    /// A name no other case of this run uses (worlds may share one emulator).
    fn unique(&self, prefix: &str) -> String;
}

/// A principal no other case of this run uses (an operator's minted id).
fn unique_principal<W: World>(w: &W, tag: &str) -> Principal {
    Principal::Authorizer(PrincipalId::operator(
        "https://contract.example/",
        &w.unique(tag),
    ))
}

/// How many audit entries `s` has (at most 10).
async fn audited<W: World>(w: &W, s: &Serial) -> usize {
    w.audit()
        .for_serial(s.as_str(), 10)
        .await
        .expect("audit")
        .len()
}

fn serial<W: World>(w: &W) -> Serial {
    Serial::parse(&w.unique("SN")).expect("serial")
}

/// A certificate id no other case uses: SHA-256 of a fresh name.
fn cert_id<W: World>(w: &W) -> CertificateId {
    CertificateId::parse(&secret_hash(w.unique("cert").as_bytes())).expect("certificate id")
}

async fn manufactured<W: World>(w: &W) -> Serial {
    let s = serial(w);
    assert!(w.registry().import_serial(&s).await.expect("import"));
    s
}

async fn active<W: World>(w: &W) -> (Serial, CertificateId) {
    let s = manufactured(w).await;
    let c = cert_id(w);
    w.registry()
        .bind_certificate(&s, &c, None, None)
        .await
        .expect("bind");
    (s, c)
}

fn operator(w: &impl World, serials: Vec<Serial>, status: OperatorStatus) -> Identity {
    let mut identity = Identity::operator(
        "https://idp.example.com/",
        &w.unique("sub"),
        "contract-operator",
        serials,
    );
    if let IdentityKind::Operator { status: s, .. } = &mut identity.kind {
        *s = status;
    }
    identity
}

/// The AWS IoT control plane as the functions use it, with what the world can observe of it.
pub trait IotWorld: Send + Sync {
    type Iot: IotControl;
    type Publisher: Publisher;
    type Connections: Connections;
    fn iot(&self) -> &Self::Iot;
    fn publisher(&self) -> &Self::Publisher;
    fn connections(&self) -> &Self::Connections;
    /// Registers a CA, ACTIVE with auto-registration.
    fn register_ca(&self, pem: &str) -> impl Future<Output = CertificateId> + Send;
    /// Registers a device certificate PENDING_ACTIVATION, as auto-registration does.
    fn register_certificate(
        &self,
        pem: &str,
        ca_pem: &str,
    ) -> impl Future<Output = CertificateId> + Send;
    /// Creates an IoT policy (the template's job on AWS; attaching needs it to exist there).
    fn create_policy(&self, name: &str) -> impl Future<Output = ()> + Send;
    fn thing_principals(&self, thing: &str) -> impl Future<Output = Vec<String>> + Send;
    fn attached_policies(&self, cert_arn: &str) -> impl Future<Output = Vec<String>> + Send;
    fn group_members(&self, group: &str) -> impl Future<Output = Vec<String>> + Send;
    fn unique(&self, prefix: &str) -> String;
}
