//! Integration tests: the real `lookout` binary, real sockets on port 0,
//! real signals. One test binary, as zero-to-production arranges it.

// Helpers are `pub` to share them between modules of this one crate.
#![allow(unreachable_pub)]
// A failed unwrap in a test is a failed test, with the location.
#![allow(clippy::unwrap_used)]

mod attacks;
mod blackbox_flags;
mod cli;
mod credentials;
mod differential;
mod dns;
mod grpc;
mod hardening;
mod icmp;
mod lifecycle;
mod modules_file;
mod observability;
mod probe;
mod reload;
mod support;
mod targets;
mod web_config;
