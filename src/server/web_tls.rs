//! The listeners' TLS from `--web.config.file`'s `tls_server_config`, as
//! rustls settings: exporter-toolkit's options mapped onto what rustls does.
//!
//! - `min_version`/`max_version`: the protocol versions (1.2 and 1.3; the web
//!   configuration already refused 1.0 and 1.1).
//! - `cipher_suites`: the TLS 1.2 suites in that order; TLS 1.3's three are
//!   always on, as in Go, where they are not configurable.
//! - `curve_preferences`: the key exchange groups in that order.
//! - `prefer_server_cipher_suites`: rustls' `ignore_client_order`.
//! - `client_auth_type`: Go's five policies. The two that do not verify
//!   (`RequestClientCert`, `RequireAnyClientCert`) still check that the client
//!   holds the key of the certificate it sent, as Go does; the two that verify
//!   use webpki against `client_ca` with the client-auth key usage.
//! - `client_allowed_sans`: after the policy's own checks, the client
//!   certificate must carry one of these DNS, e-mail, IP or URI names.
//! - `http_server_config.http2`: whether `h2` is offered by ALPN.

use std::{net::IpAddr, sync::Arc};

use rustls::{
    client::danger::HandshakeSignatureValid,
    crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, UnixTime},
    server::{
        danger::{ClientCertVerified, ClientCertVerifier},
        WebPkiClientVerifier,
    },
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};

use crate::{
    config::{CipherSuite, ClientAuth, Curve, Pem, ServerTlsVersion, TlsServer},
    prober::{
        certificate::{Certificate, GeneralName},
        client_tls,
    },
};

/// The rustls settings of a listener configured by `tls`; `http2` offers
/// `h2` by ALPN. Reads the certificate, key and client CA now: an error
/// names the file (or the inline key) and what is wrong with it.
pub(crate) fn server_config(tls: &TlsServer, http2: bool) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(provider(tls));
    let chain = certificates(&tls.cert, "cert")?;
    let key = private_key(&tls.key)?;
    let versions = versions(tls.min_version, tls.max_version);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let verifier = client_verifier(tls, &provider)?;
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!("tls_server_config: the certificate and key do not go together: {e}")
        })?;
    config.ignore_client_order = tls.prefer_server_cipher_suites;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// ring's provider with the configured suites and groups, in their order.
fn provider(tls: &TlsServer) -> CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as suite, kx_group};
    let mut provider = rustls::crypto::ring::default_provider();
    if !tls.cipher_suites.is_empty() {
        let tls13 = [
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
        ];
        let tls12 = tls.cipher_suites.iter().map(|s| match s {
            CipherSuite::EcdsaAes128Gcm => suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            CipherSuite::EcdsaAes256Gcm => suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            CipherSuite::EcdsaChacha20 => suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            CipherSuite::RsaAes128Gcm => suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite::RsaAes256Gcm => suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            CipherSuite::RsaChacha20 => suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        });
        provider.cipher_suites = tls13.into_iter().chain(tls12).collect();
    }
    if !tls.curve_preferences.is_empty() {
        provider.kx_groups = tls
            .curve_preferences
            .iter()
            .map(|c| match c {
                Curve::X25519 => kx_group::X25519,
                Curve::P256 => kx_group::SECP256R1,
                Curve::P384 => kx_group::SECP384R1,
            })
            .collect();
    }
    provider
}

fn versions(
    min: ServerTlsVersion,
    max: ServerTlsVersion,
) -> Vec<&'static SupportedProtocolVersion> {
    [
        (ServerTlsVersion::Tls12, &rustls::version::TLS12),
        (ServerTlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, v)| v)
    .collect()
}

/// The certificates of a PEM document; `key` names an inline one in errors.
fn certificates(pem: &Pem, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    match pem {
        Pem::File(path) => client_tls::read_certs(path).map_err(|e| e.to_string()),
        Pem::Inline(text) => client_tls::pem_text_certs(text)
            .map_err(|message| format!("tls_server_config.{key}: {message}")),
    }
}

fn private_key(pem: &Pem) -> Result<PrivateKeyDer<'static>, String> {
    match pem {
        Pem::File(path) => client_tls::read_key(path).map_err(|e| e.to_string()),
        // The parser's message names no part of the key.
        Pem::Inline(text) => PrivateKeyDer::from_pem_slice(text.as_bytes())
            .map_err(|e| format!("tls_server_config.key: {e}")),
    }
}

/// The verifier of `client_auth_type`, wrapped by `client_allowed_sans`.
fn client_verifier(
    tls: &TlsServer,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let roots = match &tls.client_ca {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(pem, "client_ca")? {
                roots.add(cert).map_err(|e| {
                    let origin = match pem.file() {
                        Some(path) => path.display().to_string(),
                        None => "tls_server_config.client_ca".into(),
                    };
                    format!("{origin}: unusable CA certificate: {e}")
                })?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let hints = roots.as_ref().map(|r| r.subjects()).unwrap_or_default();
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ClientCertVerifier> = match tls.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: tls.client_auth.requires(),
                hints,
                algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            // The web configuration refuses these without client_ca.
            let roots = roots.ok_or("tls_server_config: client_ca_file is required")?;
            let builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(provider));
            let builder = if tls.client_auth.requires() {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            builder
                .build()
                .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?
        }
    };
    Ok(match &tls.client_allowed_sans {
        Some(allowed) => Arc::new(AllowedSans {
            inner: verifier,
            allowed: allowed.clone(),
        }),
        None => verifier,
    })
}

/// `RequestClientCert` and `RequireAnyClientCert`: any certificate will do,
/// but the handshake must be signed with its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Go parses what it is sent even when it verifies nothing.
        Certificate::parse(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .ok_or(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: the certificate `inner` accepted must also name
/// one of `allowed` (exactly, as exporter-toolkit compares them).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if subject_alt_names(end_entity)
            .iter()
            .any(|name| self.allowed.contains(name))
        {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A certificate's DNS, e-mail, IP and URI names, spelled as Go spells them.
fn subject_alt_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Some(cert) = Certificate::parse(der) else {
        return Vec::new();
    };
    cert.subject_alt_names()
        .into_iter()
        .filter_map(|name| match name {
            GeneralName::Dns(s) | GeneralName::Email(s) | GeneralName::Uri(s) => Some(s.to_owned()),
            GeneralName::Ip(bytes) => {
                let ip = match bytes.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
                    16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
                    _ => return None,
                };
                // Go prints an IPv4-mapped address as the IPv4 address.
                Some(ip.to_canonical().to_string())
            }
        })
        .collect()
}
