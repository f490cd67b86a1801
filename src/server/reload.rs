//! Configuration reloads, on SIGHUP and `POST /-/reload`.
//!
//! A reload reads the modules file again and builds every module before
//! swapping it in, so a bad file never replaces good modules: the old ones keep
//! serving, the error is logged, and
//! `blackbox_exporter_config_last_reload_successful` drops to 0.

use std::time::{SystemTime, UNIX_EPOCH};

use super::state::AppState;
use crate::{config::Config, prober::Modules, Error};

/// Loads the modules again and installs them; returns how many there are.
pub(crate) async fn reload(state: &AppState) -> Result<usize, Error> {
    let _guard = state.reload_guard().await;
    let source = state.source().clone();
    let budget = state.max_memory();
    let built = tokio::task::spawn_blocking(move || -> Result<Modules, Error> {
        let config = source.load()?;
        let prober = Modules::build(&config)?;
        prober.fit(budget)?;
        Ok(prober)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))
    .and_then(|result| result);
    match built {
        Ok(prober) => {
            let count = prober.module_names().count();
            install(state, prober);
            tracing::info!(modules = count, "configuration reloaded");
            Ok(count)
        }
        Err(error) => {
            state.metrics().reload_success.set(0);
            tracing::error!(%error, "reload failed; the previous modules stay in force");
            Err(error)
        }
    }
}

/// Builds the modules of an already parsed configuration at start-up.
pub(crate) async fn warm_up(state: &AppState, config: Config) -> Result<(), Error> {
    let budget = state.max_memory();
    let prober = tokio::task::spawn_blocking(move || {
        let prober = Modules::build(&config)?;
        prober.fit(budget)?;
        Ok::<_, Error>(prober)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    let names = prober.module_names().collect::<Vec<_>>().join(",");
    install(state, prober);
    state.health().set_warm();
    tracing::info!(modules = %names, "warm-up done; ready");
    Ok(())
}

fn install(state: &AppState, prober: Modules) {
    state.install(prober);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    state.metrics().reload_success.set(1);
    state.metrics().reload_timestamp.set(now);
}
