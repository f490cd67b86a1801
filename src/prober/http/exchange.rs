//! One hop on the wire: a fresh TCP connection, TLS when the scheme is
//! https, the request over HTTP/2 if ALPN chose it or HTTP/1.1, each phase
//! timed. The connection task is aborted when the hop is done or the probe's
//! deadline drops the future.

use std::{net::SocketAddr, time::Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{
    header::{self, HeaderName, HeaderValue},
    Request, Response,
};
use http_body_util::Full;
use hyper::{body::Incoming, client::conn::http2::SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    task::JoinHandle,
};

use super::{Hop, MAX_RESPONSE_FIELDS, MAX_RESPONSE_HEAD, PHASES, USER_AGENT};
use crate::config::HttpProbe;
use crate::prober::{
    policy::TargetPolicy,
    report::{Report, HTTP_DURATION},
    tls_info::{self, TlsState},
    PreparedModule,
};

/// What came back from one hop.
pub(super) struct Exchange {
    pub(super) response: Response<Incoming>,
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
    report: &mut Report,
) -> Result<Exchange, String> {
    for phase in PHASES {
        report.add_labeled(HTTP_DURATION, &[phase], 0.0);
    }
    let https = hop.url.is_https();
    let addr = SocketAddr::new(hop.ip, hop.url.port()?);
    // After resolution and on every hop: a name or a redirect cannot reach a
    // denied address.
    policy.check(hop.url.hostname(), hop.ip)?;
    // Without the URL's user and password: the log may be shown to anyone.
    tracing::debug!(
        url = %format_args!("{}://{}{}", hop.url.scheme(), hop.url.authority(), hop.url.request_uri()),
        host = hop.host_override.as_deref().unwrap_or_else(|| hop.url.authority()),
        "Making HTTP request"
    );

    let start = Instant::now();
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    // Probes are latency measurements: no Nagle delay on the request.
    let _ = tcp.set_nodelay(true);
    report.add_labeled(HTTP_DURATION, &["connect"], start.elapsed().as_secs_f64());

    let (request_h2, tls, connection, sent) = if https {
        let start = Instant::now();
        let (stream, state) = tls_info::connect(&module.tls, &hop.server_name, tcp, &addr).await?;
        report.add_labeled(HTTP_DURATION, &["tls"], start.elapsed().as_secs_f64());
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let sent = Instant::now();
        let request = build_request(config, hop, h2).await?;
        let (response, connection) = send(stream, h2, request).await?;
        (response, Some(state), connection, sent)
    } else {
        let sent = Instant::now();
        let request = build_request(config, hop, false).await?;
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
        response: request_h2,
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
        Ok((response, guard))
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
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .max_header_list_size(MAX_RESPONSE_HEAD as u32)
        .handshake(TokioIo::new(io))
        .await?;
    Ok((sender, AbortOnDrop::spawn(connection)))
}

pub(super) async fn build_request(
    config: &HttpProbe,
    hop: &Hop,
    h2: bool,
) -> Result<Request<Full<Bytes>>, String> {
    let authority = hop
        .host_override
        .as_deref()
        .unwrap_or_else(|| hop.url.authority());
    let path = hop.url.request_uri();
    // HTTP/1.1 takes the origin form plus Host; HTTP/2 the absolute form,
    // from which hyper derives :authority.
    let uri = if h2 {
        format!("{}://{authority}{path}", hop.url.scheme())
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
    // Credentials in the URL win, as with Go's client; the module's go only
    // to the first host and its subdomains.
    let credentials = match hop.url.user() {
        Some((user, password)) => Some(basic(user, password)?),
        None if hop.send_authorization => authorization(config).await?,
        None => None,
    };
    if let Some(value) = credentials {
        headers.insert(header::AUTHORIZATION, value);
    }
    builder
        .body(Full::new(hop.body.clone().unwrap_or_default()))
        .map_err(|e| format!("building the request: {e}"))
}

/// The Authorization header from basic_auth or a bearer token; secrets in
/// files are read at each probe, so rotated files take effect at once.
pub(super) async fn authorization(config: &HttpProbe) -> Result<Option<HeaderValue>, String> {
    let read = |path: std::path::PathBuf| async move {
        tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| format!("reading {}: {e}", path.display()))
    };
    let value = if let Some(auth) = &config.basic_auth {
        let password = match (&auth.password, &auth.password_file) {
            (Some(secret), _) => secret.0.clone(),
            (None, Some(path)) => read(path.clone()).await?,
            (None, None) => String::new(),
        };
        // Prometheus' client trims the password, from a value or a file.
        return basic(&auth.username, password.trim()).map(Some);
    } else if let Some(token) = &config.bearer_token {
        format!("Bearer {}", token.0.trim())
    } else if let Some(path) = &config.bearer_token_file {
        format!("Bearer {}", read(path.clone()).await?.trim())
    } else {
        return Ok(None);
    };
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "credentials are not a valid header value".to_owned())?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// `Authorization: Basic` for a user and password.
pub(super) fn basic(user: &str, password: &str) -> Result<HeaderValue, String> {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|_| "credentials are not a valid header value".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// Aborts the connection task when the probe is done with it.
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    /// Drives a hyper connection on its own task until dropped.
    fn spawn(connection: impl std::future::Future + Send + 'static) -> Self {
        Self(tokio::spawn(async move {
            let _ = connection.await;
        }))
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
