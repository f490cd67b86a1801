//! `compression`: the coding blackbox_exporter decodes every response body
//! with (whatever the response's Content-Encoding says), and the rule that
//! ties it to an `Accept-Encoding` header the module sends.
//!
//! blackbox_exporter sends no Accept-Encoding of its own (Go's transport is
//! built with compression disabled), so a module asks for a coding with its
//! `headers`; the check below is blackbox_exporter's
//! `isCompressionAcceptEncodingValid`, word for word in effect.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Deserializer};

use super::{validate::Invalid, values::deserialize_from_str};

/// A content coding lookout can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// RFC 1952, members concatenated as Go's reader allows.
    Gzip,
    /// Raw DEFLATE (RFC 1951), as Go's `compress/flate` reads it: no zlib wrapper.
    Deflate,
    /// Brotli (RFC 7932).
    Br,
}

/// The `compression` setting: the coding (`None` for `identity` or unset)
/// and the text as written, which the Accept-Encoding rule compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Compression {
    pub(crate) coding: Option<Coding>,
    written: String,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl FromStr for Compression {
    type Err = String;

    /// blackbox_exporter lower-cases the name when it probes; a name it does
    /// not know fails every probe there, and the file here.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let coding = match text.to_lowercase().as_str() {
            "" | "identity" => None,
            "gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Br),
            _ => {
                return Err(format!(
                    "unsupported compression {text:?} (gzip, deflate, br or identity)"
                ))
            }
        };
        Ok(Self {
            coding,
            written: text.to_owned(),
        })
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "a compression name")
    }
}

/// blackbox_exporter's rule: with both `compression` and an Accept-Encoding
/// header set, the header must accept the coding (it need not prefer it).
pub(super) fn check(
    compression: &Compression,
    headers: &BTreeMap<String, String>,
) -> Result<(), Invalid> {
    let Some((name, accept)) = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("accept-encoding"))
    else {
        return Ok(());
    };
    if accepts(&compression.written, accept) {
        return Ok(());
    }
    Err(Invalid {
        field: "compression".to_owned(),
        message: format!(
            "{:?} is not acceptable to the header {name}: {accept:?}, so the body would not come compressed that way",
            compression.written
        ),
    })
}

/// Go's `isCompressionAcceptEncodingValid`: the entries sorted by quality
/// (stably, highest first), the first naming `encoding` (as written, case
/// and all) or `*` decides, by a quality above 0.
pub(crate) fn accepts(encoding: &str, accept_encoding: &str) -> bool {
    if encoding.is_empty() || accept_encoding.is_empty() {
        return true;
    }
    let mut entries: Vec<(&str, f32)> = accept_encoding
        .split(',')
        .map(|part| match part.rfind(';') {
            None => (part.trim(), 1.0),
            Some(at) => {
                let q = part[at + 1..].trim();
                (
                    part[..at].trim(),
                    quality(q.strip_prefix("q=").unwrap_or(q)),
                )
            }
        })
        .collect();
    // Go's sort.SliceStable by `quality` descending is an insertion sort for
    // short lists; this one never panics on NaN (Rust's sorts may) and, NaN
    // aside, any stable sort gives the same order.
    for i in 1..entries.len() {
        let mut j = i;
        while j > 0 && entries[j - 1].1 < entries[j].1 {
            entries.swap(j - 1, j);
            j -= 1;
        }
    }
    entries
        .iter()
        .find(|(name, _)| *name == encoding || *name == "*")
        .is_some_and(|(_, q)| *q > 0.0)
}

/// Go's `strconv.ParseFloat(q, 32)` rounded to three decimals; anything it
/// refuses (including a value out of float32's range) counts as 0.
fn quality(text: &str) -> f32 {
    let Some(value) = parse_go_float32(text) else {
        return 0.0;
    };
    ((f64::from(value) * 1000.0).round() / 1000.0) as f32
}

/// The float32 Go's ParseFloat would give for `text`, or `None` where it
/// returns an error (syntax, or a finite value beyond float32's range).
/// Decimal forms, `inf`, `infinity` and `nan` (any case, signed) read alike
/// in both; Go's hexadecimal floats, which no Accept-Encoding uses, count as
/// 0 here.
fn parse_go_float32(text: &str) -> Option<f32> {
    let value: f32 = text.parse().ok()?;
    let unsigned = text.trim_start_matches(['+', '-']);
    let literal_infinity =
        unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity");
    if value.is_infinite() && !literal_infinity {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn the_header_must_accept_the_coding_as_blackbox_exporter_decides() {
        for (encoding, header, valid) in [
            // From blackbox_exporter's own table (config_test.go).
            ("", "", true),
            ("", "br", true),
            ("gzip", "", true),
            ("gzip", "gzip", true),
            ("gzip", "br, gzip", true),
            ("gzip", "br;q=1.0, gzip;q=0.9", true),
            ("gzip", "br;q=1.0, gzip;q=0.0", false),
            ("gzip", "br, identity", false),
            ("gzip", "*", true),
            ("gzip", "*;q=0", false),
            ("gzip", "br;q=1.0, *;q=0.1", true),
            // Case matters in the comparison, as in Go.
            ("GZIP", "gzip", false),
            ("gzip", "GZIP", false),
            // The first entry, by quality, that names it or `*` decides.
            ("gzip", "gzip;q=0, *", true),
            ("gzip", "*;q=0.5, gzip;q=0", true),
            ("gzip", "gzip;q=0.5, *;q=0", true),
            // q rounds to three decimals; what Go cannot parse is 0.
            ("gzip", "gzip;q=0.0004", false),
            ("gzip", "gzip;q=0.0005", true),
            ("gzip", "gzip;q=1e-1", true),
            ("gzip", "gzip;q=abc", false),
            ("gzip", "gzip;Q=0.5", false),
            ("gzip", "gzip;q=-1", false),
            ("gzip", "gzip;q=1e39", false),
            ("gzip", "gzip;q=inf", true),
            ("gzip", "gzip;q=NaN", false),
            ("gzip", "gzip;q=0_5", false),
            // Only the last `;` splits off the quality.
            ("gzip", "gzip;level=1;q=1", false),
            ("gzip", " gzip ; q=1 ", true),
            ("identity", "gzip", false),
            ("identity", "identity, gzip", true),
        ] {
            assert_eq!(
                accepts(encoding, header),
                valid,
                "compression {encoding:?}, Accept-Encoding {header:?}"
            );
        }
    }

    #[test]
    fn compression_names_are_checked_at_load() {
        let module = |compression: &str, headers: &str| {
            parse(&format!(
                "modules:\n  m:\n    prober: http\n    http:\n      compression: {compression}\n      headers: {{{headers}}}\n"
            ))
        };
        for (name, coding) in [
            ("gzip", Some(Coding::Gzip)),
            ("GZip", Some(Coding::Gzip)),
            ("deflate", Some(Coding::Deflate)),
            ("br", Some(Coding::Br)),
            ("identity", None),
            ("''", None),
        ] {
            let config = module(name, "").unwrap();
            assert_eq!(
                config.modules["m"].http.compression.coding, coding,
                "{name}"
            );
        }
        let err = module("zstd", "").unwrap_err();
        assert!(err.contains("unsupported compression \"zstd\""), "{err}");
        assert!(
            err.contains("compression") && err.contains("line 5"),
            "{err}"
        );

        let err = module("gzip", "accept-encoding: 'br, identity'").unwrap_err();
        assert!(err.contains("modules.m.http.compression"), "{err}");
        assert!(err.contains("accept-encoding: \"br, identity\""), "{err}");
        assert!(module("gzip", "Accept-Encoding: 'br;q=1.0, gzip;q=0.9'").is_ok());
        assert!(module("identity", "Accept-Encoding: gzip").is_err());
        assert!(module("''", "Accept-Encoding: gzip").is_ok());
    }
}
