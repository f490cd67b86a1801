//! Files that may change under a running process: TLS certificates that
//! cert-manager rotates, credential files from rotated Secrets.
//!
//! A [`Watched`] value is re-read when the file's modification time or size
//! changes, checked at most once per [`CHECK_INTERVAL`] and only when the
//! value is used, so there is no background task and an idle process reads
//! nothing. Kubernetes updates Secret volumes by swapping a symlink, which
//! changes what `metadata` sees. A file that fails to load keeps the last
//! good value in use (and says why, once per change).

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

/// How stale a value may be before its files are looked at again.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(1);

type Stamp = Vec<Option<(SystemTime, u64)>>;

/// Reads the value from its files.
type Loader<T> = Box<dyn Fn(&[PathBuf]) -> Result<T, String> + Send + Sync>;

/// The further files a loaded value names (a configuration file's certificates).
type Follows<T> = fn(&T) -> Vec<PathBuf>;

/// A value loaded from one or more files, reloaded when they change.
pub(crate) struct Watched<T> {
    paths: Vec<PathBuf>,
    load: Loader<T>,
    follows: Option<Follows<T>>,
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Arc<T>,
    stamp: Stamp,
    checked: Instant,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

fn stamp(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

impl<T> Watched<T> {
    /// Loads the value now; an error here is a start-up error.
    pub(crate) fn new(
        paths: Vec<PathBuf>,
        load: impl Fn(&[PathBuf]) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let stamp = stamp(&paths);
        let value = Arc::new(load(&paths)?);
        Ok(Self {
            paths,
            load: Box::new(load),
            follows: None,
            state: Mutex::new(State {
                value,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// Also watches the files each loaded value names (`follows`): a change
    /// to any of them reloads the value from `paths` again.
    pub(crate) fn following(mut self, follows: Follows<T>) -> Self {
        self.follows = Some(follows);
        let value = Arc::clone(
            &self
                .state
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .value,
        );
        let now = stamp(&self.watched(&value));
        self.state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .stamp = now;
        self
    }

    /// `paths`, then the files `value` names.
    fn watched(&self, value: &T) -> Vec<PathBuf> {
        let mut paths = self.paths.clone();
        paths.extend(
            self.follows
                .map(|follows| follows(value))
                .unwrap_or_default(),
        );
        paths
    }

    /// The current value, reloaded first if the files changed.
    pub(crate) fn get(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= CHECK_INTERVAL {
            state.checked = Instant::now();
            let now = stamp(&self.watched(&state.value));
            if now != state.stamp {
                state.stamp = now;
                match (self.load)(&self.paths) {
                    Ok(value) => {
                        tracing::info!(files = ?self.paths, "reloaded changed files");
                        // The new value may name other files.
                        state.stamp = stamp(&self.watched(&value));
                        state.value = Arc::new(value);
                    }
                    Err(error) => {
                        tracing::error!(%error, "changed files do not load; keeping the previous version");
                    }
                }
            }
        }
        Arc::clone(&state.value)
    }
}

/// Reads a whole file as text, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}
