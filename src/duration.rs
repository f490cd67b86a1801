//! Durations written the way Prometheus writes them: `500ms`, `5s`, `1m30s`, `1h`.
//!
//! The grammar is Prometheus' `model.ParseDuration`: an optional run of
//! `<digits><unit>` pairs with units in the order y, w, d, h, m, s, ms, each at
//! most once, or a bare `0`. blackbox.yml files and our flags share it, so a
//! value that works for blackbox_exporter works here too.

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

/// Units in the only order Prometheus accepts them, with their length in ms.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 60 * 60 * 1000),
    ("w", 7 * 24 * 60 * 60 * 1000),
    ("d", 24 * 60 * 60 * 1000),
    ("h", 60 * 60 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

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
        let mut next_unit = 0;
        let mut total_ms: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(fail("expected a number; write e.g. 5s, 500ms or 1m"));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| fail("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let Some(offset) = UNITS[next_unit..].iter().position(|(u, _)| *u == unit) else {
                return Err(if UNITS.iter().any(|(u, _)| *u == unit) {
                    fail("units must appear once each, largest first (y w d h m s ms)")
                } else if unit.is_empty() {
                    fail("missing unit (one of y w d h m s ms)")
                } else {
                    fail("unknown unit (one of y w d h m s ms)")
                });
            };
            let index = next_unit + offset;
            next_unit = index + 1;
            total_ms = number
                .checked_mul(UNITS[index].1)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| fail("too large"))?;
        }
        Ok(Self(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, len) in UNITS {
            if ms >= len {
                write!(f, "{}{unit}", ms / len)?;
                ms %= len;
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
    fn malformed_durations_say_why() {
        for (input, reason) in [
            ("", "empty"),
            ("5", "missing unit"),
            ("5x", "unknown unit"),
            ("s", "expected a number"),
            ("1s1m", "largest first"),
            ("1s1s", "largest first"),
            ("-1s", "expected a number"),
            ("1.5s", "unknown unit"),
            ("99999999999999999999s", "number too large"),
            ("999999999999y", "too large"),
        ] {
            let err = parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
            assert!(err.contains(&format!("{input:?}")), "{input:?}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["0s", "500ms", "5s", "1m30s", "1h", "1d2h", "1w", "1s500ms"] {
            assert_eq!(s.parse::<PromDuration>().unwrap().to_string(), s);
        }
    }
}
