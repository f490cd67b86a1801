//! Binding both listeners and running them from start-up to shutdown.
//!
//! Order matters for operators: the configuration was parsed before we get
//! here (bad input never binds a port); then both ports are bound and answer
//! `/healthz` at once, while the warm-up builds the modules in the background
//! and flips readiness when done.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{middleware, Router};
use tokio::{
    net::TcpListener,
    signal::unix::{signal, SignalKind},
    sync::watch,
};

use crate::{
    admin, api,
    auth::{self, Auth},
    config::{Config, ConfigSource},
    health::ListenerCheck,
    middleware::observe,
    policy::TargetPolicy,
    reload,
    serve::{self, Limits, ListenerTls},
    shutdown::{self, Outcome, Signals, Timing},
    state::{AppState, ProbeLimits},
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
    /// Connection limits of both listeners.
    pub limits: Limits,
    /// Probes running at once, and the memory they may need together.
    pub probe_limits: ProbeLimits,
    /// Who may probe what.
    pub policy: TargetPolicy,
    /// Certificate and key files for TLS on both listeners.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Users for basic authentication.
    pub basic_auth_file: Option<PathBuf>,
    /// Token for bearer authentication.
    pub bearer_token_file: Option<PathBuf>,
}

/// Adds what every route of both listeners gets: authentication when
/// configured, inside the per-request log and metrics (so 401s are counted).
pub fn instrument(routes: Router, state: &AppState, auth: Option<&Arc<Auth>>) -> Router {
    let routes = match auth {
        Some(auth) => routes.layer(middleware::from_fn_with_state(
            Arc::clone(auth),
            auth::require,
        )),
        None => routes,
    };
    routes.layer(middleware::from_fn_with_state(state.clone(), observe))
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

    // Certificate and credential files are input: unreadable ones stop us
    // before anything is bound.
    let tls = match &settings.tls {
        Some((cert, key)) => Some(
            Arc::new(ListenerTls::new(cert.clone(), key.clone()).map_err(Error::Access)?)
                .server_config()
                .map_err(Error::Access)?,
        ),
        None => None,
    };
    let auth = match (&settings.basic_auth_file, &settings.bearer_token_file) {
        (Some(users), _) => Some(Arc::new(Auth::basic(users.clone()).map_err(Error::Access)?)),
        (None, Some(token)) => Some(Arc::new(
            Auth::bearer(token.clone()).map_err(Error::Access)?,
        )),
        (None, None) => None,
    };

    let state = AppState::new(source, settings.probe_limits, settings.policy.clone());
    let probe_listener = bind(settings.listen, "probe").await?;
    let probe_addr = probe_listener.local_addr().map_err(|cause| Error::Bind {
        addr: settings.listen,
        cause,
    })?;
    state.set_probe_listener(ListenerCheck::new(probe_addr, tls.is_some()));
    let admin_listener = bind(settings.admin_listen, "admin").await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let spawn = |listener, routes| {
        let router = instrument(routes, &state, auth.as_ref());
        tokio::spawn(serve::serve(
            listener,
            router,
            settings.limits,
            tls.clone(),
            stop_rx.clone(),
        ))
    };
    let servers = vec![
        spawn(probe_listener, api::router(state.clone())),
        spawn(admin_listener, admin::router(state.clone())),
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
