//! /probe and `lookout probe` against real local targets.

use crate::{
    support::{lookout, request, spawn_app, App},
    targets::{world, LAST_MODIFIED_UNIX},
};

fn app() -> App {
    let app = spawn_app(&["--config.file", world().modules.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

/// Probes and parses the exposition into (series, value) pairs.
pub fn probe(app: &App, module: &str, target: &str) -> Vec<(String, f64)> {
    let response = request(
        app.probe,
        "GET",
        &format!("/probe?module={module}&target={}", encode(target)),
        &[],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&response.body)
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn parse(exposition: &str) -> Vec<(String, f64)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

pub fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

fn has(metrics: &[(String, f64)], prefix: &str) -> bool {
    metrics.iter().any(|(s, _)| s.starts_with(prefix))
}

#[test]
fn a_missing_target_is_a_400() {
    let app = app();
    let response = request(app.probe, "GET", "/probe?module=http_2xx", &[]);
    assert_eq!(
        (response.status, response.body.as_str()),
        (400, "Target parameter is missing\n")
    );
}

#[test]
fn an_unknown_module_is_a_400_and_counted() {
    let app = app();
    let response = request(
        app.probe,
        "GET",
        "/probe?module=nope&target=example.org",
        &[],
    );
    assert_eq!(
        (response.status, response.body.as_str()),
        (400, "Unknown module \"nope\"\n")
    );
    let metrics = app.admin("GET", "/metrics").body;
    assert!(
        metrics.contains("blackbox_module_unknown_total 1"),
        "{metrics}"
    );
}

#[test]
fn a_plain_http_200_succeeds_with_blackbox_metrics() {
    let app = app();
    let target = format!("http://{}/ok", world().http);
    // `module` defaults to http_2xx.
    let response = request(
        app.probe,
        "GET",
        &format!("/probe?target={}", encode(&target)),
        &[],
    );
    let m = parse(&response.body);
    assert_eq!(value(&m, "probe_success"), Some(1.0));
    assert_eq!(value(&m, "probe_http_status_code"), Some(200.0));
    assert_eq!(value(&m, "probe_http_content_length"), Some(12.0));
    assert_eq!(value(&m, "probe_http_uncompressed_body_length"), Some(12.0));
    assert_eq!(value(&m, "probe_http_version"), Some(1.1));
    assert_eq!(value(&m, "probe_http_ssl"), Some(0.0));
    assert_eq!(value(&m, "probe_ip_protocol"), Some(4.0));
    assert_eq!(value(&m, "probe_ip_addr_hash"), Some(3_668_918_509.0));
    assert_eq!(
        value(&m, "probe_http_last_modified_timestamp_seconds"),
        Some(LAST_MODIFIED_UNIX)
    );
    for phase in ["resolve", "connect", "tls", "processing", "transfer"] {
        assert!(
            value(
                &m,
                &format!("probe_http_duration_seconds{{phase=\"{phase}\"}}")
            )
            .is_some(),
            "{phase}"
        );
    }
    let metrics = app.admin("GET", "/metrics").body;
    assert!(
        metrics.contains("lookout_probes_total{module=\"http_2xx\",result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lookout_probe_duration_seconds_count{module=\"http_2xx\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("lookout_probes_in_flight 0"), "{metrics}");
}

#[test]
fn status_redirects_and_regexps_decide_success() {
    let app = app();
    let http = world().http;
    let m = probe(&app, "http_2xx", &format!("{http}/notfound"));
    assert_eq!(
        (
            value(&m, "probe_success"),
            value(&m, "probe_http_status_code")
        ),
        (Some(0.0), Some(404.0))
    );
    let m = probe(&app, "http_404", &format!("{http}/notfound"));
    assert_eq!(value(&m, "probe_success"), Some(1.0));

    let m = probe(&app, "http_2xx", &format!("{http}/redirect/3"));
    assert_eq!(
        (
            value(&m, "probe_success"),
            value(&m, "probe_http_redirects")
        ),
        (Some(1.0), Some(3.0))
    );
    let m = probe(&app, "http_2xx", &format!("{http}/redirect/11"));
    assert_eq!(
        (
            value(&m, "probe_success"),
            value(&m, "probe_http_redirects")
        ),
        (Some(0.0), Some(11.0))
    );
    let m = probe(&app, "http_no_redirects", &format!("{http}/redirect/1"));
    assert_eq!(value(&m, "probe_http_status_code"), Some(302.0));
    assert_eq!(value(&m, "probe_http_redirects"), Some(1.0));

    let m = probe(&app, "http_body_healthy", &format!("{http}/healthy"));
    assert_eq!(
        (
            value(&m, "probe_success"),
            value(&m, "probe_failed_due_to_regex")
        ),
        (Some(1.0), Some(0.0))
    );
    let m = probe(&app, "http_body_healthy", &format!("{http}/ok"));
    assert_eq!(
        (
            value(&m, "probe_success"),
            value(&m, "probe_failed_due_to_regex")
        ),
        (Some(0.0), Some(1.0))
    );
    let m = probe(&app, "http_header_html", &format!("{http}/ok"));
    assert_eq!(
        (
            value(&m, "probe_success"),
            value(&m, "probe_failed_due_to_regex")
        ),
        (Some(0.0), Some(1.0))
    );

    let m = probe(&app, "http_post", &format!("{http}/method"));
    assert_eq!(
        value(&m, "probe_http_content_length"),
        Some(5.0),
        "the server echoed POST"
    );
    let m = probe(&app, "http_2xx", &format!("{http}/chunked"));
    assert_eq!(value(&m, "probe_http_content_length"), Some(-1.0));
    let m = probe(&app, "http_ssl_required", &format!("{http}/ok"));
    assert_eq!(value(&m, "probe_success"), Some(0.0));
}

#[test]
fn a_closed_port_fails_without_an_http_error() {
    let app = app();
    let m = probe(&app, "http_2xx", &format!("http://{}/", world().closed));
    assert_eq!(value(&m, "probe_success"), Some(0.0));
    assert_eq!(value(&m, "probe_http_status_code"), Some(0.0));
    let m = probe(&app, "tcp_connect", &world().closed.to_string());
    assert_eq!(value(&m, "probe_success"), Some(0.0));
    let m = probe(&app, "tcp_connect", &world().http.to_string());
    assert_eq!(value(&m, "probe_success"), Some(1.0));
}

#[test]
fn the_module_timeout_bounds_a_slow_target() {
    let app = app();
    // The target never answers: only the module's 1 s deadline can end the
    // probe (the request itself would give up after PATIENCE), and it cannot
    // end before it.
    let m = probe(&app, "http_1s", &format!("http://{}/hang", world().http));
    assert_eq!(value(&m, "probe_success"), Some(0.0));
    let took = value(&m, "probe_duration_seconds").unwrap();
    assert!(took >= 1.0, "gave up early: {took}");
}

#[test]
fn the_scrape_timeout_header_caps_the_probe() {
    let app = app();
    let target = format!("http://{}/hang", world().http);
    let response = request(
        app.probe,
        "GET",
        &format!("/probe?module=http_2xx&target={}", encode(&target)),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    let m = parse(&response.body);
    assert_eq!(value(&m, "probe_success"), Some(0.0));
    // A target that never answers, and a module without timeout: only the
    // header's 1.5 s minus the 0.5 s offset can have ended it.
    let took = value(&m, "probe_duration_seconds").unwrap();
    assert!(took >= 1.0, "gave up early: {took}");
}

#[test]
fn a_valid_certificate_reports_the_chain() {
    let app = app();
    let m = probe(
        &app,
        "http_ca",
        &format!("https://localhost:{}/ok", world().valid.port()),
    );
    assert_eq!(value(&m, "probe_success"), Some(1.0), "{m:?}");
    assert_eq!(value(&m, "probe_http_ssl"), Some(1.0));
    // 2030-01-01T00:00:00Z, the leaf's NotAfter.
    assert_eq!(
        value(&m, "probe_ssl_earliest_cert_expiry"),
        Some(1_893_456_000.0)
    );
    assert_eq!(
        value(&m, "probe_ssl_last_chain_expiry_timestamp_seconds"),
        Some(1_893_456_000.0)
    );
    assert_eq!(
        value(&m, "probe_tls_version_info{version=\"TLS 1.3\"}"),
        Some(1.0)
    );
    let info = m
        .iter()
        .find(|(s, _)| s.starts_with("probe_ssl_last_chain_info{"))
        .unwrap();
    assert!(
        info.0
            .contains("subject=\"CN=localhost,O=Lookout\\\\, Inc.\""),
        "{info:?}"
    );
    assert!(
        info.0
            .contains("issuer=\"CN=lookout test CA,O=lookout tests\""),
        "{info:?}"
    );
    assert!(
        info.0.contains("subjectalternative=\"localhost\""),
        "{info:?}"
    );
    // 0.26 and later: the serial in lower-case hex without leading zero bytes,
    // and the cipher suite by its IANA name, as Go names it.
    let serial = info
        .0
        .split("serialnumber=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        !serial.is_empty()
            && !serial.starts_with("00")
            && serial
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{info:?}"
    );
    let cipher = m
        .iter()
        .find_map(|(s, v)| Some((s.strip_prefix("probe_tls_cipher_info{cipher=\"")?, *v)))
        .unwrap();
    assert!(
        [
            "TLS_AES_256_GCM_SHA384\"}",
            "TLS_AES_128_GCM_SHA256\"}",
            "TLS_CHACHA20_POLY1305_SHA256\"}"
        ]
        .contains(&cipher.0)
            && cipher.1 == 1.0,
        "{cipher:?}"
    );

    let m = probe(
        &app,
        "http_ca_tls12",
        &format!("https://localhost:{}/", world().valid.port()),
    );
    assert_eq!(
        value(&m, "probe_tls_version_info{version=\"TLS 1.2\"}"),
        Some(1.0)
    );
    let m = probe(
        &app,
        "tls_ca",
        &format!("localhost:{}", world().valid.port()),
    );
    assert_eq!(value(&m, "probe_success"), Some(1.0));
    assert_eq!(
        value(&m, "probe_ssl_earliest_cert_expiry"),
        Some(1_893_456_000.0)
    );
}

#[test]
fn http2_is_negotiated_by_alpn_unless_disabled() {
    let app = app();
    let target = format!("https://localhost:{}/", world().h2.port());
    let m = probe(&app, "http_ca", &target);
    assert_eq!(value(&m, "probe_success"), Some(1.0), "{m:?}");
    assert_eq!(value(&m, "probe_http_version"), Some(2.0));
    assert_eq!(value(&m, "probe_http_uncompressed_body_length"), Some(14.0));
    let m = probe(&app, "http_ca_no_h2", &target);
    assert_eq!(value(&m, "probe_http_version"), Some(1.1));
}

#[test]
fn bad_certificates_fail_without_tls_metrics() {
    let app = app();
    let w = world();
    for (name, addr) in [
        ("expired", w.expired),
        ("wrong host", w.wrong_host),
        ("unknown CA", w.unknown_ca),
        ("self-signed", w.self_signed),
    ] {
        let m = probe(
            &app,
            "http_ca",
            &format!("https://localhost:{}/", addr.port()),
        );
        assert_eq!(value(&m, "probe_success"), Some(0.0), "{name}");
        assert!(!has(&m, "probe_ssl_"), "{name}: {m:?}");
        let m = probe(&app, "tls_ca", &format!("localhost:{}", addr.port()));
        assert_eq!(value(&m, "probe_success"), Some(0.0), "{name} over tcp");
    }
    // Without ca_file only the compiled-in roots count: the test CA is unknown.
    let m = probe(
        &app,
        "http_2xx",
        &format!("https://localhost:{}/", w.valid.port()),
    );
    assert_eq!(value(&m, "probe_success"), Some(0.0));
    // insecure_skip_verify accepts it, and reports no verified chain (Go's zero time).
    let m = probe(
        &app,
        "http_insecure",
        &format!("https://localhost:{}/", w.self_signed.port()),
    );
    assert_eq!(value(&m, "probe_success"), Some(1.0));
    assert_eq!(
        value(&m, "probe_ssl_last_chain_expiry_timestamp_seconds"),
        Some(-62_135_596_800.0)
    );
}

#[test]
fn lookout_probe_prints_metrics_and_exits_0_or_1() {
    let modules = world().modules.to_str().unwrap();
    let ok = lookout()
        .args([
            "probe",
            &format!("http://{}/ok", world().http),
            "--config.file",
            modules,
        ])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        value(
            &parse(&String::from_utf8_lossy(&ok.stdout)),
            "probe_success"
        ),
        Some(1.0)
    );

    let failed = lookout()
        .args([
            "probe",
            &world().closed.to_string(),
            "--module",
            "tcp_connect",
            "--config.file",
            modules,
        ])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        value(
            &parse(&String::from_utf8_lossy(&failed.stdout)),
            "probe_success"
        ),
        Some(0.0)
    );

    let unknown = lookout()
        .args([
            "probe",
            "example.org",
            "--module",
            "nope",
            "--config.file",
            modules,
        ])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown module \"nope\""));
}

#[test]
fn module_options_reach_the_wire() {
    let app = app();
    let (http, w) = (world().http, world());
    let success =
        |module: &str, target: String| value(&probe(&app, module, &target), "probe_success");
    // Credentials and headers as the target checks them (401 without).
    assert_eq!(
        success("http_basic_auth", format!("http://{http}/basic-auth")),
        Some(1.0)
    );
    assert_eq!(
        success("http_2xx", format!("http://{http}/basic-auth")),
        Some(0.0)
    );
    assert_eq!(
        success("http_bearer", format!("http://{http}/bearer")),
        Some(1.0)
    );
    assert_eq!(
        success("http_headers", format!("http://{http}/needs-header")),
        Some(1.0)
    );
    // server_name makes an IP target verify against the certificate's DNS name.
    assert_eq!(
        success(
            "http_server_name",
            format!("https://127.0.0.1:{}/", w.valid.port())
        ),
        Some(1.0)
    );
    assert_eq!(
        success("http_ca", format!("https://127.0.0.1:{}/", w.valid.port())),
        Some(0.0)
    );
    // A client certificate for a server that demands one.
    assert_eq!(
        success(
            "http_client_cert",
            format!("https://localhost:{}/", w.mutual.port())
        ),
        Some(1.0)
    );
    assert_eq!(
        success("http_ca", format!("https://localhost:{}/", w.mutual.port())),
        Some(0.0)
    );
    // ip4 without fallback cannot reach an IPv6 literal.
    assert_eq!(
        success("http_ip4_only", format!("http://[::1]:{}/", http.port())),
        Some(0.0)
    );
    assert_eq!(success("tcp_from_loopback", http.to_string()), Some(1.0));

    let m = probe(&app, "http_body_limit", &format!("http://{http}/big"));
    assert_eq!(value(&m, "probe_success"), Some(0.0));
    assert_eq!(
        value(&m, "probe_http_uncompressed_body_length"),
        Some(1024.0)
    );
    assert_eq!(value(&m, "probe_http_content_length"), Some(5000.0));
    let m = probe(&app, "http_not_plain_text", &format!("http://{http}/ok"));
    assert_eq!(
        (
            value(&m, "probe_success"),
            value(&m, "probe_failed_due_to_regex")
        ),
        (Some(0.0), Some(1.0))
    );
    let m = probe(
        &app,
        "http_tls13",
        &format!("https://localhost:{}/", w.valid.port()),
    );
    assert_eq!(
        value(&m, "probe_tls_version_info{version=\"TLS 1.3\"}"),
        Some(1.0)
    );
}

#[test]
fn the_unix_prober_connects_only_to_listed_sockets() {
    use std::os::unix::net::UnixListener;
    let dir = tempfile::tempdir().unwrap();
    let (plain, tls, unlisted) = (
        dir.path().join("plain.sock"),
        dir.path().join("tls.sock"),
        dir.path().join("unlisted.sock"),
    );
    // A plain listener, a TLS one (a leaf of the test CA), and one nobody listed.
    for path in [&plain, &unlisted] {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || for _ in listener.incoming() {});
    }
    let pki = crate::targets::Pki::new("unix CA");
    let config = crate::targets::server_tls(
        pki.leaf(&["localhost"], (2020, 2040)),
        &[&rustls::version::TLS13],
    );
    let listener = UnixListener::bind(&tls).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let config = std::sync::Arc::clone(&config);
            std::thread::spawn(move || {
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                let mut stream = stream;
                while conn.is_handshaking() {
                    if conn.complete_io(&mut stream).is_err() {
                        return;
                    }
                }
                let _ = conn.complete_io(&mut stream);
            });
        }
    });
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let modules = dir.path().join("blackbox.yml");
    std::fs::write(
        &modules,
        format!(
            "modules:\n  unix_connect:\n    prober: unix\n  unix_tls:\n    prober: unix\n    unix:\n      tls: true\n      tls_config:\n        ca_file: {}\n        server_name: localhost\n",
            ca.display()
        ),
    )
    .unwrap();
    let allowed = format!("{},{}", plain.display(), tls.display());
    let app = spawn_app(
        &[
            "--config.file",
            modules.to_str().unwrap(),
            "--allow-unix-socket",
            &allowed,
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);

    let m = probe(&app, "unix_connect", plain.to_str().unwrap());
    assert_eq!(value(&m, "probe_success"), Some(1.0), "{m:?}");
    assert_eq!(value(&m, "probe_failed_due_to_regex"), Some(0.0));
    assert_eq!(value(&m, "probe_failed_due_to_bytes"), Some(0.0));
    assert_eq!(
        value(&m, "probe_ip_protocol"),
        None,
        "no address was resolved"
    );

    let m = probe(&app, "unix_tls", tls.to_str().unwrap());
    assert_eq!(value(&m, "probe_success"), Some(1.0), "{m:?}");
    assert_eq!(
        value(&m, "probe_tls_version_info{version=\"TLS 1.3\"}"),
        Some(1.0)
    );
    assert!(m
        .iter()
        .any(|(s, _)| s.starts_with("probe_ssl_last_chain_info{")));

    // Not listed, or listed under another spelling: never connected to.
    for target in [
        unlisted.display().to_string(),
        format!("{}/./plain.sock", dir.path().display()),
    ] {
        let m = probe(&app, "unix_connect", &target);
        assert_eq!(value(&m, "probe_success"), Some(0.0), "{target}");
        assert_eq!(
            value(&m, "probe_failed_due_to_regex"),
            None,
            "{target}: not connected"
        );
    }
    app.log_line("is not listed by --allow-unix-socket");
}

#[test]
fn tls_config_takes_ca_cert_and_key_written_inline() {
    // The world's CA and client certificate, written into the modules file
    // itself (prometheus/common's `ca`, `cert` and `key`), as YAML block
    // scalars indented under their keys.
    let w = world();
    let dir = w.modules.parent().unwrap();
    let inline = |file: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let indented: String = text.lines().map(|l| format!("          {l}\n")).collect();
        format!("|\n{indented}")
    };
    let modules = format!(
        "modules:\n  inline_ca:\n    prober: http\n    http:\n      tls_config:\n        ca: {ca}  inline_client:\n    prober: http\n    http:\n      tls_config:\n        ca: {ca}        cert: {cert}        key: {key}",
        ca = inline("ca.pem"),
        cert = inline("client.pem"),
        key = inline("client.key"),
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &modules).unwrap();
    let app = spawn_app(&["--config.file", file.path().to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let success = |module: &str, addr: std::net::SocketAddr| {
        value(
            &probe(&app, module, &format!("https://localhost:{}/", addr.port())),
            "probe_success",
        )
    };
    assert_eq!(success("inline_ca", w.valid), Some(1.0));
    assert_eq!(success("inline_ca", w.unknown_ca), Some(0.0));
    // The server that demands a client certificate takes the inline one...
    assert_eq!(success("inline_client", w.mutual), Some(1.0));
    // ...and refuses the handshake without it.
    assert_eq!(success("inline_ca", w.mutual), Some(0.0));
    // The key is a secret: /config shows it as such.
    let config = app.admin("GET", "/config").body;
    assert!(!config.contains("PRIVATE KEY"), "{config}");
    assert!(config.contains("key: <secret>"), "{config}");
    assert!(config.contains("BEGIN CERTIFICATE"), "{config}");
}
