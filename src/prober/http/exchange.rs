//! One hop on the wire: a fresh TCP connection, TLS when the scheme is
//! https, the request over HTTP/2 if ALPN chose it or HTTP/1.1, each phase
//! timed. The connection task is aborted when the hop is done or the probe's
//! deadline drops the future.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use bytes::Bytes;
use http::{
    header::{self, HeaderName, HeaderValue},
    Request, Response,
};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::{body::Incoming, client::conn::http2::SendRequest, rt::Executor as _};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    task::AbortHandle,
};

use super::{
    credentials::Additions,
    proxy::{connect_authority, with_ip},
    Hop, MAX_RESPONSE_FIELDS, MAX_RESPONSE_HEAD, PHASES, USER_AGENT,
};
use crate::config::HttpProbe;
use crate::prober::{
    policy::TargetPolicy,
    report::{Report, HTTP_DURATION},
    tls_info::{self, TlsState},
    PreparedModule,
};

use super::tls_stream::ProbeTls;

/// A response body as the checks read it: hyper's (HTTP/1.1, HTTP/2) or
/// h3's (HTTP/3).
pub(super) type ResponseBody = UnsyncBoxBody<Bytes, BodyError>;
pub(super) type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// What came back from one hop.
pub(super) struct Exchange {
    pub(super) response: Response<ResponseBody>,
    pub(super) tls: Option<TlsState>,
    pub(super) responded_at: Instant,
    /// Keeps the connection alive until the body is read.
    pub(super) _connection: AbortOnDrop,
}

/// Connects, handshakes and sends one request, timing each phase.
pub(super) async fn round_trip(
    module: &PreparedModule,
    config: &HttpProbe,
    hop: &Hop,
    policy: &TargetPolicy,
    additions: &Additions,
    report: &mut Report,
) -> Result<Exchange, String> {
    for phase in PHASES {
        report.add_labeled(HTTP_DURATION, &[phase], 0.0);
    }
    if config.enable_http3 {
        return super::h3::round_trip(module, config, hop, policy, additions, report).await;
    }
    let https = hop.url.is_https();
    let port = hop.url.port()?;
    // After resolution and on every hop: a name or a redirect cannot reach a
    // denied address (the proxy's was checked when it was resolved; a name
    // left to the proxy was checked before).
    if let Some(ip) = hop.ip {
        policy.check(hop.url.hostname(), ip)?;
    }
    // Without the URL's user and password: the log may be shown to anyone.
    tracing::debug!(
        url = %format_args!("{}://{}{}", hop.url.scheme(), hop.url.authority(), hop.url.request_uri()),
        host = hop.host_override.as_deref().unwrap_or_else(|| hop.url.authority()),
        "Making HTTP request"
    );

    let start = Instant::now();
    let (mut tcp, addr) = match (&hop.via, hop.ip) {
        (Some(via), _) => via.dial(policy).await?,
        (None, Some(ip)) => {
            let addr = SocketAddr::new(ip, port);
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connecting to {addr}: {e}"))?;
            // Probes are latency measurements: no Nagle delay on the request.
            let _ = tcp.set_nodelay(true);
            (tcp, addr)
        }
        (None, None) => return Err(format!("no address for {}", hop.url.hostname())),
    };
    if let (true, Some(via)) = (https, &hop.via) {
        // The tunnel to the address lookout checked, or to the name it left to the proxy.
        let host = hop
            .ip
            .map_or_else(|| hop.url.hostname().to_owned(), |ip| ip.to_string());
        via.connect(
            &mut tcp,
            &connect_authority(&host, port),
            &module.http.proxies,
        )
        .await?;
    }
    report.add_labeled(HTTP_DURATION, &["connect"], start.elapsed().as_secs_f64());

    let (request_h2, tls, connection, sent) = if https {
        let start = Instant::now();
        let (stream, state) = tls_info::connect(&module.tls, &hop.server_name, tcp, &addr).await?;
        report.add_labeled(HTTP_DURATION, &["tls"], start.elapsed().as_secs_f64());
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let sent = Instant::now();
        let request = build_request(config, hop, additions, h2)?;
        let (response, connection) = send(ProbeTls::new(stream), h2, request).await?;
        (response, Some(state), connection, sent)
    } else {
        let sent = Instant::now();
        let request = build_request(config, hop, additions, false)?;
        let (response, connection) = send(tcp, false, request).await?;
        (response, None, connection, sent)
    };
    let responded_at = Instant::now();
    tracing::debug!(
        status_code = request_h2.status().as_u16(),
        "Received HTTP response"
    );
    report.add_labeled(
        HTTP_DURATION,
        &["processing"],
        (responded_at - sent).as_secs_f64(),
    );
    Ok(Exchange {
        response: request_h2.map(|body| body.map_err(BodyError::from).boxed_unsync()),
        tls,
        responded_at,
        _connection: connection,
    })
}

/// HTTP/1.1 or HTTP/2 over an established stream.
pub(super) async fn send<S>(
    io: S,
    h2: bool,
    request: Request<Full<Bytes>>,
) -> Result<(Response<Incoming>, AbortOnDrop), String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    if h2 {
        let (mut sender, guard) = h2_handshake(io)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP/2 request: {e}"))?;
        Ok((response, guard.keeping(sender)))
    } else {
        let io = TokioIo::new(io);
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_RESPONSE_HEAD)
            .max_headers(MAX_RESPONSE_FIELDS)
            .handshake(io)
            .await
            .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
        let guard = AbortOnDrop::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP request: {e}"))?;
        Ok((response, guard))
    }
}

/// An HTTP/2 client connection over `io`, driven on its own task until the
/// guard drops; response heads are bounded by [`MAX_RESPONSE_HEAD`], as the
/// memory budget counts them. The http and grpc probers' HTTP/2.
pub(crate) async fn h2_handshake<S>(
    io: S,
) -> Result<(SendRequest<Full<Bytes>>, AbortOnDrop), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // Made first: what hyper spawns is aborted even if the handshake fails.
    let guard = AbortOnDrop::default();
    let (sender, connection) = hyper::client::conn::http2::Builder::new(guard.tasks.clone())
        .max_header_list_size(MAX_RESPONSE_HEAD as u32)
        .handshake(TokioIo::new(io))
        .await?;
    guard.tasks.execute(connection);
    Ok((sender, guard))
}

pub(super) fn build_request(
    config: &HttpProbe,
    hop: &Hop,
    additions: &Additions,
    h2: bool,
) -> Result<Request<Full<Bytes>>, String> {
    let authority = hop
        .host_override
        .as_deref()
        .unwrap_or_else(|| hop.url.authority());
    let path = hop.url.request_uri();
    // HTTP/1.1 takes the origin form plus Host; HTTP/2 the absolute form,
    // from which hyper derives :authority. Through a proxy, plain HTTP takes
    // the absolute form with the address lookout checked (Go writes the
    // Host there, which the proxy would resolve again).
    let proxied = hop.via.as_ref().filter(|_| !hop.url.is_https());
    let uri = if h2 {
        format!("{}://{authority}{path}", hop.url.scheme())
    } else if proxied.is_some() {
        let target = hop.ip.map_or_else(
            || hop.url.authority().to_owned(),
            |ip| with_ip(hop.url.authority(), ip),
        );
        format!("http://{target}{path}")
    } else {
        path
    };
    let mut builder = Request::builder().method(hop.method.clone()).uri(uri);
    let headers = builder.headers_mut().ok_or("invalid request")?;
    if !h2 {
        headers.insert(
            header::HOST,
            HeaderValue::from_str(authority).map_err(|_| format!("invalid Host {authority:?}"))?,
        );
        // Keep-alive is pointless for a one-shot probe; say so to the server.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(value) = proxied.and_then(|via| via.authorization()) {
        headers.insert(header::PROXY_AUTHORIZATION, value.clone());
    }
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    for (name, value) in &config.headers {
        // Sent as the Host above (module_host).
        if name.eq_ignore_ascii_case("host") {
            continue;
        }
        // Validated at load; an invalid one cannot reach here.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    // The URL's user, the module's credentials (to the first host and its
    // subdomains only) and http_headers.
    additions.apply(headers, hop.url.user(), hop.send_authorization)?;
    builder
        .body(Full::new(hop.body.clone().unwrap_or_default()))
        .map_err(|e| format!("building the request: {e}"))
}

/// The tasks that drive one connection, aborted when the probe is done with
/// it: the one the probe spawned and those hyper's HTTP/2 client spawns
/// through [`Spawner`] (its connection task, which would otherwise outlive
/// the probe: closing gracefully, sending GOAWAY, waiting to flush to a
/// server that may never read).
#[derive(Default)]
pub(crate) struct AbortOnDrop {
    tasks: Spawner,
    /// Dropped after the aborts (see [`AbortOnDrop::keeping`]).
    _kept: Option<Box<dyn Send>>,
}

impl AbortOnDrop {
    /// Drives a connection on its own task until dropped.
    pub(super) fn spawn<F>(connection: F) -> Self
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let guard = Self::default();
        guard.tasks.execute(connection);
        guard
    }

    /// Keeps `sender`, the connection's request handle, until the tasks are
    /// aborted: dropped earlier, it has hyper's HTTP/2 start a graceful close
    /// with a GOAWAY frame, one more write to the target than Go's client
    /// makes.
    pub(super) fn keeping(mut self, sender: impl Send + 'static) -> Self {
        self._kept = Some(Box::new(sender));
        self
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        // In the order spawned: hyper's connection task, which owns the
        // stream, goes before the tasks whose end would wake it to close.
        for task in self
            .tasks
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            task.abort();
        }
    }
}

/// Spawns on tokio and remembers each task, for [`AbortOnDrop`] to abort.
#[derive(Clone, Default)]
pub(crate) struct Spawner(Arc<Mutex<Vec<AbortHandle>>>);

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let task = tokio::spawn(future).abort_handle();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }
}
