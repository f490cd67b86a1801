//! `--web.config.file` at run time: the file as last loaded (re-read when it,
//! or a certificate, key or CA file it names, changes), the listeners' TLS
//! built from it, and the middleware that applies the rest to every request
//! of both listeners, in exporter-toolkit's order: `rate_limit` (429), the
//! `http_server_config` headers, then `basic_auth_users` (401).
//!
//! A changed file that does not load keeps the previous one in force, and
//! says why, as the credential files of the other access flags do. TLS cannot
//! be turned on or off by a change (the listeners were bound for one or the
//! other): such a file is refused the same way until the next restart.
//! `/healthz`, `/readyz` and `/-/healthy` are neither rate-limited nor asked
//! for credentials (see `access`); they get the headers.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Instant,
};

use axum::{
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::metrics::{counter::Counter, family::Family};
use rustls::ServerConfig;

use super::{
    access,
    password_check::{PasswordCheck, Verdict},
    watched::Watched,
    web_tls,
};
use crate::{
    config::{PasswordHash, RateLimit, WebConfig},
    telemetry::metrics::AuthCheckLabels,
};

/// The web configuration file in force, and the state its checks keep.
#[derive(Debug)]
pub(crate) struct WebAccess {
    file: Watched<Loaded>,
    passwords: PasswordCheck,
}

/// One load of the file.
#[derive(Debug)]
struct Loaded {
    config: WebConfig,
    /// The listeners' TLS settings, when the file configures TLS.
    tls: Option<Arc<ServerConfig>>,
    limiter: Option<Limiter>,
    /// The hash an unknown user's password is checked against: the costliest.
    decoy: Option<PasswordHash>,
}

impl Loaded {
    fn read(path: &Path) -> Result<Self, String> {
        let config = WebConfig::load(path).map_err(|e| e.to_string())?;
        let tls = match &config.tls {
            Some(tls) => Some(web_tls::server_config(tls, config.http2).map_err(|e| {
                // Name the web configuration file when the message names none.
                if e.starts_with("tls_server_config") {
                    format!("{}: {e}", path.display())
                } else {
                    e
                }
            })?),
            None => None,
        };
        let decoy = config.users.values().max_by_key(|h| h.cost()).cloned();
        Ok(Self {
            limiter: config.rate_limit.map(Limiter::new),
            tls,
            decoy,
            config,
        })
    }
}

/// Loads `path` as start-up would, and forgets it.
pub(crate) fn check(path: &Path) -> Result<(), String> {
    Loaded::read(path).map(drop)
}

impl WebAccess {
    /// Loads the file now (an error is a start-up error); `checks` counts the
    /// password checks.
    pub(crate) fn load(
        path: PathBuf,
        checks: Family<AuthCheckLabels, Counter>,
    ) -> Result<Self, String> {
        let tls_at_start = OnceLock::new();
        let file = Watched::new(vec![path], move |paths| {
            let loaded = Loaded::read(&paths[0])?;
            let tls = loaded.tls.is_some();
            if *tls_at_start.get_or_init(|| tls) != tls {
                return Err(format!(
                    "{}: TLS cannot be turned {} while lookout runs; restart it",
                    paths[0].display(),
                    if tls { "on" } else { "off" }
                ));
            }
            Ok(loaded)
        })?
        .following(|loaded| loaded.config.files());
        Ok(Self {
            file,
            passwords: PasswordCheck::new(checks)?,
        })
    }

    /// The listeners' TLS settings in force, when the file configures TLS.
    pub(crate) fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.file.get().tls.clone()
    }

    /// The middleware's work for one request.
    pub(crate) async fn serve(&self, request: Request, next: Next) -> Response {
        let loaded = self.file.get();
        let open = access::is_open(request.uri().path());
        let mut response = if !open && loaded.limiter.as_ref().is_some_and(|l| !l.allow()) {
            (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response()
        } else if open || loaded.config.users.is_empty() {
            next.run(request).await
        } else {
            self.authenticate(&loaded, request, next).await
        };
        let headers = response.headers_mut();
        for (name, value) in &loaded.config.headers {
            headers.insert(name.clone(), value.clone());
        }
        response
    }

    async fn authenticate(&self, loaded: &Loaded, request: Request, next: Next) -> Response {
        let (Some((user, password)), Some(decoy)) =
            (access::basic_credentials(request.headers()), &loaded.decoy)
        else {
            return access::unauthorized(access::BASIC_CHALLENGE);
        };
        match self
            .passwords
            .check(&loaded.config.users, decoy, &user, &password)
            .await
        {
            Verdict::Admitted => next.run(request).await,
            Verdict::Refused => access::unauthorized(access::BASIC_CHALLENGE),
            Verdict::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                "Too many password checks at once; retry later\n",
            )
                .into_response(),
        }
    }
}

/// exporter-toolkit's `rate_limit`: a token bucket of `burst` requests,
/// refilled one per `interval`, full at start (Go's `rate.Limiter`).
#[derive(Debug)]
struct Limiter {
    rate: RateLimit,
    /// Tokens left, and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl Limiter {
    fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            state: Mutex::new((f64::from(rate.burst), Instant::now())),
        }
    }

    /// Takes a token if there is one.
    fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let earned = now.duration_since(state.1).as_secs_f64() / self.rate.interval.as_secs_f64();
        let tokens = (state.0 + earned).min(f64::from(self.rate.burst));
        *state = if tokens >= 1.0 {
            (tokens - 1.0, now)
        } else {
            (tokens, now)
        };
        tokens >= 1.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_limiter_admits_a_burst_then_one_per_interval() {
        let limiter = Limiter::new(RateLimit {
            interval: Duration::from_secs(3600),
            burst: 3,
        });
        let start = Instant::now();
        let at = |hours: u64| start + Duration::from_secs(hours * 3600);
        assert!((0..3).all(|_| limiter.allow_at(at(0))));
        assert!(!limiter.allow_at(at(0)));
        assert!(!limiter.allow_at(at(0)));
        // One interval earns one request.
        assert!(limiter.allow_at(at(1)));
        assert!(!limiter.allow_at(at(1)));
        // Refills never exceed the burst.
        assert!((0..3).all(|_| limiter.allow_at(at(20))));
        assert!(!limiter.allow_at(at(20)));
    }
}
