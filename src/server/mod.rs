//! Everything that answers a request, on both listeners.
//!
//! One `/probe` request, from accept to response: [`listener`] accepts the
//! connection within its limits and completes TLS with the certificate
//! [`access`] keeps current; hyper reads the request head; [`access_log`]
//! starts the request's log line and metrics; [`access`] checks the
//! credentials; [`probe_api`] checks the parameters, takes a slot under the
//! probe limit and the memory budget ([`state`]) and runs the probe
//! (`crate::prober`); the exposition goes back the same way. The admin
//! listener serves [`admin_api`]: liveness, [`readiness`], lookout's own
//! metrics, the modules in force ([`config_api`]) and [`reload`]s, also
//! [`auto_reload`]ed when the file changes. [`shutdown`] stops both in order.
//! With `--web.listen-address` one listener serves both ([`blackbox_routes`]),
//! as blackbox_exporter does; `--web.config.file` ([`web_access`]) sets the
//! TLS, users, headers and rate limit of whichever listeners there are.

use std::sync::Arc;

use axum::{middleware, Router};

pub(crate) mod access;
pub(crate) mod access_log;
pub(crate) mod admin_api;
pub(crate) mod auto_reload;
pub(crate) mod config_api;
pub mod listen_address;
pub(crate) mod listener;
mod password_check;
pub mod probe_api;
pub(crate) mod readiness;
pub(crate) mod reload;
pub(crate) mod shutdown;
pub(crate) mod state;
mod watched;
pub(crate) mod web_access;
mod web_tls;

use self::{access::Auth, state::AppState};

/// blackbox_exporter's endpoints on one address (`--web.listen-address`):
/// the probe API's routes and the admin listener's, whatever they are.
pub(crate) fn blackbox_routes(state: AppState) -> Router {
    probe_api::router(state.clone()).merge(admin_api::router(state))
}

/// Adds what every route of both listeners gets: authentication when
/// configured, inside the per-request log and metrics (so 401s are counted).
pub(crate) fn instrument(routes: Router, state: &AppState, auth: Option<&Arc<Auth>>) -> Router {
    let routes = match auth {
        Some(auth) => routes.layer(middleware::from_fn_with_state(
            Arc::clone(auth),
            access::require,
        )),
        None => routes,
    };
    routes.layer(middleware::from_fn_with_state(
        state.clone(),
        access_log::observe,
    ))
}
