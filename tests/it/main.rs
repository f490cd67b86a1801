//! Integration tests: the real `lookout` binary, real sockets on port 0,
//! real signals. One test binary, as zero-to-production arranges it.

// Helpers are `pub` to share them between modules of this one crate.
#![allow(unreachable_pub)]
// A failed unwrap in a test is a failed test, with the location.
#![allow(clippy::unwrap_used)]

mod attacks;
mod auto_reload;
mod blackbox_examples;
mod blackbox_flags;
mod cli;
mod compression;
mod credentials;
mod debug_output;
mod differential;
mod dns;
mod grpc;
mod h2_close;
mod hardening;
mod http3;
mod http_client_differential;
mod http_oauth2;
mod http_peers;
mod http_proxy;
mod icmp;
mod lifecycle;
mod modules_file;
mod observability;
mod probe;
mod query_response;
mod reload;
mod support;
mod targets;
mod tls_cipher;
mod verified_signatures;
mod web_config;
