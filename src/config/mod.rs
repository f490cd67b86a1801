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

mod pattern;
mod values;

pub use self::{
    pattern::Pattern,
    values::{ParseDurationError, PromDuration},
};

/// The modules file used when none is given: blackbox_exporter's example module
/// names, so a bare `lookout` probes with zero setup.
pub const DEFAULT_MODULES: &str = include_str!("../default-modules.yml");

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

/// A byte count: what Go's `units.ParseBase2Bytes` accepts (blackbox_exporter's
/// `units.Base2Bytes`), plus a plain count of bytes such as `1048576`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_bytes(text).map(ByteSize)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As text, as Go reads it: `0x10` and `1e3` are not byte counts there.
        deserialize_from_str(
            deserializer,
            "a byte count such as 1048576, 512KiB or 1.5MB",
        )
    }
}

/// The two unit families of Go's `units.ParseBase2Bytes`, both base 2. It
/// tries the whole text with the first, then with the second, so one size
/// never mixes `KiB` and `KB`. Case matters: `kB` and `mb` are no units.
const BYTE_UNITS: [[(&str, f64); 7]; 2] = [
    [
        ("B", 1.0),
        ("KiB", 1024.0),
        ("MiB", 1_048_576.0),
        ("GiB", 1_073_741_824.0),
        ("TiB", 1_099_511_627_776.0),
        ("PiB", 1_125_899_906_842_624.0),
        ("EiB", 1_152_921_504_606_846_976.0),
    ],
    [
        ("B", 1.0),
        ("KB", 1024.0),
        ("MB", 1_048_576.0),
        ("GB", 1_073_741_824.0),
        ("TB", 1_099_511_627_776.0),
        ("PB", 1_125_899_906_842_624.0),
        ("EB", 1_152_921_504_606_846_976.0),
    ],
];

/// Go's `units.ParseUnit` over [`BYTE_UNITS`]: `[-+]?` then one or more
/// `digits[.digits]unit`, summed in float64 and truncated toward zero, so a
/// fraction means what it means there (`1.5MB` is 1,572,864 bytes). Go then
/// hands out any int64; lookout refuses negative sizes (blackbox_exporter
/// reads them as no limit at all) and sizes from 2^63 bytes up.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let invalid = |why: &str| format!("invalid size {text:?}: {why}");
    let too_large = || invalid("too large (at most 9223372036854775807 bytes)");
    let negative =
        || invalid("negative (blackbox_exporter reads that as no limit; set the limit you mean)");
    let (negative_sign, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // lookout's extension: a plain count of bytes (Go needs a unit).
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return match unsigned.parse::<i64>() {
            Ok(0) => Ok(0),
            Ok(_) if negative_sign => Err(negative()),
            Ok(count) => Ok(count.unsigned_abs()),
            Err(_) => Err(too_large()),
        };
    }
    let expected = "expected a number and a unit, e.g. 1048576, 512KiB or 1.5MB";
    // Each element: its value before the unit, and the unit.
    let mut elements = Vec::new();
    let mut rest = unsigned;
    if rest.is_empty() {
        return Err(invalid(expected));
    }
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid(expected));
        }
        let (whole, after) = leading_int(rest).ok_or_else(|| invalid("too many digits"))?;
        let mut value = whole as f64;
        let pre = after.len() != rest.len();
        rest = after;
        let mut post = false;
        if let Some(fraction) = rest.strip_prefix('.') {
            let (digits, after) =
                leading_int(fraction).ok_or_else(|| invalid("too many digits"))?;
            let mut scale = 1.0_f64;
            for _ in 0..fraction.len() - after.len() {
                scale *= 10.0;
            }
            value += digits as f64 / scale;
            post = after.len() != fraction.len();
            rest = after;
        }
        if !pre && !post {
            return Err(invalid(expected));
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, after) = rest.split_at(unit_end);
        elements.push((value, unit));
        rest = after;
    }
    let unit_in = |family: &[(&str, f64)], unit: &str| {
        family
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, v)| *v)
    };
    let Some(total) = BYTE_UNITS.iter().find_map(|family| {
        elements.iter().try_fold(0.0_f64, |sum, (value, unit)| {
            unit_in(family, unit).map(|scale| sum + value * scale)
        })
    }) else {
        let names = "B, KiB or KB, MiB or MB, GiB or GB, TiB or TB, PiB or PB, EiB or EB";
        return Err(
            match elements.iter().find(|(_, unit)| {
                BYTE_UNITS
                    .iter()
                    .all(|family| unit_in(family, unit).is_none())
            }) {
                Some((_, unit)) => {
                    invalid(&format!("unknown unit {unit:?} ({names}; case matters)"))
                }
                None => invalid("mixes KiB-style and KB-style units"),
            },
        );
    };
    let total = if negative_sign { -total } else { total };
    // Go refuses only beyond ±2^63, where int64 ends; 2^63 itself has no
    // int64 either, so it is too large here.
    if total >= 9_223_372_036_854_775_808.0 {
        return Err(too_large());
    }
    // `as` truncates toward zero, as Go's int64() does for values in range.
    match total as i64 {
        bytes if bytes < 0 => Err(negative()),
        bytes => Ok(bytes.unsigned_abs()),
    }
}

/// Go's `leadingInt` (from `time.ParseDuration`): the leading digits and
/// the rest, or `None` where Go gives up on overflow (at 19 digits or so).
fn leading_int(text: &str) -> Option<(i64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let mut value: i64 = 0;
    for digit in text[..end].bytes() {
        if value >= (i64::MAX - 9) / 10 {
            return None;
        }
        value = value * 10 + i64::from(digit - b'0');
    }
    Some((value, &text[end..]))
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
            document::read(text).map_err(|message| ConfigError::Parse {
                origin: origin.to_owned(),
                message,
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
            // Lower-cased name -> the name as written.
            let mut names = BTreeMap::new();
            for (header, value) in &http.headers {
                // Go's yaml keeps `Host` and `host` as two keys, and
                // blackbox_exporter sets them in Go's random map order: which
                // value is sent would change from probe to probe.
                if let Some(first) = names.insert(header.to_ascii_lowercase(), header) {
                    return Err(invalid(
                        at("http.headers"),
                        &format!(
                            "{first:?} and {header:?} name the same header (names are case-insensitive)"
                        ),
                    ));
                }
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

/// serde's message, one line, with blackbox_exporter keys we skip named as
/// such and long "expected one of" lists cut (the README lists every key).
/// `origins` maps the lines of a document [`document`] wrote back to the
/// lines of the file; without it the error's own position is the file's.
fn explain_yaml_error(
    error: &serde_yaml_ng::Error,
    origins: Option<&[document::Origin]>,
) -> String {
    let mut message = one_line(&error.to_string());
    let mut location = String::new();
    if let Some(l) = error.location() {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(bare) = message.strip_suffix(&suffix) {
            message = bare.to_owned();
        }
        location = match origins {
            None => suffix,
            Some(origins) => document::locate(origins, l.line()),
        };
    }
    format!("{}{location}", explain(&message))
}

/// [`explain_yaml_error`] on a message without its position.
fn explain(message: &str) -> String {
    if let Some(start) = message.find("unknown field `") {
        let path = &message[..start];
        let key = message[start + 15..].split('`').next().unwrap_or_default();
        if UNSUPPORTED_KEYS.contains(&key) {
            return format!(
                "{path}`{key}` is a blackbox_exporter option that lookout does not support"
            );
        }
        if message.matches(", `").count() > 5 {
            return format!("{path}unknown field `{key}` (see the supported keys in the README)");
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
    match message {
        "repetition limit exceeded" => {
            return "aliases repeat the document too often (repetition limit exceeded)".to_owned()
        }
        "recursion limit exceeded" => {
            return "nested too deep, or an alias inside its own anchor (recursion limit exceeded)"
                .to_owned()
        }
        _ => {}
    }
    message.to_owned()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The YAML under [`Config::parse`], read as Go's yaml.v3 (blackbox_exporter's
/// parser) reads it where serde_yaml_ng differs:
///
/// - a key defined twice in one mapping, at any depth, is an error naming the
///   key, the mapping's path and both lines (serde_yaml_ng keeps the last
///   value for a map, and names no line for a struct);
/// - merge keys (`<<: *base`, `<<: [*a, *b]`) merge in every mapping: the
///   keys written in the mapping win, then the merged mappings in order,
///   each with its own merges applied first; a quoted `"<<"` is a plain key;
/// - aliases may expand the document to at most one value per byte of its
///   text plus [`ALIAS_ALLOWANCE`], so an alias bomb fails fast.
///
/// A file without merge keys is deserialized straight from its text, so every
/// error has its line and column. A file with merge keys is read into a tree
/// (each scalar as written, so `1.10` stays `1.10` in a string), merged, and
/// written out as plain YAML, one key per line, that the same deserializer
/// reads; its errors are mapped back to the line of the key in the file, or
/// say that the line is unknown.
mod document {
    use std::{
        collections::{HashMap, HashSet},
        fmt::{self, Write as _},
    };

    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, Visitor};

    use super::{explain_yaml_error, Config};

    /// Values the aliases of a file may add beyond one per byte of its text
    /// (a file without aliases has fewer values than bytes): room for a
    /// thousand modules sharing a block of forty values, while each value an
    /// alias repeats is built in full (a compiled regexp takes kilobytes).
    pub(super) const ALIAS_ALLOWANCE: usize = 100_000;

    /// Where a line of the written-out document comes from: the line of the
    /// file, and whether a merge key brought it in.
    pub(super) type Origin = Option<(usize, bool)>;

    /// The modules file in `text`, or its error as one line.
    pub(super) fn read(text: &str) -> Result<Config, String> {
        let mut scan = Scan {
            text,
            budget: text.len() + ALIAS_ALLOWANCE,
            kinds: Vec::new(),
            merges: false,
            tagged: false,
        };
        (&mut scan)
            .deserialize(serde_yaml_ng::Deserializer::from_str(text))
            .map_err(|e| explain_yaml_error(&e, None))?;
        if !scan.merges {
            return serde_yaml_ng::from_str(text).map_err(|e| explain_yaml_error(&e, None));
        }
        if scan.tagged {
            return Err("YAML tags (`!name`) cannot be combined with merge keys (`<<`)".into());
        }
        let mut build = Build {
            text,
            kinds: scan.kinds.into_iter(),
        };
        let tree = (&mut build)
            .deserialize(serde_yaml_ng::Deserializer::from_str(text))
            .map_err(|e| explain_yaml_error(&e, None))?;
        let lines = Lines::new(text);
        let tree = merge(tree, &mut Vec::new(), &lines)?;
        let mut out = Writer {
            lines: &lines,
            yaml: String::new(),
            origins: Vec::new(),
        };
        out.root(&tree);
        serde_yaml_ng::from_str(&out.yaml).map_err(|e| explain_yaml_error(&e, Some(&out.origins)))
    }

    /// The position to print for an error on `line` (1-based) of a
    /// written-out document.
    pub(super) fn locate(origins: &[Origin], line: usize) -> String {
        match origins.get(line.saturating_sub(1)) {
            Some(Some((line, false))) => format!(" at line {line}"),
            Some(Some((line, true))) => format!(" at line {line} (brought in by a merge key `<<`)"),
            _ => " (line unknown: the file uses merge keys `<<`)".to_owned(),
        }
    }

    /// The 1-based line of byte `at` of `text`.
    fn line_of(text: &str, at: usize) -> usize {
        Lines::new(text).of(at)
    }

    /// Where the lines of a text end, to find the line of a byte quickly.
    /// Line breaks are libyaml's: `\r\n`, `\n`, `\r`, NEL, LS and PS.
    struct Lines(Vec<usize>);

    impl Lines {
        fn new(text: &str) -> Self {
            let mut breaks = Vec::new();
            let mut chars = text.char_indices().peekable();
            while let Some((at, c)) = chars.next() {
                let after_cr = c == '\r' && chars.peek().is_some_and(|&(_, next)| next == '\n');
                if matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') && !after_cr {
                    breaks.push(at);
                }
            }
            Self(breaks)
        }

        /// The 1-based line of byte `at`.
        fn of(&self, at: usize) -> usize {
            self.0.partition_point(|&newline| newline < at) + 1
        }
    }

    /// Where `part`, a string the parser lent out of `text`, starts in it.
    fn offset_in(text: &str, part: &str) -> Option<usize> {
        let at = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        (at + part.len() <= text.len()).then_some(at)
    }

    /// What a value is, as the first pass saw it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        /// A string scalar.
        Text,
        /// A number, boolean or null, whose text the second pass reads.
        Plain,
        /// A mapping.
        Map,
        /// A sequence.
        Seq,
    }

    /// A mapping key as written.
    #[derive(Debug)]
    struct Key {
        text: String,
        /// Byte offset in the file, when the parser lent the key out of it
        /// (always for plain and simple quoted keys).
        at: Option<usize>,
        /// A plain `<<`.
        merge: bool,
    }

    /// Reads one mapping key as text; with `seen`, refuses one defined
    /// before in the same mapping, at the key's own position.
    struct KeySeed<'a, 't> {
        text: &'t str,
        seen: Option<&'a mut HashMap<String, Option<usize>>>,
    }

    impl<'de> DeserializeSeed<'de> for KeySeed<'_, 'de> {
        type Value = Key;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
            deserializer.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for KeySeed<'_, 'de> {
        type Value = Key;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a scalar mapping key")
        }

        fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key, E> {
            let at = offset_in(self.text, key);
            self.key(key, at)
        }

        fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
            self.key(key, None)
        }
    }

    impl KeySeed<'_, '_> {
        fn key<E: de::Error>(self, key: &str, at: Option<usize>) -> Result<Key, E> {
            if let Some(seen) = self.seen {
                if let Some(first) = seen.insert(key.to_owned(), at) {
                    let first = first
                        .map(|at| format!(" (first at line {})", line_of(self.text, at)))
                        .unwrap_or_default();
                    return Err(E::custom(format!(
                        "duplicate key `{}`{first}",
                        key.escape_debug()
                    )));
                }
            }
            // A quoted "<<" is an ordinary key, as in Go: the parser lends
            // out the text inside the quotes.
            let quoted = at
                .and_then(|at| at.checked_sub(1))
                .is_some_and(|before| matches!(self.text.as_bytes()[before], b'"' | b'\''));
            Ok(Key {
                merge: key == "<<" && at.is_some() && !quoted,
                text: key.to_owned(),
                at,
            })
        }
    }

    /// First pass over the whole document, aliases expanded: refuses
    /// duplicate keys and alias bombs, finds merge keys and tags, and
    /// records the kind of every value for the second pass.
    struct Scan<'t> {
        text: &'t str,
        /// Values (keys included) still allowed.
        budget: usize,
        kinds: Vec<Kind>,
        merges: bool,
        tagged: bool,
    }

    impl Scan<'_> {
        fn spend<E: de::Error>(&mut self) -> Result<(), E> {
            self.budget = self.budget.checked_sub(1).ok_or_else(|| {
                E::custom(format!(
                    "aliases expand the file to more than {ALIAS_ALLOWANCE} values beyond its size (an alias bomb?)"
                ))
            })?;
            Ok(())
        }

        fn value<E: de::Error>(&mut self, kind: Kind) -> Result<(), E> {
            self.spend()?;
            self.kinds.push(kind);
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for &mut Scan<'de> {
        type Value = ();

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for &mut Scan<'de> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any YAML value")
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            self.value(Kind::Plain)
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            self.value(Kind::Plain)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            self.value(Kind::Plain)
        }

        fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
            self.value(Kind::Plain)
        }

        fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
            self.value(Kind::Plain)
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            self.value(Kind::Plain)
        }

        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            self.value(Kind::Plain)
        }

        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            self.value(Kind::Plain)
        }

        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            self.value(Kind::Text)
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            self.value(Kind::Seq)?;
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }

        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            self.value(Kind::Map)?;
            let mut seen = HashMap::new();
            loop {
                let seed = KeySeed {
                    text: self.text,
                    seen: Some(&mut seen),
                };
                let Some(key) = map.next_key_seed(seed)? else {
                    return Ok(());
                };
                self.spend()?;
                self.merges |= key.merge;
                map.next_value_seed(&mut *self)?;
            }
        }

        fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
            // A `!tag`: serde_yaml_ng hands the tagged value over as a variant.
            self.tagged = true;
            let (IgnoredAny, value) = data.variant::<IgnoredAny>()?;
            de::VariantAccess::newtype_variant_seed(value, self)
        }
    }

    /// A value of the document, each scalar as written.
    #[derive(Debug)]
    enum Node {
        Scalar {
            text: String,
            /// A string, written out quoted; otherwise written as it was.
            quoted: bool,
            at: Option<usize>,
        },
        Seq(Vec<Node>),
        Map(Vec<Entry>),
    }

    #[derive(Debug)]
    struct Entry {
        key: Key,
        value: Node,
        /// Brought in by a merge key.
        merged: bool,
    }

    /// Second pass, only for a file with merge keys: the tree, with every
    /// scalar read as text (the first pass knows which values are scalars).
    struct Build<'t, I> {
        text: &'t str,
        kinds: I,
    }

    /// A scalar as text.
    struct ScalarSeed<'t> {
        text: &'t str,
        quoted: bool,
    }

    impl<'de> Visitor<'de> for ScalarSeed<'de> {
        type Value = Node;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a scalar")
        }

        fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Node, E> {
            Ok(Node::Scalar {
                at: offset_in(self.text, text),
                text: text.to_owned(),
                quoted: self.quoted,
            })
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Node, E> {
            Ok(Node::Scalar {
                text: text.to_owned(),
                quoted: self.quoted,
                at: None,
            })
        }
    }

    impl<'de, I: Iterator<Item = Kind>> DeserializeSeed<'de> for &mut Build<'de, I> {
        type Value = Node;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
            let text = self.text;
            match self.kinds.next() {
                Some(kind @ (Kind::Text | Kind::Plain)) => {
                    deserializer.deserialize_str(ScalarSeed {
                        text,
                        quoted: kind == Kind::Text,
                    })
                }
                Some(Kind::Map) => deserializer.deserialize_map(self),
                Some(Kind::Seq) => deserializer.deserialize_seq(self),
                None => Err(de::Error::custom("the document changed between two reads")),
            }
        }
    }

    impl<'de, I: Iterator<Item = Kind>> Visitor<'de> for &mut Build<'de, I> {
        type Value = Node;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping or a sequence")
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(&mut *self)? {
                items.push(item);
            }
            Ok(Node::Seq(items))
        }

        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
            let mut entries = Vec::new();
            let seed = |text| KeySeed { text, seen: None };
            while let Some(key) = map.next_key_seed(seed(self.text))? {
                let value = map.next_value_seed(&mut *self)?;
                entries.push(Entry {
                    key,
                    value,
                    merged: false,
                });
            }
            Ok(Node::Map(entries))
        }
    }

    /// `path` as serde_yaml_ng prints it (`modules.m.http.headers`, `[0]`).
    fn render(path: &[String]) -> String {
        let mut out = String::new();
        for part in path {
            if !out.is_empty() && !part.starts_with('[') {
                out.push('.');
            }
            out.push_str(&part.escape_debug().to_string());
        }
        out
    }

    /// Applies the merge keys of `node` and everything under it, as yaml.v3.
    fn merge(node: Node, path: &mut Vec<String>, lines: &Lines) -> Result<Node, String> {
        match node {
            Node::Scalar { .. } => Ok(node),
            Node::Seq(items) => {
                let mut merged = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    path.push(format!("[{i}]"));
                    merged.push(merge(item, path, lines)?);
                    path.pop();
                }
                Ok(Node::Seq(merged))
            }
            Node::Map(entries) => merge_map(entries, path, lines).map(Node::Map),
        }
    }

    /// The entries of a mapping once its merge key is applied: its own
    /// keys, then those of each merged mapping (itself merged first) that
    /// are not there yet.
    fn merge_map(
        entries: Vec<Entry>,
        path: &mut Vec<String>,
        lines: &Lines,
    ) -> Result<Vec<Entry>, String> {
        let mut out = Vec::with_capacity(entries.len());
        let mut keys = HashSet::new();
        let mut sources = None;
        for entry in entries {
            if entry.key.merge {
                // Only one: a second `<<` is a duplicate key.
                sources = Some((entry.key, entry.value));
                continue;
            }
            path.push(entry.key.text.clone());
            let value = merge(entry.value, path, lines)?;
            path.pop();
            keys.insert(entry.key.text.clone());
            out.push(Entry { value, ..entry });
        }
        let Some((key, value)) = sources else {
            return Ok(out);
        };
        let wrong = || {
            let at = key
                .at
                .map(|at| format!(" at line {}", lines.of(at)))
                .unwrap_or_default();
            let path = match render(path) {
                p if p.is_empty() => p,
                p => format!("{p}: "),
            };
            format!("{path}a merge key `<<` needs a mapping or a list of mappings{at}")
        };
        let sources = match value {
            Node::Map(entries) => vec![entries],
            Node::Seq(items) => items
                .into_iter()
                .map(|item| match item {
                    Node::Map(entries) => Ok(entries),
                    _ => Err(wrong()),
                })
                .collect::<Result<_, _>>()?,
            Node::Scalar { .. } => return Err(wrong()),
        };
        // Earlier mappings in the list win over later ones.
        for source in sources {
            for entry in merge_map(source, path, lines)? {
                if keys.insert(entry.key.text.clone()) {
                    out.push(Entry {
                        merged: true,
                        ..entry
                    });
                }
            }
        }
        Ok(out)
    }

    /// Writes a merged tree out as block YAML, one key or item per line,
    /// strings double-quoted with escapes, other scalars as written.
    struct Writer<'l> {
        lines: &'l Lines,
        yaml: String,
        /// For each line written, where it comes from.
        origins: Vec<Origin>,
    }

    impl Writer<'_> {
        fn line(
            &mut self,
            indent: usize,
            line: fmt::Arguments<'_>,
            at: Option<usize>,
            merged: bool,
        ) {
            let _ = writeln!(self.yaml, "{:indent$}{line}", "");
            self.origins.push(at.map(|at| (self.lines.of(at), merged)));
        }

        fn root(&mut self, node: &Node) {
            match inline(node) {
                Some(scalar) => self.line(0, format_args!("{scalar}"), None, false),
                None => self.block(node, 0, false),
            }
        }

        fn block(&mut self, node: &Node, indent: usize, merged: bool) {
            match node {
                Node::Map(entries) => {
                    for entry in entries {
                        let merged = merged || entry.merged;
                        let key = quote(&entry.key.text);
                        let value_at = scalar_at(&entry.value);
                        // A value on a line of its own in the file gets one
                        // here too, so its errors name its line, not the key's.
                        let apart = match (entry.key.at, value_at) {
                            (Some(key), Some(value)) => self.lines.of(key) != self.lines.of(value),
                            _ => false,
                        };
                        match inline(&entry.value) {
                            Some(value) if apart && !value.is_empty() => {
                                self.line(indent, format_args!("{key}:"), entry.key.at, merged);
                                self.line(indent + 2, format_args!("{value}"), value_at, merged);
                            }
                            Some(value) => self.line(
                                indent,
                                format_args!("{key}: {value}"),
                                entry.key.at,
                                merged,
                            ),
                            None => {
                                self.line(indent, format_args!("{key}:"), entry.key.at, merged);
                                self.block(&entry.value, indent + 2, merged);
                            }
                        }
                    }
                }
                Node::Seq(items) => {
                    for item in items {
                        let at = first_at(item);
                        match inline(item) {
                            Some(value) => self.line(indent, format_args!("- {value}"), at, merged),
                            None => {
                                self.line(indent, format_args!("-"), at, merged);
                                self.block(item, indent + 2, merged);
                            }
                        }
                    }
                }
                Node::Scalar { .. } => {}
            }
        }
    }

    /// Where a scalar is in the file, when the parser lent it out of it.
    fn scalar_at(node: &Node) -> Option<usize> {
        match node {
            Node::Scalar { at, .. } => *at,
            _ => None,
        }
    }

    /// Where the first key or scalar of a value is in the file: where an
    /// error about the value as a whole points.
    fn first_at(node: &Node) -> Option<usize> {
        match node {
            Node::Scalar { at, .. } => *at,
            Node::Map(entries) => entries.first().and_then(|entry| entry.key.at),
            Node::Seq(items) => items.first().and_then(first_at),
        }
    }

    /// A value that fits on its key's line: a scalar or an empty collection.
    fn inline(node: &Node) -> Option<String> {
        match node {
            Node::Scalar {
                text, quoted: true, ..
            } => Some(quote(text)),
            Node::Scalar { text, .. } => Some(text.clone()),
            Node::Map(entries) if entries.is_empty() => Some("{}".to_owned()),
            Node::Seq(items) if items.is_empty() => Some("[]".to_owned()),
            _ => None,
        }
    }

    /// `text` as a double-quoted YAML scalar of printable ASCII.
    fn quote(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('"');
        for c in text.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                ' '..='~' => out.push(c),
                c if u32::from(c) <= 0xFFFF => {
                    let _ = write!(out, "\\u{:04X}", u32::from(c));
                }
                c => {
                    let _ = write!(out, "\\U{:08X}", u32::from(c));
                }
            }
        }
        out.push('"');
        out
    }
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
    }

    /// The body size limit of module `m` in `text`.
    fn limit_of(value: &str) -> Result<u64, String> {
        parse(&format!(
            "modules:\n  m:\n    prober: http\n    http:\n      body_size_limit: {value}\n"
        ))
        .map(|c| c.modules["m"].http.body_size_limit.0)
    }

    #[test]
    fn byte_sizes_take_fractions_and_sequences_as_go_units_does() {
        // The expected values are Go's: units.ParseBase2Bytes at the version
        // blackbox_exporter 0.23 pins (float64 sum, truncated to int64).
        for (text, bytes) in [
            ("1.5MB", 1_572_864),
            ("1.5MiB", 1_572_864),
            ("1MB1KB25B", 1_049_625),
            ("1MiB1KiB25B", 1_049_625),
            (".5KB", 512),
            ("5.KB", 5_120),
            ("1.1MB", 1_153_433),
            ("0.9B", 0),
            ("1.9999B", 1),
            ("1.0000001KB", 1_024),
            ("+1KB", 1_024),
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0B", 0),
            ("-0.1B", 0),
            ("1B", 1),
            ("1GB", 1 << 30),
            ("1GiB", 1 << 30),
            ("1TB", 1 << 40),
            ("1TiB", 1 << 40),
            ("1PB", 1 << 50),
            ("1PiB", 1 << 50),
            ("1EB", 1 << 60),
            ("7.5EiB", 15 << 59),
            ("'1.5MB'", 1_572_864),
            ("1048576", 1 << 20),
            ("9223372036854775807", i64::MAX as u64),
            ("1.00000000000000000000000000000000000000000KB", 1_024),
        ] {
            assert_eq!(limit_of(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn byte_sizes_reject_what_go_units_rejects_and_what_lookout_cannot_honour() {
        for (text, expected) in [
            // Units are case-sensitive; lower-case k is SI (1000) and refused.
            ("1kB", "unknown unit \"kB\""),
            ("1kiB", "unknown unit"),
            ("1mb", "unknown unit"),
            ("1Mb", "unknown unit"),
            ("1MIB", "unknown unit"),
            ("1b", "unknown unit"),
            ("1K", "unknown unit"),
            ("1M", "unknown unit"),
            ("1G", "unknown unit"),
            ("1 MB", "unknown unit"),
            ("5XB", "unknown unit"),
            // Go tries the iB units, then the B units, never a mix of both.
            ("1MiB1KB", "mixes KiB-style and KB-style units"),
            // A plain count is lookout's extension: whole bytes only.
            ("1.5", "unknown unit \"\""),
            ("1e3", "unknown unit"),
            ("0x10", "unknown unit"),
            // Not numbers at all.
            (".nan", "invalid size"),
            (".inf", "invalid size"),
            ("-.inf", "invalid size"),
            ("NaN", "invalid size"),
            ("Inf", "invalid size"),
            ("''", "invalid size"),
            ("'-'", "invalid size"),
            ("'.'", "invalid size"),
            ("MB", "invalid size"),
            ("1MB.", "invalid size"),
            ("true", "invalid size"),
            ("[1]", "invalid type"),
            // blackbox_exporter reads a negative limit as no limit at all;
            // lookout refuses it rather than silently capping at 10 MiB.
            ("-1", "negative"),
            ("-1MB", "negative"),
            ("-1.5KiB", "negative"),
            // Too large for Go's int64, or for its digit reader.
            ("8EiB", "too large"),
            ("16EB", "too large"),
            ("9223372036854775808", "too large"),
            ("99999999999999999999999999B", "invalid size"),
            ("1.99999999999999999999MB", "invalid size"),
            (
                "100000000000000000000000000000000000000000000000000000",
                "too large",
            ),
        ] {
            let err = limit_of(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains("body_size_limit"), "{text}: {err}");
            assert!(err.contains("line 5"), "{text}: {err}");
        }
    }

    #[test]
    fn a_duplicate_key_is_an_error_at_every_level_naming_key_path_and_line() {
        for (text, key, path, line) in [
            (
                "modules:\n  a:\n    prober: http\n  a:\n    prober: tcp\n",
                "`a`",
                "modules",
                4,
            ),
            (
                "modules:\n  a:\n    prober: http\n    prober: tcp\n",
                "`prober`",
                "modules.a",
                4,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      method: GET\n      method: POST\n",
                "`method`",
                "modules.a.http",
                6,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      headers:\n        X-A: 1\n        X-A: 2\n",
                "`X-A`",
                "modules.a.http.headers",
                7,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      headers: {Host: a, Host: b}\n",
                "`Host`",
                "modules.a.http.headers",
                5,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      tls_config:\n        ca_file: a\n        ca_file: b\n",
                "`ca_file`",
                "modules.a.http.tls_config",
                7,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      basic_auth: {username: u, username: v}\n",
                "`username`",
                "modules.a.http.basic_auth",
                5,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      fail_if_header_matches:\n        - header: a\n          header: b\n          regexp: x\n",
                "`header`",
                "modules.a.http.fail_if_header_matches[0]",
                7,
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      tls: true\n      tls: false\n",
                "`tls`",
                "modules.a.tcp",
                6,
            ),
            ("modules: {}\nmodules: {}\n", "`modules`", "", 2),
            // Quoted or plain, the key is the same text.
            (
                "modules:\n  a:\n    prober: http\n    \"prober\": tcp\n",
                "`prober`",
                "modules.a",
                4,
            ),
            (
                "modules:\n  'a':\n    prober: http\n  \"a\":\n    prober: tcp\n",
                "`a`",
                "modules",
                4,
            ),
            // Two merge keys in one mapping are two `<<` keys, as in Go.
            (
                "modules:\n  b: &b {prober: http}\n  c: &c {prober: tcp}\n  m:\n    <<: *b\n    <<: *c\n",
                "`<<`",
                "modules.m",
                6,
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(&format!("duplicate key {key}")), "{text:?}: {err}");
            assert!(err.contains(&format!("{path}: duplicate")) || path.is_empty(), "{text:?}: {err}");
            assert!(err.contains(&format!("at line {line} ")), "{text:?}: {err}");
            assert!(err.contains("first at line"), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn header_names_that_differ_only_in_case_are_an_error() {
        // Go's yaml keeps `Host` and `host` as two keys, and blackbox_exporter
        // then sets them in map order, which Go randomises: which one is sent
        // changes from probe to probe. lookout refuses the file instead.
        let err = parse(
            "modules:\n  a:\n    prober: http\n    http:\n      headers:\n        Host: a.example\n        host: b.example\n",
        )
        .unwrap_err();
        assert!(err.contains("modules.a.http.headers"), "{err}");
        assert!(
            err.contains("\"Host\"") && err.contains("\"host\""),
            "{err}"
        );
    }

    #[test]
    fn merge_keys_work_as_in_go_yaml() {
        let config = parse(
            r#"
modules:
  http_base: &http_base
    prober: http
    timeout: 5s
    http: &http
      method: POST
      headers: &headers {X-A: a, X-B: b}
  explicit_after:
    <<: *http_base
    timeout: 7s
  explicit_before:
    timeout: 9s
    <<: *http_base
  list:
    <<: [{timeout: 1s}, *http_base]
  nested:
    <<: *http_base
    http:
      <<: *http
      headers:
        <<: *headers
        X-B: override
        X-C: c
"#,
        )
        .unwrap();
        let m = &config.modules;
        assert_eq!(m["explicit_after"].prober, ProberKind::Http);
        assert_eq!(m["explicit_after"].timeout.0.as_secs(), 7);
        assert_eq!(m["explicit_before"].timeout.0.as_secs(), 9);
        assert_eq!(m["explicit_before"].http.method.0, http::Method::POST);
        // Earlier entries of a merge list win over later ones.
        assert_eq!(m["list"].timeout.0.as_secs(), 1);
        assert_eq!(m["list"].prober, ProberKind::Http);
        let headers = &m["nested"].http.headers;
        assert_eq!(m["nested"].http.method.0, http::Method::POST);
        assert_eq!(headers["X-A"], "a");
        assert_eq!(headers["X-B"], "override");
        assert_eq!(headers["X-C"], "c");
    }

    #[test]
    fn merges_chain_through_anchors_that_merge_themselves() {
        let config = parse(
            "modules:\n  a: &a {prober: http, timeout: 1s}\n  b: &b {<<: *a, timeout: 2s}\n  c: {<<: *b}\n",
        )
        .unwrap();
        assert_eq!(config.modules["c"].prober, ProberKind::Http);
        assert_eq!(config.modules["c"].timeout.0.as_secs(), 2);
    }

    #[test]
    fn merged_values_keep_their_text_as_without_a_merge() {
        // Header values, passwords and bodies are strings even when they
        // look like numbers; the merge path must not read them as numbers.
        let text = "modules:\n  b: &b {prober: http}\n  m:\n    <<: *b\n    http:\n      headers: {X-Version: 1.10, X-Octal: 0123, X-Bool: True, X-Null: ~, X-Hex: 0x1F, X-Empty: }\n      basic_auth: {username: 007, password: 1.50}\n      body: 1e3\n      body_size_limit: 1.5KB\n";
        let config = parse(text).unwrap();
        let plain = parse(&text.replace("    <<: *b\n", "    prober: http\n")).unwrap();
        for config in [&config, &plain] {
            let http = &config.modules["m"].http;
            assert_eq!(http.headers["X-Version"], "1.10");
            assert_eq!(http.headers["X-Octal"], "0123");
            assert_eq!(http.headers["X-Bool"], "True");
            assert_eq!(http.headers["X-Null"], "~");
            assert_eq!(http.headers["X-Hex"], "0x1F");
            assert_eq!(http.headers["X-Empty"], "");
            let auth = http.basic_auth.as_ref().unwrap();
            assert_eq!(auth.username, "007");
            assert_eq!(auth.password.as_ref().unwrap().0, "1.50");
            assert_eq!(http.body.as_deref(), Some("1e3"));
            assert_eq!(http.body_size_limit, ByteSize(1536));
        }
    }

    #[test]
    fn a_merge_cannot_bring_in_unknown_fields_and_errors_keep_a_line() {
        // The unknown key sits in the anchor (line 5); it is reported there.
        let err = parse(
            "modules:\n  base: &base\n    prober: http\n    http:\n      methd: GET\n  m:\n    <<: *base\n",
        )
        .unwrap_err();
        assert!(err.contains("unknown field `methd`"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        // A key written next to the merge keeps its own line.
        let err = parse(
            "modules:\n  base: &base\n    prober: http\n  m:\n    <<: *base\n    timeout: 5x\n",
        )
        .unwrap_err();
        assert!(err.contains("modules.m.timeout"), "{err}");
        assert!(err.contains("invalid duration"), "{err}");
        assert!(err.contains("line 6"), "{err}");
        // blackbox_exporter keys lookout does not support are still named.
        let err = parse(
            "modules:\n  base: &base {prober: http, http: {proxy_url: x}}\n  m: {<<: *base}\n",
        )
        .unwrap_err();
        assert!(
            err.contains("`proxy_url` is a blackbox_exporter option"),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
        // A field missing after the merge is named with its path.
        let err = parse(
            "modules:\n  m:\n    prober: http\n    http:\n      headers: &h {regexp: x}\n      fail_if_header_matches:\n        - <<: *h\n          allow_missing: true\n",
        )
        .unwrap_err();
        assert!(
            err.contains("modules.m.http.fail_if_header_matches[0]: missing field `header`"),
            "{err}"
        );
        assert!(err.contains("line 8"), "{err}");
    }

    #[test]
    fn a_merge_needs_a_mapping_or_a_list_of_mappings() {
        for text in [
            "modules:\n  m:\n    <<: 1\n    prober: http\n",
            "modules:\n  m:\n    <<: ~\n    prober: http\n",
            "modules:\n  m:\n    <<: [1]\n    prober: http\n",
            "modules:\n  m:\n    <<: [[{prober: http}]]\n",
            "modules:\n  s: &s [a]\n  m:\n    <<: *s\n    prober: http\n",
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains("`<<`") && err.contains("mapping"),
                "{text:?}: {err}"
            );
            assert!(err.contains("line "), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn a_quoted_merge_key_is_an_ordinary_key_as_in_go() {
        let err =
            parse("modules:\n  b: &b {prober: http}\n  m:\n    \"<<\": *b\n    prober: http\n")
                .unwrap_err();
        assert!(err.contains("unknown field `<<`"), "{err}");
    }

    /// Runs `text` through the parser on another thread and fails the test
    /// if it takes longer than `limit` (a hang or an explosion).
    fn parse_within(text: String, limit: std::time::Duration) -> Result<Config, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(parse(&text));
        });
        rx.recv_timeout(limit)
            .unwrap_or_else(|_| panic!("the parser took over {limit:?}"))
    }

    #[test]
    fn alias_bombs_and_merge_loops_fail_fast() {
        let limit = std::time::Duration::from_secs(10);
        // Billion laughs: nine levels of ten aliases each, 10^9 leaves.
        let mut bomb = String::from("modules:\n  m:\n    prober: http\n    http:\n      headers: {X: &a0 \"lol\"}\n      fail_if_body_matches_regexp: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\n");
        let mut tail = String::new();
        for level in 2..10 {
            let prev = level - 1;
            tail.push_str(&format!(
                "  l{level}: &a{level} {{prober: http, http: {{fail_if_body_matches_regexp: [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]}}}}\n"
            ));
        }
        bomb.push_str(&tail);
        assert!(parse_within(bomb.clone(), limit).is_err());
        // The same bomb with a merge key takes the merge path.
        bomb.push_str("  merged: {<<: *a9}\n");
        assert!(parse_within(bomb, limit).is_err());
        // Quadratic: one anchor of 5,000 values, aliased 5,000 times.
        let mut wide = String::from(
            "modules:\n  m:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: &w [",
        );
        wide.push_str(&vec!["a"; 5_000].join(", "));
        wide.push_str("]\n");
        for i in 0..5_000 {
            wide.push_str(&format!(
                "  m{i}: {{prober: http, http: {{fail_if_body_matches_regexp: *w}}}}\n"
            ));
        }
        let err = parse_within(wide.clone(), limit).unwrap_err();
        assert!(err.contains("alias"), "{err}");
        wide.push_str("  merged: {<<: {prober: http}}\n");
        let err = parse_within(wide, limit).unwrap_err();
        assert!(err.contains("alias"), "{err}");
        // An anchor that merges itself, and one that contains itself.
        for text in [
            "modules:\n  m: &m\n    prober: http\n    <<: *m\n",
            "modules:\n  m: &m\n    prober: http\n    http: {headers: *m}\n",
            "modules: &m\n  <<: *m\n",
        ] {
            let err = parse_within(text.to_owned(), limit).unwrap_err();
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn an_ordinary_anchor_and_alias_still_work_without_a_merge() {
        let config = parse(
            "modules:\n  a: &a {prober: http, timeout: 3s}\n  b: *a\n  c:\n    prober: http\n    http: {headers: &h {X-A: a}}\n  d:\n    prober: http\n    http: {headers: *h}\n",
        )
        .unwrap();
        assert_eq!(config.modules["b"].timeout.0.as_secs(), 3);
        assert_eq!(config.modules["d"].http.headers["X-A"], "a");
    }

    #[test]
    fn sharing_a_module_among_many_stays_within_the_alias_allowance() {
        // 500 modules sharing one 20-header block, plain and merged.
        let headers: Vec<String> = (0..20).map(|i| format!("X-{i}: v")).collect();
        let mut text = format!(
            "modules:\n  base: &base\n    prober: http\n    http: {{headers: {{{}}}}}\n",
            headers.join(", ")
        );
        for i in 0..500 {
            text.push_str(&format!(
                "  plain{i}: *base\n  merged{i}: {{<<: *base, timeout: 1s}}\n"
            ));
        }
        let config = parse(&text).unwrap();
        assert_eq!(config.modules.len(), 1_001);
        assert_eq!(config.modules["merged499"].http.headers.len(), 20);
    }

    #[test]
    fn yaml_tags_cannot_be_combined_with_merge_keys() {
        // Without merge keys a tag is ignored, as before.
        assert!(parse("modules:\n  a: !x {prober: http}\n").is_ok());
        let err =
            parse("modules:\n  a: !x {prober: http}\n  b: {<<: {prober: tcp}}\n").unwrap_err();
        assert!(err.contains("tags") && err.contains("`<<`"), "{err}");
    }
}
