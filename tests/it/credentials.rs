//! Credential files of `--basic-auth-file` and `--bearer-token-file`, and
//! the `Authorization` fields the listeners admit (RFC 7235, 7617, 6750).

use std::{
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};

use crate::support::{lookout, request, spawn_app, write, App, PATIENCE};

/// Starts lookout and waits for it to exit; one that keeps running (it
/// accepted the files) is killed after [`PATIENCE`] and fails the test.
fn start(args: &[&str]) -> Output {
    let mut child = lookout()
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("LOOKOUT_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lookout starts");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // Only our own child, by its handle.
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "lookout started with {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn assert_rejected(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn basic(credentials: &str) -> String {
    format!("Basic {}", STANDARD.encode(credentials))
}

/// The status of GET /metrics on the admin listener with these fields.
fn metrics(app: &App, fields: &[&str]) -> u16 {
    let headers: Vec<(&str, &str)> = fields.iter().map(|f| ("Authorization", *f)).collect();
    request(app.admin, "GET", "/metrics", &headers).status
}

#[test]
fn a_duplicate_user_or_a_second_token_line_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    write(&users, "prometheus:one\n# rotated\nprometheus:two\n");
    let path = users.to_str().unwrap();
    assert_rejected(
        &start(&["--basic-auth-file", path]),
        &[path, "line 3", "\"prometheus\"", "first on line 1"],
    );
    let token = dir.path().join("token");
    for text in ["t0ken\nsecond\n", "t0 ken\n", "t0ken\r\n\r\nagain"] {
        write(&token, text);
        let path = token.to_str().unwrap();
        assert_rejected(&start(&["--bearer-token-file", path]), &[path]);
    }
}

#[test]
fn schemes_are_case_insensitive_and_passwords_are_taken_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    write(&users, "prometheus:s3cret  \r\nj\u{fc}rgen:a:b\n");
    let app = spawn_app(&["--basic-auth-file", users.to_str().unwrap()], &[]);
    let spaced = basic("prometheus:s3cret  ");
    let token = spaced.trim_start_matches("Basic ").to_owned();
    for field in [
        spaced.clone(),
        format!("basic {token}"),
        format!("BASIC {token}"),
        format!("Basic   {token}"),
        basic("j\u{fc}rgen:a:b"),
    ] {
        assert_eq!(metrics(&app, &[&field]), 200, "{field}");
    }
    // The trailing spaces are part of the password.
    assert_eq!(metrics(&app, &[&basic("prometheus:s3cret")]), 401);
    // Two fields are refused, even when both are right.
    assert_eq!(metrics(&app, &[&spaced, &spaced]), 401);
    assert_eq!(metrics(&app, &[&basic("prometheus:nope"), &spaced]), 401);
    assert_eq!(metrics(&app, &["Basic"]), 401);

    let token = dir.path().join("token");
    write(&token, "t0ken\n");
    let app = spawn_app(&["--bearer-token-file", token.to_str().unwrap()], &[]);
    for field in ["Bearer t0ken", "bearer t0ken", "BEARER  t0ken"] {
        assert_eq!(metrics(&app, &[field]), 200, "{field}");
    }
    for fields in [
        &["Bearer"][..],
        &["Bearer t0ke"],
        &["Bearer t0ken t0ken"],
        &["Bearer t0ken", "Bearer t0ken"],
    ] {
        assert_eq!(metrics(&app, fields), 401, "{fields:?}");
    }
}

#[test]
fn a_changed_file_that_does_not_load_keeps_the_previous_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    write(&users, "prometheus:one\n");
    let app = spawn_app(&["--basic-auth-file", users.to_str().unwrap()], &[]);
    let one = basic("prometheus:one");
    assert_eq!(metrics(&app, &[&one]), 200);
    // A rotation that defines the user twice does not load.
    write(&users, "prometheus:two\nprometheus:three\n");
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(metrics(&app, &[&one]), 200);
    assert_eq!(metrics(&app, &[&basic("prometheus:two")]), 401);
    app.log_line("is defined again");
    // The next good file applies.
    write(&users, "prometheus:two\n");
    let deadline = Instant::now() + PATIENCE;
    while metrics(&app, &[&basic("prometheus:two")]) != 200 {
        assert!(Instant::now() < deadline, "the fixed file never applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metrics(&app, &[&one]), 401);
}
