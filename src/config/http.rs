//! Settings of the http prober, with blackbox_exporter's names and defaults.

use std::{collections::BTreeMap, path::PathBuf, str::FromStr};

use serde::{Deserialize, Deserializer};

use super::{
    compression::Compression,
    http_auth::{Authorization, HttpHeader, OAuth2, ProxyUrl},
    pattern::Pattern,
    tls::TlsConfig,
    values::{deserialize_from_str, ByteSize, IpProtocol, Secret},
};

/// Settings of the http prober (blackbox_exporter's names and defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpProbe {
    /// Accepted status codes; empty means any 2xx.
    pub(crate) valid_status_codes: Vec<u16>,
    /// Accepted protocol versions; empty means any.
    pub(crate) valid_http_versions: Vec<HttpVersion>,
    /// Address family tried first.
    pub(crate) preferred_ip_protocol: IpProtocol,
    /// Whether the other family may be used when the preferred one has no address.
    pub(crate) ip_protocol_fallback: bool,
    /// Deprecated spelling of `follow_redirects: false`.
    pub(crate) no_follow_redirects: Option<bool>,
    /// Follow 3xx responses.
    pub(crate) follow_redirects: bool,
    /// Offer HTTP/2 by ALPN on TLS connections.
    pub(crate) enable_http2: bool,
    /// Probe over HTTP/3 (QUIC) instead (see `http3.rs`).
    pub(crate) enable_http3: bool,
    /// Fail when the final response came over TLS.
    pub(crate) fail_if_ssl: bool,
    /// Fail when the final response did not come over TLS.
    pub(crate) fail_if_not_ssl: bool,
    /// Request method.
    pub(crate) method: Method,
    /// Request headers (a `Host` header sets the request's host).
    pub(crate) headers: BTreeMap<String, String>,
    /// Fail when the body matches any of these.
    pub(crate) fail_if_body_matches_regexp: Vec<Pattern>,
    /// Fail when the body does not match all of these.
    pub(crate) fail_if_body_not_matches_regexp: Vec<Pattern>,
    /// Fail when a header value matches.
    pub(crate) fail_if_header_matches: Vec<HeaderMatch>,
    /// Fail when a header value does not match.
    pub(crate) fail_if_header_not_matches: Vec<HeaderMatch>,
    /// Request body.
    pub(crate) body: Option<String>,
    /// Largest body read; `0` means no limit beyond lookout's own cap.
    pub(crate) body_size_limit: ByteSize,
    /// Coding every response body is decoded with (see `compression.rs`).
    pub(crate) compression: Compression,
    /// TLS settings for https targets.
    pub tls_config: TlsConfig,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization: Bearer` token.
    pub(crate) bearer_token: Option<Secret>,
    /// File holding the bearer token, read at each probe.
    pub bearer_token_file: Option<PathBuf>,
    /// `Authorization: <type> <credentials>` (see `http_auth.rs`, as are the rest).
    pub(crate) authorization: Option<Authorization>,
    /// A token from an OAuth 2.0 client credentials grant.
    pub(crate) oauth2: Option<OAuth2>,
    /// Headers with values, secrets and files.
    pub(crate) http_headers: BTreeMap<String, HttpHeader>,
    /// Request body read from a file at each probe.
    pub(crate) body_file: Option<PathBuf>,
    /// The proxy requests go through.
    pub(crate) proxy_url: Option<ProxyUrl>,
    /// Hosts reached without `proxy_url`.
    pub(crate) no_proxy: Option<String>,
    /// Proxies from `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`.
    pub(crate) proxy_from_environment: bool,
    /// Headers sent to the proxy with CONNECT.
    pub(crate) proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    /// With a proxy, the target's name is left to the proxy to resolve.
    pub(crate) skip_resolve_phase_with_proxy: bool,
}

impl Default for HttpProbe {
    fn default() -> Self {
        Self {
            valid_status_codes: Vec::new(),
            valid_http_versions: Vec::new(),
            preferred_ip_protocol: IpProtocol::Ip6,
            ip_protocol_fallback: true,
            no_follow_redirects: None,
            follow_redirects: true,
            enable_http2: true,
            enable_http3: false,
            fail_if_ssl: false,
            fail_if_not_ssl: false,
            method: Method::default(),
            headers: BTreeMap::new(),
            fail_if_body_matches_regexp: Vec::new(),
            fail_if_body_not_matches_regexp: Vec::new(),
            fail_if_header_matches: Vec::new(),
            fail_if_header_not_matches: Vec::new(),
            body: None,
            body_size_limit: ByteSize(0),
            compression: Compression::default(),
            tls_config: TlsConfig::default(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            authorization: None,
            oauth2: None,
            http_headers: BTreeMap::new(),
            body_file: None,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: false,
            proxy_connect_header: BTreeMap::new(),
            skip_resolve_phase_with_proxy: false,
        }
    }
}

impl HttpProbe {
    /// Whether redirects are followed, honouring the deprecated spelling.
    pub(crate) fn follows_redirects(&self) -> bool {
        match self.no_follow_redirects {
            Some(no_follow) => !no_follow,
            None => self.follow_redirects,
        }
    }
}

/// A header check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderMatch {
    /// Header name (case-insensitive).
    pub(crate) header: String,
    /// Pattern matched against each value of the header.
    pub(crate) regexp: Pattern,
    /// A missing header passes instead of failing.
    #[serde(default)]
    pub(crate) allow_missing: bool,
}

/// HTTP basic authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    #[serde(default)]
    pub(crate) username: String,
    /// File holding the user name, read at each probe and trimmed.
    #[serde(default)]
    pub(crate) username_file: Option<PathBuf>,
    /// Password.
    #[serde(default)]
    pub(crate) password: Option<Secret>,
    /// File holding the password, read at each probe.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// HTTP versions `valid_http_versions` can name, spelled as Go's `resp.Proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum HttpVersion {
    /// HTTP/1.0
    #[serde(rename = "HTTP/1.0")]
    Http10,
    /// HTTP/1.1
    #[serde(rename = "HTTP/1.1")]
    Http11,
    /// HTTP/2
    #[serde(rename = "HTTP/2.0", alias = "HTTP/2")]
    Http2,
    /// HTTP/3 (`enable_http3` only)
    #[serde(rename = "HTTP/3.0")]
    Http3,
}

/// An HTTP method token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Method(pub(crate) http::Method);

impl Default for Method {
    fn default() -> Self {
        Self(http::Method::GET)
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        http::Method::from_bytes(text.as_bytes())
            .map(Method)
            .map_err(|_| format!("invalid HTTP method {text:?}"))
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "an HTTP method")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{tests::parse, ProberKind, PromDuration, TlsVersion};

    #[test]
    fn blackbox_defaults_apply() {
        let config = parse("modules:\n  m:\n    prober: http\n").unwrap();
        let m = &config.modules["m"];
        assert_eq!(m.prober, ProberKind::Http);
        assert_eq!(m.timeout, PromDuration::default());
        assert_eq!(m.http.preferred_ip_protocol, IpProtocol::Ip6);
        assert!(m.http.ip_protocol_fallback);
        assert!(m.http.follows_redirects());
        assert_eq!(m.http.method.0, http::Method::GET);
    }

    #[test]
    fn a_full_http_module_parses() {
        let text = r#"
modules:
  full:
    prober: http
    timeout: 1m30s
    http:
      valid_status_codes: [200, 301]
      valid_http_versions: ["HTTP/1.1", "HTTP/2.0"]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      no_follow_redirects: true
      fail_if_not_ssl: true
      method: POST
      headers: {Host: example.org, X-Test: "1"}
      body: '{"a":1}'
      fail_if_body_matches_regexp: ["error"]
      fail_if_body_not_matches_regexp: ["ok|fine"]
      fail_if_header_matches: [{header: Server, regexp: "nginx"}]
      fail_if_header_not_matches: [{header: X-Ok, regexp: "yes", allow_missing: true}]
      body_size_limit: 1MiB
      tls_config: {ca_file: ca.pem, server_name: example.org, min_version: TLS12, insecure_skip_verify: false}
      basic_auth: {username: u, password: p}
"#;
        let config = parse(text).unwrap();
        let http = &config.modules["full"].http;
        assert_eq!(config.modules["full"].timeout.0.as_secs(), 90);
        assert_eq!(http.valid_status_codes, [200, 301]);
        assert!(!http.follows_redirects());
        assert_eq!(http.body_size_limit, ByteSize(1 << 20));
        assert_eq!(
            http.tls_config.ca_file.as_deref(),
            Some(Path::new("/etc/lookout/ca.pem"))
        );
        assert_eq!(http.tls_config.min_version, Some(TlsVersion::Tls12));
        assert!(http.fail_if_body_not_matches_regexp[0].is_match(b"all fine"));
    }
}
