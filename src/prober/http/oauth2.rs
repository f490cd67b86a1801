//! `oauth2`: a token from the client credentials grant, as
//! golang.org/x/oauth2's `clientcredentials` gets it for prometheus/common,
//! sent as `Authorization: <token_type> <access_token>`.
//!
//! The token request is a form POST (`grant_type=client_credentials`,
//! `scope`, `endpoint_params`, keys sorted, Go's escaping). The client
//! authenticates with HTTP basic (id and secret form-escaped) first; when
//! that fails for any reason it tries again with `client_id` and
//! `client_secret` in the form, and the way that worked is remembered.
//! Answers are JSON or, for `application/x-www-form-urlencoded` and
//! `text/plain`, a query string; a token is reused until ten seconds before
//! it expires (x/oauth2's `expiryDelta`), then fetched again.
//!
//! One token serves every probe of the module (blackbox_exporter builds a
//! client, and so fetches a token, per probe): it lives in the prepared
//! module, so a reload, which prepares modules anew, drops it. A changed
//! `client_secret_file` drops it too, as prometheus/common does.
//!
//! The token endpoint, the proxy to it and every redirect it answers with
//! pass the target policy; its answer is read to at most
//! [`MAX_TOKEN_RESPONSE`] bytes.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    time::{Duration, Instant},
};

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{
    exchange::send,
    proxy::{connect_authority, dial, with_ip, Proxies, Via},
};
use crate::config::OAuth2;
use crate::prober::{
    client_tls::ClientTls, limits::Ticket, policy::TargetPolicy, resolve, tls_info, url::Url,
};

/// The largest token response read. x/oauth2 reads 1 MiB; a token response
/// is a few hundred bytes, a JWT a few kilobytes, and every probe of the
/// module waits while one is read.
pub(crate) const MAX_TOKEN_RESPONSE: usize = 64 << 10;

/// x/oauth2's `defaultExpiryDelta`: a token is renewed this long before it expires.
const EXPIRY_DELTA: Duration = Duration::from_secs(10);

/// Redirects the token request follows, as Go's client.
const MAX_REDIRECTS: usize = 10;

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthStyle {
    InHeader,
    InParams,
}

#[derive(Debug)]
struct Token {
    header: HeaderValue,
    expiry: Option<Instant>,
}

impl Token {
    fn valid(&self) -> bool {
        self.expiry.is_none_or(|expiry| {
            expiry
                .checked_sub(EXPIRY_DELTA)
                .is_some_and(|t| t > Instant::now())
        })
    }
}

#[derive(Debug, Default)]
struct Cache {
    secret: Option<String>,
    style: Option<AuthStyle>,
    token: Option<Token>,
}

/// A module's token source, shared by its probes.
#[derive(Debug)]
pub(crate) struct TokenSource {
    config: OAuth2,
    tls: ClientTls,
    proxies: Proxies,
    cache: Mutex<Cache>,
}

/// What a fetch needs from the probe that asks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asker<'a> {
    pub(crate) policy: &'a TargetPolicy,
    pub(crate) ticket: &'a Ticket,
    pub(crate) user_agent: &'a HeaderValue,
}

impl TokenSource {
    pub(crate) fn new(config: OAuth2, tls: ClientTls) -> Result<Self, String> {
        let proxies = Proxies::new(config.proxy())?;
        Ok(Self {
            config,
            tls,
            proxies,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The Authorization header: the cached token while it is valid, else a new one.
    pub(crate) async fn authorization(&self, asker: Asker<'_>) -> Result<HeaderValue, String> {
        let secret = match (&self.config.client_secret, &self.config.client_secret_file) {
            (Some(secret), _) if !secret.0.is_empty() => secret.0.clone(),
            (_, Some(path)) if !path.as_os_str().is_empty() => tokio::fs::read_to_string(path)
                .await
                .map(|s| s.trim().to_owned())
                .map_err(|e| {
                    format!(
                        "unable to read oauth2 client secret: unable to read file {}: {e}",
                        path.display()
                    )
                })?,
            _ => String::new(),
        };
        // Held while fetching: probes of the module wait for one fetch.
        let mut cache = self.cache.lock().await;
        if cache.secret.as_deref() != Some(secret.as_str()) {
            *cache = Cache {
                secret: Some(secret.clone()),
                ..Cache::default()
            };
        }
        if let Some(token) = cache.token.as_ref().filter(|t| t.valid()) {
            return Ok(token.header.clone());
        }
        let (token, style) = self.retrieve(&secret, cache.style, asker).await?;
        let header = token.header.clone();
        cache.style = Some(style);
        cache.token = Some(token);
        Ok(header)
    }

    /// x/oauth2's `RetrieveToken`: header first, then params, unless known.
    async fn retrieve(
        &self,
        secret: &str,
        known: Option<AuthStyle>,
        asker: Asker<'_>,
    ) -> Result<(Token, AuthStyle), String> {
        let params = self.params()?;
        let style = known.unwrap_or(AuthStyle::InHeader);
        match self.request(&params, secret, style, asker).await {
            Err(_) if known.is_none() => {
                let style = AuthStyle::InParams;
                Ok((self.request(&params, secret, style, asker).await?, style))
            }
            result => Ok((result?, style)),
        }
    }

    /// The form's parameters, sorted as Go's `url.Values.Encode` writes them.
    fn params(&self) -> Result<BTreeMap<String, String>, String> {
        let mut params =
            BTreeMap::from([("grant_type".to_owned(), "client_credentials".to_owned())]);
        if !self.config.scopes.is_empty() {
            params.insert("scope".into(), self.config.scopes.join(" "));
        }
        for (key, value) in &self.config.endpoint_params {
            if params.contains_key(key) && key != "grant_type" {
                return Err(format!("oauth2: cannot overwrite parameter {key:?}"));
            }
            params.insert(key.clone(), value.clone());
        }
        Ok(params)
    }

    async fn request(
        &self,
        params: &BTreeMap<String, String>,
        secret: &str,
        style: AuthStyle,
        asker: Asker<'_>,
    ) -> Result<Token, String> {
        let mut params = params.clone();
        let mut authorization = None;
        let id = &self.config.client_id;
        match style {
            AuthStyle::InParams => {
                if !id.is_empty() {
                    params.insert("client_id".into(), id.clone());
                }
                if !secret.is_empty() {
                    params.insert("client_secret".into(), secret.to_owned());
                }
            }
            AuthStyle::InHeader => {
                let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    query_escape(id),
                    query_escape(secret)
                ));
                let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
                    .map_err(|_| "oauth2: client credentials are not a valid header value")?;
                value.set_sensitive(true);
                authorization = Some(value);
            }
        }
        let body = encode(&params);
        let Some(token_url) = &self.config.token_url else {
            return Err("oauth2 token_url must be configured".into());
        };
        let (status, content_type, body) =
            self.post(&token_url.0, body, authorization, asker).await?;
        parse_token(status, content_type.as_deref(), &body)
    }

    /// POSTs the form, following redirects as Go's client does.
    async fn post(
        &self,
        token_url: &Url,
        form: String,
        authorization: Option<HeaderValue>,
        asker: Asker<'_>,
    ) -> Result<(StatusCode, Option<String>, Bytes), String> {
        let mut url = token_url.clone();
        let mut method = Method::POST;
        let mut body = Some(Bytes::from(form));
        let mut authorization = authorization;
        for _ in 0..=MAX_REDIRECTS {
            let (status, headers, response_body) = self
                .round_trip(&url, &method, body.clone(), authorization.clone(), asker)
                .await
                .map_err(|e| format!("oauth2: cannot fetch token: {e}"))?;
            let location = headers
                .get(header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .filter(|l| !l.is_empty());
            match (status.as_u16(), location) {
                (code @ (301 | 302 | 303 | 307 | 308), Some(location)) => {
                    let (next, _) = url.join(&location).map_err(|e| {
                        format!("oauth2: cannot fetch token: redirect to {location:?}: {e}")
                    })?;
                    // Go keeps the Authorization header only for the same
                    // host or its subdomains.
                    let first = token_url.hostname();
                    let host = next.hostname();
                    if host != first && !host.ends_with(&format!(".{first}")) {
                        authorization = None;
                    }
                    if matches!(code, 301..=303) {
                        method = Method::GET;
                        body = None;
                    }
                    url = next;
                }
                _ => {
                    let content_type = headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    return Ok((status, content_type, response_body));
                }
            }
        }
        Err(format!(
            "oauth2: cannot fetch token: stopped after {MAX_REDIRECTS} redirects"
        ))
    }

    /// One request to the token endpoint (or a redirect's target), over a
    /// fresh connection, through the proxy when one applies.
    async fn round_trip(
        &self,
        url: &Url,
        method: &Method,
        body: Option<Bytes>,
        authorization: Option<HeaderValue>,
        asker: Asker<'_>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), String> {
        let host = url.hostname();
        asker.policy.check_name(host)?;
        let ips = resolve::lookup(host, asker.ticket).await?;
        let port = url.port()?;
        let (via, (mut tcp, addr)) = match self.proxies.select(url, host)? {
            Some(endpoint) => {
                let via = Via::resolve(endpoint, asker.policy, asker.ticket).await?.0;
                // The proxy is asked for an address checked here.
                let ip = *ips
                    .iter()
                    .find(|&&ip| asker.policy.check(host, ip).is_ok())
                    .ok_or_else(|| format!("no allowed address for {host}"))?;
                let connection = via.dial(asker.policy).await?;
                (Some((via, ip)), connection)
            }
            None => (None, dial(host, &ips, port, asker.policy).await?),
        };

        let authority = url.authority();
        let path = url.request_uri();
        let absolute = via.as_ref().filter(|_| !url.is_https());
        let uri = match absolute {
            Some((_, ip)) => format!("http://{}{path}", with_ip(authority, *ip)),
            None => path,
        };
        let mut builder = Request::builder().method(method.clone()).uri(uri);
        let headers = builder.headers_mut().ok_or("invalid request")?;
        headers.insert(
            header::HOST,
            HeaderValue::from_str(authority).map_err(|_| format!("invalid Host {authority:?}"))?,
        );
        headers.insert(header::USER_AGENT, asker.user_agent.clone());
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, value);
        }
        if let Some(value) = absolute.and_then(|(via, _)| via.authorization()) {
            headers.insert(header::PROXY_AUTHORIZATION, value.clone());
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| format!("building the token request: {e}"))?;

        let (response, _connection) = if url.is_https() {
            if let Some((via, ip)) = &via {
                via.connect(
                    &mut tcp,
                    &connect_authority(&ip.to_string(), port),
                    &self.proxies,
                )
                .await?;
            }
            let server_name = self
                .config
                .tls_config
                .server_name
                .clone()
                .unwrap_or_else(|| host.to_owned());
            let (stream, _) = tls_info::connect(&self.tls, &server_name, tcp, &addr).await?;
            send(stream, false, request).await?
        } else {
            send(tcp, false, request).await?
        };
        let status = response.status();
        let (parts, mut incoming) = response.into_parts();
        let mut body = Vec::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| format!("reading the token response: {e}"))?;
            if let Some(data) = frame.data_ref() {
                if body.len() + data.len() > MAX_TOKEN_RESPONSE {
                    return Err(format!(
                        "the token response is larger than {MAX_TOKEN_RESPONSE} bytes"
                    ));
                }
                body.extend_from_slice(data);
            }
        }
        Ok((status, parts.headers, Bytes::from(body)))
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Go's `url.Values.Encode` (keys already sorted).
fn encode(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// x/oauth2's token JSON: unknown fields ignored, `expires_in` a number or a
/// numeric string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenJson {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<ExpiresIn>,
    error: Option<String>,
    error_description: Option<String>,
    error_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Number(serde_json::Number),
    Text(String),
}

impl ExpiresIn {
    /// Seconds, capped at Go's int32 as x/oauth2 caps them.
    fn seconds(&self) -> Result<i64, String> {
        let text = match self {
            Self::Number(n) => n.to_string(),
            Self::Text(t) => t.clone(),
        };
        text.parse::<i64>()
            .map(|s| s.min(i64::from(i32::MAX)))
            .map_err(|_| format!("expires_in {text:?} is not an integer"))
    }
}

/// x/oauth2's `doTokenRoundTrip` from the status on.
fn parse_token(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Token, String> {
    let failure = !status.is_success();
    let failed = || {
        format!(
            "oauth2: cannot fetch token: {status}\nResponse: {}",
            String::from_utf8_lossy(body)
        )
    };
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let (access_token, token_type, expires_in, error): (String, String, i64, _) =
        if media == "application/x-www-form-urlencoded" || media == "text/plain" {
            // Go's `Values.Get`: the first value of a key.
            let mut values = BTreeMap::new();
            for (k, v) in form_urlencoded::parse(body) {
                values
                    .entry(k.into_owned())
                    .or_insert_with(|| v.into_owned());
            }
            let get = |k: &str| values.get(k).cloned().unwrap_or_default();
            let expires = get("expires_in").parse::<i64>().unwrap_or(0);
            let error = (!get("error").is_empty())
                .then(|| (get("error"), get("error_description"), get("error_uri")));
            (get("access_token"), get("token_type"), expires, error)
        } else {
            let json: TokenJson = match serde_json::from_slice(body) {
                Ok(json) => json,
                Err(_) if failure => return Err(failed()),
                Err(e) => return Err(format!("oauth2: cannot parse json: {e}")),
            };
            let expires = match &json.expires_in {
                Some(e) => e
                    .seconds()
                    .map_err(|e| format!("oauth2: cannot parse json: {e}"))?,
                None => 0,
            };
            let error = json.error.filter(|e| !e.is_empty()).map(|e| {
                (
                    e,
                    json.error_description.unwrap_or_default(),
                    json.error_uri.unwrap_or_default(),
                )
            });
            (
                json.access_token.unwrap_or_default(),
                json.token_type.unwrap_or_default(),
                expires,
                error,
            )
        };
    if let Some((code, description, uri)) = error {
        let mut message = format!("oauth2: {code:?}");
        for part in [description, uri] {
            if !part.is_empty() {
                let _ = write!(message, " {part:?}");
            }
        }
        return Err(message);
    }
    if failure {
        return Err(failed());
    }
    if access_token.is_empty() {
        return Err("oauth2: server response missing access_token".into());
    }
    // x/oauth2's `Token.Type`.
    let kind = match token_type.as_str() {
        t if t.eq_ignore_ascii_case("bearer") || t.is_empty() => "Bearer",
        t if t.eq_ignore_ascii_case("mac") => "MAC",
        t if t.eq_ignore_ascii_case("basic") => "Basic",
        t => t,
    };
    let mut header = HeaderValue::from_str(&format!("{kind} {access_token}"))
        .map_err(|_| "oauth2: the token is not a valid header value".to_owned())?;
    header.set_sensitive(true);
    let expiry = match expires_in {
        0 => None,
        // Already expired: used for this probe, fetched again by the next.
        s if s < 0 => Some(Instant::now()),
        s => Instant::now().checked_add(Duration::from_secs(u64::try_from(s).unwrap_or(0))),
    };
    Ok(Token { header, expiry })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_escaped_and_sorted_as_go_writes_it() {
        let params = BTreeMap::from([
            ("scope".to_owned(), "a b*~".to_owned()),
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("aud".to_owned(), "x&y=z".to_owned()),
        ]);
        assert_eq!(
            encode(&params),
            "aud=x%26y%3Dz&grant_type=client_credentials&scope=a+b%2A~"
        );
    }

    #[test]
    fn token_answers_are_read_as_x_oauth2_reads_them() {
        let ok = StatusCode::OK;
        let json = Some("application/json; charset=utf-8");
        let token = parse_token(
            ok,
            json,
            br#"{"access_token":"t1","token_type":"bearer","expires_in":"3600","extra":{"a":[1]}}"#,
        )
        .unwrap();
        assert_eq!(token.header, "Bearer t1");
        assert!(token.valid());
        let token = parse_token(
            ok,
            None,
            br#"{"access_token":"t1","token_type":"mac","expires_in":5}"#,
        )
        .unwrap();
        assert_eq!(token.header, "MAC t1");
        assert!(!token.valid(), "within x/oauth2's ten seconds of expiry");
        let token = parse_token(
            ok,
            Some("text/plain"),
            b"access_token=a%20b&token_type=Custom",
        )
        .unwrap();
        assert_eq!(token.header, "Custom a b");
        assert!(token.valid());
        for (status, content_type, body, expected) in [
            (ok, json, &b"{}"[..], "server response missing access_token"),
            (ok, json, b"{\"access_token\":1}", "cannot parse json"),
            (ok, json, b"not json", "cannot parse json"),
            (
                StatusCode::UNAUTHORIZED,
                json,
                b"not json",
                "cannot fetch token: 401 Unauthorized\nResponse: not json",
            ),
            (
                StatusCode::BAD_REQUEST,
                json,
                br#"{"error":"invalid_client","error_description":"no"}"#,
                r#"oauth2: "invalid_client" "no""#,
            ),
            (
                ok,
                json,
                br#"{"error":"invalid_scope","access_token":"t"}"#,
                r#"oauth2: "invalid_scope""#,
            ),
            (
                ok,
                json,
                b"{\"access_token\":\"a\\nb\"}",
                "not a valid header value",
            ),
        ] {
            let err = parse_token(status, content_type, body).unwrap_err();
            assert!(err.contains(expected), "{body:?}: {err}");
        }
    }
}
