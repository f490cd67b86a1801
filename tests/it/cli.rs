//! Bad input at start-up: one line naming the problem, exit status 2, no
//! listener bound, no panic.

use std::process::Output;

use crate::support::{lookout, write};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    lookout()
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("LOOKOUT_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("lookout runs")
}

fn assert_rejected(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("lookout: error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_flag_exits_2_naming_it() {
    assert_rejected(&run(&["--frobnicate"], &[]), &["--frobnicate"]);
}

#[test]
fn a_bad_listen_address_exits_2_naming_it() {
    let output = lookout().args(["--listen", "localhost"]).output().unwrap();
    assert_rejected(&output, &["localhost", "--listen"]);
}

#[test]
fn a_bad_duration_in_the_environment_exits_2_naming_it() {
    assert_rejected(
        &run(&[], &[("LOOKOUT_SHUTDOWN_DELAY", "5 seconds")]),
        &["\"5 seconds\"", "shutdown-delay"],
    );
}

#[test]
fn a_missing_config_file_exits_2_naming_it() {
    assert_rejected(
        &run(&["--config.file", "/nonexistent/blackbox.yml"], &[]),
        &["/nonexistent/blackbox.yml", "No such file"],
    );
}

#[test]
fn an_unknown_key_exits_2_naming_key_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(
        &file,
        "modules:\n  web:\n    prober: http\n    http:\n      valid_status_code: [200]\n",
    );
    let file = file.to_str().unwrap();
    assert_rejected(
        &run(&["--config.file", file], &[]),
        &[file, "modules.web.http", "`valid_status_code`", "line 5"],
    );
}

#[test]
fn a_bad_duration_in_the_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(
        &file,
        "modules:\n  web:\n    prober: http\n    timeout: 5 s\n",
    );
    assert_rejected(
        &run(&[], &[("LOOKOUT_CONFIG", file.to_str().unwrap())]),
        &["modules.web.timeout", "invalid duration \"5 s\"", "line 4"],
    );
}

#[test]
fn a_malformed_rust_log_exits_2() {
    assert_rejected(&run(&[], &[("RUST_LOG", "lookout=[")]), &["RUST_LOG"]);
}

#[test]
fn an_address_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = lookout()
        .args(["--listen", &addr, "--admin-listen", "127.0.0.1:0"])
        .env_remove("LOOKOUT_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn check_config_accepts_a_good_file_and_rejects_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    write(
        &good,
        "modules:\n  web:\n    prober: http\n  port:\n    prober: tcp\n",
    );
    let output = lookout()
        .args(["check-config", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 modules: port, web"));

    let bad = dir.path().join("bad.yml");
    write(
        &bad,
        "modules:\n  web:\n    prober: http\n    http:\n      tls_config: {ca_file: missing.pem}\n",
    );
    let output = lookout()
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_rejected(&output, &["module \"web\"", "missing.pem"]);
}

#[test]
fn help_and_version_exit_0() {
    let help = lookout().arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--admin-listen",
        "--config.file",
        "--shutdown-delay",
        "--drain-timeout",
        "--log-format",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
    let version = lookout().arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("lookout {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_access_and_policy_settings_exit_2_naming_them() {
    assert_rejected(
        &run(&["--allow-target", "exa mple.com"], &[]),
        &["\"exa mple.com\"", "neither a network"],
    );
    assert_rejected(
        &run(&[], &[("LOOKOUT_DENY_TARGETS", "10.0.0.0/8,10.0.0.0/99")]),
        &["10.0.0.0/99"],
    );
    assert_rejected(
        &run(
            &[
                "--tls-cert-file",
                "/nonexistent/tls.crt",
                "--tls-key-file",
                "/nonexistent/tls.key",
            ],
            &[],
        ),
        &["/nonexistent/tls.crt"],
    );
    assert_rejected(
        &run(&["--tls-key-file", "/nonexistent/tls.key"], &[]),
        &["--tls-cert-file"],
    );
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    write(&users, "# nobody yet\n");
    assert_rejected(
        &run(&["--basic-auth-file", users.to_str().unwrap()], &[]),
        &["no users"],
    );
    assert_rejected(
        &run(&["--max-header-bytes", "100"], &[]),
        &["--max-header-bytes"],
    );
}
