//! Probe targets the tests start themselves: a plain HTTP/1.1 server with
//! canned behaviours, and HTTPS servers whose certificates are made here
//! (valid for a test CA, expired, self-signed, wrong host, unknown CA).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener},
    sync::{Arc, Condvar, Mutex},
    thread,
    time::Duration,
};

use crate::support::PATIENCE;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    ServerConfig, ServerConnection, StreamOwned,
};

/// Last-Modified every canned page carries (and the unix time it means).
pub const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
pub const LAST_MODIFIED_UNIX: f64 = 1_445_412_480.0;

/// A test certificate authority.
pub struct Pki {
    pub ca: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "lookout tests");
        params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { ca }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Writes the CA certificate to `dir/name`, for a module's `ca_file`.
    pub fn ca_file(&self, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.ca_pem()).unwrap();
        path
    }

    /// A leaf for `names` (DNS names or IPs), valid between the given years.
    pub fn leaf(&self, names: &[&str], valid: (i32, i32)) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Lookout, Inc.");
        params.not_before = rcgen::date_time_ymd(valid.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(valid.1, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

/// A self-signed leaf, trusted by nobody.
pub fn self_signed(name: &str) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// TLS settings of a server that demands a client certificate from `pki`.
pub fn server_tls_mutual(leaf: Leaf, pki: &Pki) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    Arc::new(config)
}

/// TLS settings of a test server; `versions` limits the protocol versions.
pub fn server_tls(
    leaf: Leaf,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    Arc::new(config)
}

/// Starts a target on 127.0.0.1 (TLS when `tls` is given); it lives as long
/// as the test process.
pub fn serve(tls: Option<Arc<ServerConfig>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let tls = tls.clone();
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                match tls {
                    Some(config) => {
                        let Ok(connection) = ServerConnection::new(config) else {
                            return;
                        };
                        answer(&mut StreamOwned::new(connection, stream));
                    }
                    None => {
                        let mut stream = stream;
                        if answer(&mut stream) == Ending::Reset {
                            // SO_LINGER 0: close() sends RST instead of FIN.
                            let _ =
                                socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                        }
                    }
                }
            });
        }
    });
    addr
}

/// An HTTPS target that offers HTTP/2 by ALPN (hyper's server on tokio).
pub fn serve_h2(leaf: Leaf) -> SocketAddr {
    let mut config = Arc::unwrap_or_clone(server_tls(
        leaf,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    ));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(|request: hyper::Request<_>| async move {
                            let body = http_body_util::Full::new(bytes::Bytes::from_static(
                                b"hello over h2\n",
                            ));
                            let mut response = hyper::Response::new(body);
                            if request.uri().path() == "/big-headers" {
                                // 20 KiB of headers: over the 16 KiB some HTTP/2 clients allow.
                                for i in 0..20 {
                                    let value =
                                        hyper::header::HeaderValue::from_str(&"v".repeat(1000))
                                            .unwrap();
                                    response.headers_mut().insert(
                                        hyper::header::HeaderName::from_bytes(
                                            format!("x-big-{i}").as_bytes(),
                                        )
                                        .unwrap(),
                                        value,
                                    );
                                }
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        });
                    let builder = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    let _ = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    addr
}

/// An HTTP target that holds every request until the test opens it: a probe
/// stays in flight exactly as long as a test needs, however slow the machine.
pub struct Gate {
    pub addr: SocketAddr,
    state: Arc<(Mutex<GateState>, Condvar)>,
}

#[derive(Default)]
struct GateState {
    open: bool,
    arrived: usize,
}

impl Gate {
    pub fn new() -> Self {
        Self::start(None)
    }

    /// The same over TLS (HTTP/1.1), with `config`'s certificate.
    pub fn tls(config: Arc<ServerConfig>) -> Self {
        Self::start(Some(config))
    }

    fn start(tls: Option<Arc<ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((Mutex::new(GateState::default()), Condvar::new()));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let shared = Arc::clone(&shared);
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    None => hold(&mut &stream, &shared),
                    Some(config) => {
                        let Ok(connection) = ServerConnection::new(config) else {
                            return;
                        };
                        hold(&mut StreamOwned::new(connection, &stream), &shared);
                    }
                });
            }
        });
        Self { addr, state }
    }

    /// Waits until `count` requests have arrived (and are being held).
    pub fn wait_for_arrivals(&self, count: usize) {
        let (lock, changed) = &*self.state;
        let (_state, timeout) = changed
            .wait_timeout_while(lock.lock().unwrap(), PATIENCE, |s| s.arrived < count)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "{count} requests never reached the gate"
        );
    }

    /// Answers every request held, and every later one at once.
    pub fn open(&self) {
        let (lock, changed) = &*self.state;
        lock.lock().unwrap().open = true;
        changed.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

/// Reads a request head, waits for the gate to open, answers.
fn hold(io: &mut (impl Read + Write), shared: &(Mutex<GateState>, Condvar)) {
    let mut reader = BufReader::new(&mut *io);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
    let (lock, changed) = shared;
    let mut state = lock.lock().unwrap();
    state.arrived += 1;
    changed.notify_all();
    while !state.open {
        state = changed.wait(state).unwrap();
    }
    drop(state);
    let _ = io.write_all(page("200 OK", "", "opened\n").as_bytes());
    let _ = io.flush();
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Sends `sent`, then waits until the prober closes (or the stream's read
/// timeout passes). Write errors mean the prober gave up: exactly what the
/// hostile paths provoke.
fn stall(io: &mut (impl Read + Write), sent: &[u8]) {
    if io.write_all(sent).and_then(|()| io.flush()).is_ok() {
        let _ = io.read(&mut [0u8; 1]);
    }
}

/// How a connection ends after the answer.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Close,
    Reset,
}

fn answer(io: &mut (impl Read + Write)) -> Ending {
    let mut reader = BufReader::new(&mut *io);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return Ending::Close;
    }
    let mut body_length = 0;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return Ending::Close,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
                    if name == "content-length" {
                        body_length = value.parse().unwrap_or(0);
                    }
                    headers.push((name, value));
                }
            }
        }
    }
    // Read the request body, so closing does not reset the connection.
    let mut body = vec![0; body_length];
    if reader.read_exact(&mut body).is_err() {
        return Ending::Close;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    if let Some(ending) = misbehave(io, &path, &headers) {
        return ending;
    }
    let response = route(&method, &path, &headers);
    match response.strip_suffix(BINARY_BODY) {
        Some(head) => {
            let _ = io.write_all(head.as_bytes());
            let _ = io.write_all(&vec![0xff; 10 << 20]);
        }
        None => {
            let _ = io.write_all(response.as_bytes());
        }
    }
    let _ = io.flush();
    Ending::Close
}

/// Hostile behaviours, for the reliability tests; `None` for ordinary paths.
///
/// A target whose answer depends on when the prober's deadline falls would
/// make the metrics depend on timing: the slow paths send a fixed part of
/// their answer at once and then stall until the prober hangs up, so only the
/// deadline can end the probe and what arrived before it is always the same.
fn misbehave(
    io: &mut (impl Read + Write),
    path: &str,
    headers: &[(String, String)],
) -> Option<Ending> {
    match path {
        "/reset-mid-headers" => {
            let _ = io.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty");
            let _ = io.flush();
            Some(Ending::Reset)
        }
        "/hang" => {
            stall(io, b"");
            Some(Ending::Close)
        }
        "/slow-headers" => {
            stall(io, b"HTTP/1.1 200 OK\r\nX-Slow: aaa");
            Some(Ending::Close)
        }
        "/slow-body" => {
            stall(io, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\naaa");
            Some(Ending::Close)
        }
        "/endless" => {
            let chunk = vec![b'x'; 64 * 1024];
            if io
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .is_ok()
            {
                while io.write_all(&chunk).is_ok() {}
            }
            Some(Ending::Close)
        }
        "/garbage" => {
            let _ = io.write_all(b"HTTP/1.1 200 OK\r\n\x00\x01\x02 garbage \xff\r\n\r\nhello");
            Some(Ending::Close)
        }
        "/huge-headers" => {
            let huge = format!(
                "HTTP/1.1 200 OK\r\nX-Huge: {}\r\nContent-Length: 0\r\n\r\n",
                "a".repeat(1 << 20)
            );
            let _ = io.write_all(huge.as_bytes());
            Some(Ending::Close)
        }
        "/to-denied" => {
            // Same port, another loopback address: the target policy denies 127.0.0.2.
            let port = headers
                .iter()
                .find(|(n, _)| n == "host")
                .and_then(|(_, v)| v.rsplit_once(':'))
                .map_or("80", |(_, p)| p)
                .to_owned();
            let _ = io.write_all(
                page(
                    "302 Found",
                    &format!("Location: http://127.0.0.2:{port}/ok\r\n"),
                    "",
                )
                .as_bytes(),
            );
            Some(Ending::Close)
        }
        _ => None,
    }
}

fn page(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nLast-Modified: {LAST_MODIFIED}\r\n\
         Content-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// `prober:s3cret`, base64: what basic_auth must send (the password is
/// configured with spaces around it, which both exporters trim).
const BASIC_AUTH: &str = "Basic cHJvYmVyOnMzY3JldA==";

fn route(method: &str, path: &str, headers: &[(String, String)]) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let allow = |ok: bool| {
        if ok {
            page("200 OK", "", "welcome\n")
        } else {
            page("401 Unauthorized", "", "who are you?\n")
        }
    };
    if let Some(rest) = path.strip_prefix("/r/") {
        return relative_redirect(rest, header("host").unwrap_or_default());
    }
    match path {
        "/big" => page("200 OK", "", &"x".repeat(5000)),
        "/many-headers" => {
            let fields: String = (0..150).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
            page("200 OK", &fields, "many\n")
        }
        // 10 MiB of ASCII 0s and 1s: a body regexp's worst case (see attacks.rs).
        "/ten-mib-bits" => page("200 OK", "", &bits(10 << 20)),
        "/quarter-mib-bits" => page("200 OK", "", &bits(256 << 10)),
        // 10 MiB of bytes that are not UTF-8 (sent as Latin-1 text is not: raw 0xff).
        "/ten-mib-binary" => {
            let head = page("200 OK", "", "");
            let head = head.replace("Content-Length: 0", &format!("Content-Length: {}", 10 << 20));
            // Marked for the caller to append the raw bytes.
            format!("{head}{BINARY_BODY}")
        }
        "/loop" => page("302 Found", "Location: /loop\r\n", ""),
        "/basic-auth" => allow(header("authorization") == Some(BASIC_AUTH)),
        "/bearer" => allow(header("authorization") == Some("Bearer t0ken")),
        "/needs-header" => allow(header("x-probe") == Some("yes")),
        "/" | "/ok" => page("200 OK", "", "hello world\n"),
        "/healthy" => page("200 OK", "", "status: healthy\n"),
        "/notfound" => page("404 Not Found", "", "not here\n"),
        "/method" => page("200 OK", "", &format!("{method}\n")),
        "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n3\r\n!!\n\r\n0\r\n\r\n"
            .to_owned(),
        "/slow" | "/slower" => {
            thread::sleep(Duration::from_secs(3));
            page("200 OK", "", "finally\n")
        }
        _ => match path.strip_prefix("/redirect/").and_then(|n| n.parse::<u32>().ok()) {
            Some(0) => page("200 OK", "", "arrived\n"),
            Some(n) => page("302 Found", &format!("Location: /redirect/{}\r\n", n - 1), ""),
            None => page("404 Not Found", "", "no such page\n"),
        },
    }
}

/// Stands for 10 MiB of 0xff bytes in a canned answer (see `answer`).
pub const BINARY_BODY: &str = "\u{0}binary-body\u{0}";

/// A deterministic mix of ASCII `0`s and `1`s (xorshift), `len` bytes.
fn bits(len: usize) -> String {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if state & 1 == 0 {
                '0'
            } else {
                '1'
            }
        })
        .collect()
}

/// `/r/CASE/a/b?q=1` redirects to CASE's Location; every other `/r/` page
/// says where it landed, so two probers that resolve a Location differently
/// read bodies of different lengths.
fn relative_redirect(rest: &str, host: &str) -> String {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let case = path.strip_suffix("/a/b").filter(|_| query == "q=1");
    let location = case.map(|case| match case {
        "query" => "?page=2".to_owned(),
        "dotdot" => "../c".to_owned(),
        "dot" => "./c/../d".to_owned(),
        "up" => "..".to_owned(),
        "fragment" => "#frag".to_owned(),
        "empty" => String::new(),
        "utf8" => "/r/utf8/\u{fc}ber uns".to_owned(),
        "scheme-relative" => format!("//{host}/r/scheme-relative/x"),
        "absolute" => format!("http://{host}/r/absolute/y?z=1"),
        "dots-in-query" => "c?x=../../y".to_owned(),
        "localhost-dot" => {
            let port = host.rsplit_once(':').map_or("80", |(_, p)| p);
            format!("http://localhost.:{port}/r/localhost-dot/landed")
        }
        other => format!("/r/unknown-case/{other}"),
    });
    match location {
        Some(location) => page("302 Found", &format!("Location: {location}\r\n"), ""),
        None => page("200 OK", "", &format!("landed at /r/{rest}\n")),
    }
}

/// Every target the probe tests use, and a modules file naming them; made
/// once per test process.
pub struct World {
    pub http: SocketAddr,
    pub valid: SocketAddr,
    pub expired: SocketAddr,
    pub wrong_host: SocketAddr,
    pub unknown_ca: SocketAddr,
    pub self_signed: SocketAddr,
    pub h2: SocketAddr,
    pub mutual: SocketAddr,
    pub not_yet_valid: SocketAddr,
    pub closed: SocketAddr,
    pub modules: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub fn world() -> &'static World {
    static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let pki = Pki::new("lookout test CA");
        let other = Pki::new("someone else's CA");
        let both = &[&rustls::version::TLS13, &rustls::version::TLS12][..];
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pki.ca_pem()).unwrap();
        // A client certificate for the mutual-TLS target.
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(vec!["prober.example".to_owned()]).unwrap();
        client.distinguished_name.push(DnType::CommonName, "prober");
        let client_cert = client.signed_by(&client_key, &pki.ca).unwrap();
        let (cert_file, key_file) = (dir.path().join("client.pem"), dir.path().join("client.key"));
        std::fs::write(&cert_file, client_cert.pem()).unwrap();
        std::fs::write(&key_file, client_key.serialize_pem()).unwrap();
        let modules = dir.path().join("blackbox.yml");
        let text = MODULES
            .replace("{ca}", ca.to_str().unwrap())
            .replace("{client_cert}", cert_file.to_str().unwrap())
            .replace("{client_key}", key_file.to_str().unwrap());
        std::fs::write(&modules, text).unwrap();
        World {
            http: serve(None),
            valid: serve(Some(server_tls(
                pki.leaf(&["localhost"], (2020, 2030)),
                both,
            ))),
            expired: serve(Some(server_tls(
                pki.leaf(&["localhost"], (2020, 2021)),
                both,
            ))),
            wrong_host: serve(Some(server_tls(
                pki.leaf(&["other.example"], (2020, 2030)),
                both,
            ))),
            unknown_ca: serve(Some(server_tls(
                other.leaf(&["localhost"], (2020, 2030)),
                both,
            ))),
            self_signed: serve(Some(server_tls(self_signed("localhost"), both))),
            h2: serve_h2(pki.leaf(&["localhost"], (2020, 2030))),
            mutual: serve(Some(server_tls_mutual(
                pki.leaf(&["localhost"], (2020, 2030)),
                &pki,
            ))),
            not_yet_valid: serve(Some(server_tls(
                pki.leaf(&["localhost"], (2090, 2099)),
                both,
            ))),
            closed: closed_port(),
            modules,
            _dir: dir,
        }
    })
}

/// Modules for both lookout and blackbox_exporter; `{ca}` is the test CA.
const MODULES: &str = r#"modules:
  http_2xx:
    prober: http
  http_ca:
    prober: http
    http:
      tls_config:
        ca_file: {ca}
  http_ca_tls12:
    prober: http
    http:
      tls_config:
        ca_file: {ca}
        max_version: TLS12
  http_ca_no_h2:
    prober: http
    http:
      enable_http2: false
      tls_config:
        ca_file: {ca}
  http_insecure:
    prober: http
    http:
      tls_config:
        insecure_skip_verify: true
  http_no_redirects:
    prober: http
    http:
      follow_redirects: false
  http_body_healthy:
    prober: http
    http:
      fail_if_body_not_matches_regexp: ["healthy"]
  http_body_not_hello:
    prober: http
    http:
      fail_if_body_matches_regexp: ["hello"]
  http_header_html:
    prober: http
    http:
      fail_if_header_not_matches:
        - header: Content-Type
          regexp: "text/html"
  http_404:
    prober: http
    http:
      valid_status_codes: [404]
  http_11_only:
    prober: http
    http:
      valid_http_versions: ["HTTP/2.0"]
  http_post:
    prober: http
    http:
      method: POST
      body: ping
  http_ssl_required:
    prober: http
    http:
      fail_if_not_ssl: true
  http_1s:
    prober: http
    timeout: 1s
  http_body_limit:
    prober: http
    http:
      body_size_limit: 1KB
  http_not_plain_text:
    prober: http
    http:
      fail_if_header_matches:
        - header: Content-Type
          regexp: "text/plain"
  http_basic_auth:
    prober: http
    http:
      basic_auth:
        username: prober
        password: " s3cret "
  http_bearer:
    prober: http
    http:
      bearer_token: t0ken
  http_headers:
    prober: http
    http:
      headers:
        X-Probe: "yes"
  http_server_name:
    prober: http
    http:
      tls_config:
        ca_file: {ca}
        server_name: localhost
  http_tls13:
    prober: http
    http:
      tls_config:
        ca_file: {ca}
        min_version: TLS13
  http_client_cert:
    prober: http
    http:
      tls_config:
        ca_file: {ca}
        cert_file: {client_cert}
        key_file: {client_key}
  http_ip4_only:
    prober: http
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  tcp_connect:
    prober: tcp
  tcp_from_loopback:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
      source_ip_address: 127.0.0.1
  tls_ca:
    prober: tcp
    tcp:
      tls: true
      tls_config:
        ca_file: {ca}
"#;

/// A DNS server for names the test decides, on a loopback address of its own
/// at port 53 (so lookout, in a mount namespace whose /etc/resolv.conf names
/// it, asks it: see `support::spawn_app_with_resolver`). It answers A queries
/// for its names, NXDOMAIN for the rest, or nothing at all when silent, and
/// counts every question.
pub struct DnsStub {
    pub ip: std::net::Ipv4Addr,
    questions: Arc<Mutex<Vec<String>>>,
}

impl DnsStub {
    pub fn answering(names: &[(&str, std::net::Ipv4Addr)]) -> Self {
        Self::start(Some(
            names
                .iter()
                .map(|(n, ip)| (n.to_ascii_lowercase(), *ip))
                .collect(),
        ))
    }

    /// Receives and counts questions, and never answers.
    pub fn silent() -> Self {
        Self::start(None)
    }

    fn start(names: Option<Vec<(String, std::net::Ipv4Addr)>>) -> Self {
        // A free address in 127.53.0.0/16: tests run in parallel.
        let socket = (0u32..)
            .find_map(|i| {
                let seed = std::process::id()
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(i);
                let ip = std::net::Ipv4Addr::new(127, 53, (seed >> 8) as u8, seed as u8 | 1);
                std::net::UdpSocket::bind((ip, 53)).ok()
            })
            .expect("a loopback address for the DNS stub (binding port 53 needs root)");
        let std::net::SocketAddr::V4(addr) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        let questions = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&questions);
        thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                let Some((name, qtype, end)) = question(&buf[..n]) else {
                    continue;
                };
                seen.lock().unwrap().push(name.clone());
                let Some(names) = &names else { continue };
                let found = names.iter().find(|(n, _)| *n == name).map(|(_, ip)| *ip);
                let mut reply = buf[..end].to_vec();
                // QR, RD, RA; NXDOMAIN for unknown names.
                reply[2] = 0x81;
                reply[3] = if found.is_some() { 0x80 } else { 0x83 };
                reply[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
                if let (Some(ip), 1) = (found, qtype) {
                    reply[7] = 1;
                    reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    reply.extend_from_slice(&ip.octets());
                }
                let _ = socket.send_to(&reply, peer);
            }
        });
        Self {
            ip: *addr.ip(),
            questions,
        }
    }

    /// How many questions named `name`.
    pub fn questions_for(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.questions
            .lock()
            .unwrap()
            .iter()
            .filter(|q| **q == name)
            .count()
    }

    /// A resolv.conf naming this server, with a lookup that waits `timeout` seconds once.
    pub fn resolv_conf(&self, dir: &std::path::Path, timeout: u32) -> std::path::PathBuf {
        let path = dir.join("resolv.conf");
        std::fs::write(
            &path,
            format!(
                "nameserver {}\noptions timeout:{timeout} attempts:1\n",
                self.ip
            ),
        )
        .unwrap();
        path
    }
}

/// The question of a DNS query: name (lower-case, no trailing dot), type,
/// and where the question section ends.
fn question(message: &[u8]) -> Option<(String, u16, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*message.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(message.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*message.get(at)?, *message.get(at + 1)?]);
    Some((labels.join("."), qtype, at + 4))
}

/// A hosts file with localhost only.
pub fn hosts_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("hosts");
    std::fs::write(&path, "127.0.0.1 localhost\n::1 localhost\n").unwrap();
    path
}

/// A plain HTTP target on [::1] answering 200 to anything.
pub fn serve_v6() -> SocketAddr {
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = answer(&mut stream);
            });
        }
    });
    addr
}
