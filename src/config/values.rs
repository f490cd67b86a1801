//! Durations as Prometheus and blackbox_exporter users write them.
//!
//! Two notations meet here: Prometheus' `model.Duration` (`5s`, `1m30s`, `1d`,
//! integers, units y w d h m s ms) and Go's `time.ParseDuration`, which
//! blackbox_exporter uses for a module's `timeout` (`1.5s`, `500us`, `250ns`).
//! We accept both: a run of `<number><unit>` pairs whose values add up, with
//! an optional fraction, units `y w d h m s ms us µs ns`, or a bare `0`. Every
//! file or flag that works with either tool therefore works here.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer};

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
        crate::config::deserialize_from_str(deserializer, "a duration such as 5s")
    }
}

impl From<PromDuration> for Duration {
    fn from(value: PromDuration) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
