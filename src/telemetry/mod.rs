//! lookout's own signals: its logs ([`logging`], in text, JSON or
//! [`logfmt`]), its metrics ([`metrics`]) and the standard process metrics
//! inside them ([`process`]), and each probe's own log ([`probe_log`]).

mod logfmt;
pub mod logging;
pub(crate) mod metrics;
pub mod probe_log;
mod process;
