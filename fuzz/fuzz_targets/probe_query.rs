//! Fuzz target: `/probe`'s query and scrape-timeout header, `ProbeRequest::parse`, and
//! the probe deadline computed from them.
//! The invariants are in `../checks.rs`, shared with tests/fuzz_regressions.rs.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::probe_query(data));
