//! One health-check call on the wire: a fresh TCP connection to the
//! resolved address, TLS when the module says so (the server must pick `h2`
//! by ALPN, as grpc-go requires), HTTP/2, the request, and the response read
//! as grpc-go reads it. Whatever fails becomes the gRPC status grpc-go would
//! report for it: UNAVAILABLE when no connection could carry the call, the
//! HTTP status's or the reset's code when the server is not speaking gRPC.

use std::net::SocketAddr;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::{
    header::{self, HeaderName, HeaderValue},
    HeaderMap, Method, Request, Response,
};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use super::{
    wire::{self, code, Status},
    Target,
};
use crate::{
    config::GrpcProbe,
    prober::{
        http::{h2_handshake, USER_AGENT},
        tls_info::{self, TlsState},
        PreparedModule,
    },
};

/// A call that returned a message.
#[derive(Debug)]
pub(super) struct Answer {
    /// The `ServingStatus` number.
    pub(super) serving_status: i32,
    /// The TLS connection's facts, when the call went over TLS.
    pub(super) tls: Option<TlsState>,
}

/// Calls `grpc.health.v1.Health/Check` at `ip`.
pub(super) async fn check(
    module: &PreparedModule,
    target: &Target,
    ip: std::net::IpAddr,
) -> Result<Answer, Status> {
    let config = &module.config.grpc;
    // A port beyond 65535 fails when dialing, as in Go.
    let port = target
        .port()
        .map_err(|e| Status::new(code::UNAVAILABLE, e))?;
    let addr = SocketAddr::new(ip, port);
    let request = request(config, target, port)?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| Status::new(code::UNAVAILABLE, format!("connecting to {addr}: {e}")))?;
    // A probe measures latency: no Nagle delay on the request.
    let _ = tcp.set_nodelay(true);
    if !config.tls {
        let serving_status = exchange(tcp, request).await?;
        return Ok(Answer {
            serving_status,
            tls: None,
        });
    }
    let name = config
        .tls_config
        .server_name
        .as_deref()
        .unwrap_or(&target.host);
    let (stream, state) = tls_info::connect(&module.tls, name, tcp, &addr)
        .await
        .map_err(|e| Status::new(code::UNAVAILABLE, e))?;
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err(Status::new(
            code::UNAVAILABLE,
            "the TLS server did not select h2 by ALPN",
        ));
    }
    let serving_status = exchange(stream, request).await?;
    Ok(Answer {
        serving_status,
        tls: Some(state),
    })
}

/// The request: POST to the method's path with gRPC's header fields and
/// the module's metadata.
fn request(config: &GrpcProbe, target: &Target, port: u16) -> Result<Request<Full<Bytes>>, Status> {
    let scheme = if config.tls { "https" } else { "http" };
    let host = &target.host;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(format!("{scheme}://{authority}{}", wire::PATH))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .header(header::USER_AGENT, USER_AGENT);
    for (key, values) in &config.metadata.0 {
        for value in values {
            // Binary values travel base64-encoded without padding, as
            // grpc-go sends them.
            let value = if key.ends_with("-bin") {
                HeaderValue::try_from(
                    base64::engine::general_purpose::STANDARD_NO_PAD.encode(value),
                )
            } else {
                HeaderValue::try_from(value.as_str())
            };
            // Keys and values were checked at load.
            let (Ok(name), Ok(value)) = (HeaderName::try_from(key.as_str()), value) else {
                return Err(Status::new(code::INTERNAL, format!("metadata {key:?}")));
            };
            builder = builder.header(name, value);
        }
    }
    builder
        .body(Full::new(wire::request(&config.service)))
        .map_err(|e| Status::new(code::INTERNAL, format!("building the request: {e}")))
}

/// HTTP/2 over `io`, the request, and the serving status the response
/// carries.
async fn exchange<S>(io: S, request: Request<Full<Bytes>>) -> Result<i32, Status>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, _connection) = h2_handshake(io)
        .await
        .map_err(|e| transport_status(&e, "HTTP/2 handshake"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| transport_status(&e, "HTTP/2 request"))?;
    read_response(response).await
}

/// The serving status, or the status grpc-go (1.77) makes of the response:
/// its head first (a server that is not gRPC fails there, by its HTTP
/// status), then the one message, then the trailers' grpc-status.
async fn read_response(response: Response<Incoming>) -> Result<i32, Status> {
    let (head, mut body) = response.into_parts();
    let content_type = head.headers.get(header::CONTENT_TYPE);
    // A gRPC content-type makes the HTTP status irrelevant (grpc-go #8548).
    if !content_type.is_some_and(|v| wire::is_grpc_content_type(v.as_bytes())) {
        let what = content_type.map_or_else(
            || "no content-type".to_owned(),
            |value| format!("content-type {value:?}"),
        );
        return Err(Status::new(
            wire::http_status_code(head.status.as_u16()),
            format!("not a gRPC response: HTTP status {}, {what}", head.status),
        ));
    }
    // Trailers-only: the status is in the head, which ended the stream.
    if hyper::body::Body::is_end_stream(&body) {
        return Err(end_status(&head.headers, "the response head").map_or_else(
            |status| status,
            |()| Status::new(code::INTERNAL, "no response message"),
        ));
    }
    let mut data = BytesMut::new();
    let mut trailers = None;
    // One message, its header, and the header of a second one that must not
    // come: enough to judge the body by grpc-go's rules.
    let enough = wire::MAX_MESSAGE + 10;
    while data.len() <= enough {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| transport_status(&e, "reading the response"))?;
        match frame.into_data() {
            Ok(chunk) => data.extend_from_slice(&chunk[..chunk.len().min(enough + 1 - data.len())]),
            Err(frame) => {
                trailers = frame.into_trailers().ok();
                break;
            }
        }
    }
    let encoding = head.headers.get("grpc-encoding").map(HeaderValue::as_bytes);
    let message = wire::unary_message(&data, encoding)?;
    let serving_status = message
        .map(|message| {
            wire::decode_response(message).map_err(|why| {
                Status::new(
                    code::INTERNAL,
                    format!("failed to unmarshal the response: {why}"),
                )
            })
        })
        .transpose()?;
    let Some(trailers) = trailers else {
        return Err(Status::new(
            code::INTERNAL,
            "server closed the stream without sending trailers",
        ));
    };
    end_status(&trailers, "the trailers")?;
    serving_status.ok_or_else(|| Status::new(code::INTERNAL, "no response message"))
}

/// `Ok` when `fields` (trailers, or a trailers-only head) say OK; the
/// status they carry otherwise (UNKNOWN without one, as in grpc-go).
fn end_status(fields: &HeaderMap, place: &str) -> Result<(), Status> {
    let code = match fields.get("grpc-status") {
        Some(value) => wire::grpc_status(value.as_bytes())?,
        None => code::UNKNOWN,
    };
    if code == code::OK {
        return Ok(());
    }
    let message = fields
        .get("grpc-message")
        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
        .unwrap_or_else(|| format!("no grpc-status in {place}"));
    Err(Status::new(code, message))
}

/// The status grpc-go reports when the connection or the stream fails: a
/// reset stream by its reason, anything else (a refused or lost
/// connection, GOAWAY, a server that is not HTTP/2) UNAVAILABLE.
fn transport_status(error: &hyper::Error, doing: &str) -> Status {
    let h2 = std::error::Error::source(error).and_then(|e| e.downcast_ref::<h2::Error>());
    let code = match h2 {
        Some(e) if e.is_reset() => e.reason().map_or(code::UNAVAILABLE, wire::reset_code),
        _ => code::UNAVAILABLE,
    };
    Status::new(code, format!("{doing}: {error}"))
}
