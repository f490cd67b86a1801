//! lookout's own signals: its logs ([`logging`], in text, JSON or
//! [`logfmt`]), its metrics ([`metrics`])
//! and the standard process metrics inside them ([`process`]).

mod logfmt;
pub mod logging;
pub(crate) mod metrics;
mod process;
