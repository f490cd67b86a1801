//! Starting the service in-process and talking HTTP/1.1 to it.

use std::{future::Future, net::SocketAddr, time::Duration};

use my_service::{Application, Config, Error};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};

/// How long anything the tests wait for may take before the test fails: far
/// beyond what it needs on a loaded CI machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A running service and the means to stop it.
pub(crate) struct TestApp {
    pub(crate) address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub(crate) finished: JoinHandle<Result<(), Error>>,
}

impl TestApp {
    /// Sends the stop (what SIGTERM does in the binary).
    pub(crate) fn stop(&mut self) {
        let stop = self.stop.take().expect("stopped once");
        stop.send(()).expect("the service is running");
    }

    /// GET `path`, on a connection of its own.
    pub(crate) async fn get(&self, path: &str) -> Response {
        get(self.address, path).await
    }

    /// Polls `path` until it answers `status`.
    pub(crate) async fn until(&self, path: &str, status: u16) -> Response {
        let poll = async {
            loop {
                let response = self.get(path).await;
                if response.status == status {
                    return response;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(PATIENCE, poll)
            .await
            .unwrap_or_else(|_| panic!("{path} never answered {status}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.finished.abort();
    }
}

/// The test settings: loopback on a free port, no warm-up, no shutdown
/// delay, a drain bound no test reaches.
pub(crate) fn test_config() -> Config {
    Config {
        listen_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        warmup: Duration::ZERO,
        shutdown_delay: Duration::ZERO,
        drain_timeout: Duration::from_secs(3600),
        ..Config::default()
    }
}

/// Starts the service with `config`, its warm-up included.
pub(crate) async fn spawn_app(config: Config) -> TestApp {
    start(
        Application::build(config)
            .await
            .expect("binding 127.0.0.1:0 succeeds"),
    )
}

/// Starts the service with `config` and `warmup` in place of its own.
pub(crate) async fn spawn_app_with(
    config: Config,
    warmup: impl Future<Output = ()> + Send + 'static,
) -> TestApp {
    let app = Application::build(config)
        .await
        .expect("binding 127.0.0.1:0 succeeds");
    start(app.with_warmup(warmup))
}

fn start(app: Application) -> TestApp {
    let address = app.address();
    let (stop, stopped) = oneshot::channel::<()>();
    let finished = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        stop: Some(stop),
        finished,
    }
}

/// Starts the service with the test settings and an instant warm-up, and
/// waits until it is ready.
pub(crate) async fn spawn_ready_app() -> TestApp {
    let app = spawn_app_with(test_config(), async {}).await;
    app.until("/readyz", 200).await;
    app
}

/// An HTTP response, the body as text.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    /// The first header named `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request with `Connection: close` on `stream` and reads the
/// response to the end.
pub(crate) async fn request(mut stream: TcpStream, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    parse(&String::from_utf8(raw).unwrap())
}

/// GET `path` from `address` on a new connection.
pub(crate) async fn get(address: SocketAddr, path: &str) -> Response {
    let stream = TcpStream::connect(address)
        .await
        .expect("the service accepts connections");
    request(stream, path).await
}

/// Parses a response with a Content-Length body (every route's body is
/// complete before it is sent, so none is chunked).
pub(crate) fn parse(raw: &str) -> Response {
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    let response = Response {
        status,
        headers,
        body: body.to_owned(),
    };
    assert_eq!(
        response.header("content-length"),
        Some(body.len().to_string().as_str()),
        "{raw}"
    );
    response
}
