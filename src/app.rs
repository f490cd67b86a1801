//! The service as a value. [`App::bind`] takes parsed settings and modules,
//! binds both listeners (or, with `--web.listen-address`, the one that serves
//! blackbox_exporter's endpoints all together) and reports their addresses;
//! [`App::run`] serves until its [`Control`] says stop: `main.rs` feeds it the
//! process's signals, tests a channel of their own.
//!
//! Order matters for operators: the configuration was parsed before we get
//! here (bad input never binds a port); then both ports are bound and answer
//! `/healthz` at once, while the warm-up builds the modules in the background
//! and flips readiness when done.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::watch};

use crate::{
    config::{Config, ConfigSource},
    prober::policy::TargetPolicy,
    server::{
        self,
        access::{Auth, ListenerTls},
        listen_address::{self, ListenAddress},
        listener::{Limits, ServerTls},
        readiness::ListenerCheck,
        reload,
        shutdown::{self, Timing},
        state::{AppState, ProbeLimits},
        web_access::WebAccess,
    },
    Error,
};

pub use crate::server::shutdown::{
    control, forward_signals, Command, Control, Controller, Outcome, Stop,
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
    /// Check the modules file this often and reload it when it changed.
    pub auto_reload: Option<Duration>,
    /// `--web.listen-address`: serve every endpoint on this one address
    /// instead of `listen` and `admin_listen`, as blackbox_exporter does.
    pub web_listen: Option<ListenAddress>,
    /// `--web.config.file`: exporter-toolkit's TLS, users, headers and rate
    /// limit for the listeners (instead of `tls`, `basic_auth_file` and
    /// `bearer_token_file`, which the command line keeps apart from it).
    pub web_config_file: Option<PathBuf>,
    /// Seconds subtracted from Prometheus' scrape timeout (`--timeout-offset`).
    pub timeout_offset: f64,
}

/// lookout with its listeners bound, not yet serving.
#[derive(Debug)]
pub struct App {
    state: AppState,
    config: Config,
    /// The probe listener, or the one listener of `--web.listen-address`.
    probe: TcpListener,
    /// The admin listener; `None` with `--web.listen-address`.
    admin: Option<TcpListener>,
    probe_addr: SocketAddr,
    admin_addr: SocketAddr,
    tls: Option<ServerTls>,
    auth: Option<Arc<Auth>>,
    limits: Limits,
    timing: Timing,
    auto_reload: Option<Duration>,
}

impl App {
    /// Loads the listener's certificate and credential files (input: an
    /// unreadable one stops us before anything is bound), then binds both
    /// listeners. `config` is the already parsed content of `source`.
    pub async fn bind(
        settings: Settings,
        source: ConfigSource,
        config: Config,
    ) -> Result<Self, Error> {
        let state = AppState::new(source, settings.probe_limits, settings.policy.clone());
        state.set_timeout_offset(settings.timeout_offset);
        let (tls, auth) = match &settings.web_config_file {
            Some(path) => {
                let web = Arc::new(
                    WebAccess::load(path.clone(), state.metrics().basic_auth_checks.clone())
                        .map_err(Error::Access)?,
                );
                let tls = web
                    .server_config()
                    .is_some()
                    .then(|| ServerTls::Web(Arc::clone(&web)));
                (tls, Some(Arc::new(Auth::Web(web))))
            }
            None => (fixed_tls(&settings)?, flag_auth(&settings)?),
        };
        let (probe, probe_addr, admin, admin_addr) = match &settings.web_listen {
            Some(address) => {
                let (web, addr) = bind(address, "web").await?;
                (web, addr, None, addr)
            }
            None => {
                let (probe, probe_addr) = bind(&settings.listen.into(), "probe").await?;
                let (admin, admin_addr) = bind(&settings.admin_listen.into(), "admin").await?;
                (probe, probe_addr, Some(admin), admin_addr)
            }
        };
        state.set_probe_listener(ListenerCheck::new(probe_addr, tls.is_some()));
        Ok(Self {
            state,
            config,
            probe,
            admin,
            probe_addr,
            admin_addr,
            tls,
            auth,
            limits: settings.limits,
            auto_reload: settings.auto_reload,
            timing: Timing {
                delay: settings.shutdown_delay,
                drain: settings.drain_timeout,
            },
        })
    }

    /// Where the probe API listens (the port, when 0 was asked for).
    pub fn probe_addr(&self) -> SocketAddr {
        self.probe_addr
    }

    /// Where the admin listener listens (the probe listener's address with
    /// `--web.listen-address`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `control` says stop and the shutdown sequence completes.
    pub async fn run(self, mut control: Control) -> Result<Outcome, Error> {
        let Self {
            state,
            config,
            probe,
            admin,
            tls,
            auth,
            limits,
            timing,
            auto_reload,
            ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let spawn = |listener, routes| {
            let router = server::instrument(routes, &state, auth.as_ref());
            tokio::spawn(server::listener::serve(
                listener,
                router,
                limits,
                tls.clone(),
                stop_rx.clone(),
            ))
        };
        let servers = match admin {
            Some(admin) => vec![
                spawn(probe, server::probe_api::router(state.clone())),
                spawn(admin, server::admin_api::router(state.clone())),
            ],
            None => vec![spawn(probe, server::blackbox_routes(state.clone()))],
        };

        let warm_state = state.clone();
        let mut warm_up = tokio::spawn(async move { reload::warm_up(&warm_state, config).await });
        let mut warming = true;
        let watching = auto_reload.and_then(|interval| match state.source() {
            ConfigSource::File(_) => Some(tokio::spawn(server::auto_reload::run(
                state.clone(),
                interval,
            ))),
            ConfigSource::Embedded => {
                tracing::warn!(
                    "automatic reload needs --config.file; the embedded modules never change"
                );
                None
            }
        });

        let first = loop {
            tokio::select! {
                command = control.next() => match command {
                    Command::Stop(stop) => break stop,
                    Command::Reload => {
                        tracing::info!("reloading configuration");
                        let state = state.clone();
                        // reload() logs and counts failures itself.
                        tokio::spawn(async move { let _ = reload::reload(&state).await; });
                    }
                },
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
        // No reloads while shutting down.
        if let Some(watching) = watching {
            watching.abort();
        }
        Ok(shutdown::run(
            first,
            &mut control,
            state.health(),
            timing,
            &stop_tx,
            servers,
        )
        .await)
    }
}

/// The listeners' TLS of `--tls-cert-file` and `--tls-key-file`.
fn fixed_tls(settings: &Settings) -> Result<Option<ServerTls>, Error> {
    let Some((cert, key)) = &settings.tls else {
        return Ok(None);
    };
    let tls = Arc::new(ListenerTls::new(cert.clone(), key.clone()).map_err(Error::Access)?);
    Ok(Some(ServerTls::Fixed(
        tls.server_config().map_err(Error::Access)?,
    )))
}

/// The authentication of `--basic-auth-file` or `--bearer-token-file`.
fn flag_auth(settings: &Settings) -> Result<Option<Arc<Auth>>, Error> {
    Ok(
        match (&settings.basic_auth_file, &settings.bearer_token_file) {
            (Some(users), _) => Some(Arc::new(Auth::basic(users.clone()).map_err(Error::Access)?)),
            (None, Some(token)) => Some(Arc::new(
                Auth::bearer(token.clone()).map_err(Error::Access)?,
            )),
            (None, None) => None,
        },
    )
}

async fn bind(
    address: &ListenAddress,
    listener: &'static str,
) -> Result<(TcpListener, SocketAddr), Error> {
    let failed = |cause| match address {
        ListenAddress::Ip(addr) => Error::Bind { addr: *addr, cause },
        other => Error::Listen {
            addr: other.to_string(),
            cause,
        },
    };
    let bound = listen_address::bind(address).await.map_err(failed)?;
    let local = bound.local_addr().map_err(failed)?;
    tracing::info!(listener, addr = %local, "listening");
    Ok((bound, local))
}
