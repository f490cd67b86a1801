//! Fuzz target: DNS responses as the dns prober reads and prints them.
//! The invariants are in `../checks.rs`, shared with tests/fuzz_regressions.rs.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::dns_message(data));
