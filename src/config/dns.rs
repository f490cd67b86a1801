//! Settings of the dns prober: a DNS query to a server. (Its options arrive with its implementation.)

use serde::Deserialize;

use super::tls::TlsConfig;

/// Settings of the dns prober.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsProbe {
    /// TLS settings (dns_over_tls).
    pub tls_config: TlsConfig,
}
