//! The tcp prober: connect, and with `tls: true` complete a TLS handshake,
//! reporting the certificate metrics. (`query_response` is not implemented:
//! the modules file rejects it rather than ignore it.)

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use super::{
    report::{Report, FAILED_DUE_TO_REGEX},
    resolve, tls_info, PreparedModule, ProbeOptions,
};

/// Runs a tcp probe; false on failure, with the reason in a debug log.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> bool {
    // blackbox_exporter 0.23 registers this before dialing.
    report.set(FAILED_DUE_TO_REGEX, 0.0);
    match run(module, target, options, report).await {
        Ok(()) => true,
        Err(reason) => {
            tracing::debug!(%reason, "probe failed");
            false
        }
    }
}

async fn run(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<(), String> {
    let policy = options.policy;
    let config = &module.config.tcp;
    let (host, port) =
        split_host_port(target).ok_or_else(|| format!("target {target:?} is not host:port"))?;
    policy.check_name(host)?;
    let (ip, _) = resolve::choose_protocol(
        host,
        config.preferred_ip_protocol,
        config.ip_protocol_fallback,
        options.ticket,
        report,
    )
    .await?;
    let addr = SocketAddr::new(ip, port_number(port)?);
    policy.check(host, ip)?;
    let stream = connect(addr, config.source_ip_address)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    if config.tls {
        let name = config.tls_config.server_name.as_deref().unwrap_or(host);
        // The stream is not used further: the handshake was the probe.
        let (_stream, state) = tls_info::connect(&module.tls, name, stream, addr).await?;
        tls_info::record(report, &state, &module.tls.extra_roots);
    }
    Ok(())
}

async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; the port is any
/// text, judged after resolution (by [`port_number`]) as Go's dialer does.
fn split_host_port(target: &str) -> Option<(&str, &str)> {
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
fn port_number(port: &str) -> Result<u16, String> {
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
            split_host_port("example.org:443"),
            Some(("example.org", "443"))
        );
        assert_eq!(split_host_port("[::1]:22"), Some(("::1", "22")));
        assert_eq!(split_host_port("127.0.0.1"), None);
        assert_eq!(split_host_port("::1:22"), None);
        assert_eq!(split_host_port("host:http"), Some(("host", "http")));
        assert_eq!(split_host_port("[a]b]:1"), None);
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
}
