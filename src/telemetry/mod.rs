//! lookout's own signals: its logs ([`logging`]), its metrics ([`metrics`])
//! and the standard process metrics inside them ([`process`]), and each
//! probe's own log ([`probe_log`]).

pub mod logging;
pub(crate) mod metrics;
pub mod probe_log;
mod process;
