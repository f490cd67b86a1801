//! Reliability and security under load, faults and hostile input (issue 8):
//! drain under load, connection hygiene, probe limits, hostile targets,
//! memory after many failures, who may probe what, TLS and authentication
//! on the listeners.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crate::{
    probe::{encode, parse},
    support::{parse_response, request, spawn_app, write, App, Response, PATIENCE},
    targets::{world, Gate, Pki},
};

fn app(extra: &[&str]) -> App {
    ready(spawn_app(&with_modules(extra), &[]))
}

/// The same as the binary, for what needs a process: signals, its own /proc.
fn process(extra: &[&str]) -> App {
    ready(crate::support::spawn_process(&with_modules(extra), &[]))
}

fn with_modules<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--config.file", world().modules.to_str().unwrap()];
    args.extend_from_slice(extra);
    args
}

fn ready(app: App) -> App {
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

fn probe_path(module: &str, target: &str) -> String {
    format!("/probe?module={module}&target={}", encode(target))
}

fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

/// A keep-alive HTTP/1.1 client, as Prometheus keeps its scrape connections.
struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        // One write per request below; no Nagle delay waiting for an ACK.
        stream.set_nodelay(true).unwrap();
        Self {
            reader: BufReader::new(stream),
        }
    }

    fn get(&mut self, path: &str) -> std::io::Result<Response> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: lookout\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" {
                break;
            }
        }
        let mut response = parse_response(&head);
        let length: usize = response
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        response.body = String::from_utf8_lossy(&body).into_owned();
        Ok(response)
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn drain_under_load_loses_no_request() {
    // The delay only has to outlast the clients' reaction to readiness turning
    // 503 (milliseconds); the test waits for the exit, so it costs nothing.
    let mut app = process(&["--shutdown-delay", "3s", "--drain-timeout", "1h"]);
    let target = format!("http://{}/ok", world().http);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
            let (addr, path) = (app.probe, probe_path("http_2xx", &target));
            std::thread::spawn(move || {
                let mut client = KeepAlive::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    match client.get(&path) {
                        Ok(r) if r.status == 200 && r.body.contains("probe_success 1") => {
                            ok.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    // A probe held by its target until the listeners have closed.
    let gate = Gate::new();
    let held_path = probe_path("http_2xx", &format!("http://{}/", gate.addr));
    let mut held_client = KeepAlive::connect(app.probe);
    let held = std::thread::spawn(move || held_client.get(&held_path));
    gate.wait_for_arrivals(1);
    // Let the load run, then shut down in the middle of it.
    app.admin_until("/metrics", |r| {
        r.body
            .contains("lookout_probes_total{module=\"http_2xx\",result=\"success\"}")
    });
    app.signal("TERM");
    // Clients leave when readiness turns 503, as endpoints controllers take the pod out.
    app.admin_until("/readyz", |r| r.status == 503);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    app.log_line("shutdown: stopped accepting");
    gate.open();
    let held = held
        .join()
        .unwrap()
        .expect("the in-flight probe completes after the listeners closed");
    let status = app.wait();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "drain under load: {ok} probes answered, {failed} failed until readiness turned 503; \
         held probe: {}; {status}",
        held.status,
    );
    assert!(ok > 0);
    assert_eq!(failed, 0);
    assert!(held.body.contains("probe_success 1"), "{}", held.body);
    assert_eq!(status.code(), Some(0), "{:?}", app.logs());
}

#[test]
fn slow_header_connections_do_not_starve_a_normal_request() {
    // A header timeout far beyond the test's patience: the normal request can
    // only be answered while the 1,000 stalled connections are all still open.
    let app = app(&["--header-read-timeout", "1h"]);
    let slow: Vec<TcpStream> = (0..1000).map(|_| stalled_request(app.probe)).collect();
    let normal = request(app.probe, "GET", "/-/healthy", &[]);
    assert_eq!(normal.status, 200);
    drop(slow);
    drop(app);

    // With a short timeout every stalled connection is closed by it.
    let app = self::app(&["--header-read-timeout", "2s"]);
    let slow: Vec<TcpStream> = (0..1000).map(|_| stalled_request(app.probe)).collect();
    let closed = slow.iter().filter(|s| closed_by_server(s)).count();
    assert_eq!(
        closed, 1000,
        "every stalled connection is closed by the header read timeout"
    );
    assert_eq!(app.admin("GET", "/readyz").status, 200);
}

/// A connection that sends part of a request head and then nothing.
fn stalled_request(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: slowloris\r\nX-Never: ")
        .unwrap();
    s
}

/// Whether the server closes `s` (an EOF, a reset, or a 408 first) within PATIENCE.
fn closed_by_server(mut s: &TcpStream) -> bool {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        // A read timeout means it is still open; anything else (a reset) closed it.
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn oversized_request_headers_are_refused() {
    let app = app(&["--max-header-bytes", "16384"]);
    let mut s = TcpStream::connect(app.probe).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let huge = "a".repeat(20_000);
    let _ = s.write_all(
        format!("GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n").as_bytes(),
    );
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
}

#[test]
fn excess_probes_get_503_and_are_counted() {
    let app = app(&["--max-concurrent-probes", "2"]);
    let gate = Gate::new();
    let held = probe_path("http_2xx", &format!("http://{}/", gate.addr));
    let running: Vec<_> = (0..2)
        .map(|_| {
            let (addr, path) = (app.probe, held.clone());
            std::thread::spawn(move || request(addr, "GET", &path, &[]))
        })
        .collect();
    gate.wait_for_arrivals(2);
    let refused = request(
        app.probe,
        "GET",
        &probe_path("http_2xx", &format!("http://{}/ok", world().http)),
        &[],
    );
    assert_eq!(refused.status, 503);
    assert_eq!(
        refused.body,
        "Too many concurrent probes (limit 2); retry later\n"
    );
    assert!(app
        .admin("GET", "/metrics")
        .body
        .contains("lookout_probes_rejected_total{reason=\"concurrency\"} 1"));
    gate.open();
    for r in running {
        assert_eq!(r.join().unwrap().status, 200);
    }
}

#[test]
fn the_deadline_ends_probes_of_targets_that_never_finish() {
    let app = app(&[]);
    // Each target stalls until the prober hangs up: only the module's 1 s
    // deadline can end these probes (the request gives up after PATIENCE).
    for path in ["/hang", "/slow-headers", "/slow-body"] {
        let response = request(
            app.probe,
            "GET",
            &probe_path("http_1s", &format!("http://{}{path}", world().http)),
            &[],
        );
        let m = parse(&response.body);
        let took = value(&m, "probe_duration_seconds").unwrap();
        assert_eq!(value(&m, "probe_success"), Some(0.0), "{path}");
        assert!(took >= 1.0, "{path}: gave up before its deadline: {took} s");
    }
}

#[test]
fn hostile_targets_fail_cleanly_and_lookout_stays_ready() {
    let app = app(&[]);
    let (http, w) = (world().http, world());
    // Every case fails; the closure checks the sub-metrics that matter.
    type Check = fn(&[(String, f64)]) -> bool;
    let cases: Vec<(&str, String, &str, Check)> = vec![
        (
            "http_2xx",
            format!("http://{http}/reset-mid-headers"),
            "reset mid-headers",
            |m| value(m, "probe_http_status_code") == Some(0.0),
        ),
        (
            "http_1s",
            format!("http://{http}/slow-headers"),
            "headers slower than the timeout",
            |m| value(m, "probe_http_status_code") == Some(0.0),
        ),
        (
            "http_1s",
            format!("http://{http}/slow-body"),
            "a slow body",
            |m| value(m, "probe_http_status_code") == Some(200.0),
        ),
        (
            "http_2xx",
            format!("http://{http}/endless"),
            "an endless body (capped at 10 MiB)",
            |m| value(m, "probe_http_uncompressed_body_length") == Some(10_485_760.0),
        ),
        (
            "http_2xx",
            format!("http://{http}/loop"),
            "a redirect loop",
            |m| value(m, "probe_http_redirects") == Some(11.0),
        ),
        (
            "http_2xx",
            format!("http://{http}/garbage"),
            "a 200 followed by garbage",
            |m| value(m, "probe_http_status_code") == Some(0.0),
        ),
        (
            "http_2xx",
            format!("http://{http}/huge-headers"),
            "oversized headers",
            |m| value(m, "probe_http_status_code") == Some(0.0),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.expired.port()),
            "expired",
            |m| value(m, "probe_http_ssl") == Some(0.0),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.not_yet_valid.port()),
            "not yet valid",
            |m| value(m, "probe_http_ssl") == Some(0.0),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.self_signed.port()),
            "self-signed",
            |m| value(m, "probe_http_ssl") == Some(0.0),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.wrong_host.port()),
            "wrong host",
            |m| value(m, "probe_http_ssl") == Some(0.0),
        ),
        (
            "http_ca",
            format!("https://localhost:{}/", w.unknown_ca.port()),
            "unknown CA",
            |m| value(m, "probe_http_ssl") == Some(0.0),
        ),
        (
            "http_2xx",
            format!("http://{}/", w.closed),
            "connection refused",
            |m| value(m, "probe_ip_protocol") == Some(4.0),
        ),
        (
            "http_2xx",
            format!("http://[::1]:{}/", w.closed.port()),
            "an IPv6 literal",
            |m| value(m, "probe_ip_protocol") == Some(6.0),
        ),
        (
            "http_2xx",
            "http://exa mple.com/".to_owned(),
            "an invalid URL",
            |m| value(m, "probe_ip_protocol").is_none(),
        ),
        (
            "http_2xx",
            "ftp://example.com/".to_owned(),
            "an unsupported scheme",
            |m| value(m, "probe_ip_protocol").is_none(),
        ),
    ];
    for (module, target, what, check) in &cases {
        let response = request(app.probe, "GET", &probe_path(module, target), &[]);
        assert_eq!(
            response.status, 200,
            "{what}: a failed probe is not an HTTP error"
        );
        let m = parse(&response.body);
        assert_eq!(value(&m, "probe_success"), Some(0.0), "{what}");
        assert!(check(&m), "{what}: {m:?}");
    }

    // A server that speaks only TLS 1.0 (openssl s_server): rustls never goes below 1.2.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("TLS 1.0 CA");
    let leaf = pki.leaf(&["localhost"], (2020, 2030));
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, pem("CERTIFICATE", &leaf.chain[0])).unwrap();
    std::fs::write(&key, pem("PRIVATE KEY", leaf.key.secret_der())).unwrap();
    let port = crate::targets::closed_port().port();
    let mut old_tls = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-tls1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl is installed");
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let m = parse(
        &request(
            app.probe,
            "GET",
            &probe_path("http_insecure", &format!("https://localhost:{port}/")),
            &[],
        )
        .body,
    );
    let _ = old_tls.kill();
    let _ = old_tls.wait();
    assert_eq!(
        value(&m, "probe_success"),
        Some(0.0),
        "a TLS 1.0-only server"
    );
    assert_eq!(value(&m, "probe_http_ssl"), Some(0.0));

    assert_eq!(
        app.admin("GET", "/readyz").status,
        200,
        "still ready after every hostile target"
    );
}

pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn memory_returns_to_where_it_started_after_10000_failing_probes() {
    let app = process(&[]);
    let path = probe_path("tcp_connect", &world().closed.to_string());
    let mut client = KeepAlive::connect(app.probe);
    let mut run = |n: usize| {
        for _ in 0..n {
            let response = client.get(&path).unwrap();
            assert!(response.body.contains("probe_success 0"));
        }
    };
    // Warm up the allocator and the metric families first.
    run(1000);
    let before = rss_kib(app.pid());
    run(10_000);
    let after = rss_kib(app.pid());
    eprintln!(
        "resident memory: {before} KiB after 1,000 failing probes, {after} KiB after 10,000 more"
    );
    assert!(after * 10 <= before * 11, "{before} KiB -> {after} KiB");
    assert_eq!(app.admin("GET", "/readyz").status, 200);
}

#[test]
fn denied_targets_are_never_probed() {
    let http = world().http;
    let app = app(&["--deny-target", "127.0.0.2"]);
    let probe = |module: &str, target: String| {
        parse(&request(app.probe, "GET", &probe_path(module, &target), &[]).body)
    };
    // A redirect cannot take the probe to a denied address.
    let m = probe("http_2xx", format!("http://{http}/to-denied"));
    assert_eq!(
        (
            value(&m, "probe_success"),
            value(&m, "probe_http_redirects")
        ),
        (Some(0.0), Some(1.0))
    );
    assert!(app
        .log_line("denied by 127.0.0.2/32")
        .contains("probe refused by the target policy"));
    // Cloud metadata endpoints are denied without any allow list.
    let m = probe(
        "http_2xx",
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    );
    assert_eq!(value(&m, "probe_success"), Some(0.0));
    app.log_line("169.254.169.254 is a cloud metadata address");
    drop(app);

    // An allow list admits what resolves into it, and nothing else.
    let app = self::app(&["--allow-target", "127.0.0.1"]);
    let probe = |module: &str, target: String| {
        parse(&request(app.probe, "GET", &probe_path(module, &target), &[]).body)
    };
    assert_eq!(
        value(
            &probe("http_2xx", format!("http://localhost:{}/ok", http.port())),
            "probe_success"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &probe("tcp_connect", format!("127.0.0.2:{}", http.port())),
            "probe_success"
        ),
        Some(0.0)
    );
    app.log_line("127.0.0.2 is not on the allow list");
    drop(app);

    // A name cannot smuggle in a denied address.
    let app = self::app(&["--deny-target", "127.0.0.0/8"]);
    let m = parse(
        &request(
            app.probe,
            "GET",
            &probe_path("http_2xx", &format!("http://localhost:{}/ok", http.port())),
            &[],
        )
        .body,
    );
    assert_eq!(value(&m, "probe_success"), Some(0.0));
    app.log_line("localhost (127.0.0.1) is denied by 127.0.0.0/8");
}

/// One HTTPS request trusting only `ca`; returns the response and the
/// certificate the server presented.
fn request_tls(
    addr: SocketAddr,
    ca: &rustls::pki_types::CertificateDer<'static>,
    path: &str,
    headers: &[(&str, &str)],
) -> (Response, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let presented = tls.conn.peer_certificates().unwrap()[0].to_vec();
    (parse_response(&raw), presented)
}

#[test]
fn listeners_serve_tls_and_pick_up_a_rotated_certificate() {
    let pki = Pki::new("listener CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let issue = || {
        let leaf = pki.leaf(&["localhost"], (2020, 2030));
        std::fs::write(&cert, pem("CERTIFICATE", &leaf.chain[0])).unwrap();
        std::fs::write(&key, pem("PRIVATE KEY", leaf.key.secret_der())).unwrap();
        leaf.chain[0].to_vec()
    };
    let first = issue();
    let args = [
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
    ];
    let app = spawn_app(&args, &[]);
    let ca = pki.ca.der().clone();
    let (ready, presented) = request_tls(app.admin, &ca, "/readyz", &[]);
    assert!(ready.status == 200 || ready.status == 503, "{ready:?}");
    assert_eq!(presented, first);
    let (healthy, _) = request_tls(app.probe, &ca, "/-/healthy", &[]);
    assert_eq!(healthy.status, 200);
    // Plain HTTP on a TLS listener gets nothing useful.
    let mut plain = TcpStream::connect(app.probe).unwrap();
    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = plain.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("Healthy"));

    // cert-manager renews: new files, same paths; new handshakes get the new certificate.
    let second = issue();
    assert_ne!(first, second);
    let deadline = Instant::now() + PATIENCE;
    while request_tls(app.admin, &ca, "/healthz", &[]).1 != second {
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    app.log_line("reloaded changed files");
}

#[test]
fn credentials_are_required_except_for_health() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    write(&users, "# who may scrape\nprometheus:s3cret\n");
    let app = spawn_app(&["--basic-auth-file", users.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let good = ("Authorization", "Basic cHJvbWV0aGV1czpzM2NyZXQ="); // prometheus:s3cret
    let bad = ("Authorization", "Basic cHJvbWV0aGV1czpub3BlCg==");
    for (addr, path) in [
        (app.admin, "/metrics"),
        (app.probe, "/"),
        (app.probe, "/probe?target=x"),
        (app.admin, "/-/reload"),
    ] {
        for headers in [
            &[][..],
            &[bad][..],
            &[("Authorization", "Bearer s3cret")][..],
        ] {
            let r = request(addr, "GET", path, headers);
            assert_eq!(
                (r.status, r.body.as_str()),
                (401, "Unauthorized\n"),
                "{path} {headers:?}"
            );
            assert_eq!(
                r.header("www-authenticate"),
                Some("Basic realm=\"lookout\"")
            );
        }
    }
    assert_eq!(request(app.admin, "GET", "/metrics", &[good]).status, 200);
    assert_eq!(request(app.probe, "GET", "/", &[good]).status, 200);
    // The kubelet's probes, and readiness's own check of the probe listener,
    // need no credentials.
    assert_eq!(app.admin("GET", "/healthz").status, 200);
    assert_eq!(app.admin("GET", "/readyz").status, 200);
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
    // Rotated credentials apply without a restart.
    write(&users, "prometheus:n3w\n");
    let renewed = ("Authorization", "Basic cHJvbWV0aGV1czpuM3c="); // prometheus:n3w
    let deadline = Instant::now() + PATIENCE;
    while request(app.admin, "GET", "/metrics", &[renewed]).status != 200 {
        assert!(
            Instant::now() < deadline,
            "the new password was never accepted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(request(app.admin, "GET", "/metrics", &[good]).status, 401);

    let token = dir.path().join("token");
    write(&token, "t0ken\n");
    let app = spawn_app(&["--bearer-token-file", token.to_str().unwrap()], &[]);
    assert_eq!(request(app.admin, "GET", "/metrics", &[]).status, 401);
    assert_eq!(
        request(
            app.admin,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer nope")]
        )
        .status,
        401
    );
    assert_eq!(
        request(
            app.admin,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer t0ken")]
        )
        .status,
        200
    );
}

#[test]
fn every_probe_sees_the_certificate_served_now() {
    // lookout probes its own TLS listener while the certificate is renewed: a
    // resumed TLS session would keep reporting the old certificate.
    let pki = Pki::new("renewal CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let modules = dir.path().join("blackbox.yml");
    write(&modules, &format!("modules:\n  https_ca:\n    prober: http\n    http:\n      tls_config:\n        ca_file: {}\n", ca.display()));
    let issue = || {
        let leaf = pki.leaf(&["localhost"], (2020, 2030));
        std::fs::write(&cert, pem("CERTIFICATE", &leaf.chain[0])).unwrap();
        std::fs::write(&key, pem("PRIVATE KEY", leaf.key.secret_der())).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, &leaf.chain[0]);
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let first = issue();
    let args = [
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--config.file",
        modules.to_str().unwrap(),
    ];
    let app = spawn_app(&args, &[]);
    let ca_der = pki.ca.der().clone();
    let deadline = Instant::now() + PATIENCE;
    while request_tls(app.admin, &ca_der, "/readyz", &[]).0.status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    let fingerprint = || {
        let target = format!("https://localhost:{}/healthz", app.admin.port());
        let (response, _) = request_tls(app.probe, &ca_der, &probe_path("https_ca", &target), &[]);
        let info = response
            .body
            .lines()
            .find(|l| l.starts_with("probe_ssl_last_chain_info{"))
            .unwrap_or_default()
            .to_owned();
        assert!(
            response.body.contains("probe_success 1"),
            "{}",
            response.body
        );
        info
    };
    assert!(fingerprint().contains(&first));
    let second = issue();
    // The listener picks the new files up within a second (checked in another
    // test); from then on every probe must report the new certificate.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let info = fingerprint();
        if info.contains(&second) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "probes kept reporting the old certificate: {info}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..5 {
        assert!(
            fingerprint().contains(&second),
            "a later probe went back to the old certificate"
        );
    }
}
