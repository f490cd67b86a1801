//! Logging: one JSON object per line on stdout, where container runtimes
//! collect it. Levels come from `LOG_LEVEL` alone (no per-module filter: it
//! would bring a regex engine into the binary).

use tracing::level_filters::LevelFilter;

/// Installs the JSON logger for the whole process. Call once, first thing.
pub fn init(level: LevelFilter) {
    tracing_subscriber::fmt()
        .json()
        // The event's fields at the top level, beside `message`: log queries
        // read `.status`, not `.fields.status`.
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(level)
        .init();
}
