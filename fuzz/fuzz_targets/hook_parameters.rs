#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleetguard::fuzzing::hook_parameters(data));
