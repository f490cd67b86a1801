//! The probe listener (default `:9115`, blackbox_exporter's port):
//!
//! - `GET /probe?target=...&module=...`: run one probe.
//! - `GET /-/healthy`: 200, as blackbox_exporter answers it.
//! - `GET /`: a short page naming the endpoints.

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};

use crate::{
    metrics::{ModuleLabels, ProbeLabels},
    prober::{self, report, ProbeOptions},
    state::AppState,
};

/// Prometheus announces its scrape timeout in this header.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// The probe API routes (`server::instrument` adds logging, metrics and auth).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/-/healthy", get(healthy))
        .route("/probe", get(probe))
        .with_state(state)
}

/// `/probe`: checks in blackbox_exporter's order (module, timeout header,
/// target), then one probe. A failed probe is still a 200: its metrics say
/// what failed.
async fn probe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    // The first value wins, as with Go's url.Values.Get.
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(prober) = state.prober() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Modules are still loading\n",
        )
            .into_response();
    };
    let module_name = param("module").unwrap_or(prober::DEFAULT_MODULE);
    let Some(module) = prober.module(module_name) else {
        state.metrics().module_unknown.inc();
        return (
            StatusCode::BAD_REQUEST,
            format!("Unknown module {module_name:?}\n"),
        )
            .into_response();
    };
    let scrape_timeout = match headers
        .get(SCRAPE_TIMEOUT_HEADER)
        .map(|v| v.to_str().map(str::parse::<f64>))
    {
        None => None,
        Some(Ok(Ok(seconds))) => Some(seconds),
        Some(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to parse timeout from Prometheus header\n",
            )
                .into_response()
        }
    };
    let Some(target) = param("target") else {
        return (StatusCode::BAD_REQUEST, "Target parameter is missing\n").into_response();
    };
    let hostname = param("hostname");
    if let (Some(hostname), Some((_, configured))) = (
        hostname,
        module
            .config
            .http
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host")),
    ) {
        if hostname != configured {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "host header defined both in module configuration ({configured}) and with URL-parameter 'hostname' ({hostname})\n"
                ),
            )
                .into_response();
        }
    }

    let metrics = state.metrics();
    let Some(_permit) = state.try_probe_permit() else {
        metrics.probes_rejected.inc();
        let body = format!(
            "Too many concurrent probes (limit {}); retry later\n",
            state.max_probes()
        );
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    };
    let in_flight = InFlight::enter(&metrics.probes_in_flight);
    let deadline = prober::timeout(scrape_timeout, &module.config);
    let options = ProbeOptions {
        hostname,
        policy: state.policy(),
    };
    let report = prober::run(module, target, deadline, options).await;
    drop(in_flight);
    let module_labels = ModuleLabels {
        module: module.name.clone(),
    };
    let seconds = report.get(report::PROBE_DURATION, &[]).unwrap_or_default();
    metrics
        .probe_duration
        .get_or_create(&module_labels)
        .observe(seconds);
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
    (
        [(header::CONTENT_TYPE, report::CONTENT_TYPE)],
        report.render(),
    )
        .into_response()
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
        "<li><a href=\"/-/healthy\">/-/healthy</a>: health</li>\n",
        "</ul>\n<p>Admin listener: /healthz, /readyz, /metrics, POST /-/reload.</p>\n",
        "</body></html>\n"
    ))
}
