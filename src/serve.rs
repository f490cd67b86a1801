//! Serving one listener: accepting within limits, optional TLS, HTTP/1.1 and
//! HTTP/2 through hyper, and a graceful stop.
//!
//! A prober's listeners face scanners and misbehaving clients, so every
//! connection is bounded: how many may be open at once (beyond that, new ones
//! wait in the kernel's backlog), how long a client may take to send its
//! request headers (slowloris), how large the headers may be, and how long a
//! TLS handshake may take. On stop, the listener closes, idle connections
//! close, and requests in flight finish (the caller bounds the wait).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum::{body::Body, Router};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use rustls::{
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
    ServerConfig,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::{watch, Semaphore},
};
use tower::ServiceExt as _;

use crate::watched::Watched;

/// Per-listener limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (and finish a TLS handshake).
    pub header_read_timeout: Duration,
    /// Largest request head accepted.
    pub max_header_bytes: usize,
}

/// The smallest head limit hyper accepts (its HTTP/1 read buffer floor).
pub const MIN_HEADER_BYTES: usize = 8192;

/// A listener certificate re-read when its files change, so cert-manager
/// rotations apply without a restart.
#[derive(Debug)]
pub struct ListenerTls(Watched<CertifiedKey>);

impl ListenerTls {
    /// Loads the PEM certificate chain and key now (an error is a start-up error).
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Result<Self, String> {
        Watched::new(vec![cert_file, key_file], |paths| {
            load_key_pair(&paths[0], &paths[1])
        })
        .map(Self)
    }

    /// The rustls configuration of a listener using this certificate.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, String> {
        let mut config = ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ListenerTls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

fn load_key_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let chain = crate::tls::read_certs(cert_file).map_err(|e| e.to_string())?;
    let key = crate::tls::read_key(key_file).map_err(|e| e.to_string())?;
    CertifiedKey::from_der(chain, key, &crate::tls::provider())
        .map_err(|e| format!("{} and {}: {e}", cert_file.display(), key_file.display()))
}

/// Serves `router` on `listener` until `stop` turns true, then stops
/// accepting and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<ServerConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed; stop rather than spin
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|request: hyper::Request<Incoming>| request.map(Body::new)),
        );
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                None => connection(&builder, watcher, stream, service).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => connection(&builder, watcher, stream, service).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Resolves once `stop` turns true (or its sender is gone, which also means stop).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The returned guard must not live across an await in the accept loop.
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    service: TowerToHyperService<S>,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    S: tower::Service<hyper::Request<Incoming>, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        // Timeouts, resets and malformed requests end up here: the client's problem.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
