//! Two provisioned devices on one stack, for the tests that need a victim and an attacker.

use super::*;

/// A stack with a registered CA and two provisioned devices `a` and `b` (serial, certificate id).
pub struct Fleet {
    pub stack: Stack,
    pub ca: TestCa,
    pub ca_id: String,
    pub a: (Serial, String),
    pub b: (Serial, String),
}

impl Fleet {
    pub async fn new() -> Fleet {
        let stack = Stack::new().await;
        let ca = TestCa::new("fleetguard test CA");
        let ca_id = stack.register_ca(&ca).await;
        let a = stack.provision_device(&ca, &ca_id).await;
        let b = stack.provision_device(&ca, &ca_id).await;
        Fleet {
            stack,
            ca,
            ca_id,
            a,
            b,
        }
    }
}
