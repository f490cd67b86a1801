//! Logs and metrics as an operator's pipeline sees them.

use std::process::{Command, Stdio};

use crate::support::{request, spawn_app};

#[test]
fn json_logs_carry_one_object_per_request_with_its_fields() {
    let app = crate::support::spawn_process(&[], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    assert_eq!(request(app.probe, "GET", "/-/healthy", &[]).status, 200);
    let line = app.log_line("\"route\":\"/-/healthy\"");
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON object");
    assert_eq!(json["message"], "request");
    assert_eq!(json["level"], "INFO");
    assert_eq!(json["method"], "GET");
    assert_eq!(json["status"], 200);
    assert!(json["latency_ms"].as_f64().unwrap() >= 0.0);
    for line in app.logs() {
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[test]
fn metrics_pass_promtool_check_metrics() {
    let app = spawn_app(&[], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    request(app.probe, "GET", "/-/healthy", &[]);
    request(app.probe, "GET", "/does/not/exist?x=1", &[]);
    let metrics = app.admin("GET", "/metrics");
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for name in [
        "lookout_build_info{",
        "lookout_http_requests_total{route=\"/-/healthy\",method=\"GET\",status=\"200\"} ",
        "lookout_http_request_duration_seconds_bucket{",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "blackbox_exporter_config_last_reload_successful 1",
        "blackbox_exporter_config_last_reload_success_timestamp_seconds ",
    ] {
        assert!(
            metrics.body.contains(name),
            "{name} missing:\n{}",
            metrics.body
        );
    }
    // The raw URI never becomes a label value.
    assert!(!metrics.body.contains("does/not/exist"));
    assert!(metrics.body.contains("route=\"unmatched\""));

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (the test command installs Debian's prometheus package)");
    std::io::Write::write_all(promtool.stdin.as_mut().unwrap(), metrics.body.as_bytes()).unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn prometheus_gets_openmetrics_when_it_asks() {
    let app = spawn_app(&[], &[]);
    let metrics = request(
        app.admin,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4",
        )],
    );
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(metrics.body.ends_with("# EOF\n"));
}

#[test]
fn the_index_page_names_the_endpoints() {
    let app = spawn_app(&[], &[]);
    let index = request(app.probe, "GET", "/", &[]);
    assert_eq!(index.status, 200);
    for endpoint in [
        "/probe",
        "/-/healthy",
        "/healthz",
        "/readyz",
        "/metrics",
        "/-/reload",
    ] {
        assert!(index.body.contains(endpoint), "{endpoint} missing");
    }
}

#[test]
fn every_refusal_reason_is_exported_at_zero_before_the_first_refusal() {
    // The shipped LookoutProbesRejected alert uses increase(), which cannot
    // see a series' first sample: the first burst would go unseen.
    let app = spawn_app(&[], &[]);
    for reason in ["concurrency", "memory", "matches"] {
        assert_eq!(
            app.metric(&format!(
                "lookout_probes_rejected_total{{reason=\"{reason}\"}}"
            )),
            Some(0.0),
            "{reason}"
        );
    }
}
