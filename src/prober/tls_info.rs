//! What blackbox_exporter reports about a TLS connection: certificate
//! expiries, the leaf's identity and the negotiated version.
//!
//! Certificates are read with [`super::certificate`], once each. Subject and
//! issuer are rendered the way Go's `pkix.Name.String()` renders them (fixed
//! attribute order, last CN only, `+` for multi-valued attributes, unknown
//! attributes as `oid=#hex`), so label values match blackbox_exporter's
//! exactly.

use rustls::{
    pki_types::{CertificateDer, ServerName},
    CipherSuite, ProtocolVersion,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{client::TlsStream, TlsConnector};

use super::certificate::{Attribute, Certificate, GeneralName, Name};
use super::report::{
    Report, SSL_EARLIEST_EXPIRY, SSL_LAST_CHAIN_EXPIRY, SSL_LAST_CHAIN_INFO, TLS_CIPHER,
    TLS_VERSION,
};

/// Go's zero `time.Time` as a Unix timestamp: what blackbox_exporter reports
/// as the last chain expiry when nothing was verified.
const GO_ZERO_TIME: f64 = -62_135_596_800.0;

/// The TLS facts of one connection, captured right after the handshake.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsState {
    /// Certificates as the server sent them, leaf first.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// Negotiated protocol version.
    pub version: Option<ProtocolVersion>,
    /// Negotiated cipher suite.
    pub cipher: Option<CipherSuite>,
    /// Whether the chain was verified (false with `insecure_skip_verify`).
    pub verified: bool,
}

/// Which TLS metrics a prober reports (blackbox_exporter 0.28): all but the
/// cipher for tcp and unix, all five for http, and for grpc neither the
/// chain's expiry nor the cipher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsMetrics {
    /// `probe_ssl_last_chain_expiry_timestamp_seconds`.
    pub chain_expiry: bool,
    /// `probe_tls_cipher_info` (0.26, #1203).
    pub cipher: bool,
}

impl TlsMetrics {
    /// The tcp and unix probers' set.
    pub(crate) const STREAM: Self = Self {
        chain_expiry: true,
        cipher: false,
    };
    /// The http prober's set.
    pub(crate) const HTTP: Self = Self {
        chain_expiry: true,
        cipher: true,
    };
    /// The grpc prober's set: earliest expiry, version and leaf only.
    pub(crate) const GRPC: Self = Self {
        chain_expiry: false,
        cipher: false,
    };
}

/// Completes a TLS handshake over `stream` with the module's client setup and
/// captures what blackbox_exporter reports about it.
pub(super) async fn connect<S>(
    tls: &super::client_tls::ClientTls,
    server_name: &str,
    stream: S,
    peer: &(dyn std::fmt::Display + Sync),
) -> Result<(TlsStream<S>, TlsState), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| format!("invalid TLS server name {server_name:?}: {e}"))?;
    let stream = TlsConnector::from(tls.config.clone())
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake with {peer}: {e}"))?;
    let (_, session) = stream.get_ref();
    let state = TlsState {
        peer_certificates: session
            .peer_certificates()
            .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
        version: session.protocol_version(),
        cipher: session.negotiated_cipher_suite().map(|suite| suite.suite()),
        verified: !tls.insecure,
    };
    Ok((stream, state))
}

/// Registers and sets the TLS metrics `metrics` names. `extra_roots` are the
/// module's `ca_file` certificates, whose expiry counts when they anchor the
/// chain.
pub(crate) fn record(
    report: &mut Report,
    state: &TlsState,
    extra_roots: &[super::client_tls::RootExpiry],
    metrics: TlsMetrics,
) {
    let parsed: Vec<Certificate<'_>> = state
        .peer_certificates
        .iter()
        .filter_map(|der| Certificate::parse(der))
        .collect();

    let earliest = parsed
        .iter()
        .map(|cert| cert.not_after as f64)
        .fold(f64::INFINITY, f64::min);
    report.set(
        SSL_EARLIEST_EXPIRY,
        if earliest.is_finite() { earliest } else { 0.0 },
    );

    let last_chain = if state.verified {
        // The verified chain is what the server sent plus the root that
        // anchors it. Roots from webpki-roots carry no validity dates, so
        // only a ca_file root adds its own expiry.
        let anchor = parsed.last().and_then(|top| {
            let (issuer, subject) = (top.issuer.raw(), top.subject.raw());
            extra_roots
                .iter()
                .find(|root| root.subject == issuer && root.subject != subject)
                .map(|root| root.not_after)
        });
        anchor.map_or(earliest, |a| earliest.min(a))
    } else {
        GO_ZERO_TIME
    };
    if metrics.chain_expiry {
        report.set(
            SSL_LAST_CHAIN_EXPIRY,
            if last_chain.is_finite() {
                last_chain
            } else {
                0.0
            },
        );
    }

    if let (Some(leaf), Some(der)) = (parsed.first(), state.peer_certificates.first()) {
        let fingerprint = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        let dns_names: Vec<&str> = leaf
            .subject_alt_names()
            .into_iter()
            .filter_map(|name| match name {
                GeneralName::Dns(dns) => Some(dns),
                _ => None,
            })
            .collect();
        // Go prints the serial's magnitude in lower-case hex, without
        // leading zero bytes (0.26, #1333).
        let serial = &leaf.serial[leaf.serial.iter().take_while(|b| **b == 0).count()..];
        report.set_labeled(
            SSL_LAST_CHAIN_INFO,
            &[
                &fingerprint,
                &go_name(&leaf.issuer),
                &hex(serial),
                &go_name(&leaf.subject),
                &dns_names.join(","),
            ],
            1.0,
        );
    }
    if metrics.cipher {
        report.set_labeled(TLS_CIPHER, &[&cipher_name(state.cipher)], 1.0);
    }

    let version = match state.version {
        Some(ProtocolVersion::TLSv1_0) => "TLS 1.0",
        Some(ProtocolVersion::TLSv1_1) => "TLS 1.1",
        Some(ProtocolVersion::TLSv1_2) => "TLS 1.2",
        Some(ProtocolVersion::TLSv1_3) => "TLS 1.3",
        _ => "unknown",
    };
    report.set_labeled(TLS_VERSION, &[version], 1.0);
}

/// Go's `tls.CipherSuiteName`: the IANA name (rustls prefixes its TLS 1.3
/// suites with `TLS13_`).
fn cipher_name(suite: Option<CipherSuite>) -> String {
    match suite {
        None => "unknown".to_owned(),
        Some(suite) => {
            let name = suite
                .as_str()
                .map_or_else(|| format!("0x{:04X}", u16::from(suite)), str::to_owned);
            match name.strip_prefix("TLS13_") {
                Some(rest) => format!("TLS_{rest}"),
                None => name,
            }
        }
    }
}

/// Attribute types Go parses into named fields (2.5.4.N, by N), in
/// `ToRDNSequence` order (C, ST, L, STREET, POSTALCODE, O, OU, then CN,
/// SERIALNUMBER).
const STANDARD: [(u8, &str); 9] = [
    (6, "C"),
    (8, "ST"),
    (7, "L"),
    (9, "STREET"),
    (17, "POSTALCODE"),
    (10, "O"),
    (11, "OU"),
    (3, "CN"),
    (5, "SERIALNUMBER"),
];

/// Go's `pkix.Name.String()`: the RDN sequence Go builds from its fields
/// (the attributes it does not know first, each its own RDN, then the
/// standard fields in `STANDARD` order, a field's values joined by `+`),
/// printed last to first. Written straight into one string.
pub(crate) fn go_name(name: &Name<'_>) -> String {
    let attributes = name.attributes().unwrap_or_default();
    let standard = |atv: &Attribute<'_>| {
        atv.standard_type()
            .filter(|n| STANDARD.iter().any(|(t, _)| t == n))
    };
    let mut out = String::new();
    for &(field, short) in STANDARD.iter().rev() {
        let values = || {
            attributes
                .iter()
                .filter(move |atv| standard(atv) == Some(field))
                .filter_map(|atv| atv.as_str())
        };
        let mut first = true;
        let mut push = |out: &mut String, value: &str| {
            if !first {
                out.push('+');
            } else if !out.is_empty() {
                out.push(',');
            }
            first = false;
            out.push_str(short);
            out.push('=');
            push_escaped_dn(out, value);
        };
        if matches!(short, "CN" | "SERIALNUMBER") {
            // Single-valued fields in Go's struct: the last one wins.
            if let Some(value) = values().next_back().filter(|v| !v.is_empty()) {
                push(&mut out, value);
            }
        } else {
            values().for_each(|value| push(&mut out, value));
        }
    }
    // Non-string values are printed as they were encoded.
    for atv in attributes
        .iter()
        .rev()
        .filter(|atv| standard(atv).is_none())
    {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&atv.oid());
        out.push_str("=#");
        match atv.as_str() {
            Some(text) => push_hex(&mut out, &der_string(text)),
            None => push_hex(&mut out, atv.value),
        }
    }
    out
}

/// Go's DN value escaping.
#[cfg(test)]
fn escape_dn(value: &str) -> String {
    let mut out = String::new();
    push_escaped_dn(&mut out, value);
    out
}

/// Go's DN value escaping, appended to `out`.
fn push_escaped_dn(out: &mut String, value: &str) {
    let last = value.len().saturating_sub(1);
    for (i, c) in value.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => i == 0 || i == last,
            '#' => i == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A string re-encoded as Go's `asn1.Marshal` does: PrintableString when
/// every character allows it, UTF8String otherwise.
fn der_string(text: &str) -> Vec<u8> {
    let printable = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?*".contains(&b));
    let mut der = vec![if printable { 0x13 } else { 0x0c }];
    let len = text.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(text.as_bytes());
    der
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(dn: rcgen::DistinguishedName) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        go_name(&Certificate::parse(cert.der()).unwrap().subject)
    }

    #[test]
    fn names_render_as_go_renders_them() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::StateOrProvinceName, "Berlin");
        dn.push(rcgen::DnType::OrganizationName, "Lookout, Inc.");
        dn.push(rcgen::DnType::OrganizationalUnitName, "QA");
        dn.push(rcgen::DnType::CommonName, "localhost");
        // blackbox_exporter 0.23 printed exactly this for the same name.
        assert_eq!(
            name_of(dn),
            "CN=localhost,OU=QA,O=Lookout\\, Inc.,ST=Berlin,C=DE"
        );
    }

    #[test]
    fn values_are_escaped_as_go_escapes_them() {
        assert_eq!(escape_dn("#lead"), "\\#lead");
        assert_eq!(escape_dn(" a b "), "\\ a b\\ ");
        assert_eq!(escape_dn("a+b;c<d>\"e\\"), "a\\+b\\;c\\<d\\>\\\"e\\\\");
    }

    #[test]
    fn unknown_attributes_are_hex_der_like_go() {
        // The oracle printed 0.9.2342.19200300.100.1.1=#13027531 for UID "u1".
        assert_eq!(hex(&der_string("u1")), "13027531");
        assert_eq!(der_string("a@b")[0], 0x0c);
    }
}
