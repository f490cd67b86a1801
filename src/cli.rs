//! The command line. Every flag also reads an environment variable, shown in
//! `--help` with its default; flags win over the environment.

use std::{net::SocketAddr, path::PathBuf};

use clap::{error::ErrorKind, Parser, Subcommand};

use crate::{
    config::ConfigSource,
    duration::PromDuration,
    prober::DEFAULT_MODULE,
    server::{Settings, DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN},
    telemetry::LogFormat,
};

/// Environment variable: probe API address.
pub const ENV_LISTEN: &str = "LOOKOUT_LISTEN";
/// Environment variable: admin address.
pub const ENV_ADMIN_LISTEN: &str = "LOOKOUT_ADMIN_LISTEN";
/// Environment variable: modules file.
pub const ENV_CONFIG: &str = "LOOKOUT_CONFIG";
/// Environment variable: how long to keep serving after SIGTERM.
pub const ENV_SHUTDOWN_DELAY: &str = "LOOKOUT_SHUTDOWN_DELAY";
/// Environment variable: longest drain of in-flight requests.
pub const ENV_DRAIN_TIMEOUT: &str = "LOOKOUT_DRAIN_TIMEOUT";
/// Environment variable: `text` or `json` logs.
pub const ENV_LOG_FORMAT: &str = "LOG_FORMAT";

/// lookout: a Prometheus prober, compatible with blackbox_exporter.
#[derive(Debug, Parser)]
#[command(
    name = "lookout",
    version,
    about,
    after_help = "Logging is filtered by RUST_LOG (default: info), e.g. RUST_LOG=lookout=debug.\n\
                  Signals: SIGTERM/SIGINT shut down gracefully (a second one exits at once); SIGHUP reloads the modules file.\n"
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address of the probe API (/probe, /-/healthy).
    #[arg(long, env = ENV_LISTEN, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Address of the admin listener (/healthz, /readyz, /metrics, /-/reload).
    #[arg(long, env = ENV_ADMIN_LISTEN, default_value = DEFAULT_ADMIN_LISTEN, value_name = "ADDR")]
    pub admin_listen: SocketAddr,

    /// Modules file in blackbox_exporter's blackbox.yml format [default: embedded modules].
    #[arg(long = "config.file", env = ENV_CONFIG, value_name = "FILE", global = true)]
    pub config_file: Option<PathBuf>,

    /// After SIGTERM, keep serving this long (readiness already 503) before closing listeners.
    #[arg(long, env = ENV_SHUTDOWN_DELAY, default_value = "5s", value_name = "DURATION")]
    pub shutdown_delay: PromDuration,

    /// Longest wait for in-flight requests once the listeners close.
    #[arg(long, env = ENV_DRAIN_TIMEOUT, default_value = "20s", value_name = "DURATION")]
    pub drain_timeout: PromDuration,

    /// Log format.
    #[arg(long, env = ENV_LOG_FORMAT, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
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
        }
    }
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
            let rendered = error.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            Rejected::Usage(format!("{first} (see lookout --help)"))
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
            "RUST_LOG",
            "0.0.0.0:9115",
            "0.0.0.0:9090",
            "[default: 5s]",
            "[default: 20s]",
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
