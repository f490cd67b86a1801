//! `probe_tls_cipher_info` (blackbox_exporter 0.26, #1203): reported by the
//! http prober only, as in 0.28, with Go's name for the suite the server
//! chose (`tls.CipherSuiteName`), its HELP and TYPE lines word for word.
//! Debian's 0.23 lacks the metric, so this is checked against servers that
//! allow one suite each and record what they negotiated.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    thread,
};

use rustls::{
    crypto::{ring, CryptoProvider},
    CipherSuite, ServerConfig, ServerConnection, StreamOwned, SupportedCipherSuite,
};

use crate::{
    probe::{encode, parse},
    support::{request, spawn_app, spawn_with_modules},
    targets::Pki,
};

/// An HTTPS (and plain TLS) server that allows only `suite`; it records the
/// suite each handshake chose, then answers an HTTP request if one comes.
fn serve_only(
    pki: &Pki,
    suite: SupportedCipherSuite,
) -> (SocketAddr, Arc<Mutex<Vec<CipherSuite>>>) {
    let provider = CryptoProvider {
        cipher_suites: vec![suite],
        ..ring::default_provider()
    };
    let leaf = pki.leaf(&["localhost"], (2020, 2039));
    let config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[suite.version()])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let (config, record) = (Arc::clone(&config), Arc::clone(&record));
            thread::spawn(move || {
                let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
                while tls.conn.is_handshaking() {
                    if tls.conn.complete_io(&mut tls.sock).is_err() {
                        return;
                    }
                }
                if let Some(suite) = tls.conn.negotiated_cipher_suite() {
                    record.lock().unwrap().push(suite.suite());
                }
                let mut line = String::new();
                let mut reader = BufReader::new(&mut tls);
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                );
                let _ = tls.flush();
            });
        }
    });
    (addr, seen)
}

#[test]
fn the_cipher_suite_is_reported_for_https_by_go_s_name() {
    let pki = Pki::new("cipher test CA");
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with_modules(
        dir.path(),
        &format!(
            "modules:\n  https:\n    prober: http\n    http: {{tls_config: {{ca_file: {ca}}}}}\n  tls:\n    prober: tcp\n    tcp: {{tls: true, tls_config: {{ca_file: {ca}}}}}\n",
            ca = pki.ca_file(dir.path(), "ca.pem").display()
        ),
    );

    // Every suite lookout offers (rustls with ring, ECDSA certificates), by
    // the name Go's tls.CipherSuiteName gives it.
    for (suite, go_name) in [
        (
            ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            "TLS_AES_128_GCM_SHA256",
        ),
        (
            ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            "TLS_AES_256_GCM_SHA384",
        ),
        (
            ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            "TLS_CHACHA20_POLY1305_SHA256",
        ),
        (
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
    ] {
        let (addr, seen) = serve_only(&pki, suite);
        let target = format!("https://localhost:{}/", addr.port());
        let response = request(
            app.probe,
            "GET",
            &format!("/probe?module=https&target={}", encode(&target)),
            &[],
        );
        let metrics = parse(&response.body);
        let ciphers: Vec<&(String, f64)> = metrics
            .iter()
            .filter(|(series, _)| series.starts_with("probe_tls_cipher_info"))
            .collect();
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [suite.suite()],
            "{go_name}"
        );
        assert_eq!(
            ciphers,
            [&(
                format!("probe_tls_cipher_info{{cipher=\"{go_name}\"}}"),
                1.0
            )],
            "{}",
            response.body
        );
        for line in [
            "# HELP probe_tls_cipher_info Returns the TLS cipher negotiated during handshake",
            "# TYPE probe_tls_cipher_info gauge",
        ] {
            assert!(
                response.body.lines().any(|l| l == line),
                "{}",
                response.body
            );
        }

        // 0.28's tcp prober (and unix) reports the version, not the cipher.
        let response = request(
            app.probe,
            "GET",
            &format!(
                "/probe?module=tls&target={}",
                encode(&format!("localhost:{}", addr.port()))
            ),
            &[],
        );
        assert!(
            response.body.contains("probe_success 1"),
            "{}",
            response.body
        );
        assert!(
            response.body.contains("probe_tls_version_info{"),
            "{}",
            response.body
        );
        assert!(
            !response.body.contains("probe_tls_cipher_info"),
            "{}",
            response.body
        );
    }
}

#[test]
fn plain_http_has_no_cipher() {
    let app = spawn_app(&[], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let target = format!("http://{}/", crate::targets::world().http);
    let response = request(
        app.probe,
        "GET",
        &format!("/probe?module=http_2xx&target={}", encode(&target)),
        &[],
    );
    assert!(
        response.body.contains("probe_success 1"),
        "{}",
        response.body
    );
    assert!(
        !response.body.contains("probe_tls_cipher_info"),
        "{}",
        response.body
    );
}
