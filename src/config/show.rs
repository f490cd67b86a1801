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
    // prometheus/common moves bearer_token(_file) into `authorization`.
    let authorization = match (&http.bearer_token, &http.bearer_token_file) {
        (Some(token), _) if !token.0.is_empty() => Fields::new()
            .omitempty("type", text("Bearer"))
            .omitempty("credentials", secret(Some(token)))
            .pointer(),
        (_, Some(file)) => Fields::new()
            .omitempty("type", text("Bearer"))
            .omitempty("credentials_file", path(Some(file)))
            .pointer(),
        _ => None,
    };
    let basic_auth = http.basic_auth.as_ref().and_then(|auth| {
        Fields::new()
            .omitempty("username", text(&auth.username))
            .omitempty("password", secret(auth.password.as_ref()))
            .omitempty("password_file", path(auth.password_file.as_deref()))
            .pointer()
    });
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
        .omitempty("basic_auth", basic_auth)
        .omitempty("authorization", authorization)
        .omitempty("tls_config", tls_node(&http.tls_config))
        .always("follow_redirects", boolean(follow), !follow)
        .always(
            "enable_http2",
            boolean(http.enable_http2),
            !http.enable_http2,
        )
        .omitempty(
            "body_size_limit",
            (http.body_size_limit.0 != 0).then(|| Node::Str(base2_bytes(http.body_size_limit.0))),
        )
        .nonzero()
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
    Fields::new()
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
        .omitempty("tls", flag(tcp.tls))
        .omitempty("tls_config", tls_node(&tcp.tls_config))
        .nonzero()
}

fn unix_node(unix: &UnixProbe) -> Option<Node> {
    Fields::new()
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
