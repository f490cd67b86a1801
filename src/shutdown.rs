//! Signals and the shutdown sequence.
//!
//! SIGTERM is how Kubernetes starts a graceful shutdown (SIGINT is Ctrl-C).
//! On the first one readiness turns 503 at once while `/healthz` stays 200;
//! both listeners keep serving for the shutdown delay, so endpoint controllers
//! and load balancers take the pod out of rotation before anything closes;
//! then the listeners stop accepting and in-flight requests get at most the
//! drain timeout to finish. A second signal ends the process at once.
//!
//! lookout installs its own handlers, so it behaves the same as PID 1 in a
//! container without an init process (where unhandled SIGTERM is ignored).

use std::time::Duration;

use tokio::{
    signal::unix::{signal, Signal, SignalKind},
    sync::watch,
    task::JoinHandle,
};

use crate::{health::Health, Error};

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every in-flight request finished.
    Drained,
    /// The drain timeout passed with requests still open.
    DrainTimedOut,
    /// A second signal (its number) cut the shutdown short.
    Forced(i32),
}

/// SIGTERM and SIGINT, installed once at start-up.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

/// A received signal's name and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// `SIGTERM` or `SIGINT`.
    pub name: &'static str,
    /// Its number, for the exit status of a forced exit.
    pub number: i32,
}

impl Signals {
    /// Installs the handlers; from here on the signals are ours to act on.
    pub fn install() -> Result<Self, Error> {
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(Error::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(Error::Signal)?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    pub async fn recv(&mut self) -> Received {
        tokio::select! {
            _ = self.term.recv() => Received { name: "SIGTERM", number: 15 },
            _ = self.int.recv() => Received { name: "SIGINT", number: 2 },
        }
    }
}

/// Timing of the shutdown sequence.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long both listeners keep serving after the signal.
    pub delay: Duration,
    /// How long in-flight requests get once accepting stops.
    pub drain: Duration,
}

/// Runs the sequence after the first signal: readiness off, serve on for the
/// delay, stop accepting, drain. `servers` finish once their connections close.
pub async fn run(
    first: Received,
    signals: &mut Signals,
    health: &Health,
    timing: Timing,
    stop_accepting: &watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
) -> Outcome {
    health.begin_shutdown();
    tracing::info!(
        signal = first.name,
        delay_ms = timing.delay.as_millis() as u64,
        "shutdown: readiness is now 503; still serving for the shutdown delay"
    );
    tokio::select! {
        () = tokio::time::sleep(timing.delay) => {}
        second = signals.recv() => return forced(second),
    }
    // Receivers live in the server tasks; if all are gone there is nothing to stop.
    let _ = stop_accepting.send(true);
    tracing::info!(
        drain_ms = timing.drain.as_millis() as u64,
        "shutdown: stopped accepting; draining in-flight requests"
    );
    let drained = async {
        for server in servers {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "server task failed while draining");
            }
        }
    };
    tokio::select! {
        () = drained => {
            tracing::info!("shutdown: drained; exiting");
            Outcome::Drained
        }
        () = tokio::time::sleep(timing.drain) => {
            tracing::warn!("shutdown: drain timeout reached with requests in flight; exiting");
            Outcome::DrainTimedOut
        }
        second = signals.recv() => forced(second),
    }
}

fn forced(second: Received) -> Outcome {
    tracing::warn!(signal = second.name, "second signal: exiting now");
    Outcome::Forced(second.number)
}
