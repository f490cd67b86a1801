//! Forward proxies, as Go's transport uses them for prometheus/common's
//! `proxy_url`, `no_proxy`, `proxy_from_environment` and
//! `proxy_connect_header`: an http target's request goes to the proxy in
//! absolute form, an https target's through a CONNECT tunnel, with
//! `Proxy-Authorization: Basic` from the proxy URL's user and password.
//!
//! Which proxy a URL takes is Go's rule: `proxy_url` alone proxies every
//! request; with `no_proxy`, or from the environment, x/net's `httpproxy`
//! decides (`localhost` and loopback addresses never go through a proxy; the
//! list names IPs, networks, domains, `host:port`, or `*`).
//!
//! The proxy is one more address a probe reaches: its name and address pass
//! the target policy like a target's. The proxy is sent the address lookout
//! resolved and checked, never a name it would resolve again, unless
//! `skip_resolve_phase_with_proxy` leaves the name to it (then the policy
//! judges the name).

use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::USER_AGENT;
use crate::config::{ProxyOptions, ProxyUrl};
use crate::prober::{
    address::split_host_port, limits::Ticket, policy::TargetPolicy, resolve, url::Url,
};

/// The most bytes of a CONNECT response head read: a proxy's answer is a
/// status line and a few fields.
const MAX_CONNECT_HEAD: usize = 16 << 10;

/// A proxy lookout can speak to.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    authorization: Option<HeaderValue>,
}

impl Endpoint {
    fn new(url: &Url) -> Result<Self, String> {
        let authorization = url
            .user()
            .map(|(user, password)| {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                HeaderValue::from_str(&format!("Basic {token}")).map(|mut value| {
                    value.set_sensitive(true);
                    value
                })
            })
            .transpose()
            .map_err(|_| "the proxy URL's credentials are not a valid header value".to_owned())?;
        Ok(Self {
            host: url.hostname().to_owned(),
            port: url.port()?,
            authorization,
        })
    }
}

/// A proxy from the environment: usable, or why not (said when a probe needs it).
type EnvProxy = Option<Result<Endpoint, String>>;

#[derive(Debug, Clone)]
enum Mode {
    /// No proxy.
    Direct,
    /// `proxy_url` without `no_proxy`: every request (Go's `http.ProxyURL`).
    Always(Endpoint),
    /// x/net's `httpproxy`: per scheme, minus `no_proxy`.
    Rules {
        http: EnvProxy,
        https: EnvProxy,
        no_proxy: NoProxy,
        /// A CGI process refuses `HTTP_PROXY` (golang.org/s/cgihttpproxy).
        cgi: bool,
    },
}

/// A module's (or its token endpoint's) proxy settings, made ready once.
#[derive(Debug, Clone)]
pub(crate) struct Proxies {
    mode: Mode,
    connect_headers: Vec<(HeaderName, HeaderValue)>,
}

impl Proxies {
    /// No proxy at all.
    pub(crate) fn direct() -> Self {
        Self {
            mode: Mode::Direct,
            connect_headers: Vec::new(),
        }
    }

    /// From the options (the environment is read now, for
    /// `proxy_from_environment`).
    pub(crate) fn new(options: ProxyOptions<'_>) -> Result<Self, String> {
        let env = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        };
        let mode = if options.from_environment {
            let parse = |value: Option<String>| value.map(|v| parse_env_proxy(&v));
            Mode::Rules {
                http: parse(env(&["HTTP_PROXY", "http_proxy"])),
                https: parse(env(&["HTTPS_PROXY", "https_proxy"])),
                no_proxy: NoProxy::parse(&env(&["NO_PROXY", "no_proxy"]).unwrap_or_default()),
                cgi: env(&["REQUEST_METHOD"]).is_some(),
            }
        } else {
            match (options.url, options.no_proxy) {
                (None, _) => Mode::Direct,
                (Some(ProxyUrl(url)), None) => Mode::Always(Endpoint::new(url)?),
                (Some(ProxyUrl(url)), Some(no_proxy)) => {
                    let endpoint = Endpoint::new(url)?;
                    Mode::Rules {
                        http: Some(Ok(endpoint.clone())),
                        https: Some(Ok(endpoint)),
                        no_proxy: NoProxy::parse(no_proxy),
                        cgi: false,
                    }
                }
            }
        };
        let mut connect_headers = Vec::new();
        for (name, values) in options.connect_header {
            // Checked at load.
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            for value in values {
                let mut value = HeaderValue::from_str(&value.0).map_err(|e| e.to_string())?;
                value.set_sensitive(true);
                connect_headers.push((name.clone(), value));
            }
        }
        Ok(Self {
            mode,
            connect_headers,
        })
    }

    /// The proxy a request for `url` goes through, `host` standing for the
    /// URL's host (the resolved address when the prober put it there).
    pub(crate) fn select(&self, url: &Url, host: &str) -> Result<Option<&Endpoint>, String> {
        match &self.mode {
            Mode::Direct => Ok(None),
            Mode::Always(endpoint) => Ok(Some(endpoint)),
            Mode::Rules {
                http,
                https,
                no_proxy,
                cgi,
            } => {
                let proxy = if url.is_https() {
                    https.as_ref()
                } else {
                    if http.is_some() && *cgi {
                        return Err("refusing to use HTTP_PROXY value in CGI environment; see golang.org/s/cgihttpproxy".into());
                    }
                    http.as_ref()
                };
                let Some(proxy) = proxy else {
                    return Ok(None);
                };
                let port = url.port()?;
                if !no_proxy.use_proxy(host, port) {
                    return Ok(None);
                }
                proxy.as_ref().map(Some).map_err(Clone::clone)
            }
        }
    }
}

/// x/net's `parseProxy`: a URL, or `host[:port]` taken as `http://`.
fn parse_env_proxy(value: &str) -> Result<Endpoint, String> {
    let scheme = value.split_once("://").map(|(s, _)| s);
    let url = match scheme {
        Some("http") => Url::parse(value),
        Some(other @ ("https" | "socks5")) => Err(format!(
            "{other}:// proxies are not supported by lookout: only http:// proxies are"
        )),
        _ => Url::parse(&format!("http://{value}")),
    };
    url.and_then(|url| Endpoint::new(&url))
        .map_err(|e| format!("proxy from the environment: {e}"))
}

/// One entry of a `no_proxy` list.
#[derive(Debug, Clone)]
enum Exclusion {
    All,
    Net(IpNet),
    Ip(IpAddr, Option<u16>),
    /// `.suffix` (with its dot), the name itself too unless written with a dot.
    Domain {
        suffix: String,
        exact_too: bool,
        port: Option<u16>,
    },
}

/// x/net's `httpproxy` `NoProxy`: errors are ignored, as there.
#[derive(Debug, Clone, Default)]
struct NoProxy(Vec<Exclusion>);

impl NoProxy {
    fn parse(list: &str) -> Self {
        let mut exclusions = Vec::new();
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                return Self(vec![Exclusion::All]);
            }
            if entry.contains('/') {
                // Go's ParseCIDR: the address must be canonical enough to parse.
                if let Ok(net) = entry.parse::<IpNet>() {
                    exclusions.push(Exclusion::Net(net.trunc()));
                }
                continue;
            }
            // IPv4:port, [IPv6]:port, name:port (a port that is no number
            // never equals a canonical port, so the entry matches nothing).
            let (host, port) = match split_go_host_port(&entry) {
                Some((host, port)) => (host, Some(port.parse::<u16>().unwrap_or(0))),
                None => (entry.as_str(), None),
            };
            if host.is_empty() {
                continue;
            }
            if let Ok(ip) = host.parse::<IpAddr>() {
                exclusions.push(Exclusion::Ip(ip, port));
                continue;
            }
            let host = host
                .strip_prefix('*')
                .filter(|h| h.starts_with('.'))
                .unwrap_or(host);
            let (suffix, exact_too) = match host.strip_prefix('.') {
                Some(_) => (host.to_owned(), false),
                None => (format!(".{host}"), true),
            };
            exclusions.push(Exclusion::Domain {
                suffix,
                exact_too,
                port,
            });
        }
        Self(exclusions)
    }

    /// x/net's `useProxy` for `host` (no brackets) and the canonical port.
    fn use_proxy(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
            return false;
        }
        let port_ok = |want: &Option<u16>| want.is_none_or(|p| p == port);
        !self.0.iter().any(|exclusion| match exclusion {
            Exclusion::All => true,
            Exclusion::Net(net) => {
                ip.is_some_and(|ip| net.contains(&ip) || net_contains_mapped(net, ip))
            }
            Exclusion::Ip(want, wanted_port) => {
                ip.is_some_and(|ip| ip == want.to_canonical()) && port_ok(wanted_port)
            }
            Exclusion::Domain {
                suffix,
                exact_too,
                port: wanted_port,
            } => {
                (host.ends_with(suffix.as_str()) || (*exact_too && host == suffix[1..]))
                    && port_ok(wanted_port)
            }
        })
    }
}

/// Go's `IPNet.Contains` takes an IPv4 address and its IPv4-mapped IPv6
/// spelling as one.
fn net_contains_mapped(net: &IpNet, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpNet::V6(v6), IpAddr::V4(v4)) => v6.contains(&v4.to_ipv6_mapped()),
        _ => false,
    }
}

/// Go's `net.SplitHostPort` for a no_proxy entry: `host:port`, `[v6]:port`.
fn split_go_host_port(entry: &str) -> Option<(&str, &str)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port));
    }
    let (host, port) = entry.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

/// A proxy connection a hop goes through: the proxy and the addresses its
/// name resolved to.
#[derive(Debug, Clone)]
pub(crate) struct Via {
    pub(crate) endpoint: Endpoint,
    ips: Vec<IpAddr>,
}

impl Via {
    /// Resolves the proxy's name (a denied name is not looked up). Returns
    /// it and the lookup time.
    pub(crate) async fn resolve(
        endpoint: &Endpoint,
        policy: &TargetPolicy,
        ticket: &Ticket,
    ) -> Result<(Self, std::time::Duration), String> {
        let start = std::time::Instant::now();
        policy
            .check_name(&endpoint.host)
            .map_err(|e| format!("proxy: {e}"))?;
        let ips = resolve::lookup(&endpoint.host, ticket)
            .await
            .map_err(|e| format!("proxy: {e}"))?;
        Ok((
            Self {
                endpoint: endpoint.clone(),
                ips,
            },
            start.elapsed(),
        ))
    }

    /// Connects to the proxy: its addresses in turn, as Go's dialer tries
    /// them, each judged by the policy before a packet is sent to it.
    pub(crate) async fn dial(
        &self,
        policy: &TargetPolicy,
    ) -> Result<(TcpStream, SocketAddr), String> {
        dial(&self.endpoint.host, &self.ips, self.endpoint.port, policy)
            .await
            .map_err(|e| format!("proxy: {e}"))
    }

    /// `Proxy-Authorization` for requests sent through the proxy.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.endpoint.authorization.as_ref()
    }

    /// Asks the proxy for a tunnel to `authority` (`host:port`) on `stream`;
    /// any answer but 200 fails, with the proxy's reason.
    pub(crate) async fn connect(
        &self,
        stream: &mut TcpStream,
        authority: &str,
        proxies: &Proxies,
    ) -> Result<(), String> {
        let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        let user_agent = proxies
            .connect_headers
            .iter()
            .any(|(name, _)| name == http::header::USER_AGENT);
        if !user_agent {
            head.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
        }
        let mut bytes = head.into_bytes();
        let mut field = |name: &str, value: &HeaderValue| {
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        };
        for (name, value) in &proxies.connect_headers {
            // Go writes the Host itself; the URL's credentials replace a
            // configured Proxy-Authorization.
            let replaced =
                name == http::header::PROXY_AUTHORIZATION && self.endpoint.authorization.is_some();
            if name != http::header::HOST && !replaced {
                field(name.as_str(), value);
            }
        }
        if let Some(value) = &self.endpoint.authorization {
            field("Proxy-Authorization", value);
        }
        bytes.extend_from_slice(b"\r\n");
        stream
            .write_all(&bytes)
            .await
            .map_err(|e| format!("proxyconnect: {e}"))?;
        read_connect_response(stream).await
    }
}

/// Connects to the first of `ips` that the policy allows and that accepts;
/// a denied address is skipped, never sent a packet.
pub(crate) async fn dial(
    host: &str,
    ips: &[IpAddr],
    port: u16,
    policy: &TargetPolicy,
) -> Result<(TcpStream, SocketAddr), String> {
    let mut failure = format!("no address for {host}");
    for &ip in ips {
        if let Err(reason) = policy.check(host, ip) {
            failure = reason;
            continue;
        }
        let addr = SocketAddr::new(ip, port);
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, addr));
            }
            Err(e) => failure = format!("connecting to {addr}: {e}"),
        }
    }
    Err(failure)
}

/// Reads the proxy's answer to CONNECT up to the end of its head.
async fn read_connect_response(stream: &mut TcpStream) -> Result<(), String> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("proxyconnect: {e}"))?;
        if n == 0 {
            return Err("proxyconnect: the proxy closed the connection before answering".into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > MAX_CONNECT_HEAD {
            return Err(format!(
                "proxyconnect: the proxy's answer to CONNECT is longer than {MAX_CONNECT_HEAD} bytes"
            ));
        }
    };
    let status_line = head
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
        .unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code, reason) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "proxyconnect: malformed answer to CONNECT: {status_line:?}"
        ));
    }
    if code != "200" {
        // Go's error is the status text.
        return Err(format!("proxyconnect: {code} {reason}"));
    }
    // The client speaks first in the tunnel (TLS): nothing may follow yet.
    if head.len() > end {
        return Err("proxyconnect: the proxy sent data after its answer to CONNECT".into());
    }
    Ok(())
}

/// The `host:port` a CONNECT asks for (Go's `canonicalAddr`).
pub(crate) fn connect_authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `host[:port]` of a URL with the host replaced by `ip` (blackbox_exporter
/// puts the resolved address in the target URL; the port stays as written).
pub(crate) fn with_ip(authority: &str, ip: IpAddr) -> String {
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    match split_host_port(authority).1 {
        Some(port) if !port.is_empty() => format!("{host}:{port}"),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matches_as_x_net_httpproxy_does() {
        let list = NoProxy::parse(
            " Internal.example, .sub.example,*.star.example, 10.0.0.0/8, 192.168.1.1:8080, [2001:db8::1]:443, other.example:81, *.",
        );
        for (host, port, proxied) in [
            ("localhost", 80, false),
            ("127.0.0.5", 80, false),
            ("::1", 80, false),
            ("::ffff:127.0.0.1", 80, false),
            ("internal.example", 80, false),
            ("a.internal.example", 80, false),
            ("xinternal.example", 80, true),
            ("sub.example", 80, true),
            ("a.sub.example", 80, false),
            ("star.example", 80, true),
            ("a.star.example", 80, false),
            ("10.1.2.3", 80, false),
            ("::ffff:10.1.2.3", 80, false),
            ("11.1.2.3", 80, true),
            ("192.168.1.1", 8080, false),
            ("192.168.1.1", 80, true),
            ("2001:db8::1", 443, false),
            ("2001:db8::1", 80, true),
            ("other.example", 81, false),
            ("other.example", 80, true),
            ("public.example", 80, true),
        ] {
            assert_eq!(list.use_proxy(host, port), proxied, "{host}:{port}");
        }
        assert!(!NoProxy::parse("a, *").use_proxy("anything.example", 80));
        assert!(NoProxy::parse("").use_proxy("anything.example", 80));
    }

    #[test]
    fn proxy_url_alone_proxies_even_loopback_and_with_no_proxy_it_does_not() {
        let url: ProxyUrl = "http://u:p%40ss@proxy.example:3128".parse().unwrap();
        let headers = Default::default();
        let options = |no_proxy| ProxyOptions {
            url: Some(&url),
            no_proxy,
            from_environment: false,
            connect_header: &headers,
        };
        let target = Url::parse("http://127.0.0.1:8080/").unwrap();
        let always = Proxies::new(options(None)).unwrap();
        let endpoint = always.select(&target, "127.0.0.1").unwrap().unwrap();
        assert_eq!(
            (endpoint.host.as_str(), endpoint.port),
            ("proxy.example", 3128)
        );
        assert_eq!(
            endpoint.authorization.as_ref().unwrap(),
            &format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("u:p@ss")
            )
        );
        let rules = Proxies::new(options(Some("example.org"))).unwrap();
        assert!(rules.select(&target, "127.0.0.1").unwrap().is_none());
        let public = Url::parse("https://www.example.com/").unwrap();
        assert!(rules.select(&public, "www.example.com").unwrap().is_some());
        let excluded = Url::parse("https://www.example.org/").unwrap();
        assert!(rules
            .select(&excluded, "www.example.org")
            .unwrap()
            .is_none());
    }

    #[test]
    fn environment_proxies_are_read_as_x_net_reads_them() {
        assert_eq!(parse_env_proxy("proxy.example:3128").unwrap().port, 3128);
        assert_eq!(parse_env_proxy("http://proxy.example").unwrap().port, 80);
        assert!(parse_env_proxy("https://proxy.example")
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn addresses_are_written_as_go_writes_them() {
        assert_eq!(connect_authority("::1", 443), "[::1]:443");
        assert_eq!(connect_authority("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(
            with_ip("example.org:8080", "::1".parse().unwrap()),
            "[::1]:8080"
        );
        assert_eq!(
            with_ip("example.org", "10.0.0.1".parse().unwrap()),
            "10.0.0.1"
        );
        assert_eq!(with_ip("[::2]:", "10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
