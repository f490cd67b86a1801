//! The HTTP surface.
//!
//! | route      | answers                                                       |
//! |------------|---------------------------------------------------------------|
//! | `/`        | the service's name and version: replace with your own API     |
//! | `/healthz` | 200 while the process serves (liveness)                       |
//! | `/readyz`  | 200 once warmed up, 503 before that and from shutdown on      |
//! | `/metrics` | OpenMetrics text                                              |
//!
//! Anything else is a 404, counted under the route `unmatched`.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, StatusCode},
    middleware,
    response::IntoResponse,
    routing::get,
    Router,
};

use crate::{
    metrics::{self, Metrics},
    observe,
    readiness::{Phase, Readiness},
};

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// Behind `/readyz`; the warm-up and the shutdown move it.
    pub(crate) readiness: Readiness,
    /// Behind `/metrics`; every request updates it.
    pub(crate) metrics: Arc<Metrics>,
}

/// The service's routes, each request counted and logged.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        // `layer`, not `route_layer`: unmatched requests are counted too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::request,
        ))
        .with_state(state)
}

async fn index() -> &'static str {
    concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"), "\n")
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.readiness.phase() {
        Phase::Ready => (StatusCode::OK, "ready\n"),
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "warming up\n"),
        Phase::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}
