//! my-service: a minimal axum service, ready for Kubernetes.
//!
//! - [`config`]: settings from environment variables;
//! - [`Application`] (`app.rs`): bind, serve, shut down gracefully;
//! - `routes.rs`: `/`, `/healthz`, `/readyz`, `/metrics`;
//! - `readiness.rs` and `warmup.rs`: what `/readyz` reports and what it waits for;
//! - `metrics.rs` and `observe.rs`: the metrics, and the per-request counter and log line;
//! - [`shutdown`]: the stop signals; [`telemetry`]: JSON logs.

mod app;
pub mod config;
mod error;
mod metrics;
mod observe;
mod readiness;
mod routes;
pub mod shutdown;
pub mod telemetry;
mod warmup;

pub use app::Application;
pub use config::Config;
pub use error::Error;
