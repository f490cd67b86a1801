//! The unix prober (blackbox_exporter 0.28): the tcp prober's checks over a
//! unix socket, optionally with TLS, and its `query_response` conversation. A socket path reaches whatever listens on
//! it inside the container (an admin socket, a runtime's API), which no
//! address rule can describe: only the paths `--allow-unix-socket` lists may
//! be probed.

use tokio::net::UnixStream;

use super::{
    query_response::{self, Connection},
    report::Report,
    PreparedModule, ProbeOptions,
};

/// Runs a unix probe; `Err` with the reason when it failed.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<(), String> {
    let config = &module.config.unix;
    options.policy.check_unix_socket(target)?;
    if config.tls {
        tracing::debug!("Dialing unix with TLS");
    } else {
        tracing::debug!("Dialing unix without TLS");
    }
    let stream = UnixStream::connect(target).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            format!("permission denied connecting to unix socket {target}: {e}")
        } else {
            format!("connecting to unix socket {target}: {e}")
        }
    })?;
    // Go's default server name for a unix target is the path itself.
    let tls = config
        .tls
        .then(|| config.tls_config.server_name.as_deref().unwrap_or(target));
    let stream = query_response::connected(stream, tls, module, &target, report).await?;
    // A `starttls` step has no such default: Go's tls.Client gets the
    // configured name only.
    let connection = Connection {
        stream,
        server_name: config.tls_config.server_name.as_deref(),
        peer: &target,
    };
    query_response::converse(connection, &config.query_response, module, options, report).await
}
