//! Per-request observability shared by both listeners: one log line and one
//! counter/histogram sample per request, keyed by the route template.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};

use crate::{metrics::RequestLabels, state::AppState};

/// Route label for requests no route matched: one value, whatever the URI.
const UNMATCHED: &str = "unmatched";

/// Records the request's route, method, status and latency.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let labels = RequestLabels {
        route,
        method: method.as_str().to_owned(),
        status,
    };
    let metrics = state.metrics();
    metrics.http_requests.get_or_create(&labels).inc();
    metrics
        .http_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        method = %method,
        route = %labels.route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}
