//! The TLS stream an HTTPS exchange runs over, writing to the target what
//! Go's client writes and no more (issue 18: on loopback each write costs
//! the sender the receiver's TCP work too):
//!
//! - writes wait for a flush: h2's 24-byte connection preface, which it
//!   writes unflushed, goes out in one TLS record with the SETTINGS and the
//!   request that follow it (Go writes the preface, SETTINGS and
//!   WINDOW_UPDATE in one flush);
//! - when the probe is over the stream ends with TLS's close_notify alert,
//!   as Go's `tls.Conn.Close` does, written from `drop` without waiting.
//!   Together with the request sender kept until then
//!   ([`AbortOnDrop::keeping`](super::exchange::AbortOnDrop::keeping)), this
//!   leaves out the GOAWAY frame hyper's HTTP/2 sends when the last sender
//!   drops, which Go's transport does not send when it closes a connection.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::client::TlsStream;

/// Bytes held before a flush: the preface and a request head fit; a larger
/// write goes straight through (after what is held).
const HELD: usize = 2048;

/// A probe's TLS client stream (see the module documentation).
pub(super) struct ProbeTls(BufWriter<TlsStream<TcpStream>>);

impl ProbeTls {
    pub(super) fn new(stream: TlsStream<TcpStream>) -> Self {
        Self(BufWriter::with_capacity(HELD, stream))
    }
}

impl Drop for ProbeTls {
    fn drop(&mut self) {
        let (tcp, tls) = self.0.get_mut().get_mut();
        // Once only: rustls ignores a second call, so a stream hyper already
        // shut down (HTTP/1.1's `Connection: close`) writes nothing here.
        tls.send_close_notify();
        while tls.wants_write() {
            match tls.write_tls(&mut WithoutWaiting(tcp)) {
                Ok(written) if written > 0 => {}
                // A full send buffer or a closed socket: nobody is waiting.
                _ => break,
            }
        }
    }
}

/// A socket write that never waits: `drop` cannot.
struct WithoutWaiting<'a>(&'a TcpStream);

impl io::Write for WithoutWaiting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for ProbeTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProbeTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
