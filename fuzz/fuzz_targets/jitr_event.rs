#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleetguard::fuzzing::jitr_event(data));
