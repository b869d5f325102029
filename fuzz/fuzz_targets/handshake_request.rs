#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleetguard::fuzzing::handshake_request(data));
