//! The http prober: one request, redirects followed by hand so that every
//! hop's phases are timed, with blackbox_exporter's checks and metrics.
//!
//! Here: the chain of requests, and Go's client rules for each redirect.
//! [`exchange`]: one hop on the wire, a fresh connection each
//! (blackbox_exporter disables keep-alive). [`checks`]: what the final
//! response must satisfy. prometheus/common's client options:
//! [`proxy`] (forward proxies), [`credentials`] (the Authorization header,
//! `http_headers`, `body_file`), [`oauth2`] (the token), [`setup`] (what a
//! module prepares once for all its probes).

use std::{net::IpAddr, time::Instant};

use bytes::Bytes;
use http::{header, Method};

mod body;
mod checks;
mod credentials;
mod decode;
mod exchange;
mod h3;
mod oauth2;
mod proxy;
mod setup;
mod tls_stream;

use self::{checks::finish, exchange::round_trip, proxy::Via};
pub(crate) use self::{
    credentials::MAX_BODY_FILE,
    oauth2::MAX_TOKEN_RESPONSE,
    setup::{HttpSetup, SetupError},
};
pub(super) use self::{
    decode::memory as decoder_memory, exchange::h2_handshake, h3::MEMORY as QUIC_MEMORY,
};
use super::{
    address,
    report::{
        Report, DNS_LOOKUP, FAILED_DUE_TO_REGEX, HTTP_BODY_LENGTH, HTTP_CONTENT_LENGTH,
        HTTP_DURATION, HTTP_REDIRECTS, HTTP_SSL, HTTP_STATUS, HTTP_VERSION,
    },
    resolve,
    url::{self, Url},
    PreparedModule, ProbeOptions,
};
use crate::config::HttpProbe;

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
pub(crate) const USER_AGENT: &str = concat!("lookout/", env!("CARGO_PKG_VERSION"));

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
    /// The target's address; `None` when the name is left to the proxy.
    ip: Option<IpAddr>,
    /// The proxy this hop goes through.
    via: Option<Via>,
    method: Method,
    body: Option<Bytes>,
    /// `Host` to send: the module's or the `hostname` parameter, else the URL's.
    host_override: Option<String>,
    /// TLS server name: `tls_config.server_name`, else the Host override's
    /// host, else the URL's host.
    server_name: String,
    send_authorization: bool,
}

async fn run(
    module: &PreparedModule,
    config: &HttpProbe,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<bool, String> {
    // blackbox_exporter probes an http:// target over https:// with HTTP/3.
    let url = if config.enable_http3 {
        let https = h3::https_target(target);
        if https != target {
            tracing::debug!(target = %https, "HTTP/3 needs https: probing the target over https");
        }
        url::parse_target(&https)?
    } else {
        url::parse_target(target)?
    };
    let host = url.hostname().to_owned();
    // Before any lookup: a denied name is never even resolved.
    options.policy.check_name(&host)?;
    // blackbox_exporter's shouldResolveDNSWithProxy: with a proxy set (used
    // for this target or not), skip_resolve_phase_with_proxy leaves the name
    // unresolved and reports no resolution metrics.
    let skip_resolve = config.skip_resolve_phase_with_proxy && config.proxy().is_set();
    let ip = if skip_resolve {
        // Nothing to resolve; an address written in the target is still the
        // policy's to judge (round_trip checks it).
        host.parse::<IpAddr>().ok()
    } else {
        match resolve::choose_protocol(
            &host,
            config.preferred_ip_protocol,
            config.ip_protocol_fallback,
            options.ticket,
            report,
        )
        .await
        {
            Ok((ip, lookup)) => {
                report.add_labeled(HTTP_DURATION, &["resolve"], lookup.as_secs_f64());
                Some(ip)
            }
            Err(reason) => {
                let spent = report.get(DNS_LOOKUP, &[]).unwrap_or_default();
                report.add_labeled(HTTP_DURATION, &["resolve"], spent);
                return Err(reason);
            }
        }
    };

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
    // blackbox_exporter opens body_file before it registers the phases.
    let body = match &config.body_file {
        Some(path) => Some(credentials::read_body_file(path).await?),
        None => config.body.clone().map(Bytes::from),
    };
    for phase in PHASES {
        report.add_labeled(HTTP_DURATION, &[phase], 0.0);
    }
    // A denied address is refused before any token is fetched for it.
    if let Some(ip) = ip {
        options.policy.check(&host, ip)?;
    }
    // Files, the oauth2 token: read and fetched before the first connection.
    let additions = credentials::prepare(config, &module.http, options).await?;
    // The proxy is chosen by the URL as blackbox_exporter sends it: with the
    // resolved address in place of the name.
    let url_host = ip.map_or_else(|| host.clone(), |ip| ip.to_string());
    let (ip, via) = route(module, &url, &url_host, ip, options, report).await?;
    let mut hop = Hop {
        url,
        ip,
        via,
        method: config.method.0.clone(),
        body,
        host_override,
        server_name,
        send_authorization: true,
    };

    let mut redirects = 0;
    let (exchange, refused) = loop {
        let exchange = round_trip(module, config, &hop, options.policy, &additions, report).await?;
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
        tracing::debug!(location, "Received redirect");
        if !config.follows_redirects() || redirects > MAX_REDIRECTS {
            tracing::debug!("Not following redirect");
            break (exchange, true);
        }
        hop = next_hop(module, hop, &location, status, &host, options, report).await?;
    };

    finish(module, config, exchange, refused, options, report).await
}

/// The request that follows a redirect, with Go's client rules.
async fn next_hop(
    module: &PreparedModule,
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
    let skip_resolve =
        module.config.http.skip_resolve_phase_with_proxy && module.config.http.proxy().is_set();
    let ip = if same_host {
        previous.ip
    } else if skip_resolve {
        host.parse::<IpAddr>().ok()
    } else {
        let start = Instant::now();
        let ips = resolve::lookup(&host, options.ticket).await;
        report.add_labeled(HTTP_DURATION, &["resolve"], start.elapsed().as_secs_f64());
        Some(
            *ips?
                .first()
                .ok_or_else(|| format!("no address for redirect host {host}"))?,
        )
    };
    if skip_resolve {
        // Go times every redirect's lookup (here, the proxy's) as `resolve`.
        report.add_labeled(HTTP_DURATION, &["resolve"], 0.0);
    }
    // Go's client matches a redirect's name against no_proxy.
    let (ip, via) = route(module, &url, &host, ip, options, report).await?;
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
        via,
        method,
        body,
        host_override,
        server_name,
        send_authorization,
    })
}

/// The proxy a hop to `url` goes through, resolved and checked, and the
/// target's address: a name left unresolved for a proxy that `no_proxy`
/// then bypasses is resolved here (without resolution metrics, as Go's
/// dialer resolves it).
async fn route(
    module: &PreparedModule,
    url: &Url,
    url_host: &str,
    ip: Option<IpAddr>,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<(Option<IpAddr>, Option<Via>), String> {
    match module.http.proxies.select(url, url_host)? {
        Some(endpoint) => {
            let (via, lookup) = Via::resolve(endpoint, options.policy, options.ticket).await?;
            if report.get(HTTP_DURATION, &["resolve"]).is_some() {
                report.add_labeled(HTTP_DURATION, &["resolve"], lookup.as_secs_f64());
            }
            Ok((ip, Some(via)))
        }
        None => match ip {
            Some(ip) => Ok((Some(ip), None)),
            None => {
                let config = &module.config.http;
                let mut quiet = Report::default();
                let (ip, _) = resolve::choose_protocol(
                    url.hostname(),
                    config.preferred_ip_protocol,
                    config.ip_protocol_fallback,
                    options.ticket,
                    &mut quiet,
                )
                .await?;
                Ok((Some(ip), None))
            }
        },
    }
}
