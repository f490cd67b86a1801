//! Liveness and readiness.
//!
//! Liveness (`/healthz`) is simply "the process answers". Readiness
//! (`/readyz`) is false until the warm-up has built every module, and false
//! again from the first moment of shutdown, so endpoint controllers stop
//! sending traffic before the listeners close.

use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness state shared by the warm-up, the admin server and shutdown.
#[derive(Debug, Default)]
pub struct Health {
    warm: AtomicBool,
    draining: AtomicBool,
}

/// Why the process is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// Start-up work is still running.
    WarmingUp,
    /// A shutdown signal arrived.
    ShuttingDown,
}

impl Health {
    /// Start-up work is done.
    pub fn set_warm(&self) {
        self.warm.store(true, Ordering::Release);
    }

    /// A shutdown began; readiness never comes back.
    pub fn begin_shutdown(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether a shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// `Ok` when traffic should be sent here.
    pub fn readiness(&self) -> Result<(), NotReady> {
        if self.draining.load(Ordering::Acquire) {
            Err(NotReady::ShuttingDown)
        } else if !self.warm.load(Ordering::Acquire) {
            Err(NotReady::WarmingUp)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_warm_up_then_shutdown() {
        let health = Health::default();
        assert_eq!(health.readiness(), Err(NotReady::WarmingUp));
        health.set_warm();
        assert_eq!(health.readiness(), Ok(()));
        health.begin_shutdown();
        assert_eq!(health.readiness(), Err(NotReady::ShuttingDown));
    }
}
