//! What lookout reads from an X.509 certificate: the serial, the issuer and
//! subject names, the end of the validity period and the subject alternative
//! names, for blackbox_exporter's TLS metrics and the web server's
//! `client_allowed_sans`. Trust is not decided here: rustls and webpki verify
//! a chain with their own parse.
//!
//! A DER reader of the few fields needed, over the certificate's bytes without
//! copying them. It replaced x509-parser (issue 18), which parsed every
//! extension of every certificate of every HTTPS probe a second time after
//! webpki, and whose stack (der-parser, asn1-rs, nom, time, oid-registry)
//! weighed about 100 KB of the binary. It reads what x509-parser read the same
//! way: attribute values as text only for the four string types x509-parser
//! decoded, names all-or-nothing when the extension is malformed, a missing or
//! duplicated extension as none.

use std::fmt::Write as _;

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const NUMERIC_STRING: u8 = 0x12;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
/// `[0] EXPLICIT`, `[1]`, `[2] IMPLICIT` and `[3] EXPLICIT` of TBSCertificate.
const VERSION: u8 = 0xa0;
const ISSUER_UNIQUE_ID: u8 = 0x81;
const SUBJECT_UNIQUE_ID: u8 = 0x82;
const EXTENSIONS: u8 = 0xa3;
/// id-ce-subjectAltName, 2.5.29.17, as DER content.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// One DER element of `input`: its tag, its content and the bytes after it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // Multi-byte tags never occur in the fields read here.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, b| len << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed element's content, in order.
#[derive(Clone, Copy)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next element's tag and content.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (tag, content, rest) = element(self.0)?;
        self.0 = rest;
        Some((tag, content))
    }

    /// The next element's content if its tag is `tag`; nothing is consumed
    /// otherwise (optional fields).
    fn take(&mut self, tag: u8) -> Option<&'a [u8]> {
        match element(self.0)? {
            (t, content, rest) if t == tag => {
                self.0 = rest;
                Some(content)
            }
            _ => None,
        }
    }

    /// The next element, header included, if its tag is `tag`.
    fn take_whole(&mut self, tag: u8) -> Option<&'a [u8]> {
        let start = self.0;
        self.take(tag)?;
        Some(&start[..start.len() - self.0.len()])
    }
}

/// A certificate's fields that lookout reports or checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Certificate<'a> {
    /// The serial number's content octets, as encoded (a leading zero octet
    /// included).
    pub(crate) serial: &'a [u8],
    pub(crate) issuer: Name<'a>,
    pub(crate) subject: Name<'a>,
    /// The validity's notAfter, in Unix seconds.
    pub(crate) not_after: i64,
    /// The content of the extensions' SEQUENCE (empty without extensions).
    extensions: &'a [u8],
}

impl<'a> Certificate<'a> {
    /// Reads a DER certificate; `None` if it is not one. Bytes after the
    /// certificate are ignored.
    pub(crate) fn parse(der: &'a [u8]) -> Option<Self> {
        let mut outer = Reader(der);
        let mut certificate = Reader(outer.take(SEQUENCE)?);
        let mut tbs = Reader(certificate.take(SEQUENCE)?);
        certificate.take(SEQUENCE)?; // signatureAlgorithm
        certificate.take(BIT_STRING)?; // signatureValue
        if let Some(version) = tbs.take(VERSION) {
            Reader(version).take(INTEGER)?;
        }
        let serial = tbs.take(INTEGER)?;
        tbs.take(SEQUENCE)?; // signature
        let issuer = Name(tbs.take_whole(SEQUENCE)?);
        let mut validity = Reader(tbs.take(SEQUENCE)?);
        let subject = Name(tbs.take_whole(SEQUENCE)?);
        tbs.take(SEQUENCE)?; // subjectPublicKeyInfo
        tbs.take(ISSUER_UNIQUE_ID);
        tbs.take(SUBJECT_UNIQUE_ID);
        let extensions = match tbs.take(EXTENSIONS) {
            Some(explicit) => Reader(explicit).take(SEQUENCE)?,
            None => &[],
        };
        validity.next().and_then(time)?; // notBefore
        let not_after = validity.next().and_then(time)?;
        // Both names must be well-formed, as x509-parser required.
        issuer.attributes()?;
        subject.attributes()?;
        Some(Self {
            serial,
            issuer,
            subject,
            not_after,
            extensions,
        })
    }

    /// The subject alternative names, in order; empty when the extension is
    /// missing, duplicated or malformed. Kinds lookout never reports
    /// (otherName, directoryName, ...) are left out.
    pub(crate) fn subject_alt_names(&self) -> Vec<GeneralName<'a>> {
        self.alt_names().unwrap_or_default()
    }

    fn alt_names(&self) -> Option<Vec<GeneralName<'a>>> {
        let mut found = None;
        let mut extensions = Reader(self.extensions);
        while !extensions.is_empty() {
            let mut extension = Reader(extensions.take(SEQUENCE)?);
            let id = extension.take(OID)?;
            extension.take(BOOLEAN); // critical
            let value = extension.take(OCTET_STRING)?;
            if id == SUBJECT_ALT_NAME {
                if found.is_some() {
                    return None;
                }
                found = Some(value);
            }
        }
        let mut names = Reader(Reader(found?).take(SEQUENCE)?);
        let mut out = Vec::new();
        let text = |bytes: &'a [u8]| std::str::from_utf8(bytes).ok();
        while !names.is_empty() {
            let (tag, content) = names.next()?;
            out.push(match tag {
                0x81 => GeneralName::Email(text(content)?),
                0x82 => GeneralName::Dns(text(content)?),
                0x86 => GeneralName::Uri(text(content)?),
                0x87 => GeneralName::Ip(content),
                // otherName, x400Address, directoryName, ediPartyName, registeredID
                0xa0 | 0xa3 | 0xa4 | 0xa5 | 0x88 => continue,
                _ => return None,
            });
        }
        Some(out)
    }
}

/// One subject alternative name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeneralName<'a> {
    /// rfc822Name.
    Email(&'a str),
    /// dNSName.
    Dns(&'a str),
    /// uniformResourceIdentifier.
    Uri(&'a str),
    /// iPAddress: 4 or 16 octets (anything else is passed on as it is).
    Ip(&'a [u8]),
}

/// A distinguished name, as its DER bytes (the SEQUENCE header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name<'a>(&'a [u8]);

impl<'a> Name<'a> {
    /// The encoded name: what issuer and subject are matched by.
    pub(crate) fn raw(&self) -> &'a [u8] {
        self.0
    }

    /// Its attributes in wire order, RDN by RDN; `None` if malformed.
    pub(crate) fn attributes(&self) -> Option<Vec<Attribute<'a>>> {
        let mut sequence = Reader(Reader(self.0).take(SEQUENCE)?);
        let mut out = Vec::new();
        while !sequence.is_empty() {
            let mut rdn = Reader(sequence.take(SET)?);
            while !rdn.is_empty() {
                let mut pair = Reader(rdn.take(SEQUENCE)?);
                let oid = pair.take(OID)?;
                let (tag, value) = pair.next()?;
                out.push(Attribute { oid, tag, value });
            }
        }
        Some(out)
    }
}

/// One AttributeTypeAndValue of a name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attribute<'a> {
    /// The type's OID, as DER content.
    oid: &'a [u8],
    tag: u8,
    /// The value's content octets.
    pub(crate) value: &'a [u8],
}

impl<'a> Attribute<'a> {
    /// The value as text, for the string types x509-parser decoded
    /// (NumericString, PrintableString, UTF8String, IA5String).
    pub(crate) fn as_str(&self) -> Option<&'a str> {
        matches!(
            self.tag,
            NUMERIC_STRING | PRINTABLE_STRING | UTF8_STRING | IA5_STRING
        )
        .then(|| std::str::from_utf8(self.value).ok())
        .flatten()
    }

    /// N when the type is 2.5.4.N (X.520's attribute types: CN, O, ...).
    pub(crate) fn standard_type(&self) -> Option<u8> {
        match self.oid {
            [0x55, 0x04, n] if n & 0x80 == 0 => Some(*n),
            _ => None,
        }
    }

    /// The type in dotted decimal, e.g. "2.5.4.3".
    pub(crate) fn oid(&self) -> String {
        let mut out = String::new();
        let mut arc: u64 = 0;
        for b in self.oid {
            arc = arc << 7 | u64::from(b & 0x7f);
            if b & 0x80 != 0 {
                continue;
            }
            // The first subidentifier holds the first two arcs.
            let _ = if out.is_empty() {
                let first = (arc / 40).min(2);
                write!(out, "{first}.{}", arc - first * 40)
            } else {
                write!(out, ".{arc}")
            };
            arc = 0;
        }
        out
    }
}

/// UTCTime or GeneralizedTime (UTC, as DER requires) in Unix seconds.
fn time((tag, text): (u8, &[u8])) -> Option<i64> {
    let number = |digits: &[u8]| -> Option<i64> {
        digits.iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match tag {
        UTC_TIME => {
            // RFC 5280: YY below 50 is 20YY.
            let yy = number(text.get(..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        GENERALIZED_TIME => (number(text.get(..4)?)?, &text[4..]),
        _ => return None,
    };
    let field = |at: usize| number(rest.get(at..at + 2)?);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    let mut zone = &rest[10..];
    if tag == GENERALIZED_TIME {
        // Fractional seconds, which RFC 5280 forbids but Go reads.
        if let Some(fraction) = zone.strip_prefix(b".") {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            zone = &fraction[digits..];
        }
    }
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61
        && zone == b"Z";
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn certificate(params: &CertificateParams) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn fields_are_read_as_encoded() {
        let mut params =
            CertificateParams::new(vec!["a.example".into(), "b.example".into()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress([192, 0, 2, 1].into()));
        params
            .subject_alt_names
            .push(SanType::Rfc822Name("ops@example.com".try_into().unwrap()));
        params
            .subject_alt_names
            .push(SanType::URI("https://example.com/".try_into().unwrap()));
        params.serial_number = Some(vec![0x00, 0x8f, 0x01].into());
        params.not_after = rcgen::date_time_ymd(2039, 1, 1);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "leaf");
        params.distinguished_name = dn;
        let der = certificate(&params);
        let cert = Certificate::parse(&der).unwrap();
        assert_eq!(cert.not_after, 2_177_452_800); // 2039-01-01T00:00:00Z
        assert_eq!(cert.serial, [0x00, 0x8f, 0x01]);
        assert_eq!(cert.issuer, cert.subject);
        let attributes = cert.subject.attributes().unwrap();
        assert_eq!(attributes.len(), 1);
        assert_eq!(attributes[0].oid(), "2.5.4.3");
        assert_eq!(attributes[0].as_str(), Some("leaf"));
        assert_eq!(
            cert.subject_alt_names(),
            [
                GeneralName::Dns("a.example"),
                GeneralName::Dns("b.example"),
                GeneralName::Ip(&[192, 0, 2, 1]),
                GeneralName::Email("ops@example.com"),
                GeneralName::Uri("https://example.com/"),
            ]
        );
    }

    #[test]
    fn dates_from_2050_are_generalized_time() {
        let mut params = CertificateParams::new(vec!["a.example".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2051, 3, 1);
        let der = certificate(&params);
        // 2051-03-01T00:00:00Z
        assert_eq!(Certificate::parse(&der).unwrap().not_after, 2_561_241_600);
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(time((UTC_TIME, b"491231235959Z")), Some(2_524_607_999));
        assert_eq!(time((UTC_TIME, b"500101000000Z")), Some(-631_152_000));
        assert_eq!(
            time((GENERALIZED_TIME, b"20240229120000.5Z")),
            Some(1_709_208_000)
        );
        assert_eq!(time((UTC_TIME, b"240229120000+0100")), None);
        assert_eq!(time((UTC_TIME, b"241329120000Z")), None);
    }

    #[test]
    fn oids_print_in_dotted_decimal() {
        let attribute = |oid: &'static [u8]| Attribute {
            oid,
            tag: UTF8_STRING,
            value: b"",
        };
        // 0.9.2342.19200300.100.1.1 (UID) and 1.2.840.113549.1.9.1 (emailAddress)
        assert_eq!(
            attribute(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01]).oid(),
            "0.9.2342.19200300.100.1.1"
        );
        assert_eq!(
            attribute(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).oid(),
            "1.2.840.113549.1.9.1"
        );
        assert_eq!(attribute(&[0x88, 0x37, 0x01]).oid(), "2.999.1");
    }

    #[test]
    fn what_is_not_a_certificate_is_refused() {
        let der = certificate(&CertificateParams::new(vec!["a.example".into()]).unwrap());
        assert!(Certificate::parse(&der[..der.len() - 1]).is_none());
        assert!(Certificate::parse(b"not a certificate").is_none());
        assert!(Certificate::parse(&[]).is_none());
        let mut trailing = der.clone();
        trailing.extend_from_slice(b"after");
        assert!(Certificate::parse(&trailing).is_some());
    }
}
