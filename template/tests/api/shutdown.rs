use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{spawn_app_with, spawn_ready_app, test_config, PATIENCE};

#[tokio::test]
async fn on_stop_readyz_turns_503_while_the_rest_is_still_served() {
    // A delay no test outlives: the listener stays open throughout.
    let config = my_service::Config {
        shutdown_delay: Duration::from_secs(3600),
        ..test_config()
    };
    let mut app = spawn_app_with(config, async {}).await;
    app.until("/readyz", 200).await;
    app.stop();
    let stopping = app.until("/readyz", 503).await;
    assert_eq!(stopping.body, "shutting down\n");
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(app.get("/metrics").await.status, 200);
}

#[tokio::test]
async fn after_the_delay_an_idle_connection_is_closed_and_the_run_ends_ok() {
    let mut app = spawn_ready_app().await;
    // A keep-alive connection that has had its answer and stays open, as a
    // scraper's or a load balancer's does: it must not hold up the drain.
    let mut idle = TcpStream::connect(app.address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0; 512];
    let read = idle.read(&mut head).await.unwrap();
    assert!(head[..read].starts_with(b"HTTP/1.1 200"));

    app.stop();
    let ended = tokio::time::timeout(PATIENCE, &mut app.finished)
        .await
        .expect("the run ends without waiting for the drain bound");
    ended
        .expect("the run did not panic")
        .expect("the run ends Ok");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "the idle connection is closed: {closed:?}"
    );
}

#[tokio::test]
async fn a_request_sent_before_the_stop_is_answered() {
    let config = my_service::Config {
        shutdown_delay: Duration::from_secs(3600),
        ..test_config()
    };
    let mut app = spawn_app_with(config, async {}).await;
    app.until("/readyz", 200).await;
    let stream = TcpStream::connect(app.address).await.unwrap();
    app.stop();
    app.until("/readyz", 503).await;
    // Connected before, asked during the shutdown delay.
    let response = crate::helpers::request(stream, "/").await;
    assert_eq!(response.status, 200);
}
