//! Settings of the grpc prober: the standard gRPC health check
//! (`grpc.health.v1.Health/Check`), over HTTP/2 with or without TLS.
//!
//! One default differs from the other probers', as in blackbox_exporter:
//! `ip_protocol_fallback` is true only when the module has a `grpc:` block
//! (blackbox_exporter's module defaults hold no gRPC settings, its block's
//! do). The request `metadata` (blackbox_exporter 0.28) is checked here, at
//! load, by the rules grpc-go applies when the call is made.

use std::{collections::BTreeMap, fmt};

use serde::{de, Deserialize, Deserializer};

use super::{tls::TlsConfig, values::IpProtocol};

/// Settings of the grpc prober.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcProbe {
    /// The service asked about; empty asks about the server as a whole.
    pub(crate) service: String,
    /// Speak TLS (the target's scheme does not choose it).
    pub(crate) tls: bool,
    /// TLS settings when `tls` is set.
    pub tls_config: TlsConfig,
    /// Address family tried first.
    pub(crate) preferred_ip_protocol: IpProtocol,
    /// Whether the other family may be used: true when the `grpc:` block is
    /// written, false without one.
    #[serde(default = "fallback_in_a_written_block")]
    pub(crate) ip_protocol_fallback: bool,
    /// Request metadata, sent as HTTP/2 header fields.
    pub(crate) metadata: Metadata,
}

fn fallback_in_a_written_block() -> bool {
    true
}

/// A module's `grpc:` block. An empty one (`grpc:` alone, or `~`) counts
/// as absent, as Go's yaml.v3 leaves the settings untouched for a null.
pub(super) fn block<'de, D: Deserializer<'de>>(deserializer: D) -> Result<GrpcProbe, D::Error> {
    Option::<GrpcProbe>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// The settings of a module without a `grpc:` block.
impl Default for GrpcProbe {
    fn default() -> Self {
        Self {
            service: String::new(),
            tls: false,
            tls_config: TlsConfig::default(),
            preferred_ip_protocol: IpProtocol::Ip6,
            ip_protocol_fallback: false,
            metadata: Metadata::default(),
        }
    }
}

/// Request metadata: keys and their values, in key order. Keys are what
/// grpc-go accepts (`[0-9a-z-_.]`, not reserved by gRPC or HTTP/2); values
/// are printable ASCII unless the key ends in `-bin`, whose values are sent
/// base64-encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metadata(pub(crate) BTreeMap<String, Vec<String>>);

/// Keys grpc-go drops from request metadata (its `isReservedHeader`) besides
/// pseudo-headers: gRPC sets them itself.
const RESERVED: [&str; 8] = [
    "content-type",
    "user-agent",
    "grpc-message-type",
    "grpc-encoding",
    "grpc-message",
    "grpc-status",
    "grpc-timeout",
    "te",
];

/// Header fields HTTP/2 forbids (RFC 9113, 8.2.2): grpc-go sends them and
/// servers reset the stream; hyper would drop them without a word.
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Why `key` and its `values` cannot be sent, if they cannot.
fn check(key: &str, values: &[String]) -> Result<(), String> {
    if key.is_empty() {
        return Err("an empty metadata key".to_owned());
    }
    if key.starts_with(':') || RESERVED.contains(&key) {
        return Err(format!(
            "metadata key {key:?} is reserved: gRPC sets it itself (grpc-go silently drops it)"
        ));
    }
    if CONNECTION_SPECIFIC.contains(&key) {
        return Err(format!(
            "metadata key {key:?} is a connection-specific header, which HTTP/2 forbids"
        ));
    }
    let valid = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b);
    if !key.bytes().all(valid) {
        return Err(format!(
            "metadata key {key:?} contains characters not in [0-9a-z-_.]"
        ));
    }
    if !key.ends_with("-bin") {
        if let Some(value) = values
            .iter()
            .find(|v| !v.bytes().all(|b| (0x20..=0x7e).contains(&b)))
        {
            return Err(format!(
                "metadata key {key:?}: value {value:?} is not printable ASCII (only keys ending in -bin take binary values)"
            ));
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Metadata;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of metadata keys to lists of values")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut metadata = BTreeMap::new();
                while let Some((key, values)) = map.next_entry::<String, Vec<String>>()? {
                    check(&key, &values).map_err(de::Error::custom)?;
                    metadata.insert(key, values);
                }
                Ok(Metadata(metadata))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    fn grpc(block: &str) -> Result<super::GrpcProbe, String> {
        parse(&format!("modules:\n  m:\n    prober: grpc\n{block}"))
            .map(|mut config| config.modules.remove("m").unwrap().grpc)
    }

    #[test]
    fn fallback_is_on_only_with_a_grpc_block() {
        assert!(!grpc("").unwrap().ip_protocol_fallback);
        assert!(!grpc("    grpc:\n").unwrap().ip_protocol_fallback);
        assert!(!grpc("    grpc: ~\n").unwrap().ip_protocol_fallback);
        assert!(grpc("    grpc: {}\n").unwrap().ip_protocol_fallback);
        assert!(
            grpc("    grpc: {service: a}\n")
                .unwrap()
                .ip_protocol_fallback
        );
        assert!(
            !grpc("    grpc: {ip_protocol_fallback: false}\n")
                .unwrap()
                .ip_protocol_fallback
        );
    }

    #[test]
    fn every_option_reads() {
        let probe = grpc(
            "    grpc:\n      service: health\n      tls: true\n      tls_config: {server_name: a.example}\n      preferred_ip_protocol: ip4\n      metadata:\n        authorization: [Bearer x]\n        key1: [v1, 2]\n        trace-bin: [\"\\u00ff\\u0000\"]\n",
        )
        .unwrap();
        assert_eq!(probe.service, "health");
        assert!(probe.tls);
        assert_eq!(probe.tls_config.server_name.as_deref(), Some("a.example"));
        assert_eq!(probe.preferred_ip_protocol, crate::config::IpProtocol::Ip4);
        let metadata = &probe.metadata.0;
        assert_eq!(metadata["authorization"], ["Bearer x"]);
        assert_eq!(metadata["key1"], ["v1", "2"]);
        assert_eq!(metadata["trace-bin"], ["\u{ff}\u{0}"]);
    }

    #[test]
    fn metadata_grpc_go_would_refuse_or_drop_is_an_error_naming_the_key() {
        for (metadata, expected) in [
            ("Key: [v]", "\"Key\" contains characters not in [0-9a-z-_.]"),
            (
                "\"a b\": [v]",
                "\"a b\" contains characters not in [0-9a-z-_.]",
            ),
            ("\"\": [v]", "an empty metadata key"),
            ("user-agent: [x]", "\"user-agent\" is reserved"),
            ("grpc-timeout: [1S]", "\"grpc-timeout\" is reserved"),
            ("te: [trailers]", "\"te\" is reserved"),
            ("\":authority\": [x]", "\":authority\" is reserved"),
            (
                "connection: [close]",
                "\"connection\" is a connection-specific header",
            ),
            ("key: [\"a\\tb\"]", "value \"a\\tb\" is not printable ASCII"),
            ("key: [\"\u{e9}\"]", "is not printable ASCII"),
            ("key: v", "invalid type: string"),
        ] {
            let err = grpc(&format!("    grpc:\n      metadata: {{{metadata}}}\n")).unwrap_err();
            assert!(err.contains(expected), "{metadata}: {err}");
            assert!(err.contains("modules.m.grpc.metadata"), "{metadata}: {err}");
        }
    }

    #[test]
    fn binary_values_may_hold_anything() {
        assert!(
            grpc("    grpc:\n      metadata: {x-bin: [\"\\t\\u00e9\"], y: [\"\"], z: []}\n")
                .is_ok()
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = grpc("    grpc:\n      servce: a\n").unwrap_err();
        assert!(err.contains("unknown field `servce`"), "{err}");
    }
}
