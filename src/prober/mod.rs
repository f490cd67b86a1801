//! Probing: modules made ready to run, and one probe from target to report.
//!
//! A module's TLS client configuration is built once, at warm-up or reload,
//! never per probe. A probe runs under one deadline covering resolution,
//! connection, TLS, request and body; whatever it measured before the
//! deadline stays in the report, as with blackbox_exporter's context.

mod address;
pub(crate) mod certificate;
pub(crate) mod client_tls;
mod debug_output;
pub mod dns;
mod grpc;
mod http;
mod icmp;
mod limits;
pub mod policy;
mod query_response;
pub mod report;
mod resolve;
mod tcp;
mod tls_info;
mod unix;
pub mod url;
mod verified_signatures;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::Instrument as _;

pub(crate) use self::http::module_host;
use self::{client_tls::ClientTls, policy::TargetPolicy};
pub use self::{
    debug_output::CONTENT_TYPE as DEBUG_CONTENT_TYPE,
    limits::{MatchSlots, Ticket},
    report::Report,
};
use crate::{
    config::{Config, IpProtocol, Module, ProberKind, TlsConfig},
    telemetry::probe_log::ProbeLog,
};

/// ALPN offer of the http prober: HTTP/2 first unless the module disables it.
const ALPN_H2: &[&[u8]] = &[b"h2", b"http/1.1"];
const ALPN_H1: &[&[u8]] = &[b"http/1.1"];
const ALPN_H2_ONLY: &[&[u8]] = &[b"h2"];

/// The TLS settings of probers that speak no TLS.
static NO_TLS: TlsConfig = TlsConfig {
    ca: None,
    cert: None,
    key: None,
    ca_file: None,
    cert_file: None,
    key_file: None,
    server_name: None,
    insecure_skip_verify: false,
    min_version: None,
    max_version: None,
};

/// The module `/probe` uses when none is named.
pub const DEFAULT_MODULE: &str = "http_2xx";

/// blackbox_exporter's `--timeout-offset`: headroom left between our answer
/// and Prometheus' scrape timeout.
pub const TIMEOUT_OFFSET: f64 = 0.5;

/// Scrape timeout assumed when Prometheus sends none (blackbox_exporter's).
const DEFAULT_SCRAPE_TIMEOUT: f64 = 120.0;

/// Why a module cannot be made ready to probe with; one line naming it.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Its TLS material could not be loaded.
    #[error("module {module:?}: {cause}")]
    Tls {
        /// Module name.
        module: String,
        /// What was wrong with its TLS settings.
        cause: client_tls::TlsError,
    },
    /// Its http client (proxies, oauth2) could not be prepared.
    #[error("module {module:?}: {cause}")]
    Http {
        /// Module name.
        module: String,
        /// What was wrong.
        cause: http::SetupError,
    },
    /// One of its probes needs more memory than the whole probe budget.
    #[error("module {module:?}: one probe may need {needs} bytes (its body_size_limit, a response head, a body decoder, a body_file, an oauth2 token response), more than --max-probe-memory ({budget} bytes)")]
    Memory {
        /// Module name.
        module: String,
        /// Bytes one probe may need.
        needs: u64,
        /// The budget.
        budget: u64,
    },
}

/// One module, ready to probe with.
#[derive(Debug)]
pub struct PreparedModule {
    /// The module's name.
    pub name: String,
    /// Its configuration.
    pub config: Module,
    /// TLS client setup for https targets or `tcp.tls`.
    pub tls: ClientTls,
    /// The http prober's proxies and oauth2 token, shared by its probes.
    pub(crate) http: http::HttpSetup,
    /// The most memory one probe with this module can hold, in bytes.
    pub memory_cost: u64,
}

/// Memory one probe may hold besides a body kept for regexps: its
/// connection's buffers, TLS state and the chain it parses, the report, and
/// a response head at its largest ([`http::MAX_RESPONSE_HEAD`]) or a
/// `query_response` line ([`query_response::MAX_LINE`]).
pub const PROBE_MEMORY: u64 = 128 << 10;

/// The most memory one probe of `module` can hold.
fn memory_cost(module: &Module) -> u64 {
    let http = &module.http;
    let keeps_body = module.prober == ProberKind::Http
        && !(http.fail_if_body_matches_regexp.is_empty()
            && http.fail_if_body_not_matches_regexp.is_empty());
    let limit = match http.body_size_limit.0 {
        0 => http::DEFAULT_BODY_LIMIT,
        limit => limit,
    };
    let body = if keeps_body { limit } else { 0 };
    // The decoder `compression` needs (its own budget, see http::decode).
    let decoder = if module.prober == ProberKind::Http {
        http::decoder_memory(http.compression.coding, limit)
    } else {
        0
    };
    // A body_file's contents, and an oauth2 token response.
    let mut sent = 0;
    if module.prober == ProberKind::Http {
        if http.body_file.is_some() {
            sent += http::MAX_BODY_FILE;
        }
        if http.oauth2.is_some() {
            sent += http::MAX_TOKEN_RESPONSE as u64;
        }
    }
    let body = body + sent;
    // Both read an HTTP response head (gRPC over HTTP/2).
    let head = if matches!(module.prober, ProberKind::Http | ProberKind::Grpc) {
        http::MAX_RESPONSE_HEAD as u64
    } else {
        0
    };
    // One record's text when a dns module's regexps look at records.
    let dns = if module.prober == ProberKind::Dns {
        dns::extra_memory(&module.dns)
    } else {
        0
    };
    // The line a `query_response` step reads, at its longest.
    let steps = match module.prober {
        ProberKind::Tcp => &module.tcp.query_response[..],
        ProberKind::Unix => &module.unix.query_response[..],
        _ => &[],
    };
    let lines = if steps.iter().any(|step| step.expect.is_some()) {
        query_response::MAX_LINE as u64
    } else {
        0
    };
    // HTTP/3: what quinn may hold unread (its receive window) and h3's slack.
    let quic = if module.prober == ProberKind::Http && http.enable_http3 {
        http::QUIC_MEMORY
    } else {
        0
    };
    PROBE_MEMORY + head + body + decoder + dns + lines + quic
}

/// Every module of one configuration.
#[derive(Debug, Default)]
pub struct Modules {
    modules: BTreeMap<String, Arc<PreparedModule>>,
}

impl Modules {
    /// Builds every module's TLS configuration; fails on the first module
    /// whose TLS files are missing or unusable, naming it.
    pub fn build(config: &Config) -> Result<Self, ModuleError> {
        let mut modules = BTreeMap::new();
        for (name, module) in &config.modules {
            let (tls_config, alpn) = match module.prober {
                ProberKind::Http if module.http.enable_http2 => (&module.http.tls_config, ALPN_H2),
                ProberKind::Http => (&module.http.tls_config, ALPN_H1),
                ProberKind::Tcp => (&module.tcp.tls_config, &[][..]),
                ProberKind::Unix => (&module.unix.tls_config, &[][..]),
                ProberKind::Dns => (&module.dns.tls_config, &[][..]),
                // gRPC needs HTTP/2, which a TLS server must agree to by ALPN.
                ProberKind::Grpc => (&module.grpc.tls_config, ALPN_H2_ONLY),
                ProberKind::Icmp => (&NO_TLS, &[][..]),
            };
            let tls = if module.prober == ProberKind::Http && module.http.enable_http3 {
                client_tls::quic_client_config(tls_config)
            } else {
                client_tls::client_config(tls_config, alpn)
            }
            .map_err(|cause| ModuleError::Tls {
                module: name.clone(),
                cause,
            })?;
            let http = if module.prober == ProberKind::Http {
                http::HttpSetup::new(&module.http).map_err(|cause| ModuleError::Http {
                    module: name.clone(),
                    cause,
                })?
            } else {
                http::HttpSetup::none()
            };
            modules.insert(
                name.clone(),
                Arc::new(PreparedModule {
                    name: name.clone(),
                    config: module.clone(),
                    tls,
                    http,
                    memory_cost: memory_cost(module),
                }),
            );
        }
        Ok(Self { modules })
    }

    /// The module called `name`.
    pub fn module(&self, name: &str) -> Option<&Arc<PreparedModule>> {
        self.modules.get(name)
    }

    /// Fails when a module's probes need more memory than `budget` bytes
    /// in all: none of them could ever run.
    pub fn fit(&self, budget: u64) -> Result<(), ModuleError> {
        match self.modules.values().find(|m| m.memory_cost > budget) {
            Some(module) => Err(ModuleError::Memory {
                module: module.name.clone(),
                needs: module.memory_cost,
                budget,
            }),
            None => Ok(()),
        }
    }

    /// Module names, sorted.
    pub fn module_names(&self) -> impl Iterator<Item = &str> {
        self.modules.keys().map(String::as_str)
    }
}

/// The probe deadline, by blackbox_exporter's rule: the scrape timeout
/// (120 s when Prometheus sends none) minus [`TIMEOUT_OFFSET`], or the
/// module's timeout when that is set and shorter, or when the offset would
/// leave nothing.
pub fn timeout(scrape_timeout: Option<f64>, module: &Module) -> Duration {
    timeout_with_offset(scrape_timeout, module, TIMEOUT_OFFSET)
}

/// [`timeout`] with another offset (`--timeout-offset`, in seconds).
pub fn timeout_with_offset(scrape_timeout: Option<f64>, module: &Module, offset: f64) -> Duration {
    let scrape = scrape_timeout
        .filter(|s| *s != 0.0)
        .unwrap_or(DEFAULT_SCRAPE_TIMEOUT);
    let max = scrape - offset;
    let module_timeout = module.timeout.0.as_secs_f64();
    let seconds = if (module_timeout > 0.0 && module_timeout < max) || max < 0.0 {
        module_timeout
    } else {
        max
    };
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)
}

/// Options of one probe beyond module and target.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOptions<'a> {
    /// The `hostname` parameter: the Host header (http only).
    pub hostname: Option<&'a str>,
    /// Checked before every connection the probe makes.
    pub policy: &'a TargetPolicy,
    /// Held by the probe's blocking work until it ends.
    pub ticket: &'a Ticket,
    /// Body matches that may run at once.
    pub matches: &'a MatchSlots,
}

impl ProbeOptions<'_> {
    /// The address a probe of `host` may reach: a denied name is never resolved, and a
    /// denied address is never sent a packet. Records the resolution metrics; returns
    /// the address and the time the lookup took.
    async fn allowed_address(
        &self,
        host: &str,
        preferred: IpProtocol,
        fallback: bool,
        report: &mut Report,
    ) -> Result<(IpAddr, Duration), String> {
        self.policy.check_name(host)?;
        let (ip, lookup) =
            resolve::choose_protocol(host, preferred, fallback, self.ticket, report).await?;
        self.policy.check(host, ip)?;
        Ok((ip, lookup))
    }
}

/// Runs one probe against `target` within `deadline`.
pub async fn run(
    module: &PreparedModule,
    target: &str,
    deadline: Duration,
    options: ProbeOptions<'_>,
) -> Report {
    execute(module, target, deadline, options, None).await.0
}

/// A probe run with its log kept: `/probe?debug=true` and `lookout probe`.
#[derive(Debug)]
pub struct Logged {
    /// The metrics.
    pub report: Report,
    /// Every step the probe logged.
    pub log: ProbeLog,
    /// Why it failed, in one line; `None` when it succeeded.
    pub failure: Option<String>,
}

/// Runs one probe as [`run`] does, keeping its log.
pub async fn run_logged(
    module: &PreparedModule,
    target: &str,
    deadline: Duration,
    options: ProbeOptions<'_>,
) -> Logged {
    let log = ProbeLog::new(&module.name, target);
    let (report, failure) = execute(module, target, deadline, options, Some(&log)).await;
    Logged {
        report,
        log,
        failure,
    }
}

async fn execute(
    module: &PreparedModule,
    target: &str,
    deadline: Duration,
    options: ProbeOptions<'_>,
    log: Option<&ProbeLog>,
) -> (Report, Option<String>) {
    let span = ProbeLog::span(
        log,
        || tracing::debug_span!("probe", module = %module.name, target),
    );
    span.in_scope(|| {
        tracing::debug!(
            probe = module.config.prober.name(),
            timeout_seconds = deadline.as_secs_f64(),
            "Beginning probe"
        );
    });
    let mut report = Report::default();
    let start = Instant::now();
    let probing = async {
        match module.config.prober {
            ProberKind::Http => http::probe(module, target, options, &mut report).await,
            ProberKind::Tcp => tcp::probe(module, target, options, &mut report)
                .await
                .map(|()| true),
            ProberKind::Unix => unix::probe(module, target, options, &mut report)
                .await
                .map(|()| true),
            ProberKind::Dns => dns::probe(module, target, options, &mut report).await,
            // The deadline, to end a series of echoes with its statistics.
            ProberKind::Icmp => {
                icmp::probe(module, target, start + deadline, options, &mut report).await
            }
            ProberKind::Grpc => grpc::probe(module, target, options, &mut report).await,
        }
    };
    // The one place a failed probe says why (checks that fail log their own detail).
    let outcome = tokio::time::timeout(deadline, probing.instrument(span.clone()))
        .await
        .unwrap_or_else(|_| Err(format!("timeout after {} ms", deadline.as_millis())));
    let seconds = start.elapsed().as_secs_f64();
    let failure = match outcome {
        Ok(true) => {
            span.in_scope(|| tracing::debug!(duration_seconds = seconds, "Probe succeeded"));
            None
        }
        Ok(false) => {
            // The check that failed logged why, as the latest event.
            let reason = log.and_then(ProbeLog::last_event);
            span.in_scope(|| tracing::debug!(duration_seconds = seconds, "Probe failed"));
            Some(reason.unwrap_or_else(|| "a check failed".to_owned()))
        }
        Err(reason) => {
            span.in_scope(|| {
                tracing::debug!(duration_seconds = seconds, %reason, "Probe failed");
            });
            Some(reason)
        }
    };
    report.finish(failure.is_none(), seconds);
    (report, failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PromDuration;

    fn module(timeout: Duration) -> Module {
        let mut config = Config::embedded_default().unwrap();
        let mut module = config.modules.remove("http_2xx").unwrap();
        module.timeout = PromDuration(timeout);
        module
    }

    #[test]
    fn timeouts_follow_blackbox_exporters_rule() {
        let secs = |d: Duration| d.as_secs_f64();
        assert_eq!(secs(timeout(None, &module(Duration::ZERO))), 119.5);
        assert_eq!(secs(timeout(Some(10.0), &module(Duration::ZERO))), 9.5);
        assert_eq!(
            secs(timeout(Some(10.0), &module(Duration::from_secs(5)))),
            5.0
        );
        assert_eq!(
            secs(timeout(Some(10.0), &module(Duration::from_secs(30)))),
            9.5
        );
        assert_eq!(
            secs(timeout(Some(0.3), &module(Duration::from_secs(1)))),
            1.0
        );
        assert_eq!(secs(timeout(Some(0.0), &module(Duration::ZERO))), 119.5);
    }
}
