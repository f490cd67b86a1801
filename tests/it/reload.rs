//! Reloads: POST /-/reload and SIGHUP, good and bad files, and the
//! blackbox_exporter reload gauges.

use crate::support::{spawn_app, write, App};

fn gauge(app: &App, name: &str) -> f64 {
    let metrics = app.admin("GET", "/metrics").body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
        .parse()
        .unwrap()
}

const SUCCESS: &str = "blackbox_exporter_config_last_reload_successful";
const TIMESTAMP: &str = "blackbox_exporter_config_last_reload_success_timestamp_seconds";

#[test]
fn reload_with_a_good_then_a_bad_file_sets_the_gauges() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: http\n");
    let app = spawn_app(&["--config.file", file.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    assert_eq!(gauge(&app, SUCCESS), 1.0);
    let first = gauge(&app, TIMESTAMP);
    assert!(first > 1.7e9, "timestamp {first}");

    write(
        &file,
        "modules:\n  one:\n    prober: http\n  two:\n    prober: tcp\n",
    );
    let response = app.admin("POST", "/-/reload");
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.body.contains("reloaded 2 modules"), "{response:?}");
    assert_eq!(gauge(&app, SUCCESS), 1.0);
    let second = gauge(&app, TIMESTAMP);
    assert!(second >= first);

    write(&file, "modules:\n  one:\n    prober: htp\n");
    let response = app.admin("POST", "/-/reload");
    assert_eq!(response.status, 500, "{response:?}");
    assert!(
        response.body.contains("unknown variant `htp`"),
        "{response:?}"
    );
    assert_eq!(gauge(&app, SUCCESS), 0.0);
    assert_eq!(
        gauge(&app, TIMESTAMP),
        second,
        "a failed reload keeps the last success time"
    );
    app.log_line("reload failed; the previous modules stay in force");
    // Still serving, still ready.
    assert_eq!(app.admin("GET", "/readyz").status, 200);

    write(&file, "modules:\n  three:\n    prober: tcp\n");
    assert_eq!(app.admin("POST", "/-/reload").status, 200);
    assert_eq!(gauge(&app, SUCCESS), 1.0);
}

#[test]
fn sighup_reloads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: http\n");
    let app = crate::support::spawn_process(&["--config.file", file.to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);

    write(&file, "modules: {broken\n");
    app.signal("HUP");
    app.admin_until("/metrics", |r| r.body.contains(&format!("{SUCCESS} 0")));

    write(&file, "modules:\n  one:\n    prober: http\n");
    app.signal("HUP");
    app.admin_until("/metrics", |r| r.body.contains(&format!("{SUCCESS} 1")));
    assert!(app
        .log_line("configuration reloaded")
        .contains("\"modules\":1"));
}

#[test]
fn an_app_in_process_reloads_and_stops_through_its_control() {
    use lookout::app::{Command, Stop};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: http\n");
    let app = spawn_app(
        &[
            "--config.file",
            file.to_str().unwrap(),
            "--shutdown-delay",
            "1h",
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    // What SIGHUP does in the binary, a test's controller does here.
    write(&file, "modules: {broken\n");
    app.send(Command::Reload);
    app.admin_until("/metrics", |r| r.body.contains(&format!("{SUCCESS} 0")));
    write(
        &file,
        "modules:\n  one:\n    prober: http\n  two:\n    prober: tcp\n",
    );
    app.send(Command::Reload);
    app.admin_until("/metrics", |r| r.body.contains(&format!("{SUCCESS} 1")));
    // And what SIGTERM does: readiness off at once, still serving (the delay is an hour).
    app.send(Command::Stop(Stop {
        name: "test",
        number: 15,
    }));
    let readyz = app.admin_until("/readyz", |r| r.status == 503);
    assert!(readyz.body.contains("shutting down"), "{readyz:?}");
    assert_eq!(app.admin("GET", "/healthz").status, 200);
}
