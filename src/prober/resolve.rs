//! Target resolution with blackbox_exporter's `chooseProtocol` rules.
//!
//! With fallback (the default) the name is resolved for both families and the
//! first address of the preferred family wins, else the last address of the
//! other; without fallback only the preferred family is acceptable. IP
//! literals resolve to themselves. The lookup time and the chosen address
//! (family, FNV-1a hash) are reported as blackbox_exporter reports them.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use super::{
    limits::{self, Ticket},
    report::{Report, DNS_LOOKUP, IP_ADDR_HASH, IP_PROTOCOL},
};
use crate::config::IpProtocol;

/// Resolves `host` (no brackets, no port), recording the resolution metrics.
/// Returns the address and the time spent, or why it failed.
pub(super) async fn choose_protocol(
    host: &str,
    preferred: IpProtocol,
    fallback: bool,
    ticket: &Ticket,
    report: &mut Report,
) -> Result<(IpAddr, Duration), String> {
    report.set(DNS_LOOKUP, 0.0);
    report.set(IP_PROTOCOL, 0.0);
    report.set(IP_ADDR_HASH, 0.0);
    let ip_protocol = match preferred {
        IpProtocol::Ip4 => "ip4",
        IpProtocol::Ip6 => "ip6",
    };
    tracing::debug!(target = host, ip_protocol, "Resolving target address");
    let start = Instant::now();
    let result = lookup(host, ticket)
        .await
        .and_then(|addrs| pick(&addrs, preferred, fallback));
    let elapsed = start.elapsed();
    // Set on failure too, as blackbox_exporter's deferred update does.
    report.set(DNS_LOOKUP, elapsed.as_secs_f64());
    let ip = result.inspect_err(|err| {
        tracing::debug!(target = host, ip_protocol, %err, "Resolution with IP protocol failed");
    })?;
    tracing::debug!(target = host, %ip, "Resolved target address");
    report.set(IP_PROTOCOL, if ip.is_ipv4() { 4.0 } else { 6.0 });
    report.set(IP_ADDR_HASH, f64::from(ip_hash(ip)));
    Ok((ip, elapsed))
}

/// All addresses of `host`, in resolver order. The system resolver runs on a
/// blocking thread that a deadline cannot stop, so it holds the probe's
/// ticket until it returns (see `limits`).
pub(super) async fn lookup(host: &str, ticket: &Ticket) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let name = host.to_owned();
    let addrs = limits::blocking(ticket, move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
    })
    .await?
    .map_err(|e| format!("resolving {host}: {e}"))?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for addr in addrs {
        // getaddrinfo lists an address once per socket type; keep the first.
        if !ips.contains(&addr.ip()) {
            ips.push(addr.ip());
        }
    }
    Ok(ips)
}

fn pick(addrs: &[IpAddr], preferred: IpProtocol, fallback: bool) -> Result<IpAddr, String> {
    let wanted = |ip: &IpAddr| match preferred {
        IpProtocol::Ip4 => ip.is_ipv4(),
        IpProtocol::Ip6 => ip.is_ipv6(),
    };
    if let Some(ip) = addrs.iter().find(|ip| wanted(ip)) {
        return Ok(*ip);
    }
    if fallback {
        if let Some(ip) = addrs.last() {
            return Ok(*ip);
        }
    }
    Err(format!(
        "no {preferred:?} address found (fallback {fallback})"
    ))
}

/// FNV-1a (32 bit) over the address bytes, the 4-byte form for IPv4 and
/// IPv4-mapped IPv6: blackbox_exporter's `probe_ip_addr_hash`.
pub(crate) fn ip_hash(ip: IpAddr) -> u32 {
    let v4;
    let v6;
    let bytes: &[u8] = match ip {
        IpAddr::V4(a) => {
            v4 = a.octets();
            &v4
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(mapped) => {
                v4 = mapped.octets();
                &v4
            }
            None => {
                v6 = a.octets();
                &v6
            }
        },
    };
    bytes.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_blackbox_exporter() {
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509);
        assert_eq!(ip_hash("::1".parse().unwrap()), 1_751_717_746);
        assert_eq!(ip_hash("::ffff:127.0.0.1".parse().unwrap()), 3_668_918_509);
    }

    #[test]
    fn preference_and_fallback_follow_choose_protocol() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v4b: IpAddr = "192.0.2.2".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(pick(&[v4, v6], IpProtocol::Ip6, true), Ok(v6));
        assert_eq!(pick(&[v4, v6], IpProtocol::Ip4, true), Ok(v4));
        assert_eq!(
            pick(&[v4, v4b], IpProtocol::Ip6, true),
            Ok(v4b),
            "last of the other family"
        );
        assert!(pick(&[v4], IpProtocol::Ip6, false).is_err());
        assert!(pick(&[], IpProtocol::Ip6, true).is_err());
    }
}
