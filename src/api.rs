//! The probe listener (default `:9115`, blackbox_exporter's port):
//!
//! - `GET /probe?target=...&module=...`: run one probe.
//! - `GET /-/healthy`: 200, as blackbox_exporter answers it.
//! - `GET /`: a short page naming the endpoints.

use axum::{middleware, response::Html, routing::get, Router};

use crate::{middleware::observe, state::AppState};

/// The probe API routes, instrumented.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/-/healthy", get(healthy))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
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
