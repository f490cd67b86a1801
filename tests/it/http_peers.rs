//! Peers of the http prober's proxy and oauth2 tests: a target that records
//! what it is sent, a forward proxy scripted per test (to see what a CONNECT
//! carries and to misbehave), the real tinyproxy, and a token endpoint that
//! counts its fetches.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::support::PATIENCE;

/// One request as a peer read it.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The request line, e.g. `GET http://127.0.0.1:80/ HTTP/1.1`.
    pub line: String,
    /// Header fields, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Reads a request head (and a Content-Length body) from `io`.
pub fn read_request(io: &mut impl Read) -> Option<Seen> {
    let mut reader = BufReader::new(io);
    let mut seen = Seen::default();
    reader.read_line(&mut seen.line).ok()?;
    seen.line = seen.line.trim_end().to_owned();
    if seen.line.is_empty() {
        return None;
    }
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        seen.headers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = seen
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    seen.body = vec![0; length];
    reader.read_exact(&mut seen.body).ok()?;
    Some(seen)
}

/// A full response with a body.
pub fn response(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

type Answer = dyn Fn(&Seen) -> String + Send + Sync;

/// A server on `ip` (port 0) that records each request and answers it with
/// `answer`; TLS with `tls`.
pub struct Recorder {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections accepted (a TLS handshake need not follow).
    pub connections: Arc<Mutex<usize>>,
}

impl Recorder {
    pub fn start(
        ip: &str,
        tls: Option<Arc<ServerConfig>>,
        answer: impl Fn(&Seen) -> String + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let answer: Arc<Answer> = Arc::new(answer);
        let (log, count) = (Arc::clone(&seen), Arc::clone(&connections));
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                *count.lock().unwrap() += 1;
                let (tls, log, answer) = (tls.clone(), Arc::clone(&log), Arc::clone(&answer));
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(PATIENCE));
                    let serve = |io: &mut dyn ReadWrite| {
                        if let Some(request) = read_request(&mut Reader(io)) {
                            let reply = answer(&request);
                            log.lock().unwrap().push(request);
                            let _ = io.write_all(reply.as_bytes());
                            let _ = io.flush();
                        }
                    };
                    match tls {
                        Some(config) => {
                            let Ok(connection) = ServerConnection::new(config) else {
                                return;
                            };
                            let mut stream = StreamOwned::new(connection, stream);
                            serve(&mut stream);
                            stream.conn.send_close_notify();
                            let _ = stream.flush();
                        }
                        None => {
                            let mut stream = stream;
                            serve(&mut stream);
                        }
                    }
                });
            }
        });
        Self {
            addr,
            seen,
            connections,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connection_count(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

struct Reader<'a>(&'a mut dyn ReadWrite);

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte at a time: the head must not swallow what follows it.
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

/// What the scripted proxy does with a request.
#[derive(Clone)]
pub enum Script {
    /// CONNECT: `200`, then a tunnel to `to`; absolute form: the request
    /// forwarded to `to` as it came.
    Forward(SocketAddr),
    /// Answers with this status line's rest (`407 Proxy Authentication Required`).
    Status(&'static str),
    /// Reads the request and never answers.
    Silent,
    /// Answers with a head that never ends.
    EndlessHead,
}

/// A forward proxy on `ip` that records every request head it is sent.
pub struct ScriptedProxy {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl ScriptedProxy {
    pub fn start(ip: &str, script: Script) -> Self {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (log, count) = (Arc::clone(&seen), Arc::clone(&connections));
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                *count.lock().unwrap() += 1;
                let (log, script) = (Arc::clone(&log), script.clone());
                thread::spawn(move || {
                    let mut stream = stream;
                    let _ = stream.set_read_timeout(Some(PATIENCE));
                    let Some(request) = read_request(&mut ByteReader(&mut stream)) else {
                        return;
                    };
                    log.lock().unwrap().push(request.clone());
                    match script {
                        Script::Forward(to) => forward(stream, &request, to),
                        Script::Status(status) => {
                            let _ = stream.write_all(response(status, "", "denied\n").as_bytes());
                        }
                        Script::Silent => thread::sleep(PATIENCE),
                        Script::EndlessHead => {
                            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
                            let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
                            let deadline = Instant::now() + PATIENCE;
                            while Instant::now() < deadline
                                && stream.write_all(filler.as_bytes()).is_ok()
                            {
                            }
                        }
                    }
                });
            }
        });
        Self {
            addr,
            seen,
            connections,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connection_count(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

struct ByteReader<'a>(&'a mut TcpStream);

impl Read for ByteReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

fn forward(mut client: TcpStream, request: &Seen, to: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(to) else {
        let _ = client.write_all(response("502 Bad Gateway", "", "").as_bytes());
        return;
    };
    if request.line.starts_with("CONNECT ") {
        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    } else {
        // As a proxy does: the origin form to the origin server.
        let line = match request.line.split_once(" http://") {
            Some((method, rest)) => {
                let path = rest.find('/').map_or("/ HTTP/1.1", |at| &rest[at..]);
                format!("{method} {path}")
            }
            None => request.line.clone(),
        };
        let mut head = format!("{line}\r\n");
        for (name, value) in &request.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let _ = upstream.write_all(head.as_bytes());
        let _ = upstream.write_all(&request.body);
    }
    let (mut client_in, mut upstream_out) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let pump = thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut upstream_out);
        let _ = upstream_out.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = pump.join();
}

/// The real tinyproxy (Debian's tinyproxy-bin), in the foreground on a
/// loopback port, with an optional basic-auth user; stopped when dropped.
pub struct Tinyproxy {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    pub fn start(user: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // tinyproxy takes no port 0: a port free a moment ago.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 64\nAllow 127.0.0.1\n"
        );
        if let Some((user, password)) = user {
            config.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let path = dir.path().join("tinyproxy.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy is installed (.ci/install installs tinyproxy-bin)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not start");
            thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A modules file in a directory of its own (kept while the value lives).
pub struct Modules {
    pub dir: tempfile::TempDir,
}

impl Modules {
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("blackbox.yml"), text).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("blackbox.yml")
    }

    pub fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Value of a series in a parsed exposition.
pub fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

/// Whether any series of `family` is present.
pub fn has(metrics: &[(String, f64)], family: &str) -> bool {
    metrics
        .iter()
        .any(|(s, _)| s == family || s.starts_with(&format!("{family}{{")))
}
