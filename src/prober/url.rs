//! Target URLs as blackbox_exporter reads them: Go's `net/url` (RFC 3986
//! with Go's leniencies), because its probes are the oracle.
//!
//! One parser decides scheme, host and port for the target policy, the
//! connection, the Host header and every redirect, so no two parts of a probe
//! can disagree about where it goes. What Go accepts and we do too: raw UTF-8
//! and spaces in paths (sent percent-encoded), empty ports (`host:`), ports
//! with leading zeros. What Go refuses and we do too: control characters, a
//! port that is not all digits (`:+80`), `%`-escapes of ASCII in a host, bad
//! escapes anywhere. A port beyond 65535 parses, as in Go, and fails at the
//! connection. Not followed: a non-ASCII host (Go's transport converts it to
//! punycode; we would need the IDNA tables): it is refused with the reason.
//! Crates that parse URLs follow the WHATWG standard (as browsers do) or
//! strict RFC 3986, and both disagree with Go on inputs probes meet.

use std::fmt::Write as _;

use super::address::{port_number, split_host_port, valid_optional_port};

/// A parsed absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: String,
    /// Decoded user and optional password.
    user: Option<(String, Option<String>)>,
    /// Go's `URL.Host`: `host[:port]`, IPv6 in brackets, decoded.
    host: String,
    /// Decoded path.
    path: String,
    /// The path as written, when that differs from Go's default escaping.
    raw_path: Option<String>,
    /// The query as written (never decoded), with `?` forced when the URL
    /// ended in a lone `?`.
    query: Option<String>,
}

/// Which part of a URL a byte is escaped or unescaped for (Go's `encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

impl Url {
    /// Parses an absolute URL as Go's `url.Parse` does, then requires an
    /// `http` or `https` scheme and a host.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let reference = Reference::parse(raw)?;
        Self::absolute(reference, raw)
    }

    fn absolute(reference: Reference, raw: &str) -> Result<Self, String> {
        let Some(scheme) = reference.scheme else {
            return Err(format!("{raw:?} has no scheme"));
        };
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "unsupported scheme {scheme:?}: only http and https are"
            ));
        }
        let Some(host) = reference.host.filter(|h| !split_host_port(h).0.is_empty()) else {
            return Err(format!("no host in {raw:?}"));
        };
        if !host.is_ascii() {
            return Err(format!(
                "host {host:?} is not ASCII: write it in its punycode form (xn--...)"
            ));
        }
        Ok(Self {
            scheme,
            user: reference.user,
            host,
            path: reference.path,
            raw_path: reference.raw_path,
            query: reference.query,
        })
    }

    /// `https`?
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// The scheme, lower-case.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Go's `URL.Host`: what the Host header carries.
    pub fn authority(&self) -> &str {
        &self.host
    }

    /// Go's `URL.Hostname()`: the host without port and brackets.
    pub fn hostname(&self) -> &str {
        split_host_port(&self.host).0
    }

    /// The port to connect to: the URL's, or the scheme's default. A port
    /// beyond 65535 fails here, as Go's dialer fails on it.
    pub fn port(&self) -> Result<u16, String> {
        match split_host_port(&self.host).1 {
            None | Some("") => Ok(if self.is_https() { 443 } else { 80 }),
            // Digits only: the parser took nothing else.
            Some(port) => port_number(port),
        }
    }

    /// Go's `URL.String()` (the fragment aside, which lookout drops), with a
    /// password replaced by `xxxxx` as prometheus/common's `URL.Redacted()`
    /// does: how blackbox_exporter's `/config` prints a `proxy_url`.
    pub(crate) fn redacted(&self) -> String {
        let mut out = format!("{}://", self.scheme);
        if let Some((user, password)) = &self.user {
            out.push_str(&escape(user, Part::UserPassword));
            if password.is_some() {
                out.push_str(":xxxxx");
            }
            out.push('@');
        }
        out.push_str(&escape(&self.host, Part::Host));
        let path = self.escaped_path();
        if !path.is_empty() && !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(&path);
        if let Some(query) = &self.query {
            out.push('?');
            out.push_str(query);
        }
        out
    }

    /// User name and password from the URL, for an Authorization header.
    pub fn user(&self) -> Option<(&str, &str)> {
        self.user
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_deref().unwrap_or("")))
    }

    /// Go's `URL.RequestURI()`: the escaped path (or `/`) and the query.
    pub fn request_uri(&self) -> String {
        let mut uri = self.escaped_path();
        if uri.is_empty() {
            uri.push('/');
        }
        if let Some(query) = &self.query {
            uri.push('?');
            // Go sends a query as written; a request line cannot carry raw
            // spaces or non-ASCII bytes, so those alone are percent-encoded.
            for &b in query.as_bytes() {
                if b.is_ascii_graphic() {
                    uri.push(char::from(b));
                } else {
                    let _ = write!(uri, "%{b:02X}");
                }
            }
        }
        uri
    }

    fn escaped_path(&self) -> String {
        escaped_path(&self.path, self.raw_path.as_deref())
    }

    /// The URL a `Location` header points to, as Go's `URL.Parse(location)`
    /// resolves it (RFC 3986 section 5.2). Returns the new URL and whether the
    /// location named a scheme (Go keeps a Host override only when it did not).
    pub fn join(&self, location: &str) -> Result<(Self, bool), String> {
        let reference = Reference::parse(location)?;
        let absolute = reference.scheme.is_some();
        let mut url = Reference {
            scheme: Some(
                reference
                    .scheme
                    .clone()
                    .unwrap_or_else(|| self.scheme.clone()),
            ),
            ..reference.clone()
        };
        if reference.scheme.is_some() || reference.host.is_some() || reference.user.is_some() {
            let path = resolve_path(&reference.escaped_path(), "");
            url.set_path(&path)?;
        } else {
            if reference.path.is_empty() && reference.query.is_none() {
                url.query.clone_from(&self.query);
            }
            url.host = Some(self.host.clone());
            url.user.clone_from(&self.user);
            let path = resolve_path(&self.escaped_path(), &reference.escaped_path());
            url.set_path(&path)?;
        }
        Ok((Self::absolute(url, location)?, absolute))
    }
}

/// A URI reference: Go's `url.URL` for what probes need (no opaque form).
#[derive(Debug, Clone, Default)]
struct Reference {
    scheme: Option<String>,
    user: Option<(String, Option<String>)>,
    host: Option<String>,
    path: String,
    raw_path: Option<String>,
    query: Option<String>,
}

impl Reference {
    /// Go's `url.Parse`; the fragment is checked and dropped (it is never sent).
    fn parse(raw: &str) -> Result<Self, String> {
        let fail = |why: &str| format!("parse {raw:?}: {why}");
        if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
            return Err(fail("invalid control character in URL"));
        }
        let (rest, fragment) = match raw.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (raw, None),
        };
        if let Some(fragment) = fragment {
            unescape(fragment, Part::Fragment).map_err(|e| fail(&e))?;
        }
        let mut url = Self::default();
        let (scheme, mut rest) = split_scheme(rest).map_err(&fail)?;
        url.scheme = scheme.map(str::to_ascii_lowercase);
        if rest.ends_with('?') && rest.matches('?').count() == 1 {
            rest = &rest[..rest.len() - 1];
            url.query = Some(String::new());
        } else if let Some((before, query)) = rest.split_once('?') {
            rest = before;
            url.query = Some(query.to_owned());
        }
        if !rest.starts_with('/') {
            if url.scheme.is_some() {
                return Err(fail("an http(s) URL needs // and a host after the scheme"));
            }
            if rest.split('/').next().is_some_and(|s| s.contains(':')) {
                return Err(fail("first path segment in URL cannot contain colon"));
            }
        }
        if (url.scheme.is_some() || !rest.starts_with("///")) && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            let (user, host) = parse_authority(authority).map_err(|e| fail(&e))?;
            url.user = user;
            url.host = Some(host);
            rest = path;
        }
        url.set_path(rest).map_err(|e| fail(&e))?;
        Ok(url)
    }

    /// Go's `setPath`: `path` is escaped.
    fn set_path(&mut self, escaped: &str) -> Result<(), String> {
        self.path = unescape(escaped, Part::Path)?;
        self.raw_path = (escape(&self.path, Part::Path) != escaped).then(|| escaped.to_owned());
        Ok(())
    }

    fn escaped_path(&self) -> String {
        escaped_path(&self.path, self.raw_path.as_deref())
    }
}

/// Go's `URL.EscapedPath()`: the path as written when that is a valid
/// escaping of it, else Go's own escaping.
fn escaped_path(path: &str, raw_path: Option<&str>) -> String {
    if let Some(raw) = raw_path {
        if valid_encoded(raw, Part::Path) && unescape(raw, Part::Path).is_ok_and(|p| p == path) {
            return raw.to_owned();
        }
    }
    escape(path, Part::Path)
}

/// A `/probe` target as blackbox_exporter takes it: a URL, or `host[:port]`
/// (and path) that means `http://`. Unlike blackbox_exporter, which prepends
/// `http://` to anything that does not start with it, a target that names
/// another scheme (`ftp://x`) is refused rather than probed as the host `ftp`.
pub fn parse_target(target: &str) -> Result<Url, String> {
    match split_scheme(target) {
        Ok((Some(_), rest)) if rest.starts_with("//") => Url::parse(target),
        _ => Url::parse(&format!("http://{target}")),
    }
}

/// Go's `getScheme`: `[A-Za-z][A-Za-z0-9+.-]*` before the first `:`.
fn split_scheme(raw: &str) -> Result<(Option<&str>, &str), &'static str> {
    for (i, b) in raw.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme"),
            b':' => return Ok((Some(&raw[..i]), &raw[i + 1..])),
            _ => return Ok((None, raw)),
        }
    }
    Ok((None, raw))
}

type UserInfo = Option<(String, Option<String>)>;

/// Go's `parseAuthority`: `[userinfo@]host[:port]`, split at the last `@`.
fn parse_authority(authority: &str) -> Result<(UserInfo, String), String> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let host = parse_host(host)?;
    let Some(userinfo) = userinfo else {
        return Ok((None, host));
    };
    let valid = userinfo
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c));
    if !valid {
        return Err("net/url: invalid userinfo".to_owned());
    }
    let user = match userinfo.split_once(':') {
        None => (unescape(userinfo, Part::UserPassword)?, None),
        Some((user, password)) => (
            unescape(user, Part::UserPassword)?,
            Some(unescape(password, Part::UserPassword)?),
        ),
    };
    Ok((Some(user), host))
}

/// Go's `parseHost`: `host[:port]` or `[ipv6%25zone]:port`, decoded.
fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let close = host.rfind(']').ok_or("missing ']' in host")?;
        let port = &host[close + 1..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
        if let Some(zone) = host[..close].find("%25") {
            return Ok(format!(
                "{}{}{}",
                unescape(&host[..zone], Part::Host)?,
                unescape(&host[zone..close], Part::Zone)?,
                unescape(&host[close..], Part::Host)?
            ));
        }
    } else if let Some(colon) = host.rfind(':') {
        let port = &host[colon..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    unescape(host, Part::Host)
}

/// Go's `shouldEscape` for the parts we use.
fn should_escape(c: u8, part: Part) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(part, Part::Host | Part::Zone) && b"!$&'()*+,;=:[]<>\"".contains(&c) {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match part {
            Part::Path => c == b'?',
            Part::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
            Part::Fragment => false,
            Part::Host | Part::Zone => true,
        },
        b'!' | b'(' | b')' | b'*' if part == Part::Fragment => false,
        _ => true,
    }
}

/// Go's `unescape`: `%XX` decoded; a bad escape, an escaped ASCII byte in a
/// host, or a character a host cannot hold is an error.
fn unescape(s: &str, part: Part) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let escape = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            let Some(hex) = escape else {
                let end = (i + 3).min(bytes.len());
                return Err(format!(
                    "invalid URL escape {:?}",
                    String::from_utf8_lossy(&bytes[i..end])
                ));
            };
            let value = (hex_value(hex[0]) << 4) | hex_value(hex[1]);
            let text = &s[i..i + 3];
            if part == Part::Host && hex_value(hex[0]) < 8 && text != "%25" {
                return Err(format!("invalid URL escape {text:?}"));
            }
            if part == Part::Zone
                && text != "%25"
                && value != b' '
                && should_escape(value, Part::Host)
            {
                return Err(format!("invalid URL escape {text:?}"));
            }
            out.push(value);
            i += 3;
        } else {
            if matches!(part, Part::Host | Part::Zone) && b < 0x80 && should_escape(b, part) {
                return Err(format!(
                    "invalid character {:?} in host name",
                    char::from(b)
                ));
            }
            out.push(b);
            i += 1;
        }
    }
    // Decoded bytes may not be UTF-8 (%ff): kept as Go keeps them, lossily
    // here, which only changes how such a path is printed back.
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Go's `escape`.
fn escape(s: &str, part: Part) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if should_escape(b, part) {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Go's `validEncoded`.
fn valid_encoded(s: &str, part: Part) -> bool {
    s.bytes()
        .all(|b| b"!$&'()*+,;=:@[]%".contains(&b) || !should_escape(b, part))
}

/// Go's `resolvePath`: merges `reference` into `base` and removes dot
/// segments (RFC 3986 5.2.3 and 5.2.4).
fn resolve_path(base: &str, reference: &str) -> String {
    let full = if reference.is_empty() {
        base.to_owned()
    } else if !reference.starts_with('/') {
        let dir = base.rfind('/').map_or("", |i| &base[..=i]);
        format!("{dir}{reference}")
    } else {
        reference.to_owned()
    };
    if full.is_empty() {
        return String::new();
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = full.split('/').collect();
    let last = segments.last().copied().unwrap_or_default();
    for segment in &segments {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    // Segments start with the empty one before a leading slash; one slash leads.
    let joined = out.join("/");
    let mut path = String::from("/");
    path.push_str(joined.strip_prefix('/').unwrap_or(&joined));
    // `a/.` and `a/..` end in a directory.
    if (last == "." || last == "..") && !path.ends_with('/') {
        path.push('/');
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn parts_come_apart_as_in_go() {
        let u = url("https://user:p%40ss@Example.org:8443/a%20b/c?x=1&y=%2F#frag");
        assert_eq!(u.scheme(), "https");
        assert_eq!(u.authority(), "Example.org:8443");
        assert_eq!(u.hostname(), "Example.org");
        assert_eq!(u.port(), Ok(8443));
        assert_eq!(u.user(), Some(("user", "p@ss")));
        assert_eq!(u.request_uri(), "/a%20b/c?x=1&y=%2F");
        let v6 = url("http://[::1]:8080");
        assert_eq!((v6.hostname(), v6.port()), ("::1", Ok(8080)));
        assert_eq!(v6.request_uri(), "/");
        assert_eq!(
            url("http://h:/").port(),
            Ok(80),
            "an empty port is the default"
        );
        assert_eq!(url("http://h:0080/").port(), Ok(80));
        assert_eq!(url("HTTP://h/").scheme(), "http");
        assert_eq!(url("http://h/?").request_uri(), "/?");
    }

    #[test]
    fn targets_without_a_scheme_are_http() {
        assert_eq!(parse_target("localhost:8080").unwrap().port(), Ok(8080));
        let next = parse_target("example.com/?next=http://x").unwrap();
        assert_eq!(
            (next.hostname(), next.request_uri().as_str()),
            ("example.com", "/?next=http://x")
        );
        assert_eq!(parse_target("[::1]:80").unwrap().hostname(), "::1");
        assert!(parse_target("ftp://example.com/")
            .unwrap_err()
            .contains("unsupported scheme"));
        assert!(parse_target("HTTPS://example.com/").unwrap().is_https());
    }

    #[test]
    fn ports_are_digits_and_in_range() {
        for bad in [
            "http://127.0.0.1:+18080/",
            "http://h:8o/",
            "http://[::1]x/",
            "http://h:-1/",
        ] {
            assert!(
                Url::parse(bad).unwrap_err().contains("invalid port"),
                "{bad}"
            );
        }
        for (raw, port) in [
            ("http://127.0.0.1:99999/", "99999"),
            ("http://127.0.0.1:65616/", "65616"),
        ] {
            assert_eq!(
                url(raw).port(),
                Err(format!("address {port}: invalid port"))
            );
        }
    }

    #[test]
    fn what_go_refuses_is_refused() {
        for (raw, why) in [
            ("http://exa mple.com/", "invalid character"),
            ("http://a/\r\nX: y", "control character"),
            ("http://%41.example/", "invalid URL escape"),
            ("http://a/%zz", "invalid URL escape"),
            ("http://a/#%zz", "invalid URL escape"),
            ("ftp://a/", "unsupported scheme"),
            ("http:///path", "no host"),
            ("http://:80/", "no host"),
            ("http://[]/", "no host"),
            ("http:opaque", "needs //"),
            ("http://b\u{fc}cher.example/", "punycode"),
            ("http://u\"ser@h/", "invalid userinfo"),
        ] {
            let err = Url::parse(raw).unwrap_err();
            assert!(err.contains(why), "{raw:?}: {err}");
        }
    }

    #[test]
    fn raw_utf8_and_spaces_in_paths_are_sent_escaped() {
        assert_eq!(
            url("http://h/\u{fc}ber uns").request_uri(),
            "/%C3%BCber%20uns"
        );
        assert_eq!(
            url("http://h/a%2Fb").request_uri(),
            "/a%2Fb",
            "RawPath kept"
        );
    }

    #[test]
    fn redirects_resolve_as_rfc_3986_and_go_say() {
        let base = url("http://example.org/a/b?q=1");
        for (location, expected, absolute) in [
            ("?page=2", "http://example.org/a/b?page=2", false),
            ("../c", "http://example.org/c", false),
            ("./c/../d", "http://example.org/a/d", false),
            ("#frag", "http://example.org/a/b?q=1", false),
            ("c", "http://example.org/a/c", false),
            ("/c", "http://example.org/c", false),
            ("//other.org/x", "http://other.org/x", false),
            ("https://secure.org", "https://secure.org/", true),
            ("/\u{fc}", "http://example.org/%C3%BC", false),
            ("..", "http://example.org/", false),
            ("/a/./b/.", "http://example.org/a/b/", false),
            ("/../../x", "http://example.org/x", false),
        ] {
            let (joined, abs) = base.join(location).unwrap();
            let shown = format!(
                "{}://{}{}",
                joined.scheme(),
                joined.authority(),
                joined.request_uri()
            );
            assert_eq!((shown.as_str(), abs), (expected, absolute), "{location:?}");
        }
        assert!(base.join("ftp://x/").is_err());
        assert!(base.join("http://a b/").is_err());
    }
}
