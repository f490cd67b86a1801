//! Per-request observability shared by both listeners: one log line and one
//! counter/histogram sample per request, keyed by the route template.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};

use super::state::AppState;
use crate::telemetry::metrics::RequestLabels;

/// Route label for requests no route matched: one value, whatever the URI.
const UNMATCHED: &str = "unmatched";

/// The `method` label: the methods of RFC 9110 and PATCH by name, anything
/// else (extension methods, other spellings: methods are case-sensitive) as
/// `other`, so that no client can grow the label set.
fn method_label(method: &Method) -> &'static str {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ]
    .iter()
    .find(|known| *known == method)
    .map_or("other", Method::as_str)
}

/// Records the request's route, method, status and latency.
pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let labels = RequestLabels {
        route,
        method,
        status,
    };
    let metrics = state.metrics();
    metrics.http_requests.get_or_create(&labels).inc();
    metrics
        .http_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        method,
        route = %labels.route,
        status,
        latency_ms = millis(elapsed),
        "request"
    );
    response
}

/// Milliseconds to the microsecond: `0.509`, not `0.5085489999999999`.
pub(crate) fn millis(elapsed: std::time::Duration) -> f64 {
    (elapsed.as_secs_f64() * 1e6).round() / 1e3
}
