//! `GET /config` on the admin listener: the modules in force (the last file
//! that loaded), as blackbox_exporter's `/config` prints its configuration:
//! YAML with every default filled in and secrets as `<secret>` (see
//! `config::config_yaml` for where the text can differ). A plain handler,
//! so any router can mount it.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};

use super::state::AppState;
use crate::config;

/// `GET /config`.
pub(crate) async fn config(State(state): State<AppState>) -> Response {
    let Some(modules) = state.prober() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Modules are still loading\n",
        )
            .into_response();
    };
    let text = config::config_yaml(
        modules
            .module_names()
            .filter_map(|name| Some((name, &modules.module(name)?.config))),
    );
    // blackbox_exporter's content type, without a charset.
    ([(header::CONTENT_TYPE, "text/plain")], text).into_response()
}
