//! Settings of the icmp prober: ICMP echo, as blackbox_exporter's `icmp:`
//! block has them, plus lookout's `packets` and `interval` (several echoes
//! in one probe, for loss and round-trip statistics).
//!
//! Values blackbox_exporter takes and then fails on at every probe (a
//! negative `payload_size` panics there; a `source_ip_address` that is no
//! address, or of a family the module can never reach) are errors here when
//! the file is read, naming the key and its line.

use std::{fmt, net::IpAddr, time::Duration};

use serde::{de, Deserialize, Deserializer};

use super::values::{IpProtocol, PromDuration};

/// The most payload an echo can carry: an IPv6 packet's 65,535 bytes less
/// the 8-byte ICMP header (IPv4, with its 20-byte header, carries 65,507).
const MAX_PAYLOAD: u16 = 65_527;

/// The most echoes one probe sends: a series, not a stream (a continuous
/// pinger such as smokeping_prober is the tool for more), so the send times
/// a probe keeps stay small.
const MAX_PACKETS: u16 = 100;

/// The shortest `interval`: fping's default spacing between any two echoes,
/// fast enough for a series within a scrape, slow enough not to flood.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Settings of the icmp prober.
#[derive(Debug, Clone)]
pub struct IcmpProbe {
    /// Address family tried first.
    pub(crate) preferred_ip_protocol: IpProtocol,
    /// Whether the other family may be used.
    pub(crate) ip_protocol_fallback: bool,
    /// Local address to send from.
    pub(crate) source_ip_address: Option<IpAddr>,
    /// Bytes of echo data; 0 sends blackbox_exporter's 28-byte text.
    pub(crate) payload_size: u16,
    /// Forbid fragmentation (IPv4 only, as in blackbox_exporter).
    pub(crate) dont_fragment: bool,
    /// TTL or hop limit of the echo requests; 0 leaves the kernel's default.
    pub(crate) ttl: u8,
    /// Echo requests per probe (lookout's extension; 1 is blackbox_exporter).
    pub(crate) packets: u16,
    /// Time between two echo requests of one probe.
    pub(crate) interval: Duration,
}

impl Default for IcmpProbe {
    fn default() -> Self {
        Self {
            preferred_ip_protocol: IpProtocol::Ip6,
            ip_protocol_fallback: true,
            source_ip_address: None,
            payload_size: 0,
            dont_fragment: false,
            // blackbox_exporter's DefaultICMPTTL, set whether or not `ttl` is written.
            ttl: 64,
            packets: 1,
            // ping(8)'s default: what hosts and routers answer without rate limiting
            // (many police ICMP to themselves to a few packets a second).
            interval: Duration::from_secs(1),
        }
    }
}

impl<'de> Deserialize<'de> for IcmpProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;

        impl<'de> de::Visitor<'de> for Visit {
            type Value = IcmpProbe;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the icmp prober's settings")
            }

            // Checked inside the mapping, so the YAML reader names `icmp` and its line.
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<IcmpProbe, A::Error> {
                let fields = Fields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                IcmpProbe::try_from(fields).map_err(de::Error::custom)
            }
        }

        deserializer.deserialize_map(Visit)
    }
}

/// The block as written, each value checked on its own as it is read (so
/// its error carries its line); [`IcmpProbe::try_from`] checks them together.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    #[serde(default)]
    preferred_ip_protocol: Option<IpProtocol>,
    #[serde(default)]
    ip_protocol_fallback: Option<bool>,
    #[serde(default)]
    source_ip_address: Option<IpAddr>,
    #[serde(default)]
    payload_size: Option<Bounded<0, { MAX_PAYLOAD as i64 }>>,
    #[serde(default)]
    dont_fragment: Option<bool>,
    #[serde(default)]
    ttl: Option<Bounded<0, 255>>,
    #[serde(default)]
    packets: Option<Bounded<1, { MAX_PACKETS as i64 }>>,
    #[serde(default)]
    interval: Option<PromDuration>,
}

impl TryFrom<Fields> for IcmpProbe {
    type Error = String;

    fn try_from(fields: Fields) -> Result<Self, String> {
        let default = Self::default();
        let probe = Self {
            preferred_ip_protocol: fields
                .preferred_ip_protocol
                .unwrap_or(default.preferred_ip_protocol),
            ip_protocol_fallback: fields
                .ip_protocol_fallback
                .unwrap_or(default.ip_protocol_fallback),
            source_ip_address: fields.source_ip_address,
            payload_size: fields
                .payload_size
                .map_or(default.payload_size, |b| b.get() as u16),
            dont_fragment: fields.dont_fragment.unwrap_or(default.dont_fragment),
            ttl: fields.ttl.map_or(default.ttl, |b| b.get() as u8),
            packets: fields.packets.map_or(default.packets, |b| b.get() as u16),
            interval: fields.interval.map_or(default.interval, Duration::from),
        };
        if let Some(source) = probe.source_ip_address {
            // Without fallback only the preferred family is ever probed.
            let only = (!probe.ip_protocol_fallback).then_some(probe.preferred_ip_protocol);
            let (family, other) = match (only, source) {
                (Some(IpProtocol::Ip4), IpAddr::V6(_)) => ("ip4", "IPv6"),
                (Some(IpProtocol::Ip6), IpAddr::V4(_)) => ("ip6", "IPv4"),
                _ => ("", ""),
            };
            if !family.is_empty() {
                return Err(format!(
                    "source_ip_address {source} is {other}, but preferred_ip_protocol \
                     {family} without ip_protocol_fallback probes only the other family"
                ));
            }
        }
        if fields.interval.is_some() && probe.interval < MIN_INTERVAL {
            return Err(format!(
                "interval {} is shorter than the shortest allowed, {}",
                PromDuration(probe.interval),
                PromDuration(MIN_INTERVAL)
            ));
        }
        Ok(probe)
    }
}

/// An integer read as blackbox_exporter's Go `int`, then held to
/// `MIN..=MAX`, checked inside the visitor so the error names its line.
#[derive(Debug, Clone, Copy)]
struct Bounded<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Bounded<MIN, MAX> {
    fn get(self) -> i64 {
        self.0
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<const MIN: i64, const MAX: i64>;

        impl<const MIN: i64, const MAX: i64> de::Visitor<'_> for Visit<MIN, MAX> {
            type Value = Bounded<MIN, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an integer from {MIN} to {MAX}")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                // blackbox_exporter's own words for ttl: "cannot be negative", "cannot exceed 255".
                if value < 0 && MIN == 0 {
                    Err(E::custom(format!("{value} cannot be negative")))
                } else if value < MIN {
                    Err(E::custom(format!("{value} is below {MIN}")))
                } else if value > MAX {
                    Err(E::custom(format!("{value} cannot exceed {MAX}")))
                } else {
                    Ok(Bounded(value))
                }
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
            }
        }

        deserializer.deserialize_i64(Visit::<MIN, MAX>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    fn icmp(block: &str) -> Result<IcmpProbe, String> {
        parse(&format!(
            "modules:\n  m:\n    prober: icmp\n    icmp:\n{}",
            block
                .lines()
                .map(|l| format!("      {l}\n"))
                .collect::<String>()
        ))
        .map(|mut c| c.modules.remove("m").unwrap().icmp)
    }

    #[test]
    fn defaults_are_blackbox_exporters() {
        let absent = parse("modules:\n  m:\n    prober: icmp\n").unwrap();
        for probe in [absent.modules["m"].icmp.clone(), icmp("{}").unwrap()] {
            assert_eq!(probe.preferred_ip_protocol, IpProtocol::Ip6);
            assert!(probe.ip_protocol_fallback);
            assert_eq!(probe.ttl, 64);
            assert_eq!(probe.payload_size, 0);
            assert!(!probe.dont_fragment);
            assert_eq!(probe.source_ip_address, None);
            assert_eq!(probe.packets, 1);
            assert_eq!(probe.interval, Duration::from_secs(1));
        }
    }

    #[test]
    fn every_option_reads() {
        let probe = icmp(
            "preferred_ip_protocol: ip4\nip_protocol_fallback: false\nsource_ip_address: 127.0.0.2\n\
             payload_size: 1472\ndont_fragment: true\nttl: 0\npackets: 5\ninterval: 200ms",
        )
        .unwrap();
        assert_eq!(probe.preferred_ip_protocol, IpProtocol::Ip4);
        assert!(!probe.ip_protocol_fallback);
        assert_eq!(probe.source_ip_address, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(probe.payload_size, 1472);
        assert!(probe.dont_fragment);
        assert_eq!(probe.ttl, 0);
        assert_eq!(probe.packets, 5);
        assert_eq!(probe.interval, Duration::from_millis(200));
        assert_eq!(icmp("ttl: 255\npayload_size: 65527").unwrap().ttl, 255);
    }

    #[test]
    fn invalid_values_name_key_and_line() {
        for (block, key, message) in [
            ("ttl: -1", "ttl", "-1 cannot be negative"),
            ("ttl: 256", "ttl", "256 cannot exceed 255"),
            ("payload_size: -1", "payload_size", "-1 cannot be negative"),
            ("payload_size: 65528", "payload_size", "cannot exceed 65527"),
            ("packets: 0", "packets", "0 is below 1"),
            ("packets: 101", "packets", "101 cannot exceed 100"),
            ("ttl: '64'", "ttl", "expected an integer from 0 to 255"),
            (
                "source_ip_address: 1.2.3",
                "source_ip_address",
                "invalid IP address",
            ),
            (
                "source_ip_address: ''",
                "source_ip_address",
                "invalid IP address",
            ),
            ("interval: 1x", "interval", "invalid duration"),
            ("count: 3", "icmp", "unknown field `count`"),
        ] {
            let err = icmp(block).unwrap_err();
            assert!(err.contains("modules.m.icmp"), "{block}: {err}");
            assert!(err.contains(key), "{block}: {err}");
            assert!(err.contains(message), "{block}: {err}");
            assert!(err.contains("line 5"), "{block}: {err}");
        }
    }

    #[test]
    fn a_source_of_a_family_never_probed_is_an_error() {
        for block in [
            "preferred_ip_protocol: ip4\nip_protocol_fallback: false\nsource_ip_address: ::1",
            "ip_protocol_fallback: false\nsource_ip_address: 127.0.0.1",
        ] {
            let err = icmp(block).unwrap_err();
            assert!(
                err.contains("probes only the other family"),
                "{block}: {err}"
            );
            assert!(
                err.contains("modules.m.icmp: source_ip_address"),
                "{block}: {err}"
            );
            assert!(err.contains("line 5"), "{block}: {err}");
        }
        // With fallback, the target decides the family: checked when probing.
        assert!(icmp("source_ip_address: 127.0.0.1").is_ok());
        assert!(icmp("preferred_ip_protocol: ip4\nsource_ip_address: ::1").is_ok());
    }

    #[test]
    fn intervals_below_the_minimum_are_refused() {
        let err = icmp("packets: 3\ninterval: 1ms").unwrap_err();
        assert!(err.contains("interval 1ms is shorter"), "{err}");
        assert_eq!(
            icmp("interval: 10ms").unwrap().interval,
            Duration::from_millis(10)
        );
    }
}
