//! `--config.enable-auto-reload`: every `--config.auto-reload-interval`
//! (30 s by default, as in blackbox_exporter 0.28), read the modules file
//! and reload it when its SHA-256 differs from that of the modules in force.
//!
//! The file is read by its path each time, so a Kubernetes ConfigMap update
//! (a new directory, then the `..data` symlink swapped to it) is seen like
//! an edit in place. A file that does not load, or cannot be read (deleted,
//! larger than `config::MAX_FILE_BYTES`), leaves the modules in force as
//! they are and sets `blackbox_exporter_config_last_reload_successful` to 0,
//! as a failed SIGHUP does; it is logged once, not at every check. As in
//! blackbox_exporter, a check that finds the file unchanged counts as a
//! successful reload (the gauge goes back to 1 when a broken file is put
//! back as it was).

use std::time::Duration;

use super::{
    reload::{self, Change},
    state::AppState,
};

/// Checks the file every `interval` until the task is dropped.
pub(crate) async fn run(state: AppState, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    // The first check one interval after start, not at once.
    ticks.tick().await;
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed = None;
    loop {
        ticks.tick().await;
        // Failures are logged and counted inside.
        if let Ok(Change::Reloaded(count)) = reload::reload_if_changed(&state, &mut failed).await {
            tracing::debug!(modules = count, "automatic reload done");
        }
    }
}
