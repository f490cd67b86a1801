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

use std::sync::Arc;

use axum::{middleware, Router};

pub(crate) mod access;
pub(crate) mod access_log;
pub(crate) mod admin_api;
pub(crate) mod auto_reload;
pub(crate) mod config_api;
pub(crate) mod listener;
pub mod probe_api;
pub(crate) mod readiness;
pub(crate) mod reload;
pub(crate) mod shutdown;
pub(crate) mod state;
mod watched;

use self::{access::Auth, state::AppState};

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
