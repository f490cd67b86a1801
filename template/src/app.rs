//! The service as a value: [`Application::build`] binds the port and reports
//! it, [`Application::run_until_stopped`] serves until a stop future resolves
//! and then shuts down gracefully. `main` passes the process's signals; tests
//! start it in-process on `127.0.0.1:0` and stop it with a channel.
//!
//! The shutdown sequence, on stop: `/readyz` turns 503 at once while
//! everything else is still served; after the shutdown delay the listener
//! closes and in-flight requests get at most the drain timeout to finish.

use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
};

use tokio::{net::TcpListener, sync::oneshot};

use crate::{
    metrics::Metrics,
    readiness::Readiness,
    routes::{self, AppState},
    shutdown::{self, Drain},
    warmup, Config, Error,
};

/// A warm-up future, boxed so tests can put their own in its place.
type Warmup = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A bound, not yet serving, instance of the service.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    config: Config,
    state: AppState,
    warmup: Warmup,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds `config.listen_address`; the warm-up is [`Config::warmup`] long.
    pub async fn build(config: Config) -> Result<Self, Error> {
        let bind_error = |source| Error::Bind {
            address: config.listen_address,
            source,
        };
        let listener = TcpListener::bind(config.listen_address)
            .await
            .map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            address,
            warmup: Box::pin(warmup::run(config.warmup)),
            state: AppState {
                readiness: Readiness::default(),
                metrics: Arc::new(Metrics::new()),
            },
            config,
        })
    }

    /// Replaces the warm-up: the service turns ready when `warmup` resolves.
    pub fn with_warmup(mut self, warmup: impl Future<Output = ()> + Send + 'static) -> Self {
        self.warmup = Box::pin(warmup);
        self
    }

    /// The bound address (the real port when the configured one was 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `stop` resolves, then shuts down as the module header
    /// says. Ends with `Ok` after a drain, complete or cut at its bound.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()>) -> Result<(), Error> {
        let Self {
            listener,
            address,
            config,
            state,
            warmup,
        } = self;
        let readiness = state.readiness.clone();
        let (close, closed) = oneshot::channel::<()>();
        let server = axum::serve(listener, routes::router(state))
            .with_graceful_shutdown(async {
                // Sent after the shutdown delay; a dropped sender closes too.
                let _ = closed.await;
            })
            .into_future();
        tokio::pin!(server);
        tracing::info!(%address, "listening");

        let warming = tokio::spawn({
            let readiness = readiness.clone();
            async move {
                warmup.await;
                if readiness.set_ready() {
                    tracing::info!("ready");
                }
            }
        });

        tokio::select! {
            // Only a failure ends the server before the close is sent.
            result = &mut server => {
                warming.abort();
                return result.map_err(Error::Serve);
            }
            () = stop => {}
        }
        readiness.set_stopping();
        warming.abort();
        tracing::info!(
            delay_seconds = config.shutdown_delay.as_secs_f64(),
            "shutting down: not ready, still serving until the delay ends"
        );
        tokio::select! {
            result = &mut server => return result.map_err(Error::Serve),
            () = tokio::time::sleep(config.shutdown_delay) => {}
        }

        tracing::info!(
            timeout_seconds = config.drain_timeout.as_secs_f64(),
            "closing the listener, draining open connections"
        );
        let _ = close.send(());
        match shutdown::drain(server, config.drain_timeout).await {
            Drain::Done(result) => {
                result.map_err(Error::Serve)?;
                tracing::info!("drained, exiting");
            }
            // The connections end with the process: exiting is what was asked.
            Drain::TimedOut => tracing::warn!("drain timed out, exiting with connections open"),
        }
        Ok(())
    }
}
