//! The grpc prober against real peers the tests start: a gRPC health server
//! on Debian's python3-grpcio (`grpc_health_server.py`: SERVING,
//! NOT_SERVING, an unknown service, an undefined serving status, an error
//! status; plain and TLS, with a CA and a leaf made here), HTTP/2 servers
//! that are not gRPC or break its rules (the h2 crate's server, each
//! answering one way), an HTTP/1.1 server, TLS servers without h2, a closed
//! port and a silent one. blackbox_exporter 0.23 probes the same targets
//! with the same modules and must report the same, but for timings and the
//! differences its 0.28 made (listed in `differential::SINCE_0_23`); what
//! 0.23 cannot show (metadata, the deadline, IPv6 literals, the target
//! policy) is checked against lookout alone.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use bytes::Bytes;
use rcgen::{CertificateParams, DnType, KeyPair};

use crate::{
    differential::{compare, exposition, same_or_timing, since_0_23, spawn_blackbox},
    probe::{encode, probe},
    support::{request, spawn_app, App, PATIENCE},
    targets::{closed_port, world, Pki},
};

/// How one of the HTTP/2 test servers answers every request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// A plain HTTP response: status and content-type.
    Http(u16, Option<&'static str>),
    /// A gRPC response head, these DATA bytes, then trailers with this
    /// grpc-status ("" for trailers without one), or none.
    Grpc(&'static [u8], Option<&'static str>),
    /// A trailers-only response with this grpc-status.
    TrailersOnly(&'static str),
    /// RST_STREAM with this error code.
    Reset(u32),
    /// A compressed SERVING message, `grpc-encoding: gzip`, status OK.
    Gzip,
    /// SERVING, after a response head of 300 KiB.
    BigHead,
}

/// The HTTP/2 servers (plaintext, prior knowledge, as gRPC without TLS
/// speaks it), by name, with the status code grpc-go 1.77 (blackbox_exporter
/// 0.28) gives each, and whether the differential test compares it with
/// Debian's 0.23: not where its grpc-go 1.33 answers otherwise (`SINCE_0_23`
/// says why), nor past lookout's own limits (the README's differences).
const FOREIGN: &[(&str, Reply, u32, bool)] = &[
    (
        "404 text/plain",
        Reply::Http(404, Some("text/plain")),
        12,
        true,
    ),
    (
        "200 text/plain",
        Reply::Http(200, Some("text/plain")),
        2,
        true,
    ),
    ("200 no content-type", Reply::Http(200, None), 2, true),
    (
        "400 text/plain",
        Reply::Http(400, Some("text/plain")),
        13,
        true,
    ),
    (
        "401 text/plain",
        Reply::Http(401, Some("text/plain")),
        16,
        true,
    ),
    (
        "403 text/plain",
        Reply::Http(403, Some("text/plain")),
        7,
        true,
    ),
    (
        "429 text/plain",
        Reply::Http(429, Some("text/plain")),
        14,
        true,
    ),
    (
        "500 text/plain",
        Reply::Http(500, Some("text/plain")),
        2,
        true,
    ),
    // A gRPC content-type: the status is ignored, the text read as a
    // message whose length ("ot g") is over any limit.
    (
        "503 application/grpc",
        Reply::Http(503, Some("application/grpc")),
        8,
        true,
    ),
    (
        "SERVING, status in trailers",
        Reply::Grpc(b"\0\0\0\0\x02\x08\x01", Some("0")),
        0,
        true,
    ),
    (
        "NOT_FOUND after a message",
        Reply::Grpc(b"\0\0\0\0\x02\x08\x01", Some("5")),
        5,
        true,
    ),
    (
        "trailers-only DATA_LOSS",
        Reply::TrailersOnly("15"),
        15,
        true,
    ),
    (
        "no trailers",
        Reply::Grpc(b"\0\0\0\0\x02\x08\x01", None),
        13,
        true,
    ),
    (
        "trailers without grpc-status",
        Reply::Grpc(b"\0\0\0\0\x02\x08\x01", Some("")),
        2,
        true,
    ),
    (
        "malformed grpc-status",
        Reply::Grpc(b"\0\0\0\0\x02\x08\x01", Some("OK")),
        13,
        true,
    ),
    (
        "truncated message",
        Reply::Grpc(b"\0\0\0\0\x02\x08", Some("0")),
        13,
        true,
    ),
    (
        "compressed, no grpc-encoding",
        Reply::Grpc(b"\x01\0\0\0\x02\x08\x01", Some("0")),
        13,
        true,
    ),
    (
        "5 MiB message announced",
        Reply::Grpc(b"\0\0\x50\0\0", Some("0")),
        8,
        true,
    ),
    (
        "not protobuf",
        Reply::Grpc(b"\0\0\0\0\x01\x0f", Some("0")),
        13,
        true,
    ),
    ("reset REFUSED_STREAM", Reply::Reset(0x7), 14, true),
    ("reset CANCEL", Reply::Reset(0x8), 1, true),
    ("reset PROTOCOL_ERROR", Reply::Reset(0x1), 13, true),
    ("reset with an undefined code", Reply::Reset(0xff), 2, true),
    // grpc-go 1.66 (#7461): no decompressor is INTERNAL, no longer UNIMPLEMENTED.
    ("compressed with gzip", Reply::Gzip, 13, false),
    // grpc-go 1.74 (#8330): a cardinality violation is INTERNAL, no longer UNKNOWN.
    (
        "two messages",
        Reply::Grpc(b"\0\0\0\0\x02\x08\x01\0\0\0\0\x02\x08\x01", Some("0")),
        13,
        false,
    ),
    ("OK without a message", Reply::TrailersOnly("0"), 13, false),
    // Over lookout's 256 KiB for a head (grpc-go takes 16 MiB): not compared.
    ("300 KiB response head", Reply::BigHead, 13, false),
];

/// Every peer, started once per test process.
struct Peers {
    health: Health,
    /// [`FOREIGN`]'s servers, in its order.
    foreign: Vec<SocketAddr>,
    /// Accepts connections and never answers.
    silent: SocketAddr,
    closed: SocketAddr,
    /// Every module, for lookout.
    modules: PathBuf,
    /// The modules blackbox_exporter 0.23 can load (no `metadata`).
    modules_0_23: PathBuf,
    _dir: tempfile::TempDir,
}

/// The Python gRPC health server and what it has been asked.
struct Health {
    plain: SocketAddr,
    tls: SocketAddr,
    /// Plaintext on [::1]; `None` where ::1 cannot be bound.
    plain6: Option<SocketAddr>,
    /// One JSON line per call it answered.
    calls: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Holds its stdin: it exits when this process does.
    _child: Child,
}

impl Health {
    /// Waits for a call whose JSON satisfies `found`, returning it.
    fn call(&self, found: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(call) = self.calls.lock().unwrap().iter().find(|c| found(c)) {
                return call.clone();
            }
            assert!(Instant::now() < deadline, "no such call reached the server");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn services_asked(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c["service"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// `(name, module body, loadable by 0.23)`; `{ca}` is the test CA's file.
const MODULES: &[(&str, &str, bool)] = &[
    ("grpc", "prober: grpc\n    grpc: {}", true),
    ("grpc_ip4", "prober: grpc\n    grpc: {preferred_ip_protocol: ip4}", true),
    ("grpc_no_block", "prober: grpc", true),
    // `grpc:` with nothing after it: no block, for Go's yaml.v3.
    ("grpc_empty_block", "prober: grpc\n    grpc:", true),
    ("grpc_notserving", "prober: grpc\n    grpc: {service: notserving}", true),
    ("grpc_unknown_service", "prober: grpc\n    grpc: {service: nosuchservice}", true),
    ("grpc_unknown", "prober: grpc\n    grpc: {service: unknown}", true),
    ("grpc_seven", "prober: grpc\n    grpc: {service: seven}", true),
    ("grpc_denied", "prober: grpc\n    grpc: {service: denied}", true),
    ("grpc_tls", "prober: grpc\n    grpc: {tls: true, tls_config: {ca_file: {ca}}}", true),
    (
        "grpc_tls12",
        "prober: grpc\n    grpc: {tls: true, tls_config: {ca_file: {ca}, max_version: TLS12}}",
        true,
    ),
    (
        "grpc_tls_notserving",
        "prober: grpc\n    grpc: {tls: true, service: notserving, tls_config: {ca_file: {ca}}}",
        true,
    ),
    (
        "grpc_tls_unknown_service",
        "prober: grpc\n    grpc: {tls: true, service: nosuchservice, tls_config: {ca_file: {ca}}}",
        true,
    ),
    (
        "grpc_tls_server_name",
        "prober: grpc\n    grpc: {tls: true, tls_config: {ca_file: {ca}, server_name: localhost}}",
        true,
    ),
    (
        "grpc_tls_wrong_name",
        "prober: grpc\n    grpc: {tls: true, tls_config: {ca_file: {ca}, server_name: other.example}}",
        true,
    ),
    ("grpc_tls_no_ca", "prober: grpc\n    grpc: {tls: true}", true),
    (
        "grpc_tls_insecure",
        "prober: grpc\n    grpc: {tls: true, tls_config: {insecure_skip_verify: true}}",
        true,
    ),
    ("grpc_1s", "prober: grpc\n    timeout: 1s\n    grpc: {}", true),
    (
        "grpc_tls_1s",
        "prober: grpc\n    timeout: 1s\n    grpc: {tls: true, tls_config: {ca_file: {ca}}}",
        true,
    ),
    ("grpc_never_reached", "prober: grpc\n    grpc: {service: never-reached}", true),
    ("grpc_sentinel", "prober: grpc\n    grpc: {service: sentinel}", true),
    (
        "grpc_metadata",
        "prober: grpc\n    grpc:\n      metadata:\n        authorization: [Bearer t0k3n]\n        x-probe-case: [metadata-arrives]\n        key1: [v1, \"2\"]\n        trace-bin: [\"\\u00ff\\u0000\"]",
        false,
    ),
];

fn peers() -> &'static Peers {
    static PEERS: OnceLock<Peers> = OnceLock::new();
    PEERS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("lookout gRPC test CA");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pki.ca_pem()).unwrap();
        // A leaf apart from the CA (rustls refuses a CA certificate as a
        // server's), for the name and the address the tests dial.
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Lookout, Inc.");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let leaf = params.signed_by(&key, &pki.ca).unwrap();
        let (cert_file, key_file) = (dir.path().join("leaf.pem"), dir.path().join("leaf.key"));
        std::fs::write(&cert_file, leaf.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();

        let write = |name: &str, all: bool| {
            let mut text = String::from("modules:\n");
            for (module, body, in_0_23) in MODULES {
                if all || *in_0_23 {
                    let body = body.replace("{ca}", ca.to_str().unwrap());
                    text.push_str(&format!("  {module}:\n    {body}\n"));
                }
            }
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Peers {
            health: start_health_server(&cert_file, &key_file),
            foreign: FOREIGN
                .iter()
                .map(|(_, reply, _, _)| serve_h2c(*reply))
                .collect(),
            silent: serve_silence(),
            closed: closed_port(),
            modules: write("blackbox.yml", true),
            modules_0_23: write("blackbox-0.23.yml", false),
            _dir: dir,
        }
    })
}

fn start_health_server(cert: &std::path::Path, key: &std::path::Path) -> Health {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/grpc_health_server.py"
    );
    // Debian's interpreter, which has Debian's python3-grpcio.
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(cert)
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // grpcio logs every failed TLS handshake the tests provoke.
        .env("GRPC_VERBOSITY", "NONE")
        .spawn()
        .expect("/usr/bin/python3 runs (the test command installs python3-grpcio)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines
        .next()
        .and_then(Result::ok)
        .expect("the gRPC health server starts (the test command installs python3-grpcio)");
    let ports: Vec<u16> = first
        .strip_prefix("ports ")
        .unwrap()
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&calls);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let call = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("the health server printed {line:?}: {e}"));
            log.lock().unwrap().push(call);
        }
    });
    Health {
        plain: SocketAddr::from(([127, 0, 0, 1], ports[0])),
        tls: SocketAddr::from(([127, 0, 0, 1], ports[1])),
        plain6: (ports[2] != 0)
            .then(|| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, ports[2]))),
        calls,
        _child: child,
    }
}

/// An HTTP/2 server without TLS that answers every request with `reply`.
fn serve_h2c(reply: Reply) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(tcp).await else {
                        return;
                    };
                    while let Some(Ok((_request, mut respond))) = connection.accept().await {
                        let _ = answer(&mut respond, reply);
                    }
                });
            }
        });
    });
    addr
}

fn answer(respond: &mut h2::server::SendResponse<Bytes>, reply: Reply) -> Result<(), h2::Error> {
    let head = |status: u16, content_type: Option<&str>| {
        let mut head = http::Response::builder().status(status);
        if let Some(content_type) = content_type {
            head = head.header("content-type", content_type);
        }
        head.body(()).unwrap()
    };
    match reply {
        Reply::Http(status, content_type) => respond
            .send_response(head(status, content_type), false)?
            .send_data(Bytes::from_static(b"not gRPC\n"), true),
        Reply::Grpc(data, trailers) => {
            let mut stream = respond.send_response(head(200, Some("application/grpc")), false)?;
            let Some(status) = trailers else {
                return stream.send_data(Bytes::from_static(data), true);
            };
            stream.send_data(Bytes::from_static(data), false)?;
            let mut trailers = http::HeaderMap::new();
            if status.is_empty() {
                trailers.insert("x-trailer", http::HeaderValue::from_static("1"));
            } else {
                trailers.insert("grpc-status", status.parse().unwrap());
            }
            stream.send_trailers(trailers)
        }
        Reply::TrailersOnly(status) => {
            let mut head = head(200, Some("application/grpc"));
            head.headers_mut()
                .insert("grpc-status", status.parse().unwrap());
            respond.send_response(head, true).map(drop)
        }
        Reply::Reset(reason) => {
            respond.send_reset(h2::Reason::from(reason));
            Ok(())
        }
        Reply::BigHead => {
            let mut head = head(200, Some("application/grpc"));
            for i in 0..300 {
                let name = http::HeaderName::try_from(format!("x-big-{i}")).unwrap();
                head.headers_mut()
                    .insert(name, "v".repeat(1024).parse().unwrap());
            }
            let mut stream = respond.send_response(head, false)?;
            stream.send_data(Bytes::from_static(b"\0\0\0\0\x02\x08\x01"), false)?;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            stream.send_trailers(trailers)
        }
        Reply::Gzip => {
            let mut head = head(200, Some("application/grpc"));
            head.headers_mut()
                .insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
            let mut stream = respond.send_response(head, false)?;
            // Not even gzip: the flag is what is judged.
            stream.send_data(Bytes::from_static(b"\x01\0\0\0\x02\x08\x01"), false)?;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            stream.send_trailers(trailers)
        }
    }
}

/// A server that accepts connections and never says a word.
fn serve_silence() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    addr
}

fn app() -> App {
    let app = spawn_app(&["--config.file", peers().modules.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

fn family(metrics: &[(String, f64)], name: &str) -> Vec<String> {
    metrics
        .iter()
        .filter(|(s, _)| s == name || s.starts_with(&format!("{name}{{")))
        .map(|(s, v)| format!("{s} {v}"))
        .collect()
}

/// The gRPC metrics of one probe that must hold whatever the call did.
fn outcome(metrics: &[(String, f64)]) -> (f64, f64, Vec<String>) {
    (
        value(metrics, "probe_success").unwrap(),
        value(metrics, "probe_grpc_status_code").unwrap(),
        family(metrics, "probe_grpc_healthcheck_response"),
    )
}

fn health(serving: &str) -> Vec<String> {
    let mut lines: Vec<String> = ["NOT_SERVING", "SERVICE_UNKNOWN", "SERVING", "UNKNOWN"]
        .iter()
        .map(|s| {
            let v = if *s == serving { 1 } else { 0 };
            format!("probe_grpc_healthcheck_response{{serving_status=\"{s}\"}} {v}")
        })
        .collect();
    if !["", "NOT_SERVING", "SERVICE_UNKNOWN", "SERVING", "UNKNOWN"].contains(&serving) {
        lines.insert(
            0,
            format!("probe_grpc_healthcheck_response{{serving_status=\"{serving}\"}} 1"),
        );
    }
    lines.sort();
    lines
}

#[test]
fn a_serving_service_passes_and_the_others_fail_with_their_status() {
    let p = peers();
    let app = app();
    let plain = p.health.plain.to_string();
    for (module, expected) in [
        ("grpc", (1.0, 0.0, health("SERVING"))),
        ("grpc_notserving", (0.0, 0.0, health("NOT_SERVING"))),
        ("grpc_unknown", (0.0, 0.0, health("UNKNOWN"))),
        ("grpc_seven", (0.0, 0.0, health("7"))),
        ("grpc_unknown_service", (0.0, 5.0, health(""))),
        ("grpc_denied", (0.0, 7.0, health(""))),
    ] {
        let metrics = probe(&app, module, &plain);
        assert_eq!(outcome(&metrics), expected, "{module}");
        assert_eq!(value(&metrics, "probe_grpc_ssl"), Some(0.0), "{module}");
        assert!(value(&metrics, "probe_grpc_duration_seconds{phase=\"check\"}").is_some());
        assert!(value(&metrics, "probe_grpc_duration_seconds{phase=\"resolve\"}").is_some());
        assert!(family(&metrics, "probe_ssl_earliest_cert_expiry").is_empty());
    }
    // Each reached the server, which logs a call before answering it.
    for service in ["notserving", "nosuchservice", "denied", "seven"] {
        p.health.call(|call| call["service"] == service);
    }
}

#[test]
fn tls_calls_report_the_certificate_once_the_call_returned() {
    let p = peers();
    let app = app();
    let tls = p.health.tls.to_string();
    for (module, success, status, serving) in [
        ("grpc_tls", 1.0, 0.0, "SERVING"),
        ("grpc_tls12", 1.0, 0.0, "SERVING"),
        ("grpc_tls_server_name", 1.0, 0.0, "SERVING"),
        ("grpc_tls_insecure", 1.0, 0.0, "SERVING"),
        ("grpc_tls_notserving", 0.0, 0.0, "NOT_SERVING"),
    ] {
        let metrics = probe(&app, module, &tls);
        assert_eq!(
            outcome(&metrics),
            (success, status, health(serving)),
            "{module}"
        );
        assert_eq!(value(&metrics, "probe_grpc_ssl"), Some(1.0), "{module}");
        // 2030-01-01, the leaf's NotAfter.
        assert_eq!(
            value(&metrics, "probe_ssl_earliest_cert_expiry"),
            Some(1_893_456_000.0)
        );
        let version = if module == "grpc_tls12" {
            "TLS 1.2"
        } else {
            "TLS 1.3"
        };
        assert_eq!(
            family(&metrics, "probe_tls_version_info"),
            [format!("probe_tls_version_info{{version=\"{version}\"}} 1")]
        );
        let leaf = family(&metrics, "probe_ssl_last_chain_info");
        assert_eq!(leaf.len(), 1, "{module}");
        assert!(
            leaf[0].contains("subject=\"CN=localhost,O=Lookout\\\\, Inc.\""),
            "{leaf:?}"
        );
        assert!(
            leaf[0].contains("subjectalternative=\"localhost\""),
            "{leaf:?}"
        );
        // gRPC reports neither the chain's expiry nor the cipher (0.28).
        assert!(family(&metrics, "probe_ssl_last_chain_expiry_timestamp_seconds").is_empty());
        assert!(family(&metrics, "probe_tls_cipher_info").is_empty());
    }
    // A call that failed over TLS reports no TLS metrics (0.26, #1338).
    for (module, status) in [
        ("grpc_tls_unknown_service", 5.0),
        ("grpc_tls_wrong_name", 14.0),
        ("grpc_tls_no_ca", 14.0),
    ] {
        let metrics = probe(&app, module, &tls);
        assert_eq!(outcome(&metrics), (0.0, status, health("")), "{module}");
        assert_eq!(value(&metrics, "probe_grpc_ssl"), Some(0.0));
        for name in [
            "probe_ssl_earliest_cert_expiry",
            "probe_tls_version_info",
            "probe_ssl_last_chain_info",
        ] {
            assert!(family(&metrics, name).is_empty(), "{module} {name}");
        }
    }
}

#[test]
fn servers_that_do_not_speak_grpc_get_grpc_gos_status_codes() {
    let p = peers();
    let w = world();
    let app = app();
    for ((name, _, code, _), addr) in FOREIGN.iter().zip(&p.foreign) {
        let metrics = probe(&app, "grpc", &addr.to_string());
        let (success, serving) = if *code == 0 {
            (1.0, "SERVING")
        } else {
            (0.0, "")
        };
        assert_eq!(
            outcome(&metrics),
            (success, f64::from(*code), health(serving)),
            "{name}"
        );
    }
    for (module, target) in [
        ("grpc", w.http.to_string()),
        ("grpc", p.closed.to_string()),
        ("grpc", p.health.tls.to_string()),
        ("grpc_tls", p.health.plain.to_string()),
        ("grpc_tls_insecure", format!("localhost:{}", w.valid.port())),
        ("grpc", "127.0.0.1:99999".to_owned()),
    ] {
        let metrics = probe(&app, module, &target);
        assert_eq!(
            outcome(&metrics),
            (0.0, 14.0, health("")),
            "{module} {target}"
        );
    }
    // An h2 server over TLS answering 200 without a content-type.
    let metrics = probe(
        &app,
        "grpc_tls_insecure",
        &format!("localhost:{}", w.h2.port()),
    );
    assert_eq!(outcome(&metrics), (0.0, 2.0, health("")));
    assert!(family(&metrics, "probe_ssl_earliest_cert_expiry").is_empty());
}

#[test]
fn the_deadline_ends_a_call_to_a_silent_server_with_deadline_exceeded() {
    let p = peers();
    let app = app();
    for module in ["grpc_1s", "grpc_tls_1s"] {
        let metrics = probe(&app, module, &p.silent.to_string());
        assert_eq!(outcome(&metrics), (0.0, 4.0, health("")), "{module}");
        assert!(value(&metrics, "probe_grpc_duration_seconds{phase=\"check\"}").is_some());
        assert_eq!(value(&metrics, "probe_grpc_ssl"), Some(0.0));
    }
}

#[test]
fn metadata_arrives_as_grpc_go_sends_it() {
    let p = peers();
    let metrics = probe(&app(), "grpc_metadata", &p.health.plain.to_string());
    assert_eq!(outcome(&metrics), (1.0, 0.0, health("SERVING")));
    let call = p.health.call(|call| {
        call["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .any(|pair| pair[0] == "x-probe-case" && pair[1] == "metadata-arrives")
    });
    let pairs: BTreeSet<(String, String)> = call["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (key, value) in [
        ("authorization", "Bearer t0k3n"),
        ("key1", "v1"),
        ("key1", "2"),
        // The UTF-8 of "\u{ff}\0", sent as base64 and decoded by grpcio.
        ("trace-bin", "c3bf00"),
    ] {
        assert!(
            pairs.contains(&(key.to_owned(), value.to_owned())),
            "{key}: {value} not in {pairs:?}"
        );
    }
    assert!(
        pairs
            .iter()
            .any(|(k, v)| k == "user-agent" && v.starts_with("lookout/")),
        "{pairs:?}"
    );
}

#[test]
fn ipv6_literal_targets_work() {
    let p = peers();
    let Some(plain6) = p.health.plain6 else {
        eprintln!("skipped: ::1 cannot be bound here");
        return;
    };
    let metrics = probe(&app(), "grpc", &plain6.to_string());
    assert_eq!(outcome(&metrics), (1.0, 0.0, health("SERVING")));
    assert_eq!(value(&metrics, "probe_ip_protocol"), Some(6.0));
}

#[test]
fn the_target_policy_keeps_grpc_probes_from_denied_addresses() {
    let p = peers();
    let denied = spawn_app(
        &[
            "--config.file",
            p.modules.to_str().unwrap(),
            "--deny-target",
            "127.0.0.1",
        ],
        &[],
    );
    denied.admin_until("/readyz", |r| r.status == 200);
    let metrics = probe(&denied, "grpc_never_reached", &p.health.plain.to_string());
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert!(family(&metrics, "probe_grpc_healthcheck_response").is_empty());
    assert!(value(&metrics, "probe_grpc_duration_seconds{phase=\"check\"}").is_none());
    // A call made after the refused one has been answered, so the refused
    // one would have been seen first.
    probe(&app(), "grpc_sentinel", &p.health.plain.to_string());
    p.health.call(|call| call["service"] == "sentinel");
    assert!(!p
        .health
        .services_asked()
        .iter()
        .any(|s| s == "never-reached"));
}

#[test]
fn grpc_probes_answer_as_blackbox_exporter_does() {
    let p = peers();
    let w = world();
    let lookout = app();
    let blackbox = spawn_blackbox(&p.modules_0_23);
    let (plain, tls) = (p.health.plain, p.health.tls);
    let mut cases: Vec<(&str, String)> = vec![
        ("grpc", plain.to_string()),
        ("grpc_ip4", format!("localhost:{}", plain.port())),
        ("grpc_no_block", plain.to_string()),
        ("grpc_empty_block", plain.to_string()),
        ("grpc_notserving", plain.to_string()),
        ("grpc_unknown_service", plain.to_string()),
        ("grpc_unknown", plain.to_string()),
        ("grpc_seven", plain.to_string()),
        ("grpc_denied", plain.to_string()),
        ("grpc", format!("http://{plain}/any/path")),
        ("grpc", format!("https://{plain}")),
        ("grpc_tls", tls.to_string()),
        ("grpc_tls12", tls.to_string()),
        ("grpc_tls_notserving", tls.to_string()),
        ("grpc_tls_unknown_service", tls.to_string()),
        ("grpc_tls_server_name", tls.to_string()),
        ("grpc_tls_wrong_name", tls.to_string()),
        ("grpc_tls_no_ca", tls.to_string()),
        ("grpc_tls_insecure", tls.to_string()),
        ("grpc_tls", plain.to_string()),
        ("grpc", tls.to_string()),
        ("grpc", p.closed.to_string()),
        ("grpc", w.http.to_string()),
        ("grpc_tls_insecure", format!("localhost:{}", w.valid.port())),
        ("grpc_tls_insecure", format!("localhost:{}", w.h2.port())),
        ("grpc", "127.0.0.1:99999".to_owned()),
        ("grpc", "exa mple.com:1".to_owned()),
    ];
    let compared = FOREIGN
        .iter()
        .zip(&p.foreign)
        .filter(|((.., agree), _)| *agree);
    cases.extend(compared.map(|(_, addr)| ("grpc", addr.to_string())));

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
        let (ours, theirs) = since_0_23(&ours.body, &theirs.body, module);
        let ours = exposition(&ours);
        let case = format!("{module} {target}");
        differences.extend(compare(&case, &ours, &exposition(&theirs), same_or_timing));
        eprintln!("compared {case}: {} series", ours.0.len());
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
