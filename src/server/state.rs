//! State shared by both listeners, the warm-up, reloads and shutdown.

use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::Semaphore;

use super::readiness::{Health, ListenerCheck};
use crate::{
    config::{Checksum, ConfigSource},
    prober::{policy::TargetPolicy, MatchSlots, Modules},
    telemetry::metrics::Metrics,
};

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Debug, Clone)]
pub(crate) struct AppState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    health: Health,
    metrics: Metrics,
    source: ConfigSource,
    prober: RwLock<Option<Arc<Modules>>>,
    /// SHA-256 of the file the modules in force came from.
    checksum: std::sync::Mutex<Option<Checksum>>,
    /// Serialises reloads so SIGHUP and POST /-/reload cannot interleave.
    reload: tokio::sync::Mutex<()>,
    /// One permit per probe that may run at once.
    probe_permits: Arc<Semaphore>,
    max_probes: usize,
    /// The probe memory budget, one permit per KiB.
    memory_permits: Arc<Semaphore>,
    max_memory: u64,
    matches: MatchSlots,
    policy: TargetPolicy,
    /// Set once the probe listener is bound.
    probe_listener: std::sync::OnceLock<ListenerCheck>,
    /// `--timeout-offset`, when not blackbox_exporter's default.
    timeout_offset: std::sync::OnceLock<f64>,
}

/// What bounds the probes of a server.
#[derive(Debug, Clone, Copy)]
pub struct ProbeLimits {
    /// Probes running at once.
    pub max_probes: usize,
    /// Bytes all running probes may need together, at most.
    pub max_memory: u64,
}

impl AppState {
    /// State for a server that reads its modules from `source`, runs probes
    /// within `limits` and applies `policy` to every target.
    pub(crate) fn new(source: ConfigSource, limits: ProbeLimits, policy: TargetPolicy) -> Self {
        let kib = usize::try_from(limits.max_memory >> 10)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        let metrics = Metrics::new();
        let matches = MatchSlots::per_cpu(metrics.body_matches_running.clone());
        metrics
            .body_match_slots
            .set(i64::try_from(matches.count()).unwrap_or(i64::MAX));
        metrics
            .probe_memory_budget
            .set(i64::try_from(limits.max_memory).unwrap_or(i64::MAX));
        Self(Arc::new(Shared {
            health: Health::default(),
            metrics,
            source,
            prober: RwLock::new(None),
            checksum: std::sync::Mutex::new(None),
            reload: tokio::sync::Mutex::new(()),
            probe_permits: Arc::new(Semaphore::new(limits.max_probes)),
            max_probes: limits.max_probes,
            memory_permits: Arc::new(Semaphore::new(kib)),
            max_memory: limits.max_memory,
            matches,
            policy,
            probe_listener: std::sync::OnceLock::new(),
            timeout_offset: std::sync::OnceLock::new(),
        }))
    }

    /// A permit to run one probe, or `None` when the limit is reached.
    pub(crate) fn try_probe_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.0.probe_permits).try_acquire_owned().ok()
    }

    /// `bytes` of the memory budget, or `None` when that much is not free.
    pub(crate) fn try_memory(&self, bytes: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024)).ok()?;
        Arc::clone(&self.0.memory_permits)
            .try_acquire_many_owned(kib)
            .ok()
    }

    /// The probe memory budget in bytes.
    pub(crate) fn max_memory(&self) -> u64 {
        self.0.max_memory
    }

    /// Records how to reach the probe listener, for readiness.
    pub(crate) fn set_probe_listener(&self, check: ListenerCheck) {
        let _ = self.0.probe_listener.set(check);
    }

    /// Whether the probe listener answers (`Ok` before it is bound: the
    /// warm-up keeps readiness off until then anyway).
    pub(crate) async fn probe_listener_answers(&self) -> Result<(), String> {
        match self.0.probe_listener.get() {
            Some(check) => check.answers().await,
            None => Ok(()),
        }
    }

    /// Sets what is subtracted from the scrape timeout (once, before serving).
    pub(crate) fn set_timeout_offset(&self, seconds: f64) {
        let _ = self.0.timeout_offset.set(seconds);
    }

    /// Seconds subtracted from the scrape timeout (`--timeout-offset`).
    pub(crate) fn timeout_offset(&self) -> f64 {
        self.0
            .timeout_offset
            .get()
            .copied()
            .unwrap_or(crate::prober::TIMEOUT_OFFSET)
    }

    /// Body matches that may run at once.
    pub(crate) fn matches(&self) -> &MatchSlots {
        &self.0.matches
    }

    /// The concurrent probe limit.
    pub(crate) fn max_probes(&self) -> usize {
        self.0.max_probes
    }

    /// Who may probe what.
    pub(crate) fn policy(&self) -> &TargetPolicy {
        &self.0.policy
    }

    /// Readiness and liveness.
    pub(crate) fn health(&self) -> &Health {
        &self.0.health
    }

    /// lookout's own metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Where modules are (re)loaded from.
    pub(crate) fn source(&self) -> &ConfigSource {
        &self.0.source
    }

    /// The modules in force, once warm-up has built them.
    pub(crate) fn prober(&self) -> Option<Arc<Modules>> {
        // A poisoned lock only means a writer panicked between two whole
        // assignments; the value inside is still a complete Modules.
        self.0
            .prober
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts a new set of modules in force; probes already running keep theirs.
    pub(crate) fn install(&self, prober: Modules) {
        *self
            .0
            .prober
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(prober));
    }

    /// SHA-256 of the file the modules in force came from.
    pub(crate) fn checksum(&self) -> Option<Checksum> {
        *self
            .0
            .checksum
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the file the modules in force came from.
    pub(crate) fn set_checksum(&self, checksum: Option<Checksum>) {
        *self
            .0
            .checksum
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = checksum;
    }

    /// Held while a reload runs.
    pub(crate) async fn reload_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.reload.lock().await
    }
}
