//! Serving one listener: accepting within limits, optional TLS, HTTP/1.1
//! (and HTTP/2 over TLS, by ALPN) through hyper, and a graceful stop.
//!
//! A prober's listeners face scanners and misbehaving clients, so every
//! connection is bounded: how many may be open at once (beyond that, new ones
//! wait in the kernel's backlog); how long it may go without a complete
//! request head, from the accept (TLS handshake included) or the end of the
//! previous response, whatever the protocol (idle clients, slowloris, HTTP/2
//! frames that never finish a head); how long its responses may wait to be
//! read; how large a head may be; and how old it may grow before it is asked
//! to close. On stop, the listener closes, connections are asked to close,
//! and requests in flight finish (the caller bounds the wait).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{body::Body, Router};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::{watch, Semaphore},
};
use tower::ServiceExt as _;

/// Per-listener limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (and finish a TLS handshake).
    pub header_read_timeout: Duration,
    /// Largest request head accepted.
    pub max_header_bytes: usize,
    /// Connections are asked to close after about this long (±10 %).
    pub max_connection_age: Option<Duration>,
}

/// Where a listener's TLS settings come from, looked up for each connection
/// so that a changed certificate or web configuration applies to the next.
#[derive(Debug, Clone)]
pub(crate) enum ServerTls {
    /// `--tls-cert-file`: fixed settings (its certificate resolver re-reads the files).
    Fixed(Arc<ServerConfig>),
    /// `--web.config.file`: the settings of the file in force.
    Web(Arc<super::web_access::WebAccess>),
}

impl ServerTls {
    fn current(&self) -> Option<Arc<ServerConfig>> {
        match self {
            Self::Fixed(config) => Some(Arc::clone(config)),
            Self::Web(web) => web.server_config(),
        }
    }
}

/// The smallest head limit hyper accepts (its HTTP/1 read buffer floor).
pub(crate) const MIN_HEADER_BYTES: usize = 8192;

/// Serves `router` on `listener` until `stop` turns true, then stops
/// accepting and returns once every connection has closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<ServerTls>,
    stop: watch::Receiver<bool>,
) {
    let max_connections = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(max_connections as usize));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let mut accept_stop = stop.clone();

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed; stop rather than spin
            },
            () = stopped(&mut accept_stop) => break,
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
            () = stopped(&mut accept_stop) => break,
        };
        let accepted = Instant::now();
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            limits,
            stop: stop.clone(),
            accepted,
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(tls) = tls else {
                // Plain HTTP is HTTP/1.1 only, as Go's server without TLS: no
                // h2c, whose frames would need their own guards.
                return connection.serve(stream, Protocol::Http1).await;
            };
            // Looked up here, not in the accept loop: it may re-read files.
            // None never happens: a web configuration cannot turn TLS off.
            let Some(acceptor) = tls.current().map(tokio_rustls::TlsAcceptor::from) else {
                return;
            };
            // The header read timeout runs from the accept: the handshake spends it too.
            let handshake = tokio::time::timeout_at(
                (accepted + limits.header_read_timeout).into(),
                acceptor.accept(stream),
            );
            match handshake.await {
                Ok(Ok(stream)) => {
                    let protocol = match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Protocol::Http2,
                        _ => Protocol::Http1,
                    };
                    connection.serve(stream, protocol).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    // Every connection holds a permit until it has closed.
    let _ = permits.acquire_many(max_connections).await;
}

/// Streams one HTTP/2 client may have open at once: enough for any scraper,
/// few enough that one connection cannot hold the whole probe limit alone.
const MAX_STREAMS: u32 = 64;

/// Resolves once `stop` turns true (or its sender is gone, which also means stop).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The returned guard must not live across an await in the accept loop.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The protocol a connection speaks, fixed before the first byte of HTTP.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    Http1,
    Http2,
}

/// One accepted connection and what it needs to be served.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    limits: Limits,
    stop: watch::Receiver<bool>,
    accepted: Instant,
}

impl Connection {
    /// Serves the connection until it closes. It is closed when no request
    /// head completes within the header read timeout of the accept or of the
    /// end of the previous response (idle and slow clients alike, whatever the
    /// protocol), or when its responses wait that long to be taken; it is asked to close gracefully (`Connection: close` on the
    /// next HTTP/1 response, GOAWAY on HTTP/2) at the server's stop and at its
    /// maximum age, so that clients reconnect and load balancers spread them.
    async fn serve<I>(self, io: I, protocol: Protocol)
    where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let Self {
            builder,
            router,
            limits,
            mut stop,
            accepted,
        } = self;
        let activity = Activity::new(accepted);
        let tracked = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut busy = tracked.begin();
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                busy.sending();
                // The request counts as in progress until its response body is
                // dropped: sent, or abandoned.
                response.map(|response| {
                    response.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            let _busy = &busy;
                            frame
                        }))
                    })
                })
            }
        });
        let builder = match protocol {
            Protocol::Http1 => builder.http1_only(),
            Protocol::Http2 => builder.http2_only(),
        };
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let max_age = limits
            .max_connection_age
            .map(|age| accepted + jittered(age));
        let mut closing = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        // Timeouts, resets and malformed requests end up here: the client's problem.
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = activity.stalled(limits.header_read_timeout) => {
                    // Dropping the connection closes it: an idle, slow or
                    // non-reading client gets no more of our time.
                    tracing::debug!("closed a stalled connection (no complete request head, or a response not taken, in time)");
                    return;
                }
                () = stopped(&mut stop), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = sleep_until_or_never(max_age), if !closing => {
                    tracing::debug!("connection reached its maximum age; asking it to close");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// `age` spread by up to ±10 %, so connections opened together (a scraper's
/// pool after a rollout) do not all close together.
fn jittered(age: Duration) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    // RandomState keys are random per process and per instance: enough for spreading.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = (random % 2001) as f64 / 10_000.0 - 0.1;
    age.mul_f64(1.0 + fraction)
}

/// What a connection is doing: waiting for a request head, handling
/// requests, or sending responses; and since when it last made progress.
#[derive(Debug)]
struct Activity(watch::Sender<Busy>);

#[derive(Debug, Clone, Copy)]
struct Busy {
    /// Requests whose head is complete and whose response is not yet sent.
    requests: usize,
    /// When `requests` last fell to 0 (or the accept).
    idle_since: Instant,
    /// Of those, the ones whose response is being sent.
    sending: usize,
    /// When a response last started (from none) or finished sending.
    sent_since: Instant,
}

impl Activity {
    fn new(accepted: Instant) -> Arc<Self> {
        Arc::new(Self(watch::Sender::new(Busy {
            requests: 0,
            idle_since: accepted,
            sending: 0,
            sent_since: accepted,
        })))
    }

    /// A request head is complete; the guard ends the request.
    fn begin(self: &Arc<Self>) -> InProgress {
        self.0.send_modify(|busy| busy.requests += 1);
        InProgress {
            activity: Arc::clone(self),
            sending: false,
        }
    }

    /// Resolves once the connection has stalled for `timeout`: no request
    /// head completed since the accept or the last response, or responses
    /// waiting to be sent and none sent (a client that does not read). A
    /// handler at work (a probe, bounded by its own deadline) is no stall.
    async fn stalled(&self, timeout: Duration) {
        let mut changes = self.0.subscribe();
        loop {
            let busy = *changes.borrow_and_update();
            let since = if busy.requests == 0 {
                Some(busy.idle_since)
            } else if busy.sending > 0 {
                Some(busy.sent_since)
            } else {
                None
            };
            let Some(since) = since else {
                if changes.changed().await.is_err() {
                    return std::future::pending().await;
                }
                continue;
            };
            tokio::select! {
                changed = changes.changed() => if changed.is_err() {
                    return std::future::pending().await;
                },
                () = tokio::time::sleep_until((since + timeout).into()) => return,
            }
        }
    }
}

/// A request in progress on its connection.
struct InProgress {
    activity: Arc<Activity>,
    sending: bool,
}

impl InProgress {
    /// The handler is done; its response is being sent.
    fn sending(&mut self) {
        self.sending = true;
        self.activity.0.send_modify(|busy| {
            if busy.sending == 0 {
                busy.sent_since = Instant::now();
            }
            busy.sending += 1;
        });
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let sending = self.sending;
        self.activity.0.send_modify(|busy| {
            let now = Instant::now();
            if sending {
                busy.sending -= 1;
                busy.sent_since = now;
            }
            busy.requests -= 1;
            if busy.requests == 0 {
                busy.idle_since = now;
            }
        });
    }
}
