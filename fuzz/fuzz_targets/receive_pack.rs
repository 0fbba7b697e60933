#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grite_locks::fuzzing::check_receive_pack(data));
