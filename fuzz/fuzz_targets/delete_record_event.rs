#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleetguard_testkit::fuzzing::delete_record_event(data));
