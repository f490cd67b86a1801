//! The tcp prober: connect, and with `tls: true` complete a TLS handshake,
//! reporting the certificate metrics, then hold the `query_response`
//! conversation (see `query_response`). As in blackbox_exporter 0.28, the
//! check gauges are registered once connected.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use super::{
    address::{port_number, split_target},
    query_response::{self, Connection},
    report::Report,
    PreparedModule, ProbeOptions,
};

/// Runs a tcp probe; `Err` with the reason when it failed.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<(), String> {
    run(module, target, options, report).await
}

async fn run(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<(), String> {
    let config = &module.config.tcp;
    let (host, port) =
        split_target(target).ok_or_else(|| format!("target {target:?} is not host:port"))?;
    let (ip, _) = options
        .allowed_address(
            host,
            config.preferred_ip_protocol,
            config.ip_protocol_fallback,
            report,
        )
        .await?;
    let addr = SocketAddr::new(ip, port_number(port)?);
    if config.tls {
        tracing::debug!("Dialing TCP with TLS");
    } else {
        tracing::debug!("Dialing TCP without TLS");
    }
    let stream = connect(addr, config.source_ip_address)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let name = config.tls_config.server_name.as_deref().unwrap_or(host);
    let tls = config.tls.then_some(name);
    let stream = query_response::connected(stream, tls, module, &addr, report).await?;
    let connection = Connection {
        stream,
        server_name: Some(name),
        peer: &addr,
    };
    query_response::converse(connection, &config.query_response, module, options, report).await
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
