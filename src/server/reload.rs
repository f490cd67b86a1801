//! Configuration reloads, on SIGHUP, `POST /-/reload` and, with
//! `--config.enable-auto-reload`, when the file's checksum changes.
//!
//! A reload reads the modules file again and builds every module before
//! swapping it in, so a bad file never replaces good modules: the old ones keep
//! serving, the error is logged, and
//! `blackbox_exporter_config_last_reload_successful` drops to 0.

use std::time::{SystemTime, UNIX_EPOCH};

use super::state::AppState;
use crate::{
    config::{self, Checksum, Config, ConfigSource},
    prober::Modules,
    Error,
};

/// Loads the modules again and installs them; returns how many there are.
pub(crate) async fn reload(state: &AppState) -> Result<usize, Error> {
    let _guard = state.reload_guard().await;
    let source = state.source().clone();
    let budget = state.max_memory();
    let built = tokio::task::spawn_blocking(move || build(&source.reload()?, budget))
        .await
        .map_err(|e| Error::Task(e.to_string()))
        .and_then(|result| result);
    installed(state, built)
}

/// What an automatic reload found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The file is what the modules in force came from.
    Unchanged,
    /// The file changed and its modules are in force: how many.
    Reloaded(usize),
    /// The file is the same bad file as at the previous check.
    StillFailing,
}

/// Why the previous automatic reload failed: a bad file (or an unreadable
/// one) is reported once, not at every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failed {
    /// The file could not be read, for this reason.
    Read(String),
    /// The file with this checksum did not load.
    Content(Checksum),
}

/// An automatic reload: reads the file and installs its modules when its
/// checksum differs from that of the modules in force. `failed` is what
/// went wrong at the previous check, if anything.
pub(crate) async fn reload_if_changed(
    state: &AppState,
    failed: &mut Option<Failed>,
) -> Result<Change, Error> {
    let ConfigSource::File(path) = state.source().clone() else {
        return Ok(Change::Unchanged);
    };
    let _guard = state.reload_guard().await;
    let budget = state.max_memory();
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || config::read_text(&path, true))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    };
    let text = match read {
        Ok(text) => text,
        Err(error) => {
            // A file being replaced may be missing for a moment; each
            // failure counts, as blackbox_exporter counts it.
            state.metrics().reload_success.set(0);
            let error = Error::from(error);
            let now = Failed::Read(error.to_string());
            if failed.as_ref() != Some(&now) {
                tracing::error!(%error, "reload failed; the previous modules stay in force");
                *failed = Some(now);
            }
            return Err(error);
        }
    };
    let sum = config::checksum(text.as_bytes());
    if state.checksum() == Some(sum) {
        // blackbox_exporter counts an unchanged file as a successful reload.
        *failed = None;
        mark_success(state);
        tracing::debug!("configuration file unchanged");
        return Ok(Change::Unchanged);
    }
    if *failed == Some(Failed::Content(sum)) {
        state.metrics().reload_success.set(0);
        return Ok(Change::StillFailing);
    }
    tracing::info!(file = %path.display(), "configuration file changed; reloading");
    let built =
        tokio::task::spawn_blocking(move || build(&Config::parse_file(&path, &text)?, budget))
            .await
            .map_err(|e| Error::Task(e.to_string()))
            .and_then(|result| result);
    match installed(state, built) {
        Ok(count) => {
            *failed = None;
            Ok(Change::Reloaded(count))
        }
        Err(error) => {
            *failed = Some(Failed::Content(sum));
            Err(error)
        }
    }
}

fn build(config: &Config, budget: u64) -> Result<(Modules, Option<Checksum>), Error> {
    let prober = Modules::build(config)?;
    prober.fit(budget)?;
    Ok((prober, config.checksum))
}

/// Installs what a reload built, or counts its failure.
fn installed(
    state: &AppState,
    built: Result<(Modules, Option<Checksum>), Error>,
) -> Result<usize, Error> {
    match built {
        Ok((prober, checksum)) => {
            let count = prober.module_names().count();
            install(state, prober, checksum);
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
    let (prober, checksum) = tokio::task::spawn_blocking(move || build(&config, budget))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    let names = prober.module_names().collect::<Vec<_>>().join(",");
    install(state, prober, checksum);
    state.health().set_warm();
    tracing::info!(modules = %names, "warm-up done; ready");
    Ok(())
}

fn install(state: &AppState, prober: Modules, checksum: Option<Checksum>) {
    state.install(prober);
    state.set_checksum(checksum);
    mark_success(state);
}

fn mark_success(state: &AppState) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    state.metrics().reload_success.set(1);
    state.metrics().reload_timestamp.set(now);
}
