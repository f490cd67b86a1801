//! Per-request observability: one counter increment and one debug log line
//! per request, keyed by the route template.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};

use crate::{
    metrics::{status_class, RequestLabels},
    routes::AppState,
};

/// Route label of requests no route matched: one value, whatever the path.
const UNMATCHED: &str = "unmatched";

/// Counts and logs `request` once it is answered.
pub(crate) async fn request(
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
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    // Debug, not info: the kubelet's probes alone would be a line every few seconds.
    tracing::debug!(
        %method,
        route,
        status,
        micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    state
        .metrics
        .http_requests
        .get_or_create(&RequestLabels {
            route,
            status: status_class(status),
        })
        .inc();
    response
}
