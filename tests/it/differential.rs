//! The real blackbox_exporter (Debian's 0.23) as the oracle: both exporters
//! load the same modules file, probe the same local targets, and must give
//! the same metric names, HELP and TYPE lines, label sets, and values for
//! everything but timings and the address hash.
//!
//! Every target answers the same whatever the machine's speed: a value that
//! depends on when a deadline falls (bytes read before a timeout) is never
//! compared, because the slow targets send a fixed part and then stall.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    probe::encode,
    support::{request, spawn_app, PATIENCE},
    targets::world,
};

/// Metrics whose values are timings (or depend on which address resolution
/// picked), compared by presence only.
pub const TIMINGS: &[&str] = &[
    "probe_duration_seconds",
    "probe_dns_duration_seconds",
    "probe_dns_lookup_time_seconds",
    "probe_grpc_duration_seconds",
    "probe_http_duration_seconds",
    "probe_ip_addr_hash",
];

pub struct Blackbox {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_blackbox(modules: &std::path::Path) -> Blackbox {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new("prometheus-blackbox-exporter")
        .arg(format!("--config.file={}", modules.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-blackbox-exporter is installed (the test command installs Debian's package)");
    let blackbox = Blackbox { child, addr };
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "blackbox_exporter did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    blackbox
}

/// Series (name plus labels) to value, and the HELP/TYPE lines.
pub fn exposition(text: &str) -> (BTreeMap<String, f64>, BTreeSet<String>) {
    let mut series = BTreeMap::new();
    let mut meta = BTreeSet::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if line.starts_with('#') {
            meta.insert(line.to_owned());
        } else {
            let (name, value) = line.rsplit_once(' ').unwrap();
            series.insert(name.to_owned(), value.parse().unwrap());
        }
    }
    (series, meta)
}

/// Where blackbox_exporter 0.28, which lookout follows, differs from Debian's
/// 0.23, the oracle, each with its changelog entry. [`since_0_23`] takes
/// exactly these out of the comparison, nothing else.
pub const SINCE_0_23: &[(&str, &str)] = &[
    (
        "probe_tls_cipher_info{cipher} is reported for https",
        "0.26.0: [FEATURE] Add metric to record tls ciphersuite negotiated during handshake #1203",
    ),
    (
        "probe_ssl_last_chain_info has a serialnumber label",
        "0.26.0: [FEATURE] Reports Certificate Serial number #1333",
    ),
    (
        "tcp reports probe_failed_due_to_bytes",
        "0.28.0: [FEATURE] Implement byte matching in TCP query responses #1441",
    ),
    (
        "tcp registers probe_failed_due_to_regex once connected, not before dialing",
        "0.28.0: #1441 (prober/query_response.go registers the check gauges after the dial)",
    ),
    (
        "grpc registers probe_ssl_earliest_cert_expiry (with probe_tls_version_info and probe_ssl_last_chain_info) only after a call returned over TLS; 0.23 reports it as 0 in every other probe",
        "0.26.0: [BUGFIX] Only register grpc TLS metrics on successful handshake #1338",
    ),
    (
        "grpc: two response messages in a unary call, or OK without one, are INTERNAL (13), not UNKNOWN (2) (those cases are checked against 0.28 in tests/it/grpc.rs, not compared)",
        "0.28.0 is built with grpc-go v1.77.0 (go.mod), which has grpc-go #8330 (v1.74.0); Debian builds 0.23 with grpc-go 1.33.3",
    ),
    (
        "grpc: a compressed response message the client has no decompressor for is INTERNAL (13), not UNIMPLEMENTED (12) (checked against 0.28 in tests/it/grpc.rs, not compared)",
        "0.28.0's grpc-go v1.77.0 has grpc-go #7461 (v1.66.0)",
    ),
    (
        "grpc metadata: 0.23 refuses the key at load, so modules with metadata are not compared (tests/it/grpc.rs checks what arrives)",
        "0.28.0: [FEATURE] Add support for configuring gRPC metadata in gRPC prober #956",
    ),
    (
        "dns: an AAAA record holding an IPv4-mapped address prints ::ffff:a.b.c.d",
        "go.mod: miekg/dns v1.1.55 -> v1.1.57 (#1150, in 0.25.0), which has miekg/dns#1457 (v1.1.56)",
    ),
    (
        "dns: ISDN, NXT, IPSECKEY, AMTRELAY, RESINFO and NXNAME records print in their own format",
        "go.mod: miekg/dns v1.1.50 -> v1.1.55 (f1f9b72, in 0.25.0) has miekg/dns#1402 (IPSECKEY, AMTRELAY); -> v1.1.58 (#1187) #1515 (ISDN), #1516 (NXT); -> v1.1.62 (#1292) #1584 (NXNAME); -> v1.1.64 (#1396) #1641 (RESINFO); all are query_type values since",
    ),
    (
        "dns: SVCB key 8 prints as ohttp",
        "go.mod: miekg/dns v1.1.58 -> v1.1.61 (#1263, in 0.26.0), which has miekg/dns#1567",
    ),
    (
        "dns: valid_rcodes takes DSOTYPENI",
        "go.mod: miekg/dns v1.1.65 -> v1.1.66 (#1421, in 0.27.0), which has miekg/dns#1648",
    ),
    (
        "dns: an OPT record prints `flags:;` (not `flags: ;`), its MBZ bits and its EXPIRE option (cases with an OPT record without the DO bit are not compared)",
        "go.mod: miekg/dns v1.1.50 -> v1.1.55 (f1f9b72, in 0.25.0), which has miekg/dns#1389 (edns: add missing dig options) and #1409",
    ),
];

/// Both expositions with [`SINCE_0_23`]'s differences taken out.
pub fn since_0_23(ours: &str, theirs: &str, module: &str) -> (String, String) {
    let family = |line: &str, name: &str| {
        line.strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line)
            .split([' ', '{'])
            .next()
            == Some(name)
    };
    let ours: Vec<String> = ours
        .lines()
        .filter(|l| !family(l, "probe_tls_cipher_info") && !family(l, "probe_failed_due_to_bytes"))
        .map(|l| match l.find(",serialnumber=\"") {
            Some(at) if family(l, "probe_ssl_last_chain_info") => {
                let end = at + 15 + l[at + 15..].find('"').unwrap_or(0) + 1;
                format!("{}{}", &l[..at], &l[end..])
            }
            _ => l.to_owned(),
        })
        .collect();
    let dialed = ours.iter().any(|l| family(l, "probe_failed_due_to_regex"));
    let tls_returned = ours
        .iter()
        .any(|l| family(l, "probe_ssl_earliest_cert_expiry"));
    let theirs: Vec<&str> = theirs
        .lines()
        .filter(|l| {
            !(module.starts_with("tcp") || module.starts_with("tls"))
                || dialed
                || !family(l, "probe_failed_due_to_regex")
        })
        .filter(|l| {
            !module.starts_with("grpc")
                || tls_returned
                || !family(l, "probe_ssl_earliest_cert_expiry")
        })
        .collect();
    (ours.join("\n"), theirs.join("\n"))
}

pub fn is_timing(series: &str) -> bool {
    TIMINGS
        .iter()
        .any(|t| series == *t || series.starts_with(&format!("{t}{{")))
}

/// Series to value, and the HELP/TYPE lines: one probe's answer as [`exposition`] reads it.
pub type Exposition = (BTreeMap<String, f64>, BTreeSet<String>);

/// Equal, or a timing (compared by presence only): what most cases ask of a series.
pub fn same_or_timing(series: &str, ours: f64, theirs: f64) -> bool {
    is_timing(series) || ours == theirs
}

/// How one case's answers differ: their HELP/TYPE lines, a series only one has, and a
/// series whose two values `same` does not accept.
pub fn compare(
    case: &str,
    (our_series, our_meta): &Exposition,
    (their_series, their_meta): &Exposition,
    same: impl Fn(&str, f64, f64) -> bool,
) -> Vec<String> {
    let mut found = Vec::new();
    if our_meta != their_meta {
        found.push(format!(
            "{case}: HELP/TYPE lines differ\n  only lookout: {:?}\n  only blackbox: {:?}",
            our_meta.difference(their_meta).collect::<Vec<_>>(),
            their_meta.difference(our_meta).collect::<Vec<_>>()
        ));
    }
    let names: BTreeSet<&String> = our_series.keys().chain(their_series.keys()).collect();
    for name in names {
        match (our_series.get(name), their_series.get(name)) {
            (Some(&a), Some(&b)) if same(name, a, b) => {}
            (a, b) => found.push(format!("{case}: {name}: lookout {a:?}, blackbox {b:?}")),
        }
    }
    found
}

#[test]
fn lookout_answers_as_blackbox_exporter_does() {
    let w = world();
    let lookout = spawn_app(&["--config.file", w.modules.to_str().unwrap()], &[]);
    lookout.admin_until("/readyz", |r| r.status == 200);
    let blackbox = spawn_blackbox(&w.modules);

    let http = w.http;
    let cases: Vec<(&str, String)> = vec![
        ("http_2xx", format!("http://{http}/ok")),
        ("http_2xx", format!("{http}/notfound")),
        ("http_2xx", format!("http://{http}/redirect/3")),
        ("http_2xx", format!("http://{http}/redirect/11")),
        ("http_no_redirects", format!("http://{http}/redirect/1")),
        ("http_2xx", format!("http://{http}/chunked")),
        ("http_2xx", format!("http://{}/", w.closed)),
        ("http_2xx", format!("http://[::1]:{}/", w.closed.port())),
        ("http_body_healthy", format!("http://{http}/healthy")),
        ("http_body_healthy", format!("http://{http}/ok")),
        ("http_body_not_hello", format!("http://{http}/ok")),
        ("http_header_html", format!("http://{http}/ok")),
        ("http_404", format!("http://{http}/notfound")),
        ("http_11_only", format!("http://{http}/ok")),
        ("http_post", format!("http://{http}/method")),
        ("http_ssl_required", format!("http://{http}/ok")),
        ("http_1s", format!("http://{http}/hang")),
        (
            "http_ca",
            format!("https://localhost:{}/ok", w.valid.port()),
        ),
        (
            "http_ca_tls12",
            format!("https://localhost:{}/ok", w.valid.port()),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.expired.port()),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.wrong_host.port()),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.unknown_ca.port()),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.self_signed.port()),
        ),
        (
            "http_insecure",
            format!("https://localhost:{}/", w.self_signed.port()),
        ),
        ("http_2xx", format!("https://localhost:{}/", w.valid.port())),
        ("http_body_limit", format!("http://{http}/big")),
        ("http_body_limit", format!("http://{http}/ok")),
        ("http_not_plain_text", format!("http://{http}/ok")),
        ("http_basic_auth", format!("http://{http}/basic-auth")),
        ("http_2xx", format!("http://{http}/basic-auth")),
        ("http_bearer", format!("http://{http}/bearer")),
        ("http_headers", format!("http://{http}/needs-header")),
        ("http_2xx", format!("http://{http}/needs-header")),
        (
            "http_server_name",
            format!("https://127.0.0.1:{}/", w.valid.port()),
        ),
        ("http_ca", format!("https://127.0.0.1:{}/", w.valid.port())),
        (
            "http_tls13",
            format!("https://localhost:{}/", w.valid.port()),
        ),
        (
            "http_client_cert",
            format!("https://localhost:{}/", w.mutual.port()),
        ),
        ("http_ca", format!("https://localhost:{}/", w.mutual.port())),
        ("http_ip4_only", format!("http://{http}/ok")),
        ("http_ip4_only", format!("http://[::1]:{}/", http.port())),
        // Hostile targets.
        ("http_2xx", format!("http://{http}/loop")),
        ("http_2xx", format!("http://{http}/reset-mid-headers")),
        ("http_2xx", format!("http://{http}/garbage")),
        ("http_1s", format!("http://{http}/slow-headers")),
        ("http_1s", format!("http://{http}/slow-body")),
        (
            "http_ca",
            format!("https://localhost:{}/", w.not_yet_valid.port()),
        ),
        ("http_2xx", "http://exa mple.com/".to_owned()),
        ("tcp_from_loopback", http.to_string()),
        ("tcp_connect", http.to_string()),
        ("tcp_connect", w.closed.to_string()),
        ("tcp_connect", "127.0.0.1".to_owned()),
        ("tls_ca", format!("localhost:{}", w.valid.port())),
        ("tls_ca", format!("localhost:{}", w.expired.port())),
        // Issue 12: ports, URLs and redirects as Go's net/url reads them.
        ("http_2xx", "127.0.0.1:99999".to_owned()),
        ("http_2xx", "http://127.0.0.1:65616/".to_owned()),
        ("http_2xx", "127.0.0.1:+18080".to_owned()),
        (
            "http_2xx",
            format!("http://{http}:/ok").replacen(&format!(":{}:", http.port()), ":", 1),
        ),
        ("tcp_connect", "127.0.0.1:99999".to_owned()),
        ("tcp_connect", format!("127.0.0.1:+{}", http.port())),
        ("tcp_connect", format!("127.0.0.1:0{}", http.port())),
        (
            "http_2xx",
            format!("http://prober:s3cret@{http}/basic-auth"),
        ),
        ("http_2xx", format!("{http}/ok?next=http://elsewhere/")),
        ("http_2xx", format!("http://{http}/ok\u{fc}")),
        ("http_2xx", format!("http://{http}/%zz")),
        // Issue 12: false failures against healthy servers.
        ("http_2xx", format!("http://{http}/many-headers")),
        (
            "http_ca",
            format!("https://localhost:{}/big-headers", w.h2.port()),
        ),
    ];
    let redirects = [
        "query",
        "dotdot",
        "dot",
        "up",
        "fragment",
        "empty",
        "utf8",
        "scheme-relative",
        "absolute",
        "dots-in-query",
    ];
    let cases: Vec<(&str, String)> = cases
        .into_iter()
        .chain(
            redirects
                .iter()
                .map(|case| ("http_2xx", format!("http://{http}/r/{case}/a/b?q=1"))),
        )
        .collect();

    let mut differences = Vec::new();
    for (module, target) in &cases {
        let path = format!("/probe?module={module}&target={}", encode(target));
        let ours = request(lookout.probe, "GET", &path, &[]);
        let theirs = request(blackbox.addr, "GET", &path, &[]);
        assert_eq!(
            (ours.status, theirs.status),
            (200, 200),
            "{module} {target}"
        );
        let (ours_as_0_23, theirs_adjusted) = since_0_23(&ours.body, &theirs.body, module);
        let ours = exposition(&ours_as_0_23);
        let case = format!("{module} {target}");
        differences.extend(compare(
            &case,
            &ours,
            &exposition(&theirs_adjusted),
            same_or_timing,
        ));
        eprintln!("compared {case}: {} series", ours.0.len());
    }

    // The 400s, word for word.
    for path in [
        "/probe?module=nope&target=x",
        "/probe?module=http_2xx",
        "/probe?module=http_2xx&target=%zz",
    ] {
        let ours = request(lookout.probe, "GET", path, &[]);
        let theirs = request(blackbox.addr, "GET", path, &[]);
        if (ours.status, &ours.body) != (theirs.status, &theirs.body) {
            differences.push(format!(
                "{path}: lookout {} {:?}, blackbox {} {:?}",
                ours.status, ours.body, theirs.status, theirs.body
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences (besides the allowed ones: {SINCE_0_23:?}):\n{}",
        differences.len(),
        differences.join("\n")
    );
    // Every allowed difference names the changelog entry that made it.
    assert!(SINCE_0_23.iter().all(|(_, why)| why.contains('#')));
}
