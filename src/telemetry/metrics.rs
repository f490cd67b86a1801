//! lookout's own metrics, served on the admin listener's `/metrics`.
//!
//! Exposition is prometheus-client's OpenMetrics text, which Prometheus
//! negotiates and `promtool check metrics` accepts. Names of the reload gauges
//! are blackbox_exporter's, so its alerting rules keep working unchanged.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        gauge::Gauge,
        histogram::Histogram,
    },
    registry::Registry,
};

use super::process::ProcessCollector;

/// Content type of OpenMetrics text, served when the scraper asks for it.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text format, served otherwise: the
/// probes' own (one constant for both).
pub(crate) use crate::prober::report::CONTENT_TYPE as TEXT_CONTENT_TYPE;

/// Revision baked in at build time (the flake sets it from its own revision).
pub(crate) const GIT_REVISION: &str = match option_env!("LOOKOUT_GIT_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

/// Labels of the per-request metrics. `route` is the router's template
/// (`/probe`), never the raw URI, so a scanner cannot blow up cardinality.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// Route template, or `unmatched`.
    pub route: String,
    /// Request method, from a fixed set (see `middleware`).
    pub method: &'static str,
    /// Response status code.
    pub status: u16,
}

/// Labels of the per-probe counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ProbeLabels {
    /// Module name.
    pub module: String,
    /// `success` or `failure`.
    pub result: &'static str,
}

/// Why a probe was refused with 503.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RejectLabels {
    /// `concurrency` (the probe limit), `memory` (the memory budget) or
    /// `matches` (every body-match slot busy).
    pub reason: &'static str,
}

impl RejectLabels {
    /// Every reason a probe is refused for.
    pub(crate) const REASONS: [&'static str; 3] = ["concurrency", "memory", "matches"];
}

/// How a basic-auth password of `--web.config.file` was checked.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AuthCheckLabels {
    /// `cached` (a verdict remembered), `bcrypt` (the hash computed) or
    /// `busy` (refused with 503: too many checks waiting for bcrypt).
    pub outcome: &'static str,
}

/// Labels naming a module.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModuleLabels {
    /// Module name.
    pub module: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
}

/// Builds histograms with a fixed bucket layout.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// Request latencies from 100µs (health checks) to 60s (slow probes).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Every metric lookout exports about itself.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests served, by route, method and status.
    pub http_requests: Family<RequestLabels, Counter>,
    /// Request latency, by route, method and status.
    pub http_duration: Family<RequestLabels, Histogram, Buckets>,
    /// 1 when the last reload succeeded.
    pub reload_success: Gauge,
    /// Unix time of the last successful reload.
    pub reload_timestamp: Gauge<f64, AtomicU64>,
    /// Probes run, by module and result.
    pub probes: Family<ProbeLabels, Counter>,
    /// Probe duration, by module.
    pub probe_duration: Family<ModuleLabels, Histogram, Buckets>,
    /// Probes running now.
    pub probes_in_flight: Gauge,
    /// Probes refused with 503, by reason.
    pub probes_rejected: Family<RejectLabels, Counter>,
    /// Bytes of the probe memory budget reserved by running probes.
    pub probe_memory_reserved: Gauge,
    /// The probe memory budget in bytes.
    pub probe_memory_budget: Gauge,
    /// Body regexp matches running now (they may outlive their probe).
    pub body_matches_running: Gauge,
    /// How many body matches may run at once.
    pub body_match_slots: Gauge,
    /// `/probe` requests naming a module that does not exist.
    pub module_unknown: Counter,
    /// Basic-auth passwords checked against `--web.config.file`'s hashes.
    pub basic_auth_checks: Family<AuthCheckLabels, Counter>,
}

impl Metrics {
    /// Registers every metric, including the process collector.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: GIT_REVISION,
            })
            .set(1);
        registry.register(
            "lookout_build_info",
            "A metric with a constant '1' value labelled by version and revision from which lookout was built",
            build_info,
        );

        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "lookout_http_requests",
            "HTTP requests served, by route template, method and status code",
            http_requests.clone(),
        );
        let http_duration = Family::new_with_constructor(Buckets(LATENCY_BUCKETS));
        registry.register(
            "lookout_http_request_duration_seconds",
            "Time to answer HTTP requests, by route template, method and status code",
            http_duration.clone(),
        );

        let reload_success = Gauge::default();
        registry.register(
            "blackbox_exporter_config_last_reload_successful",
            "Blackbox exporter config loaded successfully",
            reload_success.clone(),
        );
        let reload_timestamp = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "blackbox_exporter_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload",
            reload_timestamp.clone(),
        );

        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "lookout_probes",
            "Probes run, by module and result",
            probes.clone(),
        );
        let probe_duration = Family::new_with_constructor(Buckets(LATENCY_BUCKETS));
        registry.register(
            "lookout_probe_duration_seconds",
            "Duration of probes, by module",
            probe_duration.clone(),
        );
        let probes_in_flight = Gauge::default();
        registry.register(
            "lookout_probes_in_flight",
            "Probes running now",
            probes_in_flight.clone(),
        );
        let probes_rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "lookout_probes_rejected",
            "Probes refused with 503, by reason: the concurrency limit, the memory budget, or busy body-match slots",
            probes_rejected.clone(),
        );
        // Every reason exists from the start at 0, so `increase()` in the
        // LookoutProbesRejected alert sees the first burst of refusals too.
        for reason in RejectLabels::REASONS {
            drop(probes_rejected.get_or_create(&RejectLabels { reason }));
        }

        let probe_memory_reserved = Gauge::default();
        registry.register(
            "lookout_probe_memory_reserved_bytes",
            "Memory reserved by the probes running now (and the lookups and matches they left behind), the worst case of each",
            probe_memory_reserved.clone(),
        );
        let probe_memory_budget = Gauge::default();
        registry.register(
            "lookout_probe_memory_budget_bytes",
            "Memory all running probes may reserve together (--max-probe-memory); probes that do not fit get 503",
            probe_memory_budget.clone(),
        );
        let body_matches_running = Gauge::default();
        registry.register(
            "lookout_body_matches_running",
            "Body regexp matches running now, on their own threads; one may outlive its probe's deadline",
            body_matches_running.clone(),
        );
        let body_match_slots = Gauge::default();
        registry.register(
            "lookout_body_match_slots",
            "Body regexp matches that may run at once; probes that find every slot busy are answered 503",
            body_match_slots.clone(),
        );

        let module_unknown = Counter::default();
        registry.register(
            "blackbox_module_unknown",
            "Count of unknown modules requested by probes",
            module_unknown.clone(),
        );

        let basic_auth_checks = Family::<AuthCheckLabels, Counter>::default();
        registry.register(
            "lookout_basic_auth_checks",
            "Basic-auth passwords checked against the bcrypt hashes of --web.config.file: answered from the cache, computed, or refused with 503 because too many waited for bcrypt",
            basic_auth_checks.clone(),
        );

        registry.register_collector(Box::new(ProcessCollector::new()));

        Self {
            registry,
            http_requests,
            http_duration,
            reload_success,
            reload_timestamp,
            probes,
            probe_duration,
            probes_in_flight,
            probes_rejected,
            probe_memory_reserved,
            probe_memory_budget,
            body_matches_running,
            body_match_slots,
            module_unknown,
            basic_auth_checks,
        }
    }

    /// The exposition in the format the `Accept` header asks for, with its
    /// content type: OpenMetrics when offered (as Prometheus does), the
    /// classic text format otherwise (curl, promtool, older scrapers).
    pub(crate) fn render_for(&self, accept: Option<&str>) -> (&'static str, String) {
        let openmetrics = self.render();
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            (OPENMETRICS_CONTENT_TYPE, openmetrics)
        } else {
            (TEXT_CONTENT_TYPE, to_text_format(&openmetrics))
        }
    }

    /// The OpenMetrics exposition of everything registered.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail; an Err here would be a bug in an
        // encoder, and a partial page is still more useful than none.
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// Converts prometheus-client's OpenMetrics text to the classic text format.
/// The two differ, for the types we use, only in that a counter family is
/// named with its `_total` suffix and in the `# UNIT` and `# EOF` lines.
pub(crate) fn to_text_format(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_suffix_in_text_format() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total 1\n\
                  # HELP b Bytes.\n# TYPE b gauge\n# UNIT b bytes\nb 2\n# EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total 1\n\
             # HELP b Bytes.\n# TYPE b gauge\nb 2\n"
        );
    }

    #[test]
    fn negotiation_follows_the_accept_header() {
        let metrics = Metrics::new();
        let (ct, body) = metrics.render_for(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        ));
        assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
        assert!(body.ends_with("# EOF\n"));
        let (ct, body) = metrics.render_for(None);
        assert_eq!(ct, TEXT_CONTENT_TYPE);
        assert!(!body.contains("# EOF"));
        assert!(body.contains("# TYPE blackbox_exporter_config_last_reload_successful gauge"));
        assert!(body.contains("# HELP blackbox_exporter_config_last_reload_successful Blackbox exporter config loaded successfully.\n"));
    }
}
