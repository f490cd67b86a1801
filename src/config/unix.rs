//! Settings of the unix prober (blackbox_exporter 0.28): the tcp prober's
//! checks over a unix socket, optionally with TLS, and its `query_response`.

use serde::Deserialize;

use super::{query_response::QueryResponse, tls::TlsConfig};

/// Settings of the unix prober.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnixProbe {
    /// The conversation once connected.
    pub(crate) query_response: Vec<QueryResponse>,
    /// Start TLS right after connecting.
    pub(crate) tls: bool,
    /// TLS settings when `tls` is set.
    pub tls_config: TlsConfig,
}
