//! Liveness and readiness.
//!
//! Liveness (`/healthz`) is simply "the process answers". Readiness
//! (`/readyz`) is false until the warm-up has built every module, false
//! again from the first moment of shutdown, so endpoint controllers stop
//! sending traffic before the listeners close, and false while the probe
//! listener does not answer a request of its own (an accept loop that is
//! stuck, a listener that closed): the admin port answering says nothing
//! about the port Prometheus scrapes. Reaching the probe limit leaves a pod
//! ready: the check asks `/-/healthy`, which runs no probe, so pods do not
//! drop out one after another under load. A listener that requires client
//! certificates (`--web.config.file`) answers the check, which has none, with
//! TLS's `certificate_required` alert: that is an answer too.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use rustls::{pki_types::ServerName, ClientConfig};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
};

/// How long the probe listener has to answer the readiness check (the
/// kubelet's readiness probe gives `/readyz` two seconds).
const LISTENER_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Asks the probe listener for `/-/healthy` over a fresh loopback connection,
/// as a scraper would reach it (TLS included).
#[derive(Debug, Clone)]
pub(crate) struct ListenerCheck {
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
}

impl ListenerCheck {
    /// A check of the listener bound to `bound`; `tls` when it serves TLS.
    pub(crate) fn new(bound: SocketAddr, tls: bool) -> Self {
        // A wildcard address is reached through loopback.
        let ip = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Self {
            addr: SocketAddr::new(ip, bound.port()),
            tls: tls.then(crate::prober::client_tls::self_check_config),
        }
    }

    /// `Ok` when the listener answered 200 in time.
    pub(crate) async fn answers(&self) -> Result<(), String> {
        tokio::time::timeout(LISTENER_CHECK_TIMEOUT, self.ask())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {LISTENER_CHECK_TIMEOUT:?}")))
    }

    async fn ask(&self) -> Result<(), String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
        match &self.tls {
            None => healthy(tcp).await,
            Some(config) => {
                let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
                let tls = match tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                {
                    Ok(tls) => tls,
                    Err(e) if wants_client_certificate(&e) => return Ok(()),
                    Err(e) => return Err(format!("TLS handshake: {e}")),
                };
                healthy(tls).await
            }
        }
    }
}

async fn healthy(mut io: impl AsyncRead + AsyncWrite + Unpin) -> Result<(), String> {
    io.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut head = [0u8; 16];
    match io.read_exact(&mut head).await {
        Ok(_) => {}
        // TLS 1.3: the server checks the client's certificate after the
        // client's side of the handshake is done.
        Err(e) if wants_client_certificate(&e) => return Ok(()),
        Err(e) => return Err(format!("reading the answer: {e}")),
    }
    if head.starts_with(b"HTTP/1.1 200 ") {
        Ok(())
    } else {
        Err(format!("answered {:?}", String::from_utf8_lossy(&head)))
    }
}

/// The listener refused the handshake for want of a client certificate.
fn wants_client_certificate(error: &std::io::Error) -> bool {
    matches!(
        error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
        ))
    )
}

/// Readiness state shared by the warm-up, the admin server and shutdown.
#[derive(Debug, Default)]
pub(crate) struct Health {
    warm: AtomicBool,
    draining: AtomicBool,
}

/// Why the process is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// Start-up work is still running.
    WarmingUp,
    /// A shutdown signal arrived.
    ShuttingDown,
}

impl Health {
    /// Start-up work is done.
    pub(crate) fn set_warm(&self) {
        self.warm.store(true, Ordering::Release);
    }

    /// A shutdown began; readiness never comes back.
    pub(crate) fn begin_shutdown(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// `Ok` when traffic should be sent here.
    pub(crate) fn readiness(&self) -> Result<(), NotReady> {
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
