//! Decoding a response body with the module's `compression`, as
//! blackbox_exporter 0.28 reads it: Go's `compress/gzip` (members
//! concatenated, each checked by CRC-32 and length; nothing may follow the
//! last), Go's `compress/flate` (raw DEFLATE; reading stops at the final
//! block, whatever follows), and andybalholm/brotli 1.2 (the stream must be
//! whole, with nothing after it; no large-window streams).
//!
//! Decoding is pushed: each piece of the body is fed as it arrives, and each
//! [`Decoder::step`] returns at most one output buffer, so the caller counts
//! every byte against the body limit before more is made (a gzip or brotli
//! bomb stops at the limit) and can yield to the deadline between steps.
//! DEFLATE is miniz_oxide's (through flate2); brotli is brotli-decompressor,
//! whose every allocation is taken from a fixed budget ([`brotli_memory`]),
//! so a stream cannot make a probe hold more than the memory budget counts.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use brotli_decompressor::{
    Allocator, BrotliDecompressStream, BrotliResult, BrotliState, SliceWrapper, SliceWrapperMut,
};
use flate2::{Crc, Decompress, FlushDecompress, Status};

use crate::config::Coding;

/// Output of one step: what the caller counts before asking for more.
const OUTPUT_BUFFER: usize = 32 << 10;

/// Memory a gzip or deflate decoder holds: miniz_oxide's state (its 32 KiB
/// window and Huffman tables, about 45 KiB), the output buffer, and the
/// header state, rounded up.
pub(crate) const INFLATE_MEMORY: u64 = 96 << 10;

/// The largest window a standard (not large-window) brotli stream can have.
const BROTLI_MAX_WINDOW: u64 = 1 << 24;

/// brotli-decompressor's Huffman tables and context maps at their largest:
/// 256 trees in each of the three groups (literal, insert-and-copy,
/// distance) at most 632, 1080 and 1080 four-byte entries each, the context
/// maps (16 KiB and 1 KiB) and the block-type trees, rounded up.
const BROTLI_TABLES: u64 = 3 << 20;

/// The memory a brotli decoder may hold for a body of at most `limit`
/// decoded bytes. Its ring buffer grows by powers of two to what the stream
/// has declared so far, so a stream that fits the limit needs at most the
/// next power of two (and never more than the window); while it grows, the
/// old buffer (half the new one) is still held.
pub(crate) fn brotli_memory(limit: u64) -> u64 {
    let ring = limit
        .max(1024)
        .checked_next_power_of_two()
        .unwrap_or(u64::MAX);
    let ring = ring.min(BROTLI_MAX_WINDOW);
    ring + ring / 2 + BROTLI_TABLES + OUTPUT_BUFFER as u64
}

/// The memory decoding `coding` adds to a probe whose body limit is `limit`.
pub(crate) fn memory(coding: Option<Coding>, limit: u64) -> u64 {
    match coding {
        None => 0,
        Some(Coding::Gzip | Coding::Deflate) => INFLATE_MEMORY,
        Some(Coding::Br) => brotli_memory(limit),
    }
}

/// Why decoding stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// gzip's first header was bad or cut short: Go's `gzip.NewReader` fails
    /// before the body is read, so blackbox_exporter fails the probe there
    /// and then reads the body undecoded. `at` is how many body bytes the
    /// header parser had taken when it gave up.
    Start { reason: String, at: u64 },
    /// The stream is corrupt, cut short or followed by data.
    Read(String),
}

/// One step's result.
#[derive(Debug)]
pub(super) struct Step<'a> {
    /// Input bytes used.
    pub(super) consumed: usize,
    /// Decoded bytes made.
    pub(super) output: &'a [u8],
    /// The coded stream is complete and the rest of the body is not read
    /// (raw DEFLATE only: Go's reader stops at the final block).
    pub(super) ended: bool,
}

/// A body decoder for one coding.
pub(super) struct Decoder {
    kind: Kind,
    out: Box<[u8]>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            Kind::Gzip(_) => "Decoder(gzip)",
            Kind::Deflate(_) => "Decoder(deflate)",
            Kind::Br(_) => "Decoder(br)",
        })
    }
}

enum Kind {
    Gzip(Box<Gzip>),
    Deflate(Box<Inflate>),
    Br(Box<Brotli>),
}

impl Decoder {
    /// A decoder for `coding`, for a body of at most `limit` decoded bytes.
    pub(super) fn new(coding: Coding, limit: u64) -> Self {
        let kind = match coding {
            Coding::Gzip => Kind::Gzip(Box::new(Gzip::new())),
            Coding::Deflate => Kind::Deflate(Box::new(Inflate::new())),
            Coding::Br => Kind::Br(Box::new(Brotli::new(brotli_memory(limit)))),
        };
        Self {
            kind,
            out: vec![0; OUTPUT_BUFFER].into_boxed_slice(),
        }
    }

    /// Decodes from `input`: call again with the input not consumed until a
    /// step neither consumes nor makes anything, then feed the next piece.
    pub(super) fn step(&mut self, input: &[u8]) -> Result<Step<'_>, Failure> {
        let (consumed, made, ended) = match &mut self.kind {
            Kind::Gzip(gzip) => {
                let (consumed, made) = gzip.step(input, &mut self.out)?;
                (consumed, made, false)
            }
            Kind::Deflate(inflate) => inflate
                .step(input, &mut self.out)
                .map_err(|reason| Failure::Read(format!("flate: {reason}")))?,
            Kind::Br(brotli) => {
                let (consumed, made) = brotli.step(input, &mut self.out)?;
                (consumed, made, false)
            }
        };
        Ok(Step {
            consumed,
            output: &self.out[..made],
            ended,
        })
    }

    /// The body has ended: an error unless the coded stream is complete.
    pub(super) fn finish(&self) -> Result<(), Failure> {
        match &self.kind {
            Kind::Gzip(gzip) => gzip.finish(),
            // A raw stream that reached its final block said `ended`.
            Kind::Deflate(_) => Err(Failure::Read("flate: unexpected EOF".to_owned())),
            Kind::Br(brotli) if brotli.done => Ok(()),
            Kind::Br(_) => Err(Failure::Read("brotli: unexpected EOF".to_owned())),
        }
    }
}

/// Raw DEFLATE (miniz_oxide through flate2).
struct Inflate {
    inner: Decompress,
    /// A corruption found after some output was made: reported on the next
    /// step, as Go's reader hands out the data before the error.
    pending: Option<String>,
}

impl Inflate {
    fn new() -> Self {
        Self {
            inner: Decompress::new(false),
            pending: None,
        }
    }

    /// `(consumed, made, ended)`.
    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize, bool), String> {
        if let Some(reason) = self.pending.take() {
            return Err(reason);
        }
        let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
        let status = self.inner.decompress(input, out, FlushDecompress::None);
        let consumed = usize::try_from(self.inner.total_in() - before_in).unwrap_or(usize::MAX);
        let made = usize::try_from(self.inner.total_out() - before_out).unwrap_or(usize::MAX);
        match status {
            Ok(Status::StreamEnd) => Ok((consumed, made, true)),
            Ok(Status::Ok | Status::BufError) => Ok((consumed, made, false)),
            Err(e) => {
                let reason = format!("corrupt input: {e}");
                if made == 0 {
                    return Err(reason);
                }
                self.pending = Some(reason);
                Ok((consumed, made, false))
            }
        }
    }
}

/// Where a gzip reader is in its stream.
#[derive(Debug)]
enum GzipState {
    /// Reading a member's header.
    Header(Header),
    /// Inflating a member's data.
    Data,
    /// Reading the member's CRC-32 and length.
    Trailer { bytes: [u8; 8], have: usize },
}

/// RFC 1952 members, one after another, read as Go's `gzip.Reader` reads
/// them (multistream, the default).
struct Gzip {
    state: GzipState,
    inflate: Inflate,
    crc: Crc,
    /// Whether the first member's header has been read (Go's NewReader).
    started: bool,
    /// Body bytes taken so far.
    taken: u64,
}

const FLAG_HCRC: u8 = 1 << 1;
const FLAG_EXTRA: u8 = 1 << 2;
const FLAG_NAME: u8 = 1 << 3;
const FLAG_COMMENT: u8 = 1 << 4;

/// Go's header parser, a byte at a time.
#[derive(Debug, Default)]
struct Header {
    fixed: [u8; 10],
    have: usize,
    part: Part,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Part {
    #[default]
    Fixed,
    ExtraLength {
        low: Option<u8>,
    },
    Extra {
        left: u16,
    },
    /// A NUL-terminated string (name or comment) of `length` bytes so far.
    Text {
        comment: bool,
        length: usize,
    },
    HeaderCrc {
        low: Option<u8>,
    },
}

/// Go reads header strings into a 512-byte buffer, NUL included.
const MAX_HEADER_TEXT: usize = 512;

impl Header {
    /// Takes one byte; `Ok(true)` once the header is complete.
    fn take(&mut self, byte: u8) -> Result<bool, &'static str> {
        match self.part {
            Part::Fixed => {
                self.fixed[self.have] = byte;
                self.have += 1;
                if self.have < 10 {
                    return Ok(false);
                }
                if self.fixed[..3] != [0x1f, 0x8b, 8] {
                    return Err("gzip: invalid header");
                }
                return Ok(self.after(Part::Fixed));
            }
            Part::ExtraLength { low: None } => self.part = Part::ExtraLength { low: Some(byte) },
            Part::ExtraLength { low: Some(low) } => {
                let left = u16::from_le_bytes([low, byte]);
                if left > 0 {
                    self.part = Part::Extra { left };
                } else {
                    return Ok(self.after(Part::Extra { left: 0 }));
                }
            }
            Part::Extra { left } => {
                if left > 1 {
                    self.part = Part::Extra { left: left - 1 };
                } else {
                    return Ok(self.after(Part::Extra { left: 0 }));
                }
            }
            Part::Text { comment, length } => {
                if byte == 0 {
                    return Ok(self.after(Part::Text { comment, length }));
                }
                if length + 1 >= MAX_HEADER_TEXT {
                    return Err("gzip: invalid header");
                }
                self.part = Part::Text {
                    comment,
                    length: length + 1,
                };
            }
            Part::HeaderCrc { low: None } => self.part = Part::HeaderCrc { low: Some(byte) },
            Part::HeaderCrc { low: Some(low) } => {
                // Go checks the CRC of the fixed ten bytes only.
                let mut crc = Crc::new();
                crc.update(&self.fixed);
                if u32::from(u16::from_le_bytes([low, byte])) != crc.sum() & 0xffff {
                    return Err("gzip: invalid header");
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Moves past the part just finished; `true` when nothing follows.
    fn after(&mut self, done: Part) -> bool {
        let flags = self.fixed[3];
        let next = match done {
            Part::Fixed if flags & FLAG_EXTRA != 0 => Some(Part::ExtraLength { low: None }),
            Part::Fixed | Part::Extra { .. } if flags & FLAG_NAME != 0 => Some(Part::Text {
                comment: false,
                length: 0,
            }),
            Part::Fixed | Part::Extra { .. } | Part::Text { comment: false, .. }
                if flags & FLAG_COMMENT != 0 =>
            {
                Some(Part::Text {
                    comment: true,
                    length: 0,
                })
            }
            Part::HeaderCrc { .. } => None,
            _ if flags & FLAG_HCRC != 0 => Some(Part::HeaderCrc { low: None }),
            _ => None,
        };
        match next {
            Some(part) => {
                self.part = part;
                false
            }
            None => true,
        }
    }

    /// Whether no byte of this header has arrived.
    fn untouched(&self) -> bool {
        self.have == 0
    }
}

impl Gzip {
    fn new() -> Self {
        Self {
            state: GzipState::Header(Header::default()),
            inflate: Inflate::new(),
            crc: Crc::new(),
            started: false,
            taken: 0,
        }
    }

    fn fail(&self, reason: &str) -> Failure {
        if self.started {
            Failure::Read(reason.to_owned())
        } else {
            Failure::Start {
                reason: reason.to_owned(),
                at: self.taken,
            }
        }
    }

    /// `(consumed, made)`.
    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Failure> {
        match &mut self.state {
            GzipState::Header(header) => {
                let mut used = 0;
                for &byte in input {
                    used += 1;
                    self.taken += 1;
                    match header.take(byte) {
                        Ok(false) => {}
                        Ok(true) => {
                            self.started = true;
                            self.inflate = Inflate::new();
                            self.crc.reset();
                            self.state = GzipState::Data;
                            break;
                        }
                        Err(reason) => return Err(self.fail(reason)),
                    }
                }
                Ok((used, 0))
            }
            GzipState::Data => {
                let (consumed, made, ended) = self
                    .inflate
                    .step(input, out)
                    .map_err(|reason| Failure::Read(format!("gzip: {reason}")))?;
                self.taken += consumed as u64;
                self.crc.update(&out[..made]);
                if ended {
                    self.state = GzipState::Trailer {
                        bytes: [0; 8],
                        have: 0,
                    };
                }
                Ok((consumed, made))
            }
            GzipState::Trailer { bytes, have } => {
                let used = input.len().min(8 - *have);
                bytes[*have..*have + used].copy_from_slice(&input[..used]);
                *have += used;
                self.taken += used as u64;
                if *have == 8 {
                    let crc = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                    let size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                    if crc != self.crc.sum() || size != self.crc.amount() {
                        return Err(Failure::Read("gzip: invalid checksum".to_owned()));
                    }
                    self.state = GzipState::Header(Header::default());
                }
                Ok((used, 0))
            }
        }
    }

    fn finish(&self) -> Result<(), Failure> {
        match &self.state {
            // Zero or more members may follow a member (Go reads "a series"
            // as zero or more): the body may end here, but not before one.
            GzipState::Header(header) if header.untouched() && self.started => Ok(()),
            GzipState::Header(header) if header.untouched() => Err(self.fail("EOF")),
            _ => Err(self.fail("unexpected EOF")),
        }
    }
}

/// brotli-decompressor with a memory budget.
struct Brotli {
    state: BrotliState<Budgeted, Budgeted, Budgeted>,
    done: bool,
    /// An error found after some output was made, reported next (Go's
    /// reader returns both from one Read, and the output counts).
    pending: Option<String>,
}

impl Brotli {
    fn new(budget: u64) -> Self {
        let left = Arc::new(AtomicUsize::new(
            usize::try_from(budget).unwrap_or(usize::MAX),
        ));
        let alloc = || Budgeted {
            left: Arc::clone(&left),
        };
        // new_strict: no large-window streams, as andybalholm/brotli.
        Self {
            state: BrotliState::new_strict(alloc(), alloc(), alloc()),
            done: false,
            pending: None,
        }
    }

    /// `(consumed, made)`.
    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Failure> {
        if let Some(reason) = self.pending.take() {
            return Err(Failure::Read(reason));
        }
        if self.done {
            return if input.is_empty() {
                Ok((0, 0))
            } else {
                Err(Failure::Read("brotli: excessive input".to_owned()))
            };
        }
        let (mut available_in, mut input_offset) = (input.len(), 0);
        let (mut available_out, mut output_offset, mut total_out) = (out.len(), 0, 0);
        let result = BrotliDecompressStream(
            &mut available_in,
            &mut input_offset,
            input,
            &mut available_out,
            &mut output_offset,
            out,
            &mut total_out,
            &mut self.state,
        );
        match result {
            BrotliResult::ResultSuccess => {
                self.done = true;
                // Data after the stream is an error, once the output is out.
                Ok((input_offset, output_offset))
            }
            BrotliResult::NeedsMoreInput | BrotliResult::NeedsMoreOutput => {
                Ok((input_offset, output_offset))
            }
            BrotliResult::ResultFailure => {
                let reason = format!("brotli: {:?}", self.state.error_code);
                if output_offset == 0 {
                    return Err(Failure::Read(reason));
                }
                self.pending = Some(reason);
                Ok((input_offset, output_offset))
            }
        }
    }
}

/// An allocator for brotli-decompressor that refuses (with the empty cell
/// the decoder takes as a failed allocation) what would pass the budget.
struct Budgeted {
    left: Arc<AtomicUsize>,
}

/// Memory the decoder was given.
#[derive(Default)]
struct Cell<T>(Box<[T]>);

impl<T> SliceWrapper<T> for Cell<T> {
    fn slice(&self) -> &[T] {
        &self.0
    }
}

impl<T> SliceWrapperMut<T> for Cell<T> {
    fn slice_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T: Default + Clone> Allocator<T> for Budgeted {
    type AllocatedMemory = Cell<T>;

    fn alloc_cell(&mut self, len: usize) -> Cell<T> {
        let Some(bytes) = len.checked_mul(std::mem::size_of::<T>()) else {
            return Cell(Box::default());
        };
        let taken = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            });
        if taken.is_err() {
            return Cell(Box::default());
        }
        Cell(vec![T::default(); len].into_boxed_slice())
    }

    fn free_cell(&mut self, cell: Cell<T>) {
        let bytes = cell.0.len() * std::mem::size_of::<T>();
        self.left.fetch_add(bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::{write, Compression as Level, GzBuilder};

    use super::*;

    /// Feeds `input` in pieces of `piece` bytes as a body would arrive;
    /// the output, and how decoding ended (`Ok(true)`: stopped at the end of
    /// a raw DEFLATE stream, the rest unread).
    fn decode(
        coding: Coding,
        limit: u64,
        input: &[u8],
        piece: usize,
    ) -> (Vec<u8>, Result<bool, Failure>) {
        let mut decoder = Decoder::new(coding, limit);
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            let mut rest = chunk;
            loop {
                match decoder.step(rest) {
                    Ok(step) => {
                        assert!(step.output.len() <= OUTPUT_BUFFER);
                        out.extend_from_slice(step.output);
                        if step.ended {
                            return (out, Ok(true));
                        }
                        if step.consumed == 0 && step.output.is_empty() {
                            break;
                        }
                        rest = &rest[step.consumed..];
                    }
                    Err(failure) => return (out, Err(failure)),
                }
            }
        }
        let end = decoder.finish().map(|()| false);
        (out, end)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = write::GzEncoder::new(Vec::new(), Level::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder = write::DeflateEncoder::new(Vec::new(), Level::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn brotli(data: &[u8], lgwin: i32, large_window: bool) -> Vec<u8> {
        let params = ::brotli::enc::BrotliEncoderParams {
            lgwin,
            large_window,
            quality: 5,
            ..Default::default()
        };
        let mut out = Vec::new();
        ::brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
        out
    }

    /// Text that compresses, but not to nothing.
    fn text(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"lookout probes "[i % 15] ^ (i / 997) as u8 & 1)
            .collect()
    }

    const LIMIT: u64 = 10 << 20;

    #[test]
    fn every_coding_decodes_whatever_the_pieces_the_body_arrives_in() {
        let data = text(100_000);
        for piece in [1, 7, 4096, usize::MAX] {
            assert_eq!(
                decode(Coding::Gzip, LIMIT, &gzip(&data), piece),
                (data.clone(), Ok(false)),
                "gzip {piece}"
            );
            assert_eq!(
                decode(Coding::Deflate, LIMIT, &deflate(&data), piece),
                (data.clone(), Ok(true)),
                "deflate {piece}"
            );
            assert_eq!(
                decode(Coding::Br, LIMIT, &brotli(&data, 22, false), piece),
                (data.clone(), Ok(false)),
                "br {piece}"
            );
        }
    }

    #[test]
    fn gzip_members_follow_one_another_and_nothing_else_may() {
        let mut two = gzip(b"hello ");
        two.extend(gzip(b"world\n"));
        assert_eq!(
            decode(Coding::Gzip, LIMIT, &two, 3),
            (b"hello world\n".to_vec(), Ok(false))
        );

        // Ten bytes that are no header, after a member: Go's ErrHeader.
        let mut garbage = gzip(b"hello\n");
        garbage.extend_from_slice(&[0; 10]);
        let (out, end) = decode(Coding::Gzip, LIMIT, &garbage, usize::MAX);
        assert_eq!(out, b"hello\n");
        assert_eq!(end, Err(Failure::Read("gzip: invalid header".to_owned())));
        // Fewer than ten: Go's ErrUnexpectedEOF.
        let mut short = gzip(b"hello\n");
        short.extend_from_slice(b"\n\n");
        assert!(matches!(
            decode(Coding::Gzip, LIMIT, &short, usize::MAX).1,
            Err(Failure::Read(_))
        ));
    }

    #[test]
    fn a_bad_first_gzip_header_fails_before_the_body_is_read() {
        // Not gzip at all: Go's NewReader reads ten bytes and gives up.
        let (out, end) = decode(Coding::Gzip, LIMIT, b"hello world\n", usize::MAX);
        assert!(out.is_empty());
        assert_eq!(
            end,
            Err(Failure::Start {
                reason: "gzip: invalid header".to_owned(),
                at: 10
            })
        );
        // Empty, or cut inside the header.
        assert_eq!(
            decode(Coding::Gzip, LIMIT, b"", 1).1,
            Err(Failure::Start {
                reason: "EOF".to_owned(),
                at: 0
            })
        );
        let cut = &gzip(b"hello")[..6];
        assert!(matches!(
            decode(Coding::Gzip, LIMIT, cut, 1).1,
            Err(Failure::Start { .. })
        ));
        // Method other than deflate.
        let mut method = gzip(b"hello");
        method[2] = 7;
        assert!(matches!(
            decode(Coding::Gzip, LIMIT, &method, 1).1,
            Err(Failure::Start { .. })
        ));
        // A name longer than Go's 512-byte buffer.
        let long = GzBuilder::new()
            .filename(vec![b'n'; 511])
            .write(Vec::new(), Level::default());
        assert!(decode(Coding::Gzip, LIMIT, &long.finish().unwrap(), 64)
            .1
            .is_ok());
        let longer = GzBuilder::new()
            .filename(vec![b'n'; 512])
            .write(Vec::new(), Level::default());
        assert!(matches!(
            decode(Coding::Gzip, LIMIT, &longer.finish().unwrap(), 64).1,
            Err(Failure::Start { .. })
        ));
    }

    #[test]
    fn gzip_header_fields_are_skipped_and_its_crc_checked_as_go_checks_it() {
        let mut encoder = GzBuilder::new()
            .extra(vec![7; 300])
            .filename("probe.txt")
            .comment("a comment")
            .write(Vec::new(), Level::default());
        encoder.write_all(b"fields\n").unwrap();
        let with_fields = encoder.finish().unwrap();
        assert_eq!(
            decode(Coding::Gzip, LIMIT, &with_fields, 5),
            (b"fields\n".to_vec(), Ok(false))
        );

        // FHCRC: Go compares it with the CRC of the fixed ten bytes only.
        let plain = gzip(b"crc\n");
        let with_crc = |crc: u16| {
            let mut stream = plain[..10].to_vec();
            stream[3] |= FLAG_HCRC;
            stream.extend_from_slice(&crc.to_le_bytes());
            stream.extend_from_slice(&plain[10..]);
            stream
        };
        let mut fixed = plain[..10].to_vec();
        fixed[3] |= FLAG_HCRC;
        let mut crc = Crc::new();
        crc.update(&fixed);
        let good = crc.sum() as u16;
        assert_eq!(
            decode(Coding::Gzip, LIMIT, &with_crc(good), 1),
            (b"crc\n".to_vec(), Ok(false))
        );
        assert!(matches!(
            decode(Coding::Gzip, LIMIT, &with_crc(good ^ 1), 1).1,
            Err(Failure::Start { .. })
        ));
    }

    #[test]
    fn a_gzip_member_must_match_its_crc_and_length() {
        let good = gzip(b"checked\n");
        let n = good.len();
        for at in [n - 8, n - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            let (out, end) = decode(Coding::Gzip, LIMIT, &bad, usize::MAX);
            assert_eq!(
                out, b"checked\n",
                "the data comes out before the check fails"
            );
            assert_eq!(end, Err(Failure::Read("gzip: invalid checksum".to_owned())));
        }
        let (out, end) = decode(Coding::Gzip, LIMIT, &good[..n - 3], usize::MAX);
        assert_eq!(out, b"checked\n");
        assert_eq!(end, Err(Failure::Read("unexpected EOF".to_owned())));
    }

    #[test]
    fn cut_and_corrupt_streams_fail_after_what_they_decoded() {
        let data = text(200_000);
        for (coding, stream) in [
            (Coding::Gzip, gzip(&data)),
            (Coding::Deflate, deflate(&data)),
            (Coding::Br, brotli(&data, 22, false)),
        ] {
            let (out, end) = decode(coding, LIMIT, &stream[..stream.len() / 2], 1000);
            assert!(
                matches!(end, Err(Failure::Read(_))),
                "{coding:?} cut: {end:?}"
            );
            assert!(!out.is_empty() && data.starts_with(&out), "{coding:?}");
            assert!(decode(coding, LIMIT, b"", 1).1.is_err(), "{coding:?} empty");
        }
        // Raw DEFLATE, as Go reads it: a zlib-wrapped stream (what many
        // servers send as `deflate`) is not one.
        let mut zlib = write::ZlibEncoder::new(Vec::new(), Level::default());
        zlib.write_all(&data).unwrap();
        let zlib = zlib.finish().unwrap();
        assert_ne!(
            decode(Coding::Deflate, LIMIT, &zlib, 4096),
            (data.clone(), Ok(true))
        );
        // Garbage is no stream of any kind.
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Br] {
            assert!(
                decode(coding, LIMIT, &[0xff; 64], 64).1.is_err(),
                "{coding:?}"
            );
        }
    }

    #[test]
    fn raw_deflate_stops_at_its_final_block_and_brotli_allows_nothing_after() {
        let mut deflated = deflate(b"stop here\n");
        deflated.extend_from_slice(b"whatever follows");
        assert_eq!(
            decode(Coding::Deflate, LIMIT, &deflated, usize::MAX),
            (b"stop here\n".to_vec(), Ok(true))
        );

        let mut compressed = brotli(b"no more\n", 22, false);
        compressed.push(0);
        let (out, end) = decode(Coding::Br, LIMIT, &compressed, usize::MAX);
        assert_eq!(out, b"no more\n");
        assert_eq!(
            end,
            Err(Failure::Read("brotli: excessive input".to_owned()))
        );
        // Also when the extra byte comes in a later piece.
        let n = compressed.len() - 1;
        let mut decoder = Decoder::new(Coding::Br, LIMIT);
        let mut rest = &compressed[..n];
        while let Ok(step) = decoder.step(rest) {
            if step.consumed == 0 && step.output.is_empty() {
                break;
            }
            rest = &rest[step.consumed..];
        }
        assert!(decoder.finish().is_ok());
        assert!(decoder.step(&compressed[n..]).is_err());
    }

    #[test]
    fn bombs_come_out_one_buffer_per_step() {
        // 64 MiB of zeros in about 64 KiB of gzip, in 2 KiB of brotli.
        let zeros = vec![0u8; 64 << 20];
        for (coding, stream) in [
            (Coding::Gzip, gzip(&zeros)),
            (Coding::Br, brotli(&zeros, 24, false)),
        ] {
            let mut decoder = Decoder::new(coding, LIMIT);
            // The caller stops after its limit: here after 1 MiB of output.
            let (mut made, mut steps, mut rest) = (0, 0, &stream[..]);
            while made < 1 << 20 {
                let step = decoder.step(rest).unwrap();
                assert!(step.output.len() <= OUTPUT_BUFFER);
                made += step.output.len();
                rest = &rest[step.consumed..];
                steps += 1;
            }
            assert!(steps >= (1 << 20) / OUTPUT_BUFFER, "{coding:?}");
            assert!(stream.len() < 100 << 10, "{coding:?}: {}", stream.len());
        }
    }

    #[test]
    fn brotli_memory_is_held_to_the_budget_the_limit_sets() {
        assert_eq!(
            brotli_memory(1),
            1024 + 512 + BROTLI_TABLES + OUTPUT_BUFFER as u64
        );
        assert_eq!(
            brotli_memory(10 << 20),
            (24 << 20) + BROTLI_TABLES + OUTPUT_BUFFER as u64
        );
        assert_eq!(brotli_memory(u64::MAX), brotli_memory(16 << 20));
        assert_eq!(memory(None, LIMIT), 0);
        assert_eq!(memory(Some(Coding::Gzip), LIMIT), INFLATE_MEMORY);

        // 8 MiB of text with a 16 MiB window: it decodes within a 10 MiB
        // limit's budget, and a 1 MiB limit's budget refuses the ring buffer
        // it asks for (the body would be cut at 1 MiB anyway).
        let data = text(8 << 20);
        let stream = brotli(&data, 24, false);
        let (out, end) = decode(Coding::Br, 10 << 20, &stream, 16 << 10);
        assert_eq!((out.len(), end), (data.len(), Ok(false)));
        let (out, end) = decode(Coding::Br, 1 << 20, &stream, 16 << 10);
        assert!(out.len() < data.len());
        assert!(
            matches!(end, Err(Failure::Read(ref reason)) if reason.contains("ALLOC")),
            "{end:?}"
        );
    }

    #[test]
    fn large_window_brotli_is_refused_as_go_refuses_it() {
        let stream = brotli(&text(1000), 25, true);
        assert!(matches!(
            decode(Coding::Br, LIMIT, &stream, usize::MAX).1,
            Err(Failure::Read(_))
        ));
    }
}
