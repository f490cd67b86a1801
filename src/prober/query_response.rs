//! The `query_response` conversation of the tcp and unix probers, as
//! blackbox_exporter 0.28's `probeQueryResponses` holds it. Each step in turn:
//!
//! - `expect`: read lines (Go's `bufio.Scanner`: split at `\n`, one `\r`
//!   before it dropped, a last line without `\n` at the end of the stream)
//!   until one matches; `probe_failed_due_to_regex` is 1 when the stream ended
//!   first, 0 on a match. `send` and the `labels` values are expanded against
//!   the matched line (`$1`, `${name}`), and the labels reported as
//!   `probe_expect_info`;
//! - `expect_bytes`: one read, straight from the connection as Go's
//!   `conn.Read` (lines read ahead for `expect` are not looked at), must
//!   return exactly those bytes; `probe_failed_due_to_bytes` is 1 when it
//!   returned others, 0 when equal. A read that returns fewer bytes fails the
//!   probe without setting the gauge, as upstream's;
//! - `send`: the bytes and a `\n`, in one write;
//! - `starttls`: a TLS handshake over the connection, reported as `tls: true`
//!   reports one; the lines read ahead in plain text are dropped.
//!
//! What a peer can make lookout read is bounded twice: a line and its `\n`
//! must fit in 64 KiB (Go's `bufio.MaxScanTokenSize`: a longer line fails the
//! probe, as upstream's), and `expect` steps read at most 1 MiB per probe in
//! all (lookout's bound; upstream reads until its deadline). Lines are
//! matched on the async thread when few bytes arrive at once, and otherwise
//! in a match slot on a blocking thread, as the http prober's body.

use std::ops::Range;

use bytes::BufMut as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::{
    report::{Report, EXPECT_INFO, FAILED_DUE_TO_BYTES, FAILED_DUE_TO_REGEX},
    tls_info::{self, TlsMetrics},
    PreparedModule, ProbeOptions,
};
use crate::config::{Pattern, QueryResponse};

/// Go's `bufio.MaxScanTokenSize`: the most a line and its `\n` may take.
pub(super) const MAX_LINE: usize = 64 << 10;

/// The most that one probe's `expect` steps read, in all.
pub(super) const MAX_READ: usize = 1 << 20;

/// Bytes read at most at once (Go's scanner starts with a 4 KiB buffer).
const READ_CHUNK: usize = 4 << 10;

/// Complete lines up to this many bytes in all are matched on the async
/// thread; more wait for a match slot.
const INLINE_MATCH: usize = 512;

/// A connection, in plain text or TLS.
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The connection a conversation runs over, and what it needs to start TLS.
pub(super) struct Connection<'a> {
    /// The connected stream (already TLS with `tls: true`).
    pub(super) stream: Box<dyn Stream>,
    /// The name a `starttls` step checks the certificate against; `None` for
    /// a unix socket without `server_name`, which Go refuses to verify.
    pub(super) server_name: Option<&'a str>,
    /// The peer, for messages.
    pub(super) peer: &'a (dyn std::fmt::Display + Sync),
}

/// What the tcp and unix probers do once connected, before the conversation:
/// register the check gauges (0.28 registers them here), then, with `tls`
/// set to the server name, the handshake and its metrics.
pub(super) async fn connected<S>(
    stream: S,
    tls: Option<&str>,
    module: &PreparedModule,
    peer: &(dyn std::fmt::Display + Sync),
    report: &mut Report,
) -> Result<Box<dyn Stream>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    report.set(FAILED_DUE_TO_REGEX, 0.0);
    report.set(FAILED_DUE_TO_BYTES, 0.0);
    let stream: Box<dyn Stream> = match tls {
        Some(name) => {
            let (stream, state) = tls_info::connect(&module.tls, name, stream, peer).await?;
            tls_info::record(report, &state, &module.tls.extra_roots, TlsMetrics::STREAM);
            Box::new(stream)
        }
        None => Box::new(stream),
    };
    tracing::debug!("Successfully dialed");
    Ok(stream)
}

/// Runs `steps` over `connection`; `Err` with the reason when the probe failed.
pub(super) async fn converse(
    connection: Connection<'_>,
    steps: &[QueryResponse],
    module: &PreparedModule,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<(), String> {
    let Connection {
        mut stream,
        server_name,
        peer,
    } = connection;
    let mut lines = Lines::default();
    for (i, step) in steps.iter().enumerate() {
        tracing::debug!(entry_number = i, "processing query response entry");
        let mut send = step.send.0.clone();
        if let Some(pattern) = &step.expect {
            let Some(found) = lines.find(&mut stream, pattern, options, report).await? else {
                report.set(FAILED_DUE_TO_REGEX, 1.0);
                return Err(format!(
                    "regexp {pattern:?} did not match any line before the end of the stream"
                ));
            };
            report.set(FAILED_DUE_TO_REGEX, 0.0);
            tracing::debug!(regexp = ?pattern, line = %found.line.escape_ascii(), "regexp matched");
            send = pattern.expand(&step.send.0, &found.line, &found.groups);
            if let Some(labels) = &step.labels {
                let values: Vec<String> = labels
                    .iter()
                    .map(|label| {
                        let value =
                            pattern.expand(label.value.as_bytes(), &found.line, &found.groups);
                        // Go's client refuses a value that is not UTF-8 (the
                        // scrape fails); lookout reports it with U+FFFD.
                        String::from_utf8_lossy(&value).into_owned()
                    })
                    .collect();
                let pairs: Vec<(&str, &str)> = labels
                    .iter()
                    .zip(&values)
                    .map(|(label, value)| (label.name.as_str(), value.as_str()))
                    .collect();
                report.set_with_labels(EXPECT_INFO, &pairs, 1.0);
            }
        }
        let expected = &step.expect_bytes.0;
        if !expected.is_empty() {
            let mut data = vec![0; expected.len()];
            let n = stream
                .read(&mut data)
                .await
                .map_err(|e| format!("reading from {peer}: {e}"))?;
            if n == 0 {
                return Err(format!("reading from {peer}: EOF"));
            }
            if n < expected.len() {
                return Err(format!(
                    "read less data than expected: {} of {} bytes ({:?})",
                    n,
                    expected.len(),
                    data[..n].escape_ascii().to_string()
                ));
            }
            if data != *expected {
                report.set(FAILED_DUE_TO_BYTES, 1.0);
                return Err(format!(
                    "bytes did not match: expected {:?}, read {:?}",
                    expected.escape_ascii().to_string(),
                    data.escape_ascii().to_string()
                ));
            }
            report.set(FAILED_DUE_TO_BYTES, 0.0);
        }
        if !send.is_empty() {
            tracing::debug!(line = %send.escape_ascii(), "sending line");
            send.push(b'\n');
            stream
                .write_all(&send)
                .await
                .map_err(|e| format!("sending to {peer}: {e}"))?;
            stream
                .flush()
                .await
                .map_err(|e| format!("sending to {peer}: {e}"))?;
        }
        if step.starttls {
            let name = match server_name {
                Some(name) => name,
                // Go's client without a name sends no SNI and verifies
                // nothing, or refuses: an IP address gives no SNI in rustls.
                None if module.tls.insecure => "0.0.0.0",
                None => {
                    return Err(
                        "starttls: tls: either ServerName or InsecureSkipVerify must be specified in the tls.Config"
                            .to_owned(),
                    )
                }
            };
            let (tls, state) = tls_info::connect(&module.tls, name, stream, peer).await?;
            tracing::debug!("TLS handshake (client) succeeded");
            tls_info::record(report, &state, &module.tls.extra_roots, TlsMetrics::STREAM);
            stream = Box::new(tls);
            lines.restart();
        }
    }
    Ok(())
}

/// A matched line and its groups' ranges in it.
#[derive(Debug, PartialEq)]
struct Found {
    line: Vec<u8>,
    groups: Vec<Option<Range<usize>>>,
}

/// Go's `bufio.Scanner` with `ScanLines` over the connection.
#[derive(Debug, Default)]
struct Lines {
    /// Bytes read and not yet taken as lines, from `start`.
    buf: Vec<u8>,
    start: usize,
    /// The peer closed its side.
    eof: bool,
    /// Bytes read so far by this probe's `expect` steps.
    read: usize,
}

impl Lines {
    /// A new scanner after `starttls`: what was read ahead is dropped.
    fn restart(&mut self) {
        *self = Self {
            read: self.read,
            ..Self::default()
        };
    }

    /// The first line from here on that `pattern` matches; `None` when the
    /// stream ends first.
    async fn find(
        &mut self,
        stream: &mut Box<dyn Stream>,
        pattern: &Pattern,
        options: ProbeOptions<'_>,
        report: &mut Report,
    ) -> Result<Option<Found>, String> {
        // Complete lines from start: what a previous step read ahead.
        let mut complete = self.buf[self.start..]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        loop {
            let pending = self.buf.len() - self.start;
            if complete > 0 || (self.eof && pending > 0) {
                let batch = if self.eof { pending } else { complete };
                let (consumed, found) = self.scan(pattern, batch, options, report).await?;
                self.start += consumed;
                if found.is_some() {
                    return Ok(found);
                }
            }
            if self.eof {
                return Ok(None);
            }
            // No line is complete: read more, the line so far at the front.
            self.buf.drain(..self.start);
            self.start = 0;
            if self.buf.len() >= MAX_LINE {
                return Err(format!(
                    "a line longer than {MAX_LINE} bytes (bufio.Scanner: token too long)"
                ));
            }
            if self.read >= MAX_READ {
                return Err(format!(
                    "read {MAX_READ} bytes without a matching line (lookout's bound per probe)"
                ));
            }
            let room = (MAX_LINE - self.buf.len())
                .min(MAX_READ - self.read)
                .min(READ_CHUNK);
            let before = self.buf.len();
            self.buf.reserve(room);
            let n = stream
                .read_buf(&mut (&mut self.buf).limit(room))
                .await
                .map_err(|e| format!("reading from the connection: {e}"))?;
            self.read += n;
            if n == 0 {
                self.eof = true;
            }
            complete = self.buf[before..]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |at| before + at + 1);
        }
    }

    /// [`scan_lines`] over the next `len` bytes: here when they are few, in a
    /// match slot otherwise. How many bytes it took, and the match.
    async fn scan(
        &mut self,
        pattern: &Pattern,
        len: usize,
        options: ProbeOptions<'_>,
        report: &mut Report,
    ) -> Result<(usize, Option<Found>), String> {
        let (start, eof) = (self.start, self.eof);
        if len <= INLINE_MATCH {
            return Ok(scan_lines(pattern, &self.buf[start..start + len], eof));
        }
        let Some(slot) = options.matches.take().await else {
            let reason = format!(
                "Too many regexp matches running: all {} slots are held by matches that outlived their probes; retry later",
                options.matches.count()
            );
            report.refuse(reason.clone());
            return Err(reason);
        };
        let pattern = pattern.clone();
        let data = std::mem::take(&mut self.buf);
        let (data, scanned) = options
            .matches
            .run(slot, options.ticket, move || {
                let scanned = scan_lines(&pattern, &data[start..start + len], eof);
                (data, scanned)
            })
            .await?;
        self.buf = data;
        Ok(scanned)
    }
}

/// Go's `ScanLines` over `data` until a line matches `pattern`: each line
/// ends at `\n`, without it and one `\r` before it; at the end of the stream
/// (`eof`) what is left is a last line. How many bytes the lines seen took,
/// and the match.
fn scan_lines(pattern: &Pattern, data: &[u8], eof: bool) -> (usize, Option<Found>) {
    let mut at = 0;
    while at < data.len() {
        let (end, next) = match data[at..].iter().position(|&b| b == b'\n') {
            Some(newline) => (at + newline, at + newline + 1),
            None if eof => (data.len(), data.len()),
            None => break,
        };
        let line = &data[at..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(groups) = pattern.captures(line) {
            let found = Found {
                line: line.to_vec(),
                groups,
            };
            return (next, Some(found));
        }
        at = next;
    }
    (at, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        text.parse().unwrap()
    }

    #[test]
    fn a_module_that_reads_lines_reserves_one_line_more() {
        use crate::prober::{Modules, PROBE_MEMORY};
        let config = crate::config::Config::parse(
            "modules:\n  plain: {prober: tcp}\n  sends: {prober: tcp, tcp: {query_response: [{send: x}, {expect_bytes: y}]}}\n  reads: {prober: tcp, tcp: {query_response: [{send: x}, {expect: y}]}}\n  unix: {prober: unix, unix: {query_response: [{expect: y}]}}\n",
            "t.yml",
            std::path::Path::new("."),
        )
        .unwrap();
        let modules = Modules::build(&config).unwrap();
        let cost = |name| modules.module(name).unwrap().memory_cost;
        assert_eq!(cost("plain"), PROBE_MEMORY);
        assert_eq!(cost("sends"), PROBE_MEMORY);
        assert_eq!(cost("reads"), PROBE_MEMORY + MAX_LINE as u64);
        assert_eq!(cost("unix"), PROBE_MEMORY + MAX_LINE as u64);
    }

    #[test]
    fn lines_are_split_as_go_scan_lines_splits_them() {
        let re = pattern("^b+$");
        let (taken, found) = scan_lines(&re, b"a\r\nbb\r\ncc\n", false);
        assert_eq!(taken, 7, "up to and with the matched line's newline");
        assert_eq!(found.unwrap().line, b"bb", "without \\r\\n");
        // Only one \r is dropped; a \r elsewhere stays.
        let (_, found) = scan_lines(&pattern("\r$"), b"x\r\r\n", false);
        assert_eq!(found.unwrap().line, b"x\r");
        assert!(scan_lines(&pattern("b\rc"), b"b\rc\n", false).1.is_some());
        // Without the end of the stream a line without \n is not a line yet.
        assert_eq!(scan_lines(&re, b"a\nbb", false), (2, None));
        let (taken, found) = scan_lines(&re, b"a\nbb\r", true);
        assert_eq!((taken, found.unwrap().line), (5, b"bb".to_vec()));
        // An empty line is a line.
        assert!(scan_lines(&pattern("^$"), b"\n", false).1.is_some());
    }

    #[test]
    fn groups_are_ranges_in_the_line() {
        let re = pattern(r"^SSH-(\d)\.(\d)-(?P<soft>\S+)( x)?");
        let (_, found) = scan_lines(&re, b"hello\r\nSSH-2.0-OpenSSH_9.2p1 Debian\r\n", false);
        let found = found.unwrap();
        assert_eq!(
            found.groups,
            vec![Some(0..21), Some(4..5), Some(6..7), Some(8..21), None]
        );
        let expand = |template: &str| {
            String::from_utf8(re.expand(template.as_bytes(), &found.line, &found.groups)).unwrap()
        };
        assert_eq!(expand("v$1.$2 by ${soft}"), "v2.0 by OpenSSH_9.2p1");
        assert_eq!(
            expand("$1x|${1}x|$soft!|$4|$9|$nope|$$1|$|${1|$-"),
            "|2x|OpenSSH_9.2p1!||||$1|$|${1|$-"
        );
        assert_eq!(expand("$0"), "SSH-2.0-OpenSSH_9.2p1");
        assert_eq!(
            expand("$01|$00|$0"),
            "||SSH-2.0-OpenSSH_9.2p1",
            "a leading zero makes a name"
        );
    }
}
