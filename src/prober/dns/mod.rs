//! The dns prober, as blackbox_exporter 0.28 runs it: one query to the
//! server the target names (`host[:port]`, port 53, or 853 with
//! `dns_over_tls`), then checks of the rcode and of each section's records.
//!
//! The metrics, their registration order and the success rules are
//! blackbox_exporter's: the phases and the record counts exist from the
//! start, the counts and `probe_dns_query_succeeded` are set once a response
//! was read (a wrong rcode still counts as a query that succeeded), and
//! `probe_dns_serial` only for SOA queries. No TLS metrics, as there.
//!
//! `exchange.rs` speaks to the server, `message.rs` builds the query and
//! reads the response, `records.rs` prints records as miekg/dns does, for
//! the regexps.

mod exchange;
mod message;
mod records;

pub use self::message::{read_response, ResponseText};

use std::net::SocketAddr;

use self::{
    exchange::{Server, Timing},
    message::Response,
    records::Text,
};
use super::{
    address::{port_number, split_target},
    report::{Gauge, Report},
    PreparedModule, ProbeOptions,
};
use crate::config::{DnsProbe, RrValidator, Transport};

/// Per-phase timings: `resolve`, `connect`, `request`.
pub(crate) const DURATION: Gauge = Gauge {
    name: "probe_dns_duration_seconds",
    help: "Duration of DNS request by phase",
    labels: &["phase"],
};
/// Records in the answer section.
pub(crate) const ANSWER_RRS: Gauge = Gauge {
    name: "probe_dns_answer_rrs",
    help: "Returns number of entries in the answer resource record list",
    labels: &[],
};
/// Records in the authority section.
pub(crate) const AUTHORITY_RRS: Gauge = Gauge {
    name: "probe_dns_authority_rrs",
    help: "Returns number of entries in the authority resource record list",
    labels: &[],
};
/// Records in the additional section.
pub(crate) const ADDITIONAL_RRS: Gauge = Gauge {
    name: "probe_dns_additional_rrs",
    help: "Returns number of entries in the additional resource record list",
    labels: &[],
};
/// 1 once a response was read, whatever its rcode.
pub(crate) const QUERY_SUCCEEDED: Gauge = Gauge {
    name: "probe_dns_query_succeeded",
    help: "Displays whether or not the query was executed successfully",
    labels: &[],
};
/// The serial of the answer's last SOA record (SOA queries only).
pub(crate) const SERIAL: Gauge = Gauge {
    name: "probe_dns_serial",
    help: "Returns the serial number of the zone",
    labels: &[],
};

const TYPE_SOA: u16 = 6;
const NOERROR: u16 = 0;

/// Memory a probe of `config` may hold beyond the default reservation: the
/// text of one record when regexps look at records (the message itself, at
/// most 64 KiB, fits the default).
pub(super) fn extra_memory(config: &DnsProbe) -> u64 {
    if config.has_rr_rules() {
        records::MAX_TEXT as u64
    } else {
        0
    }
}

/// Runs a dns probe: `Ok(false)` when a check failed, `Err` with the reason
/// when the query could not be made.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<bool, String> {
    let config = &module.config.dns;
    for phase in ["resolve", "connect", "request"] {
        report.set_labeled(DURATION, &[phase], 0.0);
    }
    for gauge in [ANSWER_RRS, AUTHORITY_RRS, ADDITIONAL_RRS, QUERY_SUCCEEDED] {
        report.set(gauge, 0.0);
    }
    // Go's SplitHostPort; without a port the whole target is the host.
    let (host, port) =
        split_target(target).unwrap_or((target, if config.dns_over_tls { "853" } else { "53" }));
    let (ip, lookup) = options
        .allowed_address(
            host,
            config.preferred_ip_protocol,
            config.ip_protocol_fallback,
            report,
        )
        .await?;
    report.set_labeled(DURATION, &["resolve"], lookup.as_secs_f64());

    let tcp = config.transport_protocol == Transport::Tcp;
    let server_name = config.tls_config.server_name.as_deref().unwrap_or(host);
    let id = random_id()?;
    let query = message::query(config, id, tcp)?;
    tracing::debug!(
        target = %ip,
        dial_protocol = if tcp { "tcp" } else { "udp" },
        query = config.query_name.as_str(),
        "Making DNS query"
    );
    let mut timing = Timing::start(report);
    let exchanged = async {
        let port = server_port(port, config.transport_protocol)?;
        let server = Server {
            addr: SocketAddr::new(ip, port),
            source: config.source_ip_address,
            tls: config.dns_over_tls.then_some((&module.tls, server_name)),
        };
        exchange::exchange(&server, tcp, &query, id, &mut timing).await
    }
    .await;
    drop(timing);
    let (reply, response) = exchanged?;
    tracing::debug!(rcode = response.rcode, "Got response");

    report.set(ANSWER_RRS, response.sections[0].1 as f64);
    report.set(AUTHORITY_RRS, response.sections[1].1 as f64);
    report.set(ADDITIONAL_RRS, response.sections[2].1 as f64);
    report.set(QUERY_SUCCEEDED, 1.0);
    if config.query_type == TYPE_SOA {
        report.set(SERIAL, response.serial.map_or(0.0, f64::from));
    }

    if !valid_rcode(response.rcode, config.valid_rcodes.as_deref()) {
        tracing::debug!(rcode = response.rcode, valid = ?config.valid_rcodes, "rcode is not one of the valid rcodes");
        return Ok(false);
    }
    if !config.has_rr_rules() {
        return Ok(true);
    }
    // A UDP-sized reply is checked here; a longer one (up to 64 KiB, whose
    // records may print as megabytes) in a match slot off the async
    // threads, as the http prober's body regexps.
    if reply.len() <= 512 {
        return check_records(config, &reply, &response);
    }
    let Some(slot) = options.matches.take().await else {
        let reason = format!(
            "Too many regexp matches running: all {} slots are held by matches that outlived their probes; retry later",
            options.matches.count()
        );
        report.refuse(reason.clone());
        return Err(reason);
    };
    let rules = config.clone();
    options
        .matches
        .run(slot, options.ticket, move || {
            check_records(&rules, &reply, &response)
        })
        .await?
}

/// A random message ID, as miekg's `dns.Id()`.
fn random_id() -> Result<u16, String> {
    let mut id = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .map_err(|_| "no random message ID: the system's random source failed".to_owned())?;
    Ok(u16::from_be_bytes(id))
}

/// The port Go dials: empty is 0, `domain` is 53, otherwise a number or
/// (over tcp) a service name Go knows without /etc/services.
fn server_port(port: &str, transport: Transport) -> Result<u16, String> {
    if port.is_empty() {
        return Ok(0);
    }
    if port.eq_ignore_ascii_case("domain") {
        return Ok(53);
    }
    let digits = port.strip_prefix('+').unwrap_or(port);
    if transport == Transport::Udp && !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("address {port}: unknown port"));
    }
    port_number(port)
}

/// blackbox_exporter's `validRcode`: no list means NOERROR only.
fn valid_rcode(rcode: u16, valid: Option<&[u16]>) -> bool {
    valid.unwrap_or(&[NOERROR]).contains(&rcode)
}

/// The regexp rules of the three sections, in order; `Err` only when a
/// record's text passes lookout's bound.
fn check_records(config: &DnsProbe, reply: &[u8], response: &Response) -> Result<bool, String> {
    let mut text = Text::keeping();
    let sections = [
        ("answer", &config.validate_answer_rrs),
        ("authority", &config.validate_authority_rrs),
        ("additional", &config.validate_additional_rrs),
    ];
    for ((name, rules), section) in sections.into_iter().zip(response.sections) {
        if let Some(why) = section_fails(rules, reply, section, &mut text)? {
            tracing::debug!(section = name, "{why}");
            return Ok(false);
        }
    }
    Ok(true)
}

/// blackbox_exporter's `validRRs` on one section: why it fails, if it does.
fn section_fails(
    rules: &RrValidator,
    reply: &[u8],
    section: (usize, usize),
    text: &mut Text,
) -> Result<Option<String>, String> {
    if section.1 == 0 {
        return Ok(if !rules.fail_if_not_matches_regexp.is_empty() {
            Some("fail_if_not_matches_regexp specified but no RRs returned".to_owned())
        } else if !rules.fail_if_none_matches_regexp.is_empty() {
            Some("fail_if_none_matches_regexp specified but no RRs returned".to_owned())
        } else {
            None
        });
    }
    if rules.is_empty() {
        return Ok(None);
    }
    let mut failure = None;
    let mut all_match = true;
    let mut any_match = false;
    message::texts(reply, section, text, |rr| {
        if failure.is_some() {
            return;
        }
        let shown = || String::from_utf8_lossy(rr).into_owned();
        if let Some(re) = rules
            .fail_if_matches_regexp
            .iter()
            .find(|re| re.is_match(rr))
        {
            failure = Some(format!(
                "at least one RR matched regexp {re:?}: {}",
                shown()
            ));
            return;
        }
        if !rules
            .fail_if_all_match_regexp
            .iter()
            .all(|re| re.is_match(rr))
        {
            all_match = false;
        }
        if let Some(re) = rules
            .fail_if_not_matches_regexp
            .iter()
            .find(|re| !re.is_match(rr))
        {
            failure = Some(format!(
                "at least one RR did not match regexp {re:?}: {}",
                shown()
            ));
            return;
        }
        if rules
            .fail_if_none_matches_regexp
            .iter()
            .any(|re| re.is_match(rr))
        {
            any_match = true;
        }
    })
    .map_err(|e| e.to_string())?;
    if failure.is_some() {
        return Ok(failure);
    }
    if !rules.fail_if_all_match_regexp.is_empty() && !all_match {
        return Ok(Some(
            "not all RRs matched fail_if_all_match_regexp".to_owned(),
        ));
    }
    if !rules.fail_if_none_matches_regexp.is_empty() && !any_match {
        return Ok(Some(
            "none of the RRs matched fail_if_none_matches_regexp".to_owned(),
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prober::{Modules, PROBE_MEMORY};

    #[test]
    fn record_rules_reserve_one_records_text() {
        let config = crate::config::Config::parse(
            "modules:\n  plain:\n    prober: dns\n    dns: {query_name: a, transport_protocol: tcp}\n  rules:\n    prober: dns\n    dns: {query_name: a, validate_additional_rrs: {fail_if_matches_regexp: [x]}}\n",
            "t.yml",
            std::path::Path::new("."),
        )
        .unwrap();
        let modules = Modules::build(&config).unwrap();
        let cost = |name| modules.module(name).unwrap().memory_cost;
        assert_eq!(cost("plain"), PROBE_MEMORY);
        assert_eq!(cost("rules"), PROBE_MEMORY + records::MAX_TEXT as u64);
    }

    #[test]
    fn ports_are_what_gos_dialer_makes_of_them() {
        for (port, transport, expected) in [
            ("53", Transport::Udp, Ok(53)),
            ("+5353", Transport::Udp, Ok(5353)),
            ("", Transport::Udp, Ok(0)),
            ("domain", Transport::Udp, Ok(53)),
            ("DOMAIN", Transport::Tcp, Ok(53)),
            ("https", Transport::Tcp, Ok(443)),
        ] {
            assert_eq!(server_port(port, transport), expected, "{port}");
        }
        for (port, transport) in [
            ("https", Transport::Udp),
            ("65536", Transport::Tcp),
            ("dns", Transport::Tcp),
        ] {
            assert!(server_port(port, transport).is_err(), "{port}");
        }
    }

    #[test]
    fn rcodes_default_to_noerror_and_an_empty_list_accepts_none() {
        assert!(valid_rcode(0, None));
        assert!(!valid_rcode(3, None));
        assert!(valid_rcode(3, Some(&[0, 3])));
        assert!(!valid_rcode(0, Some(&[])));
        assert!(valid_rcode(16, Some(&[16])), "extended by OPT");
    }
}
