//! `--web.config.file`: exporter-toolkit's web configuration, against real
//! TLS clients (certificates made here with rcgen), real bcrypt hashes (made
//! by `htpasswd -B` and by the bcrypt crate), and the attacks each guard was
//! written against.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Barrier},
    time::Duration,
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use rustls::{
    pki_types::{CertificateDer, ServerName},
    ClientConfig, RootCertStore, SupportedProtocolVersion,
};

use crate::{
    hardening::pem,
    support::{
        lookout, parse_response, request, spawn_app, spawn_process, write, App, Response, PATIENCE,
    },
    targets::{self_signed, Leaf, Pki},
};

/// A bcrypt hash of `password` made by Apache's `htpasswd -B` (cost `cost`).
pub fn htpasswd(password: &str, cost: u32) -> String {
    let output = Command::new("htpasswd")
        .args(["-nbBC", &cost.to_string(), "", password])
        .output()
        .expect("htpasswd runs (apt: apache2-utils)");
    assert!(output.status.success(), "{output:?}");
    let line = String::from_utf8(output.stdout).unwrap();
    line.trim().trim_start_matches(':').to_owned()
}

/// A directory with a server certificate for `localhost` signed by `pki`
/// (tls.crt, tls.key), and `web.yml` holding `yaml`.
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new(pki: &Pki) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let leaf = pki.leaf(&["localhost"], (2020, 2040));
        write(
            &dir.path().join("tls.crt"),
            &pem("CERTIFICATE", &leaf.chain[0]),
        );
        write(
            &dir.path().join("tls.key"),
            &pem("PRIVATE KEY", leaf.key.secret_der()),
        );
        Self { dir }
    }

    /// Writes `name` (relative to the directory) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        write(&path, text);
        path
    }

    pub fn web(&self, yaml: &str) -> String {
        self.write("web.yml", yaml).display().to_string()
    }
}

/// A TLS client of lookout's listeners.
#[derive(Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
}

impl Client {
    /// Trusts `ca`; presents `identity` when asked; speaks `versions`.
    pub fn new(
        ca: &CertificateDer<'static>,
        identity: Option<&Leaf>,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Self {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots);
        let config = match identity {
            Some(leaf) => builder
                .with_client_auth_cert(leaf.chain.clone(), leaf.key.clone_key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        Self {
            config: Arc::new(config),
        }
    }

    /// Both TLS versions.
    pub fn any(ca: &CertificateDer<'static>, identity: Option<&Leaf>) -> Self {
        Self::new(
            ca,
            identity,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }

    /// One GET on a fresh connection; `Err` when the handshake or the
    /// exchange fails (a refused client certificate, a version refused).
    pub fn get(
        &self,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        let name = ServerName::try_from("localhost").unwrap();
        let connection = rustls::ClientConnection::new(Arc::clone(&self.config), name).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| format!("handshake: {e}"))?;
        }
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // Some servers close without close_notify; what came is the answer.
            Err(_) if !raw.is_empty() => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        if raw.is_empty() {
            return Err("closed without an answer".into());
        }
        Ok(parse_response(&raw))
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn tls_block(extra: &str) -> String {
    format!("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n{extra}")
}

/// A sample of `app`'s own metrics, fetched with `client` and `auth`.
fn metric(app: &App, client: &Client, auth: &str, series: &str) -> f64 {
    let response = client
        .get(app.admin, "/metrics", &[("Authorization", auth)])
        .unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    response
        .body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn the_documented_example_serves_tls_and_admits_only_the_bcrypt_users() {
    // exporter-toolkit's docs/web-config.yml, with hashes made by htpasswd.
    let pki = Pki::new("web CA");
    let files = Files::new(&pki);
    let web = files.web(&format!(
        "# TLS and basic authentication configuration example.\n{}\
         basic_auth_users:\n  alice: {}\n  bob: {}\n\
         rate_limit:\n  interval: \"1s\"\n  burst: 20\n",
        tls_block(""),
        htpasswd("alice's password", 5),
        htpasswd("bob:s password", 5),
    ));
    let app = spawn_app(&["--web.config.file", &web], &[]);
    let client = Client::any(pki.ca.der(), None);
    let get = |path: &str, auth: &str| {
        client
            .get(app.probe, path, &[("Authorization", auth)])
            .unwrap()
            .status
    };
    assert_eq!(get("/-/healthy", ""), 200, "open for the kubelet");
    assert_eq!(get("/", &basic("alice", "alice's password")), 200);
    assert_eq!(
        get("/", &basic("bob", "bob:s password")),
        200,
        "a colon in the password"
    );
    for (user, password) in [
        ("alice", "alice's passwor"),
        ("alice", "alice's password "),
        ("alice", "Alice's password"),
        ("alice", ""),
        ("bob", "bob"),
        ("carol", "alice's password"),
        ("", "alice's password"),
        ("ALICE", "alice's password"),
    ] {
        let response = client
            .get(app.probe, "/", &[("Authorization", &basic(user, password))])
            .unwrap();
        assert_eq!(response.status, 401, "{user}:{password}");
        assert_eq!(
            response.header("www-authenticate"),
            Some("Basic realm=\"lookout\"")
        );
        assert_eq!(response.body, "Unauthorized\n");
    }
    // Plain HTTP gets no answer from a TLS listener.
    let mut plain = TcpStream::connect(app.probe).unwrap();
    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    plain
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

#[test]
fn malformed_authorization_fields_get_401_and_nothing_else() {
    let pki = Pki::new("web CA");
    let files = Files::new(&pki);
    let hash = bcrypt::hash("s3cret!", 4).unwrap();
    let web = files.web(&format!(
        "{}basic_auth_users:\n  alice: '{hash}'\n",
        tls_block("")
    ));
    let app = spawn_app(&["--web.config.file", &web], &[]);
    let client = Client::any(pki.ca.der(), None);
    // 13 bytes: base64 pads it with "==".
    let good = basic("alice", "s3cret!");
    let token = good.trim_start_matches("Basic ");
    assert_eq!(
        client
            .get(app.probe, "/", &[("Authorization", &good)])
            .unwrap()
            .status,
        200
    );
    let status = |fields: &[&str]| {
        let headers: Vec<(&str, &str)> = fields.iter().map(|f| ("Authorization", *f)).collect();
        client.get(app.probe, "/", &headers).unwrap().status
    };
    for field in [
        String::new(),
        "Basic".into(),
        "Basic ".into(),
        format!("Bearer {token}"),
        format!("Basic{token}"),
        format!("Basic\t{token}"),
        format!("Basic {token}="),
        format!("Basic {token} extra"),
        format!("Digest {token}"),
        "Basic !!!!".into(),
        format!("Basic {}", STANDARD.encode("alice")),
        format!("Basic {}", STANDARD.encode("alice:s3cret!\0")),
        format!("Basic {}", STANDARD.encode(b"alice:s3cret!\xff")),
        format!("Basic {}", STANDARD.encode("alice:s3cret")),
        format!("Basic {}", STANDARD.encode(" alice:s3cret!")),
        format!("Basic {}", "A".repeat(8000)),
    ] {
        assert_eq!(status(&[&field]), 401, "{field:?}");
    }
    // Two fields are refused, whichever comes first.
    assert_eq!(status(&[&good, &good]), 401);
    assert_eq!(status(&[&basic("alice", "x"), &good]), 401);
    // The scheme in any case, padding or not: still the same credentials.
    assert_eq!(status(&[&format!("bAsIc {token}")]), 200);
    assert!(token.ends_with("=="));
    assert_eq!(
        status(&[&format!("Basic {}", token.trim_end_matches('='))]),
        200
    );
}

#[test]
fn a_flood_of_wrong_passwords_waits_its_turn_while_the_scraper_is_answered_from_the_cache() {
    let pki = Pki::new("web CA");
    let files = Files::new(&pki);
    // Cost 8: slow enough that the flood queues up behind one bcrypt at a time.
    let web = files.web(&format!(
        "{}basic_auth_users:\n  prometheus: {}\n",
        tls_block(""),
        htpasswd("scrape", 8)
    ));
    let app = Arc::new(spawn_app(&["--web.config.file", &web], &[]));
    let client = Client::any(pki.ca.der(), None);
    let scraper = basic("prometheus", "scrape");
    let series =
        |outcome: &str| format!("lookout_basic_auth_checks_total{{outcome=\"{outcome}\"}}");
    assert_eq!(metric(&app, &client, &scraper, &series("bcrypt")), 1.0);

    const FLOOD: usize = 64;
    let start = Arc::new(Barrier::new(FLOOD + 1));
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| {
            let (app, client, start) = (Arc::clone(&app), client.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let guess = basic("prometheus", &format!("guess {i}"));
                client
                    .get(app.probe, "/", &[("Authorization", &guess)])
                    .unwrap()
                    .status
            })
        })
        .collect();
    start.wait();
    // Meanwhile the scraper's requests never wait for bcrypt.
    for _ in 0..10 {
        let response = client
            .get(app.probe, "/", &[("Authorization", &scraper)])
            .unwrap();
        assert_eq!(response.status, 200, "{response:?}");
    }
    let statuses: Vec<u16> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "a guess got in, or something else: {statuses:?}"
    );
    let busy = statuses.iter().filter(|s| **s == 503).count() as f64;
    // Every guess was either computed once or turned away; the scraper's
    // requests (10, and the metrics fetches) came from the cache.
    let computed = metric(&app, &client, &scraper, &series("bcrypt"));
    assert_eq!(
        computed + metric(&app, &client, &scraper, &series("busy")),
        1.0 + FLOOD as f64
    );
    assert_eq!(metric(&app, &client, &scraper, &series("busy")), busy);
    assert!(metric(&app, &client, &scraper, &series("cached")) >= 10.0);
    // The same wrong password again is answered from the cache.
    let before = metric(&app, &client, &scraper, &series("bcrypt"));
    let stale = basic("prometheus", "stale password");
    for _ in 0..5 {
        let status = client
            .get(app.probe, "/", &[("Authorization", &stale)])
            .unwrap()
            .status;
        assert_eq!(status, 401);
    }
    assert_eq!(
        metric(&app, &client, &scraper, &series("bcrypt")),
        before + 1.0
    );
}

#[test]
fn a_prometheus_style_scrape_over_mutual_tls_gets_the_probe_and_the_metrics() {
    let pki = Pki::new("web CA");
    let clients = Pki::new("client CA");
    let files = Files::new(&pki);
    files.write("client-ca.pem", &clients.ca_pem());
    let web = files.web(&tls_block(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n",
    ));
    // blackbox_exporter's flags, one address, as Prometheus would scrape it.
    let app = spawn_process(
        &[
            "--web.listen-address=127.0.0.1:0",
            "--web.config.file",
            &web,
        ],
        &[],
    );
    // Listening comes before the modules are loaded, and /readyz is behind mutual TLS
    // too: the log says when probes are served (a loaded machine showed the gap).
    app.log_line("warm-up done; ready");
    let prometheus = clients.leaf(&["prometheus.monitoring.svc"], (2020, 2040));
    let client = Client::any(pki.ca.der(), Some(&prometheus));
    let scrape = |path: &str| {
        client
            .get(
                app.probe,
                path,
                &[
                    ("User-Agent", "Prometheus/2.53.0"),
                    ("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                    ("X-Prometheus-Scrape-Timeout-Seconds", "10"),
                ],
            )
            .unwrap()
    };
    let target = format!("127.0.0.1:{}", app.probe.port());
    let probe = scrape(&format!("/probe?module=tcp_connect&target={target}"));
    assert_eq!(probe.status, 200, "{probe:?}");
    assert!(probe.body.contains("probe_success 1"), "{}", probe.body);
    let metrics = scrape("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .body
        .contains("blackbox_exporter_config_last_reload_successful"));
    // Readiness's own check of the listener has no client certificate: the
    // listener's refusal is its answer.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if scrape("/readyz").status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {:?}",
            app.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_certificate_that_is_missing_or_from_another_ca_is_refused() {
    let pki = Pki::new("web CA");
    let clients = Pki::new("client CA");
    let strangers = Pki::new("another CA");
    let files = Files::new(&pki);
    files.write("client-ca.pem", &clients.ca_pem());
    let web = files.web(&tls_block(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n",
    ));
    let app = spawn_app(&["--web.config.file", &web], &[]);
    let ca = pki.ca.der();
    let member = clients.leaf(&["member"], (2020, 2040));
    let stranger = strangers.leaf(&["member"], (2020, 2040));
    let forged = self_signed("member");
    let expired = clients.leaf(&["member"], (2001, 2002));
    for tls13 in [true, false] {
        let versions: &[&'static SupportedProtocolVersion] = if tls13 {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS12]
        };
        let get =
            |identity: Option<&Leaf>| Client::new(ca, identity, versions).get(app.probe, "/", &[]);
        assert_eq!(get(Some(&member)).unwrap().status, 200, "tls13 {tls13}");
        for (what, identity) in [
            ("none", None),
            ("another CA", Some(&stranger)),
            ("self-signed", Some(&forged)),
            ("expired", Some(&expired)),
        ] {
            let result = get(identity);
            assert!(result.is_err(), "{what} (tls13 {tls13}) got in: {result:?}");
        }
    }
    // The admin listener is guarded the same way.
    let refused = Client::any(ca, None).get(app.admin, "/metrics", &[]);
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        Client::any(ca, Some(&member))
            .get(app.admin, "/metrics", &[])
            .unwrap()
            .status,
        200
    );
}

#[test]
fn each_client_auth_type_asks_and_checks_as_go_does() {
    let pki = Pki::new("web CA");
    let clients = Pki::new("client CA");
    let files = Files::new(&pki);
    files.write("client-ca.pem", &clients.ca_pem());
    let member = clients.leaf(&["member"], (2020, 2040));
    let stranger = self_signed("stranger");
    // Who gets in: (no certificate, the CA's member, a self-signed stranger).
    for (auth, extra, admitted) in [
        ("NoClientCert", "", (true, true, true)),
        ("RequestClientCert", "", (true, true, true)),
        ("RequireAnyClientCert", "", (false, true, true)),
        ("RequireClientCert", "", (false, true, true)),
        (
            "RequireAnyClientCert",
            "  max_version: TLS12\n",
            (false, true, true),
        ),
        (
            "VerifyClientCertIfGiven",
            "  client_ca_file: client-ca.pem\n",
            (true, true, false),
        ),
        (
            "RequireAndVerifyClientCert",
            "  client_ca_file: client-ca.pem\n",
            (false, true, false),
        ),
        (
            "RequireAndVerifyClientCert",
            "  client_ca_file: client-ca.pem\n  max_version: TLS12\n",
            (false, true, false),
        ),
    ] {
        let web = files.web(&tls_block(&format!("  client_auth_type: {auth}\n{extra}")));
        let app = spawn_app(&["--web.config.file", &web], &[]);
        let gets_in = |identity: Option<&Leaf>| {
            Client::any(pki.ca.der(), identity)
                .get(app.probe, "/", &[])
                .is_ok_and(|r| r.status == 200)
        };
        assert_eq!(
            (
                gets_in(None),
                gets_in(Some(&member)),
                gets_in(Some(&stranger))
            ),
            admitted,
            "{auth} {extra}"
        );
        // Readiness checks the listener without a certificate: a refusal
        // for want of one still shows the listener answers.
        let member_client = Client::any(pki.ca.der(), Some(&member));
        let deadline = std::time::Instant::now() + PATIENCE;
        while member_client.get(app.admin, "/readyz", &[]).unwrap().status != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "{auth} {extra}: never ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn client_allowed_sans_admit_only_certificates_naming_one_of_them() {
    let pki = Pki::new("web CA");
    let clients = Pki::new("client CA");
    let files = Files::new(&pki);
    files.write("client-ca.pem", &clients.ca_pem());
    let web = files.web(&tls_block(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n  \
         client_allowed_sans:\n    - one\n    - test3\n    - 10.0.0.7\n",
    ));
    let app = spawn_app(&["--web.config.file", &web], &[]);
    let gets_in = |names: &[&str]| {
        let leaf = clients.leaf(names, (2020, 2040));
        Client::any(pki.ca.der(), Some(&leaf))
            .get(app.probe, "/", &[])
            .is_ok_and(|r| r.status == 200)
    };
    assert!(gets_in(&["test3"]));
    assert!(gets_in(&["other", "one"]));
    assert!(gets_in(&["10.0.0.7"]));
    assert!(!gets_in(&["bad"]));
    assert!(!gets_in(&["test33"]));
    assert!(!gets_in(&["ONE"]));
    assert!(!gets_in(&["10.0.0.8"]));
}

#[test]
fn tls_below_min_version_or_above_max_version_is_refused() {
    let pki = Pki::new("web CA");
    let files = Files::new(&pki);
    let ca = pki.ca.der();
    let tls12 = Client::new(ca, None, &[&rustls::version::TLS12]);
    let tls13 = Client::new(ca, None, &[&rustls::version::TLS13]);

    let web = files.web(&tls_block("  min_version: TLS13\n"));
    let app = spawn_app(&["--web.config.file", &web], &[]);
    assert_eq!(tls13.get(app.probe, "/", &[]).unwrap().status, 200);
    assert!(tls12.get(app.probe, "/", &[]).is_err());

    let web = files.web(&tls_block("  max_version: TLS12\n"));
    let app = spawn_app(&["--web.config.file", &web], &[]);
    assert_eq!(tls12.get(app.probe, "/", &[]).unwrap().status, 200);
    assert!(tls13.get(app.probe, "/", &[]).is_err());
}

#[test]
fn cipher_suites_and_curves_limit_what_is_negotiated() {
    let pki = Pki::new("web CA");
    let files = Files::new(&pki);
    // rcgen's keys are ECDSA: the ECDSA suites apply.
    let web = files.web(&tls_block(
        "  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  \
         curve_preferences: [CurveP384]\n",
    ));
    let app = spawn_app(&["--web.config.file", &web], &[]);
    let with = |suite: rustls::SupportedCipherSuite,
                group: &'static dyn rustls::crypto::SupportedKxGroup| {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![suite];
        provider.kx_groups = vec![group];
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.der().clone()).unwrap();
        let config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Client {
            config: Arc::new(config),
        }
        .get(app.probe, "/", &[])
    };
    use rustls::crypto::ring::{cipher_suite as cs, kx_group as kx};
    assert_eq!(
        with(cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, kx::SECP384R1)
            .unwrap()
            .status,
        200
    );
    assert!(with(cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, kx::SECP384R1).is_err());
    assert!(with(cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, kx::X25519).is_err());
}

#[test]
fn http2_is_offered_unless_the_file_turns_it_off() {
    let pki = Pki::new("web CA");
    let files = Files::new(&pki);
    let alpn = |web: &str| {
        let app = spawn_app(&["--web.config.file", web], &[]);
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.der().clone()).unwrap();
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = ServerName::try_from("localhost").unwrap();
        let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut tcp = TcpStream::connect(app.probe).unwrap();
        while connection.is_handshaking() {
            connection.complete_io(&mut tcp).unwrap();
        }
        connection.alpn_protocol().map(<[u8]>::to_vec)
    };
    assert_eq!(alpn(&files.web(&tls_block(""))), Some(b"h2".to_vec()));
    let web = files.web(&format!(
        "{}http_server_config:\n  http2: false\n",
        tls_block("")
    ));
    assert_eq!(alpn(&web), Some(b"http/1.1".to_vec()));
}

#[test]
fn configured_headers_are_on_every_answer_even_without_tls() {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    write(
        &web,
        &format!(
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    \
             X-Content-Type-Options: nosniff\n    \
             Strict-Transport-Security: max-age=31536000; includeSubDomains\n\
             basic_auth_users:\n  alice: '{hash}'\n"
        ),
    );
    let app = spawn_app(&["--web.config.file", web.to_str().unwrap()], &[]);
    let good = basic("alice", "pw");
    for (addr, path, auth, status) in [
        (app.probe, "/", good.as_str(), 200),
        (app.probe, "/", "", 401),
        (app.probe, "/-/healthy", "", 200),
        (app.admin, "/metrics", good.as_str(), 200),
        (app.admin, "/healthz", "", 200),
        (app.admin, "/nope", good.as_str(), 404),
    ] {
        let response = request(addr, "GET", path, &[("Authorization", auth)]);
        assert_eq!(response.status, status, "{path}");
        assert_eq!(response.header("x-frame-options"), Some("deny"), "{path}");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            response.header("strict-transport-security"),
            Some("max-age=31536000; includeSubDomains")
        );
    }
}

#[test]
fn the_rate_limit_answers_429_beyond_its_burst_but_never_to_health_checks() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    write(&web, "rate_limit:\n  interval: 1h\n  burst: 3\n");
    let app = spawn_app(&["--web.config.file", web.to_str().unwrap()], &[]);
    let statuses: Vec<u16> = (0..5)
        .map(|_| request(app.probe, "GET", "/", &[]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(
        request(app.admin, "GET", "/metrics", &[]).status,
        429,
        "one bucket for both"
    );
    for path in ["/healthz", "/readyz"] {
        let response = app.admin_until(path, |r| r.status != 503);
        assert_eq!(response.status, 200, "{path}");
    }
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
}

#[test]
fn a_changed_web_config_applies_without_a_restart_and_a_broken_one_keeps_the_last() {
    let pki = Pki::new("web CA");
    let files = Files::new(&pki);
    let one = format!(
        "{}basic_auth_users:\n  alice: '{}'\n",
        tls_block(""),
        bcrypt::hash("one", 4).unwrap()
    );
    let web = files.web(&one);
    let app = spawn_app(&["--web.config.file", &web], &[]);
    let client = Client::any(pki.ca.der(), None);
    let status = |password: &str| {
        client
            .get(
                app.probe,
                "/",
                &[("Authorization", &basic("alice", password))],
            )
            .unwrap()
            .status
    };
    assert_eq!(status("one"), 200);
    let until = |password: &str, expected: u16| {
        let deadline = std::time::Instant::now() + PATIENCE;
        while status(password) != expected {
            assert!(
                std::time::Instant::now() < deadline,
                "{password} never got {expected}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    files.web(&format!(
        "{}basic_auth_users:\n  alice: '{}'\n",
        tls_block(""),
        bcrypt::hash("two", 4).unwrap()
    ));
    until("two", 200);
    assert_eq!(status("one"), 401);
    // Files are looked at again when used: ask until the log says why.
    let logged = |needle: &str| {
        let deadline = std::time::Instant::now() + PATIENCE;
        while !app.logs().iter().any(|l| l.contains(needle)) {
            assert_eq!(status("two"), 200, "the last good file stays in force");
            assert!(
                std::time::Instant::now() < deadline,
                "no log line with {needle:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // A file that does not load (a bad hash) keeps "two" in force.
    files.web(&format!(
        "{}basic_auth_users:\n  alice: 'doe'\n",
        tls_block("")
    ));
    logged("not a bcrypt hash");
    assert_eq!(status("two"), 200);
    // Nor can a change turn TLS off.
    files.web(&format!(
        "basic_auth_users:\n  alice: '{}'\n",
        bcrypt::hash("three", 4).unwrap()
    ));
    logged("TLS cannot be turned off");
    assert_eq!(status("two"), 200);
    // A rotated certificate is picked up too.
    let rotated = Pki::new("rotated CA");
    let leaf = rotated.leaf(&["localhost"], (2020, 2040));
    files.write("tls.crt", &pem("CERTIFICATE", &leaf.chain[0]));
    files.write("tls.key", &pem("PRIVATE KEY", leaf.key.secret_der()));
    files.web(&format!(
        "{}basic_auth_users:\n  alice: '{}'\n",
        tls_block(""),
        bcrypt::hash("two", 4).unwrap()
    ));
    let fresh = Client::any(rotated.ca.der(), None);
    let deadline = std::time::Instant::now() + PATIENCE;
    while fresh.get(app.probe, "/-/healthy", &[]).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `lookout --config.check --web.config.file FILE`: its exit status and stderr.
fn check(web: &Path) -> (Option<i32>, String) {
    let output = lookout()
        .args(["--config.check", "--web.config.file"])
        .arg(web)
        .env_remove("LOOKOUT_CONFIG")
        .env_remove("LOOKOUT_WEB_CONFIG_FILE")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn exporter_toolkits_example_shapes_load_or_fail_as_they_should() {
    let pki = Pki::new("web CA");
    let clients = Pki::new("client CA");
    let files = Files::new(&pki);
    files.write("client_selfsigned.pem", &clients.ca_pem());
    let key = std::fs::read_to_string(files.dir.path().join("tls.key")).unwrap();
    let cert = std::fs::read_to_string(files.dir.path().join("tls.crt")).unwrap();
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let alice = htpasswd("alice", 5);
    let good = [
        String::new(),
        tls_block("  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"client_selfsigned.pem\"\n"),
        tls_block("  client_auth_type: \"RequireAnyClientCert\"\n"),
        format!("tls_server_config:\n  cert_file: tls.crt\n  key: |\n{}  client_auth_type: \"RequireAnyClientCert\"\n", indent(&key)),
        format!("tls_server_config:\n  cert: |\n{}  key: |\n{}  client_auth_type: \"VerifyClientCertIfGiven\"\n  client_ca: |\n{}", indent(&cert), indent(&key), indent(&clients.ca_pem())),
        tls_block("  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"client_selfsigned.pem\"\n  client_allowed_sans:\n    - \"one\"\n    - \"test3\"\n"),
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000; includeSubDomains\n    X-Content-Type-Options: nosniff\n    X-XSS-Protection: 1\n    Content-Security-Policy: \"default-src 'self' *.test.example.net\"\n".into(),
        tls_block("  client_auth_type: \"VerifyClientCertIfGiven\"\n  client_ca_file: client_selfsigned.pem\n  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  max_version: TLS12\nhttp_server_config:\n  http2: false\n"),
        tls_block("  cipher_suites:\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  min_version: TLS12\n  max_version: TLS12\n"),
        tls_block("  cipher_suites:\n  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  prefer_server_cipher_suites: false\n  min_version: TLS12\n  max_version: TLS12\n"),
        tls_block("  min_version: TLS13\n  curve_preferences:\n  - CurveP384\n"),
        tls_block("  curve_preferences:\n    - CurveP256\n    - CurveP384\n    - X25519\n"),
        format!("{}basic_auth_users:\n  alice: {alice}\n  bob: {}\n", tls_block(""), htpasswd("bob", 6)),
        format!("basic_auth_users:\n  alice: {alice}\n"),
        "rate_limit:\n  interval: 0\n  burst: 0\n".into(),
    ];
    for (i, yaml) in good.iter().enumerate() {
        let web = files.write(&format!("good{i}.yml"), yaml);
        let (code, stderr) = check(&web);
        assert_eq!(code, Some(0), "{yaml}\n{stderr}");
    }
    let bad = [
        ("hWkNKCp3fvIx3jKnsaBI\nTuEjdwNS8A2vYdFbiKqr\n", "bad0.yml"),
        ("tls_server_config:\n  cert_filse: \"tls.crt\"\n", "unknown field `cert_filse`"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  client_ca_file: \"somefile\"\n", "client_auth_type is NoClientCert"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  client_auth_type: \"RequireAndVerifyClientCert\"\n", "needs client_ca_file"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"somefile\"\n", "somefile"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\nbasic_auth_users:\n  john: not-a-hash-7\n", "not a bcrypt hash"),
        ("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n", "nosniff"),
        ("http_server_config:\n  headers:\n    Content-Type: foo\n", "can not be configured"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: foo\n", "X-Frame-Options"),
        ("tls_server_config:\n  cert_file: \"\"\n  key_file: \"tls.key\"\n", "missing one of cert or cert_file"),
        ("tls_server_config:\n  cert_file: \"somefile\"\n  key_file: \"tls.key\"\n", "somefile"),
        ("tls_server_config:\n  cert_file: \"\"\n  key_file: \"\"\n  client_auth_type: \"x\"\n", "invalid client_auth_type"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"somefile\"\n", "somefile"),
        ("tls_server_config:\n  cert: \"\"\n  key_file: \"tls.key\"\n", "missing one of cert or cert_file"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key: \"\"\n", "missing one of key or key_file"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  cipher_suites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048\n", "unknown cipher"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  curve_preferences:\n    - CurveP257\n", "unknown curve"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  max_version: TLS12\n", "HTTP/2 needs"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  min_version: TLS111\n", "unknown TLS version"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"client_selfsigned.pem\"\n  client_allowed_sans: []\n  min_version: TLS10\n", "TLS 1.2 and 1.3 only"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  cipher_suites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA\n", "does not implement this cipher suite"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.key\"\n  curve_preferences: [CurveP521]\n", "P-521"),
        ("tls_server_config:\n  cert_file: \"tls.key\"\n  key_file: \"tls.key\"\n", "no certificate found"),
        ("tls_server_config:\n  cert_file: \"tls.crt\"\n  key_file: \"tls.crt\"\n", "tls.crt"),
    ];
    for (i, (yaml, expected)) in bad.iter().enumerate() {
        let web = files.write(&format!("bad{i}.yml"), yaml);
        let (code, stderr) = check(&web);
        assert_eq!(code, Some(1), "{yaml}\n{stderr}");
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
        assert!(
            stderr.contains(files.dir.path().to_str().unwrap()),
            "names no file: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            !stderr.contains("not-a-hash-7"),
            "a secret leaked: {stderr}"
        );
    }
}

#[test]
fn a_bad_web_config_stops_start_up_with_one_line_naming_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    write(
        &web,
        "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS10\n",
    );
    let output = lookout()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--web.config.file",
        ])
        .arg(&web)
        .env_remove("LOOKOUT_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for needle in [
        web.to_str().unwrap(),
        "tls_server_config.min_version",
        "line 4",
        "TLS 1.2 and 1.3 only",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
}

#[test]
fn the_web_config_and_the_access_flags_cannot_be_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    write(&web, "");
    let web = web.to_str().unwrap();
    for (flag, env) in [
        (Some(["--basic-auth-file", "/etc/users"]), None),
        (Some(["--bearer-token-file", "/etc/token"]), None),
        (Some(["--tls-cert-file", "/etc/c"]), None),
        (None, Some(("LOOKOUT_BASIC_AUTH_FILE", "/etc/users"))),
    ] {
        let mut command = lookout();
        command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--web.config.file",
                web,
            ])
            .env_remove("LOOKOUT_CONFIG");
        if let Some(args) = flag {
            command.args(args);
        }
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--web.config.file"), "{stderr}");
        assert!(stderr.contains("cannot be used with"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
