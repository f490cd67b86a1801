//! tcp and unix `query_response` against real peers the tests start:
//! OpenSSH's sshd (host key made here, in a mount namespace of its own where
//! `/run/sshd` exists), an SMTP server with STARTTLS (Debian's aiosmtpd,
//! `smtp_server.py`) and Dovecot's IMAP with STARTTLS and implicit TLS, all
//! with certificates from a CA made here; small scripted peers for IRC, POP3,
//! PostgreSQL's SSLRequest (bytes sent with `!!binary`, `expect_bytes`) and
//! hostile ones (an endless line, endless short lines, silence, a line too
//! long by one byte). blackbox_exporter 0.23 probes the same peers with the
//! same modules where it knows the keys and must report the same; what 0.28
//! added (`labels`, `expect_bytes`, the unix prober) is checked on its own.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::{fs::PermissionsExt as _, net::UnixListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{
    differential::{compare, exposition, same_or_timing, since_0_23, spawn_blackbox},
    probe::{encode, probe},
    support::{request, spawn_app, App, PATIENCE},
    targets::{server_tls, Leaf, Pki},
};

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: &[u8] = b"\x00\x00\x00\x08\x04\xd2\x16\x2f";

/// `(name, module body, loadable by 0.23)`; `{ca}` is the test CA's file.
const MODULES: &[(&str, &str, bool)] = &[
    (
        "tcp_ssh",
        "prober: tcp\n    tcp:\n      query_response:\n        - expect: '^SSH-2.0-'\n        - send: SSH-2.0-lookout-test",
        true,
    ),
    (
        "tcp_ssh_labels",
        "prober: tcp\n    tcp:\n      query_response:\n        - expect: '^SSH-2\\.0-([^ ]+) (?P<comment>.*)$'\n          labels:\n            - {name: software, value: '$1'}\n            - {name: comment, value: '${comment}'}\n            - {name: banner, value: '$0'}\n            - {name: missing, value: '[$9]'}\n          send: 'SSH-2.0-lookout-test ${comment}'",
        false,
    ),
    (
        "tcp_smtp_starttls",
        "prober: tcp\n    tcp:\n      tls_config: {ca_file: {ca}}\n      query_response:\n        - expect: '^220 ([^ ]+) '\n          send: \"EHLO prober\\r\"\n        - expect: '^250-STARTTLS'\n          send: \"STARTTLS\\r\"\n        - expect: '^220'\n          starttls: true\n        - send: \"EHLO prober\\r\"\n        - expect: '^250-AUTH'\n          send: \"QUIT\\r\"",
        true,
    ),
    (
        "tcp_smtp_starttls_unknown_ca",
        "prober: tcp\n    tcp:\n      query_response:\n        - expect: '^220 '\n          send: \"EHLO prober\\r\"\n        - expect: '^250-STARTTLS'\n          send: \"STARTTLS\\r\"\n        - expect: '^220'\n          starttls: true",
        true,
    ),
    (
        "tcp_smtp_starttls_wrong_name",
        "prober: tcp\n    tcp:\n      tls_config: {ca_file: {ca}, server_name: other.example}\n      query_response:\n        - expect: '^220 '\n          send: \"EHLO prober\\r\"\n        - expect: '^250-STARTTLS'\n          send: \"STARTTLS\\r\"\n        - expect: '^220'\n          starttls: true",
        true,
    ),
    (
        "tcp_imap_starttls",
        "prober: tcp\n    tcp:\n      tls_config: {ca_file: {ca}, server_name: localhost}\n      query_response:\n        - expect: 'OK.*STARTTLS'\n        - send: '. STARTTLS'\n        - expect: OK\n        - starttls: true\n        - send: '. capability'\n        - expect: 'CAPABILITY IMAP4rev1'\n        - send: '. logout'",
        true,
    ),
    (
        "tcp_imaps",
        "prober: tcp\n    tcp:\n      tls: true\n      tls_config: {ca_file: {ca}}\n      query_response:\n        - expect: '^\\* OK'\n        - send: '. logout'\n        - expect: '^\\* BYE'",
        true,
    ),
    (
        "tcp_irc",
        "prober: tcp\n    tcp:\n      query_response:\n        - send: NICK prober\n        - send: 'USER prober prober prober :prober'\n        - expect: 'PING :([^ ]+)'\n          send: 'PONG ${1}'\n        - expect: '^:[^ ]+ 001'",
        true,
    ),
    (
        "tcp_pop3",
        "prober: tcp\n    tcp:\n      query_response:\n        - expect: '^\\+OK'\n          send: QUIT\n        - expect: '^\\+OK'",
        true,
    ),
    (
        "tcp_no_match",
        "prober: tcp\n    tcp:\n      query_response:\n        - expect: '^never'",
        true,
    ),
    (
        "tcp_then_no_match",
        "prober: tcp\n    tcp:\n      query_response:\n        - expect: '^hello'\n        - expect: '^never'",
        true,
    ),
    (
        "tcp_1s",
        "prober: tcp\n    timeout: 1s\n    tcp:\n      query_response:\n        - expect: '^hello'",
        true,
    ),
    (
        "tcp_2s_ok",
        "prober: tcp\n    timeout: 2s\n    tcp:\n      query_response:\n        - expect: '^OK'",
        true,
    ),
    (
        "tcp_pg",
        "prober: tcp\n    tcp:\n      query_response:\n        - send: !!binary AAAACATSFi8=\n        - expect_bytes: S",
        false,
    ),
    (
        "tcp_pg_binary_expect",
        "prober: tcp\n    tcp:\n      query_response:\n        - send: !!binary AAAACATSFi8=\n        - expect_bytes: !!binary Uw==",
        false,
    ),
    (
        "tcp_bytes_short",
        "prober: tcp\n    tcp:\n      query_response:\n        - expect_bytes: SSL",
        false,
    ),
    (
        "unix_banner",
        "prober: unix\n    unix:\n      query_response:\n        - expect: '^220 (\\S+) ready'\n          labels: [{name: host, value: '${1}'}]\n          send: STARTTLS\n        - expect: '^220 go ahead'",
        false,
    ),
    (
        "unix_starttls",
        "prober: unix\n    unix:\n      tls_config: {ca_file: {ca}, server_name: localhost}\n      query_response:\n        - expect: '^220 '\n          send: STARTTLS\n        - expect: '^220 go ahead'\n          starttls: true\n        - expect: '^hello over TLS'",
        false,
    ),
    (
        "unix_starttls_no_name",
        "prober: unix\n    unix:\n      tls_config: {ca_file: {ca}}\n      query_response:\n        - expect: '^220 '\n          send: STARTTLS\n        - expect: '^220 go ahead'\n          starttls: true\n        - expect: '^hello over TLS'",
        false,
    ),
    (
        "unix_starttls_insecure",
        "prober: unix\n    unix:\n      tls_config: {insecure_skip_verify: true}\n      query_response:\n        - expect: '^220 '\n          send: STARTTLS\n        - expect: '^220 go ahead'\n          starttls: true\n        - expect: '^hello over TLS'",
        false,
    ),
    (
        "tcp_raw_capture",
        "prober: tcp\n    tcp:\n      query_response:\n        - expect: '^hello (?-u:(.))'\n          labels: [{name: byte, value: '$1'}]",
        false,
    ),
];

/// A daemon the tests started, and the pipe whose end stops it.
struct Daemon {
    addr: SocketAddr,
    /// An extra port it listens on (Dovecot's implicit TLS).
    tls: Option<SocketAddr>,
    /// Holds its stdin: the wrapper stops it when this process ends.
    _child: Child,
}

/// Every peer, started once per test process.
struct Peers {
    ssh: Daemon,
    smtp: Daemon,
    imap: Daemon,
    irc: SocketAddr,
    pop3: SocketAddr,
    lines: SocketAddr,
    silent: SocketAddr,
    endless_line: SocketAddr,
    longest_line: SocketAddr,
    line_too_long: SocketAddr,
    noise: SocketAddr,
    pg_yes: SocketAddr,
    pg_no: SocketAddr,
    one_byte: SocketAddr,
    raw_byte: SocketAddr,
    /// What the PostgreSQL peers received, per connection.
    pg_received: Arc<Mutex<Vec<Vec<u8>>>>,
    /// A unix socket that speaks a STARTTLS dialect.
    unix: PathBuf,
    modules: PathBuf,
    modules_0_23: PathBuf,
    _dir: tempfile::TempDir,
}

fn peers() -> &'static Peers {
    static PEERS: OnceLock<Peers> = OnceLock::new();
    PEERS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        // Dovecot's unprivileged processes must reach its base_dir in here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pki = Pki::new("lookout query_response test CA");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pki.ca_pem()).unwrap();
        let (cert, key, leaf) = leaf(&pki, dir.path());

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
        let pg_received = Arc::new(Mutex::new(Vec::new()));
        let (yes, no) = (Arc::clone(&pg_received), Arc::clone(&pg_received));
        let unix = dir.path().join("starttls.sock");
        serve_unix_starttls(&unix, server_tls(leaf, &[&rustls::version::TLS13]));
        Peers {
            ssh: start_sshd(dir.path()),
            smtp: start_smtp(&cert, &key),
            imap: start_dovecot(dir.path(), &cert, &key),
            irc: serve(irc),
            pop3: serve(|mut s| {
                s.write_all(b"+OK POP3 server ready <1896.697170952@dbc.mailcom.com>\r\n")
                    .unwrap();
                let line = read_line(&mut s);
                if line == "QUIT\n" {
                    let _ = s.write_all(b"+OK dewey POP3 server signing off\r\n");
                }
            }),
            lines: serve(|mut s| {
                s.write_all(b"hello\r\nworld\r\n").unwrap();
            }),
            silent: serve(|mut s| {
                let _ = s.read_to_end(&mut Vec::new());
            }),
            endless_line: serve(|mut s| {
                let chunk = [b'x'; 16 << 10];
                while s.write_all(&chunk).is_ok() {}
            }),
            // Go's scanner takes a line of 65,535 bytes and its \n, and
            // fails on one byte more.
            longest_line: serve(|mut s| {
                let mut text = vec![b'x'; 65_535];
                text.extend_from_slice(b"\nOK\n");
                s.write_all(&text).unwrap();
                let _ = s.read_to_end(&mut Vec::new());
            }),
            line_too_long: serve(|mut s| {
                let mut text = vec![b'x'; 65_536];
                text.extend_from_slice(b"\nOK\n");
                let _ = s.write_all(&text);
                let _ = s.read_to_end(&mut Vec::new());
            }),
            noise: serve(|mut s| {
                let chunk = b"noise\n".repeat(1000);
                while s.write_all(&chunk).is_ok() {}
            }),
            pg_yes: serve(move |s| postgres(s, b'S', &yes)),
            pg_no: serve(move |s| postgres(s, b'N', &no)),
            one_byte: serve(|mut s| {
                s.write_all(b"S").unwrap();
            }),
            raw_byte: serve(|mut s| {
                s.write_all(b"hello \xff\n").unwrap();
                let _ = s.read_to_end(&mut Vec::new());
            }),
            pg_received,
            unix,
            modules: write("blackbox.yml", true),
            modules_0_23: write("blackbox-0.23.yml", false),
            _dir: dir,
        }
    })
}

/// A leaf for localhost and 127.0.0.1 signed by `pki`: its PEM files, and
/// the same for rustls.
fn leaf(pki: &Pki, dir: &Path) -> (PathBuf, PathBuf, Leaf) {
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
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let cert = params.signed_by(&key, &pki.ca).unwrap();
    let (cert_file, key_file) = (dir.join("leaf.pem"), dir.join("leaf.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let leaf = Leaf {
        chain: vec![CertificateDer::from(cert.der().to_vec())],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    };
    (cert_file, key_file, leaf)
}

/// A port free a moment ago, for daemons that cannot be given port 0.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// OpenSSH's sshd on 127.0.0.1, with a host key made here. It needs
/// `/run/sshd`, which a mount namespace of its own provides (root, as the
/// test command runs).
fn start_sshd(dir: &Path) -> Daemon {
    let key = dir.join("ssh_host_ed25519_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key)
        .status()
        .expect("ssh-keygen runs (the test command installs openssh-server)");
    assert!(status.success());
    for _ in 0..5 {
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nUsePAM no\n",
                key.display()
            ),
        )
        .unwrap();
        let wrapper = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ];
        let mount = "mount -t tmpfs -o mode=755 lookout-sshd /run && mkdir -m 755 /run/sshd && ";
        let mut command = Command::new(wrapper[0]);
        command
            .args(&wrapper[1..])
            .arg(format!("{mount}{{ {WATCHDOG}; }}"))
            .arg("sh")
            .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(&config);
        if let Some(child) = run_daemon(command, port, &dir.join("sshd.log")) {
            return Daemon {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                tls: None,
                _child: child,
            };
        }
    }
    panic!(
        "sshd did not start: {}",
        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
    );
}

/// `sh -c` runs the daemon ("$@") and stops it when its stdin closes, that
/// is when this test process ends. A background job's stdin is /dev/null,
/// so the pipe goes to the watcher as fd 3.
const WATCHDOG: &str =
    r#"exec 3<&0; "$@" 3<&- & pid=$!; (cat <&3 >/dev/null; kill $pid) & exec 3<&-; wait $pid"#;

/// Starts `command` with its stdin piped and waits until `port` answers;
/// `None` when it exited first.
fn run_daemon(mut command: Command, port: u16, log: &Path) -> Option<Child> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    let mut child = command.spawn().expect("the daemon's wrapper starts");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not listen: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Dovecot's IMAP server: STARTTLS on one port, implicit TLS on another.
fn start_dovecot(dir: &Path, cert: &Path, key: &Path) -> Daemon {
    let base = dir.join("dovecot");
    std::fs::create_dir_all(base.join("state")).unwrap();
    for _ in 0..5 {
        let (port, tls) = (free_port(), free_port());
        let config = base.join("dovecot.conf");
        std::fs::write(
            &config,
            format!(
                "base_dir = {base}/run\nstate_dir = {base}/state\nlog_path = /dev/stderr\n\
                 protocols = imap\nlisten = 127.0.0.1\nssl = yes\n\
                 ssl_cert = <{cert}\nssl_key = <{key}\n\
                 service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n  \
                 inet_listener imaps {{\n    port = {tls}\n  }}\n}}\n\
                 passdb {{\n  driver = static\n  args = password=never-used\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={base}/home\n}}\n\
                 mail_location = maildir:{base}/home/Maildir\n",
                base = base.display(),
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .unwrap();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .args(["/usr/sbin/dovecot", "-F", "-c"])
            .arg(&config);
        if let Some(child) = run_daemon(command, port, &base.join("dovecot.log")) {
            return Daemon {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                tls: Some(SocketAddr::from(([127, 0, 0, 1], tls))),
                _child: child,
            };
        }
    }
    panic!(
        "dovecot did not start: {}",
        std::fs::read_to_string(base.join("dovecot.log")).unwrap_or_default()
    );
}

/// aiosmtpd with STARTTLS (`smtp_server.py`).
fn start_smtp(cert: &Path, key: &Path) -> Daemon {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/smtp_server.py");
    // Debian's interpreter, which has Debian's python3-aiosmtpd.
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(cert)
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 runs (the test command installs python3-aiosmtpd)");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port: u16 = first
        .trim()
        .strip_prefix("port ")
        .unwrap_or_else(|| panic!("the SMTP server starts (python3-aiosmtpd): {first:?}"))
        .parse()
        .unwrap();
    Daemon {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tls: None,
        _child: child,
    }
}

/// A scripted peer on 127.0.0.1: `script` runs for each connection.
fn serve(script: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let script = Arc::clone(&script);
            std::thread::spawn(move || script(stream));
        }
    });
    addr
}

/// One line, `\n` included ("" at the end of the stream).
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0];
    while let Ok(1) = stream.read(&mut byte) {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// An IRC server's registration: PING with a token the client must echo.
fn irc(mut s: TcpStream) {
    let nick = read_line(&mut s);
    let user = read_line(&mut s);
    if nick != "NICK prober\n" || !user.starts_with("USER prober") {
        return;
    }
    s.write_all(b":irc.lookout.test NOTICE * :*** Looking up your hostname\r\nPING :t0k3n-42\r\n")
        .unwrap();
    let pong = read_line(&mut s);
    let reply: &[u8] = if pong == "PONG t0k3n-42\n" {
        b":irc.lookout.test 001 prober :Welcome to the test network\r\n"
    } else {
        b":irc.lookout.test 451 * :You have not registered\r\n"
    };
    let _ = s.write_all(reply);
    let _ = s.read_to_end(&mut Vec::new());
}

/// A PostgreSQL server's first exchange: an SSLRequest, answered with
/// `answer`; what arrived is kept.
fn postgres(mut s: TcpStream, answer: u8, received: &Mutex<Vec<Vec<u8>>>) {
    let mut request = [0; 8];
    if s.read_exact(&mut request).is_err() {
        return;
    }
    let reply = if request == SSL_REQUEST { answer } else { b'E' };
    s.write_all(&[reply]).unwrap();
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let _ = s.read_to_end(&mut rest);
    let mut all = request.to_vec();
    all.extend_from_slice(&rest);
    received.lock().unwrap().push(all);
}

/// A unix socket peer: "220 <host> ready", then STARTTLS, then a line in TLS.
fn serve_unix_starttls(path: &Path, tls: Arc<rustls::ServerConfig>) {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let tls = Arc::clone(&tls);
            std::thread::spawn(move || {
                let mut stream = stream;
                stream
                    .write_all(b"220 unix.lookout.test ready\r\n")
                    .unwrap();
                let mut line = Vec::new();
                let mut byte = [0];
                while let Ok(1) = stream.read(&mut byte) {
                    line.push(byte[0]);
                    if byte[0] == b'\n' {
                        break;
                    }
                }
                if line != b"STARTTLS\n" {
                    return;
                }
                stream.write_all(b"220 go ahead\r\n").unwrap();
                let connection = rustls::ServerConnection::new(tls).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, stream);
                let _ = tls.write_all(b"hello over TLS\r\n");
                let _ = tls.flush();
                let _ = tls.read_to_end(&mut Vec::new());
            });
        }
    });
}

fn app() -> App {
    let p = peers();
    let app = spawn_app(
        &[
            "--config.file",
            p.modules.to_str().unwrap(),
            "--allow-unix-socket",
            p.unix.to_str().unwrap(),
        ],
        &[("RUST_LOG", "debug")],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

fn family<'m>(metrics: &'m [(String, f64)], name: &str) -> Vec<&'m str> {
    metrics
        .iter()
        .map(|(s, _)| s.as_str())
        .filter(|s| s.split(['{', ' ']).next() == Some(name))
        .collect()
}

/// probe_success, probe_failed_due_to_regex and probe_failed_due_to_bytes.
fn outcome(metrics: &[(String, f64)]) -> (Option<f64>, Option<f64>, Option<f64>) {
    (
        value(metrics, "probe_success"),
        value(metrics, "probe_failed_due_to_regex"),
        value(metrics, "probe_failed_due_to_bytes"),
    )
}

#[test]
fn an_ssh_banner_matches_and_its_groups_become_probe_expect_info() {
    let (p, app) = (peers(), app());
    let target = p.ssh.addr.to_string();
    let metrics = probe(&app, "tcp_ssh", &target);
    assert_eq!(outcome(&metrics), (Some(1.0), Some(0.0), Some(0.0)));
    assert!(family(&metrics, "probe_expect_info").is_empty());

    let metrics = probe(&app, "tcp_ssh_labels", &target);
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    let info = family(&metrics, "probe_expect_info");
    assert_eq!(info.len(), 1, "{metrics:?}");
    // Labels sorted by name, as Go's client prints them.
    let info = info[0];
    let software = info
        .split("software=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert!(software.starts_with("OpenSSH_"), "{info}");
    assert!(
        info.starts_with(&format!("probe_expect_info{{banner=\"SSH-2.0-{software} "))
            && info.contains("\",comment=\"")
            && info.ends_with(&format!(",missing=\"[]\",software=\"{software}\"}}")),
        "{info}"
    );
}

#[test]
fn smtp_and_imap_starttls_report_the_certificate_after_the_upgrade() {
    let (p, app) = (peers(), app());
    for (module, target) in [
        ("tcp_smtp_starttls", p.smtp.addr),
        ("tcp_imap_starttls", p.imap.addr),
        ("tcp_imaps", p.imap.tls.unwrap()),
    ] {
        let metrics = probe(&app, module, &target.to_string());
        assert_eq!(
            outcome(&metrics),
            (Some(1.0), Some(0.0), Some(0.0)),
            "{module}: {metrics:?}"
        );
        assert_eq!(
            value(&metrics, "probe_tls_version_info{version=\"TLS 1.3\"}"),
            Some(1.0),
            "{module}: {metrics:?}"
        );
        // 2035-01-01 for the leaf; the CA (2040) anchors the chain.
        assert_eq!(
            value(&metrics, "probe_ssl_earliest_cert_expiry"),
            Some(2_051_222_400.0),
            "{module}"
        );
        assert_eq!(
            value(&metrics, "probe_ssl_last_chain_expiry_timestamp_seconds"),
            Some(2_051_222_400.0),
            "{module}"
        );
        let leaf = family(&metrics, "probe_ssl_last_chain_info");
        assert!(
            leaf.len() == 1 && leaf[0].contains("subject=\"CN=localhost,O=Lookout\\\\, Inc.\""),
            "{module}: {leaf:?}"
        );
        assert!(
            family(&metrics, "probe_tls_cipher_info").is_empty(),
            "{module}"
        );
    }

    // A failed upgrade fails the probe, without the TLS metrics.
    for module in [
        "tcp_smtp_starttls_unknown_ca",
        "tcp_smtp_starttls_wrong_name",
    ] {
        let metrics = probe(&app, module, &p.smtp.addr.to_string());
        assert_eq!(
            outcome(&metrics),
            (Some(0.0), Some(0.0), Some(0.0)),
            "{module}: {metrics:?}"
        );
        assert!(
            family(&metrics, "probe_ssl_earliest_cert_expiry").is_empty(),
            "{module}"
        );
    }
    app.log_line("TLS handshake with 127.0.0.1");
}

#[test]
fn irc_registration_echoes_the_ping_token_with_dollar_one() {
    let (p, app) = (peers(), app());
    let metrics = probe(&app, "tcp_irc", &p.irc.to_string());
    assert_eq!(
        outcome(&metrics),
        (Some(1.0), Some(0.0), Some(0.0)),
        "{metrics:?}"
    );
    let metrics = probe(&app, "tcp_pop3", &p.pop3.to_string());
    assert_eq!(
        outcome(&metrics),
        (Some(1.0), Some(0.0), Some(0.0)),
        "{metrics:?}"
    );
}

#[test]
fn postgresql_ssl_request_is_sent_as_bytes_and_its_answer_checked_with_expect_bytes() {
    let (p, app) = (peers(), app());
    for module in ["tcp_pg", "tcp_pg_binary_expect"] {
        let metrics = probe(&app, module, &p.pg_yes.to_string());
        assert_eq!(
            outcome(&metrics),
            (Some(1.0), Some(0.0), Some(0.0)),
            "{module}: {metrics:?}"
        );
    }
    // The request and blackbox_exporter's "\n" after every send.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let received = p.pg_received.lock().unwrap().clone();
        if received
            .iter()
            .any(|r| r.as_slice() == [SSL_REQUEST, b"\n"].concat())
        {
            break;
        }
        assert!(Instant::now() < deadline, "{received:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Another answer: the bytes gauge says why.
    let metrics = probe(&app, "tcp_pg", &p.pg_no.to_string());
    assert_eq!(
        outcome(&metrics),
        (Some(0.0), Some(0.0), Some(1.0)),
        "{metrics:?}"
    );
    app.log_line(r#"bytes did not match: expected \"S\", read \"N\""#);
    // Fewer bytes than expected fail the probe, the gauge left at 0 (as Go's).
    let metrics = probe(&app, "tcp_bytes_short", &p.one_byte.to_string());
    assert_eq!(
        outcome(&metrics),
        (Some(0.0), Some(0.0), Some(0.0)),
        "{metrics:?}"
    );
    app.log_line("read less data than expected: 1 of 3 bytes");
}

#[test]
fn a_regexp_that_matches_no_line_before_the_end_sets_probe_failed_due_to_regex() {
    let (p, app) = (peers(), app());
    for module in ["tcp_no_match", "tcp_then_no_match"] {
        let metrics = probe(&app, module, &p.lines.to_string());
        assert_eq!(
            outcome(&metrics),
            (Some(0.0), Some(1.0), Some(0.0)),
            "{module}: {metrics:?}"
        );
    }
    app.log_line(r#"regexp \"^never\" did not match any line"#);
}

#[test]
fn a_peer_that_never_answers_fails_at_the_deadline_without_blaming_the_regexp() {
    let (p, app) = (peers(), app());
    let metrics = probe(&app, "tcp_1s", &p.silent.to_string());
    assert_eq!(
        outcome(&metrics),
        (Some(0.0), Some(0.0), Some(0.0)),
        "{metrics:?}"
    );
    app.log_line("timeout after 1000 ms");
}

#[test]
fn hostile_peers_cannot_make_a_probe_read_more_than_a_line_of_64_kib_or_1_mib_in_all() {
    let (p, app) = (peers(), app());
    // Go's bufio.Scanner: 65,535 bytes and the \n are a line...
    let metrics = probe(&app, "tcp_2s_ok", &p.longest_line.to_string());
    assert_eq!(outcome(&metrics), (Some(1.0), Some(0.0), Some(0.0)));
    // ...one more is not, nor is a line that never ends.
    for peer in [p.line_too_long, p.endless_line] {
        let metrics = probe(&app, "tcp_2s_ok", &peer.to_string());
        assert_eq!(
            outcome(&metrics),
            (Some(0.0), Some(0.0), Some(0.0)),
            "{metrics:?}"
        );
    }
    let reason = app.log_line("a line longer than 65536 bytes (bufio.Scanner: token too long)");
    assert!(!reason.contains("timeout"), "{reason}");
    // Short lines without end: 1 MiB, then the probe gives up (upstream
    // would read until its deadline).
    let metrics = probe(&app, "tcp_2s_ok", &p.noise.to_string());
    assert_eq!(
        outcome(&metrics),
        (Some(0.0), Some(0.0), Some(0.0)),
        "{metrics:?}"
    );
    app.log_line("read 1048576 bytes without a matching line");
}

#[test]
fn a_captured_byte_that_is_not_utf8_is_reported_as_u_fffd() {
    // Only `(?-u:.)` captures such a byte: Go's client would refuse the
    // label value and fail the whole scrape.
    let (p, app) = (peers(), app());
    let metrics = probe(&app, "tcp_raw_capture", &p.raw_byte.to_string());
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    assert_eq!(
        value(&metrics, "probe_expect_info{byte=\"\u{fffd}\"}"),
        Some(1.0),
        "{metrics:?}"
    );
}

#[test]
fn the_unix_prober_holds_the_same_conversation_and_starts_tls_only_with_a_name() {
    let (p, app) = (peers(), app());
    let target = p.unix.to_str().unwrap();
    let metrics = probe(&app, "unix_banner", target);
    assert_eq!(
        outcome(&metrics),
        (Some(1.0), Some(0.0), Some(0.0)),
        "{metrics:?}"
    );
    assert_eq!(
        value(&metrics, "probe_expect_info{host=\"unix.lookout.test\"}"),
        Some(1.0)
    );
    for module in ["unix_starttls", "unix_starttls_insecure"] {
        let metrics = probe(&app, module, target);
        assert_eq!(
            outcome(&metrics),
            (Some(1.0), Some(0.0), Some(0.0)),
            "{module}: {metrics:?}"
        );
        assert_eq!(
            value(&metrics, "probe_tls_version_info{version=\"TLS 1.3\"}"),
            Some(1.0),
            "{module}"
        );
    }
    // Go's tls.Client gets no name from a socket path.
    let metrics = probe(&app, "unix_starttls_no_name", target);
    assert_eq!(
        outcome(&metrics),
        (Some(0.0), Some(0.0), Some(0.0)),
        "{metrics:?}"
    );
    app.log_line("either ServerName or InsecureSkipVerify must be specified");
}

#[test]
fn query_response_probes_answer_as_blackbox_exporter_does() {
    let p = peers();
    let lookout = spawn_app(&["--config.file", p.modules.to_str().unwrap()], &[]);
    lookout.admin_until("/readyz", |r| r.status == 200);
    let blackbox = spawn_blackbox(&p.modules_0_23);
    let cases = [
        ("tcp_ssh", p.ssh.addr),
        ("tcp_smtp_starttls", p.smtp.addr),
        ("tcp_smtp_starttls_unknown_ca", p.smtp.addr),
        ("tcp_smtp_starttls_wrong_name", p.smtp.addr),
        ("tcp_imap_starttls", p.imap.addr),
        ("tcp_imaps", p.imap.tls.unwrap()),
        ("tcp_irc", p.irc),
        ("tcp_pop3", p.pop3),
        ("tcp_no_match", p.lines),
        ("tcp_then_no_match", p.lines),
        ("tcp_1s", p.silent),
        ("tcp_2s_ok", p.longest_line),
        ("tcp_2s_ok", p.line_too_long),
        ("tcp_2s_ok", p.endless_line),
        // blackbox_exporter reads until its deadline, lookout 1 MiB: the
        // same answer.
        ("tcp_2s_ok", p.noise),
        ("tcp_no_match", crate::targets::closed_port()),
    ];
    let mut differences = Vec::new();
    for (module, target) in cases {
        let path = format!(
            "/probe?module={module}&target={}",
            encode(&target.to_string())
        );
        let ours = request(lookout.probe, "GET", &path, &[]);
        let theirs = request(blackbox.addr, "GET", &path, &[]);
        assert_eq!((ours.status, theirs.status), (200, 200), "{module}");
        let (ours, theirs) = since_0_23(&ours.body, &theirs.body, module);
        let (ours, theirs) = (exposition(&ours), exposition(&theirs));
        assert!(
            ours.0.contains_key("probe_success"),
            "{module}: {:?}",
            ours.0
        );
        let case = format!("{module} {target}");
        eprintln!("compared {case}: {:?}", ours.0.keys().collect::<Vec<_>>());
        differences.extend(compare(&case, &ours, &theirs, same_or_timing));
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
