//! The contract suites over the in-memory fakes: one test per clause, in a module per port
//! (`registry::import_is_conditional`). The same list runs over the DynamoDB and AWS IoT adapters
//! against the emulator in `tests/integration/contracts.rs` at the workspace root.

use fleetguard_testkit::world::{FakeIotWorld, FakeWorld};

fleetguard_testkit::contract_tests!(
    world: FakeWorld::default(),
    iot_world: FakeIotWorld::default(),
);
