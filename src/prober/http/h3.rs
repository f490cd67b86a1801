//! One hop over HTTP/3 (`enable_http3`): a QUIC connection (quinn, rustls
//! with ring), the request over h3, timed as blackbox_exporter 0.28 times it
//! with quic-go: its dialer reports ConnectStart and TLSHandshakeStart
//! together, then TLSHandshakeDone and ConnectDone together, so `connect`
//! and `tls` both hold the QUIC handshake; `processing` runs from the
//! established connection to the response head, `transfer` to the body's end.
//!
//! Guards: every byte the peer sends on any stream counts against a budget
//! (the response head's bound before the head, plus the body's after), as
//! h3 buffers a whole HEADERS frame (and unknown frames) before it looks at
//! it; the deadline drops the future, which closes the connection.

use std::{
    any::Any,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    task::{ready, Context, Poll},
    time::Instant,
};

use bytes::{Buf, Bytes};
use h3::quic::{self, ConnectionErrorIncoming, StreamErrorIncoming, StreamId, WriteBuf};
use http::Response;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use rustls::{pki_types::CertificateDer, CipherSuite, KeyLog, ProtocolVersion};

use super::{
    body::compressed_limit,
    credentials::Additions,
    exchange::{build_request, AbortOnDrop, BodyError, Exchange, ResponseBody},
    Hop, DEFAULT_BODY_LIMIT, MAX_RESPONSE_HEAD,
};
use crate::config::HttpProbe;
use crate::prober::{
    policy::TargetPolicy,
    report::{Report, HTTP_DURATION},
    tls_info::TlsState,
    PreparedModule,
};

/// Bytes the peer may send besides the response (SETTINGS, QPACK streams,
/// frame headers, GREASE): far more than real servers send.
const SLACK: u64 = 64 << 10;

/// QUIC flow-control windows: a probe reads one response, so the peer need
/// not get far ahead of the reader.
const STREAM_WINDOW: u32 = 256 << 10;
const CONNECTION_WINDOW: u32 = 1 << 20;

/// Memory an HTTP/3 probe may hold beyond the http prober's head and body:
/// data quinn received and h3 has not read yet, and the budget's slack.
pub(crate) const MEMORY: u64 = CONNECTION_WINDOW as u64 + SLACK;

/// The target rewritten as blackbox_exporter rewrites it for HTTP/3: an
/// `http://` target, or one without a scheme, is probed over `https://`.
pub(super) fn https_target(target: &str) -> String {
    if let Some(rest) = target.strip_prefix("http://") {
        format!("https://{rest}")
    } else if target.contains("://") {
        target.to_owned()
    } else {
        format!("https://{target}")
    }
}

/// Connects over QUIC, sends the request over HTTP/3 and reads the head.
pub(super) async fn round_trip(
    module: &PreparedModule,
    config: &HttpProbe,
    hop: &Hop,
    policy: &TargetPolicy,
    additions: &Additions,
    report: &mut Report,
) -> Result<Exchange, String> {
    // quic-go's transport refuses any other scheme (a redirect to http://).
    if !hop.url.is_https() {
        return Err(format!(
            "HTTP/3 needs an https URL, not {}://",
            hop.url.scheme()
        ));
    }
    let ip = hop
        .ip
        .ok_or_else(|| format!("no address for {}", hop.url.hostname()))?;
    policy.check(hop.url.hostname(), ip)?;
    let addr = SocketAddr::new(ip, hop.url.port()?);

    let suite = Arc::new(SuiteLog::default());
    let mut tls = (*module.tls.config).clone();
    tls.key_log = suite.clone();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls))
        .map_err(|e| format!("HTTP/3 TLS setup: {e}"))?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .stream_receive_window(STREAM_WINDOW.into())
        .receive_window(CONNECTION_WINDOW.into())
        .max_concurrent_bidi_streams(0u32.into())
        .max_concurrent_uni_streams(8u32.into());
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(transport));
    let local: IpAddr = match ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let endpoint = quinn::Endpoint::client(SocketAddr::new(local, 0))
        .map_err(|e| format!("opening a UDP socket: {e}"))?;

    let start = Instant::now();
    let connection = endpoint
        .connect_with(client, addr, &hop.server_name)
        .map_err(|e| format!("QUIC connection to {addr}: {e}"))?
        .await
        .map_err(|e| format!("QUIC handshake with {addr}: {e}"))?;
    let handshake = start.elapsed().as_secs_f64();
    report.add_labeled(HTTP_DURATION, &["connect"], handshake);
    report.add_labeled(HTTP_DURATION, &["tls"], handshake);
    let state = TlsState {
        peer_certificates: connection
            .peer_identity()
            .and_then(|identity| {
                <Box<dyn Any>>::downcast::<Vec<CertificateDer<'static>>>(identity).ok()
            })
            .map(|certs| *certs)
            .unwrap_or_default(),
        version: Some(ProtocolVersion::TLSv1_3),
        cipher: suite.suite(),
        verified: !module.tls.insecure,
    };

    let budget = Arc::new(Budget::new(MAX_RESPONSE_HEAD as u64 + SLACK));
    let connected = Instant::now();
    let quic = Metered(h3_quinn::Connection::new(connection), budget.clone());
    let (mut driver, mut sender) = h3::client::builder()
        .max_field_section_size(MAX_RESPONSE_HEAD as u64)
        .build::<_, _, Bytes>(quic)
        .await
        .map_err(|e| format!("HTTP/3 connection: {e}"))?;
    let driver =
        AbortOnDrop::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });

    let request = build_request(config, hop, additions, true)?;
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("request body: {e}"))?
        .to_bytes();
    let mut stream = sender
        .send_request(http::Request::from_parts(parts, ()))
        .await
        .map_err(|e| format!("HTTP/3 request: {e}"))?;
    if !body.is_empty() {
        stream
            .send_data(body)
            .await
            .map_err(|e| format!("HTTP/3 request body: {e}"))?;
    }
    stream
        .finish()
        .await
        .map_err(|e| format!("HTTP/3 request: {e}"))?;
    let head = stream
        .recv_response()
        .await
        .map_err(|e| format!("HTTP/3 response: {e}"))?;
    let responded_at = Instant::now();
    report.add_labeled(
        HTTP_DURATION,
        &["processing"],
        (responded_at - connected).as_secs_f64(),
    );
    // The body may now arrive: as much as the checks read, compressed.
    let limit = match config.body_size_limit.0 {
        0 => DEFAULT_BODY_LIMIT,
        limit => limit,
    };
    budget.raise(compressed_limit(limit).saturating_add(SLACK));

    let body = H3Body {
        stream,
        _sender: sender,
        _endpoint: endpoint,
    };
    let response: Response<ResponseBody> = head.map(|()| body.boxed_unsync());
    Ok(Exchange {
        response,
        tls: Some(state),
        responded_at,
        _connection: driver,
    })
}

type Sender = h3::client::SendRequest<Metered<h3_quinn::OpenStreams>, Bytes>;
type Stream = h3::client::RequestStream<Metered<h3_quinn::BidiStream<Bytes>>, Bytes>;

/// The response body, read from the request's stream; holds the connection.
struct H3Body {
    stream: Stream,
    /// h3 closes the connection when its last sender drops.
    _sender: Sender,
    _endpoint: quinn::Endpoint,
}

impl Body for H3Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match ready!(self.stream.poll_recv_data(cx)) {
            Ok(Some(mut data)) => {
                Poll::Ready(Some(Ok(Frame::data(data.copy_to_bytes(data.remaining())))))
            }
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e.into()))),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The negotiated suite, told by the length of the handshake secrets rustls
/// logs: 48 bytes is SHA-384 (TLS_AES_256_GCM_SHA384), 32 is SHA-256, which
/// among the suites offered (see `client_tls::quic_client_config`) is
/// TLS_AES_128_GCM_SHA256. quinn does not expose the suite itself.
#[derive(Debug, Default)]
struct SuiteLog(Mutex<Option<usize>>);

impl SuiteLog {
    fn suite(&self) -> Option<CipherSuite> {
        match *self.0.lock().ok()? {
            Some(48) => Some(CipherSuite::TLS13_AES_256_GCM_SHA384),
            Some(32) => Some(CipherSuite::TLS13_AES_128_GCM_SHA256),
            _ => None,
        }
    }
}

impl KeyLog for SuiteLog {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        if label == "CLIENT_HANDSHAKE_TRAFFIC_SECRET" {
            if let Ok(mut length) = self.0.lock() {
                *length = Some(secret.len());
            }
        }
    }

    fn will_log(&self, label: &str) -> bool {
        label == "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
    }
}

/// Bytes received on all streams of a connection, against a limit.
#[derive(Debug)]
struct Budget {
    received: AtomicU64,
    limit: AtomicU64,
}

impl Budget {
    fn new(limit: u64) -> Self {
        Self {
            received: AtomicU64::new(0),
            limit: AtomicU64::new(limit),
        }
    }

    fn raise(&self, more: u64) {
        let _ = self
            .limit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                Some(l.saturating_add(more))
            });
    }

    /// Counts `n` bytes; `Err` once the peer has sent more than allowed.
    fn take(&self, n: usize) -> Result<(), StreamErrorIncoming> {
        let received = self
            .received
            .fetch_add(n as u64, Ordering::AcqRel)
            .saturating_add(n as u64);
        let limit = self.limit.load(Ordering::Acquire);
        if received > limit {
            return Err(StreamErrorIncoming::Unknown(
                format!("the HTTP/3 peer sent more than {limit} bytes").into(),
            ));
        }
        Ok(())
    }
}

/// An h3 transport (connection, opener or stream) whose received bytes
/// count against a [`Budget`].
struct Metered<T>(T, Arc<Budget>);

impl quic::Connection<Bytes> for Metered<h3_quinn::Connection> {
    type RecvStream = Metered<h3_quinn::RecvStream>;
    type OpenStreams = Metered<h3_quinn::OpenStreams>;

    fn poll_accept_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::RecvStream, ConnectionErrorIncoming>> {
        let stream = ready!(quic::Connection::<Bytes>::poll_accept_recv(&mut self.0, cx))?;
        Poll::Ready(Ok(Metered(stream, self.1.clone())))
    }

    fn poll_accept_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, ConnectionErrorIncoming>> {
        let stream = ready!(quic::Connection::<Bytes>::poll_accept_bidi(&mut self.0, cx))?;
        Poll::Ready(Ok(Metered(stream, self.1.clone())))
    }

    fn opener(&self) -> Self::OpenStreams {
        Metered(quic::Connection::<Bytes>::opener(&self.0), self.1.clone())
    }
}

macro_rules! open_streams {
    ($inner:ty) => {
        impl quic::OpenStreams<Bytes> for Metered<$inner> {
            type BidiStream = Metered<h3_quinn::BidiStream<Bytes>>;
            type SendStream = h3_quinn::SendStream<Bytes>;

            fn poll_open_bidi(
                &mut self,
                cx: &mut Context<'_>,
            ) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
                let stream = ready!(quic::OpenStreams::<Bytes>::poll_open_bidi(&mut self.0, cx))?;
                Poll::Ready(Ok(Metered(stream, self.1.clone())))
            }

            fn poll_open_send(
                &mut self,
                cx: &mut Context<'_>,
            ) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
                quic::OpenStreams::<Bytes>::poll_open_send(&mut self.0, cx)
            }

            fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
                quic::OpenStreams::<Bytes>::close(&mut self.0, code, reason);
            }
        }
    };
}
open_streams!(h3_quinn::Connection);
open_streams!(h3_quinn::OpenStreams);

macro_rules! recv_stream {
    ($inner:ty) => {
        impl quic::RecvStream for Metered<$inner> {
            type Buf = Bytes;

            fn poll_data(
                &mut self,
                cx: &mut Context<'_>,
            ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
                let data = ready!(self.0.poll_data(cx))?;
                if let Some(data) = &data {
                    self.1.take(data.len())?;
                }
                Poll::Ready(Ok(data))
            }

            fn stop_sending(&mut self, error_code: u64) {
                self.0.stop_sending(error_code);
            }

            fn recv_id(&self) -> StreamId {
                self.0.recv_id()
            }
        }
    };
}
recv_stream!(h3_quinn::RecvStream);
recv_stream!(h3_quinn::BidiStream<Bytes>);

impl quic::SendStream<Bytes> for Metered<h3_quinn::BidiStream<Bytes>> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.0.poll_ready(cx)
    }

    fn send_data<T: Into<WriteBuf<Bytes>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        self.0.send_data(data)
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.0.poll_finish(cx)
    }

    fn reset(&mut self, reset_code: u64) {
        self.0.reset(reset_code);
    }

    fn send_id(&self) -> StreamId {
        self.0.send_id()
    }
}

impl quic::BidiStream<Bytes> for Metered<h3_quinn::BidiStream<Bytes>> {
    type SendStream = h3_quinn::SendStream<Bytes>;
    type RecvStream = Metered<h3_quinn::RecvStream>;

    fn split(self) -> (Self::SendStream, Self::RecvStream) {
        let (send, recv) = self.0.split();
        (send, Metered(recv, self.1))
    }
}
