//! The built binary as a child process: what the tests in-process cannot see
//! (the exit status, the signal handlers, the log lines).

use std::process::Stdio;

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{ChildStdout, Command},
};

use crate::helpers::{get, PATIENCE};

const BINARY: &str = env!("CARGO_BIN_EXE_my-service");

fn command(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .envs(env.iter().copied())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn a_bad_variable_exits_1_with_one_line_naming_it() {
    let output = command(&[("LISTEN_ADDRESS", "everywhere")])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "my-service: LISTEN_ADDRESS=\"everywhere\": invalid socket address syntax\n"
    );
}

/// The next log line, which must be a JSON object.
async fn next_log(lines: &mut Lines<BufReader<ChildStdout>>) -> Option<Value> {
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a log line in time")
        .unwrap()?;
    let value: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert!(value.is_object(), "{line}");
    Some(value)
}

/// Reads log lines until one whose message is `message`.
async fn until_log(lines: &mut Lines<BufReader<ChildStdout>>, message: &str) -> Value {
    loop {
        let log = next_log(lines)
            .await
            .unwrap_or_else(|| panic!("no {message:?} log"));
        if log["message"] == message {
            return log;
        }
    }
}

#[tokio::test]
async fn it_logs_json_and_exits_0_on_sigterm() {
    let mut child = command(&[
        ("LISTEN_ADDRESS", "127.0.0.1:0"),
        ("WARMUP_SECONDS", "0"),
        ("SHUTDOWN_DELAY_SECONDS", "0"),
        ("LOG_LEVEL", "debug"),
    ])
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let listening = until_log(&mut lines, "listening").await;
    assert_eq!(listening["level"], "INFO");
    let address = listening["address"].as_str().unwrap().parse().unwrap();
    until_log(&mut lines, "ready").await;
    assert_eq!(get(address, "/healthz").await.status, 200);
    let request = until_log(&mut lines, "request").await;
    assert_eq!(
        (&request["route"], &request["status"]),
        (&"/healthz".into(), &200.into())
    );

    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let stop = until_log(&mut lines, "stop signal received").await;
    assert_eq!(stop["signal"], "SIGTERM");
    until_log(&mut lines, "drained, exiting").await;
    while next_log(&mut lines).await.is_some() {}
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
