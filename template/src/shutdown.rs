//! The stop signals, and the bound on the drain.
//!
//! SIGTERM is how Kubernetes (and `docker stop`, `podman stop`) asks a
//! container to stop; SIGINT is Ctrl-C. The handlers are installed by the
//! binary itself because it runs as PID 1 in its container, with no init
//! process: the kernel ignores a signal that PID 1 has no handler for, and the
//! runtime would wait out the grace period and kill it.

use std::{future::Future, time::Duration};

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::Error;

/// The installed SIGTERM and SIGINT handlers.
#[derive(Debug)]
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Installs the handlers. Do it before the warm-up starts, so a stop
    /// during the warm-up is not lost.
    pub fn install() -> Result<Self, Error> {
        Ok(Self {
            terminate: signal(SignalKind::terminate()).map_err(Error::Signals)?,
            interrupt: signal(SignalKind::interrupt()).map_err(Error::Signals)?,
        })
    }

    /// The name of the next stop signal to arrive.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// How a drain ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Drain<T> {
    /// Every connection closed; the server's result.
    Done(T),
    /// The bound passed with connections still open.
    TimedOut,
}

/// Waits for `server` to finish draining, at most `bound`.
pub(crate) async fn drain<F: Future>(server: F, bound: Duration) -> Drain<F::Output> {
    match tokio::time::timeout(bound, server).await {
        Ok(output) => Drain::Done(output),
        Err(_) => Drain::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_that_never_ends_is_cut_at_the_bound() {
        let drained = drain(std::future::pending::<()>(), Duration::ZERO).await;
        assert_eq!(drained, Drain::TimedOut);
    }

    #[tokio::test]
    async fn a_finished_drain_gives_the_servers_result() {
        let drained = drain(async { 7 }, Duration::from_secs(3600)).await;
        assert_eq!(drained, Drain::Done(7));
    }
}
