//! The web configuration file of `--web.config.file`: prometheus/exporter-toolkit's
//! format (`tls_server_config`, `http_server_config`, `basic_auth_users`,
//! `rate_limit`), which blackbox_exporter users already have.
//!
//! Read as strictly as the modules file: an unknown key, a value exporter-toolkit
//! rejects, and a value it accepts but rustls cannot honour (TLS 1.0 or 1.1, a
//! CBC cipher suite, the P-521 curve) are errors naming the key and its line.
//! Checks that involve two keys name the block they are in. Defaults are
//! exporter-toolkit's: TLS 1.2 to 1.3, server cipher order, HTTP/2 on. Relative
//! paths are taken from the file's directory, as exporter-toolkit does.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::{
    de::{self, DeserializeSeed, MapAccess, Visitor},
    Deserialize, Deserializer,
};

use super::{
    values::{deserialize_from_str, Secret},
    yaml, ConfigError, PromDuration,
};

/// The whole web configuration file.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// TLS for the listeners; `None` when `tls_server_config` sets nothing.
    pub(crate) tls: Option<TlsServer>,
    /// Offer HTTP/2 by ALPN (TLS only).
    pub(crate) http2: bool,
    /// Extra response headers, in file order.
    pub(crate) headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Users and their bcrypt hashes; empty means no authentication.
    pub(crate) users: BTreeMap<String, PasswordHash>,
    /// A token bucket in front of every request; `None` when off.
    pub(crate) rate_limit: Option<RateLimit>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            tls: None,
            http2: true,
            headers: Vec::new(),
            users: BTreeMap::new(),
            rate_limit: None,
        }
    }
}

/// A PEM document: a file, or inline text (`cert`, `key`, `client_ca`).
#[derive(Clone)]
pub(crate) enum Pem {
    /// Read from this file (re-read when it changes).
    File(PathBuf),
    /// Written in the web configuration file itself.
    Inline(String),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            // An inline key is a secret; a certificate is not, but is long.
            Self::Inline(_) => f.write_str("Inline(..)"),
        }
    }
}

impl Pem {
    /// The file, when the document is one.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Inline(_) => None,
        }
    }
}

/// `tls_server_config`, checked.
#[derive(Debug, Clone)]
pub(crate) struct TlsServer {
    /// The listener's certificate chain.
    pub(crate) cert: Pem,
    /// Its private key.
    pub(crate) key: Pem,
    /// Whether and how client certificates are asked for and checked.
    pub(crate) client_auth: ClientAuth,
    /// CA certificates client certificates must chain to.
    pub(crate) client_ca: Option<Pem>,
    /// A client certificate must carry one of these SANs.
    pub(crate) client_allowed_sans: Option<Vec<String>>,
    /// Lowest version spoken.
    pub(crate) min_version: TlsVersion,
    /// Highest version spoken.
    pub(crate) max_version: TlsVersion,
    /// TLS 1.2 suites in preference order; empty for rustls' defaults.
    pub(crate) cipher_suites: Vec<CipherSuite>,
    /// Key exchange groups in preference order; empty for rustls' defaults.
    pub(crate) curve_preferences: Vec<Curve>,
    /// Pick the cipher suite in our order rather than the client's.
    pub(crate) prefer_server_cipher_suites: bool,
}

impl TlsServer {
    /// The files this configuration reads.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|pem| pem.file().map(Path::to_owned))
            .collect()
    }
}

/// exporter-toolkit's `client_auth_type`, Go's `tls.ClientAuthType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified (`RequireClientCert` is its old name).
    RequireAnyClientCert,
    /// Verified when given.
    VerifyClientCertIfGiven,
    /// Required and verified.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// The client certificate is checked against `client_ca`.
    pub(crate) fn verifies(self) -> bool {
        matches!(
            self,
            Self::VerifyClientCertIfGiven | Self::RequireAndVerifyClientCert
        )
    }

    /// A handshake without a client certificate fails.
    pub(crate) fn requires(self) -> bool {
        matches!(
            self,
            Self::RequireAnyClientCert | Self::RequireAndVerifyClientCert
        )
    }
}

impl FromStr for ClientAuth {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "" | "NoClientCert" => Self::NoClientCert,
            "RequestClientCert" => Self::RequestClientCert,
            "RequireAnyClientCert" | "RequireClientCert" => Self::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => Self::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => Self::RequireAndVerifyClientCert,
            _ => {
                return Err(format!(
                    "invalid client_auth_type {text:?}: one of NoClientCert, RequestClientCert, \
                     RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
                ))
            }
        })
    }
}

/// A TLS version rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TlsVersion {
    /// TLS 1.2
    Tls12,
    /// TLS 1.3
    Tls13,
}

impl FromStr for TlsVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "TLS12" => Ok(Self::Tls12),
            "TLS13" => Ok(Self::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "{text}: lookout's TLS (rustls) speaks TLS 1.2 and 1.3 only; use TLS12 or TLS13"
            )),
            _ => Err(format!(
                "unknown TLS version {text:?}: one of TLS10, TLS11, TLS12, TLS13"
            )),
        }
    }
}

/// A TLS 1.2 cipher suite rustls (with ring) implements, by Go's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CipherSuite {
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    EcdsaAes128Gcm,
    /// TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    EcdsaAes256Gcm,
    /// TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    EcdsaChacha20,
    /// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    RsaAes128Gcm,
    /// TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    RsaAes256Gcm,
    /// TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    RsaChacha20,
}

/// A `cipher_suites` entry: a TLS 1.2 suite, or one of TLS 1.3's, which Go
/// (and so exporter-toolkit) accepts and ignores: TLS 1.3 suites are not
/// configurable there, and all three stay on here too.
#[derive(Debug, Clone, Copy)]
struct CipherEntry(Option<CipherSuite>);

/// Go's `tls.CipherSuites()` names that rustls does not implement.
const GO_SUITES_RUSTLS_LACKS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
];

impl FromStr for CipherEntry {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        use CipherSuite::*;
        let suite = match text {
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => EcdsaAes128Gcm,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => EcdsaAes256Gcm,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => EcdsaChacha20,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => RsaAes128Gcm,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => RsaAes256Gcm,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => RsaChacha20,
            "TLS_AES_128_GCM_SHA256"
            | "TLS_AES_256_GCM_SHA384"
            | "TLS_CHACHA20_POLY1305_SHA256" => return Ok(Self(None)),
            _ if GO_SUITES_RUSTLS_LACKS.contains(&text) => {
                return Err(format!(
                    "{text}: lookout's TLS (rustls) does not implement this cipher suite; \
                     it has the ECDHE suites with AES-GCM and ChaCha20-Poly1305"
                ))
            }
            _ => return Err(format!("unknown cipher {text:?}")),
        };
        Ok(Self(Some(suite)))
    }
}

/// A `curve_preferences` entry rustls (with ring) implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    /// CurveP256
    P256,
    /// CurveP384
    P384,
    /// X25519
    X25519,
}

impl FromStr for Curve {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "CurveP256" => Ok(Self::P256),
            "CurveP384" => Ok(Self::P384),
            "X25519" => Ok(Self::X25519),
            "CurveP521" => Err(
                "CurveP521: lookout's TLS (rustls with ring) does not implement P-521; \
                 use X25519, CurveP256 or CurveP384"
                    .into(),
            ),
            _ => Err(format!(
                "unknown curve {text:?}: one of CurveP256, CurveP384, CurveP521, X25519"
            )),
        }
    }
}

/// A user's bcrypt hash, checked at load: `$2a$`, `$2b$`, `$2x$` or `$2y$`,
/// a cost of 4 to 31, 60 characters.
#[derive(Clone)]
pub(crate) struct PasswordHash {
    hash: Secret,
    cost: u32,
}

impl PasswordHash {
    /// The hash as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.hash.0
    }

    /// Its cost (log2 of the rounds).
    pub(crate) fn cost(&self) -> u32 {
        self.cost
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash(cost {})", self.cost)
    }
}

impl FromStr for PasswordHash {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        // Never echo the text: it is a secret, whatever its shape.
        let parts = bcrypt::HashParts::from_str(text).map_err(|_| {
            "not a bcrypt hash: expected 60 characters starting $2a$, $2b$, $2x$ or $2y$ \
             and a two-digit cost (make one with htpasswd -nBC 10 \"\" | tr -d ':\\n')"
                .to_owned()
        })?;
        let cost = parts.get_cost();
        if !(4..=31).contains(&cost) {
            return Err(format!(
                "bcrypt cost {cost} is outside 4 to 31 (the cost is the number after the second $)"
            ));
        }
        Ok(Self {
            hash: Secret(text.to_owned()),
            cost,
        })
    }
}

/// `rate_limit`: at most `burst` requests at once, refilled one per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    /// Time to earn one request.
    pub(crate) interval: std::time::Duration,
    /// Requests that may come at once.
    pub(crate) burst: u32,
}

macro_rules! from_str_deserialize {
    ($($type:ty: $expecting:literal),* $(,)?) => {$(
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_from_str(deserializer, $expecting)
            }
        }
    )*};
}

from_str_deserialize! {
    ClientAuth: "a client_auth_type",
    TlsVersion: "a TLS version (TLS12 or TLS13)",
    CipherEntry: "a cipher suite name",
    Curve: "a curve name",
    PasswordHash: "a bcrypt hash",
}

/// The file as written: the top level.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    tls_server_config: Option<TlsBlock>,
    #[serde(default)]
    http_server_config: Option<HttpWritten>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, PasswordHash>>,
    #[serde(default)]
    rate_limit: Option<RateLimitBlock>,
}

/// `tls_server_config`, checked inside its own mapping so that an error
/// names the block and its line.
struct TlsBlock(Option<TlsServer>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsWritten {
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<Secret>,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: Option<ClientAuth>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    cipher_suites: Option<Vec<CipherEntry>>,
    #[serde(default)]
    curve_preferences: Option<Vec<Curve>>,
    #[serde(default)]
    min_version: Option<TlsVersion>,
    #[serde(default)]
    max_version: Option<TlsVersion>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for TlsBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = TlsBlock;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the TLS settings of the listeners")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TlsBlock, A::Error> {
                let written = TlsWritten::deserialize(de::value::MapAccessDeserializer::new(map))?;
                written.check().map(TlsBlock).map_err(de::Error::custom)
            }

            fn visit_unit<E: de::Error>(self) -> Result<TlsBlock, E> {
                Ok(TlsBlock(None))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// Go's yaml leaves a string empty for a key written without a value; an
/// empty string means "not set" to exporter-toolkit.
fn set<T: AsRef<str>>(value: Option<T>) -> Option<T> {
    value.filter(|v| !v.as_ref().is_empty())
}

fn set_path(value: Option<PathBuf>) -> Option<PathBuf> {
    value.filter(|p| !p.as_os_str().is_empty())
}

impl TlsWritten {
    /// exporter-toolkit's `ConfigToTLSConfig` checks, and those that rustls needs.
    fn check(self) -> Result<Option<TlsServer>, String> {
        let cert = pem_source(
            "cert",
            set(self.cert),
            "cert_file",
            set_path(self.cert_file),
        )?;
        let key = pem_source(
            "key",
            set(self.key.map(|k| k.0)),
            "key_file",
            set_path(self.key_file),
        )?;
        let client_ca = pem_source(
            "client_ca",
            set(self.client_ca),
            "client_ca_file",
            set_path(self.client_ca_file),
        )?;
        // As exporter-toolkit: TLS is on when any of these is set.
        if cert.is_none() && key.is_none() && client_ca.is_none() && self.client_auth_type.is_none()
        {
            if self.client_allowed_sans.is_some() {
                return Err(
                    "client_allowed_sans needs TLS with client_auth_type RequireAnyClientCert \
                     or RequireAndVerifyClientCert"
                        .into(),
                );
            }
            return Ok(None);
        }
        let cert = cert.ok_or("TLS is configured but missing one of cert or cert_file")?;
        let key = key.ok_or("TLS is configured but missing one of key or key_file")?;
        let client_auth = self.client_auth_type.unwrap_or_default();
        if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
            return Err(
                "client_ca_file (or client_ca) is set but client_auth_type is NoClientCert: \
                 set client_auth_type to RequireAndVerifyClientCert"
                    .into(),
            );
        }
        if client_auth.verifies() && client_ca.is_none() {
            return Err(format!(
                "client_auth_type {client_auth:?} needs client_ca_file (or client_ca): \
                 the CA certificates client certificates must chain to"
            ));
        }
        if self.client_allowed_sans.is_some() && !client_auth.requires() {
            return Err(
                "client_allowed_sans requires client_auth_type RequireAnyClientCert or \
                 RequireAndVerifyClientCert"
                    .into(),
            );
        }
        let min_version = self.min_version.unwrap_or(TlsVersion::Tls12);
        let max_version = self.max_version.unwrap_or(TlsVersion::Tls13);
        if min_version > max_version {
            return Err(format!(
                "min_version {min_version:?} is above max_version {max_version:?}"
            ));
        }
        let entries = self.cipher_suites.unwrap_or_default();
        let cipher_suites: Vec<CipherSuite> = entries.iter().filter_map(|e| e.0).collect();
        if !entries.is_empty() && cipher_suites.is_empty() && min_version == TlsVersion::Tls12 {
            return Err(
                "cipher_suites names only TLS 1.3 suites (which are not configurable and always \
                 on), so no TLS 1.2 client could connect: add a TLS 1.2 suite or set \
                 min_version: TLS13"
                    .into(),
            );
        }
        Ok(Some(TlsServer {
            cert,
            key,
            client_auth,
            client_ca,
            client_allowed_sans: self.client_allowed_sans,
            min_version,
            max_version,
            cipher_suites,
            curve_preferences: self.curve_preferences.unwrap_or_default(),
            prefer_server_cipher_suites: self.prefer_server_cipher_suites.unwrap_or(true),
        }))
    }
}

/// One of an inline document and a file, never both (exporter-toolkit would
/// silently take the file).
fn pem_source(
    inline_key: &str,
    inline: Option<String>,
    file_key: &str,
    file: Option<PathBuf>,
) -> Result<Option<Pem>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!(
            "at most one of {inline_key} and {file_key} may be set"
        )),
        (Some(text), None) => Ok(Some(Pem::Inline(text))),
        (None, Some(path)) => Ok(Some(Pem::File(path))),
        (None, None) => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpWritten {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<Headers>,
}

/// `http_server_config.headers`: exporter-toolkit's five headers, each
/// checked at its own line.
struct Headers(Vec<(http::HeaderName, http::HeaderValue)>);

/// The headers exporter-toolkit lets a file set, and the values each
/// accepts (any when empty).
const EXTRA_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A header name of [`EXTRA_HEADERS`], as written (Go compares it exactly).
struct HeaderKey(&'static str, &'static [&'static str]);

impl FromStr for HeaderKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        EXTRA_HEADERS
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(name, values)| Self(name, values))
            .ok_or_else(|| {
                format!(
                    "HTTP header {text:?} can not be configured (one of Strict-Transport-Security, \
                     X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, \
                     Content-Security-Policy)"
                )
            })
    }
}

from_str_deserialize! { HeaderKey: "a header name" }

/// Reads one header's value, checked against what its name accepts.
struct HeaderValueFor<'a>(&'a HeaderKey);

impl<'de> DeserializeSeed<'de> for HeaderValueFor<'_> {
    type Value = Option<http::HeaderValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        struct Visit<'a>(&'a HeaderKey);
        impl Visitor<'_> for Visit<'_> {
            type Value = Option<http::HeaderValue>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let HeaderKey(name, allowed) = self.0;
                if !allowed.is_empty() && !allowed.contains(&text) {
                    return Err(E::custom(format!(
                        "invalid value for {name}: expected one of {allowed:?}, got {text:?}"
                    )));
                }
                // exporter-toolkit's documentation: "Unset if blank".
                if text.is_empty() {
                    return Ok(None);
                }
                http::HeaderValue::from_str(text)
                    .map(Some)
                    .map_err(|_| E::custom(format!("{name}: not a valid header value")))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        // As a string whatever it looks like (`X-XSS-Protection: 1`), as Go reads it.
        deserializer.deserialize_str(Visit(self.0))
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Headers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of header names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut headers = Vec::new();
                while let Some(key) = map.next_key::<HeaderKey>()? {
                    if let Some(value) = map.next_value_seed(HeaderValueFor(&key))? {
                        headers.push((
                            http::HeaderName::from_static(
                                // Names in EXTRA_HEADERS are valid; HeaderName wants lower case.
                                lower(key.0),
                            ),
                            value,
                        ));
                    }
                }
                Ok(Headers(headers))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Headers, E> {
                Ok(Headers(Vec::new()))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// The lower-case spelling of an [`EXTRA_HEADERS`] name.
fn lower(name: &str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

/// `rate_limit`, checked inside its mapping.
struct RateLimitBlock(Option<RateLimit>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitWritten {
    #[serde(default)]
    interval: PromDuration,
    #[serde(default)]
    burst: u32,
}

impl<'de> Deserialize<'de> for RateLimitBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = RateLimitBlock;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("interval and burst")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RateLimitBlock, A::Error> {
                let written =
                    RateLimitWritten::deserialize(de::value::MapAccessDeserializer::new(map))?;
                // An interval of 0 turns the limiter off, as in exporter-toolkit.
                if written.interval.0.is_zero() {
                    return Ok(RateLimitBlock(None));
                }
                if written.burst == 0 {
                    // Go's limiter with a burst of 0 admits nothing at all.
                    return Err(de::Error::custom(
                        "burst 0 with an interval admits no request at all: set burst to at \
                         least 1 (or interval to 0 to turn the limit off)",
                    ));
                }
                Ok(RateLimitBlock(Some(RateLimit {
                    interval: written.interval.0,
                    burst: written.burst,
                })))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RateLimitBlock, E> {
                Ok(RateLimitBlock(None))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

impl WebConfig {
    /// Reads and checks a web configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// Parses and checks web configuration text; `origin` names it in errors,
    /// relative paths are taken from `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let written: Written = yaml::read(text, explain).map_err(|message| ConfigError::Parse {
            origin: origin.to_owned(),
            message,
        })?;
        let mut tls = written.tls_server_config.and_then(|block| block.0);
        let http = written.http_server_config;
        let http2 = http.as_ref().and_then(|h| h.http2).unwrap_or(true);
        if let Some(tls) = &mut tls {
            // Go's HTTP/2 server refuses a TLS 1.2 suite list without the
            // suite RFC 7540 makes mandatory; so does lookout, with its message.
            let mandatory = [CipherSuite::RsaAes128Gcm, CipherSuite::EcdsaAes128Gcm];
            if http2
                && tls.min_version == TlsVersion::Tls12
                && !tls.cipher_suites.is_empty()
                && !tls.cipher_suites.iter().any(|s| mandatory.contains(s))
            {
                return Err(ConfigError::Invalid {
                    origin: origin.to_owned(),
                    field: "tls_server_config.cipher_suites".into(),
                    message: "HTTP/2 needs TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or \
                              TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 among the TLS 1.2 suites \
                              (or set http_server_config.http2: false, or min_version: TLS13)"
                        .into(),
                });
            }
            for pem in [
                Some(&mut tls.cert),
                Some(&mut tls.key),
                tls.client_ca.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                if let Pem::File(path) = pem {
                    if path.is_relative() {
                        *path = base.join(&*path);
                    }
                }
            }
        }
        Ok(Self {
            tls,
            http2,
            headers: http
                .and_then(|h| h.headers)
                .map(|h| h.0)
                .unwrap_or_default(),
            users: written.basic_auth_users.unwrap_or_default(),
            rate_limit: written.rate_limit.and_then(|block| block.0),
        })
    }

    /// The files besides the configuration file itself that it reads.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        self.tls.as_ref().map(TlsServer::files).unwrap_or_default()
    }
}

/// Cuts serde's long "expected one of" lists (the README lists every key).
fn explain(message: &str) -> Option<String> {
    let start = message.find("unknown field `")?;
    let key = message[start + 15..].split('`').next().unwrap_or_default();
    let path = &message[..start];
    Some(format!(
        "{path}unknown field `{key}` (exporter-toolkit's web configuration keys are listed in the README)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as `/etc/lookout/web.yml`; an error as the line lookout prints.
    fn parse(text: &str) -> Result<WebConfig, String> {
        WebConfig::parse(text, "web.yml", Path::new("/etc/lookout")).map_err(|e| e.to_string())
    }

    fn error(text: &str) -> String {
        let err = parse(text).unwrap_err();
        assert!(!err.contains('\n'), "one line: {err}");
        err
    }

    const HASH: &str = "$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze";

    #[test]
    fn an_empty_file_means_plain_http_without_users() {
        for text in [
            "",
            "\n",
            "# nothing\n",
            "tls_server_config:\nhttp_server_config:\n",
        ] {
            let config = parse(text).unwrap();
            assert!(config.tls.is_none() && config.users.is_empty(), "{text:?}");
            assert!(config.http2 && config.rate_limit.is_none());
        }
    }

    #[test]
    fn the_documented_example_loads_with_exporter_toolkits_defaults() {
        let config = parse(&format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n\
             basic_auth_users:\n  alice: {HASH}\n  bob: {HASH}\n\
             rate_limit:\n  interval: \"1s\"\n  burst: 20\n"
        ))
        .unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert.file(), Some(Path::new("/etc/lookout/server.crt")));
        assert_eq!(tls.key.file(), Some(Path::new("/abs/server.key")));
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        assert_eq!(tls.max_version, TlsVersion::Tls13);
        assert_eq!(tls.client_auth, ClientAuth::NoClientCert);
        assert!(tls.prefer_server_cipher_suites);
        assert_eq!(config.users.len(), 2);
        assert_eq!(config.users["alice"].cost(), 10);
        assert_eq!(
            config.rate_limit,
            Some(RateLimit {
                interval: std::time::Duration::from_secs(1),
                burst: 20
            })
        );
    }

    #[test]
    fn every_client_auth_type_is_read() {
        for (text, auth) in [
            ("NoClientCert", ClientAuth::NoClientCert),
            ("RequestClientCert", ClientAuth::RequestClientCert),
            ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
            ("RequireClientCert", ClientAuth::RequireAnyClientCert),
            (
                "VerifyClientCertIfGiven",
                ClientAuth::VerifyClientCertIfGiven,
            ),
            (
                "RequireAndVerifyClientCert",
                ClientAuth::RequireAndVerifyClientCert,
            ),
        ] {
            let ca = if auth.verifies() {
                "  client_ca_file: ca.pem\n"
            } else {
                ""
            };
            let config = parse(&format!(
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: {text}\n{ca}"
            ))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(config.tls.unwrap().client_auth, auth, "{text}");
        }
        let err =
            error("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: x\n");
        assert!(err.contains("invalid client_auth_type \"x\""), "{err}");
        assert!(err.contains("tls_server_config.client_auth_type"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn values_rustls_cannot_honour_are_errors_naming_key_and_line() {
        for (line, expected) in [
            ("min_version: TLS10", "TLS 1.2 and 1.3 only"),
            ("min_version: TLS11", "TLS 1.2 and 1.3 only"),
            ("max_version: TLS11", "TLS 1.2 and 1.3 only"),
            ("min_version: TLS111", "unknown TLS version"),
            (
                "cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]",
                "does not implement this cipher suite",
            ),
            (
                "cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256]",
                "does not implement this cipher suite",
            ),
            (
                "cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048]",
                "unknown cipher",
            ),
            ("curve_preferences: [CurveP521]", "does not implement P-521"),
            ("curve_preferences: [CurveP257]", "unknown curve"),
        ] {
            let err = error(&format!(
                "# web\ntls_server_config:\n  cert_file: c\n  key_file: k\n  {line}\n"
            ));
            let key = line.split(':').next().unwrap();
            assert!(err.contains(expected), "{line}: {err}");
            assert!(
                err.contains(&format!("tls_server_config.{key}")),
                "{line}: {err}"
            );
            assert!(err.contains("line 5"), "{line}: {err}");
            assert!(err.starts_with("web.yml: "), "{err}");
        }
    }

    #[test]
    fn exporter_toolkits_cross_checks_name_the_block() {
        for (block, expected) in [
            ("cert_file: c", "missing one of key or key_file"),
            ("key_file: k", "missing one of cert or cert_file"),
            ("cert_file: ''\n  key_file: k", "missing one of cert or cert_file"),
            ("client_auth_type: RequireAndVerifyClientCert", "missing one of cert"),
            ("cert_file: c\n  key_file: k\n  client_ca_file: /dev/null", "client_auth_type is NoClientCert"),
            ("cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert", "needs client_ca_file"),
            ("cert_file: c\n  key_file: k\n  client_auth_type: VerifyClientCertIfGiven", "needs client_ca_file"),
            ("cert_file: c\n  key_file: k\n  cert: x", "at most one of cert and cert_file"),
            ("cert_file: c\n  key_file: k\n  min_version: TLS13\n  max_version: TLS12", "above max_version"),
            ("cert_file: c\n  key_file: k\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca\n  client_allowed_sans: [a]", "client_allowed_sans requires"),
            ("cert_file: c\n  key_file: k\n  cipher_suites: [TLS_AES_128_GCM_SHA256]", "only TLS 1.3 suites"),
            ("cert_filse: c", "unknown field `cert_filse`"),
        ] {
            let err = error(&format!("tls_server_config:\n  {block}\n"));
            assert!(err.contains(expected), "{block}: {err}");
            assert!(err.contains("tls_server_config"), "{block}: {err}");
            assert!(err.contains("line "), "{block}: {err}");
        }
    }

    #[test]
    fn http2_needs_its_mandatory_suite_as_go_requires() {
        let block = "tls_server_config:\n  cert_file: c\n  key_file: k\n  \
                     cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n  max_version: TLS12\n";
        let err = error(block);
        assert!(err.contains("tls_server_config.cipher_suites"), "{err}");
        assert!(err.contains("HTTP/2 needs"), "{err}");
        let config = parse(&format!("{block}http_server_config:\n  http2: false\n")).unwrap();
        assert!(!config.http2);
        let tls = config.tls.unwrap();
        assert_eq!(tls.cipher_suites, [CipherSuite::RsaAes256Gcm]);
        // TLS 1.3 names are accepted and change nothing, as in Go.
        let config = parse(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites:\n  \
             - TLS_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
        )
        .unwrap();
        assert_eq!(
            config.tls.unwrap().cipher_suites,
            [CipherSuite::RsaAes128Gcm]
        );
    }

    #[test]
    fn headers_are_exporter_toolkits_five_with_their_values() {
        let config = parse(
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    \
             Strict-Transport-Security: max-age=31536000; includeSubDomains\n    \
             X-Content-Type-Options: nosniff\n    X-XSS-Protection: 1\n    \
             Content-Security-Policy: \"default-src 'self'\"\n",
        )
        .unwrap();
        let names: Vec<&str> = config.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-frame-options",
                "strict-transport-security",
                "x-content-type-options",
                "x-xss-protection",
                "content-security-policy"
            ]
        );
        for (line, expected) in [
            (
                "X-Content-Type-Options: sniff",
                "expected one of [\"nosniff\"]",
            ),
            ("X-Frame-Options: foo", "invalid value for X-Frame-Options"),
            (
                "Content-Type: foo",
                "\"Content-Type\" can not be configured",
            ),
            ("x-frame-options: deny", "can not be configured"),
            ("X-XSS-Protection: \"a\\nb\"", "not a valid header value"),
        ] {
            let err = error(&format!("http_server_config:\n  headers:\n    {line}\n"));
            assert!(err.contains(expected), "{line}: {err}");
            assert!(err.contains("line 3"), "{line}: {err}");
        }
        // Blank means unset.
        for blank in ["''", ""] {
            let config = parse(&format!(
                "http_server_config:\n  headers:\n    X-XSS-Protection: {blank}\n"
            ))
            .unwrap();
            assert!(config.headers.is_empty(), "{blank:?}");
        }
    }

    #[test]
    fn users_need_bcrypt_hashes_and_errors_never_show_them() {
        for (hash, expected) in [
            ("doe", "not a bcrypt hash"),
            ("$1$abcdefgh$abcdefghijklmnopqrstuv", "not a bcrypt hash"),
            (
                "$2y$03$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze",
                "cost 3",
            ),
            (
                "$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPz",
                "not a bcrypt hash",
            ),
        ] {
            let err = error(&format!(
                "basic_auth_users:\n  alice: {HASH}\n  john: '{hash}'\n"
            ));
            assert!(err.contains(expected), "{hash}: {err}");
            assert!(err.contains("basic_auth_users.john"), "{hash}: {err}");
            assert!(err.contains("line 3"), "{hash}: {err}");
            assert!(
                !err.contains(hash) || hash.len() < 4,
                "the hash leaked: {err}"
            );
        }
        let err = error(&format!(
            "basic_auth_users:\n  alice: {HASH}\n  alice: {HASH}\n"
        ));
        assert!(err.contains("alice") && err.contains("line 3"), "{err}");
        for version in ["2a", "2b", "2x", "2y"] {
            let hash = HASH.replacen("2y", version, 1);
            assert!(
                parse(&format!("basic_auth_users:\n  a: '{hash}'\n")).is_ok(),
                "{version}"
            );
        }
    }

    #[test]
    fn rate_limits_read_as_exporter_toolkit_reads_them() {
        assert_eq!(
            parse("rate_limit:\n  interval: 0\n  burst: 0\n")
                .unwrap()
                .rate_limit,
            None
        );
        assert_eq!(
            parse("rate_limit:\n  interval: 250ms\n  burst: 3\n")
                .unwrap()
                .rate_limit,
            Some(RateLimit {
                interval: std::time::Duration::from_millis(250),
                burst: 3
            })
        );
        let err = error("rate_limit:\n  interval: \"1s\"\n  burst: 0\n");
        assert!(err.contains("admits no request"), "{err}");
        let err = error("rate_limit:\n  interval: 1x\n  burst: 1\n");
        assert!(
            err.contains("rate_limit.interval") && err.contains("line 2"),
            "{err}"
        );
        let err = error("rate_limit:\n  interval: 1s\n  burst: -1\n");
        assert!(
            err.contains("rate_limit.burst") && err.contains("line 3"),
            "{err}"
        );
    }

    #[test]
    fn junk_and_unknown_keys_are_errors() {
        let err = error("hWkNKCp3fvIx3jKnsaBI\nTuEjdwNS8A2vYdFbiKqr\n");
        assert!(err.starts_with("web.yml: "), "{err}");
        let err = error("tls_config:\n  cert_file: c\n");
        assert!(
            err.contains("unknown field `tls_config`") && err.contains("line 1"),
            "{err}"
        );
    }
}
