//! Hosts and ports as Go splits them, for every prober: one place, so a
//! target, a redirect, a Host header and the connection never disagree.
//!
//! Two splitters, because Go has two: `net/url`'s for the host of a URL
//! (the port must be digits, or the URL does not parse) and `net`'s
//! `SplitHostPort` for `host:port` targets (the port is any text, judged when
//! dialing: a number, with an optional `+`, or a service name).

/// Empty, or `:` and digits only.
pub(crate) fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The host of a `host[:port]` (a Host header), without port and brackets.
pub(crate) fn hostname_of(authority: &str) -> &str {
    split_host_port(authority).0
}

/// Go's `splitHostPort`: a valid port is split off, brackets removed.
pub(crate) fn split_host_port(host_port: &str) -> (&str, Option<&str>) {
    let (mut host, mut port) = (host_port, None);
    if let Some(colon) = host_port.rfind(':') {
        if valid_optional_port(&host_port[colon..]) {
            host = &host_port[..colon];
            port = Some(&host_port[colon + 1..]);
        }
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        host = inner;
    }
    (host, port)
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; the port is any
/// text, judged after resolution (by [`port_number`]) as Go's dialer does.
pub(crate) fn split_target(target: &str) -> Option<(&str, &str)> {
    if let Some(rest) = target.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        (!host.contains(['[', ']']) && !port.contains(['[', ']'])).then_some((host, port))
    } else {
        let (host, port) = target.rsplit_once(':')?;
        (!host.contains(':') && !target.contains(['[', ']'])).then_some((host, port))
    }
}

/// The port Go's dialer makes of a port's text: decimal with an optional
/// `+`, or one of the service names Go knows without /etc/services.
pub(crate) fn port_number(port: &str) -> Result<u16, String> {
    let digits = port.strip_prefix('+').unwrap_or(port);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits
            .trim_start_matches('0')
            .parse::<u16>()
            .or_else(|e| {
                if digits.bytes().all(|b| b == b'0') {
                    Ok(0)
                } else {
                    Err(e)
                }
            })
            .map_err(|_| format!("address {port}: invalid port"));
    }
    const SERVICES: [(&str, u16); 14] = [
        ("ftp", 21),
        ("ftps", 990),
        ("gopher", 70),
        ("http", 80),
        ("https", 443),
        ("imap2", 143),
        ("imap3", 220),
        ("imaps", 993),
        ("pop3", 110),
        ("pop3s", 995),
        ("smtp", 25),
        ("submissions", 465),
        ("ssh", 22),
        ("telnet", 23),
    ];
    SERVICES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(port))
        .map(|(_, number)| *number)
        .ok_or_else(|| format!("address {port}: unknown port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_like_go() {
        assert_eq!(
            split_target("example.org:443"),
            Some(("example.org", "443"))
        );
        assert_eq!(split_target("[::1]:22"), Some(("::1", "22")));
        assert_eq!(split_target("127.0.0.1"), None);
        assert_eq!(split_target("::1:22"), None);
        assert_eq!(split_target("host:http"), Some(("host", "http")));
        assert_eq!(split_target("[a]b]:1"), None);
    }

    #[test]
    fn ports_are_read_as_gos_dialer_reads_them() {
        assert_eq!(port_number("443"), Ok(443));
        assert_eq!(port_number("+8080"), Ok(8080));
        assert_eq!(port_number("0022"), Ok(22));
        assert_eq!(port_number("https"), Ok(443));
        assert_eq!(port_number("SMTP"), Ok(25));
        for bad in ["99999", "65616", "-1", "", "nope", "+"] {
            assert!(port_number(bad).is_err(), "{bad:?}");
        }
    }
    #[test]
    fn url_hosts_split_as_net_url_splits_them() {
        assert_eq!(
            split_host_port("example.org:8443"),
            ("example.org", Some("8443"))
        );
        assert_eq!(split_host_port("example.org:"), ("example.org", Some("")));
        assert_eq!(split_host_port("[::1]:80"), ("::1", Some("80")));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(
            split_host_port("h:+1"),
            ("h:+1", None),
            "not a port: all host"
        );
        assert_eq!(hostname_of("LocalHost:80"), "LocalHost");
    }
}
