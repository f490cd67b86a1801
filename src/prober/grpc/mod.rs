//! The grpc prober, as blackbox_exporter 0.28 runs it: the standard health
//! check, `grpc.health.v1.Health/Check`, one unary call over HTTP/2, plain
//! or with TLS. The probe passes when the call returns OK and the service is
//! SERVING.
//!
//! What differs from blackbox_exporter, on purpose: grpc-go dials the target
//! name itself, while this prober dials the address it resolved, after the
//! target policy has judged the name and that address; an IPv6 literal
//! (`[::1]:50051`) works; and the probe's deadline bounds the call
//! (blackbox_exporter calls without one, so a silent server holds it for
//! grpc-go's 20 s connect timeout or forever): a call the deadline cuts
//! short reports DEADLINE_EXCEEDED, the code grpc-go gives a call whose
//! deadline passed.
//!
//! - `call.rs`: the call on the wire, and the status grpc-go makes of
//!   whatever a server answers;
//! - `wire.rs`: the messages, their framing, and the status tables.

use std::time::Instant;

use super::{
    address::{port_number, split_host_port},
    client_tls::RootExpiry,
    report::{Gauge, Report},
    tls_info::{self, TlsMetrics},
    url, PreparedModule, ProbeOptions,
};

mod call;
mod wire;

use self::wire::{code, Status};

/// Time spent per phase: `resolve`, and `check` (connection, TLS, HTTP/2
/// and the call) once the call has returned.
pub(crate) const GRPC_DURATION: Gauge = Gauge {
    name: "probe_grpc_duration_seconds",
    help: "Duration of gRPC request by phase",
    labels: &["phase"],
};
/// 1 when the call returned over TLS.
pub(crate) const GRPC_SSL: Gauge = Gauge {
    name: "probe_grpc_ssl",
    help: "Indicates if SSL was used for the connection",
    labels: &[],
};
/// The call's status code: 0 (OK) until the call has returned.
pub(crate) const GRPC_STATUS_CODE: Gauge = Gauge {
    name: "probe_grpc_status_code",
    help: "Response gRPC status code",
    labels: &[],
};
/// 1 for the serving status returned, 0 for the others.
pub(crate) const GRPC_HEALTHCHECK_RESPONSE: Gauge = Gauge {
    name: "probe_grpc_healthcheck_response",
    help: "Response HealthCheck response",
    labels: &["serving_status"],
};

/// Where a call goes, read from the target as blackbox_exporter reads it.
#[derive(Debug)]
struct Target {
    /// Host name or IP literal, without brackets.
    host: String,
    /// The port as written; empty for the default.
    port: String,
    /// Whether the module speaks TLS (which picks the default port).
    tls: bool,
}

impl Target {
    /// `http://` is put in front of a target without a scheme, and the
    /// scheme chooses nothing: `tls` does. The path is ignored.
    fn parse(target: &str, tls: bool) -> Result<Self, String> {
        let url = url::parse_target(target)?;
        let (host, port) = split_host_port(url.authority());
        Ok(Self {
            host: host.to_owned(),
            port: port.unwrap_or_default().to_owned(),
            tls,
        })
    }

    /// The port to dial: the target's, else 443 with TLS and 80 without.
    fn port(&self) -> Result<u16, String> {
        match self.port.as_str() {
            "" if self.tls => Ok(443),
            "" => Ok(80),
            port => port_number(port),
        }
    }
}

/// Runs a grpc probe: `Ok(false)` when the call failed or the service is
/// not SERVING, `Err` with the reason when no call was made.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<bool, String> {
    let config = &module.config.grpc;
    // Registered before anything can fail, as blackbox_exporter does.
    report.set_labeled(GRPC_DURATION, &["resolve"], 0.0);
    report.set(GRPC_SSL, 0.0);
    report.set(GRPC_STATUS_CODE, 0.0);

    let target = Target::parse(target, config.tls)?;
    let (ip, lookup) = options
        .allowed_address(
            &target.host,
            config.preferred_ip_protocol,
            config.ip_protocol_fallback,
            report,
        )
        .await?;
    report.set_labeled(GRPC_DURATION, &["resolve"], lookup.as_secs_f64());
    let started = Instant::now();

    let mut pending = Pending {
        report,
        started,
        recorded: false,
    };
    tracing::debug!(
        tls = module.config.grpc.tls,
        service = module.config.grpc.service.as_str(),
        "Checking the gRPC health service"
    );
    let outcome = call::check(module, &target, ip).await;
    let success = match &outcome {
        Ok(answer) if answer.serving_status == wire::SERVING => true,
        Ok(answer) => {
            let status = wire::serving_status_name(answer.serving_status);
            tracing::debug!(serving_status = %status, "service not serving");
            false
        }
        Err(status) => {
            tracing::debug!(%status, "health check failed");
            false
        }
    };
    pending.record(&outcome, &module.tls.extra_roots);
    Ok(success)
}

/// The call's metrics, owed once the call is under way: recorded when it
/// returns, or as DEADLINE_EXCEEDED when the probe's deadline drops the
/// call first.
struct Pending<'r> {
    report: &'r mut Report,
    started: Instant,
    recorded: bool,
}

impl Pending<'_> {
    /// blackbox_exporter's metrics after `Check` returned; `extra_roots`
    /// are the module's `ca_file` certificates.
    fn record(&mut self, outcome: &Result<call::Answer, Status>, extra_roots: &[RootExpiry]) {
        self.recorded = true;
        let report = &mut *self.report;
        report.set_labeled(
            GRPC_DURATION,
            &["check"],
            self.started.elapsed().as_secs_f64(),
        );
        for status in wire::SERVING_STATUSES {
            report.set_labeled(GRPC_HEALTHCHECK_RESPONSE, &[status], 0.0);
        }
        match outcome {
            Ok(answer) => {
                let status = wire::serving_status_name(answer.serving_status);
                report.set_labeled(GRPC_HEALTHCHECK_RESPONSE, &[&status], 1.0);
                report.set(GRPC_STATUS_CODE, f64::from(code::OK));
                // The TLS metrics only after a call that returned over TLS
                // (0.26, #1338).
                if let Some(state) = &answer.tls {
                    report.set(GRPC_SSL, 1.0);
                    tls_info::record(report, state, extra_roots, TlsMetrics::GRPC);
                }
            }
            Err(status) => report.set(GRPC_STATUS_CODE, f64::from(status.code)),
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            // The deadline dropped the call: grpc-go's code for a call that
            // outlived its deadline.
            let late = Status::new(code::DEADLINE_EXCEEDED, "the probe's deadline passed");
            self.record(&Err(late), &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_blackbox_exporter_reads_them() {
        let parse = |target: &str, tls: bool| {
            let t = Target::parse(target, tls).unwrap();
            (t.host.clone(), t.port())
        };
        assert_eq!(
            parse("example.org:50051", false),
            ("example.org".into(), Ok(50051))
        );
        assert_eq!(parse("example.org", false), ("example.org".into(), Ok(80)));
        assert_eq!(parse("example.org", true), ("example.org".into(), Ok(443)));
        assert_eq!(parse("example.org:", true), ("example.org".into(), Ok(443)));
        // The scheme chooses no TLS and no port; the path is ignored.
        assert_eq!(
            parse("https://example.org/x", false),
            ("example.org".into(), Ok(80))
        );
        assert_eq!(
            parse("http://u:p@example.org:9/a?b", true),
            ("example.org".into(), Ok(9))
        );
        assert_eq!(parse("[::1]:50051", false), ("::1".into(), Ok(50051)));
        assert_eq!(parse("[::1]", true), ("::1".into(), Ok(443)));
        assert!(
            parse("127.0.0.1:99999", false).1.is_err(),
            "fails when dialing"
        );
        assert!(Target::parse("ftp://example.org", false).is_err());
        assert!(Target::parse("exa mple.org:1", false).is_err());
    }

    #[test]
    fn a_call_the_deadline_drops_reports_deadline_exceeded() {
        let mut report = Report::default();
        drop(Pending {
            report: &mut report,
            started: Instant::now(),
            recorded: false,
        });
        assert_eq!(report.get(GRPC_STATUS_CODE, &[]), Some(4.0));
        assert!(report.get(GRPC_DURATION, &["check"]).is_some());
        for status in wire::SERVING_STATUSES {
            assert_eq!(report.get(GRPC_HEALTHCHECK_RESPONSE, &[status]), Some(0.0));
        }
        assert_eq!(
            report.get(GRPC_SSL, &[]),
            None,
            "registered by the probe, not here"
        );
    }
}
