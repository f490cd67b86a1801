//! The tcp prober: connect, and with `tls: true` complete a TLS handshake,
//! reporting the certificate metrics. (`query_response` is not implemented:
//! the modules file rejects it rather than ignore it.)

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use super::{
    report::{Report, FAILED_DUE_TO_REGEX},
    resolve, tls_info, PreparedModule,
};
use crate::policy::TargetPolicy;

/// Runs a tcp probe; false on failure, with the reason in a debug log.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    policy: &TargetPolicy,
    report: &mut Report,
) -> bool {
    // blackbox_exporter 0.23 registers this before dialing.
    report.set(FAILED_DUE_TO_REGEX, 0.0);
    match run(module, target, policy, report).await {
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
    policy: &TargetPolicy,
    report: &mut Report,
) -> Result<(), String> {
    let config = &module.config.tcp;
    let (host, port) =
        split_host_port(target).ok_or_else(|| format!("target {target:?} is not host:port"))?;
    let (ip, _) = resolve::choose_protocol(
        host,
        config.preferred_ip_protocol,
        config.ip_protocol_fallback,
        report,
    )
    .await?;
    let addr = SocketAddr::new(ip, port);
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

/// Go's `net.SplitHostPort` for numeric ports: `host:port` or `[v6]:port`.
fn split_host_port(target: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        (host, port)
    } else {
        let (host, port) = target.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_like_go() {
        assert_eq!(
            split_host_port("example.org:443"),
            Some(("example.org", 443))
        );
        assert_eq!(split_host_port("[::1]:22"), Some(("::1", 22)));
        assert_eq!(split_host_port("127.0.0.1"), None);
        assert_eq!(split_host_port("::1:22"), None);
        assert_eq!(split_host_port("host:http"), None);
    }
}
