//! lookout: a Prometheus prober compatible with blackbox_exporter.
//!
//! `GET /probe?target=...&module=...` on the probe listener runs one probe and
//! answers with blackbox_exporter's metrics; the admin listener serves health,
//! readiness, lookout's own metrics and reloads. The binary (`main.rs`) only
//! parses the command line and maps errors to exit codes; everything else
//! lives here, so tests can drive it in-process.

pub mod app;
pub mod cli;
pub mod config;
mod error;
pub mod prober;
pub mod server;
pub mod telemetry;

pub use error::Error;

/// `lookout check-config FILE`: parses the file and builds every module,
/// exactly as start-up and reload do. Returns the module names.
pub fn check_config(path: &std::path::Path) -> Result<Vec<String>, Error> {
    let config = config::Config::load(path)?;
    let prober = prober::Modules::build(&config)?;
    Ok(prober.module_names().map(str::to_owned).collect())
}

/// `--config.check`: loads the modules from `source` and builds every
/// module, as start-up does. Returns the module names.
pub fn check_source(source: &config::ConfigSource) -> Result<Vec<String>, Error> {
    let config = source.load()?;
    let prober = prober::Modules::build(&config)?;
    Ok(prober.module_names().map(str::to_owned).collect())
}

/// `--config.check --web.config.file FILE`: the web configuration and the
/// certificates, key and CA it names load as start-up would load them.
pub fn check_web_config(path: &std::path::Path) -> Result<(), Error> {
    server::web_access::check(path).map_err(Error::Access)
}

/// `lookout probe`: one probe with the configured modules, as /probe runs it,
/// its log kept. `deadline` overrides the module's timeout.
pub async fn probe_once(
    source: &config::ConfigSource,
    module: &str,
    target: &str,
    deadline: Option<std::time::Duration>,
    policy: &prober::policy::TargetPolicy,
) -> Result<prober::Logged, Error> {
    let config = source.load()?;
    let prober = prober::Modules::build(&config)?;
    let Some(prepared) = prober.module(module) else {
        let known = prober.module_names().collect::<Vec<_>>().join(", ");
        return Err(Error::UnknownModule {
            module: module.to_owned(),
            known,
        });
    };
    let deadline = deadline.unwrap_or_else(|| prober::timeout(None, &prepared.config));
    let ticket = prober::Ticket::default();
    let matches = prober::MatchSlots::per_cpu(Default::default());
    let options = prober::ProbeOptions {
        hostname: None,
        policy,
        ticket: &ticket,
        matches: &matches,
    };
    Ok(prober::run_logged(prepared, target, deadline, options).await)
}
