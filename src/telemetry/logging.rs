//! Logging: tracing to stderr, filtered by `RUST_LOG` (default `info`), as
//! human-readable text or, with `LOG_FORMAT=json`, one JSON object per line for
//! cluster log pipelines.
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
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber, writing to stderr. Fails on a malformed
/// `RUST_LOG`.
pub fn init(format: LogFormat) -> Result<(), Error> {
    let directives = std::env::var(ENV_FILTER).ok();
    // Colours only for a terminal, never for a log pipeline.
    let ansi = std::io::stderr().is_terminal();
    let dispatch = dispatch(format, directives.as_deref(), std::io::stderr, ansi)?;
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
    let filter = match directives {
        Some(directives) if !directives.trim().is_empty() => Targets::from_str(directives)
            .map_err(|e| Error::LogFilter(format!("{directives:?}: {e}")))?,
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
    // Each layer has its own filter: RUST_LOG decides what reaches the
    // writer, and a probe's log takes its debug events whatever RUST_LOG says.
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => Box::new(lines.with_target(false).with_filter(filter)),
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
