//! The modules as blackbox_exporter 0.28 prints them: `GET /config` (the
//! whole file, yaml.v3) and a debug probe's "Module configuration" (one
//! module, yaml.v2). Each block is laid out as the Go struct it mirrors
//! (`config.Module`, `HTTPProbe` with prometheus/common's
//! `HTTPClientConfig` inline, `TLSConfig`, ...): its keys in field order,
//! `omitempty` leaving out zero values and zero blocks, every default
//! filled in as blackbox_exporter fills it, secrets as `<secret>`.
//!
//! What lookout's parsed configuration cannot tell apart is printed as
//! blackbox_exporter prints the default: a value equal to Go's zero-value
//! default (`preferred_ip_protocol: ip6`, `method: GET`, `query_type: ANY`,
//! `query_class: IN`, `transport_protocol: udp`) is left out even when the
//! file writes it. Paths are printed resolved against the file's
//! directory, as lookout uses them. `min_version` and `max_version` print
//! as Go's numbers (771 is TLS 1.2), as blackbox_exporter prints them.

use std::time::Duration;

use super::{
    dns::{RrValidator, Transport, CLASSES, RCODES, TYPES},
    go_yaml::{self, Dialect, Node},
    http::{HeaderMatch, HttpVersion},
    http_auth::{OAuth2, ProxyOptions},
    query_response::{Label, QueryResponse},
    tls::TlsVersion,
    values::{IpProtocol, Secret},
    DnsProbe, GrpcProbe, HttpProbe, IcmpProbe, Module, ProberKind, TcpProbe, TlsConfig, UnixProbe,
};

/// `GET /config`: every module, as blackbox_exporter's `/config` prints them.
pub(crate) fn config_yaml<'a>(modules: impl IntoIterator<Item = (&'a str, &'a Module)>) -> String {
    let modules = modules
        .into_iter()
        .map(|(name, module)| (name.to_owned(), module_node(module, None)))
        .collect();
    go_yaml::to_string(
        &Node::Struct(vec![("modules", Node::Map(modules))]),
        Dialect::V3,
    )
}

/// A debug probe's "Module configuration": the module as it probed, with
/// the `hostname` parameter as its Host header (http only), as
/// blackbox_exporter prints it.
pub(crate) fn module_yaml(module: &Module, hostname: Option<&str>) -> String {
    go_yaml::to_string(&module_node(module, hostname), Dialect::V2)
}

/// A Go struct's fields as yaml writes them; `omitempty` fields whose value
/// is Go's zero value are left out, and a struct whose every field is zero
/// is itself zero (left out where it is `omitempty`).
#[derive(Default)]
struct Fields {
    fields: Vec<(&'static str, Node)>,
    zero: bool,
}

impl Fields {
    fn new() -> Self {
        Self {
            fields: Vec::new(),
            zero: true,
        }
    }

    /// An `omitempty` field; `None` is its zero value.
    fn omitempty(mut self, name: &'static str, value: Option<Node>) -> Self {
        if let Some(node) = value {
            self.fields.push((name, node));
            self.zero = false;
        }
        self
    }

    /// A field without `omitempty`: always written.
    fn always(mut self, name: &'static str, node: Node, zero: bool) -> Self {
        self.fields.push((name, node));
        self.zero &= zero;
        self
    }

    /// prometheus/common's `ProxyConfig`, inline: `proxy_url` with its
    /// password as `xxxxx`, and every `proxy_connect_header` value secret.
    fn proxy(self, proxy: ProxyOptions<'_>) -> Self {
        let headers: Vec<(String, Node)> = proxy
            .connect_header
            .iter()
            .map(|(name, values)| {
                let values = values.iter().map(secret_item).collect();
                (name.clone(), Node::Seq(values))
            })
            .collect();
        self.omitempty(
            "proxy_url",
            proxy.url.map(|url| Node::Str(url.0.redacted())),
        )
        .omitempty("no_proxy", proxy.no_proxy.and_then(text))
        .omitempty("proxy_from_environment", flag(proxy.from_environment))
        .omitempty(
            "proxy_connect_header",
            (!headers.is_empty()).then_some(Node::Map(headers)),
        )
    }

    /// The struct, `None` when every field is zero.
    fn nonzero(self) -> Option<Node> {
        (!self.zero).then_some(Node::Struct(self.fields))
    }

    /// The struct behind a non-nil pointer: written even when zero.
    fn pointer(self) -> Option<Node> {
        Some(Node::Struct(self.fields))
    }
}

fn text(value: &str) -> Option<Node> {
    (!value.is_empty()).then(|| Node::Str(value.to_owned()))
}

fn flag(value: bool) -> Option<Node> {
    value.then(|| Node::Plain("true".to_owned()))
}

fn boolean(value: bool) -> Node {
    Node::Plain(value.to_string())
}

fn int(value: i64) -> Option<Node> {
    (value != 0).then(|| Node::Plain(value.to_string()))
}

fn list<T>(items: &[T], each: impl Fn(&T) -> Node) -> Option<Node> {
    (!items.is_empty()).then(|| Node::Seq(items.iter().map(each).collect()))
}

/// A `config.Secret`: `<secret>` unless empty.
fn secret(value: Option<&Secret>) -> Option<Node> {
    value
        .filter(|s| !s.0.is_empty())
        .map(|_| Node::Str("<secret>".to_owned()))
}

/// A `config.Secret` in a list or map, where nothing leaves it out: an
/// empty one marshals to `null`.
fn secret_item(value: &Secret) -> Node {
    if value.0.is_empty() {
        Node::Plain("null".to_owned())
    } else {
        Node::Str("<secret>".to_owned())
    }
}

fn path(value: Option<&std::path::Path>) -> Option<Node> {
    value.and_then(|p| text(&p.to_string_lossy()))
}

/// `preferred_ip_protocol`: Go's default is empty (read as ip6).
fn ip_protocol(value: IpProtocol) -> Option<Node> {
    (value == IpProtocol::Ip4).then(|| Node::Str("ip4".to_owned()))
}

fn module_node(module: &Module, hostname: Option<&str>) -> Node {
    let prober = module.prober.name();
    // blackbox_exporter sets the parameter as the Host header of http probes.
    let host = hostname.filter(|_| module.prober == ProberKind::Http);
    let timeout = module.timeout.0;
    Fields::new()
        .omitempty("prober", text(prober))
        .omitempty(
            "timeout",
            (!timeout.is_zero()).then(|| Node::Str(go_duration(timeout))),
        )
        .omitempty("http", http_node(&module.http, host))
        .omitempty("tcp", tcp_node(&module.tcp))
        .omitempty("icmp", icmp_node(&module.icmp))
        .omitempty("dns", dns_node(&module.dns))
        .omitempty("grpc", grpc_node(&module.grpc))
        .omitempty("unix", unix_node(&module.unix))
        .pointer()
        .unwrap_or(Node::Struct(Vec::new()))
}

fn http_node(http: &HttpProbe, host: Option<&str>) -> Option<Node> {
    let versions = |v: &HttpVersion| {
        Node::Str(
            match v {
                HttpVersion::Http10 => "HTTP/1.0",
                HttpVersion::Http11 => "HTTP/1.1",
                HttpVersion::Http2 => "HTTP/2.0",
                HttpVersion::Http3 => "HTTP/3.0",
            }
            .to_owned(),
        )
    };
    let mut headers: Vec<(String, Node)> = http
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Node::Str(v.clone())))
        .collect();
    if let Some(host) = host {
        headers.retain(|(k, _)| k != "Host");
        headers.push(("Host".to_owned(), Node::Str(host.to_owned())));
    }
    let method = http.method.0.as_str();
    let patterns = |p: &super::Pattern| Node::Str(p.as_str().to_owned());
    // prometheus/common moves bearer_token(_file) into `authorization`,
    // and writes its `type` trimmed, `Bearer` when empty.
    let authorization = match (
        &http.authorization,
        &http.bearer_token,
        &http.bearer_token_file,
    ) {
        (Some(auth), _, _) => Fields::new()
            .omitempty("type", text(auth.scheme()))
            .omitempty("credentials", secret(auth.credentials.as_ref()))
            .omitempty("credentials_file", path(auth.credentials_file.as_deref()))
            .pointer(),
        (None, Some(token), _) if !token.0.is_empty() => Fields::new()
            .omitempty("type", text("Bearer"))
            .omitempty("credentials", secret(Some(token)))
            .pointer(),
        (None, _, Some(file)) => Fields::new()
            .omitempty("type", text("Bearer"))
            .omitempty("credentials_file", path(Some(file)))
            .pointer(),
        _ => None,
    };
    let basic_auth = http.basic_auth.as_ref().and_then(|auth| {
        Fields::new()
            .omitempty("username", text(&auth.username))
            .omitempty("username_file", path(auth.username_file.as_deref()))
            .omitempty("password", secret(auth.password.as_ref()))
            .omitempty("password_file", path(auth.password_file.as_deref()))
            .pointer()
    });
    let http_headers: Vec<(String, Node)> = http
        .http_headers
        .iter()
        .map(|(name, header)| {
            let node = Fields::new()
                .omitempty("values", list(&header.values, |v| Node::Str(v.clone())))
                .omitempty("secrets", list(&header.secrets, secret_item))
                .omitempty(
                    "files",
                    list(&header.files, |f| {
                        Node::Str(f.to_string_lossy().into_owned())
                    }),
                )
                .pointer()
                .unwrap_or(Node::Struct(Vec::new()));
            (name.clone(), node)
        })
        .collect();
    let follow = http.follows_redirects();
    Fields::new()
        .omitempty(
            "valid_status_codes",
            list(&http.valid_status_codes, |c| Node::Plain(c.to_string())),
        )
        .omitempty(
            "valid_http_versions",
            list(&http.valid_http_versions, versions),
        )
        .omitempty(
            "preferred_ip_protocol",
            ip_protocol(http.preferred_ip_protocol),
        )
        .omitempty("ip_protocol_fallback", flag(http.ip_protocol_fallback))
        .omitempty(
            "skip_resolve_phase_with_proxy",
            flag(http.skip_resolve_phase_with_proxy),
        )
        // `no_follow_redirects` is read into `follow_redirects` and cleared.
        .omitempty("fail_if_ssl", flag(http.fail_if_ssl))
        .omitempty("fail_if_not_ssl", flag(http.fail_if_not_ssl))
        .omitempty(
            "method",
            (method != "GET").then(|| Node::Str(method.to_owned())),
        )
        .omitempty(
            "headers",
            (!headers.is_empty()).then_some(Node::Map(headers)),
        )
        .omitempty(
            "fail_if_body_matches_regexp",
            list(&http.fail_if_body_matches_regexp, patterns),
        )
        .omitempty(
            "fail_if_body_not_matches_regexp",
            list(&http.fail_if_body_not_matches_regexp, patterns),
        )
        .omitempty(
            "fail_if_header_matches",
            list(&http.fail_if_header_matches, header_match),
        )
        .omitempty(
            "fail_if_header_not_matches",
            list(&http.fail_if_header_not_matches, header_match),
        )
        .omitempty("body", http.body.as_deref().and_then(text))
        .omitempty("body_file", path(http.body_file.as_deref()))
        // prometheus/common's HTTPClientConfig, inline.
        .omitempty("basic_auth", basic_auth)
        .omitempty("authorization", authorization)
        .omitempty("oauth2", http.oauth2.as_ref().and_then(oauth2_node))
        .omitempty("tls_config", tls_node(&http.tls_config))
        .always("follow_redirects", boolean(follow), !follow)
        .always(
            "enable_http2",
            boolean(http.enable_http2),
            !http.enable_http2,
        )
        .proxy(http.proxy())
        .omitempty(
            "http_headers",
            (!http_headers.is_empty()).then_some(Node::Map(http_headers)),
        )
        // blackbox_exporter's own fields again.
        .omitempty("compression", text(&http.compression.to_string()))
        .omitempty(
            "body_size_limit",
            (http.body_size_limit.0 != 0).then(|| Node::Str(base2_bytes(http.body_size_limit.0))),
        )
        // The last field of 0.28's HTTPProbe, omitempty.
        .omitempty("enable_http3", flag(http.enable_http3))
        .nonzero()
}

/// prometheus/common's `OAuth2` (a non-nil pointer: written even when empty).
fn oauth2_node(oauth2: &OAuth2) -> Option<Node> {
    let params: Vec<(String, Node)> = oauth2
        .endpoint_params
        .iter()
        .map(|(k, v)| (k.clone(), Node::Str(v.clone())))
        .collect();
    Fields::new()
        .omitempty("client_id", text(&oauth2.client_id))
        .omitempty("client_secret", secret(oauth2.client_secret.as_ref()))
        .omitempty(
            "client_secret_file",
            path(oauth2.client_secret_file.as_deref()),
        )
        .omitempty("grant_type", oauth2.grant_type.as_deref().and_then(text))
        .omitempty("scopes", list(&oauth2.scopes, |s| Node::Str(s.clone())))
        // Go keeps the text as written; lookout prints the parsed URL back
        // (the same text for any ordinary URL) and never its password.
        .omitempty(
            "token_url",
            oauth2
                .token_url
                .as_ref()
                .map(|url| Node::Str(url.0.redacted())),
        )
        .omitempty(
            "endpoint_params",
            (!params.is_empty()).then_some(Node::Map(params)),
        )
        .omitempty("tls_config", tls_node(&oauth2.tls_config))
        .proxy(oauth2.proxy())
        .pointer()
}

fn header_match(matcher: &HeaderMatch) -> Node {
    Fields::new()
        .omitempty("header", text(&matcher.header))
        .omitempty("regexp", text(matcher.regexp.as_str()))
        .omitempty("allow_missing", flag(matcher.allow_missing))
        .pointer()
        .unwrap_or(Node::Struct(Vec::new()))
}

/// prometheus/common's `TLSConfig`.
fn tls_node(tls: &TlsConfig) -> Option<Node> {
    let version = |v: Option<TlsVersion>| {
        v.map(|v| {
            Node::Plain(
                match v {
                    TlsVersion::Tls10 => "769",
                    TlsVersion::Tls11 => "770",
                    TlsVersion::Tls12 => "771",
                    TlsVersion::Tls13 => "772",
                }
                .to_owned(),
            )
        })
    };
    // prometheus/common's TLSConfig order: the inline PEM first.
    Fields::new()
        .omitempty("ca", tls.ca.as_deref().and_then(text))
        .omitempty("cert", tls.cert.as_deref().and_then(text))
        .omitempty("key", secret(tls.key.as_ref()))
        .omitempty("ca_file", path(tls.ca_file.as_deref()))
        .omitempty("cert_file", path(tls.cert_file.as_deref()))
        .omitempty("key_file", path(tls.key_file.as_deref()))
        .omitempty("server_name", tls.server_name.as_deref().and_then(text))
        .always(
            "insecure_skip_verify",
            boolean(tls.insecure_skip_verify),
            !tls.insecure_skip_verify,
        )
        .omitempty("min_version", version(tls.min_version))
        .omitempty("max_version", version(tls.max_version))
        .nonzero()
}

fn tcp_node(tcp: &TcpProbe) -> Option<Node> {
    Fields::new()
        .omitempty(
            "preferred_ip_protocol",
            ip_protocol(tcp.preferred_ip_protocol),
        )
        .omitempty("ip_protocol_fallback", flag(tcp.ip_protocol_fallback))
        .omitempty(
            "source_ip_address",
            tcp.source_ip_address.map(|ip| Node::Str(ip.to_string())),
        )
        .omitempty("query_response", list(&tcp.query_response, query_response))
        .omitempty("tls", flag(tcp.tls))
        .omitempty("tls_config", tls_node(&tcp.tls_config))
        .nonzero()
}

/// blackbox_exporter's `QueryResponse`: `expect` is a `Regexp`, whose
/// `MarshalYAML` gives `null` for an empty one; `expect_bytes` and `send`
/// are Go strings (any bytes: go-yaml writes what is not UTF-8 as `!!binary`).
fn query_response(step: &QueryResponse) -> Node {
    let label = |label: &Label| {
        Fields::new()
            .omitempty("name", text(&label.name))
            .omitempty("value", text(&label.value))
            .pointer()
            .unwrap_or(Node::Struct(Vec::new()))
    };
    Fields::new()
        .omitempty(
            "expect",
            step.expect.as_ref().map(|p| match p.as_str() {
                "" => Node::Plain("null".to_owned()),
                p => Node::Str(p.to_owned()),
            }),
        )
        .omitempty(
            "expect_bytes",
            (!step.expect_bytes.is_empty()).then(|| Node::Bytes(step.expect_bytes.0.clone())),
        )
        .omitempty(
            "labels",
            step.labels.as_deref().and_then(|l| list(l, label)),
        )
        .omitempty(
            "send",
            (!step.send.is_empty()).then(|| Node::Bytes(step.send.0.clone())),
        )
        .omitempty("starttls", flag(step.starttls))
        .pointer()
        .unwrap_or(Node::Struct(Vec::new()))
}

fn unix_node(unix: &UnixProbe) -> Option<Node> {
    Fields::new()
        .omitempty("query_response", list(&unix.query_response, query_response))
        .omitempty("tls", flag(unix.tls))
        .omitempty("tls_config", tls_node(&unix.tls_config))
        .nonzero()
}

fn icmp_node(icmp: &IcmpProbe) -> Option<Node> {
    let default = IcmpProbe::default();
    Fields::new()
        .omitempty(
            "preferred_ip_protocol",
            ip_protocol(icmp.preferred_ip_protocol),
        )
        .omitempty("ip_protocol_fallback", flag(icmp.ip_protocol_fallback))
        .omitempty(
            "source_ip_address",
            icmp.source_ip_address.map(|ip| Node::Str(ip.to_string())),
        )
        .omitempty("payload_size", int(i64::from(icmp.payload_size)))
        .omitempty("dont_fragment", flag(icmp.dont_fragment))
        .omitempty("ttl", int(i64::from(icmp.ttl)))
        // lookout's own keys, printed when set to something else than their default.
        .omitempty(
            "packets",
            (icmp.packets != default.packets).then(|| Node::Plain(icmp.packets.to_string())),
        )
        .omitempty(
            "interval",
            (icmp.interval != default.interval)
                .then(|| Node::Str(super::PromDuration(icmp.interval).to_string())),
        )
        .nonzero()
}

fn dns_node(dns: &DnsProbe) -> Option<Node> {
    let name = |table: &[(u16, &str)], code: u16| {
        table
            .iter()
            .find(|(c, _)| *c == code)
            .map_or_else(|| code.to_string(), |(_, n)| (*n).to_owned())
    };
    let default = DnsProbe::default();
    Fields::new()
        .omitempty(
            "preferred_ip_protocol",
            ip_protocol(dns.preferred_ip_protocol),
        )
        .omitempty("ip_protocol_fallback", flag(dns.ip_protocol_fallback))
        .omitempty("dns_over_tls", flag(dns.dns_over_tls))
        .omitempty("tls_config", tls_node(&dns.tls_config))
        .omitempty(
            "source_ip_address",
            dns.source_ip_address.map(|ip| Node::Str(ip.to_string())),
        )
        .omitempty(
            "transport_protocol",
            (dns.transport_protocol == Transport::Tcp).then(|| Node::Str("tcp".to_owned())),
        )
        .omitempty(
            "query_class",
            (dns.query_class != default.query_class)
                .then(|| Node::Str(name(CLASSES, dns.query_class))),
        )
        .omitempty("query_name", text(&dns.query_name))
        .omitempty(
            "query_type",
            (dns.query_type != default.query_type).then(|| Node::Str(name(TYPES, dns.query_type))),
        )
        .omitempty("recursion_desired", flag(dns.recursion_desired))
        .omitempty(
            "valid_rcodes",
            dns.valid_rcodes
                .as_deref()
                .and_then(|codes| list(codes, |c| Node::Str(name(RCODES, *c)))),
        )
        .omitempty("validate_answer_rrs", rr_node(&dns.validate_answer_rrs))
        .omitempty(
            "validate_authority_rrs",
            rr_node(&dns.validate_authority_rrs),
        )
        .omitempty(
            "validate_additional_rrs",
            rr_node(&dns.validate_additional_rrs),
        )
        .nonzero()
}

fn rr_node(rules: &RrValidator) -> Option<Node> {
    let patterns = |p: &super::Pattern| Node::Str(p.as_str().to_owned());
    Fields::new()
        .omitempty(
            "fail_if_matches_regexp",
            list(&rules.fail_if_matches_regexp, patterns),
        )
        .omitempty(
            "fail_if_all_match_regexp",
            list(&rules.fail_if_all_match_regexp, patterns),
        )
        .omitempty(
            "fail_if_not_matches_regexp",
            list(&rules.fail_if_not_matches_regexp, patterns),
        )
        .omitempty(
            "fail_if_none_matches_regexp",
            list(&rules.fail_if_none_matches_regexp, patterns),
        )
        .nonzero()
}

fn grpc_node(grpc: &GrpcProbe) -> Option<Node> {
    let metadata: Vec<(String, Node)> = grpc
        .metadata
        .0
        .iter()
        .map(|(k, values)| {
            let values = values.iter().map(|v| Node::Str(v.clone())).collect();
            (k.clone(), Node::Seq(values))
        })
        .collect();
    Fields::new()
        .omitempty("service", text(&grpc.service))
        .omitempty("tls", flag(grpc.tls))
        .omitempty("tls_config", tls_node(&grpc.tls_config))
        .omitempty("ip_protocol_fallback", flag(grpc.ip_protocol_fallback))
        .omitempty(
            "preferred_ip_protocol",
            ip_protocol(grpc.preferred_ip_protocol),
        )
        .omitempty(
            "metadata",
            (!metadata.is_empty()).then_some(Node::Map(metadata)),
        )
        .nonzero()
}

/// Go's `time.Duration.String`: `1m30s`, `1h0m0s`, `1.5s`, `500ms`, `0s`.
pub(crate) fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    // `digits` of fraction below the unit, trailing zeros dropped.
    let with_fraction = |value: u128, digits: u32, unit: &str| {
        let scale = 10_u128.pow(digits);
        let (whole, fraction) = (value / scale, value % scale);
        if fraction == 0 {
            format!("{whole}{unit}")
        } else {
            let fraction = format!("{fraction:0width$}", width = digits as usize);
            format!("{whole}.{}{unit}", fraction.trim_end_matches('0'))
        }
    };
    match nanos {
        0 => "0s".to_owned(),
        1..=999 => format!("{nanos}ns"),
        1_000..=999_999 => with_fraction(nanos, 3, "µs"),
        1_000_000..=999_999_999 => with_fraction(nanos, 6, "ms"),
        _ => {
            let seconds = with_fraction(nanos % 60_000_000_000, 9, "s");
            let minutes = nanos / 60_000_000_000;
            match minutes {
                0 => seconds,
                1..=59 => format!("{minutes}m{seconds}"),
                _ => format!("{}h{}m{seconds}", minutes / 60, minutes % 60),
            }
        }
    }
}

/// alecthomas/units' `Base2Bytes.String`: `1MiB`, `1MiB512KiB`, `25B`.
fn base2_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut parts = Vec::new();
    let mut rest = bytes;
    for unit in UNITS {
        if !rest.is_multiple_of(1024) || (unit == "B" && rest == 0) {
            parts.push(format!("{}{unit}", rest % 1024));
        }
        rest /= 1024;
        if rest == 0 {
            break;
        }
    }
    parts.reverse();
    parts.concat()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    /// The file both `show.*.txt` files were printed from, by Debian's
    /// blackbox_exporter 0.23 (`/config`, and `/probe?debug=true` of each
    /// module): the oracle's own output, byte for byte.
    const FILE: &str = include_str!("testdata/show.yml");

    fn config() -> Config {
        Config::parse(FILE, "show.yml", Path::new("/etc/lookout")).unwrap()
    }

    impl Config {
        /// The whole file, as `/config` prints it.
        fn to_yaml(&self) -> String {
            config_yaml(self.modules.iter().map(|(k, v)| (k.as_str(), v)))
        }
    }

    /// The first line where two texts differ, for a readable failure.
    fn first_difference(ours: &str, theirs: &str) -> String {
        let line = ours
            .lines()
            .zip(theirs.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| ours.lines().count().min(theirs.lines().count()));
        format!(
            "line {}:\n  lookout:  {:?}\n  blackbox: {:?}",
            line + 1,
            ours.lines().nth(line),
            theirs.lines().nth(line)
        )
    }

    #[test]
    fn config_prints_as_blackbox_exporters_config_page() {
        let ours = config().to_yaml();
        let theirs = include_str!("testdata/show.config.txt");
        assert!(ours == theirs, "{}", first_difference(&ours, theirs));
    }

    #[test]
    fn a_module_prints_as_blackbox_exporters_debug_output() {
        let config = config();
        for (name, theirs) in [
            ("full", include_str!("testdata/show.debug.full.txt")),
            ("q", include_str!("testdata/show.debug.q.txt")),
            ("long", include_str!("testdata/show.debug.long.txt")),
            ("dnsx", include_str!("testdata/show.debug.dnsx.txt")),
            ("bfile", include_str!("testdata/show.debug.bfile.txt")),
            ("grpc", include_str!("testdata/show.debug.grpc.txt")),
            ("tcp", include_str!("testdata/show.debug.tcp.txt")),
        ] {
            let ours = module_yaml(&config.modules[name], None);
            assert!(
                ours == theirs,
                "{name}: {}",
                first_difference(&ours, theirs)
            );
        }
    }

    #[test]
    fn secrets_print_as_go_prints_a_config_secret() {
        let config = config();
        let text = config.to_yaml();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("password: p\n"), "{text}");
        assert!(text.contains("credentials: <secret>"), "{text}");
        assert!(text.contains("password: <secret>"), "{text}");
    }

    #[test]
    fn the_hostname_parameter_becomes_the_host_header() {
        let config = config();
        let text = module_yaml(&config.modules["http_2xx"], Some("example.org"));
        assert!(
            text.contains("  headers:\n    Host: example.org\n"),
            "{text}"
        );
        let text = module_yaml(&config.modules["tcp"], Some("example.org"));
        assert!(!text.contains("example.org"), "{text}");
    }

    /// Options printed by Debian's blackbox_exporter 0.23 from
    /// `show.options.yml` (`/config`, and `/probe?debug=true` of four
    /// modules): query_response, compression, authorization, basic_auth
    /// with a file, oauth2 and proxy_url.
    const OPTIONS: &str = include_str!("testdata/show.options.yml");

    /// 0.23's output as 0.28 prints the same file. prometheus/common 0.37
    /// (0.23's) and 0.67 (0.28's) differ in two ways, undone here line by
    /// line: 0.37 writes oauth2's `client_secret` and `client_secret_file`
    /// without `omitempty` (`client_secret: null`, `client_secret_file: ""`),
    /// and puts `proxy_url` before `tls_config` where 0.67's inline
    /// `ProxyConfig` comes after `enable_http2` (within oauth2, after its
    /// `tls_config`, which the oracle's oauth2 modules leave out).
    fn as_0_28(theirs: &str) -> String {
        let indent = |line: &str| line.len() - line.trim_start().len();
        let mut lines: Vec<&str> = theirs
            .lines()
            .filter(|l| !matches!(l.trim(), "client_secret_file: \"\"" | "client_secret: null"))
            .collect();
        let mut i = 0;
        while i < lines.len() {
            if lines[i].trim_start().starts_with("proxy_url: ") {
                let at = indent(lines[i]);
                let end = (i + 1..lines.len())
                    .take_while(|&j| indent(lines[j]) >= at)
                    .find(|&j| {
                        indent(lines[j]) == at
                            && lines[j].trim_start().starts_with("enable_http2: ")
                    });
                if let Some(end) = end {
                    let line = lines.remove(i);
                    lines.insert(end, line);
                    continue;
                }
            }
            i += 1;
        }
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn every_option_blackbox_exporter_0_23_knows_prints_as_it_prints_it() {
        let config = Config::parse(OPTIONS, "show.options.yml", Path::new("/etc/lookout")).unwrap();
        let ours = config.to_yaml();
        let theirs = as_0_28(include_str!("testdata/show.options.config.txt"));
        assert!(ours == theirs, "{}", first_difference(&ours, &theirs));
        for (name, theirs) in [
            ("qr", include_str!("testdata/show.options.debug.qr.txt")),
            (
                "oauth",
                include_str!("testdata/show.options.debug.oauth.txt"),
            ),
            (
                "proxy",
                include_str!("testdata/show.options.debug.proxy.txt"),
            ),
            (
                "authz",
                include_str!("testdata/show.options.debug.authz.txt"),
            ),
        ] {
            let ours = module_yaml(&config.modules[name], None);
            let theirs = as_0_28(theirs);
            assert!(
                ours == theirs,
                "{name}: {}",
                first_difference(&ours, &theirs)
            );
        }
        // The edits moved what they had to, and only that.
        assert!(theirs.contains("            enable_http2: true\n            proxy_url: http://proxy-user:xxxxx@proxy.example.org:3128\n"));
        assert!(!theirs.contains("client_secret: null"));
    }

    /// Options blackbox_exporter 0.23 refuses (0.24 to 0.28 added them), so
    /// no oracle printed this: `show.options028.txt` is derived by hand
    /// from blackbox_exporter v0.28.0's config/config.go (`HTTPProbe`,
    /// `QueryResponse`, `Label`, `UnixProbe`) and prometheus/common v0.67.4's
    /// config/http_config.go and headers.go (`HTTPClientConfig`, `BasicAuth`,
    /// `OAuth2`, inline `ProxyConfig`, `Headers`, `URL.Redacted`), in their
    /// field order and `omitempty`, with the quoting and `!!binary` rules
    /// the 0.23 oracle confirmed above. `token_url` is the one deliberate
    /// difference: Go prints it as written, password and all; lookout
    /// prints `xxxxx` for the password, as Go does for `proxy_url`.
    #[test]
    fn options_blackbox_exporter_0_28_added_print_in_its_struct_order() {
        let config = Config::parse(
            include_str!("testdata/show.options028.yml"),
            "show.options028.yml",
            Path::new("/etc/lookout"),
        )
        .unwrap();
        let ours = config.to_yaml();
        let theirs = include_str!("testdata/show.options028.txt");
        assert!(ours == theirs, "{}", first_difference(&ours, theirs));
        let ours = module_yaml(&config.modules["full028"], None);
        let theirs = include_str!("testdata/show.options028.debug.full028.txt");
        assert!(ours == theirs, "{}", first_difference(&ours, theirs));
    }

    /// Every secret field set to a string of its own: none may show in
    /// `/config` or in any module's debug output, whatever the module.
    #[test]
    fn no_secret_shows_in_config_or_debug_output() {
        let secrets = [
            "authz-credentials-secret",
            "oauth2-client-secret",
            "proxy-url-password",
            "basic-auth-password-secret",
            "proxy-connect-header-secret",
            "second-connect-secret",
            "http-headers-secret-value",
            "token-url-password",
            "oauth2-proxy-connect-secret",
            "bearer-token-secret",
            "oauth2-proxy-url-password",
        ];
        let extra = "modules:
  bearer:
    prober: http
    http:
      bearer_token: bearer-token-secret
  oauthproxy:
    prober: http
    http:
      oauth2:
        client_id: c
        token_url: http://a.example/t
        proxy_url: http://u:oauth2-proxy-url-password@p.example:3128
";
        let mut texts = Vec::new();
        for (text, origin) in [
            (OPTIONS, "show.options.yml"),
            (
                include_str!("testdata/show.options028.yml"),
                "show.options028.yml",
            ),
            (extra, "extra.yml"),
        ] {
            let config = Config::parse(text, origin, Path::new("/etc/lookout")).unwrap();
            texts.push(config.to_yaml());
            for module in config.modules.values() {
                texts.push(module_yaml(module, Some("example.org")));
            }
        }
        let all = texts.concat();
        for secret in secrets {
            assert!(!all.contains(secret), "{secret} shows");
            // Not even a fragment of it, nor its base64.
            assert!(
                !all.contains(&secret[..secret.len() / 2]),
                "{secret} shows in part"
            );
        }
        assert!(all.contains("credentials: <secret>"));
        assert!(all.contains("client_secret: <secret>"));
        assert!(all.contains("password: <secret>"));
        assert!(all.contains("- <secret>"));
        assert!(all.contains("http://u:xxxxx@p.example:3128"));
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (500_000_000, "500ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (86_400_000_000_000, "24h0m0s"),
            (7_201_000_000_001, "2h0m1.000000001s"),
        ] {
            assert_eq!(go_duration(Duration::from_nanos(nanos)), text, "{nanos}");
        }
    }

    #[test]
    fn byte_sizes_print_as_go_units_prints_them() {
        for (bytes, text) in [
            (1, "1B"),
            (1024, "1KiB"),
            (1_572_864, "1MiB512KiB"),
            (1_049_625, "1MiB1KiB25B"),
            (1 << 60, "1EiB"),
        ] {
            assert_eq!(base2_bytes(bytes), text);
        }
    }
}
