//! The modules file, in blackbox_exporter's `blackbox.yml` format.
//!
//! Parsing is strict, as blackbox_exporter's is: a key we do not know is an
//! error, and so is a blackbox_exporter key we do not implement, so a file never
//! means something different here than there without saying so. Errors name
//! the file, the key path and, where the YAML parser knows it, line and column.

use std::{
    collections::BTreeMap,
    fmt,
    marker::PhantomData,
    net::IpAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::{de, Deserialize, Deserializer};

use crate::duration::PromDuration;
pub use crate::pattern::Pattern;

/// The modules file used when none is given: blackbox_exporter's example module
/// names, so a bare `lookout` probes with zero setup.
pub const DEFAULT_MODULES: &str = include_str!("default-modules.yml");

/// Where the embedded default says it comes from in messages.
pub const DEFAULT_ORIGIN: &str = "<embedded default modules>";

/// blackbox_exporter options lookout knows of but does not implement; naming
/// them in the error beats a generic "unknown field".
const UNSUPPORTED_KEYS: &[&str] = &[
    "icmp",
    "dns",
    "grpc",
    "query_response",
    "compression",
    "skip_resolve_phase_with_proxy",
    "body_file",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "oauth2",
    "authorization",
    "http_headers",
    "enable_http3",
    "ca",
    "cert",
    "key",
    "ca_ref",
    "cert_ref",
    "key_ref",
    "username_file",
    "password_ref",
    "iptables",
    "hop_limit",
    "dont_fragment",
    "payload_size",
];

/// A configuration problem, rendered as one line that names where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: {cause}")]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema.
    #[error("{origin}: {message}")]
    Parse {
        /// The file name (or the embedded default's stand-in).
        origin: String,
        /// serde's message, with key path and position.
        message: String,
    },
    /// Well-formed YAML whose values contradict each other.
    #[error("{origin}: {field}: {message}")]
    Invalid {
        /// The file name.
        origin: String,
        /// Dotted key path, e.g. `modules.http_2xx.http.basic_auth`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Where the modules come from; kept so reloads read the same place again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// [`DEFAULT_MODULES`], compiled in.
    Embedded,
    /// A blackbox.yml file.
    File(PathBuf),
}

impl ConfigSource {
    /// Reads and checks the modules.
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            Self::Embedded => Config::embedded_default(),
            Self::File(path) => Config::load(path),
        }
    }
}

/// The whole modules file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Probe modules by name, as `/probe?module=NAME` selects them.
    #[serde(default)]
    pub modules: BTreeMap<String, Module>,
}

/// One module: which prober runs and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// `http` or `tcp`.
    pub prober: ProberKind,
    /// Upper bound for the whole probe; `0` (the default) leaves only the
    /// scrape timeout.
    #[serde(default)]
    pub timeout: PromDuration,
    /// Settings of the http prober.
    #[serde(default)]
    pub http: HttpProbe,
    /// Settings of the tcp prober.
    #[serde(default)]
    pub tcp: TcpProbe,
}

/// The probers lookout implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProberKind {
    /// HTTP or HTTPS request.
    Http,
    /// TCP connect, optionally with TLS.
    Tcp,
}

/// Address family to try first when a name resolves to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpProtocol {
    /// IPv4 first.
    Ip4,
    /// IPv6 first (blackbox_exporter's default).
    #[default]
    Ip6,
}

/// HTTP versions `valid_http_versions` can name, spelled as Go's `resp.Proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HttpVersion {
    /// HTTP/1.0
    #[serde(rename = "HTTP/1.0")]
    Http10,
    /// HTTP/1.1
    #[serde(rename = "HTTP/1.1")]
    Http11,
    /// HTTP/2
    #[serde(rename = "HTTP/2.0", alias = "HTTP/2")]
    Http2,
}

/// Settings of the http prober (blackbox_exporter's names and defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpProbe {
    /// Accepted status codes; empty means any 2xx.
    pub valid_status_codes: Vec<u16>,
    /// Accepted protocol versions; empty means any.
    pub valid_http_versions: Vec<HttpVersion>,
    /// Address family tried first.
    pub preferred_ip_protocol: IpProtocol,
    /// Whether the other family may be used when the preferred one has no address.
    pub ip_protocol_fallback: bool,
    /// Deprecated spelling of `follow_redirects: false`.
    pub no_follow_redirects: Option<bool>,
    /// Follow 3xx responses.
    pub follow_redirects: bool,
    /// Offer HTTP/2 by ALPN on TLS connections.
    pub enable_http2: bool,
    /// Fail when the final response came over TLS.
    pub fail_if_ssl: bool,
    /// Fail when the final response did not come over TLS.
    pub fail_if_not_ssl: bool,
    /// Request method.
    pub method: Method,
    /// Request headers (a `Host` header sets the request's host).
    pub headers: BTreeMap<String, String>,
    /// Fail when the body matches any of these.
    pub fail_if_body_matches_regexp: Vec<Pattern>,
    /// Fail when the body does not match all of these.
    pub fail_if_body_not_matches_regexp: Vec<Pattern>,
    /// Fail when a header value matches.
    pub fail_if_header_matches: Vec<HeaderMatch>,
    /// Fail when a header value does not match.
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    /// Request body.
    pub body: Option<String>,
    /// Largest body read; `0` means no limit beyond lookout's own cap.
    pub body_size_limit: ByteSize,
    /// TLS settings for https targets.
    pub tls_config: TlsConfig,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization: Bearer` token.
    pub bearer_token: Option<Secret>,
    /// File holding the bearer token, read at each probe.
    pub bearer_token_file: Option<PathBuf>,
}

impl Default for HttpProbe {
    fn default() -> Self {
        Self {
            valid_status_codes: Vec::new(),
            valid_http_versions: Vec::new(),
            preferred_ip_protocol: IpProtocol::Ip6,
            ip_protocol_fallback: true,
            no_follow_redirects: None,
            follow_redirects: true,
            enable_http2: true,
            fail_if_ssl: false,
            fail_if_not_ssl: false,
            method: Method::default(),
            headers: BTreeMap::new(),
            fail_if_body_matches_regexp: Vec::new(),
            fail_if_body_not_matches_regexp: Vec::new(),
            fail_if_header_matches: Vec::new(),
            fail_if_header_not_matches: Vec::new(),
            body: None,
            body_size_limit: ByteSize(0),
            tls_config: TlsConfig::default(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
        }
    }
}

impl HttpProbe {
    /// Whether redirects are followed, honouring the deprecated spelling.
    pub fn follows_redirects(&self) -> bool {
        match self.no_follow_redirects {
            Some(no_follow) => !no_follow,
            None => self.follow_redirects,
        }
    }
}

/// Settings of the tcp prober.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpProbe {
    /// Address family tried first.
    pub preferred_ip_protocol: IpProtocol,
    /// Whether the other family may be used.
    pub ip_protocol_fallback: bool,
    /// Local address to connect from.
    pub source_ip_address: Option<IpAddr>,
    /// Start TLS right after connecting.
    pub tls: bool,
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

/// A header check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name (case-insensitive).
    pub header: String,
    /// Pattern matched against each value of the header.
    pub regexp: Pattern,
    /// A missing header passes instead of failing.
    #[serde(default)]
    pub allow_missing: bool,
}

/// HTTP basic authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Option<Secret>,
    /// File holding the password, read at each probe.
    pub password_file: Option<PathBuf>,
}

/// TLS settings (Prometheus' `tls_config`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of CA certificates trusted in addition to the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// Name sent in SNI and checked against the certificate.
    pub server_name: Option<String>,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
    /// Lowest TLS version offered.
    pub min_version: Option<TlsVersion>,
    /// Highest TLS version offered.
    pub max_version: Option<TlsVersion>,
}

/// TLS versions as Prometheus' configuration spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
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

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "a regular expression")
    }
}

/// An HTTP method token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method(pub http::Method);

impl Default for Method {
    fn default() -> Self {
        Self(http::Method::GET)
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        http::Method::from_bytes(text.as_bytes())
            .map(Method)
            .map_err(|_| format!("invalid HTTP method {text:?}"))
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "an HTTP method")
    }
}

/// Deserializes a string through `FromStr` inside the visitor, so the YAML
/// parser attaches the scalar's own line and key path to a parse error
/// (parsing after `String::deserialize` returns gets the enclosing map's).
pub(crate) fn deserialize_from_str<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct Visit<T>(&'static str, PhantomData<T>);
    impl<T: FromStr> de::Visitor<'_> for Visit<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            text.parse().map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Visit(expecting, PhantomData))
}

/// A secret string that never shows in logs or debug output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// A byte count, as an integer or with a base-2 unit (`512KiB`, `1MB`),
/// following blackbox_exporter's `units.Base2Bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl de::Visitor<'_> for Visit {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count such as 1048576, 512KiB or 1MB")
            }

            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(bytes))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
                parse_bytes(text).map(ByteSize).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

fn parse_bytes(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected e.g. 1048576, 512KiB or 1MB"))?;
    // Base2Bytes treats KB and KiB alike: both are 1024.
    let shift = match unit {
        "" | "B" => 0,
        "KB" | "KiB" | "K" => 10,
        "MB" | "MiB" | "M" => 20,
        "GB" | "GiB" | "G" => 30,
        "TB" | "TiB" | "T" => 40,
        _ => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {unit:?} (B, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

impl Config {
    /// Reads and checks a modules file; relative paths inside it are taken
    /// relative to the file's directory, as blackbox_exporter does.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// The embedded default modules.
    pub fn embedded_default() -> Result<Self, ConfigError> {
        Self::parse(DEFAULT_MODULES, DEFAULT_ORIGIN, Path::new("."))
    }

    /// Parses and checks modules-file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
                origin: origin.to_owned(),
                message: explain_yaml_error(&e),
            })?
        };
        config.validate(origin)?;
        config.resolve_paths(base);
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |field: String, message: &str| ConfigError::Invalid {
            origin: origin.to_owned(),
            field,
            message: message.to_owned(),
        };
        for (name, module) in &self.modules {
            // Escaped: a quoted YAML key may hold a newline, and errors are one line.
            let at = |rest: &str| format!("modules.{}.{rest}", name.escape_debug());
            let http = &module.http;
            if http.bearer_token.is_some() && http.bearer_token_file.is_some() {
                return Err(invalid(
                    at("http"),
                    "at most one of bearer_token and bearer_token_file may be set",
                ));
            }
            if http.basic_auth.is_some()
                && (http.bearer_token.is_some() || http.bearer_token_file.is_some())
            {
                return Err(invalid(
                    at("http"),
                    "at most one of basic_auth, bearer_token and bearer_token_file may be set",
                ));
            }
            if let Some(auth) = &http.basic_auth {
                if auth.password.is_some() && auth.password_file.is_some() {
                    return Err(invalid(
                        at("http.basic_auth"),
                        "at most one of password and password_file may be set",
                    ));
                }
            }
            for code in &http.valid_status_codes {
                if !(100..=599).contains(code) {
                    return Err(invalid(
                        at("http.valid_status_codes"),
                        &format!("{code} is not an HTTP status code"),
                    ));
                }
            }
            for (header, value) in &http.headers {
                if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(invalid(
                        at("http.headers"),
                        &format!("{header:?} is not a valid header name"),
                    ));
                }
                if http::HeaderValue::from_str(value).is_err() {
                    return Err(invalid(
                        at(&format!("http.headers.{header}")),
                        "not a valid header value",
                    ));
                }
            }
            for (key, tls) in [
                ("http.tls_config", &http.tls_config),
                ("tcp.tls_config", &module.tcp.tls_config),
            ] {
                if tls.cert_file.is_some() != tls.key_file.is_some() {
                    return Err(invalid(
                        at(key),
                        "cert_file and key_file must be set together",
                    ));
                }
                if let (Some(min), Some(max)) = (tls.min_version, tls.max_version) {
                    if min > max {
                        return Err(invalid(at(key), "min_version is above max_version"));
                    }
                }
                if tls.max_version.is_some_and(|max| max < TlsVersion::Tls12) {
                    return Err(invalid(
                        at(&format!("{key}.max_version")),
                        "lookout speaks TLS 1.2 and 1.3 only",
                    ));
                }
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut Option<PathBuf>| {
            if let Some(path) = p {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        };
        for module in self.modules.values_mut() {
            for tls in [&mut module.http.tls_config, &mut module.tcp.tls_config] {
                join(&mut tls.ca_file);
                join(&mut tls.cert_file);
                join(&mut tls.key_file);
            }
            join(&mut module.http.bearer_token_file);
            if let Some(auth) = &mut module.http.basic_auth {
                join(&mut auth.password_file);
            }
        }
    }
}

/// serde's message, with blackbox_exporter keys we skip named as such and
/// long "expected one of" lists cut (the README lists every key).
fn explain_yaml_error(error: &serde_yaml_ng::Error) -> String {
    let message = one_line(&error.to_string());
    let location = error
        .location()
        .map(|l| format!(" at line {} column {}", l.line(), l.column()))
        .unwrap_or_default();
    if let Some(start) = message.find("unknown field `") {
        let path = &message[..start];
        let key = message[start + 15..].split('`').next().unwrap_or_default();
        if UNSUPPORTED_KEYS.contains(&key) {
            return format!("{path}`{key}` is a blackbox_exporter option that lookout does not support{location}");
        }
        if message.matches(", `").count() > 5 {
            return format!(
                "{path}unknown field `{key}` (see the supported keys in the README){location}"
            );
        }
    }
    for prober in ["icmp", "dns", "grpc"] {
        if message.contains(&format!("unknown variant `{prober}`")) {
            return message.replace(
                &format!("unknown variant `{prober}`, expected `http` or `tcp`"),
                &format!("prober `{prober}` is not supported by lookout (http and tcp are)"),
            );
        }
    }
    message
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, "test.yml", Path::new("/etc/lookout")).map_err(|e| e.to_string())
    }

    #[test]
    fn embedded_default_has_the_blackbox_example_modules() {
        let config = Config::embedded_default().unwrap();
        for name in ["http_2xx", "http_post_2xx", "tcp_connect", "tls_connect"] {
            assert!(config.modules.contains_key(name), "{name} missing");
        }
        assert_eq!(
            config.modules["http_post_2xx"].http.method.0,
            http::Method::POST
        );
        assert!(config.modules["tls_connect"].tcp.tls);
    }

    #[test]
    fn blackbox_defaults_apply() {
        let config = parse("modules:\n  m:\n    prober: http\n").unwrap();
        let m = &config.modules["m"];
        assert_eq!(m.prober, ProberKind::Http);
        assert_eq!(m.timeout, PromDuration::default());
        assert_eq!(m.http.preferred_ip_protocol, IpProtocol::Ip6);
        assert!(m.http.ip_protocol_fallback);
        assert!(m.http.follows_redirects());
        assert_eq!(m.http.method.0, http::Method::GET);
    }

    #[test]
    fn a_full_http_module_parses() {
        let text = r#"
modules:
  full:
    prober: http
    timeout: 1m30s
    http:
      valid_status_codes: [200, 301]
      valid_http_versions: ["HTTP/1.1", "HTTP/2.0"]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      no_follow_redirects: true
      fail_if_not_ssl: true
      method: POST
      headers: {Host: example.org, X-Test: "1"}
      body: '{"a":1}'
      fail_if_body_matches_regexp: ["error"]
      fail_if_body_not_matches_regexp: ["ok|fine"]
      fail_if_header_matches: [{header: Server, regexp: "nginx"}]
      fail_if_header_not_matches: [{header: X-Ok, regexp: "yes", allow_missing: true}]
      body_size_limit: 1MiB
      tls_config: {ca_file: ca.pem, server_name: example.org, min_version: TLS12, insecure_skip_verify: false}
      basic_auth: {username: u, password: p}
"#;
        let config = parse(text).unwrap();
        let http = &config.modules["full"].http;
        assert_eq!(config.modules["full"].timeout.0.as_secs(), 90);
        assert_eq!(http.valid_status_codes, [200, 301]);
        assert!(!http.follows_redirects());
        assert_eq!(http.body_size_limit, ByteSize(1 << 20));
        assert_eq!(
            http.tls_config.ca_file.as_deref(),
            Some(Path::new("/etc/lookout/ca.pem"))
        );
        assert_eq!(http.tls_config.min_version, Some(TlsVersion::Tls12));
        assert!(http.fail_if_body_not_matches_regexp[0].is_match(b"all fine"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err =
            parse("modules:\n  m:\n    prober: http\n    http:\n      methd: GET\n").unwrap_err();
        assert!(err.starts_with("test.yml: "), "{err}");
        assert!(err.contains("unknown field `methd`"), "{err}");
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn unsupported_blackbox_key_says_so() {
        let err = parse("modules:\n  m:\n    prober: http\n    http:\n      proxy_url: http://p\n")
            .unwrap_err();
        assert!(
            err.contains("`proxy_url` is a blackbox_exporter option that lookout does not support"),
            "{err}"
        );
        assert!(err.contains("line 5"), "{err}");
        let err = parse("modules:\n  m:\n    prober: icmp\n").unwrap_err();
        assert!(
            err.contains("prober `icmp` is not supported by lookout"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_problem() {
        for (text, expected) in [
            ("modules:\n  m:\n    prober: http\n    timeout: 5x\n", "invalid duration \"5x\""),
            ("modules:\n  m:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: ['(']\n", "invalid regexp"),
            ("modules:\n  m:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip5\n", "unknown variant `ip5`"),
            ("modules:\n  m:\n    prober: http\n    http:\n      valid_status_codes: [99]\n", "modules.m.http.valid_status_codes: 99"),
            ("modules:\n  m:\n    prober: http\n    http:\n      method: 'GE T'\n", "invalid HTTP method"),
            ("modules:\n  m:\n    prober: http\n    http:\n      body_size_limit: 5XB\n", "unknown unit"),
            ("modules:\n  m:\n    prober: http\n    http:\n      tls_config: {cert_file: c.pem}\n", "cert_file and key_file"),
            ("modules:\n  m: {}\n", "missing field `prober`"),
            ("modules: [\n", "test.yml: "),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config =
            parse("modules:\n  m:\n    prober: http\n    http:\n      bearer_token: hunter2\n")
                .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn byte_sizes_follow_base2_units() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("1KB").unwrap(), 1024);
        assert_eq!(parse_bytes("2MiB").unwrap(), 2 << 20);
        assert!(parse_bytes("1.5MB").is_err());
    }
}
