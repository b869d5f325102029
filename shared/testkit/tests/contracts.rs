//! The contract suites over the in-memory fakes (the same suites run over the DynamoDB adapters
//! against the emulator in `tests/contracts.rs` at the workspace root).

use fleetguard_testkit::contract::{
    audit_contract, enrollments_contract, identity_store_contract, iot_contract, records_contract,
    registry_contract, rotations_contract,
};
use fleetguard_testkit::world::{FakeIotWorld, FakeWorld};

#[tokio::test]
async fn registry() {
    registry_contract(&FakeWorld::default()).await;
}

#[tokio::test]
async fn records() {
    records_contract(&FakeWorld::default()).await;
}

#[tokio::test]
async fn audit() {
    audit_contract(&FakeWorld::default()).await;
}

#[tokio::test]
async fn identity_store() {
    identity_store_contract(&FakeWorld::default()).await;
}

#[tokio::test]
async fn enrollments() {
    enrollments_contract(&FakeWorld::default()).await;
}

#[tokio::test]
async fn rotations() {
    rotations_contract(&FakeWorld::default()).await;
}

#[tokio::test]
async fn iot() {
    iot_contract(&FakeIotWorld::default()).await;
}
