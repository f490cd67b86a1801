//! Settings of the icmp prober: ICMP echo. (Its options arrive with its implementation.)

use serde::Deserialize;

/// Settings of the icmp prober.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcmpProbe {}
