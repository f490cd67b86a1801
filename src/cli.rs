//! The command line. Every flag also reads an environment variable, shown in
//! `--help` with its default; flags win over the environment.
//!
//! blackbox_exporter's own flags work unchanged (its Helm chart, Dockerfile and
//! the Prometheus documentation pass them): `--config.file`, `--config.check`,
//! `--web.listen-address`, `--web.config.file`, `--log.level`, `--log.format`,
//! `--timeout-offset`. Where lookout has a spelling of its own for the same
//! thing (`--listen`/`--admin-listen`, `--tls-cert-file` and the credential
//! files, `--log-format`), giving both, by flag or environment, is an error
//! naming them: there is no rule of which wins to remember.

use std::{net::SocketAddr, path::PathBuf};

use clap::{error::ErrorKind, Parser, Subcommand};

use crate::{
    app::{Settings, DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN},
    config::{ByteSize, ConfigSource, PromDuration},
    prober::{
        policy::{Rule, TargetPolicy},
        DEFAULT_MODULE,
    },
    server::{listen_address::ListenAddress, listener::Limits, state::ProbeLimits},
    telemetry::logging::{LogFormat, LogLevel},
};

/// Environment variable: probe API address.
pub const ENV_LISTEN: &str = "LOOKOUT_LISTEN";
/// Environment variable: admin address.
pub const ENV_ADMIN_LISTEN: &str = "LOOKOUT_ADMIN_LISTEN";
/// Environment variable: modules file.
pub const ENV_CONFIG: &str = "LOOKOUT_CONFIG";
/// Environment variable: reload the modules file when it changes.
pub const ENV_AUTO_RELOAD: &str = "LOOKOUT_CONFIG_AUTO_RELOAD";
/// Environment variable: how often that is checked.
pub const ENV_AUTO_RELOAD_INTERVAL: &str = "LOOKOUT_CONFIG_AUTO_RELOAD_INTERVAL";
/// Environment variable: how long to keep serving after SIGTERM.
pub const ENV_SHUTDOWN_DELAY: &str = "LOOKOUT_SHUTDOWN_DELAY";
/// Environment variable: longest drain of in-flight requests.
pub const ENV_DRAIN_TIMEOUT: &str = "LOOKOUT_DRAIN_TIMEOUT";
/// Environment variable: `text` or `json` logs.
pub const ENV_LOG_FORMAT: &str = "LOG_FORMAT";
/// Environment variable: connections open at once, per listener.
pub const ENV_MAX_CONNECTIONS: &str = "LOOKOUT_MAX_CONNECTIONS";
/// Environment variable: time allowed for a request's headers.
pub const ENV_HEADER_READ_TIMEOUT: &str = "LOOKOUT_HEADER_READ_TIMEOUT";
/// Environment variable: age after which connections are asked to close.
pub const ENV_MAX_CONNECTION_AGE: &str = "LOOKOUT_MAX_CONNECTION_AGE";
/// Environment variable: largest request head.
pub const ENV_MAX_HEADER_BYTES: &str = "LOOKOUT_MAX_HEADER_BYTES";
/// Environment variable: probes running at once.
pub const ENV_MAX_CONCURRENT_PROBES: &str = "LOOKOUT_MAX_CONCURRENT_PROBES";
/// Environment variable: memory all running probes may need together.
pub const ENV_MAX_PROBE_MEMORY: &str = "LOOKOUT_MAX_PROBE_MEMORY";
/// Environment variable: targets that may be probed.
pub const ENV_ALLOW_TARGETS: &str = "LOOKOUT_ALLOW_TARGETS";
/// Environment variable: targets that may not be probed.
pub const ENV_DENY_TARGETS: &str = "LOOKOUT_DENY_TARGETS";
/// Environment variable: unix sockets the unix prober may connect to.
pub const ENV_ALLOW_UNIX_SOCKETS: &str = "LOOKOUT_ALLOW_UNIX_SOCKETS";
/// Environment variable: listener certificate.
pub const ENV_TLS_CERT_FILE: &str = "LOOKOUT_TLS_CERT_FILE";
/// Environment variable: listener key.
pub const ENV_TLS_KEY_FILE: &str = "LOOKOUT_TLS_KEY_FILE";
/// Environment variable: basic authentication users.
pub const ENV_BASIC_AUTH_FILE: &str = "LOOKOUT_BASIC_AUTH_FILE";
/// Environment variable: bearer token.
pub const ENV_BEARER_TOKEN_FILE: &str = "LOOKOUT_BEARER_TOKEN_FILE";
/// Environment variable: blackbox_exporter's single listen address.
pub const ENV_WEB_LISTEN_ADDRESS: &str = "LOOKOUT_WEB_LISTEN_ADDRESS";
/// Environment variable: exporter-toolkit web configuration file.
pub const ENV_WEB_CONFIG_FILE: &str = "LOOKOUT_WEB_CONFIG_FILE";
/// Environment variable: log level.
pub const ENV_LOG_LEVEL: &str = "LOG_LEVEL";
/// Environment variable: seconds subtracted from the scrape timeout.
pub const ENV_TIMEOUT_OFFSET: &str = "LOOKOUT_TIMEOUT_OFFSET";

/// lookout: a Prometheus prober, compatible with blackbox_exporter.
#[derive(Debug, Parser)]
#[command(
    name = "lookout",
    version,
    about,
    after_help = "Logging is filtered by --log.level (default: info) and RUST_LOG, e.g. RUST_LOG=lookout=debug;\n\
                  --log.level sets the default level, RUST_LOG's target=level directives still apply.\n\
                  Signals: SIGTERM/SIGINT shut down gracefully (a second one exits at once); SIGHUP reloads the modules file.\n"
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address of the probe API (/probe, /-/healthy).
    #[arg(long, env = ENV_LISTEN, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// blackbox_exporter's one address (Go syntax: :9115, 0.0.0.0:9115, [::1]:9115, localhost:9115):
    /// /probe, /metrics, /-/healthy, /-/reload, / and /healthz, /readyz all here, instead of
    /// --listen and --admin-listen (giving both is an error).
    #[arg(long = "web.listen-address", env = ENV_WEB_LISTEN_ADDRESS, value_name = "ADDR",
          conflicts_with_all = ["listen", "admin_listen"])]
    pub web_listen_address: Option<ListenAddress>,

    /// Address of the admin listener (/healthz, /readyz, /metrics, /-/reload).
    #[arg(long, env = ENV_ADMIN_LISTEN, default_value = DEFAULT_ADMIN_LISTEN, value_name = "ADDR")]
    pub admin_listen: SocketAddr,

    /// Modules file in blackbox_exporter's blackbox.yml format [default: embedded modules].
    #[arg(long = "config.file", env = ENV_CONFIG, value_name = "FILE", global = true)]
    pub config_file: Option<PathBuf>,

    /// Reload the modules file when it changes: read it every --config.auto-reload-interval and
    /// reload when its SHA-256 differs (as blackbox_exporter 0.28). A file that does not load
    /// keeps the modules in force and sets blackbox_exporter_config_last_reload_successful to 0.
    #[arg(long = "config.enable-auto-reload", env = ENV_AUTO_RELOAD)]
    pub config_enable_auto_reload: bool,

    /// How often --config.enable-auto-reload reads the modules file: seconds, as blackbox_exporter
    /// takes it, or a duration such as 10s or 1m.
    #[arg(long = "config.auto-reload-interval", env = ENV_AUTO_RELOAD_INTERVAL, default_value = "30",
          value_name = "SECONDS", value_parser = parse_interval)]
    pub config_auto_reload_interval: std::time::Duration,

    /// After SIGTERM, keep serving this long (readiness already 503) before closing listeners.
    #[arg(long, env = ENV_SHUTDOWN_DELAY, default_value = "5s", value_name = "DURATION")]
    pub shutdown_delay: PromDuration,

    /// Longest wait for in-flight requests once the listeners close.
    #[arg(long, env = ENV_DRAIN_TIMEOUT, default_value = "20s", value_name = "DURATION")]
    pub drain_timeout: PromDuration,

    /// Log format.
    #[arg(long, env = ENV_LOG_FORMAT, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// blackbox_exporter's spelling of the log format (either this or --log-format/LOG_FORMAT).
    #[arg(
        long = "log.format",
        value_enum,
        value_name = "FORMAT",
        conflicts_with = "log_format",
        global = true
    )]
    pub blackbox_log_format: Option<BlackboxLogFormat>,

    /// Log level [default: info, or RUST_LOG's].
    #[arg(long = "log.level", env = ENV_LOG_LEVEL, value_enum, global = true)]
    pub log_level: Option<LogLevel>,

    /// Check the modules file (and --web.config.file) and exit: 0 valid, 1 invalid, as blackbox_exporter.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Seconds subtracted from Prometheus' scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) for
    /// the probe's deadline, as blackbox_exporter's flag.
    #[arg(long = "timeout-offset", env = ENV_TIMEOUT_OFFSET, default_value_t = crate::prober::TIMEOUT_OFFSET,
          value_name = "SECONDS", value_parser = parse_offset, allow_negative_numbers = true)]
    pub timeout_offset: f64,

    /// Most connections open at once on each listener; more wait in the kernel's backlog.
    #[arg(long, env = ENV_MAX_CONNECTIONS, default_value_t = 4096, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub max_connections: u32,

    /// Time a client has to send its request headers (and finish a TLS handshake).
    #[arg(long, env = ENV_HEADER_READ_TIMEOUT, default_value = "5s", value_name = "DURATION", help_heading = "Limits")]
    pub header_read_timeout: PromDuration,

    /// Ask a connection to close after about this long (±10 %): `Connection: close` on the next
    /// HTTP/1 response, GOAWAY on HTTP/2, never cutting a request. Scrapers reconnect, so new
    /// replicas behind a Service get their share. 0 keeps connections as long as clients do.
    #[arg(long, env = ENV_MAX_CONNECTION_AGE, default_value = "5m", value_name = "DURATION", help_heading = "Limits")]
    pub max_connection_age: PromDuration,

    /// Largest request head in bytes (at least 8192).
    #[arg(long, env = ENV_MAX_HEADER_BYTES, default_value_t = 16384, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(8192..), help_heading = "Limits")]
    pub max_header_bytes: u32,

    /// Most probes running at once; more are answered 503 and counted in lookout_probes_rejected_total.
    #[arg(long, env = ENV_MAX_CONCURRENT_PROBES, default_value_t = 512, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub max_concurrent_probes: u32,

    /// Memory all running probes may need together. A probe reserves what it may need when it
    /// starts (128 KiB and a 256 KiB response head, plus its module's body limit when a body
    /// regexp keeps the body, and its body decoder with `compression`); one that does not fit is answered 503 and counted in
    /// lookout_probes_rejected_total{reason="memory"}. Keep it below the container's memory limit.
    #[arg(long, env = ENV_MAX_PROBE_MEMORY, default_value = "256MiB", value_name = "BYTES",
          help_heading = "Limits")]
    pub max_probe_memory: ByteSize,

    /// Only these targets may be probed: host names, *.domains, IPs or networks (comma-separated or repeated).
    /// Checked against the resolved address of every connection, redirects included.
    #[arg(long = "allow-target", env = ENV_ALLOW_TARGETS, value_delimiter = ',', value_name = "RULE",
          help_heading = "Who may probe what")]
    pub allow_targets: Vec<Rule>,

    /// These targets may never be probed (wins over --allow-target). Cloud metadata addresses
    /// (169.254.169.254, fd00:ec2::254) are denied unless an allowed network covers them.
    #[arg(long = "deny-target", env = ENV_DENY_TARGETS, value_delimiter = ',', value_name = "RULE",
          help_heading = "Who may probe what")]
    pub deny_targets: Vec<Rule>,

    /// Unix socket paths the unix prober may connect to, exactly as written (comma-separated or
    /// repeated). No other socket may be probed: they are outside the address rules.
    #[arg(long = "allow-unix-socket", env = ENV_ALLOW_UNIX_SOCKETS, value_delimiter = ',',
          value_name = "PATH", help_heading = "Who may probe what")]
    pub allow_unix_sockets: Vec<PathBuf>,

    /// Serve both listeners over TLS with this PEM certificate chain (re-read when it changes).
    #[arg(long, env = ENV_TLS_CERT_FILE, value_name = "FILE", requires = "tls_key_file", help_heading = "Access control")]
    pub tls_cert_file: Option<PathBuf>,

    /// The PEM private key of --tls-cert-file.
    #[arg(long, env = ENV_TLS_KEY_FILE, value_name = "FILE", requires = "tls_cert_file", help_heading = "Access control")]
    pub tls_key_file: Option<PathBuf>,

    /// Require HTTP basic authentication; FILE holds user:password lines (re-read when it changes).
    /// /healthz and /readyz stay open for the kubelet.
    #[arg(long, env = ENV_BASIC_AUTH_FILE, value_name = "FILE", conflicts_with = "bearer_token_file",
          help_heading = "Access control")]
    pub basic_auth_file: Option<PathBuf>,

    /// Require `Authorization: Bearer TOKEN`; FILE holds the token (re-read when it changes).
    #[arg(long, env = ENV_BEARER_TOKEN_FILE, value_name = "FILE", help_heading = "Access control")]
    pub bearer_token_file: Option<PathBuf>,

    /// exporter-toolkit's web configuration file, as blackbox_exporter reads it: TLS (with client
    /// certificates), bcrypt-hashed basic_auth_users, response headers, rate_limit; re-read when it
    /// or a file it names changes. Instead of the four flags above (giving both is an error).
    #[arg(long = "web.config.file", env = ENV_WEB_CONFIG_FILE, value_name = "FILE",
          conflicts_with_all = ["tls_cert_file", "tls_key_file", "basic_auth_file", "bearer_token_file"],
          help_heading = "Access control")]
    pub web_config_file: Option<PathBuf>,
}

/// `--log.format`'s values, blackbox_exporter's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BlackboxLogFormat {
    /// `key=value` pairs, one line per event.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// A `--timeout-offset`: seconds, any finite number (blackbox_exporter's is a float too).
fn parse_offset(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite())
        .ok_or_else(|| format!("{text:?} is not a number of seconds (e.g. 0.5)"))
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the prober (the default).
    Serve,
    /// Check a modules file: exit 0 when lookout would load it, 2 when not.
    CheckConfig {
        /// The blackbox.yml file.
        file: PathBuf,
    },
    /// Run one probe and print its metrics: exit 0 on success, 1 on failure.
    /// For debugging from inside a shell-less container: kubectl exec POD -- lookout probe ...
    Probe {
        /// What to probe, as /probe?target= takes it (a URL or host:port).
        target: String,
        /// Module to probe with.
        #[arg(long, default_value = DEFAULT_MODULE)]
        module: String,
        /// Probe deadline [default: the module's timeout, else 119.5s as /probe without a scrape timeout].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<PromDuration>,
        /// Also print the probe's log (every step, as /probe?debug=true shows it) to stderr.
        #[arg(long)]
        debug: bool,
    },
}

impl Cli {
    /// Where the modules come from.
    pub fn config_source(&self) -> ConfigSource {
        self.config_file
            .clone()
            .map_or(ConfigSource::Embedded, ConfigSource::File)
    }

    /// Server settings from the flags.
    pub fn settings(&self) -> Settings {
        Settings {
            listen: self.listen,
            admin_listen: self.admin_listen,
            shutdown_delay: self.shutdown_delay.into(),
            drain_timeout: self.drain_timeout.into(),
            limits: Limits {
                max_connections: self.max_connections as usize,
                header_read_timeout: self.header_read_timeout.into(),
                max_header_bytes: self.max_header_bytes as usize,
                max_connection_age: Some(self.max_connection_age.0).filter(|age| !age.is_zero()),
            },
            probe_limits: ProbeLimits {
                max_probes: self.max_concurrent_probes as usize,
                max_memory: self.max_probe_memory.0,
            },
            policy: self.policy(),
            tls: self.tls_cert_file.clone().zip(self.tls_key_file.clone()),
            auto_reload: self
                .config_enable_auto_reload
                .then_some(self.config_auto_reload_interval),
            basic_auth_file: self.basic_auth_file.clone(),
            bearer_token_file: self.bearer_token_file.clone(),
            web_listen: self.web_listen_address.clone(),
            web_config_file: self.web_config_file.clone(),
            timeout_offset: self.timeout_offset,
        }
    }

    /// The log format, whichever spelling gave it, and the log level.
    pub fn logging(&self) -> (LogFormat, Option<LogLevel>) {
        let format = match self.blackbox_log_format {
            Some(BlackboxLogFormat::Logfmt) => LogFormat::Logfmt,
            Some(BlackboxLogFormat::Json) => LogFormat::Json,
            None => self.log_format,
        };
        (format, self.log_level)
    }

    /// The allow and deny lists.
    pub fn policy(&self) -> TargetPolicy {
        TargetPolicy::new(self.allow_targets.clone(), self.deny_targets.clone())
            .with_unix_sockets(self.allow_unix_sockets.clone())
    }
}

/// `--config.auto-reload-interval`: a whole number of seconds (blackbox_exporter's
/// form) or a duration, from 100ms (each check reads the file) to a day.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let interval = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => text
            .parse::<PromDuration>()
            .map_err(|e| e.to_string())?
            .into(),
    };
    if !(Duration::from_millis(100)..=Duration::from_secs(86_400)).contains(&interval) {
        return Err(format!(
            "{text:?} is not between 100ms and 24h (a number alone is seconds)"
        ));
    }
    Ok(interval)
}

/// What to do with a command line clap rejected or answered itself.
#[derive(Debug)]
pub enum Rejected {
    /// `--help` or `--version`: print this to stdout and exit 0.
    Informational(String),
    /// A usage error, as one line for stderr; exit 2.
    Usage(String),
}

/// Turns clap's multi-line error into one line naming the problem.
pub fn rejected(error: &clap::Error) -> Rejected {
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            Rejected::Informational(error.render().to_string())
        }
        _ => {
            // clap's first paragraph names the problem (and, for missing
            // arguments, lists them on the lines below); tips and usage follow.
            let rendered = error.render().to_string();
            let paragraph: Vec<&str> = rendered
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = paragraph.join(" ");
            let message = message.trim_start_matches("error: ");
            let message = if message.is_empty() {
                "invalid arguments"
            } else {
                message
            };
            Rejected::Usage(format!("{message} (see lookout --help)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_every_env_var_and_default() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            ENV_LISTEN,
            ENV_ADMIN_LISTEN,
            ENV_CONFIG,
            ENV_SHUTDOWN_DELAY,
            ENV_DRAIN_TIMEOUT,
            ENV_LOG_FORMAT,
            ENV_AUTO_RELOAD,
            ENV_AUTO_RELOAD_INTERVAL,
            ENV_LOG_LEVEL,
            ENV_WEB_LISTEN_ADDRESS,
            ENV_WEB_CONFIG_FILE,
            ENV_TIMEOUT_OFFSET,
            "RUST_LOG",
            "0.0.0.0:9115",
            "0.0.0.0:9090",
            "[default: 5s]",
            "[default: 20s]",
            "[default: 30]",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
        }
    }

    #[test]
    fn usage_errors_are_one_line() {
        let err = Cli::try_parse_from(["lookout", "--shutdown-delay", "5x"]).unwrap_err();
        let Rejected::Usage(line) = rejected(&err) else {
            panic!("not a usage error")
        };
        assert!(line.contains("5x") && !line.contains('\n'), "{line}");
    }
}
