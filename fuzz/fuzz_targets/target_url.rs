//! Fuzz target: target URLs and redirect Locations, as Go reads them.
//! The invariants are in `../checks.rs`, shared with tests/fuzz_regressions.rs.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::target_url(data));
