use std::time::Duration;

use tokio::sync::oneshot;

use crate::helpers::{spawn_app, spawn_app_with, spawn_ready_app, test_config};

#[tokio::test]
async fn readyz_is_503_while_warming_up_and_healthz_is_200() {
    let app = spawn_app_with(test_config(), std::future::pending()).await;
    let ready = app.get("/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (503, "warming up\n"));
    let healthy = app.get("/healthz").await;
    assert_eq!((healthy.status, healthy.body.as_str()), (200, "ok\n"));
}

#[tokio::test]
async fn readyz_turns_200_when_the_warm_up_finishes() {
    let (done, warmed_up) = oneshot::channel::<()>();
    let app = spawn_app_with(test_config(), async {
        let _ = warmed_up.await;
    })
    .await;
    assert_eq!(app.get("/readyz").await.status, 503);
    done.send(()).unwrap();
    let ready = app.until("/readyz", 200).await;
    assert_eq!(ready.body, "ready\n");
}

#[tokio::test]
async fn the_configured_warm_up_ends_in_ready() {
    let config = my_service::Config {
        warmup: Duration::from_millis(10),
        ..test_config()
    };
    let app = spawn_app(config).await;
    assert_eq!(app.until("/readyz", 200).await.body, "ready\n");
}

#[tokio::test]
async fn the_index_names_the_service() {
    let app = spawn_ready_app().await;
    let index = app.get("/").await;
    assert_eq!(index.status, 200);
    assert_eq!(
        index.body,
        format!("my-service {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn an_unknown_path_is_a_404() {
    let app = spawn_ready_app().await;
    assert_eq!(app.get("/no/such/path").await.status, 404);
}
