//! Binding both listeners and running them from start-up to shutdown.
//!
//! Order matters for operators: the configuration was parsed before we get
//! here (bad input never binds a port); then both ports are bound and answer
//! `/healthz` at once, while the warm-up builds the modules in the background
//! and flips readiness when done.

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use tokio::{
    net::TcpListener,
    signal::unix::{signal, SignalKind},
    sync::watch,
    task::JoinHandle,
};

use crate::{
    admin, api,
    config::{Config, ConfigSource},
    reload,
    shutdown::{self, Outcome, Signals, Timing},
    state::AppState,
    Error,
};

/// Default address of the probe API (blackbox_exporter's port).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9115";
/// Default address of the admin listener.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9090";

/// What `lookout` (serve) needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Probe API address.
    pub listen: SocketAddr,
    /// Admin address.
    pub admin_listen: SocketAddr,
    /// Keep serving this long after SIGTERM before closing listeners.
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight requests once listeners close.
    pub drain_timeout: Duration,
}

/// Runs the server until a shutdown completes. `config` is the already
/// parsed content of `source`.
pub async fn run(
    settings: Settings,
    source: ConfigSource,
    config: Config,
) -> Result<Outcome, Error> {
    // Handlers first: a SIGTERM during start-up must start a graceful shutdown,
    // not be ignored (PID 1) or kill us mid-bind.
    let mut signals = Signals::install()?;
    let mut hangups = signal(SignalKind::hangup()).map_err(Error::Signal)?;

    let state = AppState::new(source);
    let probe_listener = bind(settings.listen, "probe").await?;
    let admin_listener = bind(settings.admin_listen, "admin").await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let servers = vec![
        spawn_server(probe_listener, api::router(state.clone()), stop_rx.clone()),
        spawn_server(admin_listener, admin::router(state.clone()), stop_rx),
    ];

    let warm_state = state.clone();
    let mut warm_up = tokio::spawn(async move { reload::warm_up(&warm_state, config).await });
    let mut warming = true;

    let reload_state = state.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading configuration");
            // reload() logs and counts failures itself.
            let _ = reload::reload(&reload_state).await;
        }
    });

    let first = loop {
        tokio::select! {
            received = signals.recv() => break received,
            result = &mut warm_up, if warming => {
                warming = false;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(e) => return Err(Error::Task(e.to_string())),
                }
            }
        }
    };
    let timing = Timing {
        delay: settings.shutdown_delay,
        drain: settings.drain_timeout,
    };
    Ok(shutdown::run(
        first,
        &mut signals,
        state.health(),
        timing,
        &stop_tx,
        servers,
    )
    .await)
}

async fn bind(addr: SocketAddr, listener: &'static str) -> Result<TcpListener, Error> {
    let bound = TcpListener::bind(addr)
        .await
        .map_err(|cause| Error::Bind { addr, cause })?;
    let local = bound
        .local_addr()
        .map_err(|cause| Error::Bind { addr, cause })?;
    tracing::info!(listener, addr = %local, "listening");
    Ok(bound)
}

fn spawn_server(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let stopped = async move {
            // An Err means the sender is gone, which also means: stop.
            let _ = stop.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %e, "server failed");
        }
    })
}
