//! The dns prober, as blackbox_exporter 0.28 runs it (not written yet: the
//! modules file accepts `prober: dns`, and every probe of it fails saying so).

use super::{report::Report, PreparedModule, ProbeOptions};

/// Runs a dns probe: `Ok(false)` when a check failed, `Err` with the reason
/// when the probe could not be made.
pub(super) async fn probe(
    _module: &PreparedModule,
    _target: &str,
    _options: ProbeOptions<'_>,
    _report: &mut Report,
) -> Result<bool, String> {
    Err("the dns prober is not implemented yet".to_owned())
}
