//! Logging: tracing to stderr, filtered by `RUST_LOG` (default `info`), as
//! human-readable text or, with `LOG_FORMAT=json`, one JSON object per line for
//! cluster log pipelines.
//!
//! `RUST_LOG` takes `level` and `target=level` directives separated by commas
//! (`info,lookout=debug`). That is tracing-subscriber's `Targets` filter:
//! EnvFilter's span and field filters would cost a regex engine in the binary.

use std::{io::IsTerminal as _, str::FromStr as _};

use tracing_subscriber::{
    filter::{LevelFilter, Targets},
    layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

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

/// Installs the global subscriber. Fails on a malformed `RUST_LOG`.
pub fn init(format: LogFormat) -> Result<(), Error> {
    let filter = match std::env::var(ENV_FILTER) {
        Ok(directives) if !directives.trim().is_empty() => Targets::from_str(&directives)
            .map_err(|e| Error::LogFilter(format!("{directives:?}: {e}")))?,
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
    // The filter above decides; the builder's own INFO cap would hide debug
    // lines whatever RUST_LOG says. Colours only for a terminal, never for a
    // log pipeline.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests that run several servers in one process) keeps the
    // first subscriber; that is not an error worth stopping for.
    let _ = match format {
        LogFormat::Text => builder.with_target(false).finish().with(filter).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .with(filter)
            .try_init(),
    };
    Ok(())
}
