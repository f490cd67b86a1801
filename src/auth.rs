//! Optional authentication of both listeners, the counterpart of
//! blackbox_exporter's web config: HTTP basic authentication with users from
//! a file, or a bearer token from a file. Both files are re-read when they
//! change. Wrong or missing credentials get 401 and nothing else.
//!
//! `/healthz` and `/readyz` stay open: the kubelet probes them without
//! credentials, and they reveal nothing.

use std::{path::PathBuf, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;

use crate::watched::{self, Watched};

/// Paths that never ask for credentials.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

/// What a request must present.
#[derive(Debug)]
pub enum Auth {
    /// `user:password` lines (blank lines and `#` comments ignored).
    Basic(Watched<Vec<(String, String)>>),
    /// One token.
    Bearer(Watched<String>),
}

impl Auth {
    /// Basic authentication with the users in `path`.
    pub fn basic(path: PathBuf) -> Result<Self, String> {
        Watched::new(vec![path], |paths| {
            parse_users(&watched::read(&paths[0])?, &paths[0].display().to_string())
        })
        .map(Self::Basic)
    }

    /// Bearer authentication with the token in `path`.
    pub fn bearer(path: PathBuf) -> Result<Self, String> {
        Watched::new(vec![path], |paths| {
            let token = watched::read(&paths[0])?.trim().to_owned();
            if token.is_empty() {
                return Err(format!("{}: empty bearer token", paths[0].display()));
            }
            Ok(token)
        })
        .map(Self::Bearer)
    }

    fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(given) = authorization.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        match self {
            Self::Bearer(token) => given
                .strip_prefix("Bearer ")
                .is_some_and(|t| same_secret(t.trim(), &token.get())),
            Self::Basic(users) => {
                let Some(decoded) = given
                    .strip_prefix("Basic ")
                    .and_then(|b| {
                        base64::engine::general_purpose::STANDARD
                            .decode(b.trim())
                            .ok()
                    })
                    .and_then(|b| String::from_utf8(b).ok())
                else {
                    return false;
                };
                let Some((user, password)) = decoded.split_once(':') else {
                    return false;
                };
                // Look at every user so the time taken does not tell which exist.
                users.get().iter().fold(false, |found, (u, p)| {
                    found | (same_secret(u, user) & same_secret(p, password))
                })
            }
        }
    }

    fn challenge(&self) -> &'static str {
        match self {
            Self::Basic(_) => "Basic realm=\"lookout\"",
            Self::Bearer(_) => "Bearer",
        }
    }
}

fn parse_users(text: &str, origin: &str) -> Result<Vec<(String, String)>, String> {
    let users: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, line)| {
            line.split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty())
                .map(|(u, p)| (u.to_owned(), p.to_owned()))
                .ok_or_else(|| format!("{origin}: entry {} is not user:password", i + 1))
        })
        .collect::<Result<_, _>>()?;
    if users.is_empty() {
        return Err(format!("{origin}: no users"));
    }
    Ok(users)
}

/// Compares secrets in time that depends only on their digests' length.
fn same_secret(a: &str, b: &str) -> bool {
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let (a, b) = (digest(a), digest(b));
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Middleware: 401 unless the request carries valid credentials.
pub async fn require(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&request.uri().path())
        || auth.admits(request.headers().get(header::AUTHORIZATION))
    {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, auth.challenge())],
        "Unauthorized\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_files_parse_and_reject_malformed_lines() {
        let users = parse_users("# comment\nalice:secret\n\nbob:p:w\n", "users").unwrap();
        assert_eq!(
            users,
            [
                ("alice".into(), "secret".into()),
                ("bob".into(), "p:w".into())
            ]
        );
        assert!(parse_users("alice\n", "users")
            .unwrap_err()
            .contains("entry 1"));
        assert!(parse_users("# nothing\n", "users")
            .unwrap_err()
            .contains("no users"));
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("t0ken", "t0ken"));
        assert!(!same_secret("t0ken", "t0kem"));
        assert!(!same_secret("t0ken", "t0ken "));
    }
}
