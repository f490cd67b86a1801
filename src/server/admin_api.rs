//! The admin listener (default `:9090`), for the platform rather than users:
//!
//! - `GET /healthz`: 200 while the process runs (liveness).
//! - `GET /readyz`: 200 once warm, until shutdown begins, and while the probe
//!   listener answers; 503 otherwise.
//! - `GET /metrics`: lookout's own metrics (OpenMetrics text).
//! - `GET /config`: the modules in force, as blackbox_exporter prints them.
//! - `POST /-/reload`: reload the modules file, as SIGHUP does.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Router,
};

use super::{config_api, readiness::NotReady, reload, state::AppState};

/// The admin routes (`server::instrument` adds logging, metrics and auth).
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/config", get(config_api::config))
        .route("/-/reload", post(reload))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let not_ready = |why: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
    };
    match state.health().readiness() {
        Err(NotReady::WarmingUp) => not_ready("warming up"),
        Err(NotReady::ShuttingDown) => not_ready("shutting down"),
        Ok(()) => match state.probe_listener_answers().await {
            Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
            Err(why) => {
                tracing::warn!(reason = %why, "not ready: the probe listener does not answer");
                not_ready(&format!("the probe listener does not answer: {why}"))
            }
        },
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = state.metrics().render_for(accept);
    ([(header::CONTENT_TYPE, content_type)], body)
}

async fn reload(State(state): State<AppState>) -> impl IntoResponse {
    match reload::reload(&state).await {
        Ok(count) => (StatusCode::OK, format!("reloaded {count} modules\n")),
        // blackbox_exporter answers a failed reload with 500 and the reason.
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        ),
    }
}
