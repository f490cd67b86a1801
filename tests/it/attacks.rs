//! Attacks on lookout's own guards (issue 12): hostile clients of the
//! listeners, hostile input to /probe, and hostile targets. Each was written
//! before its fix and failed against the code before it.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
};

use crate::{
    probe::{encode, parse},
    support::{parse_response, request, spawn_app, App, Response, PATIENCE},
    targets::{world, Gate, Pki},
};

fn app(extra: &[&str]) -> App {
    app_with_env(extra, &[])
}

fn app_with_env(extra: &[&str], env: &[(&str, &str)]) -> App {
    let mut args = vec!["--config.file", world().modules.to_str().unwrap()];
    args.extend_from_slice(extra);
    let app = spawn_app(&args, env);
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

fn probe_path(module: &str, target: &str) -> String {
    format!("/probe?module={module}&target={}", encode(target))
}

fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

/// Whether the server closes the connection (EOF, reset, or an error status
/// first) within PATIENCE, without the test sending anything more.
fn closed_by_server(stream: &mut impl Read) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // An answer (a 400 or 408, an HTTP/2 GOAWAY) may come before the close.
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

// ---- the listeners -------------------------------------------------------

#[test]
fn method_labels_come_from_a_fixed_set() {
    let app = app(&[]);
    // Unique 8 KB methods, lower-case spellings and extension methods.
    for i in 0..300 {
        let method = format!("X{i:04}{}", "A".repeat(8000));
        let mut s = connect(app.probe);
        s.write_all(
            format!("{method} /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
    }
    for method in ["get", "Get", "PROPFIND", "BREW", "POST"] {
        request(app.probe, method, "/-/healthy", &[]);
    }
    let metrics = app.admin("GET", "/metrics").body;
    let methods: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("lookout_http_requests_total{"))
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        methods,
        ["GET", "POST", "other"].into_iter().collect(),
        "{metrics}"
    );
    assert!(
        metrics.len() < 64 << 10,
        "/metrics is {} bytes",
        metrics.len()
    );
}

#[test]
fn idle_connections_are_closed_at_the_header_read_timeout() {
    let app = app(&["--max-connections", "4", "--header-read-timeout", "2s"]);
    // Four clients that connect and send nothing hold every slot...
    let mut idle: Vec<TcpStream> = (0..4).map(|_| connect(app.probe)).collect();
    // ...until the timeout closes them: only then can this one be answered.
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
    for s in &mut idle {
        assert!(closed_by_server(s), "an idle connection stayed open");
    }
}

#[test]
fn a_keep_alive_connection_is_closed_when_idle_after_a_response() {
    let app = app(&["--max-connections", "1", "--header-read-timeout", "2s"]);
    let mut kept = connect(app.probe);
    kept.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).unwrap();
    assert_eq!(parse_response(&buf[..n]).status, 200);
    // The kept-alive connection holds the only slot until it has been idle too long.
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
    assert!(closed_by_server(&mut kept));
}

/// HTTP/2's connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP/2 frame header and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The HTTP/2 openings that never complete a request head.
fn h2_stalls() -> Vec<(&'static str, Vec<u8>)> {
    let settings = frame(0x4, 0, 0, &[]);
    // HEADERS with END_STREAM but without END_HEADERS: ":method GET" (HPACK
    // index 2), then no CONTINUATION ever.
    let headers = frame(0x1, 0x1, 1, &[0x82]);
    vec![
        ("the preface alone", PREFACE.to_vec()),
        ("preface and SETTINGS", [PREFACE, &settings].concat()),
        (
            "HEADERS without END_HEADERS",
            [PREFACE, &settings, &headers].concat(),
        ),
    ]
}

#[test]
fn h2c_is_not_spoken_and_its_openings_cannot_hold_a_slot() {
    let app = app(&["--max-connections", "3", "--header-read-timeout", "2s"]);
    let mut held: Vec<TcpStream> = h2_stalls()
        .into_iter()
        .map(|(_, bytes)| {
            let mut s = connect(app.probe);
            s.write_all(&bytes).unwrap();
            s
        })
        .collect();
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
    for s in &mut held {
        assert!(closed_by_server(s));
    }
}

/// A TLS client of lookout's listener offering `alpn`.
fn tls_client(
    addr: SocketAddr,
    ca: &rustls::pki_types::CertificateDer<'static>,
    alpn: &[&[u8]],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, connect(addr));
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// Writes a PEM certificate and key for `localhost`, signed by `pki`.
fn listener_files(pki: &Pki, dir: &std::path::Path) -> (String, String) {
    let leaf = pki.leaf(&["localhost"], (2020, 2040));
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, crate::hardening::pem("CERTIFICATE", &leaf.chain[0])).unwrap();
    std::fs::write(
        &key,
        crate::hardening::pem("PRIVATE KEY", leaf.key.secret_der()),
    )
    .unwrap();
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn http2_over_tls_gets_the_same_header_read_timeout() {
    let pki = Pki::new("listener CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = listener_files(&pki, dir.path());
    let app = spawn_app(
        &[
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--max-connections",
            "4",
            "--header-read-timeout",
            "2s",
        ],
        &[],
    );
    let ca = pki.ca.der().clone();
    // Three HTTP/2 openings that never finish a head, and one TLS client that
    // never even finishes its handshake: all four slots are taken.
    let mut held: Vec<_> = h2_stalls()
        .into_iter()
        .map(|(_, bytes)| {
            let mut tls = tls_client(app.probe, &ca, &[b"h2"]);
            assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
            tls.write_all(&bytes).unwrap();
            tls.flush().unwrap();
            tls
        })
        .collect();
    let mut half_handshake = connect(app.probe);
    half_handshake.write_all(&[0x16, 0x03, 0x01, 0x00]).unwrap();
    // A fifth client is answered once the timeout has freed a slot.
    let mut fifth = tls_client(app.probe, &ca, &[b"http/1.1"]);
    fifth
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = fifth.read_to_end(&mut answer);
    assert_eq!(parse_response(&answer).status, 200);
    for tls in &mut held {
        assert!(closed_by_server(tls));
    }
    assert!(closed_by_server(&mut half_handshake));
}

#[test]
fn a_client_that_does_not_read_its_responses_loses_its_connection() {
    let app = app(&["--max-connections", "1", "--header-read-timeout", "2s"]);
    // Pipelined requests, never read, behind a tiny receive window: their
    // responses (about 20 MB) overflow any socket buffer, so the server's
    // writes stall for good.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&app.probe.into()).unwrap();
    let mut stalled: TcpStream = socket.into();
    let pipelined = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(30_000);
    let writer = {
        let mut s = stalled.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = s.write_all(pipelined.as_bytes());
        })
    };
    // The stalled connection holds the only slot until the timeout takes it.
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
    stalled.set_read_timeout(Some(PATIENCE)).unwrap();
    assert!(closed_by_server(&mut stalled));
    let _ = writer.join();
}

#[test]
fn connections_are_asked_to_close_at_their_maximum_age_without_cutting_a_request() {
    let app = app_with_env(
        &["--max-connection-age", "1s"],
        &[("RUST_LOG", "info,lookout=debug")],
    );
    let gate = Gate::new();
    let mut kept = connect(app.probe);
    let path = probe_path("http_2xx", &format!("http://{}/", gate.addr));
    kept.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    gate.wait_for_arrivals(1);
    // The age passes while the probe is in flight...
    app.log_line("reached its maximum age");
    gate.open();
    // ...and the probe still completes, with the close announced.
    let mut answer = Vec::new();
    kept.read_to_end(&mut answer).unwrap();
    let response = parse_response(&answer);
    assert_eq!(response.status, 200);
    assert!(
        response.body.contains("probe_success 1"),
        "{}",
        response.body
    );
    assert_eq!(response.header("connection"), Some("close"));
}

#[test]
fn http2_connections_get_a_goaway_at_their_maximum_age() {
    let pki = Pki::new("listener CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = listener_files(&pki, dir.path());
    let app = spawn_app(
        &[
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--max-connection-age",
            "1s",
        ],
        &[("RUST_LOG", "info,lookout=debug")],
    );
    let ca = pki.ca.der().clone();
    let mut tls = tls_client(app.probe, &ca, &[b"h2"]);
    let settings = frame(0x4, 0, 0, &[]);
    tls.write_all(&[PREFACE, &settings].concat()).unwrap();
    tls.flush().unwrap();
    app.log_line("reached its maximum age");
    // Read frames until GOAWAY (type 7).
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let goaway = loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break false,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
        let mut at = 0;
        let mut found = false;
        while received.len() >= at + 9 {
            let len = (usize::from(received[at]) << 16)
                | (usize::from(received[at + 1]) << 8)
                | usize::from(received[at + 2]);
            found |= received[at + 3] == 0x7;
            at += 9 + len;
        }
        if found {
            break true;
        }
    };
    assert!(goaway, "no GOAWAY frame");
}

// ---- who may be probed ------------------------------------------------------

fn probe(app: &App, module: &str, target: &str) -> Vec<(String, f64)> {
    let response: Response = request(app.probe, "GET", &probe_path(module, target), &[]);
    assert_eq!(response.status, 200, "{response:?}");
    parse(&response.body)
}

fn succeeded(app: &App, module: &str, target: &str) -> bool {
    value(&probe(app, module, target), "probe_success") == Some(1.0)
}

#[test]
fn every_spelling_of_a_denied_address_is_refused() {
    let port = world().http.port();
    let v6 = crate::targets::serve_v6();
    let open = app(&[]);
    // Without a deny list each of these reaches a local listener...
    let http_cases = [
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        format!("http://[::ffff:7f00:1]:{port}/ok"),
        format!("http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/ok"),
        format!("http://0.0.0.0:{port}/ok"),
        format!("http://[::]:{}/ok", v6.port()),
        format!("http://2130706433:{port}/ok"),
        format!("http://127.1:{port}/ok"),
        format!("http://0x7f.0.0.1:{port}/ok"),
    ];
    let tcp_cases = [
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::]:{}", v6.port()),
    ];
    for target in &http_cases {
        assert!(
            succeeded(&open, "http_2xx", target),
            "{target} is reachable"
        );
    }
    for target in &tcp_cases {
        assert!(
            succeeded(&open, "tcp_connect", target),
            "{target} is reachable"
        );
    }
    drop(open);
    // ...and a deny list of loopback refuses every one of them.
    let denied = app(&["--deny-target", "127.0.0.0/8,::1/128"]);
    for target in &http_cases {
        assert!(
            !succeeded(&denied, "http_2xx", target),
            "{target} got through"
        );
    }
    for target in &tcp_cases {
        assert!(
            !succeeded(&denied, "tcp_connect", target),
            "{target} got through"
        );
    }
    denied.log_line("which reaches 127.0.0.1) is denied by 127.0.0.0/8");
    denied.log_line("which reaches ::1) is denied by ::1/128");
}

#[test]
fn denied_names_are_refused_in_any_spelling_and_in_the_host_header() {
    let http = world().http;
    let port = http.port();
    let app = app(&["--deny-target", "internal.corp,*.internal.corp,localhost"]);
    for target in [
        format!("http://localhost.:{port}/ok"),
        format!("http://LocalHost:{port}/ok"),
        format!("http://{http}/r/localhost-dot/a/b?q=1"),
    ] {
        assert!(!succeeded(&app, "http_2xx", &target), "{target}");
    }
    assert!(!succeeded(
        &app,
        "tcp_connect",
        &format!("localhost.:{port}")
    ));
    // The hostname parameter claims a denied name for an allowed address.
    for hostname in ["internal.corp", "A.Internal.Corp.", "localhost"] {
        let path = format!(
            "{}&hostname={}",
            probe_path("http_2xx", &format!("http://{http}/ok")),
            encode(hostname)
        );
        let m = parse(&request(app.probe, "GET", &path, &[]).body);
        assert_eq!(value(&m, "probe_success"), Some(0.0), "{hostname}");
    }
    app.log_line("Host internal.corp is denied by internal.corp");
    app.log_line("localhost. is denied by localhost");
    // The address itself is fine.
    assert!(succeeded(&app, "http_2xx", &format!("http://{http}/ok")));
}

#[test]
fn names_outside_an_allow_list_are_never_looked_up() {
    let dns =
        crate::targets::DnsStub::answering(&[("www.example.com", std::net::Ipv4Addr::LOCALHOST)]);
    let dir = tempfile::tempdir().unwrap();
    let app = crate::support::spawn_app_with_resolver(
        &[
            "--config.file",
            world().modules.to_str().unwrap(),
            "--allow-target",
            "*.example.com",
        ],
        &[],
        &crate::targets::hosts_file(dir.path()),
        &dns.resolv_conf(dir.path(), 5),
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let port = world().http.port();
    assert!(!succeeded(
        &app,
        "http_2xx",
        &format!("http://attacker.test:{port}/ok")
    ));
    assert!(!succeeded(
        &app,
        "tcp_connect",
        &format!("attacker.test:{port}")
    ));
    app.log_line("attacker.test is not on the allow list");
    assert_eq!(
        dns.questions_for("attacker.test"),
        0,
        "the refused name was looked up"
    );
    // The stub does answer: an allowed name is looked up there and probed.
    assert!(succeeded(
        &app,
        "http_2xx",
        &format!("http://www.example.com:{port}/ok")
    ));
    assert!(dns.questions_for("www.example.com") > 0);
}

#[test]
fn lookups_that_never_end_are_bounded_by_the_probe_limit() {
    let dns = crate::targets::DnsStub::silent();
    let dir = tempfile::tempdir().unwrap();
    let app = crate::support::spawn_app_with_resolver(
        &[
            "--config.file",
            world().modules.to_str().unwrap(),
            "--max-concurrent-probes",
            "4",
        ],
        &[],
        &crate::targets::hosts_file(dir.path()),
        // Each lookup waits far longer than this test.
        &dns.resolv_conf(dir.path(), 60),
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let threads = app.status("Threads");
    let mut statuses = Vec::new();
    // Waves of probes of names that never resolve: each probe answers at its
    // 1 s deadline, but its lookup goes on and keeps its slot.
    for wave in 0..5 {
        let probes: Vec<_> = (0..4)
            .map(|i| {
                let (addr, path) = (
                    app.probe,
                    probe_path("http_1s", &format!("http://never-{wave}-{i}.test/")),
                );
                std::thread::spawn(move || request(addr, "GET", &path, &[]).status)
            })
            .collect();
        statuses.extend(probes.into_iter().map(|p| p.join().unwrap()));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        16,
        "{statuses:?}"
    );
    let grown = app.status("Threads") - threads;
    assert!(grown <= 4 + 2, "{grown} more threads for 4 lookups at most");
    assert_eq!(
        app.metric(r#"lookout_probes_rejected_total{reason="concurrency"}"#),
        Some(16.0)
    );
}

// ---- what a probe may cost ---------------------------------------------------

/// A modules file with a body regexp module and the usual http module.
fn body_modules(dir: &std::path::Path, regexp: &str, timeout: &str) -> std::path::PathBuf {
    let path = dir.join("blackbox.yml");
    std::fs::write(
        &path,
        format!(
            "modules:\n  body:\n    prober: http\n    timeout: {timeout}\n    http:\n      fail_if_body_matches_regexp: ['{regexp}']\n  http_2xx:\n    prober: http\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn body_matches_run_on_their_own_threads_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // A pattern no lazy DFA can hold: the match falls back to a slow NFA
    // simulation and runs for many seconds on 256 KiB, far past the 1 s deadline.
    let modules = body_modules(dir.path(), "(?:[01]{3,30}1){20}2", "1s");
    let app = crate::support::spawn_process(&["--config.file", modules.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let slots = app
        .metric("lookout_body_match_slots")
        .expect("the slots gauge") as usize;
    let target = format!("http://{}/quarter-mib-bits", world().http);
    let threads = app.status("Threads");
    let probes: Vec<_> = (0..slots)
        .map(|_| {
            let (addr, path) = (app.probe, probe_path("body", &target));
            std::thread::spawn(move || request(addr, "GET", &path, &[]))
        })
        .collect();
    // Every slot is matching; the async workers are free: the listener answers.
    app.admin_until("/metrics", |r| {
        r.body
            .contains(&format!("lookout_body_matches_running {slots}\n"))
    });
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
    // Each probe answers at its deadline, failed, while its match goes on.
    for probe in probes {
        let response = probe.join().unwrap();
        assert_eq!(response.status, 200);
        assert!(
            response.body.contains("probe_success 0"),
            "{}",
            response.body
        );
    }
    assert_eq!(
        app.metric("lookout_body_matches_running"),
        Some(slots as f64)
    );
    // One more finds every slot busy: refused at once, no thread started.
    let refused = request(app.probe, "GET", &probe_path("body", &target), &[]);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused
            .body
            .contains("Too many body regexp matches running"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.metric(r#"lookout_probes_rejected_total{reason="matches"}"#),
        Some(1.0)
    );
    assert!(app.status("Threads") <= threads + slots as u64 + 2);
}

#[test]
fn a_body_kept_for_a_regexp_is_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let modules = body_modules(dir.path(), "never", "10s");
    let app = crate::support::spawn_process(&["--config.file", modules.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    // Warm up the allocator and the connection paths with a small probe.
    assert!(succeeded(
        &app,
        "body",
        &format!("http://{}/ok", world().http)
    ));
    let before = app.status("VmHWM");
    // 10 MiB that are not UTF-8: a lossy text copy would be three times as large.
    let m = probe(
        &app,
        "body",
        &format!("http://{}/ten-mib-binary", world().http),
    );
    assert_eq!(value(&m, "probe_success"), Some(1.0), "{m:?}");
    assert_eq!(
        value(&m, "probe_http_uncompressed_body_length"),
        Some(10_485_760.0)
    );
    let grown = app.status("VmHWM") - before;
    eprintln!("peak resident memory grew by {grown} KiB for a 10 MiB body kept for a regexp");
    assert!(grown <= (10 << 10) + (2 << 10), "peak grew by {grown} KiB");
}

#[test]
fn the_memory_budget_refuses_probes_that_would_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let modules = body_modules(dir.path(), "never", "0s");
    // A body-regexp probe reserves 10 MiB of body, 256 KiB of head and 128 KiB:
    // three fit in 32 MiB, a fourth does not.
    let app = spawn_app(
        &[
            "--config.file",
            modules.to_str().unwrap(),
            "--max-probe-memory",
            "32MiB",
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let gate = Gate::new();
    let held: Vec<_> = (0..3)
        .map(|_| {
            let (addr, path) = (
                app.probe,
                probe_path("body", &format!("http://{}/", gate.addr)),
            );
            std::thread::spawn(move || request(addr, "GET", &path, &[]))
        })
        .collect();
    gate.wait_for_arrivals(3);
    let refused = request(
        app.probe,
        "GET",
        &probe_path("body", &format!("http://{}/ok", world().http)),
        &[],
    );
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("limit 32 MiB"), "{}", refused.body);
    // A probe that keeps no body still fits.
    let small = request(
        app.probe,
        "GET",
        &probe_path("http_2xx", &format!("http://{}/ok", world().http)),
        &[],
    );
    assert_eq!(small.status, 200, "{small:?}");
    assert_eq!(
        app.metric(r#"lookout_probes_rejected_total{reason="memory"}"#),
        Some(1.0)
    );
    // What is reserved, and the budget, are visible to the HPA and to alerts.
    let cost = (10 << 20) + (256 << 10) + (128 << 10);
    assert_eq!(
        app.metric("lookout_probe_memory_reserved_bytes"),
        Some(f64::from(3 * cost))
    );
    assert_eq!(
        app.metric("lookout_probe_memory_budget_bytes"),
        Some(f64::from(32 << 20))
    );
    gate.open();
    for probe in held {
        assert_eq!(probe.join().unwrap().status, 200);
    }
    assert_eq!(app.metric("lookout_probe_memory_reserved_bytes"), Some(0.0));
}

#[test]
fn a_probe_in_flight_holds_less_than_its_reservation() {
    // Measures what one probe holds while it waits for its target, over
    // HTTP and over HTTPS, against the 128 KiB the memory budget reserves
    // besides a response head and a kept body (prober::PROBE_MEMORY).
    let pki = Pki::new("gate CA");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let modules = dir.path().join("blackbox.yml");
    std::fs::write(
        &modules,
        format!("modules:\n  http_2xx:\n    prober: http\n  https:\n    prober: http\n    http:\n      tls_config:\n        ca_file: {}\n", ca.display()),
    )
    .unwrap();
    let app = crate::support::spawn_process(&["--config.file", modules.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let held = 200;
    let leaf = pki.leaf(&["localhost"], (2020, 2040));
    let gates = [
        ("http_2xx", Gate::new(), "http://127.0.0.1"),
        (
            "https",
            Gate::tls(crate::targets::server_tls(leaf, &[&rustls::version::TLS13])),
            "https://localhost",
        ),
    ];
    for (module, gate, base) in &gates {
        let target = format!("{base}:{}/", gate.addr.port());
        // Warm up: the first probes allocate what every later one reuses.
        let warm: Vec<_> = (0..held)
            .map(|_| {
                let (addr, path) = (app.probe, probe_path(module, &target));
                std::thread::spawn(move || request(addr, "GET", &path, &[]))
            })
            .collect();
        gate.wait_for_arrivals(held);
        gate.open();
        for probe in warm {
            assert_eq!(probe.join().unwrap().status, 200);
        }
    }
    for (module, _, base) in &gates {
        let gate = if *module == "https" {
            Gate::tls(crate::targets::server_tls(
                pki.leaf(&["localhost"], (2020, 2040)),
                &[&rustls::version::TLS13],
            ))
        } else {
            Gate::new()
        };
        let target = format!("{base}:{}/", gate.addr.port());
        let before = app.status("VmRSS");
        let probes: Vec<_> = (0..held)
            .map(|_| {
                let (addr, path) = (app.probe, probe_path(module, &target));
                std::thread::spawn(move || request(addr, "GET", &path, &[]))
            })
            .collect();
        gate.wait_for_arrivals(held);
        let during = app.status("VmRSS");
        gate.open();
        for probe in probes {
            let response = probe.join().unwrap();
            assert!(
                response.body.contains("probe_success 1"),
                "{}",
                response.body
            );
        }
        let per_probe = during.saturating_sub(before) / held as u64;
        eprintln!(
            "{module}: {held} probes in flight held {} KiB, {per_probe} KiB each",
            during.saturating_sub(before)
        );
        assert!(per_probe <= 128, "{module}: {per_probe} KiB per probe");
    }
}

#[test]
fn a_module_that_could_never_fit_the_budget_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let modules = body_modules(dir.path(), "never", "0s");
    let output = crate::support::lookout()
        .args([
            "--config.file",
            modules.to_str().unwrap(),
            "--max-probe-memory",
            "4MiB",
        ])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("module \"body\"") && stderr.contains("--max-probe-memory"),
        "{stderr}"
    );
}

// ---- the probe API and the logs ----------------------------------------------

#[test]
fn an_empty_scrape_timeout_header_is_no_header() {
    let app = app(&[]);
    let response = request(
        app.probe,
        "GET",
        &probe_path("http_2xx", &format!("http://{}/ok", world().http)),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "")],
    );
    assert_eq!(response.status, 200, "{response:?}");
}

#[test]
fn debug_logs_are_enabled_by_rust_log_and_text_logs_have_no_colour() {
    let app = app_with_env(&[], &[("RUST_LOG", "debug"), ("LOG_FORMAT", "json")]);
    probe(&app, "http_2xx", &format!("http://{}/", world().closed));
    let line = app.log_line("Probe failed");
    assert!(line.contains("\"level\":\"DEBUG\""), "{line}");
    assert!(
        line.contains("connecting to"),
        "the reason is logged: {line}"
    );
    let request_line = app.log_line("\"route\":\"/probe\"");
    let latency: serde_json::Value = serde_json::from_str(&request_line).unwrap();
    let ms = latency["latency_ms"].as_f64().unwrap().to_string();
    assert!(
        ms.split('.')
            .nth(1)
            .is_none_or(|decimals| decimals.len() <= 3),
        "latency to the microsecond: {ms}"
    );
    drop(app);

    // Text logs to a pipe carry no ANSI colour codes.
    let output = crate::support::lookout()
        .args(["check-config", "/nonexistent/blackbox.yml"])
        .env("LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert!(!output.stderr.contains(&0x1b));
    let mut text = crate::support::lookout()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--shutdown-delay",
            "0s",
        ])
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = text.stderr.take().unwrap();
    let mut first = [0u8; 4096];
    let n = stderr.read(&mut first).unwrap();
    let _ = text.kill();
    let _ = text.wait();
    assert!(
        n > 0 && !first[..n].contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&first[..n])
    );
}
