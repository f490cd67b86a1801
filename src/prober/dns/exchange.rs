//! One query and its response over UDP, TCP or DNS over TLS, as miekg/dns's
//! client exchanges them for blackbox_exporter.
//!
//! UDP: a connected socket; the reply is read into 512 bytes (the query
//! offers no EDNS buffer, so a longer datagram is cut and usually fails to
//! parse); a reply with another ID is ignored and the next one awaited, any
//! reply that fails to parse ends the exchange. TCP and DoT: the two-byte
//! length frame of RFC 1035 4.2.2, one message each way; a reply with
//! another ID fails. There is no retry over TCP on truncation. The probe's
//! deadline bounds everything, the dial from a `source_ip_address` too
//! (Go's has no timeout there).
//!
//! Timing is miekg's: `request` runs from the end of the dial (the TLS
//! handshake included) to the reply, `connect` is the rest; both are
//! recorded however the exchange ends, a deadline included.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream, UdpSocket},
};

use super::{
    message::{self, Response},
    DURATION,
};
use crate::prober::{client_tls::ClientTls, report::Report, tls_info};

/// What a UDP reply is read into: miekg's `MinMsgSize`.
const UDP_BUFFER: usize = 512;

/// Records `connect` and `request` when dropped, however the exchange ends.
pub(super) struct Timing<'r> {
    report: &'r mut Report,
    start: Instant,
    dialed: Option<Instant>,
}

impl<'r> Timing<'r> {
    pub(super) fn start(report: &'r mut Report) -> Self {
        Self {
            report,
            start: Instant::now(),
            dialed: None,
        }
    }

    fn dialed(&mut self) {
        self.dialed = Some(Instant::now());
    }
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        let total = self.start.elapsed();
        let request = self.dialed.map_or(Duration::ZERO, |at| at.elapsed());
        self.report.set_labeled(
            DURATION,
            &["connect"],
            total.saturating_sub(request).as_secs_f64(),
        );
        self.report
            .set_labeled(DURATION, &["request"], request.as_secs_f64());
    }
}

/// How to reach the server.
pub(super) struct Server<'a> {
    pub(super) addr: SocketAddr,
    pub(super) source: Option<IpAddr>,
    /// DNS over TLS: the module's TLS client and the name to verify.
    pub(super) tls: Option<(&'a ClientTls, &'a str)>,
}

/// Sends `query` (framed for TCP when `tcp`) and returns the response with
/// the ID `id`, read and checked.
pub(super) async fn exchange(
    server: &Server<'_>,
    tcp: bool,
    query: &[u8],
    id: u16,
    timing: &mut Timing<'_>,
) -> Result<(Vec<u8>, Response), String> {
    let addr = server.addr;
    if !tcp {
        return udp(addr, server.source, query, id, timing).await;
    }
    let stream = connect(addr, server.source)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    match server.tls {
        Some((tls, name)) => {
            let (mut stream, _) = tls_info::connect(tls, name, stream, &addr).await?;
            timing.dialed();
            over_stream(&mut stream, addr, query, id).await
        }
        None => {
            let mut stream = stream;
            timing.dialed();
            over_stream(&mut stream, addr, query, id).await
        }
    }
}

async fn udp(
    addr: SocketAddr,
    source: Option<IpAddr>,
    query: &[u8],
    id: u16,
    timing: &mut Timing<'_>,
) -> Result<(Vec<u8>, Response), String> {
    let local = source.unwrap_or(match addr {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let socket = UdpSocket::bind(SocketAddr::new(local, 0))
        .await
        .map_err(|e| format!("binding {local}: {e}"))?;
    socket
        .connect(addr)
        .await
        .map_err(|e| format!("dialing {addr}: {e}"))?;
    timing.dialed();
    socket
        .send(query)
        .await
        .map_err(|e| format!("sending to {addr}: {e}"))?;
    let mut buf = [0u8; UDP_BUFFER];
    loop {
        let len = socket
            .recv(&mut buf)
            .await
            .map_err(|e| format!("reading from {addr}: {e}"))?;
        let reply = &buf[..len];
        let response = check(reply, addr)?;
        if response.id == id {
            return Ok((reply.to_vec(), response));
        }
        // Perhaps the answer to an earlier query that timed out, as miekg
        // says: wait on for ours.
        tracing::debug!(id = response.id, "ignoring a reply with another ID");
    }
}

async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// One framed message each way on a TCP (or TLS) stream.
async fn over_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    addr: SocketAddr,
    query: &[u8],
    id: u16,
) -> Result<(Vec<u8>, Response), String> {
    let write_failed = |e: std::io::Error| format!("sending to {addr}: {e}");
    stream.write_all(query).await.map_err(write_failed)?;
    stream.flush().await.map_err(write_failed)?;
    let read_failed = |e: std::io::Error| format!("reading from {addr}: {e}");
    let len = stream.read_u16().await.map_err(read_failed)?;
    // At most 64 KiB, the frame's limit.
    let mut reply = vec![0u8; usize::from(len)];
    stream.read_exact(&mut reply).await.map_err(read_failed)?;
    let response = check(&reply, addr)?;
    if response.id != id {
        return Err(format!(
            "reply from {addr} has ID {}, the query {id} (dns: id mismatch)",
            response.id
        ));
    }
    Ok((reply, response))
}

fn check(reply: &[u8], addr: SocketAddr) -> Result<Response, String> {
    message::read(reply).map_err(|e| format!("reply from {addr}: {e}"))
}
