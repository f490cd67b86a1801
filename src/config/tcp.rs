//! Settings of the tcp prober: a TCP connect, optionally with TLS.

use std::net::IpAddr;

use serde::Deserialize;

use super::{tls::TlsConfig, values::IpProtocol};

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
            tls: false,
            tls_config: TlsConfig::default(),
        }
    }
}
