//! The final response's body: read to its limit, decoded with the module's
//! `compression` (see `decode`) where blackbox_exporter decodes it, counted
//! as `probe_http_uncompressed_body_length`, and kept when a check reads it.
//!
//! blackbox_exporter's order is kept: a gzip header that cannot be read
//! fails the probe before any check reads the body (Go's `gzip.NewReader`
//! reads it), and the body is then read undecoded; the body limit applies to
//! the decoded bytes, so a bomb stops at the limit. lookout also stops
//! reading a compressed body at [`compressed_limit`]: a stream that decodes
//! to little or nothing (empty deflate blocks, empty gzip members) cannot
//! keep a probe reading until its deadline.

use http_body_util::BodyExt;

use super::{
    decode::{Decoder, Failure},
    exchange::ResponseBody,
};
use crate::config::Coding;
use crate::prober::report::{Report, HTTP_BODY_LENGTH};

/// Go's bufio.Reader size, which `gzip.NewReader` reads the body through:
/// bytes it pulled in while reading a bad header are not counted after.
const GO_BUFIO: usize = 4096;

/// Decoded bytes between two yields to the scheduler, so a probe with a big
/// body limit decoding a bomb still answers its deadline.
const YIELD_EVERY: u64 = 256 << 10;

/// The most compressed bytes read for a body of at most `limit` decoded
/// bytes: real encoders stay far below (stored blocks add 5 bytes in 64 KiB;
/// a gzip header is at most 64 KiB of extra field plus two 512-byte strings).
pub(crate) fn compressed_limit(limit: u64) -> u64 {
    limit.saturating_add(limit / 8).saturating_add(128 << 10)
}

/// Where the body comes from.
pub(super) enum Source {
    /// The final response's body, read to its end.
    Stream(ResponseBody),
    /// A redirect that was not followed: Go's client has closed its body
    /// (`empty`: it had none, and reads as empty), and blackbox_exporter
    /// reads it only to start a gzip reader or for a body check.
    Refused { empty: bool },
}

/// What reading the body found.
#[derive(Debug, Default)]
pub(super) struct Body {
    /// Decoded bytes counted (at most the limit).
    pub(super) read: u64,
    /// The decoded bytes, when kept.
    pub(super) kept: Vec<u8>,
    /// Reading or decoding failed: a check that reads the body fails.
    pub(super) error: Option<String>,
    /// gzip's first header was unreadable: the probe fails before any check.
    pub(super) start_error: Option<String>,
}

/// Reads the body to its end or to `limit` decoded bytes; keeps the bytes
/// only when a check needs them. The count is reported as it grows, so a
/// body cut off by the deadline still shows what arrived, as with
/// blackbox_exporter.
pub(super) async fn read(
    source: Source,
    limit: u64,
    keep: bool,
    coding: Option<Coding>,
    report: &mut Report,
) -> Body {
    let mut out = Body::default();
    let mut incoming = match source {
        Source::Stream(incoming) => incoming,
        Source::Refused { empty } => {
            refused(&mut out, empty, keep, coding, limit);
            return out;
        }
    };
    let mut decoder = coding.map(|coding| Decoder::new(coding, limit));
    let compressed_cap = compressed_limit(limit);
    let (mut raw, mut since_yield) = (0u64, 0u64);
    while let Some(frame) = incoming.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                out.error = Some(e.to_string());
                return out;
            }
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let Some(active) = decoder.as_mut() else {
            if let Err(e) = accept(&mut out, data, limit, keep, report) {
                out.error = Some(e);
                return out;
            }
            continue;
        };
        if raw.saturating_add(data.len() as u64) > compressed_cap {
            out.error = Some(format!(
                "compressed body exceeds {compressed_cap} bytes (body_size_limit {limit} decoded)"
            ));
            return out;
        }
        let mut rest: &[u8] = data;
        loop {
            let step = match active.step(rest) {
                Ok(step) => step,
                Err(Failure::Read(reason)) => {
                    out.error = Some(reason);
                    return out;
                }
                Err(Failure::Start { reason, at }) => {
                    // Go's bufio pulled the header's bytes in 4 KiB reads;
                    // what it did not pull is read, undecoded, after.
                    let in_frame = usize::try_from(at.saturating_sub(raw)).unwrap_or(usize::MAX);
                    let pulled = in_frame
                        .div_ceil(GO_BUFIO)
                        .saturating_mul(GO_BUFIO)
                        .min(data.len());
                    out.start_error = Some(reason);
                    if let Err(e) = accept(&mut out, &data[pulled..], limit, keep, report) {
                        out.error = Some(e);
                        return out;
                    }
                    break;
                }
            };
            let made = step.output.len();
            if made > 0 {
                if let Err(e) = accept(&mut out, step.output, limit, keep, report) {
                    out.error = Some(e);
                    return out;
                }
            }
            if step.ended {
                // Go's flate reader stops at the final block.
                return out;
            }
            if step.consumed == 0 && made == 0 {
                break;
            }
            rest = &rest[step.consumed..];
            since_yield += made as u64;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
        raw += data.len() as u64;
        if out.start_error.is_some() {
            decoder = None;
        }
    }
    if let Some(decoder) = &decoder {
        match decoder.finish() {
            Ok(()) => {}
            Err(Failure::Read(reason)) => out.error = Some(reason),
            Err(Failure::Start { reason, .. }) => out.start_error = Some(reason),
        }
    }
    out
}

/// A refused redirect's body, as blackbox_exporter meets it: closed, so
/// reading fails (or, with none, reads as empty); read only by a gzip reader
/// starting, or by a body check.
fn refused(out: &mut Body, empty: bool, keep: bool, coding: Option<Coding>, limit: u64) {
    const CLOSED: &str = "http: read on closed response body";
    if !empty {
        match coding {
            Some(Coding::Gzip) => out.start_error = Some(CLOSED.to_owned()),
            _ if keep => out.error = Some(CLOSED.to_owned()),
            _ => {}
        }
        return;
    }
    let Some(coding) = coding else {
        return;
    };
    if coding != Coding::Gzip && !keep {
        return;
    }
    match Decoder::new(coding, limit).finish() {
        Ok(()) => {}
        Err(Failure::Start { reason, .. }) => out.start_error = Some(reason),
        Err(Failure::Read(reason)) => out.error = Some(reason),
    }
}

/// Counts decoded bytes against the limit and keeps them if asked; an error
/// once the limit is passed (what fits is counted, as Go's MaxBytesReader
/// hands it out).
fn accept(
    out: &mut Body,
    data: &[u8],
    limit: u64,
    keep: bool,
    report: &mut Report,
) -> Result<(), String> {
    let room = usize::try_from(limit.saturating_sub(out.read))
        .unwrap_or(usize::MAX)
        .min(data.len());
    out.read += room as u64;
    report.set(HTTP_BODY_LENGTH, out.read as f64);
    if keep {
        out.kept.extend_from_slice(&data[..room]);
    }
    if room < data.len() {
        return Err(format!("body exceeds body_size_limit of {limit} bytes"));
    }
    Ok(())
}
