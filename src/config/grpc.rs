//! Settings of the grpc prober: the gRPC health check. (Its options arrive with its implementation.)

use serde::Deserialize;

use super::tls::TlsConfig;

/// Settings of the grpc prober.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcProbe {
    /// TLS settings (tls).
    pub tls_config: TlsConfig,
}
