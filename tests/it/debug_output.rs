//! What lookout says about a probe and its modules: `/probe?debug=true`,
//! `GET /config`, and `lookout probe` saying why a probe failed, compared
//! with blackbox_exporter 0.23 where it has the same.

use std::{
    collections::BTreeSet,
    net::UdpSocket,
    process::{Command, Output},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use crate::{
    differential::{exposition, since_0_23, spawn_blackbox},
    probe::encode,
    support::{lookout, request, spawn_app, write, App, Response},
    targets::{hosts_file, world, DnsStub},
};

const SECTIONS: [&str; 3] = [
    "Logs for the probe:\n",
    "\n\n\nMetrics that would have been returned:\n",
    "\n\n\nModule configuration:\n",
];

fn app() -> App {
    let app = spawn_app(&["--config.file", world().modules.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

fn debug_probe(addr: std::net::SocketAddr, module: &str, target: &str, extra: &str) -> Response {
    request(
        addr,
        "GET",
        &format!(
            "/probe?module={module}&target={}&debug=true{extra}",
            encode(target)
        ),
        &[],
    )
}

/// The three sections of a debug output: log, metrics, module.
fn sections(body: &str) -> (String, String, String) {
    let rest = body
        .strip_prefix(SECTIONS[0])
        .unwrap_or_else(|| panic!("no log heading: {body}"));
    let (log, rest) = rest
        .split_once(SECTIONS[1])
        .unwrap_or_else(|| panic!("no metrics heading: {body}"));
    let (metrics, module) = rest
        .split_once(SECTIONS[2])
        .unwrap_or_else(|| panic!("no module heading: {body}"));
    (log.to_owned(), metrics.to_owned(), module.to_owned())
}

/// Messages of a log section, in order.
fn messages(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split_once(" msg=")?.1;
            Some(match rest.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next().unwrap_or_default().to_owned(),
                None => rest.split(' ').next().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

#[test]
fn a_debug_probe_answers_with_its_log_its_metrics_and_its_module() {
    let app = app();
    let target = format!("http://{}/ok", world().http);
    let response = debug_probe(app.probe, "http_body_healthy", &target, "");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some("text/plain"));
    let (log, metrics, module) = sections(&response.body);
    assert_eq!(
        messages(&log),
        [
            "Beginning probe",
            "Resolving target address",
            "Resolved target address",
            "Making HTTP request",
            "Received HTTP response",
            "body regexp check failed",
            "Probe failed",
        ],
        "{log}"
    );
    for line in log.lines() {
        assert!(line.starts_with("time="), "{line}");
        assert!(
            line.contains(&format!(" module=http_body_healthy target={target}")),
            "{line}"
        );
    }
    assert!(log.contains("status_code=200"), "{log}");
    assert!(log.contains("fail_if_body_not_matches_regexp"), "{log}");
    // The metrics a plain probe returns, no more, no fewer.
    let plain = request(
        app.probe,
        "GET",
        &format!("/probe?module=http_body_healthy&target={}", encode(&target)),
        &[],
    );
    let names = |text: &str| exposition(text).0.into_keys().collect::<BTreeSet<_>>();
    assert_eq!(names(&metrics), names(&plain.body));
    assert!(metrics.contains("probe_success 0\n"), "{metrics}");
    assert!(
        metrics.contains("probe_failed_due_to_regex 1\n"),
        "{metrics}"
    );
    assert_eq!(
        module,
        "prober: http\nhttp:\n  ip_protocol_fallback: true\n  fail_if_body_not_matches_regexp:\n  - healthy\n  follow_redirects: true\n  enable_http2: true\ntcp:\n  ip_protocol_fallback: true\nicmp:\n  ip_protocol_fallback: true\n  ttl: 64\ndns:\n  ip_protocol_fallback: true\n  recursion_desired: true\n"
    );

    // A success says so; anything but exactly `true` is no debug output.
    let response = debug_probe(app.probe, "http_2xx", &target, "&hostname=h.example");
    let (log, _, module) = sections(&response.body);
    assert_eq!(
        messages(&log).last().map(String::as_str),
        Some("Probe succeeded")
    );
    assert!(log.contains("host=h.example"), "{log}");
    assert!(
        module.contains("  headers:\n    Host: h.example\n"),
        "{module}"
    );
    for debug in ["TRUE", "1", "yes", ""] {
        let response = request(
            app.probe,
            "GET",
            &format!(
                "/probe?module=http_2xx&target={}&debug={debug}",
                encode(&target)
            ),
            &[],
        );
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "debug={debug}"
        );
    }
}

#[test]
fn a_debug_probe_reads_as_blackbox_exporters() {
    let w = world();
    let app = app();
    let blackbox = spawn_blackbox(&w.modules);
    let http = w.http;
    let mut differences = Vec::new();
    // Every module of the file, against a target that answers and one that does not.
    let config = app.admin("GET", "/config").body;
    let modules: Vec<&str> = config
        .lines()
        .filter_map(|l| l.strip_prefix("    ")?.strip_suffix(':'))
        .filter(|name| !name.starts_with(' '))
        .collect();
    assert!(modules.len() > 20, "{config}");
    for module in &modules {
        for target in [format!("http://{http}/ok"), w.closed.to_string()] {
            let ours = debug_probe(app.probe, module, &target, "");
            let theirs = debug_probe(blackbox.addr, module, &target, "");
            assert_eq!(
                ours.header("content-type"),
                theirs
                    .header("content-type")
                    .map(|c| c.split(';').next().unwrap_or(c))
            );
            let (_, our_metrics, our_module) = sections(&ours.body);
            let (_, their_metrics, their_module) = sections(&theirs.body);
            if our_module != their_module {
                differences.push(format!(
                    "{module}: module configuration\n--- lookout\n{our_module}--- blackbox\n{their_module}"
                ));
            }
            let (ours, theirs) = since_0_23(&our_metrics, &their_metrics, module);
            let (ours, theirs) = (exposition(&ours), exposition(&theirs));
            let names =
                |e: &crate::differential::Exposition| e.0.keys().cloned().collect::<Vec<_>>();
            if names(&ours) != names(&theirs) {
                differences.push(format!(
                    "{module} {target}: metrics\n  lookout {:?}\n  blackbox {:?}",
                    names(&ours),
                    names(&theirs)
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn config_prints_the_modules_file_as_blackbox_exporter_does() {
    let w = world();
    let app = app();
    let blackbox = spawn_blackbox(&w.modules);
    let ours = app.admin("GET", "/config");
    let theirs = request(blackbox.addr, "GET", "/config", &[]);
    assert_eq!(ours.status, 200);
    assert_eq!(ours.header("content-type"), Some("text/plain"));
    assert_eq!(ours.header("content-type"), theirs.header("content-type"));
    assert!(
        ours.body == theirs.body,
        "--- lookout\n{}\n--- blackbox\n{}",
        ours.body,
        theirs.body
    );
    // Secrets never show, on either page.
    for secret in ["s3cret", "t0ken"] {
        assert!(!ours.body.contains(secret), "{}", ours.body);
    }
    assert!(ours.body.contains("password: <secret>"), "{}", ours.body);
    assert!(ours.body.contains("credentials: <secret>"), "{}", ours.body);
    let debug = debug_probe(app.probe, "http_bearer", "http://127.0.0.1:1/", "").body;
    assert!(
        !debug.contains("t0ken") && debug.contains("credentials: <secret>"),
        "{debug}"
    );
    // /config is the admin listener's, not the probe listener's.
    assert_eq!(request(app.probe, "GET", "/config", &[]).status, 404);
}

#[test]
fn config_shows_the_modules_in_force_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: tcp\n");
    let app = spawn_app(&["--config.file", file.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    assert!(app.admin("GET", "/config").body.contains("    one:\n"));
    write(&file, "modules:\n  two:\n    prober: tcp\n");
    assert_eq!(app.admin("POST", "/-/reload").status, 200);
    let body = app.admin("GET", "/config").body;
    assert!(
        body.contains("    two:\n") && !body.contains("one"),
        "{body}"
    );
    // A file that does not load changes nothing shown.
    write(&file, "modules:\n  three:\n    prober: nope\n");
    assert_eq!(app.admin("POST", "/-/reload").status, 500);
    assert_eq!(app.admin("GET", "/config").body, body);
}

#[test]
fn config_needs_the_credentials_the_admin_listener_needs() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write(&token, "opensesame\n");
    let app = spawn_app(
        &[
            "--config.file",
            world().modules.to_str().unwrap(),
            "--bearer-token-file",
            token.to_str().unwrap(),
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    assert_eq!(app.admin("GET", "/config").status, 401);
    let authorized = request(
        app.admin,
        "GET",
        "/config",
        &[("Authorization", "Bearer opensesame")],
    );
    assert_eq!(authorized.status, 200);
    assert!(authorized.body.starts_with("modules:\n"));
}

/// A DNS server on UDP that answers every query with a stream of replies
/// carrying other IDs, each of which the prober logs and ignores, until
/// the test ends.
struct ChattyDns {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
}

impl ChattyDns {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                return;
            };
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80;
            let mut id = u16::from_be_bytes([buf[0], buf[1]]);
            while !stopped.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    id = id.wrapping_add(1) | 1;
                    if id == u16::from_be_bytes([buf[0], buf[1]]) {
                        continue;
                    }
                    reply[..2].copy_from_slice(&id.to_be_bytes());
                    let _ = socket.send_to(&reply, peer);
                }
                std::thread::yield_now();
            }
        });
        Self { addr, stop }
    }
}

impl Drop for ChattyDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_hostile_server_cannot_make_a_probe_log_grow_without_bound() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(
        &file,
        "modules:\n  dns:\n    prober: dns\n    timeout: 3s\n    dns:\n      query_name: example.org\n      preferred_ip_protocol: ip4\n",
    );
    let app = spawn_app(&["--config.file", file.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let server = ChattyDns::start();
    let response = debug_probe(app.probe, "dns", &server.addr.to_string(), "");
    drop(server);
    assert_eq!(response.status, 200);
    let (log, metrics, _) = sections(&response.body);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        messages(&log)[..4],
        [
            "Beginning probe",
            "Resolving target address",
            "Resolved target address",
            "Making DNS query"
        ],
        "{log}"
    );
    assert!(
        lines[4].contains("ignoring a reply with another ID"),
        "{log}"
    );
    let limit = lookout::telemetry::probe_log::MAX_LINES;
    assert!(lines.len() <= limit + 2, "{} lines", lines.len());
    assert!(
        log.len()
            <= lookout::telemetry::probe_log::MAX_BYTES
                + 2 * lookout::telemetry::probe_log::MAX_LINE_BYTES,
        "{} bytes",
        log.len()
    );
    assert!(
        lines[lines.len() - 2].contains("more lines not kept"),
        "{}",
        lines[lines.len() - 2]
    );
    let last = lines[lines.len() - 1];
    assert!(
        last.contains("msg=\"Probe failed\"") && last.contains("timeout"),
        "{last}"
    );
    assert!(metrics.contains("probe_success 0\n"), "{metrics}");
}

/// `lookout probe ARGS` in a mount namespace whose resolver is `dns` (so no
/// lookup leaves the machine), with the world's modules.
fn probe_cli(dns: &DnsStub, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let hosts = hosts_file(dir.path());
    let resolv = dns.resolv_conf(dir.path(), 1);
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(&hosts)
        .arg(&resolv)
        .arg(lookout().get_program())
        .arg("probe")
        .args(args)
        .args(["--config.file", world().modules.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The one line `lookout probe` prints on stderr for a failed probe.
fn failure_line(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    let line = lines[0].to_owned();
    assert!(line.starts_with("lookout: probe failed: "), "{line}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("probe_success 0\n"),
        "{output:?}"
    );
    line
}

#[test]
fn lookout_probe_says_why_a_probe_failed() {
    let nxdomain = DnsStub::answering(&[]);
    let silent = DnsStub::silent();
    let http = world().http;
    // A name that does not exist; one no resolver answers for.
    let line = failure_line(&probe_cli(&nxdomain, &["https://nonexistent.invalid"]));
    assert!(line.contains("resolving nonexistent.invalid"), "{line}");
    assert!(nxdomain.questions_for("nonexistent.invalid") > 0);
    let line = failure_line(&probe_cli(&silent, &["https://example.com"]));
    assert!(line.contains("resolving example.com"), "{line}");
    // A refused port.
    let closed = world().closed.to_string();
    let line = failure_line(&probe_cli(&nxdomain, &[&closed, "--module", "tcp_connect"]));
    assert!(line.contains("Connection refused"), "{line}");
    // A failed check says which and why.
    let target = format!("http://{http}/ok");
    let line = failure_line(&probe_cli(
        &nxdomain,
        &[&target, "--module", "http_body_healthy"],
    ));
    assert!(
        line.contains("body regexp check failed")
            && line.contains("fail_if_body_not_matches_regexp \"healthy\""),
        "{line}"
    );
    let line = failure_line(&probe_cli(&nxdomain, &[&format!("http://{http}/notfound")]));
    assert!(
        line.contains("invalid HTTP response status code (status: 404)"),
        "{line}"
    );
    // Success says nothing.
    let ok = probe_cli(&nxdomain, &[&target]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert!(ok.stderr.is_empty(), "{ok:?}");
}

#[test]
fn lookout_probe_debug_prints_the_probe_log_on_stderr() {
    let nxdomain = DnsStub::answering(&[]);
    let target = format!("http://{}/ok", world().http);
    let output = probe_cli(
        &nxdomain,
        &[&target, "--module", "http_body_healthy", "--debug"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (log, reason) = stderr.rsplit_once("lookout: probe failed: ").unwrap();
    assert!(reason.contains("body regexp check failed"), "{stderr}");
    assert_eq!(
        messages(log),
        [
            "Beginning probe",
            "Resolving target address",
            "Resolved target address",
            "Making HTTP request",
            "Received HTTP response",
            "body regexp check failed",
            "Probe failed",
        ],
        "{stderr}"
    );
    // stdout stays the metrics alone.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with('#') || l.starts_with("probe_")),
        "{stdout}"
    );
    let output = probe_cli(
        &nxdomain,
        &[
            "nonexistent.invalid:80",
            "--module",
            "tcp_connect",
            "--debug",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        messages(&stderr).contains(&"Resolution with IP protocol failed".to_owned()),
        "{stderr}"
    );
}
