//! State shared by both listeners, the warm-up, reloads and shutdown.

use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::Semaphore;

use crate::{
    config::ConfigSource, health::Health, metrics::Metrics, policy::TargetPolicy, prober::Prober,
};

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    health: Health,
    metrics: Metrics,
    source: ConfigSource,
    prober: RwLock<Option<Arc<Prober>>>,
    /// Serialises reloads so SIGHUP and POST /-/reload cannot interleave.
    reload: tokio::sync::Mutex<()>,
    /// One permit per probe that may run at once.
    probe_permits: Arc<Semaphore>,
    max_probes: usize,
    policy: TargetPolicy,
}

impl AppState {
    /// State for a server that reads its modules from `source`, runs at most
    /// `max_probes` probes at once and applies `policy` to every target.
    pub fn new(source: ConfigSource, max_probes: usize, policy: TargetPolicy) -> Self {
        Self(Arc::new(Shared {
            health: Health::default(),
            metrics: Metrics::new(),
            source,
            prober: RwLock::new(None),
            reload: tokio::sync::Mutex::new(()),
            probe_permits: Arc::new(Semaphore::new(max_probes)),
            max_probes,
            policy,
        }))
    }

    /// A permit to run one probe, or `None` when the limit is reached.
    pub fn try_probe_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.0.probe_permits).try_acquire_owned().ok()
    }

    /// The concurrent probe limit.
    pub fn max_probes(&self) -> usize {
        self.0.max_probes
    }

    /// Who may probe what.
    pub fn policy(&self) -> &TargetPolicy {
        &self.0.policy
    }

    /// Readiness and liveness.
    pub fn health(&self) -> &Health {
        &self.0.health
    }

    /// lookout's own metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Where modules are (re)loaded from.
    pub fn source(&self) -> &ConfigSource {
        &self.0.source
    }

    /// The modules in force, once warm-up has built them.
    pub fn prober(&self) -> Option<Arc<Prober>> {
        // A poisoned lock only means a writer panicked between two whole
        // assignments; the value inside is still a complete Prober.
        self.0
            .prober
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts a new set of modules in force; probes already running keep theirs.
    pub fn install(&self, prober: Prober) {
        *self
            .0
            .prober
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(prober));
    }

    /// Held while a reload runs.
    pub(crate) async fn reload_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.reload.lock().await
    }
}
