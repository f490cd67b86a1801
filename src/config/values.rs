//! The values that the modules file and the command line write as text,
//! each read as blackbox_exporter reads it: durations, byte sizes, secrets,
//! the address family. The rest of `config/` builds on these.
//!
//! Durations come in two notations: Prometheus' `model.Duration` (`5s`,
//! `1m30s`, `1d`, integers, units y w d h m s ms) and Go's
//! `time.ParseDuration`, which blackbox_exporter uses for a module's `timeout`
//! (`1.5s`, `500us`, `250ns`). We accept both: a run of `<number><unit>` pairs
//! whose values add up, with an optional fraction, units `y w d h m s ms us µs
//! ns`, or a bare `0`. Every file or flag that works with either tool
//! therefore works here.

use std::{fmt, marker::PhantomData, str::FromStr, time::Duration};

use serde::{de, Deserialize, Deserializer};

/// Deserializes a string through `FromStr` inside the visitor, so the YAML
/// parser attaches the scalar's own line and key path to a parse error
/// (parsing after `String::deserialize` returns gets the enclosing map's).
pub(super) fn deserialize_from_str<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct Visit<T>(&'static str, PhantomData<T>);
    impl<T: FromStr> de::Visitor<'_> for Visit<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            text.parse().map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Visit(expecting, PhantomData))
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

/// A [`Duration`] parsed from, and displayed in, Prometheus' notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

/// Units and their length in nanoseconds, longest name first where one is a
/// prefix of another (`ms` before `m`).
const UNITS: [(&str, u128); 10] = [
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
    ("y", 365 * 24 * 3600 * NANOS),
    ("w", 7 * 24 * 3600 * NANOS),
    ("d", 24 * 3600 * NANOS),
    ("h", 3600 * NANOS),
    ("m", 60 * NANOS),
    ("s", NANOS),
];
const NANOS: u128 = 1_000_000_000;

impl FromStr for PromDuration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseDurationError {
            input: input.to_owned(),
            reason,
        };
        if input == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if input.is_empty() {
            return Err(fail("empty; write e.g. 5s, 500ms or 1m"));
        }
        let mut rest = input;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (int, after) = rest.split_at(int_len);
            let (frac, after) = match after.strip_prefix('.') {
                Some(f) => {
                    let n = f.bytes().take_while(u8::is_ascii_digit).count();
                    f.split_at(n)
                }
                None => ("", after),
            };
            if int.is_empty() && frac.is_empty() {
                return Err(fail("expected a number; write e.g. 5s, 500ms or 1m"));
            }
            let Some((unit, scale)) = UNITS.iter().find(|(u, _)| after.starts_with(u)) else {
                return Err(
                    if after.is_empty() || after.starts_with(|c: char| c.is_ascii_digit()) {
                        fail("missing unit (one of y w d h m s ms us ns)")
                    } else {
                        fail("unknown unit (one of y w d h m s ms us ns)")
                    },
                );
            };
            let whole: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| fail("number too large"))?
            };
            // Fractions beyond nanosecond precision are dropped, as Go does.
            let mut fraction: u128 = 0;
            let mut divisor: u128 = 1;
            for digit in frac.bytes().take(19) {
                fraction = fraction * 10 + u128::from(digit - b'0');
                divisor *= 10;
            }
            total = whole
                .checked_mul(*scale)
                .and_then(|n| n.checked_add(fraction * scale / divisor))
                .and_then(|n| total.checked_add(n))
                .filter(|n| *n <= u128::from(u64::MAX))
                .ok_or_else(|| fail("too large"))?;
            rest = &after[unit.len()..];
        }
        let total = u64::try_from(total).map_err(|_| fail("too large"))?;
        Ok(Self(Duration::from_nanos(total)))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ns = self.0.as_nanos();
        if ns == 0 {
            return f.write_str("0s");
        }
        for unit in ["y", "w", "d", "h", "m", "s", "ms", "us", "ns"] {
            let len = UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map_or(1, |(_, l)| *l);
            if ns >= len {
                write!(f, "{}{unit}", ns / len)?;
                ns %= len;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "a duration such as 5s")
    }
}

impl From<PromDuration> for Duration {
    fn from(value: PromDuration) -> Self {
        value.0
    }
}

/// A byte count: what Go's `units.ParseBase2Bytes` accepts (blackbox_exporter's
/// `units.Base2Bytes`), plus a plain count of bytes such as `1048576`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSize(pub(crate) u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_bytes(text).map(ByteSize)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As text, as Go reads it: `0x10` and `1e3` are not byte counts there.
        deserialize_from_str(
            deserializer,
            "a byte count such as 1048576, 512KiB or 1.5MB",
        )
    }
}

/// The two unit families of Go's `units.ParseBase2Bytes`, both base 2. It
/// tries the whole text with the first, then with the second, so one size
/// never mixes `KiB` and `KB`. Case matters: `kB` and `mb` are no units.
const BYTE_UNITS: [[(&str, f64); 7]; 2] = [
    [
        ("B", 1.0),
        ("KiB", 1024.0),
        ("MiB", 1_048_576.0),
        ("GiB", 1_073_741_824.0),
        ("TiB", 1_099_511_627_776.0),
        ("PiB", 1_125_899_906_842_624.0),
        ("EiB", 1_152_921_504_606_846_976.0),
    ],
    [
        ("B", 1.0),
        ("KB", 1024.0),
        ("MB", 1_048_576.0),
        ("GB", 1_073_741_824.0),
        ("TB", 1_099_511_627_776.0),
        ("PB", 1_125_899_906_842_624.0),
        ("EB", 1_152_921_504_606_846_976.0),
    ],
];

/// Go's `units.ParseUnit` over [`BYTE_UNITS`]: `[-+]?` then one or more
/// `digits[.digits]unit`, summed in float64 and truncated toward zero, so a
/// fraction means what it means there (`1.5MB` is 1,572,864 bytes). Go then
/// hands out any int64; lookout refuses negative sizes (blackbox_exporter
/// reads them as no limit at all) and sizes from 2^63 bytes up.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let invalid = |why: &str| format!("invalid size {text:?}: {why}");
    let too_large = || invalid("too large (at most 9223372036854775807 bytes)");
    let negative =
        || invalid("negative (blackbox_exporter reads that as no limit; set the limit you mean)");
    let (negative_sign, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // lookout's extension: a plain count of bytes (Go needs a unit).
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return match unsigned.parse::<i64>() {
            Ok(0) => Ok(0),
            Ok(_) if negative_sign => Err(negative()),
            Ok(count) => Ok(count.unsigned_abs()),
            Err(_) => Err(too_large()),
        };
    }
    let expected = "expected a number and a unit, e.g. 1048576, 512KiB or 1.5MB";
    // Each element: its value before the unit, and the unit.
    let mut elements = Vec::new();
    let mut rest = unsigned;
    if rest.is_empty() {
        return Err(invalid(expected));
    }
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid(expected));
        }
        let (whole, after) = leading_int(rest).ok_or_else(|| invalid("too many digits"))?;
        let mut value = whole as f64;
        let pre = after.len() != rest.len();
        rest = after;
        let mut post = false;
        if let Some(fraction) = rest.strip_prefix('.') {
            let (digits, after) =
                leading_int(fraction).ok_or_else(|| invalid("too many digits"))?;
            let mut scale = 1.0_f64;
            for _ in 0..fraction.len() - after.len() {
                scale *= 10.0;
            }
            value += digits as f64 / scale;
            post = after.len() != fraction.len();
            rest = after;
        }
        if !pre && !post {
            return Err(invalid(expected));
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, after) = rest.split_at(unit_end);
        elements.push((value, unit));
        rest = after;
    }
    let unit_in = |family: &[(&str, f64)], unit: &str| {
        family
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, v)| *v)
    };
    let Some(total) = BYTE_UNITS.iter().find_map(|family| {
        elements.iter().try_fold(0.0_f64, |sum, (value, unit)| {
            unit_in(family, unit).map(|scale| sum + value * scale)
        })
    }) else {
        let names = "B, KiB or KB, MiB or MB, GiB or GB, TiB or TB, PiB or PB, EiB or EB";
        return Err(
            match elements.iter().find(|(_, unit)| {
                BYTE_UNITS
                    .iter()
                    .all(|family| unit_in(family, unit).is_none())
            }) {
                Some((_, unit)) => {
                    invalid(&format!("unknown unit {unit:?} ({names}; case matters)"))
                }
                None => invalid("mixes KiB-style and KB-style units"),
            },
        );
    };
    let total = if negative_sign { -total } else { total };
    // Go refuses only beyond ±2^63, where int64 ends; 2^63 itself has no
    // int64 either, so it is too large here.
    if total >= 9_223_372_036_854_775_808.0 {
        return Err(too_large());
    }
    // `as` truncates toward zero, as Go's int64() does for values in range.
    match total as i64 {
        bytes if bytes < 0 => Err(negative()),
        bytes => Ok(bytes.unsigned_abs()),
    }
}

/// Go's `leadingInt` (from `time.ParseDuration`): the leading digits and
/// the rest, or `None` where Go gives up on overflow (at 19 digits or so).
fn leading_int(text: &str) -> Option<(i64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let mut value: i64 = 0;
    for digit in text[..end].bytes() {
        if value >= (i64::MAX - 9) / 10 {
            return None;
        }
        value = value * 10 + i64::from(digit - b'0');
    }
    Some((value, &text[end..]))
}

/// A secret string that never shows in logs or debug output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// Address family to try first when a name resolves to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum IpProtocol {
    /// IPv4 first.
    Ip4,
    /// IPv6 first (blackbox_exporter's default).
    #[default]
    Ip6,
}

#[cfg(test)]
mod tests {
    mod durations {
        use super::super::*;

        fn parse(s: &str) -> Result<Duration, ParseDurationError> {
            s.parse::<PromDuration>().map(Duration::from)
        }

        #[test]
        fn prometheus_notation_parses() {
            assert_eq!(parse("0").unwrap(), Duration::ZERO);
            assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
            assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
            assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
            assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
            assert_eq!(parse("1d2h").unwrap(), Duration::from_secs(26 * 3600));
            assert_eq!(parse("1w").unwrap(), Duration::from_secs(7 * 86400));
            assert_eq!(parse("1y").unwrap(), Duration::from_secs(365 * 86400));
            assert_eq!(parse("1s500ms").unwrap(), Duration::from_millis(1500));
        }

        #[test]
        fn go_notation_parses() {
            assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
            assert_eq!(parse(".5m").unwrap(), Duration::from_secs(30));
            assert_eq!(parse("250us").unwrap(), Duration::from_micros(250));
            assert_eq!(parse("250µs").unwrap(), Duration::from_micros(250));
            assert_eq!(parse("10ns").unwrap(), Duration::from_nanos(10));
            assert_eq!(parse("1s1m").unwrap(), Duration::from_secs(61));
        }

        #[test]
        fn malformed_durations_say_why() {
            for (input, reason) in [
                ("", "empty"),
                ("5", "missing unit"),
                ("5x", "unknown unit"),
                ("5S", "unknown unit"),
                ("s", "expected a number"),
                ("-1s", "expected a number"),
                ("1.s5", "missing unit"),
                (
                    "99999999999999999999999999999999999999999s",
                    "number too large",
                ),
                ("999999999999y", "too large"),
            ] {
                let err = parse(input).unwrap_err().to_string();
                assert!(err.contains(reason), "{input:?}: {err}");
                assert!(err.contains(&format!("{input:?}")), "{input:?}: {err}");
            }
        }

        #[test]
        fn display_round_trips() {
            for s in [
                "0s", "500ms", "5s", "1m30s", "1h", "1d2h", "1w", "1s500ms", "250us",
            ] {
                assert_eq!(s.parse::<PromDuration>().unwrap().to_string(), s);
            }
        }
    }

    mod byte_sizes {
        use super::super::*;
        use crate::config::tests::parse;

        #[test]
        fn byte_sizes_follow_base2_units() {
            assert_eq!(parse_bytes("1024").unwrap(), 1024);
            assert_eq!(parse_bytes("1KB").unwrap(), 1024);
            assert_eq!(parse_bytes("2MiB").unwrap(), 2 << 20);
        }

        /// The body size limit of module `m` in `text`.
        fn limit_of(value: &str) -> Result<u64, String> {
            parse(&format!(
                "modules:\n  m:\n    prober: http\n    http:\n      body_size_limit: {value}\n"
            ))
            .map(|c| c.modules["m"].http.body_size_limit.0)
        }

        #[test]
        fn byte_sizes_take_fractions_and_sequences_as_go_units_does() {
            // The expected values are Go's: units.ParseBase2Bytes at the version
            // blackbox_exporter 0.23 pins (float64 sum, truncated to int64).
            for (text, bytes) in [
                ("1.5MB", 1_572_864),
                ("1.5MiB", 1_572_864),
                ("1MB1KB25B", 1_049_625),
                ("1MiB1KiB25B", 1_049_625),
                (".5KB", 512),
                ("5.KB", 5_120),
                ("1.1MB", 1_153_433),
                ("0.9B", 0),
                ("1.9999B", 1),
                ("1.0000001KB", 1_024),
                ("+1KB", 1_024),
                ("0", 0),
                ("-0", 0),
                ("+0", 0),
                ("0B", 0),
                ("-0.1B", 0),
                ("1B", 1),
                ("1GB", 1 << 30),
                ("1GiB", 1 << 30),
                ("1TB", 1 << 40),
                ("1TiB", 1 << 40),
                ("1PB", 1 << 50),
                ("1PiB", 1 << 50),
                ("1EB", 1 << 60),
                ("7.5EiB", 15 << 59),
                ("'1.5MB'", 1_572_864),
                ("1048576", 1 << 20),
                ("9223372036854775807", i64::MAX as u64),
                ("1.00000000000000000000000000000000000000000KB", 1_024),
            ] {
                assert_eq!(limit_of(text), Ok(bytes), "{text}");
            }
        }

        #[test]
        fn byte_sizes_reject_what_go_units_rejects_and_what_lookout_cannot_honour() {
            for (text, expected) in [
                // Units are case-sensitive; lower-case k is SI (1000) and refused.
                ("1kB", "unknown unit \"kB\""),
                ("1kiB", "unknown unit"),
                ("1mb", "unknown unit"),
                ("1Mb", "unknown unit"),
                ("1MIB", "unknown unit"),
                ("1b", "unknown unit"),
                ("1K", "unknown unit"),
                ("1M", "unknown unit"),
                ("1G", "unknown unit"),
                ("1 MB", "unknown unit"),
                ("5XB", "unknown unit"),
                // Go tries the iB units, then the B units, never a mix of both.
                ("1MiB1KB", "mixes KiB-style and KB-style units"),
                // A plain count is lookout's extension: whole bytes only.
                ("1.5", "unknown unit \"\""),
                ("1e3", "unknown unit"),
                ("0x10", "unknown unit"),
                // Not numbers at all.
                (".nan", "invalid size"),
                (".inf", "invalid size"),
                ("-.inf", "invalid size"),
                ("NaN", "invalid size"),
                ("Inf", "invalid size"),
                ("''", "invalid size"),
                ("'-'", "invalid size"),
                ("'.'", "invalid size"),
                ("MB", "invalid size"),
                ("1MB.", "invalid size"),
                ("true", "invalid size"),
                ("[1]", "invalid type"),
                // blackbox_exporter reads a negative limit as no limit at all;
                // lookout refuses it rather than silently capping at 10 MiB.
                ("-1", "negative"),
                ("-1MB", "negative"),
                ("-1.5KiB", "negative"),
                // Too large for Go's int64, or for its digit reader.
                ("8EiB", "too large"),
                ("16EB", "too large"),
                ("9223372036854775808", "too large"),
                ("99999999999999999999999999B", "invalid size"),
                ("1.99999999999999999999MB", "invalid size"),
                (
                    "100000000000000000000000000000000000000000000000000000",
                    "too large",
                ),
            ] {
                let err = limit_of(text).unwrap_err();
                assert!(err.contains(expected), "{text}: {err}");
                assert!(err.contains("body_size_limit"), "{text}: {err}");
                assert!(err.contains("line 5"), "{text}: {err}");
            }
        }
    }

    mod secrets {
        use crate::config::tests::parse;

        #[test]
        fn secrets_stay_out_of_debug_output() {
            let config =
                parse("modules:\n  m:\n    prober: http\n    http:\n      bearer_token: hunter2\n")
                    .unwrap();
            assert!(!format!("{config:?}").contains("hunter2"));
        }
    }
}
