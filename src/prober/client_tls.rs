//! Client TLS configurations for probes.
//!
//! Trust is webpki-roots, compiled into the binary, plus whatever `ca_file` a
//! module names: no operating-system trust store is read, so lookout works in
//! an empty root file system. The crypto provider is ring, and only ring.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{
        verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
    },
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedProtocolVersion,
};

use crate::config::{TlsConfig, TlsVersion};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {cause}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        cause: rustls::pki_types::pem::Error,
    },
    /// A PEM file held no certificate.
    #[error("{path}: no certificate found")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// PEM written in the modules file (`ca`, `cert`, `key`) is unusable.
    #[error("tls_config.{key}: {message}")]
    Inline {
        /// The key it is written under.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A CA certificate was rejected as a trust anchor.
    #[error("{source_name}: unusable CA certificate: {cause}")]
    BadCa {
        /// The file, or `tls_config.ca`.
        source_name: String,
        /// rustls' reason.
        cause: rustls::Error,
    },
    /// The version range or client certificate was rejected by rustls.
    #[error("{0}")]
    Rustls(rustls::Error),
}

impl From<rustls::Error> for TlsError {
    fn from(cause: rustls::Error) -> Self {
        Self::Rustls(cause)
    }
}

/// The provider every configuration uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The probes' provider: ring's, with the cipher suites in Go's order of
/// preference (crypto/tls on a processor with AES instructions: AES-128-GCM,
/// AES-256-GCM, ChaCha20-Poly1305; ECDSA before RSA), where rustls puts
/// AES-256-GCM first. A server that follows the client's order (nginx's and
/// rustls' default) then negotiates what it negotiates with blackbox_exporter,
/// and the TLS 1.3 key schedule hashes with SHA-256 instead of SHA-384: 0.15 M
/// fewer instructions per probe of bench/profile.sh's target (issue 18).
/// Chain signatures verified once are remembered (`verified_signatures`).
fn client_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.signature_verification_algorithms = super::verified_signatures::remembering();
    provider.cipher_suites.sort_by_key(|suite| {
        let name = suite.suite().as_str().unwrap_or_default();
        let cipher = if name.contains("AES_128_GCM") {
            0
        } else if name.contains("AES_256_GCM") {
            1
        } else {
            2
        };
        (suite.tls13().is_none(), cipher)
    });
    provider
}

/// The compiled-in Mozilla roots.
pub(crate) fn webpki_roots() -> RootCertStore {
    RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
}

/// A trust root's subject (DER) and `NotAfter` (Unix time).
#[derive(Debug, Clone, PartialEq)]
pub struct RootExpiry {
    /// The raw subject name, compared with a chain's top issuer.
    pub subject: Vec<u8>,
    /// Expiry in Unix seconds.
    pub not_after: f64,
}

fn root_expiries(certs: &[CertificateDer<'static>]) -> Vec<RootExpiry> {
    certs
        .iter()
        .filter_map(|der| super::certificate::Certificate::parse(der))
        .map(|cert| RootExpiry {
            subject: cert.subject.raw().to_vec(),
            not_after: cert.not_after as f64,
        })
        .collect()
}

/// A module's client TLS setup.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The rustls configuration handshakes use.
    pub config: Arc<ClientConfig>,
    /// Subject and expiry of each `ca_file` certificate, parsed once here
    /// rather than on every probe: reported when it anchors a chain.
    pub extra_roots: Vec<RootExpiry>,
    /// `insecure_skip_verify` is set: nothing is verified.
    pub insecure: bool,
}

/// Builds the client configuration for one module's `tls_config`; `alpn`
/// lists the protocols offered, most preferred first.
pub(crate) fn client_config(tls: &TlsConfig, alpn: &[&[u8]]) -> Result<ClientTls, TlsError> {
    build(tls, alpn, &Arc::new(client_provider()))
}

/// The client configuration of an HTTP/3 probe (`enable_http3`): TLS 1.3
/// only (blackbox_exporter raises the minimum to 1.3, as QUIC requires),
/// ALPN `h3`, and the AES-GCM suites only, so that the hash length the
/// handshake shows (see `http::h3`) names the negotiated suite: every TLS
/// 1.3 server implements TLS_AES_128_GCM_SHA256 (RFC 8446, section 9.1).
pub(crate) fn quic_client_config(tls: &TlsConfig) -> Result<ClientTls, TlsError> {
    let mut tls = tls.clone();
    tls.min_version = Some(TlsVersion::Tls13);
    let mut provider = client_provider();
    provider.cipher_suites.retain(|suite| {
        matches!(
            suite.suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
        )
    });
    build(&tls, &[b"h3"], &Arc::new(provider))
}

fn build(
    tls: &TlsConfig,
    alpn: &[&[u8]],
    provider: &Arc<CryptoProvider>,
) -> Result<ClientTls, TlsError> {
    let versions = versions(tls.min_version, tls.max_version);
    let builder =
        ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let extra_roots = match (&tls.ca, &tls.ca_file) {
        (Some(pem), _) => inline_certs(pem, "ca")?,
        (None, Some(path)) => read_certs(path)?,
        (None, None) => Vec::new(),
    };
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                provider.signature_verification_algorithms,
            )))
    } else {
        let mut roots = webpki_roots();
        for cert in &extra_roots {
            roots.add(cert.clone()).map_err(|cause| TlsError::BadCa {
                source_name: match &tls.ca_file {
                    Some(path) if tls.ca.is_none() => path.display().to_string(),
                    _ => "tls_config.ca".to_owned(),
                },
                cause,
            })?;
        }
        builder.with_root_certificates(roots)
    };
    let chain = match (&tls.cert, &tls.cert_file) {
        (Some(pem), _) => Some(inline_certs(pem, "cert")?),
        (None, Some(path)) => Some(read_certs(path)?),
        (None, None) => None,
    };
    let key = match (&tls.key, &tls.key_file) {
        (Some(pem), _) => Some(PrivateKeyDer::from_pem_slice(pem.0.as_bytes()).map_err(
            // The parser's message quotes no part of the key.
            |cause| TlsError::Inline {
                key: "key",
                message: cause.to_string(),
            },
        )?),
        (None, Some(path)) => Some(read_key(path)?),
        (None, None) => None,
    };
    let mut config = match (chain, key) {
        (Some(chain), Some(key)) => builder.with_client_auth_cert(chain, key)?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Every probe does a full handshake, as blackbox_exporter's do: a resumed
    // session verifies nothing and would keep reporting a certificate the
    // server no longer serves.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(ClientTls {
        config: Arc::new(config),
        extra_roots: root_expiries(&extra_roots),
        insecure: tls.insecure_skip_verify,
    })
}

/// The versions in `[min, max]` that rustls implements (1.2 and 1.3): a
/// minimum of TLS10 or TLS11 therefore means 1.2.
fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
) -> Vec<&'static SupportedProtocolVersion> {
    let min = min.unwrap_or(TlsVersion::Tls12);
    let max = max.unwrap_or(TlsVersion::Tls13);
    [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, v)| v)
    .collect()
}

/// A client configuration for the readiness check of lookout's own probe
/// listener: it connects to itself over loopback, so there is nothing to
/// verify (the handshake's signature still is).
pub(crate) fn self_check_config() -> Arc<ClientConfig> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
            provider.signature_verification_algorithms,
        )))
        .with_no_client_auth();
    Arc::new(config)
}

/// The certificates of PEM text written in a configuration file itself;
/// the error says what is wrong, for the caller to name the key.
pub(crate) fn pem_text_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|cause| cause.to_string())?;
    if certs.is_empty() {
        return Err("no certificate found".to_owned());
    }
    Ok(certs)
}

/// The certificates of PEM text written under `key` in a `tls_config`.
fn inline_certs(pem: &str, key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    pem_text_certs(pem).map_err(|message| TlsError::Inline { key, message })
}

/// A PEM file's private key; an error names the file.
pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|cause| TlsError::Pem {
        path: path.to_owned(),
        cause,
    })
}

/// A PEM file's certificates, in order; an error names the file.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |cause| TlsError::Pem {
        path: path.to_owned(),
        cause,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// `insecure_skip_verify`: accept any certificate and name, but still check
/// that the handshake is signed by the key the server presented.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webpki_roots_are_compiled_in() {
        assert!(webpki_roots().len() > 100);
    }

    #[test]
    fn cipher_suites_are_offered_in_go_s_order() {
        let names: Vec<&str> = client_provider()
            .cipher_suites
            .iter()
            .filter_map(|suite| suite.suite().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            ]
        );
    }

    #[test]
    fn version_range_maps_onto_what_rustls_speaks() {
        assert_eq!(versions(None, None).len(), 2);
        assert_eq!(versions(Some(TlsVersion::Tls10), None).len(), 2);
        assert_eq!(
            versions(Some(TlsVersion::Tls13), None),
            [&rustls::version::TLS13]
        );
        assert_eq!(
            versions(None, Some(TlsVersion::Tls12)),
            [&rustls::version::TLS12]
        );
    }

    #[test]
    fn missing_ca_file_is_named() {
        let tls = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let err = client_config(&tls, &[]).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let tls = TlsConfig {
            ca_file: Some(path),
            ..TlsConfig::default()
        };
        let err = client_config(&tls, &[]).unwrap_err().to_string();
        assert!(err.contains("no certificate found"), "{err}");
    }
}
