//! Logging: tracing to stderr, filtered by `RUST_LOG` (default `info`), as
//! human-readable text or, with `LOG_FORMAT=json`, one JSON object per line for
//! cluster log pipelines.

use tracing_subscriber::{filter::LevelFilter, EnvFilter};

use crate::Error;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Fails on a malformed `RUST_LOG`.
pub fn init(format: LogFormat) -> Result<(), Error> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()
        .map_err(|e| Error::LogFilter(e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests that run several servers in one process) keeps the
    // first subscriber; that is not an error worth stopping for.
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    Ok(())
}
