//! The query, built with the `domain` crate as miekg/dns builds
//! blackbox_exporter's (one question, the RD bit as configured, no EDNS, no
//! compression), and the response, read whole as miekg reads a message:
//! the header with `domain`, the records by [`records`]' rules.
//!
//! miekg's message rules, followed here: a message shorter than its 12-byte
//! header is an error; one that ends right after the header has empty
//! sections; a question the header counts but the message lacks is an error,
//! while records it counts but the message lacks are dropped without one
//! (the counts reported are those of the records read); a record that does
//! not end where its length says fails the message; an OPT record in the
//! additional section extends the rcode; a TSIG record last in the
//! additional section fails the message (blackbox_exporter has no key to
//! verify it with). Neither the QR bit, nor the opcode, nor the echoed
//! question, nor truncation (TC) is checked.

use domain::base::{
    iana::{Class, Rtype},
    Message, MessageBuilder, Name,
};

use super::records::{self, Error, Text};
use crate::config::DnsProbe;

const OPT: u16 = 41;
const TSIG: u16 = 250;
const HEADER: usize = 12;

/// The query message for `config` with `id`; `stream` frames it for TCP
/// with the two-byte length (RFC 1035 4.2.2).
pub(super) fn query(config: &DnsProbe, id: u16, stream: bool) -> Result<Vec<u8>, String> {
    let name = Name::from_octets(config.query_wire.clone())
        .map_err(|e| format!("query name {:?}: {e}", config.query_name))?;
    let question = (
        &name,
        Rtype::from_int(config.query_type),
        Class::from_int(config.query_class),
    );
    let fail = |e: domain::base::message_builder::PushError| format!("building the query: {e}");
    if stream {
        let mut builder = MessageBuilder::new_stream_vec();
        builder.header_mut().set_id(id);
        builder.header_mut().set_rd(config.recursion_desired);
        let mut builder = builder.question();
        builder.push(question).map_err(fail)?;
        Ok(builder.finish().as_stream_slice().to_vec())
    } else {
        let mut builder = MessageBuilder::new_vec();
        builder.header_mut().set_id(id);
        builder.header_mut().set_rd(config.recursion_desired);
        let mut builder = builder.question();
        builder.push(question).map_err(fail)?;
        Ok(builder.finish())
    }
}

/// A response as miekg/dns has read it.
#[derive(Debug, Clone)]
pub(super) struct Response {
    /// The message ID.
    pub(super) id: u16,
    /// The rcode, extended by an OPT record (12 bits).
    pub(super) rcode: u16,
    /// Where each section (answer, authority, additional) starts, and how
    /// many records of it were read.
    pub(super) sections: [(usize, usize); 3],
    /// The serial of the last SOA record of the answer section.
    pub(super) serial: Option<u32>,
}

/// Reads `msg` whole, checking every record; no text is made.
pub(super) fn read(msg: &[u8]) -> Result<Response, Error> {
    let message =
        Message::from_slice(msg).map_err(|_| Error::Malformed("shorter than a DNS header"))?;
    let header = message.header();
    let counts = message.header_counts();
    let mut response = Response {
        id: header.id(),
        rcode: u16::from(header.rcode().to_int()),
        sections: [(msg.len(), 0); 3],
        serial: None,
    };
    let mut off = HEADER;
    if off == msg.len() {
        return Ok(response);
    }
    for _ in 0..counts.qdcount() {
        off = question(msg, off)?;
    }
    let mut sink = Text::discarding();
    let mut opt_ttl = None;
    let mut last_additional = None;
    let sizes = [counts.ancount(), counts.nscount(), counts.arcount()];
    for (section, count) in sizes.into_iter().enumerate() {
        response.sections[section].0 = off;
        for _ in 0..count {
            let Some(record) = records::record(msg, off, &mut sink)? else {
                break;
            };
            off = record.end;
            response.sections[section].1 += 1;
            match section {
                0 if record.serial.is_some() => response.serial = record.serial,
                2 => {
                    if record.rtype == OPT {
                        opt_ttl = Some(record.ttl);
                    }
                    last_additional = Some(record.rtype);
                }
                _ => {}
            }
        }
    }
    if let Some(ttl) = opt_ttl {
        response.rcode |= ((ttl >> 24) as u16) << 4;
    }
    if last_additional == Some(TSIG) {
        return Err(Error::Malformed("TSIG record, and no secret to verify it"));
    }
    Ok(response)
}

/// miekg's `unpackQuestion`: a name, then type and class unless the message
/// ends first.
fn question(msg: &[u8], off: usize) -> Result<usize, Error> {
    let mut off = records::skip_name(msg, off)?;
    for _ in 0..2 {
        if off == msg.len() {
            return Ok(off);
        }
        if off + 2 > msg.len() {
            return Err(Error::Malformed("bad question"));
        }
        off += 2;
    }
    Ok(off)
}

/// Calls `each` with the text of every record of `section` (as [`read`]
/// found it) in turn.
pub(super) fn texts(
    msg: &[u8],
    section: (usize, usize),
    text: &mut Text,
    mut each: impl FnMut(&[u8]),
) -> Result<(), Error> {
    let (mut off, count) = section;
    for _ in 0..count {
        text.clear();
        match records::record(msg, off, text)? {
            Some(record) => off = record.end,
            None => break,
        }
        each(text.as_bytes());
    }
    Ok(())
}

/// A DNS response as blackbox_exporter's prober sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseText {
    /// The message ID.
    pub id: u16,
    /// The rcode, with an OPT record's extension.
    pub rcode: u16,
    /// Each record's text as miekg/dns prints it: answer, authority and
    /// additional sections.
    pub sections: [Vec<Vec<u8>>; 3],
    /// The record counts the prober reports, from the pass that checks the
    /// message (which makes no text).
    pub counts: [usize; 3],
    /// The serial of the answer section's last SOA record.
    pub serial: Option<u32>,
}

/// Reads a DNS response as blackbox_exporter 0.28 (miekg/dns v1.1.68) reads
/// it and prints every record; `Err` says why miekg would refuse it (or
/// that a record's text passes lookout's bound). For tests and fuzzing.
pub fn read_response(msg: &[u8]) -> Result<ResponseText, String> {
    let response = read(msg).map_err(|e| e.to_string())?;
    let mut text = Text::keeping();
    let mut sections: [Vec<Vec<u8>>; 3] = Default::default();
    for (records, section) in sections.iter_mut().zip(response.sections) {
        texts(msg, section, &mut text, |t| records.push(t.to_vec())).map_err(|e| e.to_string())?;
    }
    Ok(ResponseText {
        id: response.id,
        rcode: response.rcode,
        sections,
        counts: response.sections.map(|(_, count)| count),
        serial: response.serial,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A name from dotted text (no escapes).
    pub(crate) fn name(text: &str) -> Vec<u8> {
        let mut wire = Vec::new();
        for label in text.split('.').filter(|l| !l.is_empty()) {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
        wire
    }

    pub(crate) fn rr(owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut wire = owner.to_vec();
        wire.extend_from_slice(&rtype.to_be_bytes());
        wire.extend_from_slice(&class.to_be_bytes());
        wire.extend_from_slice(&ttl.to_be_bytes());
        wire.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        wire.extend_from_slice(rdata);
        wire
    }

    /// A response: header with these counts, then `body` as it is.
    pub(crate) fn message(id: u16, rcode: u8, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
        let mut wire = id.to_be_bytes().to_vec();
        wire.extend_from_slice(&[0x81, 0x80 | rcode]);
        for count in counts {
            wire.extend_from_slice(&count.to_be_bytes());
        }
        wire.extend_from_slice(body);
        wire
    }

    fn question() -> Vec<u8> {
        let mut wire = name("example.com");
        wire.extend_from_slice(&[0, 1, 0, 1]);
        wire
    }

    fn texts(msg: &[u8]) -> Vec<String> {
        let response = read_response(msg).unwrap();
        response
            .sections
            .iter()
            .flatten()
            .map(|t| String::from_utf8(t.clone()).unwrap())
            .collect()
    }

    #[test]
    fn the_query_is_what_miekg_sends() {
        let config: DnsProbe = crate::config::Config::parse(
            "modules:\n  m:\n    prober: dns\n    dns: {query_name: Example.com, query_type: MX, query_class: CH, recursion_desired: false}\n",
            "t.yml",
            std::path::Path::new("."),
        )
        .unwrap()
        .modules
        .remove("m")
        .unwrap()
        .dns;
        let udp = query(&config, 0xbeef, false).unwrap();
        assert_eq!(
            udp,
            [
                &[0xbe, 0xef, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
                b"\x07Example\x03com\x00",
                &[0, 15, 0, 3]
            ]
            .concat()
        );
        let tcp = query(&config, 0xbeef, true).unwrap();
        assert_eq!(tcp[..2], (udp.len() as u16).to_be_bytes());
        assert_eq!(tcp[2..], udp[..]);
        let mut config = config;
        config.recursion_desired = true;
        assert_eq!(query(&config, 1, false).unwrap()[2], 1, "RD");
    }

    #[test]
    fn counts_are_those_of_the_records_read() {
        let a = rr(&name("example.com"), 1, 1, 60, &[192, 0, 2, 1]);
        // Three answers claimed, one present, the message ends on its boundary.
        let body = [question(), a.clone()].concat();
        let response = read(&message(7, 0, [1, 3, 2, 1], &body)).unwrap();
        assert_eq!(response.id, 7);
        assert_eq!(response.sections.map(|s| s.1), [1, 0, 0]);
        // Cut inside a record: the message fails.
        let cut = &message(7, 0, [1, 2, 0, 0], &[question(), a.clone(), a].concat())[..50];
        assert!(read(cut).is_err());
        // A question the header counts but the message lacks fails it.
        assert!(read(&message(7, 0, [2, 0, 0, 0], &question())).is_err());
        // A header alone is a message with nothing in it.
        let empty = read(&message(7, 5, [1, 1, 1, 1], &[])).unwrap();
        assert_eq!((empty.rcode, empty.sections.map(|s| s.1)), (5, [0, 0, 0]));
        assert!(read(&[0; 11]).is_err());
    }

    #[test]
    fn opt_extends_the_rcode_and_a_last_tsig_fails_the_message() {
        let opt = rr(&[0], 41, 1232, 0x0100_0000, &[]);
        let body = [question(), opt.clone()].concat();
        let response = read(&message(1, 0, [1, 0, 0, 1], &body)).unwrap();
        assert_eq!(response.rcode, 16, "BADVERS/BADSIG");
        let tsig = rr(&name("key"), 250, 255, 0, &[]);
        let last = [question(), opt.clone(), tsig.clone()].concat();
        assert!(read(&message(1, 0, [1, 0, 0, 2], &last)).is_err());
        let not_last = [question(), tsig, opt].concat();
        assert!(read(&message(1, 0, [1, 0, 0, 2], &not_last)).is_ok());
    }

    #[test]
    fn compression_pointers_follow_miekgs_rules() {
        // A forward pointer: miekg follows it, RFC 1035 or not.
        let mut body = question();
        let owner_at = 12 + body.len();
        let target_at = owner_at + 2 + 10 + 4;
        body.extend_from_slice(&[0xC0 | (target_at >> 8) as u8, target_at as u8]);
        body.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1]);
        body.extend_from_slice(&name("fwd.example"));
        let msg = message(1, 0, [1, 1, 0, 0], &body);
        assert_eq!(texts(&msg), ["fwd.example.\t5\tIN\tA\t10.0.0.1"]);
        // A pointer to itself loops until miekg's limit of pointers.
        let mut body = question();
        let at = 12 + body.len();
        body.extend_from_slice(&[0xC0 | (at >> 8) as u8, at as u8]);
        body.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1]);
        let err = read_response(&message(1, 0, [1, 1, 0, 0], &body)).unwrap_err();
        assert!(err.contains("too many compression pointers"), "{err}");
    }
}
