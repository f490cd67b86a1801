//! The http prober's client options from Prometheus' `HTTPClientConfig`
//! (prometheus/common 0.67, which blackbox_exporter 0.28 builds with):
//! `authorization`, `oauth2`, `http_headers`, the proxy options, and the
//! rules by which they exclude each other, with its key names and messages.
//!
//! `*_ref` keys (secrets from a secret manager) are not here: blackbox_exporter
//! gives prometheus/common no secret manager, so they fail every probe there,
//! and lookout rejects them at load (see `UNSUPPORTED_KEYS`).

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::{Deserialize, Deserializer};

use super::{
    http::HttpProbe,
    tls::TlsConfig,
    validate::Invalid,
    values::{deserialize_from_str, Secret},
};
use crate::prober::url::Url;

/// `authorization`: an `Authorization: <type> <credentials>` header.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Authorization {
    /// The scheme; empty means `Bearer`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The credentials, sent as written.
    pub(crate) credentials: Option<Secret>,
    /// File holding the credentials, read at each probe and trimmed.
    pub(crate) credentials_file: Option<PathBuf>,
}

impl Authorization {
    /// The scheme sent: `type` trimmed, `Bearer` when empty (prometheus/common's default).
    pub(crate) fn scheme(&self) -> &str {
        match self.kind.trim() {
            "" => "Bearer",
            kind => kind,
        }
    }
}

/// `oauth2`: a token from the client credentials grant (RFC 6749 4.4), sent
/// as the Authorization header.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct OAuth2 {
    /// The client's id.
    pub(crate) client_id: String,
    /// The client's secret.
    pub(crate) client_secret: Option<Secret>,
    /// File holding the client's secret, read at each probe and trimmed.
    pub(crate) client_secret_file: Option<PathBuf>,
    /// Only `client_credentials` (the default): the JWT bearer grant is not implemented.
    pub(crate) grant_type: Option<String>,
    /// Scopes asked for, sent space-separated as `scope`.
    pub(crate) scopes: Vec<String>,
    /// Where the token is asked for.
    pub(crate) token_url: Option<HttpUrl>,
    /// More form parameters of the token request.
    pub(crate) endpoint_params: BTreeMap<String, String>,
    /// TLS settings for the token endpoint.
    pub(crate) tls_config: TlsConfig,
    /// The proxy for the token endpoint (not the module's).
    pub(crate) proxy_url: Option<ProxyUrl>,
    /// Hosts reached without `proxy_url`.
    pub(crate) no_proxy: Option<String>,
    /// Proxies from `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`.
    pub(crate) proxy_from_environment: bool,
    /// Headers sent to the proxy with CONNECT.
    pub(crate) proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

/// One header of `http_headers`: every value is sent, as a field of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpHeader {
    /// Values sent as written.
    pub(crate) values: Vec<String>,
    /// Values that are secrets (hidden in logs).
    pub(crate) secrets: Vec<Secret>,
    /// Files whose contents (trimmed) are values, read at each probe.
    pub(crate) files: Vec<PathBuf>,
}

/// The proxy options of a module or of its `oauth2`, borrowed together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProxyOptions<'a> {
    /// `proxy_url`.
    pub(crate) url: Option<&'a ProxyUrl>,
    /// `no_proxy`, when not empty.
    pub(crate) no_proxy: Option<&'a str>,
    /// `proxy_from_environment`.
    pub(crate) from_environment: bool,
    /// `proxy_connect_header`.
    pub(crate) connect_header: &'a BTreeMap<String, Vec<Secret>>,
}

impl ProxyOptions<'_> {
    /// Whether a proxy is configured at all (blackbox_exporter's test for
    /// `skip_resolve_phase_with_proxy`, whatever `no_proxy` says).
    pub(crate) fn is_set(&self) -> bool {
        self.url.is_some() || self.from_environment
    }
}

impl HttpProbe {
    /// The module's proxy options.
    pub(crate) fn proxy(&self) -> ProxyOptions<'_> {
        ProxyOptions {
            url: self.proxy_url.as_ref(),
            no_proxy: self.no_proxy.as_deref().filter(|n| !n.is_empty()),
            from_environment: self.proxy_from_environment,
            connect_header: &self.proxy_connect_header,
        }
    }
}

impl OAuth2 {
    /// The token endpoint's proxy options.
    pub(crate) fn proxy(&self) -> ProxyOptions<'_> {
        ProxyOptions {
            url: self.proxy_url.as_ref(),
            no_proxy: self.no_proxy.as_deref().filter(|n| !n.is_empty()),
            from_environment: self.proxy_from_environment,
            connect_header: &self.proxy_connect_header,
        }
    }
}

/// An absolute `http` or `https` URL, read by the prober's own URL parser.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl(pub(crate) Url);

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without the password a URL may carry.
        write!(f, "{}://{}", self.0.scheme(), self.0.authority())
    }
}

impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Url::parse(text).map(Self)
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "an http or https URL")
    }
}

/// A `proxy_url`: `http://[user:password@]host[:port]`. Go also speaks to
/// `https://` and `socks5://` proxies; lookout does not, and says so at load.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxyUrl(pub(crate) Url);

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.0.authority())
    }
}

impl FromStr for ProxyUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http") => Url::parse(text).map(Self),
            Some(other @ ("https" | "socks5" | "socks5h")) => Err(format!(
                "{other}:// proxies are not supported by lookout: only http:// proxies are"
            )),
            _ => Err(format!(
                "proxy URL {:?} must be http://host[:port]",
                redact(text)
            )),
        }
    }
}

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "an http:// proxy URL")
    }
}

/// A URL's text without what may be a password (everything before an `@`).
fn redact(text: &str) -> String {
    match text.rsplit_once('@') {
        Some((_, rest)) => format!("<user>@{rest}"),
        None => text.to_owned(),
    }
}

/// Headers `http_headers` may not set (prometheus/common's `ReservedHeaders`):
/// the client sets them, or they change the connection.
const RESERVED_HEADERS: &[&str] = &[
    "Authorization",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
    "Accept-Encoding",
    "X-Prometheus-Remote-Write-Version",
    "X-Prometheus-Remote-Read-Version",
    "X-Prometheus-Scrape-Timeout-Seconds",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
];

/// Go's `http.CanonicalHeaderKey`: each dash-separated word capitalised.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

fn err(field: &str, message: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid::new(field, message))
}

fn set(secret: Option<&Secret>) -> bool {
    secret.is_some_and(|s| !s.0.is_empty())
}

fn set_path(path: Option<&PathBuf>) -> bool {
    path.is_some_and(|p| !p.as_os_str().is_empty())
}

/// prometheus/common's `HTTPClientConfig.Validate` (with blackbox_exporter's
/// `body` and `body_file` rule), in its order and words, plus what lookout
/// checks at load that Go finds only when probing (header names and values).
pub(super) fn check(http: &HttpProbe) -> Result<(), Invalid> {
    let bearer = set(http.bearer_token.as_ref()) || set_path(http.bearer_token_file.as_ref());
    if set(http.bearer_token.as_ref()) && set_path(http.bearer_token_file.as_ref()) {
        return err(
            "",
            "at most one of bearer_token & bearer_token_file must be configured",
        );
    }
    if (http.basic_auth.is_some() || http.oauth2.is_some()) && bearer {
        return err(
            "",
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
        );
    }
    if let Some(auth) = &http.basic_auth {
        if !auth.username.is_empty() && set_path(auth.username_file.as_ref()) {
            return err(
                "basic_auth",
                "at most one of basic_auth username, username_file & username_ref must be configured",
            );
        }
        if set(auth.password.as_ref()) && set_path(auth.password_file.as_ref()) {
            return err(
                "basic_auth",
                "at most one of basic_auth password, password_file & password_ref must be configured",
            );
        }
    }
    if let Some(authorization) = &http.authorization {
        if bearer {
            return err(
                "",
                "authorization is not compatible with bearer_token & bearer_token_file",
            );
        }
        if set(authorization.credentials.as_ref())
            && set_path(authorization.credentials_file.as_ref())
        {
            return err(
                "authorization",
                "at most one of authorization credentials & credentials_file must be configured",
            );
        }
        if authorization.scheme().eq_ignore_ascii_case("basic") {
            return err(
                "authorization.type",
                r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
            );
        }
        if http::HeaderValue::from_str(authorization.scheme()).is_err() {
            return err("authorization.type", "not a valid authorization scheme");
        }
        if http.basic_auth.is_some() || http.oauth2.is_some() {
            return err(
                "",
                "at most one of basic_auth, oauth2 & authorization must be configured",
            );
        }
    }
    if let Some(oauth2) = &http.oauth2 {
        check_oauth2(oauth2, http.basic_auth.is_some()).map_err(|e| e.under("oauth2"))?;
    }
    check_proxy(http.proxy())?;
    check_headers(&http.http_headers).map_err(|e| e.under("http_headers"))?;
    if http.body.as_deref().is_some_and(|b| !b.is_empty()) && set_path(http.body_file.as_ref()) {
        return err("", "setting body and body_file both are not allowed");
    }
    Ok(())
}

fn check_oauth2(oauth2: &OAuth2, basic_auth: bool) -> Result<(), Invalid> {
    if basic_auth {
        return Err(Invalid::new(
            "",
            "at most one of basic_auth, oauth2 & authorization must be configured",
        ));
    }
    if oauth2.client_id.is_empty() {
        return err("client_id", "oauth2 client_id must be configured");
    }
    if oauth2.token_url.is_none() {
        return err("token_url", "oauth2 token_url must be configured");
    }
    match oauth2.grant_type.as_deref() {
        None | Some("" | "client_credentials") => {}
        Some(other) => {
            return err(
                "grant_type",
                format!("{other:?}: lookout implements the client_credentials grant only"),
            )
        }
    }
    if set(oauth2.client_secret.as_ref()) && set_path(oauth2.client_secret_file.as_ref()) {
        return err(
            "",
            "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured using grant-type=client_credentials",
        );
    }
    // golang.org/x/oauth2 refuses these at each fetch; here, at load.
    for key in oauth2.endpoint_params.keys() {
        if key == "scope" && !oauth2.scopes.is_empty() {
            return err(
                "endpoint_params",
                format!("oauth2: cannot overwrite parameter {key:?}"),
            );
        }
    }
    check_proxy(oauth2.proxy())?;
    super::validate::tls_config(&oauth2.tls_config)
}

/// prometheus/common's `ProxyConfig.Validate`, and the CONNECT headers.
fn check_proxy(proxy: ProxyOptions<'_>) -> Result<(), Invalid> {
    if !proxy.connect_header.is_empty() && !proxy.is_set() {
        return err(
            "proxy_connect_header",
            "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured",
        );
    }
    if proxy.from_environment && proxy.url.is_some() {
        return err(
            "proxy_url",
            "if proxy_from_environment is configured, proxy_url must not be configured",
        );
    }
    if proxy.from_environment && proxy.no_proxy.is_some() {
        return err(
            "no_proxy",
            "if proxy_from_environment is configured, no_proxy must not be configured",
        );
    }
    if proxy.url.is_none() && proxy.no_proxy.is_some() {
        return err(
            "no_proxy",
            "if no_proxy is configured, proxy_url must also be configured",
        );
    }
    for (name, values) in proxy.connect_header {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return err(
                "proxy_connect_header",
                format!("{name:?} is not a valid header name"),
            );
        }
        if values
            .iter()
            .any(|v| http::HeaderValue::from_str(&v.0).is_err())
        {
            return err(
                &format!("proxy_connect_header.{name}"),
                "not a valid header value",
            );
        }
    }
    Ok(())
}

fn check_headers(headers: &BTreeMap<String, HttpHeader>) -> Result<(), Invalid> {
    let mut seen = BTreeMap::new();
    for (name, header) in headers {
        let canonical = canonical(name);
        if RESERVED_HEADERS.contains(&canonical.as_str()) {
            return err("", format!("setting header {canonical:?} is not allowed"));
        }
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return err("", format!("{name:?} is not a valid header name"));
        }
        // Go keeps both spellings as two keys and sends them in map order.
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), name) {
            return err(
                "",
                format!("{first:?} and {name:?} name the same header (names are case-insensitive)"),
            );
        }
        let values = header
            .values
            .iter()
            .chain(header.secrets.iter().map(|s| &s.0));
        for value in values {
            if http::HeaderValue::from_str(value).is_err() {
                return err(name, "not a valid header value");
            }
        }
    }
    Ok(())
}

/// Relative paths of these options, joined to the modules file's directory.
pub(super) fn resolve_paths(http: &mut HttpProbe, base: &Path) {
    let join = |path: &mut PathBuf| {
        if path.is_relative() && !path.as_os_str().is_empty() {
            *path = base.join(&*path);
        }
    };
    if let Some(auth) = &mut http.basic_auth {
        auth.username_file.as_mut().map(join);
    }
    if let Some(authorization) = &mut http.authorization {
        authorization.credentials_file.as_mut().map(join);
    }
    if let Some(oauth2) = &mut http.oauth2 {
        oauth2.client_secret_file.as_mut().map(join);
        let tls = &mut oauth2.tls_config;
        for path in [&mut tls.ca_file, &mut tls.cert_file, &mut tls.key_file] {
            path.as_mut().map(join);
        }
    }
    for header in http.http_headers.values_mut() {
        header.files.iter_mut().for_each(join);
    }
    http.body_file.as_mut().map(join);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::tests::parse;

    fn module(block: &str) -> Result<crate::config::Config, String> {
        parse(&format!(
            "modules:\n  m:\n    prober: http\n    http:\n{}",
            block
                .lines()
                .map(|l| format!("      {l}\n"))
                .collect::<String>()
        ))
    }

    #[test]
    fn prometheus_commons_exclusions_are_errors_at_load() {
        for (block, expected) in [
            (
                "authorization: {credentials: x}\nbearer_token: y",
                "authorization is not compatible with bearer_token & bearer_token_file",
            ),
            (
                "authorization: {credentials: x, credentials_file: f}",
                "at most one of authorization credentials & credentials_file",
            ),
            (
                "authorization: {type: Basic, credentials: x}",
                r#"authorization type cannot be set to "basic""#,
            ),
            (
                "authorization: {credentials: x}\nbasic_auth: {username: u}",
                "at most one of basic_auth, oauth2 & authorization must be configured",
            ),
            (
                "authorization: {credentials: x}\noauth2: {client_id: c, token_url: 'http://t/'}",
                "at most one of basic_auth, oauth2 & authorization must be configured",
            ),
            (
                "oauth2: {client_id: c, token_url: 'http://t/'}\nbasic_auth: {username: u}",
                "modules.m.http.oauth2: at most one of basic_auth, oauth2 & authorization",
            ),
            (
                "oauth2: {client_id: c, token_url: 'http://t/'}\nbearer_token_file: t",
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file",
            ),
            (
                "oauth2: {token_url: 'http://t/'}",
                "modules.m.http.oauth2.client_id: oauth2 client_id must be configured",
            ),
            (
                "oauth2: {client_id: c}",
                "oauth2 token_url must be configured",
            ),
            (
                "oauth2: {client_id: c, token_url: 'http://t/', client_secret: s, client_secret_file: f}",
                "at most one of oauth2 client_secret, client_secret_file",
            ),
            (
                "oauth2: {client_id: c, token_url: 'ftp://t/'}",
                "unsupported scheme",
            ),
            (
                "oauth2: {client_id: c, token_url: 'http://t/', grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer'}",
                "client_credentials grant only",
            ),
            (
                "oauth2: {client_id: c, token_url: 'http://t/', scopes: [a], endpoint_params: {scope: b}}",
                "cannot overwrite parameter \"scope\"",
            ),
            (
                "oauth2: {client_id: c, token_url: 'http://t/', no_proxy: x}",
                "if no_proxy is configured, proxy_url must also be configured",
            ),
            (
                "basic_auth: {username: u, username_file: f}",
                "at most one of basic_auth username, username_file",
            ),
            (
                "basic_auth: {username: u, password: p, password_file: f}",
                "at most one of basic_auth password, password_file",
            ),
            (
                "proxy_connect_header: {X-A: [b]}",
                "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured",
            ),
            (
                "proxy_from_environment: true\nproxy_url: http://p:3128",
                "if proxy_from_environment is configured, proxy_url must not be configured",
            ),
            (
                "proxy_from_environment: true\nno_proxy: x",
                "if proxy_from_environment is configured, no_proxy must not be configured",
            ),
            (
                "no_proxy: x",
                "if no_proxy is configured, proxy_url must also be configured",
            ),
            (
                "proxy_url: https://p:3128",
                "https:// proxies are not supported by lookout",
            ),
            ("proxy_url: socks5://p:1080", "socks5:// proxies are not supported"),
            ("proxy_url: p:3128", "must be http://host[:port]"),
            (
                "proxy_url: http://p:3128\nproxy_connect_header: {'Bad Name': [x]}",
                "is not a valid header name",
            ),
            (
                "http_headers: {authorization: {values: [x]}}",
                r#"setting header "Authorization" is not allowed"#,
            ),
            (
                "http_headers: {user-agent: {values: [x]}}",
                r#"setting header "User-Agent" is not allowed"#,
            ),
            (
                "http_headers: {X-A: {values: [x]}, x-a: {values: [y]}}",
                "name the same header",
            ),
            (
                "http_headers: {X-A: {values: [\"a\\nb\"]}}",
                "modules.m.http.http_headers.X-A: not a valid header value",
            ),
            (
                "http_headers: {X-A: {value: [x]}}",
                "unknown field `value`",
            ),
            (
                "body: x\nbody_file: f",
                "setting body and body_file both are not allowed",
            ),
        ] {
            let err = module(block).unwrap_err();
            assert!(err.contains(expected), "{block:?}: {err}");
        }
    }

    #[test]
    fn secret_refs_and_the_jwt_grant_are_named_as_unsupported() {
        for (block, key) in [
            ("basic_auth: {username: u, password_ref: r}", "password_ref"),
            ("basic_auth: {username_ref: r}", "username_ref"),
            ("authorization: {credentials_ref: r}", "credentials_ref"),
            (
                "oauth2: {client_id: c, token_url: 'http://t/', client_secret_ref: r}",
                "client_secret_ref",
            ),
            (
                "oauth2: {client_id: c, token_url: 'http://t/', claims: {a: b}}",
                "claims",
            ),
        ] {
            let err = module(block).unwrap_err();
            assert!(
                err.contains(&format!(
                    "`{key}` is a blackbox_exporter option that lookout does not support"
                )),
                "{block:?}: {err}"
            );
        }
    }

    #[test]
    fn the_options_parse_and_their_files_resolve_against_the_modules_file() {
        let config = module(
            "proxy_url: http://user:pa%20ss@proxy.example:3128\n\
             no_proxy: internal.example,10.0.0.0/8\n\
             proxy_connect_header: {X-Tenant: [a, b]}\n\
             skip_resolve_phase_with_proxy: true\n\
             authorization: {type: ' Token ', credentials_file: creds}\n\
             http_headers: {X-A: {values: [v], secrets: [s], files: [h, /abs/h]}}\n\
             body_file: body.json",
        )
        .unwrap();
        let http = &config.modules["m"].http;
        assert_eq!(
            http.proxy_url.as_ref().unwrap().0.user(),
            Some(("user", "pa ss"))
        );
        assert_eq!(http.proxy().no_proxy, Some("internal.example,10.0.0.0/8"));
        assert!(http.skip_resolve_phase_with_proxy);
        let authorization = http.authorization.as_ref().unwrap();
        assert_eq!(authorization.scheme(), "Token");
        assert_eq!(
            authorization.credentials_file.as_deref(),
            Some(Path::new("/etc/lookout/creds"))
        );
        assert_eq!(
            http.http_headers["X-A"].files,
            [Path::new("/etc/lookout/h"), Path::new("/abs/h")]
        );
        assert_eq!(
            http.body_file.as_deref(),
            Some(Path::new("/etc/lookout/body.json"))
        );
        // The password never shows in debug output.
        assert!(!format!("{http:?}").contains("pa ss"));

        let config = module(
            "oauth2:\n  client_id: c\n  client_secret_file: secret\n  token_url: https://auth.example/token\n  scopes: [a, b]\n  endpoint_params: {audience: x}\n  tls_config: {ca_file: ca.pem}\n  proxy_url: http://p:3128",
        )
        .unwrap();
        let oauth2 = config.modules["m"].http.oauth2.clone().unwrap();
        assert_eq!(
            oauth2.client_secret_file.as_deref(),
            Some(Path::new("/etc/lookout/secret"))
        );
        assert_eq!(
            oauth2.tls_config.ca_file.as_deref(),
            Some(Path::new("/etc/lookout/ca.pem"))
        );
        assert!(oauth2.proxy().is_set());
        assert_eq!(
            module("authorization: {credentials: x}").unwrap().modules["m"]
                .http
                .authorization
                .as_ref()
                .unwrap()
                .scheme(),
            "Bearer"
        );
    }
}
