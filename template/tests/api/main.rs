//! The service over real sockets: started in-process on 127.0.0.1:0
//! (`helpers::spawn_app`), or the built binary as a child process
//! (`binary.rs`). One test binary, so cargo links once.
//!
//! No test compares a value that depends on timing: warm-ups and delays are
//! either held by the test or long enough never to end during it, and
//! whatever takes time is polled for with a generous limit.

// A failed unwrap in a test is a failed test, with its location; helpers too.
#![allow(clippy::unwrap_used)]

mod binary;
mod health;
mod helpers;
mod metrics;
mod shutdown;
