//! The http prober: one request, redirects followed by hand so that every
//! hop's phases are timed, with blackbox_exporter's checks and metrics.
//!
//! Here: the chain of requests, and Go's client rules for each redirect.
//! [`exchange`]: one hop on the wire, a fresh connection each
//! (blackbox_exporter disables keep-alive). [`checks`]: what the final
//! response must satisfy.

use std::{net::IpAddr, time::Instant};

use bytes::Bytes;
use http::{header, Method};

mod checks;
mod exchange;

pub(super) use self::exchange::h2_handshake;
use self::{checks::finish, exchange::round_trip};
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
        tracing::debug!(location, "Received redirect");
        if !config.follows_redirects() || redirects > MAX_REDIRECTS {
            tracing::debug!("Not following redirect");
            break (exchange, true);
        }
        hop = next_hop(hop, &location, status, &host, options, report).await?;
    };

    finish(module, config, exchange, refused, options, report).await
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
