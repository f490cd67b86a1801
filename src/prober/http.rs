//! The http prober: one request, redirects followed by hand so that every
//! hop's phases are timed, with blackbox_exporter's checks and metrics.
//!
//! Each hop is a fresh connection (blackbox_exporter disables keep-alive):
//! TCP to the address `chooseProtocol` picked, TLS with rustls when the
//! scheme is https, then HTTP/2 if ALPN chose it, else HTTP/1.1, driven by
//! hyper's connection-level client. The connection task is aborted when the
//! hop is done or the probe's deadline drops this future.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Instant, UNIX_EPOCH},
};

use base64::Engine as _;
use bytes::Bytes;
use http::{
    header::{self, HeaderName, HeaderValue},
    Method, Request, Response, Version,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    task::JoinHandle,
};

use super::policy::TargetPolicy;
use super::{
    address,
    report::{
        Report, DNS_LOOKUP, FAILED_DUE_TO_REGEX, HTTP_BODY_LENGTH, HTTP_CONTENT_LENGTH,
        HTTP_DURATION, HTTP_LAST_MODIFIED, HTTP_REDIRECTS, HTTP_SSL, HTTP_STATUS, HTTP_VERSION,
    },
    resolve,
    tls_info::{self, TlsState},
    url::{self, Url},
    PreparedModule, ProbeOptions,
};
use crate::config::{HeaderMatch, HttpProbe, HttpVersion, Pattern};

/// blackbox_exporter (Go's client) follows at most ten redirects.
const MAX_REDIRECTS: u32 = 10;

/// Body cap when a module sets no `body_size_limit` (blackbox_exporter reads
/// without limit): an endless body must not become endless memory or time.
pub(crate) const DEFAULT_BODY_LIMIT: u64 = 10 << 20;

/// The largest response head read (status line and headers): blackbox_exporter
/// (Go) reads up to 10 MiB; real servers stay far below this, and each probe
/// in flight may hold one (the memory budget counts it).
pub(crate) const MAX_RESPONSE_HEAD: usize = 256 << 10;

/// Most header fields in a response head (hyper's default is 100).
const MAX_RESPONSE_FIELDS: usize = 1000;

/// Sent unless the module sets its own User-Agent.
const USER_AGENT: &str = concat!("lookout/", env!("CARGO_PKG_VERSION"));

const PHASES: [&str; 4] = ["connect", "processing", "tls", "transfer"];

/// The Host header a module sets, if any: the one rule for it (the
/// `hostname` parameter may not contradict it, and it replaces the URL's).
pub(crate) fn module_host(config: &HttpProbe) -> Option<&str> {
    config
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.as_str())
}

/// Runs an http probe: `Ok(false)` when a check failed (each logs why),
/// `Err` with the reason when the probe could not be made.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<bool, String> {
    let config = &module.config.http;
    // Registered up front, as blackbox_exporter does, so they print 0 on any failure.
    for gauge in [
        HTTP_CONTENT_LENGTH,
        HTTP_BODY_LENGTH,
        HTTP_REDIRECTS,
        HTTP_SSL,
        HTTP_STATUS,
        HTTP_VERSION,
        FAILED_DUE_TO_REGEX,
    ] {
        report.set(gauge, 0.0);
    }
    run(module, config, target, options, report).await
}

/// One request of the chain, as sent.
struct Hop {
    url: Url,
    ip: IpAddr,
    method: Method,
    body: Option<Bytes>,
    /// `Host` to send: the module's or the `hostname` parameter, else the URL's.
    host_override: Option<String>,
    /// TLS server name: `tls_config.server_name`, else the Host override's
    /// host, else the URL's host.
    server_name: String,
    send_authorization: bool,
}

/// What came back from one hop.
struct Exchange {
    response: Response<Incoming>,
    tls: Option<TlsState>,
    responded_at: Instant,
    /// Keeps the connection alive until the body is read.
    _connection: AbortOnDrop,
}

async fn run(
    module: &PreparedModule,
    config: &HttpProbe,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<bool, String> {
    let url = url::parse_target(target)?;
    let host = url.hostname().to_owned();
    // Before any lookup: a denied name is never even resolved.
    options.policy.check_name(&host)?;
    let (ip, lookup) = match resolve::choose_protocol(
        &host,
        config.preferred_ip_protocol,
        config.ip_protocol_fallback,
        options.ticket,
        report,
    )
    .await
    {
        Ok(found) => found,
        Err(reason) => {
            let spent = report.get(DNS_LOOKUP, &[]).unwrap_or_default();
            report.add_labeled(HTTP_DURATION, &["resolve"], spent);
            return Err(reason);
        }
    };
    report.add_labeled(HTTP_DURATION, &["resolve"], lookup.as_secs_f64());

    let host_override = options
        .hostname
        .or_else(|| module_host(config))
        .map(str::to_owned);
    if let Some(claimed) = &host_override {
        options
            .policy
            .check_host_header(address::hostname_of(claimed))?;
    }
    let server_name = config
        .tls_config
        .server_name
        .clone()
        .or_else(|| {
            host_override
                .as_deref()
                .map(|h| address::hostname_of(h).to_owned())
        })
        .unwrap_or_else(|| host.clone());
    let mut hop = Hop {
        url,
        ip,
        method: config.method.0.clone(),
        body: config.body.clone().map(Bytes::from),
        host_override,
        server_name,
        send_authorization: true,
    };

    let mut redirects = 0;
    let (exchange, refused) = loop {
        let exchange = round_trip(module, config, &hop, options.policy, report).await?;
        let status = exchange.response.status().as_u16();
        let location = exchange
            .response
            .headers()
            .get(header::LOCATION)
            // Raw UTF-8 is followed, as Go follows it (sent percent-encoded).
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        // A 3xx without a Location is the final response, as with Go's client.
        let Some(location) =
            location.filter(|l| !l.is_empty() && matches!(status, 301 | 302 | 303 | 307 | 308))
        else {
            break (exchange, false);
        };
        // Counted like Go's `len(via)`: a refused redirect counts too, and the
        // count stands even if a later hop fails.
        redirects += 1;
        report.set(HTTP_REDIRECTS, f64::from(redirects));
        if !config.follows_redirects() || redirects > MAX_REDIRECTS {
            break (exchange, true);
        }
        hop = next_hop(hop, &location, status, &host, options, report).await?;
    };

    finish(module, config, exchange, refused, options, report).await
}

/// Checks and metrics of the final response.
async fn finish(
    module: &PreparedModule,
    config: &HttpProbe,
    exchange: Exchange,
    refused_redirect: bool,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<bool, String> {
    let Exchange {
        response,
        tls,
        responded_at,
        _connection,
    } = exchange;
    let status = response.status().as_u16();
    report.set(HTTP_STATUS, f64::from(status));
    let content_length = content_length(&response);
    report.set(HTTP_CONTENT_LENGTH, content_length as f64);
    let version = match response.version() {
        Version::HTTP_10 => Some(HttpVersion::Http10),
        Version::HTTP_11 => Some(HttpVersion::Http11),
        Version::HTTP_2 => Some(HttpVersion::Http2),
        _ => None,
    };
    report.set(
        HTTP_VERSION,
        match version {
            Some(HttpVersion::Http10) => 1.0,
            Some(HttpVersion::Http11) => 1.1,
            Some(HttpVersion::Http2) => 2.0,
            None => 0.0,
        },
    );
    if let Some(modified) = response
        .headers()
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    {
        report.set(HTTP_LAST_MODIFIED, modified.as_secs() as f64);
    }

    let mut success = if config.valid_status_codes.is_empty() {
        (200..300).contains(&status)
    } else {
        config.valid_status_codes.contains(&status)
    };
    if !success {
        tracing::debug!(status, "invalid HTTP response status code");
    }

    if success
        && !(config.fail_if_header_matches.is_empty()
            && config.fail_if_header_not_matches.is_empty())
    {
        let headers_ok = check_headers(config, response.headers());
        report.set(FAILED_DUE_TO_REGEX, if headers_ok { 0.0 } else { 1.0 });
        success = headers_ok;
    }

    let wants_body = !(config.fail_if_body_matches_regexp.is_empty()
        && config.fail_if_body_not_matches_regexp.is_empty());
    if refused_redirect {
        // Go hands back a refused redirect with its body already closed.
        if success && wants_body && content_length != 0 {
            tracing::debug!("body of a redirect that was not followed cannot be read");
            report.set(FAILED_DUE_TO_REGEX, 1.0);
            success = false;
        }
    } else {
        let limit = match config.body_size_limit.0 {
            0 => DEFAULT_BODY_LIMIT,
            limit => limit,
        };
        let body = read_body(response.into_body(), limit, wants_body, report).await;
        if success && wants_body {
            let body_ok = if body.error.is_some() {
                false
            } else {
                match match_body(config, body.kept, options).await {
                    Ok(Ok(())) => true,
                    Ok(Err(reason)) => {
                        tracing::debug!(%reason, "body regexp check failed");
                        false
                    }
                    Err(Busy(reason)) => {
                        report.refuse(reason);
                        return Ok(false);
                    }
                }
            };
            report.set(FAILED_DUE_TO_REGEX, if body_ok { 0.0 } else { 1.0 });
            success = body_ok;
        }
        if let Some(error) = body.error {
            tracing::debug!(%error, "failed to read HTTP response body");
            success = false;
        }
    }
    report.add_labeled(
        HTTP_DURATION,
        &["transfer"],
        responded_at.elapsed().as_secs_f64(),
    );

    if !config.valid_http_versions.is_empty()
        && !version.is_some_and(|v| config.valid_http_versions.contains(&v))
    {
        tracing::debug!(?version, "invalid HTTP version");
        success = false;
    }

    match &tls {
        Some(state) => {
            report.set(HTTP_SSL, 1.0);
            tls_info::record(report, state, &module.tls.extra_roots);
            if config.fail_if_ssl {
                tracing::debug!("final response was over TLS and fail_if_ssl is set");
                success = false;
            }
        }
        None if config.fail_if_not_ssl => {
            tracing::debug!("final response was not over TLS and fail_if_not_ssl is set");
            success = false;
        }
        None => {}
    }
    Ok(success)
}

/// Connects, handshakes and sends one request, timing each phase.
async fn round_trip(
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

    let start = Instant::now();
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    // Probes are latency measurements: no Nagle delay on the request.
    let _ = tcp.set_nodelay(true);
    report.add_labeled(HTTP_DURATION, &["connect"], start.elapsed().as_secs_f64());

    let (request_h2, tls, connection, sent) = if https {
        let start = Instant::now();
        let (stream, state) = tls_info::connect(&module.tls, &hop.server_name, tcp, addr).await?;
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
async fn send<S>(
    io: S,
    h2: bool,
    request: Request<Full<Bytes>>,
) -> Result<(Response<Incoming>, AbortOnDrop), String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let io = TokioIo::new(io);
    if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .max_header_list_size(MAX_RESPONSE_HEAD as u32)
                .handshake(io)
                .await
                .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        let guard = AbortOnDrop::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP/2 request: {e}"))?;
        Ok((response, guard))
    } else {
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

async fn build_request(
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
async fn authorization(config: &HttpProbe) -> Result<Option<HeaderValue>, String> {
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
fn basic(user: &str, password: &str) -> Result<HeaderValue, String> {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|_| "credentials are not a valid header value".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// The request that follows a redirect, with Go's client rules.
async fn next_hop(
    previous: Hop,
    location: &str,
    status: u16,
    first_host: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<Hop, String> {
    let (url, absolute) = previous
        .url
        .join(location)
        .map_err(|e| format!("redirect to {location:?}: {e}"))?;
    let host = url.hostname().to_owned();
    options.policy.check_name(&host)?;
    let same_host = host == previous.url.hostname();
    let ip = if same_host {
        previous.ip
    } else {
        let start = Instant::now();
        let ips = resolve::lookup(&host, options.ticket).await;
        report.add_labeled(HTTP_DURATION, &["resolve"], start.elapsed().as_secs_f64());
        *ips?
            .first()
            .ok_or_else(|| format!("no address for redirect host {host}"))?
    };
    // 301/302/303 turn into GET without a body (HEAD stays HEAD); 307/308 repeat.
    let (method, body) = match status {
        301..=303 if previous.method != Method::HEAD => (Method::GET, None),
        301..=303 => (Method::HEAD, None),
        _ => (previous.method, previous.body),
    };
    // A Host override survives a Location without a scheme (Go's client rule).
    let host_override = if absolute {
        None
    } else {
        previous.host_override
    };
    let server_name = if same_host {
        previous.server_name
    } else {
        host.clone()
    };
    // Credentials go only to the first host or its subdomains.
    let send_authorization = host == first_host || host.ends_with(&format!(".{first_host}"));
    Ok(Hop {
        url,
        ip,
        method,
        body,
        host_override,
        server_name,
        send_authorization,
    })
}

/// Go's `resp.ContentLength`: the header's value, -1 when unknown, 0 for
/// responses that cannot have a body.
fn content_length(response: &Response<Incoming>) -> i64 {
    let status = response.status().as_u16();
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return 0;
    }
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(-1)
}

fn check_headers(config: &HttpProbe, headers: &http::HeaderMap) -> bool {
    let values = |matcher: &HeaderMatch| -> Vec<Vec<u8>> {
        headers
            .get_all(matcher.header.as_str())
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect()
    };
    for matcher in &config.fail_if_header_matches {
        let values = values(matcher);
        if values.is_empty() {
            if !matcher.allow_missing {
                tracing::debug!(header = %matcher.header, "missing required header");
                return false;
            }
            continue;
        }
        if values.iter().any(|v| matcher.regexp.is_match(v)) {
            tracing::debug!(header = %matcher.header, regexp = ?matcher.regexp, "header matched fail_if_header_matches");
            return false;
        }
    }
    for matcher in &config.fail_if_header_not_matches {
        let values = values(matcher);
        if values.is_empty() {
            if !matcher.allow_missing {
                tracing::debug!(header = %matcher.header, "missing required header");
                return false;
            }
            continue;
        }
        if !values.iter().any(|v| matcher.regexp.is_match(v)) {
            tracing::debug!(header = %matcher.header, regexp = ?matcher.regexp, "header did not match fail_if_header_not_matches");
            return false;
        }
    }
    true
}

/// No match slot was free: the probe is refused, not failed.
struct Busy(String);

/// The body regexps, on a blocking thread that holds a match slot and the
/// probe's ticket: a match cannot be interrupted, so a deadline must not
/// leave it running on an async worker, nor let such threads pile up.
/// `Busy` when every slot is held by a match that outlived its probe.
async fn match_body(
    config: &HttpProbe,
    body: Vec<u8>,
    options: ProbeOptions<'_>,
) -> Result<Result<(), String>, Busy> {
    let Some(slot) = options.matches.take().await else {
        return Err(Busy(format!(
            "Too many body regexp matches running: all {} slots are held by matches that outlived their probes; retry later",
            options.matches.count()
        )));
    };
    let must_not = config.fail_if_body_matches_regexp.clone();
    let must = config.fail_if_body_not_matches_regexp.clone();
    options
        .matches
        .run(slot, options.ticket, move || {
            check_body(&must_not, &must, &body)
        })
        .await
        .and_then(|verdict| verdict)
        .map_or_else(|reason| Ok(Err(reason)), |()| Ok(Ok(())))
}

fn check_body(must_not: &[Pattern], must: &[Pattern], body: &[u8]) -> Result<(), String> {
    if let Some(re) = must_not.iter().find(|re| re.is_match(body)) {
        return Err(format!("body matched fail_if_body_matches_regexp {re:?}"));
    }
    if let Some(re) = must.iter().find(|re| !re.is_match(body)) {
        return Err(format!(
            "body did not match fail_if_body_not_matches_regexp {re:?}"
        ));
    }
    Ok(())
}

struct Body {
    read: u64,
    kept: Vec<u8>,
    error: Option<String>,
}

/// Reads the body to its end or to `limit` bytes; keeps the bytes only when a
/// regexp needs them. The count is reported as it grows, so a body cut off by
/// the deadline still shows what arrived, as with blackbox_exporter.
async fn read_body(mut body: Incoming, limit: u64, keep: bool, report: &mut Report) -> Body {
    let mut out = Body {
        read: 0,
        kept: Vec::new(),
        error: None,
    };
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let room = if limit == 0 {
            data.len()
        } else {
            usize::try_from(limit - out.read)
                .unwrap_or(usize::MAX)
                .min(data.len())
        };
        out.read += room as u64;
        report.set(HTTP_BODY_LENGTH, out.read as f64);
        if keep {
            out.kept.extend_from_slice(&data[..room]);
        }
        if room < data.len() {
            out.error = Some(format!("body exceeds body_size_limit of {limit} bytes"));
            break;
        }
    }
    out
}

/// Aborts the connection task when the probe is done with it.
struct AbortOnDrop(JoinHandle<()>);

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
