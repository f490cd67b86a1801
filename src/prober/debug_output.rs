//! `/probe?debug=true`'s answer, as blackbox_exporter's `DebugOutput`
//! writes it: the probe's log, the metrics it would have returned, and the
//! module's configuration, under the same headings in the same order.

use super::{Logged, PreparedModule};
use crate::config;

/// Content type of the debug output (blackbox_exporter's, without a charset).
pub const CONTENT_TYPE: &str = "text/plain";

impl Logged {
    /// The debug output of this probe with `module`; `hostname` is the
    /// request's parameter, shown as the module's Host header.
    pub fn debug_output(&self, module: &PreparedModule, hostname: Option<&str>) -> String {
        format!(
            "Logs for the probe:\n{}\n\n\nMetrics that would have been returned:\n{}\n\n\nModule configuration:\n{}",
            self.log.render(),
            self.report.render(),
            config::module_yaml(&module.config, hostname),
        )
    }
}
