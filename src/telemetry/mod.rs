//! lookout's own signals: its logs ([`logging`]), its metrics ([`metrics`])
//! and the standard process metrics inside them ([`process`]).

pub mod logging;
pub(crate) mod metrics;
mod process;
