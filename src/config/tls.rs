//! TLS settings (Prometheus' `tls_config`), shared by the probers that speak
//! TLS: the http prober for https targets, the tcp prober with `tls: true`.

use std::path::PathBuf;

use serde::Deserialize;

use super::values::Secret;

/// TLS settings (Prometheus' `tls_config`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM CA certificates written inline (not with `ca_file`).
    pub(crate) ca: Option<String>,
    /// PEM client certificate written inline (not with `cert_file`).
    pub(crate) cert: Option<String>,
    /// PEM private key written inline (not with `key_file`).
    pub(crate) key: Option<Secret>,
    /// PEM file of CA certificates trusted in addition to the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// Name sent in SNI and checked against the certificate.
    pub(crate) server_name: Option<String>,
    /// Accept any certificate.
    pub(crate) insecure_skip_verify: bool,
    /// Lowest TLS version offered.
    pub(crate) min_version: Option<TlsVersion>,
    /// Highest TLS version offered.
    pub(crate) max_version: Option<TlsVersion>,
}

/// TLS versions as Prometheus' configuration spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub(crate) enum TlsVersion {
    /// TLS 1.0 (rustls implements 1.2 and 1.3 only).
    #[serde(rename = "TLS10")]
    Tls10,
    /// TLS 1.1 (rustls implements 1.2 and 1.3 only).
    #[serde(rename = "TLS11")]
    Tls11,
    /// TLS 1.2
    #[serde(rename = "TLS12")]
    Tls12,
    /// TLS 1.3
    #[serde(rename = "TLS13")]
    Tls13,
}
