//! `enable_http3` (blackbox_exporter 0.28) against a real HTTP/3 server
//! built here from quinn and h3 (no Debian 12 package serves HTTP/3), and
//! against hostile QUIC peers. blackbox_exporter 0.28 cannot run here: the
//! expected metric set is derived from its source (prober/http.go at
//! v0.28.0 with quic-go v0.57.1's http3 transport), as the comments say.

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    thread,
};

use bytes::Bytes;
use rustls::ServerConfig;

use crate::{
    probe::{encode, parse},
    support::{request, spawn_app, App},
    targets::Pki,
};

/// How the test server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// A real HTTP/3 server: `/` 200 with a body, `/missing` 404.
    Http3,
    /// Answers every request with a HEADERS frame that never ends.
    EndlessHead,
}

struct Server {
    addr: SocketAddr,
    /// QUIC connections accepted.
    connections: Arc<AtomicUsize>,
    /// Bytes the hostile modes managed to write.
    written: Arc<AtomicU64>,
}

fn serve(pki: &Pki, mode: Mode) -> Server {
    serve_suites(pki, mode, None)
}

/// A server that allows only `suite`, if given.
fn serve_suites(pki: &Pki, mode: Mode, suite: Option<rustls::SupportedCipherSuite>) -> Server {
    let leaf = pki.leaf(&["localhost"], (2020, 2039));
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suite) = suite {
        provider.cipher_suites = vec![suite];
    }
    let mut tls = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    // QUIC's Initial packets are protected with AES-128-GCM whatever the
    // server negotiates.
    let initial = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|suite| suite.quic_suite())
        .unwrap();
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::with_initial(Arc::new(tls), initial).unwrap();
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let (count, total) = (connections.clone(), written.clone());
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let endpoint = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(config),
                socket,
                Arc::new(quinn::TokioRuntime),
            )
            .unwrap();
            while let Some(incoming) = endpoint.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let total = total.clone();
                tokio::spawn(async move {
                    let Ok(connection) = incoming.await else {
                        return;
                    };
                    match mode {
                        Mode::Http3 => answer(connection).await,
                        Mode::EndlessHead => endless_head(connection, total).await,
                    }
                });
            }
        });
    });
    Server {
        addr,
        connections,
        written,
    }
}

async fn answer(connection: quinn::Connection) {
    let mut h3 = h3::server::builder()
        .build::<_, Bytes>(h3_quinn::Connection::new(connection))
        .await
        .unwrap();
    while let Ok(Some(resolver)) = h3.accept().await {
        let Ok((request, mut stream)) = resolver.resolve_request().await else {
            return;
        };
        let port = local_port(&request);
        let (status, body, location) = match request.uri().path() {
            "/" => (200, Bytes::from_static(b"hello over h3\n"), None),
            "/moved" => (302, Bytes::new(), Some("/".to_owned())),
            "/to-plain" => (302, Bytes::new(), Some(format!("http://localhost:{port}/"))),
            "/big" => (200, Bytes::from(vec![b'x'; 1 << 20]), None),
            _ => (404, Bytes::from_static(b"not here\n"), None),
        };
        let mut response = http::Response::builder()
            .status(status)
            .header("content-length", body.len())
            .header("x-protocol", "h3");
        if let Some(location) = location {
            response = response.header("location", location);
        }
        let _ = stream.send_response(response.body(()).unwrap()).await;
        if !body.is_empty() {
            let _ = stream.send_data(body).await;
        }
        let _ = stream.finish().await;
    }
}

/// The port the request's :authority names.
fn local_port(request: &http::Request<()>) -> u16 {
    request.uri().port_u16().unwrap_or(443)
}

/// A HEADERS frame (type 1) announcing 1 GiB, then zeros for as long as the
/// client reads them.
async fn endless_head(connection: quinn::Connection, written: Arc<AtomicU64>) {
    let Ok((mut send, mut recv)) = connection.accept_bi().await else {
        return;
    };
    let _ = recv.read_to_end(1 << 16).await;
    // 0x01 = HEADERS; 0xc0... = an 8-byte varint length of 2^30.
    let mut frame = vec![0x01, 0xc0, 0, 0, 0, 0x40, 0, 0, 0];
    frame.resize(16 << 10, 0);
    if send.write_all(&frame).await.is_err() {
        return;
    }
    let zeros = vec![0u8; 16 << 10];
    while send.write_all(&zeros).await.is_ok() {
        written.fetch_add(zeros.len() as u64, Ordering::SeqCst);
        if written.load(Ordering::SeqCst) > 64 << 20 {
            return;
        }
    }
}

fn modules(dir: &std::path::Path, ca_pem: &str, extra: &str) -> String {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let path = dir.join("blackbox.yml");
    std::fs::write(
        &path,
        format!(
            "modules:\n  h3:\n    prober: http\n    timeout: 3s\n    http:\n      enable_http3: true\n      enable_http2: false\n      tls_config: {{ca_file: {ca}}}\n{extra}",
            ca = ca.display()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn probe(app: &App, target: &str) -> Vec<(String, f64)> {
    let response = request(
        app.probe,
        "GET",
        &format!("/probe?module=h3&target={}", encode(target)),
        &[],
    );
    assert_eq!(response.status, 200);
    parse(&response.body)
}

fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

#[test]
fn an_http3_probe_reports_status_version_body_and_tls_like_blackbox_0_28() {
    let pki = Pki::new("h3 test CA");
    let server = serve(&pki, Mode::Http3);
    let dir = tempfile::tempdir().unwrap();
    let file = modules(
        dir.path(),
        &pki.ca_pem(),
        "      valid_http_versions: [\"HTTP/3.0\"]\n      fail_if_body_not_matches_regexp: [\"hello over h3\"]\n      fail_if_header_not_matches: [{header: X-Protocol, regexp: '^h3$'}]\n",
    );
    let app = spawn_app(&["--config.file", &file], &[]);
    app.admin_until("/readyz", |r| r.status == 200);

    let target = format!("https://localhost:{}/", server.addr.port());
    let metrics = probe(&app, &target);
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    // quic-go's resp.Proto is "HTTP/3.0": strconv.ParseFloat gives 3.
    assert_eq!(value(&metrics, "probe_http_version"), Some(3.0));
    assert_eq!(value(&metrics, "probe_http_status_code"), Some(200.0));
    assert_eq!(value(&metrics, "probe_http_content_length"), Some(14.0));
    assert_eq!(
        value(&metrics, "probe_http_uncompressed_body_length"),
        Some(14.0)
    );
    assert_eq!(value(&metrics, "probe_http_ssl"), Some(1.0));
    assert_eq!(value(&metrics, "probe_failed_due_to_regex"), Some(0.0));
    assert_eq!(
        value(&metrics, "probe_tls_version_info{version=\"TLS 1.3\"}"),
        Some(1.0)
    );
    // rustls' server follows the client's order: AES-128-GCM first, as Go's.
    assert_eq!(
        value(
            &metrics,
            "probe_tls_cipher_info{cipher=\"TLS_AES_128_GCM_SHA256\"}"
        ),
        Some(1.0),
        "{metrics:?}"
    );
    // The leaf's notAfter: 2039-01-01T00:00:00Z (Pki::leaf's years).
    assert_eq!(
        value(&metrics, "probe_ssl_earliest_cert_expiry"),
        Some(2_177_452_800.0)
    );

    // The metric set, by name and label names, that blackbox_exporter 0.28
    // prints for this probe: ProbeHTTP registers the gauges up front, the
    // five phases (quic-go's dialer fires ConnectStart/TLSHandshakeStart and
    // TLSHandshakeDone/ConnectDone, so connect and tls both appear), and,
    // with resp.TLS set (quic-go sets it), the five TLS metrics; plus the
    // prober-independent ones (probe_success, probe_duration_seconds, and
    // chooseProtocol's three).
    let mut shapes: Vec<String> = metrics
        .iter()
        .map(|(series, _)| match series.split_once('{') {
            None => series.clone(),
            Some((name, labels)) if name == "probe_http_duration_seconds" => {
                format!("{name}{{{labels}")
            }
            Some((name, labels)) => format!("{name}{{{}}}", label_keys(labels).join(",")),
        })
        .collect();
    shapes.sort();
    shapes.dedup();
    let mut expected = vec![
        "probe_dns_lookup_time_seconds",
        "probe_duration_seconds",
        "probe_failed_due_to_regex",
        "probe_http_content_length",
        "probe_http_duration_seconds{phase=\"connect\"}",
        "probe_http_duration_seconds{phase=\"processing\"}",
        "probe_http_duration_seconds{phase=\"resolve\"}",
        "probe_http_duration_seconds{phase=\"tls\"}",
        "probe_http_duration_seconds{phase=\"transfer\"}",
        "probe_http_redirects",
        "probe_http_ssl",
        "probe_http_status_code",
        "probe_http_uncompressed_body_length",
        "probe_http_version",
        "probe_ip_addr_hash",
        "probe_ip_protocol",
        "probe_ssl_earliest_cert_expiry",
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "probe_ssl_last_chain_info{fingerprint_sha256,issuer,serialnumber,subject,subjectalternative}",
        "probe_success",
        "probe_tls_cipher_info{cipher}",
        "probe_tls_version_info{version}",
    ];
    expected.sort_unstable();
    assert_eq!(shapes, expected);

    // A 404 fails the probe with its status; an http:// target is probed
    // over https://, as blackbox_exporter rewrites it.
    let missing = probe(
        &app,
        &format!("https://localhost:{}/missing", server.addr.port()),
    );
    assert_eq!(value(&missing, "probe_success"), Some(0.0));
    assert_eq!(value(&missing, "probe_http_status_code"), Some(404.0));
    let plain = probe(&app, &format!("http://localhost:{}/", server.addr.port()));
    assert_eq!(value(&plain, "probe_success"), Some(1.0), "{plain:?}");
    assert_eq!(value(&plain, "probe_http_ssl"), Some(1.0));
}

#[test]
fn an_http3_probe_fails_on_a_body_regexp_and_on_a_certificate_from_another_ca() {
    let pki = Pki::new("h3 test CA");
    let server = serve(&pki, Mode::Http3);
    let dir = tempfile::tempdir().unwrap();
    let file = modules(
        dir.path(),
        &pki.ca_pem(),
        "      fail_if_body_matches_regexp: [\"over h3\"]\n",
    );
    let app = spawn_app(&["--config.file", &file], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let target = format!("https://localhost:{}/", server.addr.port());
    let metrics = probe(&app, &target);
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert_eq!(value(&metrics, "probe_failed_due_to_regex"), Some(1.0));

    let other = Pki::new("another CA");
    let dir = tempfile::tempdir().unwrap();
    let file = modules(dir.path(), &other.ca_pem(), "");
    let app = spawn_app(&["--config.file", &file], &[("RUST_LOG", "debug")]);
    app.admin_until("/readyz", |r| r.status == 200);
    let metrics = probe(&app, &target);
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert_eq!(value(&metrics, "probe_http_ssl"), Some(0.0));
    assert!(app.log_line("QUIC handshake").contains("QUIC handshake"));
}

#[test]
fn a_denied_address_is_never_sent_a_quic_packet() {
    let pki = Pki::new("h3 test CA");
    let server = serve(&pki, Mode::Http3);
    let dir = tempfile::tempdir().unwrap();
    let file = modules(dir.path(), &pki.ca_pem(), "");
    let app = spawn_app(
        &[
            "--config.file",
            &file,
            "--deny-target",
            "127.0.0.0/8,::1/128",
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let metrics = probe(&app, &format!("https://localhost:{}/", server.addr.port()));
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn a_silent_udp_port_ends_at_the_deadline() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let pki = Pki::new("h3 test CA");
    let dir = tempfile::tempdir().unwrap();
    let file = modules(dir.path(), &pki.ca_pem(), "");
    let app = spawn_app(&["--config.file", &file], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let metrics = probe(
        &app,
        &format!("https://localhost:{}/", silent.local_addr().unwrap().port()),
    );
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert_eq!(value(&metrics, "probe_http_status_code"), Some(0.0));
    // Packets arrived and none was answered: the probe gave up on its own.
    let mut buf = [0u8; 2048];
    silent.set_nonblocking(true).unwrap();
    assert!(silent.recv_from(&mut buf).is_ok());
}

#[test]
fn an_endless_response_head_stops_at_the_head_limit() {
    let pki = Pki::new("h3 test CA");
    let server = serve(&pki, Mode::EndlessHead);
    let dir = tempfile::tempdir().unwrap();
    let file = modules(dir.path(), &pki.ca_pem(), "");
    let app = spawn_app(&["--config.file", &file], &[("RUST_LOG", "debug")]);
    app.admin_until("/readyz", |r| r.status == 200);
    let metrics = probe(&app, &format!("https://localhost:{}/", server.addr.port()));
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert!(app.log_line("sent more than").contains("sent more than"));
    // The head limit (256 KiB) plus slack and QUIC's windows (1 MiB), not
    // the 1 GiB the frame announced.
    let written = server.written.load(Ordering::SeqCst);
    assert!(written < 4 << 20, "{written} bytes were taken");
}

/// The label names of `k="v",k2="v2"}`, reading quoted values (which may
/// hold commas, equals signs and escaped quotes) as such.
fn label_keys(labels: &str) -> Vec<String> {
    let (mut keys, mut key, mut chars) = (Vec::new(), String::new(), labels.chars());
    while let Some(c) = chars.next() {
        match c {
            '=' => {
                keys.push(std::mem::take(&mut key));
                assert_eq!(chars.next(), Some('"'));
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            ',' | '}' => {}
            c => key.push(c),
        }
    }
    keys
}

#[test]
fn http3_redirects_are_followed_over_http3_and_a_redirect_to_http_fails() {
    let pki = Pki::new("h3 test CA");
    let server = serve(&pki, Mode::Http3);
    let dir = tempfile::tempdir().unwrap();
    let file = modules(dir.path(), &pki.ca_pem(), "");
    let app = spawn_app(&["--config.file", &file], &[("RUST_LOG", "debug")]);
    app.admin_until("/readyz", |r| r.status == 200);
    let port = server.addr.port();
    let moved = probe(&app, &format!("https://localhost:{port}/moved"));
    assert_eq!(value(&moved, "probe_success"), Some(1.0), "{moved:?}");
    assert_eq!(value(&moved, "probe_http_redirects"), Some(1.0));
    assert_eq!(value(&moved, "probe_http_version"), Some(3.0));
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    // quic-go's transport refuses an http:// URL: Go's client returns no
    // response, so blackbox_exporter fails the probe.
    let plain = probe(&app, &format!("https://localhost:{port}/to-plain"));
    assert_eq!(value(&plain, "probe_success"), Some(0.0));
    assert_eq!(value(&plain, "probe_http_redirects"), Some(1.0));
    assert!(app.log_line("needs an https URL").contains("http://"));
}

#[test]
fn an_http3_body_over_body_size_limit_fails_the_probe() {
    let pki = Pki::new("h3 test CA");
    let server = serve(&pki, Mode::Http3);
    let dir = tempfile::tempdir().unwrap();
    let file = modules(
        dir.path(),
        &pki.ca_pem(),
        "      body_size_limit: 4KiB\n      fail_if_body_matches_regexp: [\"never\"]\n",
    );
    let app = spawn_app(&["--config.file", &file], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let port = server.addr.port();
    let big = probe(&app, &format!("https://localhost:{port}/big"));
    assert_eq!(value(&big, "probe_success"), Some(0.0));
    assert_eq!(
        value(&big, "probe_http_uncompressed_body_length"),
        Some(4096.0)
    );
    let small = probe(&app, &format!("https://localhost:{port}/"));
    assert_eq!(value(&small, "probe_success"), Some(1.0));
}

#[test]
fn the_negotiated_http3_cipher_suite_is_reported_by_go_s_name() {
    use rustls::crypto::ring::cipher_suite;
    let pki = Pki::new("h3 test CA");
    let dir = tempfile::tempdir().unwrap();
    let file = modules(dir.path(), &pki.ca_pem(), "");
    let app = spawn_app(&["--config.file", &file], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    for (suite, go_name) in [
        (
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            "TLS_AES_128_GCM_SHA256",
        ),
        (
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            "TLS_AES_256_GCM_SHA384",
        ),
    ] {
        let server = serve_suites(&pki, Mode::Http3, Some(suite));
        let metrics = probe(&app, &format!("https://localhost:{}/", server.addr.port()));
        let ciphers: Vec<&String> = metrics
            .iter()
            .map(|(series, _)| series)
            .filter(|series| series.starts_with("probe_tls_cipher_info"))
            .collect();
        assert_eq!(
            ciphers,
            [&format!("probe_tls_cipher_info{{cipher=\"{go_name}\"}}")]
        );
    }
    // lookout's HTTP/3 client offers the AES-GCM suites only (see
    // client_tls::quic_client_config): a ChaCha20-only server fails it.
    let chacha = serve_suites(
        &pki,
        Mode::Http3,
        Some(cipher_suite::TLS13_CHACHA20_POLY1305_SHA256),
    );
    let metrics = probe(&app, &format!("https://localhost:{}/", chacha.addr.port()));
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
}
