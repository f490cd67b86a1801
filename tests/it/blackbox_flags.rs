//! blackbox_exporter's own flags, as its Helm chart, Dockerfile and the
//! Prometheus documentation pass them: `--web.listen-address`,
//! `--config.file`, `--config.check`, `--log.level`, `--log.format`,
//! `--timeout-offset`; and what happens when lookout's spelling of the same
//! setting is given too.

use std::process::Output;

use crate::{
    probe::parse,
    support::{lookout, request, spawn_app, spawn_process, write, PATIENCE},
};

fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

/// A blackbox.yaml as the Helm chart's default `config:` writes it.
fn chart_config(dir: &std::path::Path) -> String {
    let file = dir.join("blackbox.yaml");
    write(
        &file,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      \
         valid_http_versions: [\"HTTP/1.1\", \"HTTP/2.0\"]\n      follow_redirects: true\n      \
         preferred_ip_protocol: \"ip4\"\n  tcp_connect:\n    prober: tcp\n    timeout: 5s\n",
    );
    file.display().to_string()
}

#[test]
fn the_helm_charts_arguments_serve_blackbox_exporters_endpoints_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let config = chart_config(dir.path());
    // The chart's container args, but port 0 for a free port (its default
    // is :9115): Go's `:port` form, every address of the host.
    let app = spawn_process(
        &[
            &format!("--config.file={config}"),
            "--web.listen-address=:0",
            "--log.level=info",
        ],
        &[],
    );
    let port = app.probe.port();
    assert_eq!(app.probe, app.admin, "one address");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ready = || request(addr, "GET", "/readyz", &[]).status == 200;
    let deadline = std::time::Instant::now() + PATIENCE;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {:?}",
            app.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let probe = request(
        addr,
        "GET",
        &format!("/probe?module=tcp_connect&target=127.0.0.1:{port}"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "10")],
    );
    assert_eq!(probe.status, 200);
    assert_eq!(
        value(&parse(&probe.body), "probe_success"),
        Some(1.0),
        "{}",
        probe.body
    );
    let healthy = request(addr, "GET", "/-/healthy", &[]);
    assert_eq!((healthy.status, healthy.body.as_str()), (200, "Healthy"));
    let metrics = request(addr, "GET", "/metrics", &[]);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("blackbox_exporter_config_last_reload_successful 1"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("blackbox_module_unknown_total"));
    // The modules in force, as blackbox_exporter serves them on its one address.
    let config = request(addr, "GET", "/config", &[]);
    assert_eq!(config.status, 200);
    assert!(config.body.starts_with("modules:\n"), "{}", config.body);
    assert!(config.body.contains("  tcp_connect:\n"), "{}", config.body);
    let unknown = request(addr, "GET", "/probe?module=nope&target=x", &[]);
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (400, "Unknown module \"nope\"\n")
    );
    assert_eq!(request(addr, "GET", "/", &[]).status, 200);
    assert_eq!(request(addr, "GET", "/healthz", &[]).status, 200);
    assert_eq!(request(addr, "POST", "/-/reload", &[]).status, 200);
    assert_eq!(
        request(addr, "GET", "/-/reload", &[]).status,
        405,
        "POST only, as blackbox_exporter"
    );
    // `:port` is IPv6 too, where the host has it.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        assert_eq!(request(v6, "GET", "/-/healthy", &[]).status, 200);
    }
    // Nothing else listens: the admin port is not bound.
    assert_eq!(
        app.logs()
            .iter()
            .filter(|l| l.contains("\"listening\""))
            .count(),
        1,
        "{:?}",
        app.logs()
    );
}

#[test]
fn the_single_address_serves_the_admin_routes_in_process_too() {
    let app = spawn_app(&["--web.listen-address", "127.0.0.1:0"], &[]);
    assert_eq!(app.probe, app.admin);
    app.admin_until("/readyz", |r| r.status == 200);
    for path in ["/-/healthy", "/healthz", "/metrics", "/"] {
        assert_eq!(request(app.probe, "GET", path, &[]).status, 200, "{path}");
    }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    lookout()
        .args(args)
        .env_remove("LOOKOUT_CONFIG")
        .env_remove("LOG_FORMAT")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("lookout runs")
}

#[test]
fn config_check_exits_0_for_a_valid_file_and_1_for_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = chart_config(dir.path());
    let output = run(&["--config.check", &format!("--config.file={config}")], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("OK, 2 modules: http_2xx, tcp_connect"),
        "{stderr}"
    );
    // No file: the embedded modules, which are valid.
    assert_eq!(run(&["--config.check"], &[]).status.code(), Some(0));

    let bad = dir.path().join("bad.yml");
    write(&bad, "modules:\n  m:\n    prober: http\n    timeout: 5 s\n");
    let output = run(
        &["--config.check", "--config.file", bad.to_str().unwrap()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(bad.to_str().unwrap()) && stderr.contains("line 4"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let output = run(
        &[
            "--config.check",
            "--config.file",
            "/nonexistent/blackbox.yml",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    // lookout's own subcommand keeps its status for bad input.
    assert_eq!(
        run(&["check-config", bad.to_str().unwrap()], &[])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn both_spellings_of_one_setting_are_an_error_naming_them() {
    for (args, env, names) in [
        (
            vec!["--listen", "127.0.0.1:0", "--web.listen-address", ":0"],
            vec![],
            ["--web.listen-address", "--listen"],
        ),
        (
            vec!["--admin-listen", "127.0.0.1:0", "--web.listen-address=:0"],
            vec![],
            ["--web.listen-address", "--admin-listen"],
        ),
        (
            vec!["--web.listen-address=:0"],
            vec![("LOOKOUT_LISTEN", "127.0.0.1:0")],
            ["--web.listen-address", "--listen"],
        ),
        (
            vec!["--log-format", "json", "--log.format", "logfmt"],
            vec![],
            ["--log.format", "--log-format"],
        ),
        (
            vec!["--log.format=json"],
            vec![("LOG_FORMAT", "json")],
            ["--log.format", "--log-format"],
        ),
    ] {
        let output = run(&args, &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        for name in names {
            assert!(stderr.contains(name), "{args:?}: {name} not in {stderr}");
        }
    }
}

#[test]
fn bad_blackbox_flag_values_exit_2_naming_them() {
    for (args, needle) in [
        (["--web.listen-address", "9115"], "missing port"),
        (["--web.listen-address", "vsock://:9115"], "TCP only"),
        (["--log.level", "verbose"], "verbose"),
        (["--log.format", "text"], "text"),
        (["--timeout-offset", "half"], "half"),
        (["--timeout-offset", "NaN"], "NaN"),
    ] {
        let output = run(&args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle) && stderr.contains(args[0]),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_port_in_use_on_the_single_address_exits_1_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(&["--web.listen-address", &addr], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

/// `lookout probe` of a closed port (a failed probe logs its reason at
/// debug, in `lookout::prober`), with `args` and `env`; its stderr.
fn failed_probe_logs(args: &[&str], env: &[(&str, &str)]) -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = closed.local_addr().unwrap().to_string();
    drop(closed);
    let mut all = vec!["probe", target.as_str(), "--module", "tcp_connect"];
    all.extend_from_slice(args);
    let output = run(&all, env);
    assert_eq!(output.status.code(), Some(1), "the probe fails");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn log_level_sets_the_default_and_rust_logs_targets_still_apply() {
    // The log event, not `lookout probe`'s own "probe failed: ..." line.
    let failed = "Probe failed";
    assert!(
        !failed_probe_logs(&[], &[]).contains(failed),
        "info by default"
    );
    assert!(failed_probe_logs(&["--log.level=debug"], &[]).contains(failed));
    assert!(failed_probe_logs(&[], &[("LOG_LEVEL", "debug")]).contains(failed));
    assert!(!failed_probe_logs(&["--log.level=info"], &[]).contains(failed));
    // RUST_LOG's per-target directive applies under --log.level...
    assert!(failed_probe_logs(
        &["--log.level=warn"],
        &[("RUST_LOG", "lookout::prober=debug")]
    )
    .contains(failed));
    // ...and its bare level is the default --log.level replaces.
    assert!(!failed_probe_logs(&["--log.level=warn"], &[("RUST_LOG", "debug")]).contains(failed));
    assert!(failed_probe_logs(&[], &[("RUST_LOG", "debug")]).contains(failed));
}

#[test]
fn log_format_logfmt_writes_one_line_of_pairs_per_event() {
    let logs = failed_probe_logs(&["--log.format=logfmt", "--log.level=debug"], &[]);
    let line = logs
        .lines()
        .find(|l| l.contains("Probe failed"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(line.starts_with("time="), "{line}");
    assert!(line.contains(" level=DEBUG msg=\"Probe failed\""), "{line}");
    assert!(line.contains(" reason="), "{line}");
    let logs = failed_probe_logs(&["--log.format=json", "--log.level=debug"], &[]);
    let line = logs.lines().find(|l| l.contains("Probe failed")).unwrap();
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(json["message"], "Probe failed");
}

#[test]
fn timeout_offset_is_subtracted_from_the_scrape_timeout() {
    // A target that takes the connection and never answers: the probe runs
    // to its deadline, which its failure reason states in milliseconds.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}/", silent.local_addr().unwrap());
    // Prometheus' scrape timeout of 1.5 s, less the offset (blackbox_exporter's
    // arithmetic: an offset that leaves less than nothing means the module's
    // timeout, which http_2xx leaves at 0).
    for (offset, deadline_ms) in [
        (None, 1000),
        (Some("1.25"), 250),
        (Some("-0.5"), 2000),
        (Some("2"), 0),
    ] {
        let mut args = vec![];
        if let Some(offset) = offset {
            args.extend(["--timeout-offset", offset]);
        }
        let app = spawn_app(&args, &[("RUST_LOG", "info,lookout::prober=debug")]);
        app.admin_until("/readyz", |r| r.status == 200);
        let response = request(
            app.probe,
            "GET",
            &format!(
                "/probe?module=http_2xx&target={}",
                crate::probe::encode(&target)
            ),
            &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
        );
        assert_eq!(response.status, 200);
        assert_eq!(
            value(&parse(&response.body), "probe_success"),
            Some(0.0),
            "{offset:?}"
        );
        app.log_line(&format!("timeout after {deadline_ms} ms"));
    }
}
