//! The probe listener (default `:9115`, blackbox_exporter's port):
//!
//! - `GET /probe?target=...&module=...`: run one probe.
//! - `GET /-/healthy`: 200, as blackbox_exporter answers it.
//! - `GET /`: a short page naming the endpoints.

use std::sync::Arc;

use axum::{
    extract::{RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};

use super::state::AppState;
use crate::{
    prober::{self, report, Modules, PreparedModule, ProbeOptions, Ticket},
    telemetry::metrics::{ModuleLabels, ProbeLabels, RejectLabels},
    telemetry::probe_log,
};

/// Prometheus announces its scrape timeout in this header.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// The probe API routes (`server::instrument` adds logging, metrics and auth).
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/-/healthy", get(healthy))
        .route("/probe", get(probe))
        .with_state(state)
}

/// A `/probe` request that passed blackbox_exporter's checks.
#[derive(Debug)]
pub struct ProbeRequest {
    /// The module to probe with.
    pub module: Arc<PreparedModule>,
    /// What to probe.
    pub target: String,
    /// The `hostname` parameter (the Host header for http probes).
    pub hostname: Option<String>,
    /// Prometheus' scrape timeout, when it sent one.
    pub scrape_timeout: Option<f64>,
    /// `debug=true`: answer with the probe's log, metrics and module.
    pub debug: bool,
}

/// Why a `/probe` request was refused, with blackbox_exporter's status and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400 or 500.
    pub status: StatusCode,
    /// The body, ending in a newline.
    pub body: String,
    /// The module was unknown (counted in `blackbox_module_unknown_total`).
    pub unknown_module: bool,
}

impl ProbeRequest {
    /// Checks a raw query string and scrape-timeout header in
    /// blackbox_exporter's order: module, timeout header, target, hostname.
    /// Pure, so it can be fuzzed: any input gives a request or a refusal.
    pub fn parse(
        query: &str,
        scrape_timeout: Option<&[u8]>,
        prober: &Modules,
    ) -> Result<Self, Refusal> {
        let refuse = |status, body: String| Refusal {
            status,
            body,
            unknown_module: false,
        };
        let params = query_pairs(query);
        // The first value wins (an empty one counts as missing), as with Go's url.Values.Get.
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let module_name = param("module").unwrap_or(prober::DEFAULT_MODULE);
        let Some(module) = prober.module(module_name) else {
            return Err(Refusal {
                unknown_module: true,
                ..refuse(
                    StatusCode::BAD_REQUEST,
                    format!("Unknown module {module_name:?}\n"),
                )
            });
        };
        // An empty header is no header, as with Go's `Header.Get(...) != ""`.
        let scrape_timeout = scrape_timeout.filter(|v| !v.is_empty());
        let scrape_timeout = match scrape_timeout.map(|v| std::str::from_utf8(v).map(parse_seconds))
        {
            None => None,
            Some(Ok(Some(seconds))) => Some(seconds),
            Some(_) => {
                return Err(refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Failed to parse timeout from Prometheus header\n".into(),
                ))
            }
        };
        let Some(target) = param("target") else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "Target parameter is missing\n".into(),
            ));
        };
        let hostname = param("hostname");
        let configured_host = prober::module_host(&module.config.http);
        if let (Some(hostname), Some(configured)) = (hostname, configured_host) {
            if hostname != configured {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "host header defined both in module configuration ({configured}) and with URL-parameter 'hostname' ({hostname})\n"
                    ),
                ));
            }
        }
        Ok(Self {
            module: Arc::clone(module),
            target: target.to_owned(),
            hostname: hostname.map(str::to_owned),
            scrape_timeout,
            // Exactly `true`, as blackbox_exporter compares it.
            debug: params
                .iter()
                .find(|(k, _)| k == "debug")
                .is_some_and(|(_, v)| v == "true"),
        })
    }
}

/// Query pairs as Go's `url.ParseQuery` keeps them: a pair with a `;` or a
/// malformed `%` escape is dropped, `+` is a space.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let well_formed = |pair: &&str| {
        let bytes = pair.as_bytes();
        !pair.is_empty()
            && !pair.contains(';')
            && bytes.iter().enumerate().all(|(i, b)| {
                *b != b'%'
                    || bytes
                        .get(i + 1..i + 3)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            })
    };
    query
        .split('&')
        .filter(well_formed)
        .flat_map(|pair| form_urlencoded::parse(pair.as_bytes()).into_owned())
        .collect()
}

/// The scrape-timeout header as Go's `strconv.ParseFloat` reads it: `Inf`
/// and `NaN` spelled out are numbers, an out-of-range value is an error.
fn parse_seconds(text: &str) -> Option<f64> {
    let seconds: f64 = text.parse().ok()?;
    let spelled_infinite = text
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase()
        .starts_with("inf");
    (!seconds.is_infinite() || spelled_infinite).then_some(seconds)
}

/// `/probe`: blackbox_exporter's checks, the concurrency limit, then one
/// probe. A failed probe is still a 200: its metrics say what failed.
async fn probe(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(prober) = state.prober() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Modules are still loading\n",
        )
            .into_response();
    };
    let timeout_header = headers.get(SCRAPE_TIMEOUT_HEADER).map(|v| v.as_bytes());
    let request = match ProbeRequest::parse(
        query.as_deref().unwrap_or_default(),
        timeout_header,
        &prober,
    ) {
        Ok(request) => request,
        Err(refusal) => {
            if refusal.unknown_module {
                state.metrics().module_unknown.inc();
            }
            return (refusal.status, refusal.body).into_response();
        }
    };
    let module = &request.module;
    let metrics = state.metrics();
    let refuse = |reason: &'static str, body: String| {
        metrics
            .probes_rejected
            .get_or_create(&RejectLabels { reason })
            .inc();
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    };
    let Some(slot) = state.try_probe_permit() else {
        return refuse(
            "concurrency",
            format!(
                "Too many concurrent probes (limit {}); retry later\n",
                state.max_probes()
            ),
        );
    };
    // A debug probe also holds its log and the text made of it.
    let cost = if request.debug {
        module.memory_cost + 2 * probe_log::MAX_BYTES as u64
    } else {
        module.memory_cost
    };
    let Some(memory) = state.try_memory(cost) else {
        return refuse(
            "memory",
            format!(
                "Probes need more memory than is free (limit {} MiB); retry later\n",
                state.max_memory() >> 20
            ),
        );
    };
    // Held by the probe and by any blocking work it leaves behind.
    let ticket = Ticket::new(slot, memory, cost, metrics.probe_memory_reserved.clone());
    let in_flight = InFlight::enter(&metrics.probes_in_flight);
    let started = std::time::Instant::now();
    let deadline = prober::timeout_with_offset(
        request.scrape_timeout,
        &module.config,
        state.timeout_offset(),
    );
    let options = ProbeOptions {
        hostname: request.hostname.as_deref(),
        policy: state.policy(),
        ticket: &ticket,
        matches: state.matches(),
    };
    let (report, debug_output) = if request.debug {
        let logged = prober::run_logged(module, &request.target, deadline, options).await;
        let text = logged.debug_output(module, request.hostname.as_deref());
        (logged.report, Some(text))
    } else {
        (
            prober::run(module, &request.target, deadline, options).await,
            None,
        )
    };
    drop(in_flight);
    drop(ticket);
    if let Some(reason) = report.refused() {
        return refuse("matches", format!("{reason}\n"));
    }
    let module_labels = ModuleLabels {
        module: module.name.clone(),
    };
    metrics
        .probe_duration
        .get_or_create(&module_labels)
        .observe(started.elapsed().as_secs_f64());
    metrics
        .probes
        .get_or_create(&ProbeLabels {
            module: module.name.clone(),
            result: if report.success() {
                "success"
            } else {
                "failure"
            },
        })
        .inc();
    match debug_output {
        Some(text) => ([(header::CONTENT_TYPE, prober::DEBUG_CONTENT_TYPE)], text).into_response(),
        None => (
            [(header::CONTENT_TYPE, report::CONTENT_TYPE)],
            report.render(),
        )
            .into_response(),
    }
}

/// Counts a probe in flight until dropped, also when the client hangs up
/// and the handler's future is dropped mid-probe.
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn healthy() -> &'static str {
    "Healthy"
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><title>lookout</title></head><body>\n",
        "<h1>lookout</h1>\n",
        "<p>A Prometheus prober, compatible with blackbox_exporter. Version ",
        env!("CARGO_PKG_VERSION"),
        ".</p>\n<ul>\n",
        "<li><a href=\"/probe?target=prometheus.io&amp;module=http_2xx\">/probe?target=...&amp;module=...</a>: run a probe</li>\n",
        "<li><a href=\"/probe?target=prometheus.io&amp;module=http_2xx&amp;debug=true\">/probe?target=...&amp;module=...&amp;debug=true</a>: run a probe and show its log</li>\n",
        "<li><a href=\"/-/healthy\">/-/healthy</a>: health</li>\n",
        "</ul>\n<p>Also /healthz, /readyz, /metrics, /config and POST /-/reload: on the admin listener, or here with --web.listen-address.</p>\n",
        "</body></html>\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn prober() -> Modules {
        Modules::build(&Config::embedded_default().unwrap()).unwrap()
    }

    #[test]
    fn checks_run_in_blackbox_exporters_order() {
        let prober = prober();
        let refused = |query: &str, header: Option<&[u8]>| {
            ProbeRequest::parse(query, header, &prober).unwrap_err()
        };
        assert_eq!(
            refused("module=nope", Some(b"x")).body,
            "Unknown module \"nope\"\n"
        );
        assert!(refused("module=nope", None).unknown_module);
        assert_eq!(
            refused("module=http_2xx", Some(b"ten")).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            refused("module=http_2xx", None).body,
            "Target parameter is missing\n"
        );
        // An empty timeout header is no header.
        assert!(ProbeRequest::parse("target=x", Some(b""), &prober)
            .is_ok_and(|r| r.scrape_timeout.is_none()));
        assert_eq!(
            refused("target=", None).body,
            "Target parameter is missing\n"
        );
    }

    #[test]
    fn queries_and_headers_parse_as_go_parses_them() {
        assert_eq!(
            query_pairs("a=1&b=%zz&c=%4&d;e=2&f=x+y&&g"),
            [
                ("a".to_owned(), "1".to_owned()),
                ("f".to_owned(), "x y".to_owned()),
                ("g".to_owned(), String::new()),
            ]
        );
        assert_eq!(parse_seconds("9.5"), Some(9.5));
        assert!(parse_seconds("Inf").is_some_and(f64::is_infinite));
        assert!(parse_seconds("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_seconds("1e400"), None);
        assert_eq!(parse_seconds("ten"), None);
    }

    #[test]
    fn parameters_decode_and_the_first_value_wins() {
        let prober = prober();
        let request = ProbeRequest::parse(
            "target=https%3A%2F%2Fexample.org%2Fa%3Fb%3Dc&target=second&module=tcp_connect&hostname=h+1",
            Some(b"9.5"),
            &prober,
        )
        .unwrap();
        assert_eq!(request.target, "https://example.org/a?b=c");
        assert_eq!(request.module.name, "tcp_connect");
        assert_eq!(request.hostname.as_deref(), Some("h 1"));
        assert_eq!(request.scrape_timeout, Some(9.5));
        assert_eq!(
            ProbeRequest::parse("target=x", None, &prober)
                .unwrap()
                .module
                .name,
            "http_2xx"
        );
    }
}
