//! Logging: tracing to stderr, filtered by `--log.level` and `RUST_LOG`
//! (default `info`), as human-readable text, blackbox_exporter's logfmt
//! (`--log.format=logfmt`), or one JSON object per line for cluster log
//! pipelines (`LOG_FORMAT=json`, `--log.format=json`).
//!
//! `--log.level` sets the default level; `RUST_LOG`'s `target=level`
//! directives still apply to their targets (a bare level in `RUST_LOG` is
//! the default `--log.level` replaces), so `--log.level=warn` from a Helm
//! chart and `RUST_LOG=lookout::prober=debug` for a debugging session combine.
//!
//! `RUST_LOG` takes `level` and `target=level` directives separated by commas
//! (`info,lookout=debug`). That is tracing-subscriber's `Targets` filter:
//! EnvFilter's span and field filters would cost a regex engine in the binary.

use std::{io::IsTerminal as _, str::FromStr as _};

use tracing::Dispatch;
use tracing_subscriber::{
    filter::{LevelFilter, Targets},
    fmt::MakeWriter,
    layer::{Layer, SubscriberExt as _},
    Registry,
};

use super::probe_log;
use crate::Error;

/// Environment variable holding the log filter.
pub const ENV_FILTER: &str = "RUST_LOG";

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// `key=value` pairs, blackbox_exporter's default.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// `--log.level`, blackbox_exporter's levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Everything, failed probes' reasons included.
    Debug,
    /// The default.
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
}

impl From<LogLevel> for LevelFilter {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Debug => Self::DEBUG,
            LogLevel::Info => Self::INFO,
            LogLevel::Warn => Self::WARN,
            LogLevel::Error => Self::ERROR,
        }
    }
}

/// Installs the global subscriber, writing to stderr. Fails on a malformed
/// `RUST_LOG`.
pub fn init(format: LogFormat, level: Option<LogLevel>) -> Result<(), Error> {
    let directives = std::env::var(ENV_FILTER).ok();
    // Colours only for a terminal, never for a log pipeline.
    let ansi = std::io::stderr().is_terminal();
    let dispatch = dispatch_at(format, level, directives.as_deref(), std::io::stderr, ansi)?;
    // A second init (a process that runs several servers) keeps the first
    // subscriber; that is not an error worth stopping for.
    let _ = tracing::dispatcher::set_global_default(dispatch);
    Ok(())
}

/// A subscriber in `format`, filtered by `directives` (`RUST_LOG`'s syntax;
/// `info` when absent or blank), writing to `writer`: what [`init`] installs
/// for the process, and what a test installs for one app it runs in-process.
pub fn dispatch<W>(
    format: LogFormat,
    directives: Option<&str>,
    writer: W,
    ansi: bool,
) -> Result<Dispatch, Error>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    dispatch_at(format, None, directives, writer, ansi)
}

/// [`dispatch`] with `--log.level`'s default level, which replaces
/// `RUST_LOG`'s bare level while its `target=level` directives still apply.
pub fn dispatch_at<W>(
    format: LogFormat,
    level: Option<LogLevel>,
    directives: Option<&str>,
    writer: W,
    ansi: bool,
) -> Result<Dispatch, Error>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = match directives {
        Some(directives) if !directives.trim().is_empty() => {
            let targets = Targets::from_str(directives)
                .map_err(|e| Error::LogFilter(format!("{directives:?}: {e}")))?;
            match level {
                Some(level) => targets.with_default(level),
                // RUST_LOG alone means what it says, as before --log.level.
                None => targets,
            }
        }
        _ => Targets::new().with_default(level.map_or(LevelFilter::INFO, LevelFilter::from)),
    };
    // Each layer has its own filter: the filter above decides what reaches
    // the writer, and a probe's log takes its debug events whatever it says.
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => Box::new(lines.with_target(false).with_filter(filter)),
        LogFormat::Logfmt => Box::new(
            lines
                .with_ansi(false)
                .event_format(super::logfmt::Logfmt)
                .with_filter(filter),
        ),
        LogFormat::Json => Box::new(
            lines
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_filter(filter),
        ),
    };
    Ok(Dispatch::new(
        Registry::default().with(lines).with(probe_log::layer()),
    ))
}
