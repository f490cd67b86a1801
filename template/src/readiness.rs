//! Liveness and readiness, the state behind `/healthz` and `/readyz`.
//!
//! Liveness is "the process answers": `/healthz` is 200 for as long as the
//! listener serves, shutdown included, so the kubelet never restarts a pod
//! that is stopping on purpose. Readiness goes starting → ready (the warm-up
//! finished) → stopping (a stop signal arrived), and only ever forwards: a
//! warm-up that finishes after the signal leaves the pod unready.

use std::sync::{
    atomic::{AtomicU8, Ordering},
    Arc,
};

const STARTING: u8 = 0;
const READY: u8 = 1;
const STOPPING: u8 = 2;

/// Where the service is in its life; what `/readyz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The warm-up is running: not ready.
    Starting,
    /// Serving traffic.
    Ready,
    /// Shutting down: not ready, though still serving until the listener closes.
    Stopping,
}

/// The shared readiness state; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Readiness(Arc<AtomicU8>);

impl Readiness {
    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            STARTING => Phase::Starting,
            READY => Phase::Ready,
            _ => Phase::Stopping,
        }
    }

    /// The warm-up finished: ready, unless shutdown has already begun
    /// (then false).
    pub(crate) fn set_ready(&self) -> bool {
        self.0
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Shutdown began: never ready again.
    pub(crate) fn set_stopping(&self) {
        self.0.store(STOPPING, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_only_moves_forward() {
        let readiness = Readiness::default();
        assert_eq!(readiness.phase(), Phase::Starting);
        assert!(readiness.set_ready());
        assert_eq!(readiness.phase(), Phase::Ready);
        readiness.set_stopping();
        assert!(!readiness.set_ready());
        assert_eq!(readiness.phase(), Phase::Stopping);
    }

    #[test]
    fn a_warm_up_that_ends_after_the_stop_signal_leaves_the_service_unready() {
        let readiness = Readiness::default();
        readiness.set_stopping();
        assert!(!readiness.set_ready());
        assert_eq!(readiness.phase(), Phase::Stopping);
    }
}
