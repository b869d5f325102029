#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleetguard_testkit::fuzzing::rotation_event(data));
