//! The http prober: one request, redirects followed by hand so that every
//! hop's phases are timed, with blackbox_exporter's checks and metrics.
//!
//! Each hop is a fresh connection (blackbox_exporter disables keep-alive):
//! TCP to the address `chooseProtocol` picked, TLS with rustls when the
//! scheme is https, then HTTP/2 if ALPN chose it, else HTTP/1.1, driven by
//! hyper's connection-level client. The connection task is aborted when the
//! hop is done or the probe's deadline drops this future.

use std::{
    borrow::Cow,
    net::{IpAddr, SocketAddr},
    time::{Instant, UNIX_EPOCH},
};

use base64::Engine as _;
use bytes::Bytes;
use http::{
    header::{self, HeaderName, HeaderValue},
    Method, Request, Response, Uri, Version,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    task::JoinHandle,
};

use super::{
    report::{
        Report, DNS_LOOKUP, FAILED_DUE_TO_REGEX, HTTP_BODY_LENGTH, HTTP_CONTENT_LENGTH,
        HTTP_DURATION, HTTP_LAST_MODIFIED, HTTP_REDIRECTS, HTTP_SSL, HTTP_STATUS, HTTP_VERSION,
    },
    resolve,
    tls_info::{self, TlsState},
    PreparedModule, ProbeOptions,
};
use crate::{
    config::{HeaderMatch, HttpProbe, HttpVersion},
    policy::TargetPolicy,
};

/// blackbox_exporter (Go's client) follows at most ten redirects.
const MAX_REDIRECTS: u32 = 10;

/// Body cap when a module sets no `body_size_limit` (blackbox_exporter reads
/// without limit): an endless body must not become endless memory or time.
pub(crate) const DEFAULT_BODY_LIMIT: u64 = 10 << 20;

/// Sent unless the module sets its own User-Agent.
const USER_AGENT: &str = concat!("lookout/", env!("CARGO_PKG_VERSION"));

const PHASES: [&str; 4] = ["connect", "processing", "tls", "transfer"];

/// Runs an http probe; false on failure, with the reason in a debug log.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> bool {
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
    match run(module, config, target, options, report).await {
        Ok(success) => success,
        Err(reason) => {
            tracing::debug!(%reason, "probe failed");
            false
        }
    }
}

/// One request of the chain, as sent.
struct Hop {
    url: Uri,
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
    // Without a scheme the target is plain http (case-sensitive, as in 0.23).
    // Another scheme is refused before any lookup: blackbox_exporter would
    // prepend http:// and resolve the scheme's name as a host.
    let target: Cow<'_, str> = if target.starts_with("http://") || target.starts_with("https://") {
        target.into()
    } else if let Some((scheme, _)) = target.split_once("://") {
        return Err(format!("unsupported scheme {scheme:?}: http and https are"));
    } else {
        format!("http://{target}").into()
    };
    let url: Uri = target
        .parse()
        .map_err(|e| format!("invalid target URL {target:?}: {e}"))?;
    let host = url_host(&url).ok_or_else(|| format!("no host in target URL {target:?}"))?;

    let (ip, lookup) = match resolve::choose_protocol(
        &host,
        config.preferred_ip_protocol,
        config.ip_protocol_fallback,
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

    let host_override = options.hostname.map(str::to_owned).or_else(|| {
        config
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
    });
    let server_name = config
        .tls_config
        .server_name
        .clone()
        .or_else(|| host_override.as_deref().map(strip_port))
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
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(location) = location.filter(|_| matches!(status, 301 | 302 | 303 | 307 | 308))
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
        hop = next_hop(hop, &location, status, &host, report).await?;
    };

    finish(module, config, exchange, refused, report).await
}

/// Checks and metrics of the final response.
async fn finish(
    module: &PreparedModule,
    config: &HttpProbe,
    exchange: Exchange,
    refused_redirect: bool,
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
            let body_ok = body.error.is_none() && check_body(config, &body.kept);
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
    let https = hop.url.scheme_str() == Some("https");
    let port = hop.url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = SocketAddr::new(hop.ip, port);
    // After resolution and on every hop: a name or a redirect cannot reach a
    // denied address.
    policy.check(&url_host(&hop.url).unwrap_or_default(), hop.ip)?;

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
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        let guard = AbortOnDrop::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP/2 request: {e}"))?;
        Ok((response, guard))
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
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
    let authority = match &hop.host_override {
        Some(host) => host.clone(),
        None => hop
            .url
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
    };
    let path = hop.url.path_and_query().map_or("/", |p| p.as_str());
    // HTTP/1.1 takes the origin form plus Host; HTTP/2 the absolute form,
    // from which hyper derives :authority.
    let uri = if h2 {
        format!("https://{authority}{path}")
    } else {
        path.to_owned()
    };
    let mut builder = Request::builder().method(hop.method.clone()).uri(uri);
    let headers = builder.headers_mut().ok_or("invalid request")?;
    if !h2 {
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&authority).map_err(|_| format!("invalid Host {authority:?}"))?,
        );
        // Keep-alive is pointless for a one-shot probe; say so to the server.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    for (name, value) in &config.headers {
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
    if hop.send_authorization {
        if let Some(value) = authorization(config).await? {
            headers.insert(header::AUTHORIZATION, value);
        }
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
        let credentials = format!("{}:{}", auth.username, password.trim());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
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

/// The request that follows a redirect, with Go's client rules.
async fn next_hop(
    previous: Hop,
    location: &str,
    status: u16,
    first_host: &str,
    report: &mut Report,
) -> Result<Hop, String> {
    let url = join(&previous.url, location)
        .ok_or_else(|| format!("invalid redirect Location {location:?}"))?;
    let relative = !location.contains("//");
    let host =
        url_host(&url).ok_or_else(|| format!("no host in redirect Location {location:?}"))?;
    let same_host = Some(&host) == url_host(&previous.url).as_ref();
    let ip = if same_host {
        previous.ip
    } else {
        let start = Instant::now();
        let ips = resolve::lookup(&host).await;
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
    let host_override = if relative {
        previous.host_override
    } else {
        None
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

/// Resolves a Location against the URL it came from.
fn join(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    let authority = base.authority()?.as_str();
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}").parse().ok();
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    format!("{scheme}://{authority}{dir}{location}")
        .parse()
        .ok()
}

/// The URL's host, without IPv6 brackets.
fn url_host(url: &Uri) -> Option<String> {
    let host = url.host()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
}

/// `host[:port]` without the port, for a TLS server name.
fn strip_port(authority: &str) -> String {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_owned();
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_owned(),
        _ => authority.to_owned(),
    }
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

fn check_body(config: &HttpProbe, body: &[u8]) -> bool {
    if let Some(re) = config
        .fail_if_body_matches_regexp
        .iter()
        .find(|re| re.is_match(body))
    {
        tracing::debug!(regexp = ?re, "body matched fail_if_body_matches_regexp");
        return false;
    }
    if let Some(re) = config
        .fail_if_body_not_matches_regexp
        .iter()
        .find(|re| !re.is_match(body))
    {
        tracing::debug!(regexp = ?re, "body did not match fail_if_body_not_matches_regexp");
        return false;
    }
    true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_like_a_browser() {
        let base: Uri = "http://example.org/a/b?q=1".parse().unwrap();
        assert_eq!(join(&base, "/c").unwrap(), "http://example.org/c");
        assert_eq!(join(&base, "c").unwrap(), "http://example.org/a/c");
        assert_eq!(join(&base, "//other.org/x").unwrap(), "http://other.org/x");
        assert_eq!(
            join(&base, "https://secure.org/").unwrap(),
            "https://secure.org/"
        );
    }

    #[test]
    fn ports_come_off_server_names() {
        assert_eq!(strip_port("example.org:8443"), "example.org");
        assert_eq!(strip_port("example.org"), "example.org");
        assert_eq!(strip_port("[::1]:8443"), "::1");
    }
}
