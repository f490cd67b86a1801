//! Readiness through start-up and shutdown, signals, exit statuses.

use std::{
    io::{Read, Write},
    net::TcpStream,
};

use crate::{
    support::{ca_pem, parse_response, spawn_app, spawn_process, App, Response, PATIENCE},
    targets::Gate,
};

#[test]
fn readiness_is_503_until_warm_up_ends_while_healthz_answers_at_once() {
    // Warm-up reads every module's ca_file; a FIFO holds it back until we write.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ca.pem");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let config = dir.path().join("blackbox.yml");
    std::fs::write(
        &config,
        format!("modules:\n  internal:\n    prober: http\n    http:\n      tls_config:\n        ca_file: {}\n", fifo.display()),
    )
    .unwrap();

    let app = spawn_app(&["--config.file", config.to_str().unwrap()], &[]);
    assert_eq!(app.admin("GET", "/healthz").status, 200);
    let readyz = app.admin("GET", "/readyz");
    assert_eq!(readyz.status, 503);
    assert!(readyz.body.contains("warming up"), "{readyz:?}");

    std::fs::write(&fifo, ca_pem()).unwrap();
    let readyz = app.admin_until("/readyz", |r| r.status != 503);
    assert_eq!(readyz.status, 200, "{readyz:?}");
}

#[test]
fn sigterm_turns_readiness_off_at_once_keeps_serving_then_exits_0() {
    // The delay must outlast the three requests below; the test waits for the exit.
    let mut app = spawn_process(&["--shutdown-delay", "3s", "--drain-timeout", "5s"], &[]);
    app.admin_until("/readyz", |r| r.status == 200);

    // A keep-alive connection opened before the signal keeps working during the delay.
    let mut kept = TcpStream::connect(app.probe).unwrap();
    kept.set_read_timeout(Some(PATIENCE)).unwrap();
    let ask = |stream: &mut TcpStream| {
        stream
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: lookout\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        parse_response(&buf[..n])
    };
    assert_eq!(ask(&mut kept).status, 200);

    app.signal("TERM");
    let readyz = app.admin_until("/readyz", |r| r.status == 503);
    assert!(readyz.body.contains("shutting down"), "{readyz:?}");
    assert_eq!(app.admin("GET", "/healthz").status, 200);
    assert_eq!(ask(&mut kept).status, 200);

    let status = app.wait();
    assert_eq!(status.code(), Some(0), "logs: {:?}", app.logs());
    app.log_line("shutdown: drained; exiting");
}

#[test]
fn sigint_shuts_down_like_sigterm() {
    let mut app = spawn_process(&["--shutdown-delay", "0s"], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    app.signal("INT");
    assert_eq!(app.wait().code(), Some(0));
    assert!(app
        .log_line("shutdown: readiness is now 503")
        .contains("SIGINT"));
}

#[test]
fn a_second_signal_exits_at_once() {
    // A delay far longer than the test's patience: only the second signal can end it in time.
    let mut app = spawn_process(&["--shutdown-delay", "1h"], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    app.signal("TERM");
    app.admin_until("/readyz", |r| r.status == 503);
    app.signal("TERM");
    let status = app.wait();
    assert_eq!(status.code(), Some(128 + 15), "logs: {:?}", app.logs());
    app.log_line("second signal: exiting now");
}

/// Starts lookout with no shutdown delay and the given drain timeout, starts a
/// probe of a target that holds it until the test opens the gate, sends
/// SIGTERM once the probe is under way and waits until the probe listener has
/// closed. Returns the app, the gate and the probe's eventual response.
fn sigterm_during_a_held_probe(
    drain: &str,
) -> (
    App,
    Gate,
    std::thread::JoinHandle<std::io::Result<Response>>,
) {
    use crate::{probe::encode, targets::world};
    let modules = world().modules.to_str().unwrap();
    // No shutdown delay: the listeners close at once and only the drain keeps the probe alive.
    let app = spawn_process(
        &[
            "--config.file",
            modules,
            "--shutdown-delay",
            "0s",
            "--drain-timeout",
            drain,
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let gate = Gate::new();
    let (probe, target) = (app.probe, format!("http://{}/", gate.addr));
    let held = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(probe)?;
        let path = format!("/probe?module=http_2xx&target={}", encode(&target));
        stream.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: lookout\r\nConnection: close\r\n\r\n").as_bytes(),
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        if raw.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(parse_response(&raw))
    });
    gate.wait_for_arrivals(1);
    app.signal("TERM");
    app.log_line("shutdown: stopped accepting");
    (app, gate, held)
}

#[test]
fn a_request_in_flight_at_sigterm_completes() {
    let (mut app, gate, held) = sigterm_during_a_held_probe("1h");
    // The listener is closed and the probe still held: only the drain keeps it.
    gate.open();
    let response = held.join().unwrap().expect("an answer");
    assert_eq!(response.status, 200);
    assert!(
        response.body.contains("probe_success 1"),
        "{}",
        response.body
    );
    assert_eq!(app.wait().code(), Some(0), "logs: {:?}", app.logs());
    app.log_line("shutdown: drained; exiting");
}

#[test]
fn the_drain_timeout_bounds_the_wait_for_stragglers() {
    // The gate never opens; the drain gives the probe 1 s, then lookout exits 0 anyway.
    let (mut app, _gate, held) = sigterm_during_a_held_probe("1s");
    assert_eq!(app.wait().code(), Some(0), "logs: {:?}", app.logs());
    app.log_line("drain timeout reached");
    assert!(
        held.join().unwrap().is_err(),
        "the straggler's connection was closed unanswered"
    );
}

#[test]
fn readiness_turns_off_while_the_probe_listener_does_not_answer() {
    // One connection slot per listener, and a client that holds the probe
    // listener's slot without ever sending a head (a timeout far beyond the test).
    let app = spawn_app(
        &["--max-connections", "1", "--header-read-timeout", "1h"],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let wedge = TcpStream::connect(app.probe).unwrap();
    let readyz = app.admin_until("/readyz", |r| r.status == 503);
    assert!(
        readyz.body.contains("the probe listener does not answer"),
        "{readyz:?}"
    );
    assert_eq!(app.admin("GET", "/healthz").status, 200, "still alive");
    drop(wedge);
    app.admin_until("/readyz", |r| r.status == 200);
}

#[test]
fn reaching_the_probe_limit_leaves_a_pod_ready() {
    use crate::{probe::encode, targets::world};
    let app = spawn_app(
        &[
            "--config.file",
            world().modules.to_str().unwrap(),
            "--max-concurrent-probes",
            "1",
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let gate = Gate::new();
    let path = format!(
        "/probe?module=http_2xx&target={}",
        encode(&format!("http://{}/", gate.addr))
    );
    let (probe, held_path) = (app.probe, path.clone());
    let held = std::thread::spawn(move || crate::support::request(probe, "GET", &held_path, &[]));
    gate.wait_for_arrivals(1);
    let refused = crate::support::request(app.probe, "GET", &path, &[]);
    assert_eq!(refused.status, 503);
    assert_eq!(app.admin("GET", "/readyz").status, 200);
    gate.open();
    assert_eq!(held.join().unwrap().status, 200);
}
