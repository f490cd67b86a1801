//! What a module adds to each request besides its `headers`: the
//! Authorization header (`basic_auth`, `authorization`, `bearer_token`,
//! `oauth2`), `http_headers`, and the body from `body_file`. Files are read
//! once per probe, before the first connection, as prometheus/common's
//! round trippers read them before dialing (`body_file` first, as
//! blackbox_exporter opens it before it starts the request's timings); a
//! file that cannot be read fails the probe.
//!
//! The order is Go's: a module's own `Authorization` header, else the
//! target URL's user, else the module's credentials; an `oauth2` token
//! replaces all of them (x/oauth2's transport sets it unconditionally).
//! Credentials, `http_headers` secrets and files go only to the target's host
//! and its subdomains; `http_headers` values to every hop, as Go sends them.

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue};

use super::{oauth2::Asker, setup::HttpSetup, USER_AGENT};
use crate::config::HttpProbe;
use crate::prober::ProbeOptions;

/// The largest `body_file` sent (one probe holds it in memory).
pub(crate) const MAX_BODY_FILE: u64 = 1 << 20;

/// The module's additions to every request of one probe.
#[derive(Debug, Default)]
pub(super) struct Additions {
    /// The module's credentials.
    authorization: Option<HeaderValue>,
    /// Whether they are an oauth2 token (which replaces any other).
    oauth2: bool,
    /// `http_headers`: name, value, and whether it is a secret or a file's.
    headers: Vec<(HeaderName, HeaderValue, bool)>,
}

async fn read(path: &std::path::Path, what: &str) -> Result<String, String> {
    tokio::fs::read_to_string(path)
        .await
        .map(|s| s.trim().to_owned())
        .map_err(|e| {
            format!(
                "unable to read {what}: unable to read file {}: {e}",
                path.display()
            )
        })
}

fn value(text: &str, what: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(text).map_err(|_| format!("{what} is not a valid header value"))
}

/// Reads what the module's files hold and fetches its oauth2 token.
pub(super) async fn prepare(
    config: &HttpProbe,
    setup: &HttpSetup,
    options: ProbeOptions<'_>,
) -> Result<Additions, String> {
    let mut additions = Additions::default();
    for (name, entry) in &config.http_headers {
        // Checked at load.
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        for text in &entry.values {
            additions
                .headers
                .push((name.clone(), value(text, "an http_headers value")?, false));
        }
        for secret in &entry.secrets {
            let mut v = value(&secret.0, "an http_headers secret")?;
            v.set_sensitive(true);
            additions.headers.push((name.clone(), v, true));
        }
        for path in &entry.files {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("unable to read headers file {}: {e}", path.display()))?;
            let mut v = value(text.trim(), "an http_headers file")?;
            v.set_sensitive(true);
            additions.headers.push((name.clone(), v, true));
        }
    }
    if let Some(source) = &setup.oauth2 {
        let user_agent = config
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
            .and_then(|(_, v)| HeaderValue::from_str(v).ok())
            .unwrap_or_else(|| HeaderValue::from_static(USER_AGENT));
        let token = source
            .authorization(Asker {
                policy: options.policy,
                ticket: options.ticket,
                user_agent: &user_agent,
            })
            .await?;
        additions.authorization = Some(token);
        additions.oauth2 = true;
    } else if let Some(auth) = &config.basic_auth {
        let user = match &auth.username_file {
            Some(path) if auth.username.is_empty() => read(path, "basic auth username").await?,
            _ => auth.username.clone(),
        };
        let password = match (&auth.password, &auth.password_file) {
            // Trimmed, as blackbox_exporter 0.23's prometheus/common did.
            (Some(secret), _) if !secret.0.is_empty() => secret.0.trim().to_owned(),
            (_, Some(path)) => read(path, "basic auth password").await?,
            _ => String::new(),
        };
        additions.authorization = Some(basic(&user, &password)?);
    } else if let Some(authorization) = &config.authorization {
        let credentials = match (&authorization.credentials, &authorization.credentials_file) {
            (Some(secret), _) if !secret.0.is_empty() => secret.0.clone(),
            (_, Some(path)) => read(path, "authorization credentials").await?,
            _ => String::new(),
        };
        additions.authorization = Some(sensitive(&format!(
            "{} {credentials}",
            authorization.scheme()
        ))?);
    } else if let Some(token) = &config.bearer_token {
        additions.authorization = Some(sensitive(&format!("Bearer {}", token.0.trim()))?);
    } else if let Some(path) = &config.bearer_token_file {
        let token = read(path, "authorization credentials").await?;
        additions.authorization = Some(sensitive(&format!("Bearer {token}"))?);
    }
    Ok(additions)
}

/// `body_file`'s contents, at most [`MAX_BODY_FILE`] bytes.
pub(super) async fn read_body_file(path: &std::path::Path) -> Result<Bytes, String> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("opening body_file {}: {e}", path.display()))?;
    let mut body = Vec::new();
    file.take(MAX_BODY_FILE + 1)
        .read_to_end(&mut body)
        .await
        .map_err(|e| format!("reading body_file {}: {e}", path.display()))?;
    if body.len() as u64 > MAX_BODY_FILE {
        return Err(format!(
            "body_file {} is larger than {MAX_BODY_FILE} bytes",
            path.display()
        ));
    }
    Ok(Bytes::from(body))
}

impl Additions {
    /// Adds them to a hop's headers (the module's `headers` already set);
    /// `user` is the hop URL's user and password, `credentials` whether the
    /// hop may carry the module's credentials.
    pub(super) fn apply(
        &self,
        headers: &mut HeaderMap,
        user: Option<(&str, &str)>,
        credentials: bool,
    ) -> Result<(), String> {
        if let Some((user, password)) = user {
            if !headers.contains_key(header::AUTHORIZATION) {
                headers.insert(header::AUTHORIZATION, basic(user, password)?);
            }
        }
        for (name, value, secret) in &self.headers {
            if credentials || !secret {
                headers.append(name.clone(), value.clone());
            }
        }
        if let (true, Some(value)) = (credentials, &self.authorization) {
            if self.oauth2 || !headers.contains_key(header::AUTHORIZATION) {
                headers.insert(header::AUTHORIZATION, value.clone());
            }
        }
        Ok(())
    }
}

fn sensitive(text: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(text)
        .map_err(|_| "credentials are not a valid header value".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Authorization: Basic` for a user and password.
pub(super) fn basic(user: &str, password: &str) -> Result<HeaderValue, String> {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    sensitive(&format!("Basic {credentials}"))
}
