//! Resource records read as miekg/dns reads them and printed as its
//! `RR.String()` prints them: the text blackbox_exporter's `validate_*_rrs`
//! regexps see.
//!
//! miekg's reading rules are followed to the letter, because they decide
//! whether a probe passes: compression pointers may point anywhere (forward
//! too), at most 126 of them per name; a name inside rdata may only point
//! into the message up to the end of that rdata; rdata that ends between two
//! fields leaves the rest at their zero values (an MX of 2 bytes is `10 `);
//! rdata longer than its fields is "bad rdlength"; a type miekg does not know
//! prints in RFC 3597's generic form. The `domain` crate reads differently
//! (no forward pointers, no partial rdata), so records are read here, with
//! bounds checks on every access and no recursion.
//!
//! Text is made only for records the regexps look at, one record at a time,
//! and at most [`MAX_TEXT`] bytes of it: pointers can make a few bytes of
//! wire print as kilobytes, and a record whose text would be longer fails the
//! probe instead (a difference from blackbox_exporter, which has no bound).

use std::fmt;

use base64::Engine as _;

use crate::config::{CLASSES, TYPES};

/// The longest text of one record made for the regexps: any record of 64 KiB
/// printed in hex fits.
pub(super) const MAX_TEXT: usize = 128 << 10;

/// Why a record could not be read, or printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Error {
    /// miekg/dns refuses the message (the query fails), saying this.
    Malformed(&'static str),
    /// The record's text would pass [`MAX_TEXT`].
    TooLong,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed response: {why}"),
            Self::TooLong => write!(f, "a record's text is longer than {MAX_TEXT} bytes"),
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

fn short(what: &'static str) -> Error {
    Error::Malformed(what)
}

/// A record's text, or a sink that keeps nothing (reading a message to
/// check it makes no text).
#[derive(Debug)]
pub(super) struct Text {
    buf: Vec<u8>,
    keep: bool,
}

impl Text {
    /// Text that is kept, up to [`MAX_TEXT`] bytes.
    pub(super) fn keeping() -> Self {
        Self {
            buf: Vec::new(),
            keep: true,
        }
    }

    /// A sink: records are read and checked, nothing is printed.
    pub(super) fn discarding() -> Self {
        Self {
            buf: Vec::new(),
            keep: false,
        }
    }

    /// The text so far.
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Empties the text, keeping its allocation.
    pub(super) fn clear(&mut self) {
        self.buf.clear();
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        if !self.keep {
            return Ok(());
        }
        let len = self.buf.len() + bytes.len();
        if len > MAX_TEXT {
            return Err(Error::TooLong);
        }
        if self.buf.capacity() < len {
            // Grow as a Vec does, never past the bound.
            let target = len.max(self.buf.capacity() * 2).min(MAX_TEXT);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn byte(&mut self, byte: u8) -> Result<()> {
        self.put(&[byte])
    }

    fn str(&mut self, text: &str) -> Result<()> {
        self.put(text.as_bytes())
    }

    /// Formatted text (nothing is formatted for a sink).
    fn fmt(&mut self, args: fmt::Arguments<'_>) -> Result<()> {
        if !self.keep {
            return Ok(());
        }
        fmt::Write::write_fmt(self, args).map_err(|_| Error::TooLong)
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.put(text.as_bytes()).map_err(|_| fmt::Error)
    }
}

macro_rules! w {
    ($text:expr, $($arg:tt)*) => { $text.fmt(format_args!($($arg)*)) };
}

/// What the message walk needs from a record besides its text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Record {
    /// Its type.
    pub(super) rtype: u16,
    /// Its TTL (an OPT record carries the extended rcode there).
    pub(super) ttl: u32,
    /// An SOA record's serial (0 when its rdata stops before it).
    pub(super) serial: Option<u32>,
    /// Where the next record starts.
    pub(super) end: usize,
}

const OPT: u16 = 41;
const SOA: u16 = 6;

/// Reads the record at `off` of `msg` into `text` (miekg's `UnpackRR` and
/// `String`). `None` at the end of the message: miekg stops there whatever
/// the header's counts say.
pub(super) fn record(msg: &[u8], off: usize, text: &mut Text) -> Result<Option<Record>> {
    if off == msg.len() {
        return Ok(None);
    }
    let mut owner = if text.keep {
        Text::keeping()
    } else {
        Text::discarding()
    };
    let mut r = Reader::new(msg, off);
    r.name(&mut owner)?;
    let rtype = r.u16()?;
    let class = r.u16()?;
    let ttl = r.u32()?;
    let rdlength = usize::from(r.u16()?);
    let end = r.pos + rdlength;
    if end > msg.len() {
        return Err(short("overflowing header size"));
    }
    // Names in rdata point into the message up to the rdata's end, as the
    // message miekg hands the rdata reader is cut there.
    let mut rd = Reader::new(&msg[..end], r.pos);
    rd.done = rdlength == 0;
    let mut serial = None;
    if known(rtype) {
        match rtype {
            OPT => {}
            10 | 249 => text.byte(b';')?,
            250 => text.str("\n;; TSIG PSEUDOSECTION:\n; ")?,
            _ => {}
        }
        if rtype != OPT {
            text.put(owner.as_bytes())?;
            w!(text, "\t{ttl}\t")?;
            class_name(text, class)?;
            text.byte(b'\t')?;
            type_name(text, rtype)?;
            text.byte(b'\t')?;
        }
        rdata(rtype, class, ttl, &mut rd, text, &mut serial)?;
    } else {
        // RFC 3597's generic form, class and type as numbers.
        text.put(owner.as_bytes())?;
        w!(text, "\t{ttl}\tCLASS{class}\tTYPE{rtype}\t")?;
        let data = rd.rest();
        w!(text, "\\# {} ", data.len())?;
        hex(text, data, false)?;
    }
    if rd.pos != end {
        return Err(short("bad rdlength"));
    }
    Ok(Some(Record {
        rtype,
        ttl,
        serial: (rtype == SOA).then(|| serial.unwrap_or(0)),
        end,
    }))
}

/// The types miekg/dns v1.1.68 reads into a struct of their own
/// (`TypeToRR`); any other prints in the generic form.
fn known(rtype: u16) -> bool {
    matches!(
        rtype,
        1..=10
            | 12..=21
            | 23..=33
            | 35..=37
            | 39
            | 41..=53
            | 55..=65
            | 99..=102
            | 104..=109
            | 128
            | 249
            | 250
            | 255..=258
            | 260
            | 261
            | 32768
            | 32769
    )
}

/// miekg's `Type.String()`: the mnemonic, or `TYPE<n>`.
fn type_name(text: &mut Text, rtype: u16) -> Result<()> {
    match TYPES.iter().find(|(code, _)| *code == rtype) {
        Some((_, name)) => text.str(name),
        None => w!(text, "TYPE{rtype}"),
    }
}

/// miekg's `Class.String()`: a mnemonic unless it is also a type's (ANY).
fn class_name(text: &mut Text, class: u16) -> Result<()> {
    match CLASSES.iter().find(|(code, _)| *code == class) {
        Some((_, name)) if class != 255 => text.str(name),
        _ => w!(text, "CLASS{class}"),
    }
}

/// One record's rdata, field by field as miekg's generated `unpack` reads
/// it; `rd.stop()` is where miekg returns early when the rdata has ended.
fn rdata(
    rtype: u16,
    class: u16,
    ttl: u32,
    rd: &mut Reader<'_>,
    t: &mut Text,
    serial: &mut Option<u32>,
) -> Result<()> {
    match rtype {
        // A
        1 => {
            if let Some(a) = rd.ip::<4>()? {
                ip(t, &a)?;
            }
        }
        // NS MD MF CNAME MB MG MR PTR NSAP-PTR DNAME
        2..=5 | 7..=9 | 12 | 23 | 39 => rd.name(t)?,
        // SOA
        6 => {
            rd.name(t)?;
            rd.stop();
            t.byte(b' ')?;
            rd.name(t)?;
            rd.stop();
            let value = rd.u32()?;
            *serial = Some(value);
            w!(t, " {value}")?;
            for _ in 0..4 {
                rd.stop();
                w!(t, " {}", rd.u32()?)?;
            }
        }
        // NULL: no presentation format, the bytes as they are.
        10 => {
            let data = rd.rest();
            t.put(data)?;
        }
        // HINFO ISDN
        13 | 20 => {
            let first = rd.string()?;
            rd.stop();
            let second = rd.string()?;
            quoted(t, first)?;
            t.byte(b' ')?;
            quoted(t, second)?;
        }
        // MINFO RP TALINK
        14 | 17 | 58 => {
            rd.name(t)?;
            rd.stop();
            t.byte(b' ')?;
            rd.name(t)?;
        }
        // MX AFSDB RT KX LP
        15 | 18 | 21 | 36 | 107 => {
            w!(t, "{} ", rd.u16()?)?;
            rd.stop();
            rd.name(t)?;
        }
        // TXT NINFO SPF AVC RESINFO
        16 | 56 | 99 | 258 | 261 => {
            let mut first = true;
            while !rd.done && rd.pos < rd.msg.len() {
                let string = rd.string()?;
                if !first {
                    t.byte(b' ')?;
                }
                first = false;
                quoted(t, string)?;
            }
        }
        // X25
        19 => {
            let string = rd.string()?;
            escaped(t, string)?;
        }
        // SIG RRSIG
        24 | 46 => {
            type_name(t, rd.u16()?)?;
            rd.stop();
            w!(t, " {}", rd.u8()?)?;
            rd.stop();
            w!(t, " {}", rd.u8()?)?;
            rd.stop();
            w!(t, " {}", rd.u32()?)?;
            rd.stop();
            t.byte(b' ')?;
            timestamp(t, i64::from(rd.u32()?))?;
            rd.stop();
            t.byte(b' ')?;
            timestamp(t, i64::from(rd.u32()?))?;
            rd.stop();
            w!(t, " {} ", rd.u16()?)?;
            rd.stop();
            rd.name(t)?;
            rd.stop();
            t.byte(b' ')?;
            base64(t, rd.rest())?;
        }
        // KEY DNSKEY RKEY CDNSKEY
        25 | 48 | 57 | 60 => {
            w!(t, "{}", rd.u16()?)?;
            rd.stop();
            w!(t, " {}", rd.u8()?)?;
            rd.stop();
            w!(t, " {} ", rd.u8()?)?;
            rd.stop();
            base64(t, rd.rest())?;
        }
        // PX
        26 => {
            w!(t, "{} ", rd.u16()?)?;
            rd.stop();
            rd.name(t)?;
            rd.stop();
            t.byte(b' ')?;
            rd.name(t)?;
        }
        // GPOS
        27 => {
            for i in 0..3 {
                if i > 0 {
                    rd.stop();
                    t.byte(b' ')?;
                }
                let string = rd.string()?;
                escaped(t, string)?;
            }
        }
        // AAAA: an IPv4-mapped address keeps its prefix (miekg v1.1.57).
        28 => {
            if let Some(a) = rd.ip::<16>()? {
                if is_mapped(&a) {
                    t.str("::ffff:")?;
                }
                ip(t, &a)?;
            }
        }
        // LOC
        29 => loc(rd, t)?,
        // NXT NSEC
        30 | 47 => {
            rd.name(t)?;
            rd.stop();
            rd.type_bitmap(t)?;
        }
        // EID NIMLOC
        31 | 32 => hex(t, rd.rest(), true)?,
        // SRV
        33 => {
            w!(t, "{}", rd.u16()?)?;
            rd.stop();
            w!(t, " {}", rd.u16()?)?;
            rd.stop();
            w!(t, " {} ", rd.u16()?)?;
            rd.stop();
            rd.name(t)?;
        }
        // NAPTR
        35 => {
            w!(t, "{}", rd.u16()?)?;
            rd.stop();
            w!(t, " {}", rd.u16()?)?;
            for _ in 0..3 {
                rd.stop();
                let string = rd.string()?;
                t.str(" \"")?;
                escaped(t, string)?;
                t.byte(b'"')?;
            }
            rd.stop();
            t.byte(b' ')?;
            rd.name(t)?;
        }
        // CERT
        37 => {
            let kind = rd.u16()?;
            rd.stop();
            let tag = rd.u16()?;
            rd.stop();
            let algorithm = rd.u8()?;
            rd.stop();
            match CERT_TYPES.iter().find(|(code, _)| *code == kind) {
                Some((_, name)) => t.str(name)?,
                None => w!(t, "{kind}")?,
            }
            w!(t, " {tag} ")?;
            algorithm_name(t, algorithm)?;
            t.byte(b' ')?;
            base64(t, rd.rest())?;
        }
        // OPT: EDNS, printed as dig's pseudo-section.
        41 => opt(class, ttl, rd, t)?,
        // APL
        42 => apl(rd, t)?,
        // DS CDS TA DLV
        43 | 59 | 32768 | 32769 => {
            w!(t, "{}", rd.u16()?)?;
            rd.stop();
            w!(t, " {}", rd.u8()?)?;
            rd.stop();
            w!(t, " {} ", rd.u8()?)?;
            rd.stop();
            hex(t, rd.rest(), true)?;
        }
        // SSHFP
        44 => {
            w!(t, "{}", rd.u8()?)?;
            rd.stop();
            w!(t, " {} ", rd.u8()?)?;
            rd.stop();
            hex(t, rd.rest(), true)?;
        }
        // IPSECKEY
        45 => {
            let precedence = rd.u8()?;
            rd.stop();
            let kind = rd.u8()?;
            rd.stop();
            let algorithm = rd.u8()?;
            rd.stop();
            w!(t, "{precedence} {kind} {algorithm} ")?;
            gateway(rd, t, kind, kind)?;
            rd.stop();
            t.byte(b' ')?;
            base64(t, rd.rest())?;
        }
        // DHCID OPENPGPKEY
        49 | 61 => base64(t, rd.rest())?,
        // NSEC3 NSEC3PARAM
        50 | 51 => {
            w!(t, "{}", rd.u8()?)?;
            rd.stop();
            w!(t, " {}", rd.u8()?)?;
            rd.stop();
            w!(t, " {} ", rd.u16()?)?;
            rd.stop();
            let salt_length = rd.u8()?;
            rd.stop();
            let salt = rd.sized(usize::from(salt_length))?;
            if salt.is_empty() {
                t.byte(b'-')?;
            } else {
                hex(t, salt, true)?;
            }
            if rtype == 50 {
                let hash_length = rd.u8()?;
                rd.stop();
                let next = rd.sized(usize::from(hash_length))?;
                t.byte(b' ')?;
                base32hex(t, next)?;
                rd.type_bitmap(t)?;
            }
        }
        // TLSA SMIMEA
        52 | 53 => {
            w!(t, "{}", rd.u8()?)?;
            rd.stop();
            w!(t, " {}", rd.u8()?)?;
            rd.stop();
            w!(t, " {} ", rd.u8()?)?;
            rd.stop();
            let data = rd.rest();
            if rtype == 53 {
                // miekg splits SMIMEA's hex every 1024 characters.
                for (i, chunk) in data.chunks(512).enumerate() {
                    if i > 0 {
                        t.byte(b' ')?;
                    }
                    hex(t, chunk, false)?;
                }
            } else {
                hex(t, data, false)?;
            }
        }
        // HIP
        55 => {
            let hit_length = rd.u8()?;
            rd.stop();
            let algorithm = rd.u8()?;
            rd.stop();
            let key_length = rd.u16()?;
            rd.stop();
            let hit = rd.sized(usize::from(hit_length))?;
            let key = rd.sized(usize::from(key_length))?;
            w!(t, "{algorithm} ")?;
            hex(t, hit, false)?;
            t.byte(b' ')?;
            base64(t, key)?;
            if !rd.done {
                while rd.pos < rd.msg.len() {
                    t.byte(b' ')?;
                    rd.name(t)?;
                }
            }
        }
        // CSYNC
        62 => {
            w!(t, "{}", rd.u32()?)?;
            rd.stop();
            w!(t, " {}", rd.u16()?)?;
            rd.stop();
            rd.type_bitmap(t)?;
        }
        // ZONEMD
        63 => {
            w!(t, "{}", rd.u32()?)?;
            rd.stop();
            w!(t, " {}", rd.u8()?)?;
            rd.stop();
            w!(t, " {} ", rd.u8()?)?;
            rd.stop();
            hex(t, rd.rest(), false)?;
        }
        // SVCB HTTPS
        64 | 65 => {
            w!(t, "{} ", rd.u16()?)?;
            rd.stop();
            rd.name(t)?;
            rd.stop();
            svcb_params(rd, t)?;
        }
        // UINFO
        100 => {
            let string = rd.string()?;
            quoted(t, string)?;
        }
        // UID GID
        101 | 102 => w!(t, "{}", rd.u32()?)?,
        // NID L64
        104 | 106 => {
            w!(t, "{}", rd.u16()?)?;
            rd.stop();
            let node = rd.u64()?;
            let digits = if rtype == 104 {
                format!("{node:016x}")
            } else {
                format!("{node:016X}")
            };
            w!(
                t,
                " {}:{}:{}:{}",
                &digits[0..4],
                &digits[4..8],
                &digits[8..12],
                &digits[12..16]
            )?;
        }
        // L32
        105 => {
            w!(t, "{}", rd.u16()?)?;
            rd.stop();
            if let Some(a) = rd.ip::<4>()? {
                t.byte(b' ')?;
                ip(t, &a)?;
            }
        }
        // EUI48 EUI64
        108 | 109 => {
            let bytes = if rtype == 108 { 6 } else { 8 };
            let value = rd.uint(bytes)?;
            for i in (0..bytes).rev() {
                let octet = (value >> (8 * i)) & 0xff;
                w!(t, "{octet:02x}")?;
                if i > 0 {
                    t.byte(b'-')?;
                }
            }
        }
        // TKEY (no presentation format)
        249 => {
            t.byte(b' ')?;
            rd.name(t)?;
            rd.stop();
            t.byte(b' ')?;
            timestamp(t, i64::from(rd.u32()?))?;
            rd.stop();
            t.byte(b' ')?;
            timestamp(t, i64::from(rd.u32()?))?;
            rd.stop();
            w!(t, " {}", rd.u16()?)?;
            rd.stop();
            w!(t, " {}", rd.u16()?)?;
            rd.stop();
            let key_size = rd.u16()?;
            rd.stop();
            w!(t, " {key_size} ")?;
            hex(t, rd.sized(usize::from(key_size))?, false)?;
            let other_length = rd.u16()?;
            rd.stop();
            w!(t, " {other_length} ")?;
            hex(t, rd.sized(usize::from(other_length))?, false)?;
        }
        // TSIG (no presentation format)
        250 => {
            t.byte(b' ')?;
            rd.name(t)?;
            rd.stop();
            t.byte(b' ')?;
            timestamp(t, rd.uint(6)? as i64)?;
            rd.stop();
            w!(t, " {}", rd.u16()?)?;
            rd.stop();
            let mac_size = rd.u16()?;
            rd.stop();
            w!(t, " {mac_size} ")?;
            hex(t, rd.sized(usize::from(mac_size))?, true)?;
            w!(t, " {}", rd.u16()?)?;
            rd.stop();
            w!(t, " {}", rd.u16()?)?;
            rd.stop();
            let other_length = rd.u16()?;
            rd.stop();
            w!(t, " {other_length} ")?;
            hex(t, rd.sized(usize::from(other_length))?, false)?;
        }
        // URI
        256 => {
            w!(t, "{}", rd.u16()?)?;
            rd.stop();
            w!(t, " {} ", rd.u16()?)?;
            rd.stop();
            octets(t, rd.rest())?;
        }
        // CAA
        257 => {
            w!(t, "{}", rd.u8()?)?;
            rd.stop();
            let tag = rd.string()?;
            rd.stop();
            t.byte(b' ')?;
            escaped(t, tag)?;
            t.byte(b' ')?;
            octets(t, rd.rest())?;
        }
        // AMTRELAY: the discovery bit shares the type's byte.
        260 => {
            let precedence = rd.u8()?;
            rd.stop();
            let kind = rd.u8()?;
            rd.stop();
            w!(
                t,
                "{precedence} {} {} ",
                u8::from(kind & 0x80 != 0),
                kind & 0x7f
            )?;
            gateway(rd, t, kind, kind & 0x7f)?;
        }
        // ANY NXNAME: no rdata.
        _ => {}
    }
    Ok(())
}

/// A bounds-checked reader over a record, miekg's `unpack*` helpers.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
    /// miekg returned early: every field from here is its zero value.
    done: bool,
}

impl<'a> Reader<'a> {
    fn new(msg: &'a [u8], pos: usize) -> Self {
        Self {
            msg,
            pos,
            done: false,
        }
    }

    /// miekg's `if off == len(msg) { return }` between two fields.
    fn stop(&mut self) {
        if self.pos == self.msg.len() {
            self.done = true;
        }
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8]> {
        let bytes = self
            .pos
            .checked_add(len)
            .and_then(|end| self.msg.get(self.pos..end))
            .ok_or(Error::Malformed(what))?;
        self.pos += len;
        Ok(bytes)
    }

    /// A big-endian unsigned integer of `len` bytes.
    fn uint(&mut self, len: usize) -> Result<u64> {
        if self.done {
            return Ok(0);
        }
        let bytes = self.take(len, "overflow unpacking an integer")?;
        Ok(bytes.iter().fold(0, |v, b| v << 8 | u64::from(*b)))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.uint(1)? as u8)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(self.uint(2)? as u16)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(self.uint(4)? as u32)
    }

    fn u64(&mut self) -> Result<u64> {
        self.uint(8)
    }

    /// An address of `N` bytes; `None` when the rdata ended before it.
    fn ip<const N: usize>(&mut self) -> Result<Option<[u8; N]>> {
        if self.done {
            return Ok(None);
        }
        let bytes = self.take(N, "overflow unpacking an address")?;
        Ok(bytes.try_into().ok())
    }

    /// A domain name, printed.
    fn name(&mut self, text: &mut Text) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.pos = name(self.msg, self.pos, text)?;
        Ok(())
    }

    /// A character-string's bytes (miekg's `unpackString`).
    fn string(&mut self) -> Result<&'a [u8]> {
        if self.done {
            return Ok(&[]);
        }
        let len = self.take(1, "overflow unpacking txt")?[0];
        self.take(usize::from(len), "overflow unpacking txt")
    }

    /// `len` bytes (miekg's sized hex and base64 fields).
    fn sized(&mut self, len: usize) -> Result<&'a [u8]> {
        if self.done {
            return Ok(&[]);
        }
        self.take(len, "overflow unpacking hex")
    }

    /// Whatever is left of the rdata.
    fn rest(&mut self) -> &'a [u8] {
        if self.done {
            return &[];
        }
        let rest = self.msg.get(self.pos..).unwrap_or_default();
        self.pos = self.msg.len();
        rest
    }

    /// An NSEC type bitmap (RFC 4034 4.1.2), each type printed after a space.
    fn type_bitmap(&mut self, t: &mut Text) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let mut last: Option<u8> = None;
        while self.pos < self.msg.len() {
            let head = self.take(2, "overflow unpacking NSEC(3)")?;
            let (window, length) = (head[0], usize::from(head[1]));
            if last.is_some_and(|last| window <= last) {
                return Err(short("out of order NSEC(3) block in type bitmap"));
            }
            if length == 0 {
                return Err(short("empty NSEC(3) block in type bitmap"));
            }
            if length > 32 {
                return Err(short("NSEC(3) block too long in type bitmap"));
            }
            let bits = self.take(length, "overflowing NSEC(3) block in type bitmap")?;
            for (i, byte) in bits.iter().enumerate() {
                for bit in 0..8 {
                    if byte & (0x80 >> bit) != 0 {
                        t.byte(b' ')?;
                        type_name(t, u16::from(window) << 8 | (i * 8 + bit) as u16)?;
                    }
                }
            }
            last = Some(window);
        }
        Ok(())
    }
}

/// miekg's `UnpackDomainName` from `off`, printing the name; returns where
/// the name ends at `off` (after its first pointer, if any).
fn name(msg: &[u8], mut off: usize, text: &mut Text) -> Result<usize> {
    const BUF: &str = "buffer size too small";
    let mut after = None;
    // Label octets plus their length bytes must stay below 255.
    let mut budget: i32 = 255;
    let mut pointers = 0;
    let mut empty = true;
    loop {
        let c = *msg.get(off).ok_or(Error::Malformed(BUF))?;
        off += 1;
        match c & 0xC0 {
            0x00 if c == 0 => break,
            0x00 => {
                let len = usize::from(c);
                let label = msg.get(off..off + len).ok_or(Error::Malformed(BUF))?;
                budget -= i32::from(c) + 1;
                if budget <= 0 {
                    return Err(short("domain name exceeded 255 wire-format octets"));
                }
                for &byte in label {
                    match byte {
                        b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                            text.put(&[b'\\', byte])?;
                        }
                        0x20..=0x7E => text.byte(byte)?,
                        _ => ddd(text, byte)?,
                    }
                }
                text.byte(b'.')?;
                empty = false;
                off += len;
            }
            0xC0 => {
                let low = *msg.get(off).ok_or(Error::Malformed(BUF))?;
                off += 1;
                if after.is_none() {
                    after = Some(off);
                }
                pointers += 1;
                // miekg's maxCompressionPointers.
                if pointers > 126 {
                    return Err(short("too many compression pointers"));
                }
                off = usize::from(c & 0x3F) << 8 | usize::from(low);
            }
            _ => return Err(short("bad rdata (reserved label type)")),
        }
    }
    if empty {
        text.byte(b'.')?;
    }
    Ok(after.unwrap_or(off))
}

/// `\DDD`, decimal.
fn ddd(text: &mut Text, byte: u8) -> Result<()> {
    w!(text, "\\{byte:03}")
}

/// A character-string's bytes as miekg prints them: `"` and `\` escaped,
/// unprintable bytes as `\DDD`.
fn escaped(text: &mut Text, bytes: &[u8]) -> Result<()> {
    for &byte in bytes {
        txt_byte(text, byte)?;
    }
    Ok(())
}

fn txt_byte(text: &mut Text, byte: u8) -> Result<()> {
    match byte {
        b'"' | b'\\' => text.put(&[b'\\', byte]),
        0x20..=0x7E => text.byte(byte),
        _ => ddd(text, byte),
    }
}

/// [`escaped`], in double quotes.
fn quoted(text: &mut Text, bytes: &[u8]) -> Result<()> {
    text.byte(b'"')?;
    escaped(text, bytes)?;
    text.byte(b'"')
}

/// miekg's `sprintTxtOctet` over raw bytes (CAA values, URI targets): the
/// bytes are first read as presentation text (`\X` is X, `\DDD` a byte, a
/// trailing `\` dropped, `\.` kept), then printed quoted.
fn octets(text: &mut Text, bytes: &[u8]) -> Result<()> {
    text.byte(b'"')?;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'.') {
            text.str("\\.")?;
            i += 2;
            continue;
        }
        if bytes[i] != b'\\' {
            txt_byte(text, bytes[i])?;
            i += 1;
            continue;
        }
        match bytes.len() - i {
            // A dangling backslash.
            1 => i += 1,
            2 | 3 => {
                txt_byte(text, bytes[i + 1])?;
                i += 2;
            }
            _ => {
                let digits = &bytes[i + 1..i + 4];
                if digits.iter().all(u8::is_ascii_digit) {
                    let value = digits
                        .iter()
                        .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
                    txt_byte(text, (value % 256) as u8)?;
                    i += 4;
                } else {
                    txt_byte(text, bytes[i + 1])?;
                    i += 2;
                }
            }
        }
    }
    text.byte(b'"')
}

fn hex(text: &mut Text, bytes: &[u8], upper: bool) -> Result<()> {
    if !text.keep {
        return Ok(());
    }
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    for &byte in bytes {
        text.put(&[
            digits[usize::from(byte >> 4)],
            digits[usize::from(byte & 15)],
        ])?;
    }
    Ok(())
}

fn base64(text: &mut Text, bytes: &[u8]) -> Result<()> {
    if !text.keep {
        return Ok(());
    }
    text.str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Base 32 with the extended hex alphabet, unpadded (NSEC3's next owner).
fn base32hex(text: &mut Text, bytes: &[u8]) -> Result<()> {
    const DIGITS: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    if !text.keep {
        return Ok(());
    }
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let value = block.iter().fold(0u64, |v, b| v << 8 | u64::from(*b));
        let digits = (chunk.len() * 8).div_ceil(5);
        for i in 0..digits {
            let index = (value >> (35 - 5 * i)) & 31;
            text.byte(DIGITS[index as usize])?;
        }
    }
    Ok(())
}

fn is_mapped(a: &[u8; 16]) -> bool {
    a[..10].iter().all(|b| *b == 0) && a[10] == 0xff && a[11] == 0xff
}

/// Go's `net.IP.String()`: dotted for 4 bytes and for IPv4-mapped IPv6,
/// RFC 5952 otherwise.
fn ip(text: &mut Text, bytes: &[u8]) -> Result<()> {
    match bytes.len() {
        4 => w!(text, "{}.{}.{}.{}", bytes[0], bytes[1], bytes[2], bytes[3]),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            if is_mapped(&octets) {
                ip(text, &octets[12..])
            } else {
                w!(text, "{}", std::net::Ipv6Addr::from(octets))
            }
        }
        _ => text.str("<nil>"),
    }
}

/// Seconds since 1970 as miekg prints RRSIG, TKEY and TSIG times:
/// `YYYYMMDDHHMMSS` in UTC.
fn timestamp(text: &mut Text, secs: i64) -> Result<()> {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    w!(
        text,
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// IPSECKEY's and AMTRELAY's gateway: read as `kind` says (AMTRELAY reads
/// with its discovery bit still set, and then reads nothing), printed as
/// `shown` says.
fn gateway(rd: &mut Reader<'_>, t: &mut Text, kind: u8, shown: u8) -> Result<()> {
    let mut address: Option<Vec<u8>> = None;
    let mut host = Text::keeping();
    if !rd.done {
        match kind {
            1 => address = rd.ip::<4>()?.map(|a| a.to_vec()),
            2 => address = rd.ip::<16>()?.map(|a| a.to_vec()),
            3 if t.keep => rd.name(&mut host)?,
            3 => rd.name(&mut Text::discarding())?,
            _ => {}
        }
    }
    match shown {
        1 | 2 => ip(t, address.as_deref().unwrap_or_default()),
        3 => t.put(host.as_bytes()),
        _ => t.byte(b'.'),
    }
}

/// LOC (RFC 1876), as miekg prints it (the version byte is not shown).
fn loc(rd: &mut Reader<'_>, t: &mut Text) -> Result<()> {
    const EQUATOR: u32 = 1 << 31;
    let _version = rd.u8()?;
    rd.stop();
    let size = rd.u8()?;
    rd.stop();
    let horizontal = rd.u8()?;
    rd.stop();
    let vertical = rd.u8()?;
    rd.stop();
    let latitude = rd.u32()?;
    rd.stop();
    let longitude = rd.u32()?;
    rd.stop();
    let altitude = rd.u32()?;
    for (value, positive, negative) in [(latitude, "N", "S"), (longitude, "E", "W")] {
        let (mut rest, side) = if value > EQUATOR {
            (value - EQUATOR, positive)
        } else {
            (EQUATOR - value, negative)
        };
        let degrees = rest / 3_600_000;
        rest %= 3_600_000;
        let minutes = rest / 60_000;
        rest %= 60_000;
        w!(
            t,
            "{degrees:02} {minutes:02} {:.3} {side} ",
            f64::from(rest) / 1000.0
        )?;
    }
    let meters = f64::from(altitude) / 100.0 - 100_000.0;
    if altitude % 100 != 0 {
        w!(t, "{meters:.2}m ")?;
    } else {
        w!(t, "{meters:.0}m ")?;
    }
    for (i, value) in [size, horizontal, vertical].into_iter().enumerate() {
        let (mantissa, exponent) = (value >> 4, value & 0x0f);
        if exponent < 2 {
            let cm = if exponent == 1 {
                mantissa * 10
            } else {
                mantissa
            };
            w!(t, "0.{cm:02}m")?;
        } else {
            w!(t, "{mantissa}")?;
            for _ in 2..exponent {
                t.byte(b'0')?;
            }
            t.byte(b'm')?;
        }
        if i < 2 {
            t.byte(b' ')?;
        }
    }
    Ok(())
}

/// APL (RFC 3123) prefixes, with miekg's checks.
fn apl(rd: &mut Reader<'_>, t: &mut Text) -> Result<()> {
    const APL: &str = "overflow unpacking APL prefix";
    if rd.done {
        return Ok(());
    }
    let mut first = true;
    while rd.pos < rd.msg.len() {
        let family = u16::from_be_bytes([rd.take(1, APL)?[0], rd.take(1, APL)?[0]]);
        let prefix = rd.take(1, APL)?[0];
        let length = rd.take(1, APL)?[0];
        let size = match family {
            1 => 4,
            2 => 16,
            _ => return Err(short("unrecognized APL address family")),
        };
        if usize::from(prefix) > 8 * size {
            return Err(short("APL prefix too long"));
        }
        let data_length = usize::from(length & 0x7f);
        if data_length > size {
            return Err(short("APL length too long"));
        }
        let data = rd.take(data_length, "overflow unpacking APL address")?;
        if data.last() == Some(&0) {
            return Err(short("extra APL address bits"));
        }
        let mut address = [0u8; 16];
        address[..data_length].copy_from_slice(data);
        if !first {
            t.byte(b' ')?;
        }
        first = false;
        if length & 0x80 != 0 {
            t.byte(b'!')?;
        }
        w!(t, "{family}:")?;
        if size == 16 && is_mapped(&address) {
            t.str("::ffff:")?;
        }
        ip(t, &address[..size])?;
        w!(t, "/{prefix}")?;
    }
    Ok(())
}

/// SVCB and HTTPS parameters (RFC 9460), as miekg reads and prints them.
fn svcb_params(rd: &mut Reader<'_>, t: &mut Text) -> Result<()> {
    const OVERFLOW: &str = "overflow unpacking SVCB";
    if rd.done {
        return Ok(());
    }
    let mut last: Option<u16> = None;
    while rd.pos < rd.msg.len() {
        let head = rd.take(4, OVERFLOW)?;
        let key = u16::from_be_bytes([head[0], head[1]]);
        let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = rd.take(length, OVERFLOW)?;
        if key == 65535 {
            return Err(short("bad SVCB key"));
        }
        let bad = |why| Err(short(why));
        // Checked before the order, as miekg unpacks before comparing.
        match key {
            0 if value.len() % 2 != 0 => return bad("bad svcbmandatory"),
            2 | 8 if !value.is_empty() => return bad("SVCB key must have no value"),
            3 if value.len() != 2 => return bad("bad svcbport"),
            4 if value.is_empty() || value.len() % 4 != 0 => return bad("bad svcbipv4hint"),
            6 if value.is_empty() || value.len() % 16 != 0 => return bad("bad svcbipv6hint"),
            6 if value
                .chunks(16)
                .any(|a| is_mapped(a.try_into().unwrap_or(&[0; 16]))) =>
            {
                return bad("bad svcbipv6hint: expected ipv6, got ipv4")
            }
            1 => {
                let mut i = 0;
                while i < value.len() {
                    i += 1 + usize::from(value[i]);
                }
                if i > value.len() {
                    return bad("bad svcbalpn: alpn array overflowing");
                }
            }
            _ => {}
        }
        if last.is_some_and(|last| key <= last) {
            return Err(short("SVCB keys not in strictly increasing order"));
        }
        last = Some(key);
        t.byte(b' ')?;
        svcb_key(t, key)?;
        t.str("=\"")?;
        match key {
            0 => {
                for (i, code) in value.chunks(2).enumerate() {
                    if i > 0 {
                        t.byte(b',')?;
                    }
                    svcb_key(t, u16::from_be_bytes([code[0], code[1]]))?;
                }
            }
            1 => {
                let mut i = 0;
                let mut first = true;
                while i < value.len() {
                    let length = usize::from(value[i]);
                    if !first {
                        t.byte(b',')?;
                    }
                    first = false;
                    for &byte in &value[i + 1..i + 1 + length] {
                        match byte {
                            b',' => t.str("\\\\\\044")?,
                            b'\\' => t.str("\\\\\\092")?,
                            b'"' | b';' | b' ' => t.put(&[b'\\', byte])?,
                            0x20..=0x7E => t.byte(byte)?,
                            _ => ddd(t, byte)?,
                        }
                    }
                    i += 1 + length;
                }
            }
            3 => w!(t, "{}", u16::from_be_bytes([value[0], value[1]]))?,
            4 | 6 => {
                for (i, address) in value.chunks(if key == 4 { 4 } else { 16 }).enumerate() {
                    if i > 0 {
                        t.byte(b',')?;
                    }
                    ip(t, address)?;
                }
            }
            5 => base64(t, value)?,
            2 | 8 => {}
            _ => {
                for &byte in value {
                    match byte {
                        b'"' | b';' | b' ' | b'\\' => t.put(&[b'\\', byte])?,
                        0x20..=0x7E => t.byte(byte)?,
                        _ => ddd(t, byte)?,
                    }
                }
            }
        }
        t.byte(b'"')?;
    }
    Ok(())
}

fn svcb_key(t: &mut Text, key: u16) -> Result<()> {
    const KEYS: [&str; 9] = [
        "mandatory",
        "alpn",
        "no-default-alpn",
        "port",
        "ipv4hint",
        "ech",
        "ipv6hint",
        "dohpath",
        "ohttp",
    ];
    match KEYS.get(usize::from(key)) {
        Some(name) => t.str(name),
        None if key == 65535 => Ok(()),
        None => w!(t, "key{key}"),
    }
}

/// OPT (RFC 6891): miekg prints a dig-style pseudo-section, not the record.
fn opt(udp: u16, ttl: u32, rd: &mut Reader<'_>, t: &mut Text) -> Result<()> {
    const OVERFLOW: &str = "overflow unpacking opt";
    // Read first: an option miekg cannot read fails the message.
    let mut options = Vec::new();
    if !rd.done {
        while rd.pos < rd.msg.len() {
            let head = rd.take(4, OVERFLOW)?;
            let code = u16::from_be_bytes([head[0], head[1]]);
            let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let data = rd.take(length, OVERFLOW)?;
            check_option(code, data)?;
            options.push((code, data));
        }
    }
    w!(
        t,
        "\n;; OPT PSEUDOSECTION:\n; EDNS: version {}; ",
        (ttl >> 16) & 0xff
    )?;
    t.str(match (ttl & 0x8000 != 0, ttl & 0x4000 != 0) {
        (true, true) => "flags: do, co; ",
        (true, false) => "flags: do; ",
        _ => "flags:; ",
    })?;
    if ttl & 0x7FFF != 0 {
        w!(t, "MBZ: 0x{:04x}, ", ttl & 0x7FFF)?;
    }
    w!(t, "udp: {udp}")?;
    for (code, data) in options {
        edns_option(t, code, data)?;
    }
    Ok(())
}

/// The checks miekg's option readers make.
fn check_option(code: u16, data: &[u8]) -> Result<()> {
    let fail = |why| Err(short(why));
    match code {
        1 if data.len() < 18 => fail("bad EDNS0 LLQ option"),
        2 if data.len() != 4 && data.len() != 8 => fail("bad EDNS0 UL option"),
        8 => {
            let [f0, f1, netmask, scope, ..] = *data else {
                return fail("bad EDNS0 SUBNET option");
            };
            match (u16::from_be_bytes([f0, f1]), netmask, scope) {
                (0, 0, _) => Ok(()),
                (1, n, s) if n <= 32 && s <= 32 => Ok(()),
                (2, n, s) if n <= 128 && s <= 128 => Ok(()),
                _ => fail("bad EDNS0 SUBNET option"),
            }
        }
        9 if !data.is_empty() && data.len() < 4 => fail("bad EDNS0 EXPIRE option"),
        11 if !data.is_empty() && data.len() != 2 => fail("bad EDNS0 TCP KEEPALIVE option"),
        15 if data.len() < 2 => fail("bad EDNS0 EDE option"),
        _ => Ok(()),
    }
}

fn edns_option(t: &mut Text, code: u16, data: &[u8]) -> Result<()> {
    match code {
        1 => {
            let field = |at: usize, len: usize| {
                data[at..at + len]
                    .iter()
                    .fold(0u64, |v, b| v << 8 | u64::from(*b))
            };
            w!(
                t,
                "\n; LONG LIVED QUERIES: {} {} {} {} {}",
                field(0, 2),
                field(2, 2),
                field(4, 2),
                field(6, 8),
                field(14, 4)
            )
        }
        2 => {
            let lease = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let key_lease = data
                .get(4..8)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            w!(t, "\n; UPDATE LEASE: {lease} {key_lease}")
        }
        3 => {
            t.str("\n; NSID: ")?;
            hex(t, data, false)?;
            // The identifier's bytes as they are, as dig shows them.
            t.str("  ")?;
            for &byte in data {
                t.put(&[b'(', byte, b')'])?;
            }
            Ok(())
        }
        4 => {
            t.str("\n; ESU: ")?;
            t.put(data)
        }
        5..=7 => {
            t.str(match code {
                5 => "\n; DNSSEC ALGORITHM UNDERSTOOD: ",
                6 => "\n; DS HASH UNDERSTOOD: ",
                _ => "\n; NSEC3 HASH UNDERSTOOD: ",
            })?;
            for &alg in data {
                t.byte(b' ')?;
                if code == 5 {
                    algorithm_name(t, alg)?;
                } else {
                    match HASHES.get(usize::from(alg).wrapping_sub(1)) {
                        Some(name) if alg > 0 => t.str(name)?,
                        _ => w!(t, "{alg}")?,
                    }
                }
            }
            Ok(())
        }
        8 => {
            t.str("\n; SUBNET: ")?;
            let family = u16::from_be_bytes([data[0], data[1]]);
            let mut address = [0u8; 16];
            match family {
                0 => t.str("0.0.0.0")?,
                1 => {
                    let len = data.len().saturating_sub(4).min(4);
                    address[..len].copy_from_slice(&data[4..4 + len]);
                    ip(t, &address[..4])?;
                }
                _ => {
                    let len = data.len().saturating_sub(4).min(16);
                    address[..len].copy_from_slice(&data[4..4 + len]);
                    if is_mapped(&address) {
                        ip(t, &address)?;
                    } else {
                        t.byte(b'[')?;
                        ip(t, &address)?;
                        t.byte(b']')?;
                    }
                }
            }
            w!(t, "/{}/{}", data[2], data[3])
        }
        9 => {
            t.str("\n; EXPIRE: ")?;
            match data.get(..4) {
                Some(b) => w!(t, "{}", u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                None => Ok(()),
            }
        }
        10 => {
            t.str("\n; COOKIE: ")?;
            hex(t, data, false)
        }
        11 => {
            t.str("\n; KEEPALIVE: use tcp keep-alive")?;
            match data {
                [a, b] if u16::from_be_bytes([*a, *b]) != 0 => {
                    // Go multiplies in 16 bits.
                    let timeout = u16::from_be_bytes([*a, *b]).wrapping_mul(100);
                    w!(t, ", timeout {timeout}ms")
                }
                _ => t.str(", timeout omitted"),
            }
        }
        12 => {
            t.str("\n; PADDING: ")?;
            hex(t, data, true)
        }
        15 => {
            let info = u16::from_be_bytes([data[0], data[1]]);
            w!(t, "\n; EDE: {info}")?;
            if let Some(name) = EDE.get(usize::from(info)) {
                w!(t, " ({name})")?;
            }
            t.str(": (")?;
            t.put(&data[2..])?;
            t.byte(b')')
        }
        _ => {
            w!(t, "\n; LOCAL OPT: {code}:0x")?;
            hex(t, data, false)
        }
    }
}

fn algorithm_name(t: &mut Text, algorithm: u8) -> Result<()> {
    match ALGORITHMS.iter().find(|(code, _)| *code == algorithm) {
        Some((_, name)) => t.str(name),
        None => w!(t, "{algorithm}"),
    }
}

/// miekg's `AlgorithmToString` (DNSSEC algorithms).
const ALGORITHMS: [(u8, &str); 16] = [
    (1, "RSAMD5"),
    (2, "DH"),
    (3, "DSA"),
    (5, "RSASHA1"),
    (6, "DSA-NSEC3-SHA1"),
    (7, "RSASHA1-NSEC3-SHA1"),
    (8, "RSASHA256"),
    (10, "RSASHA512"),
    (12, "ECC-GOST"),
    (13, "ECDSAP256SHA256"),
    (14, "ECDSAP384SHA384"),
    (15, "ED25519"),
    (16, "ED448"),
    (252, "INDIRECT"),
    (253, "PRIVATEDNS"),
    (254, "PRIVATEOID"),
];

/// miekg's `HashToString`, from 1.
const HASHES: [&str; 5] = ["SHA1", "SHA256", "GOST94", "SHA384", "SHA512"];

/// miekg's `CertTypeToString` (RFC 4398).
const CERT_TYPES: [(u16, &str); 10] = [
    (1, "PKIX"),
    (2, "SPKI"),
    (3, "PGP"),
    (4, "IPIX"),
    (5, "ISPKI"),
    (6, "IPGP"),
    (7, "ACPKIX"),
    (8, "IACPKIX"),
    (253, "URI"),
    (254, "OID"),
];

/// miekg's `ExtendedErrorCodeToString` (RFC 8914 and later), from 0.
const EDE: [&str; 31] = [
    "Other",
    "Unsupported DNSKEY Algorithm",
    "Unsupported DS Digest Type",
    "Stale Answer",
    "Forged Answer",
    "DNSSEC Indeterminate",
    "DNSSEC Bogus",
    "Signature Expired",
    "Signature Not Yet Valid",
    "DNSKEY Missing",
    "RRSIGs Missing",
    "No Zone Key Bit Set",
    "NSEC Missing",
    "Cached Error",
    "Not Ready",
    "Blocked",
    "Censored",
    "Filtered",
    "Prohibited",
    "Stale NXDOMAIN Answer",
    "Not Authoritative",
    "Not Supported",
    "No Reachable Authority",
    "Network Error",
    "Invalid Data",
    "Signature Expired Before Valid",
    "Too Early",
    "Unsupported NSEC3 Iterations Value",
    "Unable To Conform To Policy",
    "Synthesized",
    "Invalid Query Type",
];

/// Skips the name at `off` (a question's), with [`name`]'s checks.
pub(super) fn skip_name(msg: &[u8], off: usize) -> Result<usize> {
    name(msg, off, &mut Text::discarding())
}

#[cfg(test)]
mod tests {
    use super::super::message::{
        read_response,
        tests::{message, name, rr},
    };

    /// The text of one answer record of `rtype` with `rdata`.
    fn text(rtype: u16, rdata: &[u8]) -> Result<String, String> {
        let record = rr(&name("example.com"), rtype, 1, 300, rdata);
        let response = read_response(&message(1, 0, [0, 1, 0, 0], &record))?;
        let text = String::from_utf8_lossy(&response.sections[0][0]).into_owned();
        Ok(text
            .strip_prefix("example.com.\t300\tIN\t")
            .map(str::to_owned)
            .unwrap_or(text))
    }

    fn cstr(bytes: &[u8]) -> Vec<u8> {
        [&[bytes.len() as u8][..], bytes].concat()
    }

    #[test]
    fn records_print_as_miekg_prints_them() {
        let soa = [
            name("ns1.example.com"),
            name("hostmaster.example.com"),
            [2024010101u32, 7200, 3600, 1209600, u32::MAX]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect(),
        ]
        .concat();
        for (rtype, rdata, expected) in [
            (1, vec![93, 184, 216, 34], "A\t93.184.216.34"),
            (28, [&[0; 10][..], &[0xff, 0xff, 1, 2, 3, 4]].concat(), "AAAA\t::ffff:1.2.3.4"),
            (28, [&[0x20, 1, 0xd, 0xb8][..], &[0; 11], &[1]].concat(), "AAAA\t2001:db8::1"),
            (6, soa, "SOA\tns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 4294967295"),
            (15, [&[0, 10][..], &name("mail.example.com")].concat(), "MX\t10 mail.example.com."),
            (
                16,
                [cstr(b"v=spf1 -all"), cstr(b"say \"hi\"\\ ;x"), cstr(b"\x01\x7f\xff\xc3\xa9 tab\there")].concat(),
                "TXT\t\"v=spf1 -all\" \"say \\\"hi\\\"\\\\ ;x\" \"\\001\\127\\255\\195\\169 tab\\009here\"",
            ),
            (16, cstr(b""), "TXT\t\"\""),
            (33, [&[0, 10, 0, 60, 0x13, 0xc4][..], &name("sip.example.com")].concat(), "SRV\t10 60 5060 sip.example.com."),
            (
                257,
                [&[0][..], &cstr(b"issue"), b"a\\\\b\\.c\\065d\\"].concat(),
                "CAA\t0 issue \"a\\\\b\\.cAd\"",
            ),
            (43, vec![0x7b, 0x65, 8, 2, 0xcd, 0xe0], "DS\t31589 8 2 CDE0"),
            (52, vec![3, 1, 1, 0xab, 0xcd], "TLSA\t3 1 1 abcd"),
            (47, [name("a.example.com"), vec![0, 1, 0x40]].concat(), "NSEC\ta.example.com. A"),
            (
                65,
                [&[0, 1, 0][..], &[0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3'], &[0, 3, 0, 2, 0x20, 0xfb]].concat(),
                "HTTPS\t1 . alpn=\"h2,h3\" port=\"8443\"",
            ),
            (108, vec![0, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e], "EUI48\t00-1a-2b-3c-4d-5e"),
            (104, vec![0, 10, 0, 0x14, 0xab, 0xcd, 0xef, 0, 0, 1], "NID\t10 0014:abcd:ef00:0001"),
            (106, vec![0, 10, 0, 0x14, 0xab, 0xcd, 0xef, 0, 0, 1], "L64\t10 0014:ABCD:EF00:0001"),
            (42, vec![0, 1, 24, 3, 192, 168, 1, 0, 2, 32, 0x84, 0x20, 1, 0xd, 0xb8], "APL\t1:192.168.1.0/24 !2:2001:db8::/32"),
            (
                29,
                [&[0, 0x12, 0x16, 0x13][..], &(2u32.pow(31) + 187_200_000).to_be_bytes(), &(2u32.pow(31) - 14_400_000).to_be_bytes(), &10_001_000u32.to_be_bytes()].concat(),
                "LOC\t52 00 0.000 N 04 00 0.000 W 10m 1m 10000m 10m",
            ),
            // Rdata that stops between fields leaves the rest at zero.
            (15, vec![0, 10], "MX\t10 "),
            (15, vec![], "MX\t0 "),
            (6, vec![], "SOA\t  0 0 0 0 0"),
            (1, vec![], "A\t"),
            (65280, vec![0xde, 0xad], "example.com.\t300\tCLASS1\tTYPE65280\t\\# 2 dead"),
            (34, vec![], "example.com.\t300\tCLASS1\tTYPE34\t\\# 0 "),
        ] {
            assert_eq!(text(rtype, &rdata).unwrap(), expected, "type {rtype}");
        }
    }

    #[test]
    fn names_escape_as_miekg_escapes_them() {
        let owner = [
            &[3, b'a', b'.', b'b', 6][..],
            b"sp ace",
            &[2, 0, 200, 1, b'\\', 1, b'*'],
            &name("Example.COM"),
        ]
        .concat();
        let record = rr(&owner, 1, 3, 0, &[127, 0, 0, 1]);
        let response = read_response(&message(1, 0, [0, 0, 0, 1], &record)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&response.sections[2][0]),
            "a\\.b.sp\\ ace.\\000\\200.\\\\.*.Example.COM.\t0\tCH\tA\t127.0.0.1"
        );
    }

    #[test]
    fn malformed_rdata_fails_the_message() {
        for (rtype, rdata, why) in [
            (1, vec![1, 2, 3, 4, 5], "bad rdlength"),
            (1, vec![1, 2, 3], "overflow"),
            (255, vec![1], "bad rdlength"),
            (42, vec![0, 1, 24, 3, 192, 168, 0], "extra APL address bits"),
            (
                47,
                [name("a"), vec![1, 1, 0x40, 0, 1, 0x40]].concat(),
                "out of order",
            ),
            (64, [&[0, 1, 0][..], &[0, 3, 0, 1, 5]].concat(), "svcbport"),
            (41, vec![0, 8, 0, 4, 0, 1, 33, 0], "SUBNET"),
        ] {
            let err = text(rtype, &rdata).unwrap_err();
            assert!(err.contains(why), "type {rtype}: {err}");
        }
    }

    #[test]
    fn opt_prints_a_pseudo_section() {
        let rdata = [&[0, 3, 0, 2][..], b"n1", &[0, 15, 0, 3, 0, 15, b'x']].concat();
        let record = rr(&[0], 41, 1232, 0x0000_8000, &rdata);
        let response = read_response(&message(1, 0, [0, 0, 0, 1], &record)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&response.sections[2][0]),
            "\n;; OPT PSEUDOSECTION:\n; EDNS: version 0; flags: do; udp: 1232\n; NSID: 6e31  (n)(1)\n; EDE: 15 (Blocked): (x)"
        );
    }

    #[test]
    fn text_is_bounded() {
        // 600 pointers to a 245-octet name: 2 bytes of wire print as 244.
        let long = ["a", "b", "c", "d"].map(|l| l.repeat(60)).join(".");
        let mut msg = message(1, 0, [1, 1, 0, 0], &name(&long));
        msg.extend_from_slice(&[0, 1, 0, 1]);
        let mut hip = vec![0u8, 1, 0, 0];
        for _ in 0..600 {
            hip.extend_from_slice(&[0xC0, 12]);
        }
        msg.extend_from_slice(&rr(&[0], 55, 1, 0, &hip));
        let err = read_response(&msg).unwrap_err();
        assert!(err.contains("longer than"), "{err}");
        // Reading it to check it makes no text, and passes.
        assert!(super::super::message::read(&msg).is_ok());
    }
}
