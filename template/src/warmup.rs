//! The warm-up: the work between binding the port and taking traffic.
//!
//! `/healthz` answers during it (the process is alive) and `/readyz` does
//! not, so Kubernetes sends no request to a pod that cannot serve it yet.

use std::time::Duration;

/// Stands for the service's start-up work (loading a cache, opening a
/// connection pool): replace the sleep with yours. Work that can fail should
/// retry here, or end the process, rather than leave the pod unready forever.
pub(crate) async fn run(duration: Duration) {
    tracing::info!(seconds = duration.as_secs_f64(), "warming up");
    tokio::time::sleep(duration).await;
}
