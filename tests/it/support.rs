//! Starting lookout and talking to it over TCP: in this process (the
//! service as a value: `App::bind`, then `run` on a runtime of its own), or
//! as the real binary where a test needs a process boundary (signals, exit
//! statuses, the command line, its own /proc figures, a mount namespace).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

/// Generous bound for anything that should happen "soon"; only a failing test
/// ever waits this long.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub fn lookout() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lookout"))
}

/// A running lookout server.
pub struct App {
    kind: Kind,
    pub probe: SocketAddr,
    pub admin: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

enum Kind {
    Process(Child),
    InProcess {
        runtime: Option<tokio::runtime::Runtime>,
        controller: lookout::app::Controller,
    },
}

/// Starts lookout in this process on ephemeral loopback ports, parsing
/// `args` as the command line; `env` may set `RUST_LOG` (its logs, captured
/// per app as JSON lines). Both listeners are bound when it returns.
pub fn spawn_app(args: &[&str], env: &[(&str, &str)]) -> App {
    use lookout::{app, cli::Cli, telemetry::logging};
    let mut argv = vec!["lookout"];
    if !single_address(args) {
        argv.extend_from_slice(&["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
    }
    argv.extend_from_slice(args);
    let cli = <Cli as clap::Parser>::try_parse_from(argv).expect("valid arguments for lookout");
    let directives = env
        .iter()
        .find(|(name, _)| *name == "RUST_LOG")
        .map(|(_, value)| *value);
    let logs = Arc::new(Mutex::new(Vec::new()));
    let dispatch = logging::dispatch(
        logging::LogFormat::Json,
        directives,
        Capture(Arc::clone(&logs)),
        false,
    )
    .expect("a valid RUST_LOG");
    // Every thread of this app's runtime logs to this app's capture.
    let on_start = dispatch.clone();
    let settings = cli.settings();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(settings.probe_limits.max_probes + 16)
        .enable_all()
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&on_start);
            THREAD_LOGS.with(|slot| *slot.borrow_mut() = Some(guard));
        })
        .build()
        .unwrap();
    let source = cli.config_source();
    let config = source.load().expect("a valid modules file");
    let (controller, control) = app::control();
    let bound = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(app::App::bind(settings, source, config))
    })
    .expect("lookout binds its listeners");
    let (probe, admin) = (bound.probe_addr(), bound.admin_addr());
    runtime.spawn(bound.run(control));
    App {
        kind: Kind::InProcess {
            runtime: Some(runtime),
            controller,
        },
        probe,
        admin,
        logs,
    }
}

thread_local! {
    static THREAD_LOGS: std::cell::RefCell<Option<tracing::dispatcher::DefaultGuard>> =
        const { std::cell::RefCell::new(None) };
}

/// Collects an in-process app's log lines.
#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Capture {
    type Writer = CaptureLine;

    fn make_writer(&'w self) -> Self::Writer {
        CaptureLine(Arc::clone(&self.0), Vec::new())
    }
}

/// One event's output, stored as lines when dropped.
struct CaptureLine(Arc<Mutex<Vec<String>>>, Vec<u8>);

impl Write for CaptureLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for CaptureLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.1);
        let mut lines = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.extend(text.lines().map(str::to_owned));
    }
}

/// Starts the `lookout` binary on ephemeral loopback ports with JSON logs,
/// plus `args` and `env`, and waits until both listeners are bound.
pub fn spawn_process(args: &[&str], env: &[(&str, &str)]) -> App {
    let mut command = lookout();
    configure(&mut command, args, env);
    spawn_command(command)
}

/// Like [`spawn_app`], in a mount namespace of its own where `/etc/hosts` and
/// `/etc/resolv.conf` are the given files: names resolve as the test says,
/// through a DNS server the test runs. Needs root (`unshare --mount`), as the
/// test command has.
pub fn spawn_app_with_resolver(
    args: &[&str],
    env: &[(&str, &str)],
    hosts: &Path,
    resolv_conf: &Path,
) -> App {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(hosts)
        .arg(resolv_conf)
        .arg(env!("CARGO_BIN_EXE_lookout"));
    configure(&mut command, args, env);
    spawn_command(command)
}

/// `args` choose blackbox_exporter's one address (`--web.listen-address`),
/// which the two-listener defaults would conflict with.
fn single_address(args: &[&str]) -> bool {
    args.iter().any(|a| a.starts_with("--web.listen-address"))
}

fn configure(command: &mut Command, args: &[&str], env: &[(&str, &str)]) {
    if !single_address(args) {
        command.args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
    }
    command
        .args(args)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("LOOKOUT_CONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
}

/// Runs `command` (lookout, perhaps wrapped) and waits until it reports
/// both listeners.
fn spawn_command(mut command: Command) -> App {
    let mut child = command.spawn().expect("lookout starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                if json["message"] == "listening" {
                    let addr: SocketAddr = json["addr"].as_str().unwrap().parse().unwrap();
                    let _ = tx.send((json["listener"].as_str().unwrap().to_owned(), addr));
                }
            }
            sink.lock().unwrap().push(line);
        }
    });
    let (mut probe, mut admin) = (None, None);
    while probe.is_none() || admin.is_none() {
        match rx.recv_timeout(PATIENCE) {
            Ok((listener, addr)) if listener == "probe" => probe = Some(addr),
            // --web.listen-address: one listener serves both.
            Ok((listener, addr)) if listener == "web" => {
                probe = Some(addr);
                admin = Some(addr);
            }
            Ok((_, addr)) => admin = Some(addr),
            Err(_) => panic!(
                "lookout did not report its listeners; logs: {:?}",
                logs.lock().unwrap()
            ),
        }
    }
    App {
        kind: Kind::Process(child),
        probe: probe.unwrap(),
        admin: admin.unwrap(),
        logs,
    }
}

impl App {
    fn child(&mut self) -> &mut Child {
        match &mut self.kind {
            Kind::Process(child) => child,
            Kind::InProcess { .. } => panic!("this test needs lookout as a process: spawn_process"),
        }
    }

    /// The process id of lookout itself (the child, or the process the
    /// namespace wrapper exec'd into: the same id).
    pub fn pid(&self) -> u32 {
        match &self.kind {
            Kind::Process(child) => child.id(),
            Kind::InProcess { .. } => panic!("this test needs lookout as a process: spawn_process"),
        }
    }

    /// Tells an in-process app what a signal would: stop or reload.
    pub fn send(&self, command: lookout::app::Command) {
        match &self.kind {
            Kind::InProcess { controller, .. } => controller.send(command),
            Kind::Process(_) => panic!("a process takes signals: signal()"),
        }
    }

    /// A line of /proc/PID/status, e.g. `Threads` or `VmHWM`, as a number.
    pub fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in /proc status"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// A sample of lookout's own metrics, if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        self.admin("GET", "/metrics")
            .body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    pub fn admin(&self, method: &str, path: &str) -> Response {
        request(self.admin, method, path, &[])
    }

    /// Waits for the process to exit, failing the test after [`PATIENCE`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "lookout did not exit; logs: {:?}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Polls the admin endpoint until `check` accepts the response.
    pub fn admin_until(&self, path: &str, check: impl Fn(&Response) -> bool) -> Response {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let response = self.admin("GET", path);
            if check(&response) {
                return response;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never satisfied the check; last: {response:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until a log line contains `needle`, returning it.
    pub fn log_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}: {:?}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        match &mut self.kind {
            // Only our own child, by PID.
            Kind::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            // Every task ends with the runtime; the listeners close with them.
            Kind::InProcess { runtime, .. } => {
                if let Some(runtime) = runtime.take() {
                    runtime.shutdown_background();
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}

/// A self-signed CA certificate in PEM.
pub fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// An in-process lookout whose modules file, written into `dir`, is `yaml`;
/// ready when it returns.
pub fn spawn_with_modules(dir: &Path, yaml: &str) -> App {
    let modules = dir.join("blackbox.yml");
    write(&modules, yaml);
    let app = spawn_app(&["--config.file", modules.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    app
}
