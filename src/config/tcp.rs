//! Settings of the tcp prober: a TCP connect, optionally with TLS, and the
//! `query_response` conversation over it.

use std::net::IpAddr;

use serde::Deserialize;

use super::{query_response::QueryResponse, tls::TlsConfig, values::IpProtocol};

/// Settings of the tcp prober.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpProbe {
    /// Address family tried first.
    pub(crate) preferred_ip_protocol: IpProtocol,
    /// Whether the other family may be used.
    pub(crate) ip_protocol_fallback: bool,
    /// Local address to connect from.
    pub(crate) source_ip_address: Option<IpAddr>,
    /// The conversation once connected.
    pub(crate) query_response: Vec<QueryResponse>,
    /// Start TLS right after connecting.
    pub(crate) tls: bool,
    /// TLS settings when `tls` is set.
    pub tls_config: TlsConfig,
}

impl Default for TcpProbe {
    fn default() -> Self {
        Self {
            preferred_ip_protocol: IpProtocol::Ip6,
            ip_protocol_fallback: true,
            source_ip_address: None,
            query_response: Vec::new(),
            tls: false,
            tls_config: TlsConfig::default(),
        }
    }
}
