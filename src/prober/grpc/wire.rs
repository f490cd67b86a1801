//! The health check's bytes and statuses: the request message in gRPC's
//! framing, the response message read as protobuf-go reads it (two fields
//! do not earn a protobuf crate), and the gRPC status grpc-go makes of what
//! a server answers, so the status codes blackbox_exporter reports for a
//! broken or foreign server are ours too.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

/// The method called.
pub(super) const PATH: &str = "/grpc.health.v1.Health/Check";

/// The largest response message read. grpc-go reads up to 4 MiB; a health
/// check answers in a few bytes, and the probe memory budget counts this.
pub(super) const MAX_MESSAGE: usize = 64 << 10;

/// gRPC status codes (google.golang.org/grpc/codes).
pub(super) mod code {
    pub(crate) const OK: u32 = 0;
    pub(crate) const CANCELED: u32 = 1;
    pub(crate) const UNKNOWN: u32 = 2;
    pub(crate) const DEADLINE_EXCEEDED: u32 = 4;
    pub(crate) const PERMISSION_DENIED: u32 = 7;
    pub(crate) const RESOURCE_EXHAUSTED: u32 = 8;
    pub(crate) const UNIMPLEMENTED: u32 = 12;
    pub(crate) const INTERNAL: u32 = 13;
    pub(crate) const UNAVAILABLE: u32 = 14;
    pub(crate) const UNAUTHENTICATED: u32 = 16;
}

/// Names of the status codes, by number, for logs.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// How a call ended when it did not return a message: a status code and
/// why, for the debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Status {
    pub(super) code: u32,
    pub(super) message: String,
}

impl Status {
    pub(super) fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = usize::try_from(self.code)
            .ok()
            .and_then(|i| CODE_NAMES.get(i))
            .unwrap_or(&"code");
        write!(f, "{name} ({}): {}", self.code, self.message)
    }
}

/// `ServingStatus` values as Go's protobuf names them.
pub(super) const SERVING_STATUSES: [&str; 4] =
    ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// The one `ServingStatus` that passes.
pub(super) const SERVING: i32 = 1;

/// Go's `String()` of a `ServingStatus`: its name, or the number for a
/// value the enum does not define.
pub(super) fn serving_status_name(status: i32) -> Cow<'static, str> {
    usize::try_from(status)
        .ok()
        .and_then(|i| SERVING_STATUSES.get(i))
        .map_or_else(
            || Cow::Owned(status.to_string()),
            |name| Cow::Borrowed(*name),
        )
}

/// `HealthCheckRequest { string service = 1; }`, uncompressed, in a gRPC
/// message frame (flag byte, big-endian length, message).
pub(super) fn request(service: &str) -> Bytes {
    let mut message = BytesMut::with_capacity(service.len() + 16);
    if !service.is_empty() {
        // Field 1, wire type 2 (length-delimited); proto3 omits an empty string.
        message.put_u8(0x0a);
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut frame = BytesMut::with_capacity(message.len() + 5);
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    frame.freeze()
}

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// The status of `HealthCheckResponse { ServingStatus status = 1; }` as
/// protobuf-go decodes it: the last value wins, truncated to int32; unknown
/// fields, and field 1 with another wire type, are skipped.
pub(super) fn decode_response(mut message: &[u8]) -> Result<i32, &'static str> {
    let mut status = 0;
    // Field numbers of the groups being skipped, innermost last.
    let mut groups: Vec<u64> = Vec::new();
    while !message.is_empty() {
        let tag = varint(&mut message)?;
        let (field, wire_type) = (tag >> 3, tag & 7);
        if field == 0 || field > i32::MAX as u64 {
            return Err("invalid field number");
        }
        match wire_type {
            0 => {
                let value = varint(&mut message)?;
                if field == 1 && groups.is_empty() {
                    status = value as i32;
                }
            }
            1 => message = message.get(8..).ok_or("truncated fixed64")?,
            2 => {
                let len = usize::try_from(varint(&mut message)?).map_err(|_| "bad length")?;
                message = message.get(len..).ok_or("truncated field")?;
            }
            3 => groups.push(field),
            4 => {
                if groups.pop() != Some(field) {
                    return Err("mismatched end group");
                }
            }
            5 => message = message.get(4..).ok_or("truncated fixed32")?,
            _ => return Err("invalid wire type"),
        }
    }
    if groups.is_empty() {
        Ok(status)
    } else {
        Err("unterminated group")
    }
}

fn varint(input: &mut &[u8]) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = input.split_first().ok_or("truncated varint")?;
        *input = rest;
        if i == 9 && byte > 1 {
            return Err("varint overflows 64 bits");
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("varint overflows 64 bits")
}

/// The one message of a unary response body (every byte of DATA the stream
/// carried, or the first [`MAX_MESSAGE`] and a bit when it carried more), in
/// the order grpc-go reads it: a message must come, whole, uncompressed,
/// then nothing more. `compressed_with` is the response's grpc-encoding.
pub(super) fn unary_message<'b>(
    body: &'b [u8],
    compressed_with: Option<&[u8]>,
) -> Result<Option<&'b [u8]>, Status> {
    if body.is_empty() {
        // No message: the status decides (OK without a message is an error).
        return Ok(None);
    }
    let (message, rest) = frame(body, compressed_with)?;
    if !rest.is_empty() {
        // A second message, whole or not.
        if let Err(status) = frame(rest, compressed_with) {
            if status.code == code::RESOURCE_EXHAUSTED {
                return Err(status);
            }
        }
        return Err(Status::new(
            code::INTERNAL,
            "more than one response message in a unary call",
        ));
    }
    Ok(Some(message))
}

/// One length-prefixed message and what follows it, checked in grpc-go's
/// order: the length, then the whole message, then its flag.
fn frame<'b>(
    body: &'b [u8],
    compressed_with: Option<&[u8]>,
) -> Result<(&'b [u8], &'b [u8]), Status> {
    let truncated = || Status::new(code::INTERNAL, "the stream ended inside a message");
    let header = body.get(..5).ok_or_else(truncated)?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(Status::new(
            code::RESOURCE_EXHAUSTED,
            format!("received message larger than max ({len} vs. {MAX_MESSAGE})"),
        ));
    }
    let message = body.get(5..5 + len).ok_or_else(truncated)?;
    match header[0] {
        0 => Ok((message, &body[5 + len..])),
        // grpc-go's client has no decompressor unless one is linked in;
        // blackbox_exporter links none.
        1 => Err(Status::new(
            code::INTERNAL,
            match compressed_with {
                None | Some(b"identity") => "compressed flag set with identity or empty encoding",
                Some(_) => "compressed message, and no decompressor is installed",
            },
        )),
        flag => Err(Status::new(
            code::INTERNAL,
            format!("unexpected message flag {flag}"),
        )),
    }
}

/// grpc-go's `ContentSubtype`: `application/grpc`, alone or followed by `+`
/// or `;` (case-sensitive, as grpc-go compares it).
pub(super) fn is_grpc_content_type(value: &[u8]) -> bool {
    match value.strip_prefix(b"application/grpc") {
        Some(rest) => rest.is_empty() || matches!(rest[0], b'+' | b';'),
        None => false,
    }
}

/// grpc-go's code for a response that is not gRPC's or not a 200
/// (its `HTTPStatusConvTab`; anything else is UNKNOWN).
pub(super) fn http_status_code(status: u16) -> u32 {
    match status {
        400 => code::INTERNAL,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 => code::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// grpc-go's code for a stream reset with `reason` (its `http2ErrConvTab`;
/// UNKNOWN for a reason HTTP/2 does not define).
pub(super) fn reset_code(reason: h2::Reason) -> u32 {
    match reason {
        h2::Reason::REFUSED_STREAM => code::UNAVAILABLE,
        h2::Reason::CANCEL => code::CANCELED,
        h2::Reason::FLOW_CONTROL_ERROR | h2::Reason::ENHANCE_YOUR_CALM => code::RESOURCE_EXHAUSTED,
        h2::Reason::INADEQUATE_SECURITY => code::PERMISSION_DENIED,
        reason if u32::from(reason) <= 0xd => code::INTERNAL,
        _ => code::UNKNOWN,
    }
}

/// The code of a `grpc-status` field: decimal int32 as Go's `ParseInt`
/// reads it, kept as the uint32 grpc-go converts it to; INTERNAL when it is
/// no such number.
pub(super) fn grpc_status(value: &[u8]) -> Result<u32, Status> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<i32>().ok())
        .map(|code| code as u32)
        .ok_or_else(|| {
            Status::new(
                code::INTERNAL,
                format!("malformed grpc-status {:?}", String::from_utf8_lossy(value)),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_framed_protobuf() {
        assert_eq!(&request("")[..], [0, 0, 0, 0, 0]);
        assert_eq!(&request("svc")[..], b"\x00\x00\x00\x00\x05\x0a\x03svc");
        let long = "s".repeat(200);
        let framed = request(&long);
        assert_eq!(&framed[..8], [0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01]);
        assert_eq!(framed.len(), 5 + 203);
    }

    #[test]
    fn responses_decode_as_protobuf_go_decodes_them() {
        assert_eq!(decode_response(b""), Ok(0));
        assert_eq!(decode_response(b"\x08\x01"), Ok(1));
        assert_eq!(decode_response(b"\x08\x02"), Ok(2));
        assert_eq!(decode_response(b"\x08\x07"), Ok(7));
        assert_eq!(decode_response(b"\x08\x01\x08\x03"), Ok(3), "last wins");
        // -1 as a 10-byte varint is -1 as int32.
        assert_eq!(
            decode_response(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            Ok(-1)
        );
        // Unknown fields of every wire type, and field 1 as a string, are skipped.
        assert_eq!(
            decode_response(b"\x10\x05\x19\x01\x02\x03\x04\x05\x06\x07\x08\x22\x02ab\x2d\x01\x02\x03\x04\x08\x01\x0a\x01x"),
            Ok(1)
        );
        // A group, nested, holding a field 1 that is not the top-level one.
        assert_eq!(decode_response(b"\x1b\x08\x02\x23\x24\x1c\x08\x01"), Ok(1));
        for bad in [
            &b"\x08"[..],
            b"\x08\x80",
            b"\x00\x01",
            b"\x0e",
            b"\x12\x05ab",
            b"\x1b\x08\x01",
            b"\x1c",
            b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
        ] {
            assert!(decode_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serving_statuses_are_named_as_go_names_them() {
        assert_eq!(serving_status_name(0), "UNKNOWN");
        assert_eq!(serving_status_name(3), "SERVICE_UNKNOWN");
        assert_eq!(serving_status_name(7), "7");
        assert_eq!(serving_status_name(-2), "-2");
    }

    #[test]
    fn a_unary_body_holds_exactly_one_whole_uncompressed_message() {
        fn code_of<'b>(body: &'b [u8], encoding: Option<&[u8]>) -> Result<Option<&'b [u8]>, u32> {
            unary_message(body, encoding).map_err(|status| status.code)
        }
        assert_eq!(code_of(b"", None), Ok(None));
        assert_eq!(
            code_of(b"\0\0\0\0\x02\x08\x01", None),
            Ok(Some(&b"\x08\x01"[..]))
        );
        assert_eq!(code_of(b"\0\0\0\0\0", None), Ok(Some(&b""[..])));
        for truncated in [&b"\0\0\0"[..], b"\0\0\0\0\x02\x08"] {
            assert_eq!(code_of(truncated, None), Err(code::INTERNAL));
        }
        assert_eq!(
            code_of(b"\0\0\0\0\0\0\0\0\0\0", None),
            Err(code::INTERNAL),
            "two"
        );
        assert_eq!(
            code_of(b"\0\0\0\0\0\0", None),
            Err(code::INTERNAL),
            "and a bit"
        );
        assert_eq!(code_of(b"\x01\0\0\0\0", None), Err(code::INTERNAL));
        assert_eq!(
            code_of(b"\x01\0\0\0\0", Some(b"identity")),
            Err(code::INTERNAL)
        );
        assert_eq!(code_of(b"\x01\0\0\0\0", Some(b"gzip")), Err(code::INTERNAL));
        assert_eq!(code_of(b"\x02\0\0\0\0", None), Err(code::INTERNAL));
        assert_eq!(
            code_of(b"\0\0\x01\0\x01", None),
            Err(code::RESOURCE_EXHAUSTED)
        );
        assert_eq!(
            code_of(b"\0\0\0\0\0\0\0\x01\0\x01", None),
            Err(code::RESOURCE_EXHAUSTED),
            "a second message over the limit"
        );
    }

    #[test]
    fn foreign_responses_get_grpc_gos_codes() {
        for (status, expected) in [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 14),
            (502, 14),
            (503, 14),
            (504, 14),
            (200, 2),
            (500, 2),
            (301, 2),
        ] {
            assert_eq!(http_status_code(status), expected, "{status}");
        }
        assert!(is_grpc_content_type(b"application/grpc"));
        assert!(is_grpc_content_type(b"application/grpc+proto"));
        assert!(is_grpc_content_type(b"application/grpc;charset=utf-8"));
        assert!(!is_grpc_content_type(b"application/grpcx"));
        assert!(!is_grpc_content_type(b"Application/grpc"));
        assert!(!is_grpc_content_type(b"text/plain"));
        assert_eq!(reset_code(h2::Reason::REFUSED_STREAM), 14);
        assert_eq!(reset_code(h2::Reason::CANCEL), 1);
        assert_eq!(reset_code(h2::Reason::NO_ERROR), 13);
        assert_eq!(reset_code(h2::Reason::ENHANCE_YOUR_CALM), 8);
        assert_eq!(reset_code(h2::Reason::INADEQUATE_SECURITY), 7);
        assert_eq!(reset_code(h2::Reason::HTTP_1_1_REQUIRED), 13);
        assert_eq!(reset_code(h2::Reason::from(0xff)), 2);
    }

    #[test]
    fn grpc_status_reads_as_go_parses_it() {
        assert_eq!(grpc_status(b"0"), Ok(0));
        assert_eq!(grpc_status(b"5"), Ok(5));
        assert_eq!(grpc_status(b"+5"), Ok(5));
        assert_eq!(grpc_status(b"-1"), Ok(u32::MAX));
        for bad in [&b""[..], b" 5", b"5x", b"2147483648", b"\xff"] {
            assert_eq!(grpc_status(bad).map_err(|s| s.code), Err(13), "{bad:?}");
        }
    }
}
