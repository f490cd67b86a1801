//! What bounds probes beyond their deadline. A deadline drops a probe's
//! future, but work on a blocking thread (a name lookup in the system
//! resolver, a body match) cannot be interrupted. Such work holds the probe's
//! [`Ticket`] until it ends, so the probe limit and the memory budget keep
//! counting it after the probe has answered, and threads cannot pile up past
//! them. Body matches also need one of a fixed number of [`MatchSlots`]: a
//! match waits for a free slot within its probe's deadline, but when every
//! slot is held by a match that has outlived its probe (an orphan), waiting
//! is hopeless and the probe is refused at once.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex, PoisonError,
};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A probe's share of the limits: its slot under the probe limit and its
/// part of the memory budget, held until the probe and all its blocking work
/// have ended. `lookout probe` runs with an empty ticket.
#[derive(Debug, Clone, Default)]
pub struct Ticket {
    _held: Option<Arc<Held>>,
}

#[derive(Debug)]
struct Held {
    _slot: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
    bytes: i64,
    reserved: Gauge,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.reserved.dec_by(self.bytes);
    }
}

impl Ticket {
    /// A ticket holding both permits; `bytes` of memory counted in
    /// `reserved` until the ticket and its blocking work are gone.
    pub fn new(
        slot: OwnedSemaphorePermit,
        memory: OwnedSemaphorePermit,
        bytes: u64,
        reserved: Gauge,
    ) -> Self {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        reserved.inc_by(bytes);
        Self {
            _held: Some(Arc::new(Held {
                _slot: slot,
                _memory: memory,
                bytes,
                reserved,
            })),
        }
    }
}

/// Runs `work` on a blocking thread that keeps `ticket` until it is done.
pub(super) async fn blocking<T: Send + 'static>(
    ticket: &Ticket,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let ticket = ticket.clone();
    tokio::task::spawn_blocking(move || {
        let _held = ticket;
        work()
    })
    .await
    .map_err(|e| format!("blocking task failed: {e}"))
}

/// The body matches that may run at once: one per CPU the process may use
/// (matching is CPU-bound; more would only queue on the CPUs), at most
/// [`MAX_MATCH_SLOTS`]: each running match holds a regexp's matching state
/// (up to 1 MiB, see `pattern`), so a big node must not multiply it.
/// The most body matches that run at once, whatever the CPU count.
pub(super) const MAX_MATCH_SLOTS: usize = 8;

#[derive(Debug, Clone)]
pub struct MatchSlots {
    slots: Arc<Semaphore>,
    count: usize,
    running: Gauge,
    /// Matches whose probe has already answered.
    orphans: Arc<AtomicUsize>,
}

/// A match slot taken: counted in the running gauge until dropped.
pub(super) struct MatchSlot {
    _permit: OwnedSemaphorePermit,
    running: Gauge,
}

impl Drop for MatchSlot {
    fn drop(&mut self) {
        self.running.dec();
    }
}

impl MatchSlots {
    /// One slot per available CPU (cgroup quotas included), from 2 to
    /// [`MAX_MATCH_SLOTS`]; `running` counts the matches in progress.
    pub fn per_cpu(running: Gauge) -> Self {
        let count =
            std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, MAX_MATCH_SLOTS));
        Self {
            slots: Arc::new(Semaphore::new(count)),
            count,
            running,
            orphans: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many matches may run at once.
    pub fn count(&self) -> usize {
        self.count
    }

    /// A slot: at once if one is free, after waiting if a running match
    /// belongs to a live probe (matches are short), or `None` when every slot
    /// is held by an orphan.
    pub(super) async fn take(&self) -> Option<MatchSlot> {
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if self.orphans.load(Ordering::Acquire) >= self.count => return None,
            Err(_) => Arc::clone(&self.slots).acquire_owned().await.ok()?,
        };
        self.running.inc();
        Some(MatchSlot {
            _permit: permit,
            running: self.running.clone(),
        })
    }

    /// Runs `work` in a slot on a blocking thread that keeps `ticket`; if the
    /// probe stops waiting (its deadline), the match counts as an orphan
    /// until it ends.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        slot: MatchSlot,
        ticket: &Ticket,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let watch = Arc::new(Mutex::new(Orphaning::default()));
        let ended = Arc::clone(&watch);
        let orphans = Arc::clone(&self.orphans);
        let _waiting = Waiting {
            watch: Arc::clone(&watch),
            orphans: Arc::clone(&self.orphans),
        };
        blocking(ticket, move || {
            let result = work();
            drop(slot);
            let mut state = ended.lock().unwrap_or_else(PoisonError::into_inner);
            state.done = true;
            if state.abandoned {
                orphans.fetch_sub(1, Ordering::AcqRel);
            }
            result
        })
        .await
    }
}

#[derive(Debug, Default)]
struct Orphaning {
    done: bool,
    abandoned: bool,
}

/// The probe's side of a match: dropped when the probe stops waiting.
struct Waiting {
    watch: Arc<Mutex<Orphaning>>,
    orphans: Arc<AtomicUsize>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut state = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.done {
            state.abandoned = true;
            self.orphans.fetch_add(1, Ordering::AcqRel);
        }
    }
}
