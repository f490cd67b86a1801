//! Configuration, from environment variables only (a container sets them in
//! its spec; there is no file to mount and no flag to forget). Every variable
//! has a default, so the binary runs with none set.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use tracing::level_filters::LevelFilter;

use crate::Error;

/// Address and port to serve on (all endpoints share it).
pub const LISTEN_ADDRESS: &str = "LISTEN_ADDRESS";
/// Seconds the warm-up takes (fractions allowed). Stands for the service's own
/// start-up work (loading a cache, connecting to a database): `/readyz` is 503
/// until it is done.
pub const WARMUP_SECONDS: &str = "WARMUP_SECONDS";
/// Seconds between the stop signal and closing the listener, with `/readyz`
/// 503 and everything else still served: the time Kubernetes needs to take the
/// pod out of every Service's endpoints, so no new request finds it gone.
pub const SHUTDOWN_DELAY_SECONDS: &str = "SHUTDOWN_DELAY_SECONDS";
/// Seconds in-flight requests get to finish once the listener is closed.
pub const DRAIN_TIMEOUT_SECONDS: &str = "DRAIN_TIMEOUT_SECONDS";
/// Least severe level logged: `error`, `warn`, `info`, `debug` (one line per
/// request) or `trace`.
pub const LOG_LEVEL: &str = "LOG_LEVEL";

/// The service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen ([`LISTEN_ADDRESS`], default `0.0.0.0:8080`).
    pub listen_address: SocketAddr,
    /// How long the stand-in warm-up takes ([`WARMUP_SECONDS`], default 1s:
    /// long enough to see `/readyz` turn 200 in the logs, short enough that a
    /// local run and the tests do not wait for it).
    pub warmup: Duration,
    /// Readiness 503 before the listener closes ([`SHUTDOWN_DELAY_SECONDS`],
    /// default 5s: endpoint removal reaches kube-proxy and ingress controllers
    /// within a few seconds).
    pub shutdown_delay: Duration,
    /// Bound on the drain ([`DRAIN_TIMEOUT_SECONDS`], default 20s; with the
    /// delay, under the pod's terminationGracePeriodSeconds of 30).
    pub drain_timeout: Duration,
    /// Log level ([`LOG_LEVEL`], default `info`).
    pub log_level: LevelFilter,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            warmup: Duration::from_secs(1),
            shutdown_delay: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(20),
            log_level: LevelFilter::INFO,
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Reads settings through `lookup` (a variable's value, if set), so tests
    /// need not change the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let defaults = Self::default();
        Ok(Self {
            listen_address: parse(&lookup, LISTEN_ADDRESS, defaults.listen_address, |v| {
                SocketAddr::from_str(v).map_err(|e| e.to_string())
            })?,
            warmup: parse(&lookup, WARMUP_SECONDS, defaults.warmup, seconds)?,
            shutdown_delay: parse(
                &lookup,
                SHUTDOWN_DELAY_SECONDS,
                defaults.shutdown_delay,
                seconds,
            )?,
            drain_timeout: parse(
                &lookup,
                DRAIN_TIMEOUT_SECONDS,
                defaults.drain_timeout,
                seconds,
            )?,
            log_level: parse(&lookup, LOG_LEVEL, defaults.log_level, |v| {
                LevelFilter::from_str(v)
                    .map_err(|_| "expected error, warn, info, debug, trace or off".to_owned())
            })?,
        })
    }
}

/// The variable's value parsed, or `default` when it is unset or empty (an
/// empty value is how a Kubernetes env entry or a shell says "not set").
fn parse<T>(
    lookup: impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    parser: impl Fn(&str) -> Result<T, String>,
) -> Result<T, Error> {
    match lookup(name) {
        Some(value) if !value.is_empty() => parser(value.trim()).map_err(|reason| Error::Config {
            name,
            value,
            reason,
        }),
        _ => Ok(default),
    }
}

/// A non-negative number of seconds, fractions allowed (`0.5`).
fn seconds(value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| "expected a number of seconds".to_owned())?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| "expected a number of seconds, 0 or more".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, Error> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        assert_eq!(config(&[]).unwrap(), Config::default());
    }

    #[test]
    fn every_variable_is_read() {
        let config = config(&[
            (LISTEN_ADDRESS, "127.0.0.1:9000"),
            (WARMUP_SECONDS, "0.25"),
            (SHUTDOWN_DELAY_SECONDS, "0"),
            (DRAIN_TIMEOUT_SECONDS, "3"),
            (LOG_LEVEL, "debug"),
        ])
        .unwrap();
        assert_eq!(
            config,
            Config {
                listen_address: SocketAddr::from(([127, 0, 0, 1], 9000)),
                warmup: Duration::from_millis(250),
                shutdown_delay: Duration::ZERO,
                drain_timeout: Duration::from_secs(3),
                log_level: LevelFilter::DEBUG,
            }
        );
    }

    #[test]
    fn an_empty_value_means_the_default() {
        assert_eq!(config(&[(LOG_LEVEL, "")]).unwrap(), Config::default());
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_variable_and_the_value() {
        for (name, value) in [
            (LISTEN_ADDRESS, "localhost"),
            (WARMUP_SECONDS, "soon"),
            (SHUTDOWN_DELAY_SECONDS, "-1"),
            (DRAIN_TIMEOUT_SECONDS, "NaN"),
            (LOG_LEVEL, "loud"),
        ] {
            let message = config(&[(name, value)]).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("{name}={value:?}: ")),
                "{message}"
            );
        }
    }
}
