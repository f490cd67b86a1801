//! Settings of the dns prober: one query to a DNS server, with
//! blackbox_exporter's names and defaults.
//!
//! Names (query types, classes, rcodes) are miekg/dns's, the library
//! blackbox_exporter 0.28 queries with (v1.1.68), case-sensitive as there.
//! blackbox_exporter checks `query_name`, `query_type` and `query_class`
//! when it loads the file and the rest when it probes; lookout checks
//! everything at load: a transport other than udp or tcp, `dns_over_tls`
//! over udp, an rcode name miekg does not know, a source address that is no
//! IP, a regexp that does not compile, and a query name miekg could not put
//! on the wire are errors naming the key, where blackbox_exporter would fail
//! every probe of the module.

use std::{fmt, net::IpAddr, str::FromStr};

use serde::{de, Deserialize, Deserializer};

use super::{
    pattern::Pattern,
    tls::TlsConfig,
    values::{deserialize_from_str, IpProtocol},
};

/// Settings of the dns prober.
#[derive(Debug, Clone)]
pub struct DnsProbe {
    /// Address family tried first for the server's name.
    pub(crate) preferred_ip_protocol: IpProtocol,
    /// Whether the other family may be used.
    pub(crate) ip_protocol_fallback: bool,
    /// Local address to send from.
    pub(crate) source_ip_address: Option<IpAddr>,
    /// udp (the default) or tcp.
    pub(crate) transport_protocol: Transport,
    /// DNS over TLS (RFC 7858): TLS on the tcp connection, port 853 by default.
    pub(crate) dns_over_tls: bool,
    /// TLS settings when `dns_over_tls` is set.
    pub tls_config: TlsConfig,
    /// The name asked about, as written (miekg's escapes allowed).
    pub(crate) query_name: String,
    /// `query_name` as it goes on the wire.
    pub(crate) query_wire: Vec<u8>,
    /// The type asked about (ANY unless set).
    pub(crate) query_type: u16,
    /// The class asked about (IN unless set).
    pub(crate) query_class: u16,
    /// The RD bit of the query.
    pub(crate) recursion_desired: bool,
    /// Acceptable rcodes; `None` accepts NOERROR only, an empty list none.
    pub(crate) valid_rcodes: Option<Vec<u16>>,
    /// Checks of the answer section's records.
    pub(crate) validate_answer_rrs: RrValidator,
    /// Checks of the authority section's records.
    pub(crate) validate_authority_rrs: RrValidator,
    /// Checks of the additional section's records.
    pub(crate) validate_additional_rrs: RrValidator,
}

/// A module without a `dns:` block: blackbox_exporter then asks for `.`,
/// type ANY (only a written block must name the query).
impl Default for DnsProbe {
    fn default() -> Self {
        Self {
            preferred_ip_protocol: IpProtocol::Ip6,
            ip_protocol_fallback: true,
            source_ip_address: None,
            transport_protocol: Transport::Udp,
            dns_over_tls: false,
            tls_config: TlsConfig::default(),
            query_name: String::new(),
            query_wire: vec![0],
            query_type: TYPE_ANY,
            query_class: CLASS_IN,
            recursion_desired: true,
            valid_rcodes: None,
            validate_answer_rrs: RrValidator::default(),
            validate_authority_rrs: RrValidator::default(),
            validate_additional_rrs: RrValidator::default(),
        }
    }
}

impl DnsProbe {
    /// Whether any section has a regexp rule: only then is record text made.
    pub(crate) fn has_rr_rules(&self) -> bool {
        [
            &self.validate_answer_rrs,
            &self.validate_authority_rrs,
            &self.validate_additional_rrs,
        ]
        .iter()
        .any(|v| !v.is_empty())
    }
}

/// The four regexp rules of one section, matched against each record's
/// text as miekg/dns prints it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RrValidator {
    /// Fail if any record matches any of these.
    pub(crate) fail_if_matches_regexp: Vec<Pattern>,
    /// Fail unless every record matches every one of these.
    pub(crate) fail_if_all_match_regexp: Vec<Pattern>,
    /// Fail if any record misses any of these (or there is no record).
    pub(crate) fail_if_not_matches_regexp: Vec<Pattern>,
    /// Fail if no record matches any of these (or there is no record).
    pub(crate) fail_if_none_matches_regexp: Vec<Pattern>,
}

impl RrValidator {
    /// Whether the section has no rule.
    pub(crate) fn is_empty(&self) -> bool {
        self.fail_if_matches_regexp.is_empty()
            && self.fail_if_all_match_regexp.is_empty()
            && self.fail_if_not_matches_regexp.is_empty()
            && self.fail_if_none_matches_regexp.is_empty()
    }
}

/// How the query travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// One datagram each way.
    Udp,
    /// A length-prefixed message on a connection (RFC 1035 4.2.2).
    Tcp,
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            // Empty is blackbox_exporter's default, udp.
            "" | "udp" => Ok(Self::Udp),
            "tcp" => Ok(Self::Tcp),
            _ => Err(format!(
                "transport protocol {text:?} is not valid: expected udp or tcp"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "udp or tcp")
    }
}

/// Read as [`Written`], then checked inside the mapping's visitor, so that
/// an error names the `dns` block and its line (a `try_from` error would
/// name the module's).
impl<'de> Deserialize<'de> for DnsProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = DnsProbe;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the dns prober's settings")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<DnsProbe, A::Error> {
                let written = Written::deserialize(de::value::MapAccessDeserializer::new(map))?;
                DnsProbe::try_from(written).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The block as written, before the checks that involve two keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    preferred_ip_protocol: IpProtocol,
    #[serde(default = "yes")]
    ip_protocol_fallback: bool,
    #[serde(default)]
    source_ip_address: SourceAddress,
    #[serde(default)]
    transport_protocol: Option<Transport>,
    #[serde(default)]
    dns_over_tls: bool,
    #[serde(default)]
    tls_config: TlsConfig,
    #[serde(default)]
    query_name: QueryName,
    #[serde(default)]
    query_type: Option<QueryType>,
    #[serde(default)]
    query_class: Option<QueryClass>,
    #[serde(default = "yes")]
    recursion_desired: bool,
    #[serde(default)]
    valid_rcodes: Option<Vec<Rcode>>,
    #[serde(default)]
    validate_answer_rrs: RrValidator,
    #[serde(default)]
    validate_authority_rrs: RrValidator,
    #[serde(default)]
    validate_additional_rrs: RrValidator,
}

fn yes() -> bool {
    true
}

impl TryFrom<Written> for DnsProbe {
    type Error = String;

    fn try_from(written: Written) -> Result<Self, Self::Error> {
        let QueryName { text, wire } = written.query_name;
        if text.is_empty() {
            // blackbox_exporter's own message, at load as there.
            return Err("query name must be set for DNS module".to_owned());
        }
        let transport = written.transport_protocol.unwrap_or(Transport::Udp);
        if written.dns_over_tls && transport == Transport::Udp {
            return Err(
                "dns_over_tls needs transport_protocol: tcp (DNS over TLS runs on a TCP connection)"
                    .to_owned(),
            );
        }
        Ok(Self {
            preferred_ip_protocol: written.preferred_ip_protocol,
            ip_protocol_fallback: written.ip_protocol_fallback,
            source_ip_address: written.source_ip_address.0,
            transport_protocol: transport,
            dns_over_tls: written.dns_over_tls,
            tls_config: written.tls_config,
            query_name: text,
            query_wire: wire,
            query_type: written.query_type.map_or(TYPE_ANY, |t| t.0),
            query_class: written.query_class.map_or(CLASS_IN, |c| c.0),
            recursion_desired: written.recursion_desired,
            valid_rcodes: written
                .valid_rcodes
                .map(|codes| codes.into_iter().map(|c| c.0).collect()),
            validate_answer_rrs: written.validate_answer_rrs,
            validate_authority_rrs: written.validate_authority_rrs,
            validate_additional_rrs: written.validate_additional_rrs,
        })
    }
}

/// `source_ip_address`: an IP, or empty for none (as Go reads it).
#[derive(Default)]
struct SourceAddress(Option<IpAddr>);

impl FromStr for SourceAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Ok(Self(None));
        }
        text.parse()
            .map(|ip| Self(Some(ip)))
            .map_err(|_| format!("source ip address {text:?} is not an IP address"))
    }
}

impl<'de> Deserialize<'de> for SourceAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "an IP address")
    }
}

/// `query_name` and its wire form.
#[derive(Default)]
struct QueryName {
    text: String,
    wire: Vec<u8>,
}

impl FromStr for QueryName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err("query name must be set for DNS module".to_owned());
        }
        Ok(Self {
            text: text.to_owned(),
            wire: query_wire(text)?,
        })
    }
}

impl<'de> Deserialize<'de> for QueryName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "a domain name")
    }
}

/// The wire form miekg/dns gives a query name: `Fqdn(name)` packed by its
/// `packDomainName`, escapes (`\.`, `\DDD`, `\X`) decoded, other bytes
/// (non-ASCII too) sent as they are, case kept. A name it would refuse to
/// pack (miekg then fails every query with "bad rdata" or "not fully
/// qualified") is an error here, and so is one longer than 255 octets, which
/// miekg would send anyway.
pub(crate) fn query_wire(name: &str) -> Result<Vec<u8>, String> {
    let invalid = |why: &str| format!("query name {name:?} {why}");
    let mut text = name.as_bytes().to_vec();
    if !is_fqdn(&text) {
        text.push(b'.');
    }
    if !is_fqdn(&text) {
        return Err(invalid("ends in a lone backslash"));
    }
    if text == b"." {
        return Ok(vec![0]);
    }
    let mut wire = Vec::with_capacity(text.len() + 1);
    let mut label = Vec::new();
    let mut bytes = text.iter().enumerate();
    while let Some((at, &byte)) = bytes.next() {
        match byte {
            b'\\' => {
                let rest = &text[at + 1..];
                if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                    // Go computes \DDD in a byte: \999 is 231, as there.
                    let value = rest[..3]
                        .iter()
                        .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
                    label.push((value % 256) as u8);
                    bytes.nth(2);
                } else if let Some((_, &escaped)) = bytes.next() {
                    label.push(escaped);
                }
            }
            b'.' => {
                if at == 0 {
                    return Err(invalid("starts with a dot"));
                }
                if label.is_empty() {
                    return Err(invalid("has an empty label (two dots in a row)"));
                }
                if label.len() > 63 {
                    return Err(invalid("has a label longer than 63 octets"));
                }
                wire.push(label.len() as u8);
                wire.append(&mut label);
            }
            _ => label.push(byte),
        }
    }
    wire.push(0);
    if wire.len() > 255 {
        return Err(invalid("is longer than 255 octets on the wire"));
    }
    Ok(wire)
}

/// miekg's `IsFqdn`: ends in a dot that no backslash escapes.
fn is_fqdn(text: &[u8]) -> bool {
    match text.split_last() {
        Some((b'.', rest)) => rest.iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0,
        _ => false,
    }
}

/// A query type by miekg's name.
struct QueryType(u16);

impl FromStr for QueryType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TYPES
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(code, _)| Self(*code))
            .ok_or_else(|| format!("query type '{text}' is not valid"))
    }
}

impl<'de> Deserialize<'de> for QueryType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "a query type such as A, AAAA, MX or SOA")
    }
}

/// A query class by miekg's name.
struct QueryClass(u16);

impl FromStr for QueryClass {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CLASSES
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(code, _)| Self(*code))
            .ok_or_else(|| format!("query class '{text}' is not valid"))
    }
}

impl<'de> Deserialize<'de> for QueryClass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "a query class such as IN or CH")
    }
}

/// An rcode by miekg's name.
struct Rcode(u16);

impl FromStr for Rcode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RCODES
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(code, _)| Self(*code))
            .ok_or_else(|| {
                format!(
                    "rcode {text:?} is not valid (blackbox_exporter would fail every probe): expected one of {}",
                    RCODES.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
                )
            })
    }
}

impl<'de> Deserialize<'de> for Rcode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "an rcode name such as NOERROR or NXDOMAIN")
    }
}

/// Type ANY, the default query type.
pub(crate) const TYPE_ANY: u16 = 255;
/// Class IN, the default query class.
pub(crate) const CLASS_IN: u16 = 1;

/// miekg/dns v1.1.68's `TypeToString`: the query types `query_type` takes
/// and the mnemonics record text uses.
pub(crate) const TYPES: &[(u16, &str)] = &[
    (0, "None"),
    (1, "A"),
    (2, "NS"),
    (3, "MD"),
    (4, "MF"),
    (5, "CNAME"),
    (6, "SOA"),
    (7, "MB"),
    (8, "MG"),
    (9, "MR"),
    (10, "NULL"),
    (12, "PTR"),
    (13, "HINFO"),
    (14, "MINFO"),
    (15, "MX"),
    (16, "TXT"),
    (17, "RP"),
    (18, "AFSDB"),
    (19, "X25"),
    (20, "ISDN"),
    (21, "RT"),
    (23, "NSAP-PTR"),
    (24, "SIG"),
    (25, "KEY"),
    (26, "PX"),
    (27, "GPOS"),
    (28, "AAAA"),
    (29, "LOC"),
    (30, "NXT"),
    (31, "EID"),
    (32, "NIMLOC"),
    (33, "SRV"),
    (34, "ATMA"),
    (35, "NAPTR"),
    (36, "KX"),
    (37, "CERT"),
    (39, "DNAME"),
    (41, "OPT"),
    (42, "APL"),
    (43, "DS"),
    (44, "SSHFP"),
    (45, "IPSECKEY"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (49, "DHCID"),
    (50, "NSEC3"),
    (51, "NSEC3PARAM"),
    (52, "TLSA"),
    (53, "SMIMEA"),
    (55, "HIP"),
    (56, "NINFO"),
    (57, "RKEY"),
    (58, "TALINK"),
    (59, "CDS"),
    (60, "CDNSKEY"),
    (61, "OPENPGPKEY"),
    (62, "CSYNC"),
    (63, "ZONEMD"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (99, "SPF"),
    (100, "UINFO"),
    (101, "UID"),
    (102, "GID"),
    (103, "UNSPEC"),
    (104, "NID"),
    (105, "L32"),
    (106, "L64"),
    (107, "LP"),
    (108, "EUI48"),
    (109, "EUI64"),
    (128, "NXNAME"),
    (249, "TKEY"),
    (250, "TSIG"),
    (251, "IXFR"),
    (252, "AXFR"),
    (253, "MAILB"),
    (254, "MAILA"),
    (255, "ANY"),
    (256, "URI"),
    (257, "CAA"),
    (258, "AVC"),
    (260, "AMTRELAY"),
    (261, "RESINFO"),
    (32768, "TA"),
    (32769, "DLV"),
    (65535, "Reserved"),
];

/// miekg/dns's `ClassToString`.
pub(crate) const CLASSES: &[(u16, &str)] = &[
    (1, "IN"),
    (2, "CS"),
    (3, "CH"),
    (4, "HS"),
    (254, "NONE"),
    (255, "ANY"),
];

/// miekg/dns v1.1.68's `StringToRcode` (BADVERS shares 16 with BADSIG and
/// is not in it; NOTIMPL is its old spelling of NOTIMP).
pub(crate) const RCODES: &[(u16, &str)] = &[
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (4, "NOTIMPL"),
    (5, "REFUSED"),
    (6, "YXDOMAIN"),
    (7, "YXRRSET"),
    (8, "NXRRSET"),
    (9, "NOTAUTH"),
    (10, "NOTZONE"),
    (11, "DSOTYPENI"),
    (16, "BADSIG"),
    (17, "BADKEY"),
    (18, "BADTIME"),
    (19, "BADMODE"),
    (20, "BADNAME"),
    (21, "BADALG"),
    (22, "BADTRUNC"),
    (23, "BADCOOKIE"),
];

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    fn dns(block: &str) -> Result<DnsProbe, String> {
        parse(&format!("modules:\n  m:\n    prober: dns\n{block}"))
            .map(|mut config| config.modules.remove("m").unwrap().dns)
    }

    #[test]
    fn defaults_are_blackbox_exporters() {
        let probe = dns("    dns:\n      query_name: example.com\n").unwrap();
        assert_eq!(probe.query_type, TYPE_ANY);
        assert_eq!(probe.query_class, CLASS_IN);
        assert_eq!(probe.transport_protocol, Transport::Udp);
        assert!(probe.recursion_desired && probe.ip_protocol_fallback);
        assert_eq!(probe.preferred_ip_protocol, IpProtocol::Ip6);
        assert_eq!(probe.valid_rcodes, None);
        assert!(!probe.has_rr_rules());
        // Without a dns block blackbox_exporter asks for the root, type ANY.
        let bare = dns("").unwrap();
        assert_eq!(bare.query_wire, [0]);
        assert_eq!(bare.query_type, TYPE_ANY);
    }

    #[test]
    fn every_option_reads() {
        let probe = dns(concat!(
            "    dns:\n",
            "      query_name: www.example.com\n",
            "      query_type: SOA\n",
            "      query_class: CH\n",
            "      transport_protocol: tcp\n",
            "      dns_over_tls: true\n",
            "      tls_config: {server_name: dns.example}\n",
            "      recursion_desired: false\n",
            "      valid_rcodes: [NOERROR, NXDOMAIN, NOTIMPL, DSOTYPENI]\n",
            "      preferred_ip_protocol: ip4\n",
            "      ip_protocol_fallback: false\n",
            "      source_ip_address: 127.0.0.1\n",
            "      validate_answer_rrs:\n",
            "        fail_if_matches_regexp: [a]\n",
            "        fail_if_all_match_regexp: [b]\n",
            "      validate_authority_rrs:\n",
            "        fail_if_not_matches_regexp: [c]\n",
            "      validate_additional_rrs:\n",
            "        fail_if_none_matches_regexp: [d]\n",
        ))
        .unwrap();
        assert_eq!(probe.query_type, 6);
        assert_eq!(probe.query_class, 3);
        assert_eq!(probe.transport_protocol, Transport::Tcp);
        assert!(probe.dns_over_tls && !probe.recursion_desired && !probe.ip_protocol_fallback);
        assert_eq!(probe.valid_rcodes, Some(vec![0, 3, 4, 11]));
        assert_eq!(probe.source_ip_address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(probe.tls_config.server_name.as_deref(), Some("dns.example"));
        assert_eq!(probe.query_wire, b"\x03www\x07example\x03com\x00");
        assert!(probe.has_rr_rules());
        assert_eq!(probe.validate_answer_rrs.fail_if_all_match_regexp.len(), 1);
        // An empty list accepts no rcode; an empty source address is none.
        let probe =
            dns("    dns: {query_name: a, valid_rcodes: [], source_ip_address: ''}\n").unwrap();
        assert_eq!(probe.valid_rcodes, Some(vec![]));
        assert_eq!(probe.source_ip_address, None);
    }

    #[test]
    fn invalid_values_are_errors_naming_the_key_and_line() {
        for (block, expected) in [
            ("      query_type: a\n", "query type 'a' is not valid"),
            (
                "      query_type: TYPE1\n",
                "query type 'TYPE1' is not valid",
            ),
            ("      query_class: in\n", "query class 'in' is not valid"),
            (
                "      valid_rcodes: [NOERROR, BADVERS]\n",
                "rcode \"BADVERS\" is not valid",
            ),
            (
                "      transport_protocol: sctp\n",
                "transport protocol \"sctp\" is not valid",
            ),
            (
                "      source_ip_address: localhost\n",
                "\"localhost\" is not an IP address",
            ),
            (
                "      validate_answer_rrs: {fail_if_matches_regexp: ['(']}\n",
                "invalid regexp",
            ),
            (
                "      validate_answer_rrs: {fail_if_match_regexp: [a]}\n",
                "unknown field",
            ),
            ("      query_nam: x\n", "unknown field `query_nam`"),
        ] {
            let err =
                dns(&format!("    dns:\n      query_name: example.com\n{block}")).unwrap_err();
            assert!(err.contains(expected), "{block}: {err}");
            assert!(err.contains("modules.m.dns"), "{block}: {err}");
            assert!(err.contains("line 6"), "{block}: {err}");
        }
    }

    #[test]
    fn a_dns_block_must_name_the_query_and_dot_needs_tcp() {
        for (block, expected) in [
            ("    dns: {}\n", "query name must be set for DNS module"),
            (
                "    dns: {query_name: ''}\n",
                "query name must be set for DNS module",
            ),
            (
                "    dns:\n      query_name: a\n      dns_over_tls: true\n",
                "dns_over_tls needs transport_protocol: tcp",
            ),
        ] {
            let err = dns(block).unwrap_err();
            assert!(err.contains(expected), "{block}: {err}");
            assert!(err.contains("modules.m.dns"), "{block}: {err}");
            assert!(err.contains("line "), "{block}: {err}");
        }
        // blackbox_exporter checks the block whatever the prober.
        let err = parse("modules:\n  m:\n    prober: http\n    dns: {}\n").unwrap_err();
        assert!(err.contains("query name must be set"), "{err}");
    }

    #[test]
    fn query_names_are_packed_as_miekg_packs_them() {
        for (name, wire) in [
            ("example.com", &b"\x07example\x03com\x00"[..]),
            ("example.com.", b"\x07example\x03com\x00"),
            (".", b"\x00"),
            ("Ex\\.ample", b"\x08Ex.ample\x00"),
            ("a\\065\\999b", b"\x04aA\xe7b\x00"),
            ("a\\\\", b"\x02a\\\x00"),
            ("\u{e9}t\u{e9}", "\x05\u{e9}t\u{e9}\x00".as_bytes()),
            ("a\\.", b"\x02a.\x00"),
        ] {
            assert_eq!(query_wire(name).unwrap(), wire, "{name}");
        }
        for (name, why) in [
            (".example", "starts with a dot"),
            ("a..b", "empty label"),
            ("a\\", "lone backslash"),
            (&"a".repeat(64), "longer than 63"),
            (
                &[
                    "a".repeat(63),
                    "b".repeat(63),
                    "c".repeat(63),
                    "d".repeat(63),
                ]
                .join("."),
                "longer than 255",
            ),
        ] {
            let err = query_wire(name).unwrap_err();
            assert!(err.contains(why), "{name}: {err}");
        }
        let err = dns("    dns:\n      query_name: a..b\n").unwrap_err();
        assert!(
            err.contains("modules.m.dns.query_name") && err.contains("line 5"),
            "{err}"
        );
    }

    #[test]
    fn type_class_and_rcode_names_are_miekgs() {
        for (name, code) in [
            ("A", 1),
            ("NSAP-PTR", 23),
            ("None", 0),
            ("Reserved", 65535),
            ("RESINFO", 261),
            ("TA", 32768),
        ] {
            assert_eq!(name.parse::<QueryType>().unwrap().0, code, "{name}");
        }
        assert!("NSAPPTR".parse::<QueryType>().is_err());
        assert_eq!("NONE".parse::<QueryClass>().unwrap().0, 254);
        assert_eq!("NOTIMPL".parse::<Rcode>().unwrap().0, 4);
        assert_eq!("BADSIG".parse::<Rcode>().unwrap().0, 16);
        assert!("noerror".parse::<Rcode>().is_err());
    }
}
