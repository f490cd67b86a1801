//! What stops or reloads a running app (a [`Control`], fed by the process's
//! signals or by a test), and the shutdown sequence.
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
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::readiness::Health;
use crate::Error;

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

/// What a running app can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Read the modules file again (SIGHUP).
    Reload,
    /// Shut down gracefully; a second stop ends the shutdown at once (SIGTERM, SIGINT).
    Stop(Stop),
}

/// Tells a running app what to do; clone it freely.
#[derive(Debug, Clone)]
pub struct Controller(mpsc::UnboundedSender<Command>);

impl Controller {
    /// Sends `command`; a stopped app ignores it.
    pub fn send(&self, command: Command) {
        let _ = self.0.send(command);
    }
}

/// The receiving side of a [`Controller`], given to [`App::run`].
#[derive(Debug)]
pub struct Control(mpsc::UnboundedReceiver<Command>);

impl Control {
    /// The next command; never resolves once every controller is gone
    /// (nothing can stop the app any more but the end of the process).
    pub(crate) async fn next(&mut self) -> Command {
        match self.0.recv().await {
            Some(command) => command,
            None => std::future::pending().await,
        }
    }

    /// The next stop; reloads asked for meanwhile are ignored (a shutdown
    /// is under way).
    pub(crate) async fn next_stop(&mut self) -> Stop {
        loop {
            if let Command::Stop(stop) = self.next().await {
                return stop;
            }
        }
    }
}

/// A controller and the control it drives.
pub fn control() -> (Controller, Control) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Controller(tx), Control(rx))
}

/// A request to stop: the signal's name and number (SIGTERM, SIGINT), or a
/// test's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// `SIGTERM` or `SIGINT`.
    pub name: &'static str,
    /// Its number, for the exit status of a forced exit.
    pub number: i32,
}

/// Installs handlers for SIGTERM, SIGINT and SIGHUP and turns each signal
/// into a command for the app: from here on the signals are ours to act on.
/// Installed before anything is bound: a SIGTERM during start-up must start
/// a graceful shutdown, not be ignored (PID 1) or kill us mid-bind.
pub fn forward_signals(controller: Controller) -> Result<(), Error> {
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(Error::Signal)?;
    tokio::spawn(async move {
        loop {
            let command = tokio::select! {
                _ = term.recv() => Command::Stop(Stop { name: "SIGTERM", number: 15 }),
                _ = int.recv() => Command::Stop(Stop { name: "SIGINT", number: 2 }),
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading configuration");
                    Command::Reload
                }
            };
            controller.send(command);
        }
    });
    Ok(())
}

/// Timing of the shutdown sequence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How long both listeners keep serving after the signal.
    pub delay: Duration,
    /// How long in-flight requests get once accepting stops.
    pub drain: Duration,
}

/// Runs the sequence after the first stop: readiness off, serve on for the
/// delay, stop accepting, drain. `servers` finish once their connections close.
pub(crate) async fn run(
    first: Stop,
    control: &mut Control,
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
        second = control.next_stop() => return forced(second),
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
        second = control.next_stop() => forced(second),
    }
}

fn forced(second: Stop) -> Outcome {
    tracing::warn!(signal = second.name, "second signal: exiting now");
    Outcome::Forced(second.number)
}
