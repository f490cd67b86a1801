//! The modules file, in blackbox_exporter's `blackbox.yml` format.
//!
//! Parsing is strict, as blackbox_exporter's is: a key we do not know is an
//! error, and so is a blackbox_exporter key we do not implement, so a file never
//! means something different here than there without saying so. Errors name
//! the file, the key path and, where the YAML parser knows it, line and column.
//!
//! A file is read in layers, each using only those below it: this one holds
//! the entry points and a module's shape; `yaml.rs` reads the document as
//! Go's yaml.v3 does; each prober's settings have a file of their own
//! (`http.rs`, `tcp.rs`, and `tls.rs`, which both share), built on the value
//! types of `values.rs` and `pattern.rs`; `validate.rs` checks that values do
//! not contradict each other. A new prober adds its file and a field of
//! [`Module`].

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

mod binary;
mod compression;
mod dns;
mod go_yaml;
mod grpc;
mod http;
mod http3;
mod http_auth;
mod icmp;
mod pattern;
mod query_response;
mod show;
mod tcp;
mod tls;
mod unix;
mod validate;
mod values;
mod web;
mod yaml;

pub(crate) use self::{
    compression::Coding,
    dns::{RrValidator, Transport, CLASSES, TYPES},
    http::{HeaderMatch, HttpVersion},
    http_auth::{OAuth2, ProxyOptions, ProxyUrl},
    query_response::QueryResponse,
    show::{config_yaml, module_yaml},
    tls::TlsVersion,
    values::IpProtocol,
    web::{
        CipherSuite, ClientAuth, Curve, PasswordHash, Pem, RateLimit, TlsServer,
        TlsVersion as ServerTlsVersion,
    },
};
pub use self::{
    dns::DnsProbe,
    grpc::GrpcProbe,
    http::{BasicAuth, HttpProbe},
    icmp::IcmpProbe,
    pattern::Pattern,
    tcp::TcpProbe,
    tls::TlsConfig,
    unix::UnixProbe,
    values::{ByteSize, ParseDurationError, PromDuration},
    web::WebConfig,
};

/// The modules file used when none is given: blackbox_exporter's example module
/// names, so a bare `lookout` probes with zero setup.
pub const DEFAULT_MODULES: &str = include_str!("../default-modules.yml");

/// Where the embedded default says it comes from in messages.
const DEFAULT_ORIGIN: &str = "<embedded default modules>";

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

    /// Reads and checks the modules again for a reload (see [`read_text`]).
    pub(crate) fn reload(&self) -> Result<Config, ConfigError> {
        match self {
            Self::Embedded => Config::embedded_default(),
            Self::File(path) => Config::parse_file(path, &read_text(path, true)?),
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
    /// SHA-256 of the text it was read from: automatic reloads compare it
    /// with the file's, as blackbox_exporter does.
    #[serde(skip)]
    pub(crate) checksum: Option<Checksum>,
}

/// SHA-256 of a modules file's text.
pub(crate) type Checksum = [u8; 32];

/// The largest modules file lookout reads: real ones are a few KiB, and a
/// file that grew without bound (or a device) must not take the memory.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// SHA-256 of `bytes`.
pub(crate) fn checksum(bytes: &[u8]) -> Checksum {
    let mut sum = [0; 32];
    sum.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    sum
}

/// A modules file's text, at most [`MAX_FILE_BYTES`]. A reload reads only
/// a regular file (or a symlink to one): a FIFO put in its place would
/// block it, and every reload after it, for good. At start-up a pipe is
/// fine (`--config.file <(...)`).
pub(crate) fn read_text(path: &Path, reload: bool) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let read = |cause| ConfigError::Read {
        path: path.to_owned(),
        cause,
    };
    let too_large = || {
        read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        ))
    };
    let metadata = std::fs::metadata(path).map_err(read)?;
    if reload && !metadata.is_file() {
        return Err(read(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    // Refused unread when its size says so; a pipe's is read up to the limit.
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| {
        read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

/// One module: which prober runs and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// Which prober runs.
    pub(crate) prober: ProberKind,
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
    /// Settings of the dns prober.
    #[serde(default)]
    pub dns: DnsProbe,
    /// Settings of the icmp prober.
    #[serde(default)]
    pub icmp: IcmpProbe,
    /// Settings of the grpc prober.
    #[serde(default, deserialize_with = "grpc::block")]
    pub grpc: GrpcProbe,
    /// Settings of the unix prober.
    #[serde(default)]
    pub unix: UnixProbe,
}

/// The probers lookout implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProberKind {
    /// HTTP or HTTPS request.
    Http,
    /// TCP connect, optionally with TLS.
    Tcp,
    /// A DNS query to a server.
    Dns,
    /// ICMP echo.
    Icmp,
    /// The gRPC health check.
    Grpc,
    /// A unix socket connect, optionally with TLS.
    Unix,
}

impl ProberKind {
    /// The name the modules file gives it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Dns => "dns",
            Self::Icmp => "icmp",
            Self::Grpc => "grpc",
            Self::Unix => "unix",
        }
    }
}

impl Config {
    /// Reads and checks a modules file; relative paths inside it are taken
    /// relative to the file's directory, as blackbox_exporter does.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse_file(path, &read_text(path, false)?)
    }

    /// Checks `text`, read from the modules file at `path`.
    pub(crate) fn parse_file(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(text, &path.display().to_string(), base)
    }

    /// The embedded default modules.
    pub(crate) fn embedded_default() -> Result<Self, ConfigError> {
        Self::parse(DEFAULT_MODULES, DEFAULT_ORIGIN, Path::new("."))
    }

    /// Parses and checks modules-file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            yaml::read(text, explain).map_err(|message| ConfigError::Parse {
                origin: origin.to_owned(),
                message,
            })?
        };
        config.validate(origin)?;
        config.resolve_paths(base);
        config.checksum = Some(checksum(text.as_bytes()));
        Ok(config)
    }

    /// `validate.rs`'s checks on every module, the module named in the error.
    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        for (name, module) in &self.modules {
            module.validate().map_err(|invalid| {
                // Escaped: a quoted YAML key may hold a newline, and errors are one line.
                let invalid = invalid.under(&format!("modules.{}", name.escape_debug()));
                ConfigError::Invalid {
                    origin: origin.to_owned(),
                    field: invalid.field,
                    message: invalid.message,
                }
            })?;
        }
        Ok(())
    }

    /// Every file named in the modules, relative to `base`, the directory the
    /// modules file was read from (here, because only loading knows it).
    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut Option<PathBuf>| {
            if let Some(path) = p {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        };
        for module in self.modules.values_mut() {
            for tls in [
                &mut module.http.tls_config,
                &mut module.tcp.tls_config,
                &mut module.grpc.tls_config,
                &mut module.dns.tls_config,
                &mut module.unix.tls_config,
            ] {
                join(&mut tls.ca_file);
                join(&mut tls.cert_file);
                join(&mut tls.key_file);
            }
            join(&mut module.http.bearer_token_file);
            if let Some(auth) = &mut module.http.basic_auth {
                join(&mut auth.password_file);
            }
            http_auth::resolve_paths(&mut module.http, base);
        }
    }
}

impl Module {
    /// Each prober's settings, checked whether or not it is the one that runs.
    fn validate(&self) -> Result<(), validate::Invalid> {
        validate::http(&self.http).map_err(|invalid| invalid.under("http"))?;
        for (prober, tls) in [
            ("tcp", &self.tcp.tls_config),
            ("grpc", &self.grpc.tls_config),
            ("dns", &self.dns.tls_config),
            ("unix", &self.unix.tls_config),
        ] {
            validate::tls_config(tls).map_err(|invalid| invalid.under(prober))?;
        }
        query_response::check(&self.tcp.query_response, self.tcp.tls)
            .map_err(|invalid| invalid.under("tcp"))?;
        query_response::check(&self.unix.query_response, self.unix.tls)
            .map_err(|invalid| invalid.under("unix"))?;
        Ok(())
    }
}

/// blackbox_exporter options lookout knows of but does not implement; naming
/// them in the error beats a generic "unknown field".
const UNSUPPORTED_KEYS: &[&str] = &[
    "fail_if_body_json_matches_cel",
    "fail_if_body_json_not_matches_cel",
    "ca_ref",
    "cert_ref",
    "key_ref",
    // Secrets from a secret manager: blackbox_exporter has none, so they
    // fail every probe there.
    "password_ref",
    "username_ref",
    "credentials_ref",
    "client_secret_ref",
    // oauth2's JWT bearer grant.
    "client_certificate_key",
    "client_certificate_key_file",
    "client_certificate_key_ref",
    "client_certificate_key_id",
    "signature_algorithm",
    "iss",
    "audience",
    "claims",
];

/// The schema's wording for serde's errors ([`yaml::Explain`]): names the
/// blackbox_exporter keys and probers lookout lacks as such, and cuts long
/// "expected one of" lists (the README lists every key).
fn explain(message: &str) -> Option<String> {
    // A map or list where a string read with its YAML tag belongs (`send`).
    if let Some(found) = message.strip_suffix(", expected a YAML tag starting with '!'") {
        return Some(format!("{found}, expected a string"));
    }
    if let Some(start) = message.find("unknown field `") {
        let path = &message[..start];
        let key = message[start + 15..].split('`').next().unwrap_or_default();
        if UNSUPPORTED_KEYS.contains(&key) {
            return Some(format!(
                "{path}`{key}` is a blackbox_exporter option that lookout does not support"
            ));
        }
        if message.matches(", `").count() > 5 {
            return Some(format!(
                "{path}unknown field `{key}` (see the supported keys in the README)"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Config;

    /// `text` as the modules file `/etc/lookout/test.yml`; an error as the
    /// one line lookout prints.
    pub(super) fn parse(text: &str) -> Result<Config, String> {
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
    fn unsupported_blackbox_key_says_so() {
        let err = parse("modules:\n  m:\n    prober: http\n    http:\n      basic_auth:\n        password_ref: p\n")
            .unwrap_err();
        assert!(
            err.contains(
                "`password_ref` is a blackbox_exporter option that lookout does not support"
            ),
            "{err}"
        );
        assert!(err.contains("line 6"), "{err}");
        let err = parse("modules:\n  m:\n    prober: smtp\n").unwrap_err();
        assert!(err.contains("unknown variant `smtp`"), "{err}");
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
            ("modules:\n  m:\n    prober: http\n    http:\n      tls_config: {cert_file: c.pem}\n", "exactly one of key or key_file must be configured when a client certificate is configured"),
            ("modules:\n  m: {}\n", "missing field `prober`"),
            ("modules: [\n", "test.yml: "),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn every_probers_tls_config_is_checked_and_resolved_against_the_file() {
        for prober in ["http", "tcp", "grpc", "dns", "unix"] {
            let block = |tls: &str| {
                let extra = if prober == "dns" {
                    "query_name: example.org, "
                } else {
                    ""
                };
                format!("modules:\n  m:\n    prober: {prober}\n    {prober}: {{{extra}tls_config: {tls}}}\n")
            };
            let err = parse(&block("{cert_file: c.pem}")).unwrap_err();
            assert!(
                err.contains(&format!("modules.m.{prober}.tls_config")),
                "{prober}: {err}"
            );
            assert!(
                err.contains("exactly one of key or key_file"),
                "{prober}: {err}"
            );

            let config = parse(&block(
                "{ca_file: ca.pem, cert_file: /abs/c.pem, key_file: k/k.pem}",
            ))
            .unwrap_or_else(|e| panic!("{prober}: {e}"));
            let m = &config.modules["m"];
            let tls = match prober {
                "http" => &m.http.tls_config,
                "tcp" => &m.tcp.tls_config,
                "grpc" => &m.grpc.tls_config,
                "dns" => &m.dns.tls_config,
                _ => &m.unix.tls_config,
            };
            assert_eq!(
                tls.ca_file.as_deref(),
                Some(Path::new("/etc/lookout/ca.pem")),
                "{prober}"
            );
            assert_eq!(
                tls.cert_file.as_deref(),
                Some(Path::new("/abs/c.pem")),
                "{prober}"
            );
            assert_eq!(
                tls.key_file.as_deref(),
                Some(Path::new("/etc/lookout/k/k.pem")),
                "{prober}"
            );
        }
    }
}
