//! Who may talk to the listeners, the counterpart of blackbox_exporter's web
//! config: TLS with a certificate re-read when its files change, and HTTP
//! basic authentication with users from a file or a bearer token from a
//! file, both re-read when they change. Wrong or missing credentials get 401
//! and nothing else.
//!
//! A request must carry exactly one `Authorization` field: the scheme in any
//! case (RFC 7235), one or more spaces, and the credentials as token68. Basic
//! credentials are base64 of `user:password` in UTF-8, split at the first
//! colon (RFC 7617); a bearer token is compared as sent (RFC 6750).
//!
//! `/healthz`, `/readyz` and `/-/healthy` stay open: the kubelet probes the
//! first two without credentials, readiness asks the probe listener for the
//! third (see `readiness`), and none of them reveals anything.
//!
//! These are the shorthand flags; `--web.config.file` (`web_access`) takes
//! their place, with the same credential parsing and the same open paths.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};

use rustls::{
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
    ServerConfig,
};

use super::watched::{self, Watched};

/// A listener certificate re-read when its files change, so cert-manager
/// rotations apply without a restart.
#[derive(Debug)]
pub(crate) struct ListenerTls(Watched<CertifiedKey>);

impl ListenerTls {
    /// Loads the PEM certificate chain and key now (an error is a start-up error).
    pub(crate) fn new(cert_file: PathBuf, key_file: PathBuf) -> Result<Self, String> {
        Watched::new(vec![cert_file, key_file], |paths| {
            load_key_pair(&paths[0], &paths[1])
        })
        .map(Self)
    }

    /// The rustls configuration of a listener using this certificate.
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, String> {
        let mut config = ServerConfig::builder_with_provider(crate::prober::client_tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ListenerTls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

fn load_key_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let chain = crate::prober::client_tls::read_certs(cert_file).map_err(|e| e.to_string())?;
    let key = crate::prober::client_tls::read_key(key_file).map_err(|e| e.to_string())?;
    CertifiedKey::from_der(chain, key, &crate::prober::client_tls::provider())
        .map_err(|e| format!("{} and {}: {e}", cert_file.display(), key_file.display()))
}

/// Paths that never ask for credentials.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz", "/-/healthy"];

/// Whether `path` never asks for credentials.
pub(super) fn is_open(path: &str) -> bool {
    OPEN_PATHS.contains(&path)
}

/// Base64 as RFC 7617 uses it, with or without the trailing `=`.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a request must present.
#[derive(Debug)]
pub(crate) enum Auth {
    /// `user:password` lines (blank lines and `#` comments ignored).
    Basic(Watched<Vec<(String, String)>>),
    /// One token.
    Bearer(Watched<String>),
    /// `--web.config.file`: bcrypt-hashed users, response headers, rate limit.
    Web(Arc<super::web_access::WebAccess>),
}

impl Auth {
    /// Basic authentication with the users in `path`.
    pub(crate) fn basic(path: PathBuf) -> Result<Self, String> {
        Watched::new(vec![path], |paths| {
            parse_users(&watched::read(&paths[0])?, &paths[0].display().to_string())
        })
        .map(Self::Basic)
    }

    /// Bearer authentication with the token in `path`.
    pub(crate) fn bearer(path: PathBuf) -> Result<Self, String> {
        Watched::new(vec![path], |paths| {
            parse_token(&watched::read(&paths[0])?, &paths[0].display().to_string())
        })
        .map(Self::Bearer)
    }

    fn admits(&self, headers: &HeaderMap) -> bool {
        match self {
            Self::Bearer(token) => credentials(headers, "Bearer")
                .is_some_and(|given| same_secret(given.as_bytes(), token.get().as_bytes())),
            Self::Basic(users) => {
                let Some((user, password)) = basic_credentials(headers) else {
                    return false;
                };
                // Look at every user so the time taken does not tell which exist.
                users.get().iter().fold(false, |found, (u, p)| {
                    found
                        | (same_secret(u.as_bytes(), &user) & same_secret(p.as_bytes(), &password))
                })
            }
            // Checked by its own middleware (see `require`).
            Self::Web(_) => false,
        }
    }

    fn challenge(&self) -> &'static str {
        match self {
            Self::Basic(_) | Self::Web(_) => BASIC_CHALLENGE,
            Self::Bearer(_) => "Bearer",
        }
    }
}

/// The `WWW-Authenticate` of basic authentication.
pub(super) const BASIC_CHALLENGE: &str = "Basic realm=\"lookout\"";

/// The user and password of the request's one `Authorization: Basic` field:
/// base64 (padded or not) of `user:password`, split at the first colon
/// (RFC 7617).
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut decoded = BASE64.decode(credentials(headers, "Basic")?).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let password = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Some((decoded, password))
}

/// 401 with `challenge`, and nothing else.
pub(super) fn unauthorized(challenge: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "Unauthorized\n",
    )
        .into_response()
}

/// The token68 of the request's one `Authorization` field when its scheme
/// is `scheme`. Two fields are refused rather than one of them picked: a
/// proxy and the client may disagree on which counts.
fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let mut fields = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(field), None) = (fields.next(), fields.next()) else {
        return None;
    };
    // RFC 9110: whitespace around a field value is not part of it.
    let value = field.to_str().ok()?.trim_matches([' ', '\t']);
    let (given, rest) = value.split_once(' ')?;
    let token = rest.trim_start_matches(' ');
    (given.eq_ignore_ascii_case(scheme) && is_token68(token)).then_some(token)
}

/// RFC 7235's token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The users of a basic authentication file: `user:password` lines, each
/// taken as written but for its line ending (`\n` or `\r\n`), so spaces
/// belong to the password; blank lines and `#` comments are skipped.
fn parse_users(text: &str, origin: &str) -> Result<Vec<(String, String)>, String> {
    let mut users = Vec::new();
    // User -> the line that defines it.
    let mut lines_of = HashMap::new();
    let mut lines = text.split('\n').peekable();
    let mut number = 0;
    while let Some(mut line) = lines.next() {
        number += 1;
        if lines.peek().is_some() {
            line = line.strip_suffix('\r').unwrap_or(line);
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let at = |what: &str| format!("{origin}: line {number}: {what}");
        let Some((user, password)) = line.split_once(':') else {
            return Err(at("not user:password"));
        };
        if user.is_empty() {
            return Err(at("empty user name"));
        }
        if password.is_empty() {
            return Err(at(&format!("empty password for user {user:?}")));
        }
        if let Some(first) = lines_of.insert(user.to_owned(), number) {
            return Err(at(&format!(
                "user {user:?} is defined again (first on line {first})"
            )));
        }
        users.push((user.to_owned(), password.to_owned()));
    }
    if users.is_empty() {
        return Err(format!("{origin}: no users"));
    }
    Ok(users)
}

/// The token of a bearer token file: exactly one token68, optionally
/// followed by line endings.
fn parse_token(text: &str, origin: &str) -> Result<String, String> {
    let token = text.trim_end_matches(['\r', '\n']);
    if token.is_empty() {
        return Err(format!("{origin}: empty bearer token"));
    }
    if token.contains(['\r', '\n']) {
        return Err(format!(
            "{origin}: more than one line; the file must hold exactly one bearer token"
        ));
    }
    if token.contains(char::is_whitespace) {
        return Err(format!("{origin}: the bearer token contains whitespace"));
    }
    if !is_token68(token) {
        return Err(format!(
            "{origin}: not a bearer token: RFC 6750 allows letters, digits, - . _ ~ + / and trailing = (token68)"
        ));
    }
    Ok(token.to_owned())
}

/// Compares secrets in time that depends only on their digests' length.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let digest = |s: &[u8]| ring::digest::digest(&ring::digest::SHA256, s);
    let (a, b) = (digest(a), digest(b));
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Middleware: 401 unless the request carries valid credentials.
pub(crate) async fn require(
    State(auth): State<Arc<Auth>>,
    request: Request,
    next: Next,
) -> Response {
    if let Auth::Web(web) = &*auth {
        return web.serve(request, next).await;
    }
    if is_open(request.uri().path()) || auth.admits(request.headers()) {
        return next.run(request).await;
    }
    unauthorized(auth.challenge())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn basic(users: &str) -> Auth {
        let users = file(users);
        Auth::basic(users.path().to_owned()).unwrap()
    }

    fn bearer(token: &str) -> Auth {
        let token = file(token);
        Auth::bearer(token.path().to_owned()).unwrap()
    }

    /// Whether a request with these Authorization fields gets in.
    fn admits(auth: &Auth, fields: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(
                header::AUTHORIZATION,
                axum::http::HeaderValue::from_str(field).unwrap(),
            );
        }
        auth.admits(&headers)
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

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
            .contains("line 1"));
        assert!(parse_users("# nothing\n", "users")
            .unwrap_err()
            .contains("no users"));
    }

    #[test]
    fn a_password_is_taken_exactly_as_written_but_for_the_line_ending() {
        let users = parse_users("a:  spaced  \nb:tab\t\r\nc:crlf\r\nd:last", "users").unwrap();
        assert_eq!(
            users,
            [
                ("a".into(), "  spaced  ".into()),
                ("b".into(), "tab\t".into()),
                ("c".into(), "crlf".into()),
                ("d".into(), "last".into()),
            ]
        );
        let auth = basic("alice:s3cret  \n");
        assert!(admits(
            &auth,
            &[&format!("Basic {}", b64("alice:s3cret  "))]
        ));
        assert!(!admits(&auth, &[&format!("Basic {}", b64("alice:s3cret"))]));
    }

    #[test]
    fn a_duplicate_user_is_an_error_naming_both_lines() {
        let err = parse_users("alice:one\n# x\nbob:b\nalice:two\n", "/etc/users").unwrap_err();
        assert!(err.starts_with("/etc/users: "), "{err}");
        assert!(err.contains("line 4") && err.contains("line 1"), "{err}");
        assert!(err.contains("\"alice\""), "{err}");
        assert!(
            !err.contains("one") && !err.contains("two"),
            "no passwords: {err}"
        );
    }

    #[test]
    fn empty_users_and_passwords_are_errors_naming_the_line() {
        for (text, line) in [(":pw\n", "line 1"), ("a:b\nalice:\n", "line 2")] {
            let err = parse_users(text, "users").unwrap_err();
            assert!(err.contains(line), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_followed_by_spaces() {
        let auth = basic("alice:secret\n");
        let token = b64("alice:secret");
        for field in [
            format!("Basic {token}"),
            format!("basic {token}"),
            format!("BASIC {token}"),
            format!("bAsIc {token}"),
            format!("Basic   {token}"),
        ] {
            assert!(admits(&auth, &[&field]), "{field}");
        }
        for field in [
            format!("Basic\t{token}"),
            format!("Basic{token}"),
            format!("Bearer {token}"),
            format!("Basics {token}"),
            "Basic".to_owned(),
            "Basic ".to_owned(),
            format!("Basic {token} extra"),
            format!("Basic {token},realm=x"),
        ] {
            assert!(!admits(&auth, &[&field]), "{field}");
        }
        let auth = bearer("t0ken\n");
        for field in ["Bearer t0ken", "bearer t0ken", "BEARER  t0ken"] {
            assert!(admits(&auth, &[field]), "{field}");
        }
        for field in [
            "Bearer",
            "Bearer ",
            "Bearer\tt0ken",
            "Bearer t0 ken",
            "Basic t0ken",
            "t0ken",
        ] {
            assert!(!admits(&auth, &[field]), "{field}");
        }
    }

    #[test]
    fn basic_credentials_decode_as_rfc_7617_says() {
        let auth = basic("alice:p:w\nj\u{fc}rgen:gr\u{fc}\u{df}e\nbob:pw1\n");
        // A password may hold colons; the user name ends at the first.
        assert!(admits(&auth, &[&format!("Basic {}", b64("alice:p:w"))]));
        // UTF-8 user names and passwords.
        assert!(admits(
            &auth,
            &[&format!("Basic {}", b64("j\u{fc}rgen:gr\u{fc}\u{df}e"))]
        ));
        // Padding may be left out ("bob:pw1" needs two `=`).
        let padded = b64("bob:pw1");
        assert!(padded.ends_with("=="));
        assert!(admits(&auth, &[&format!("Basic {padded}")]));
        assert!(admits(
            &auth,
            &[&format!("Basic {}", padded.trim_end_matches('='))]
        ));
        for credentials in [
            "bob", "bob:", ":pw1", "bob:pw1 ", " bob:pw1", "bob:PW1", "alice:p",
        ] {
            assert!(
                !admits(&auth, &[&format!("Basic {}", b64(credentials))]),
                "{credentials}"
            );
        }
        for field in [
            "Basic !!!!",
            "Basic Ym9iOnB3MQ=x",
            "Basic =Ym9iOnB3MQ",
            "Basic Ym9iOnB3MQ===",
        ] {
            assert!(!admits(&auth, &[field]), "{field}");
        }
    }

    #[test]
    fn two_authorization_fields_are_refused() {
        let auth = basic("alice:secret\n");
        let good = format!("Basic {}", b64("alice:secret"));
        let bad = format!("Basic {}", b64("alice:nope"));
        assert!(!admits(&auth, &[&good, &good]));
        assert!(!admits(&auth, &[&bad, &good]));
        assert!(!admits(&auth, &[&good, &bad]));
        let auth = bearer("t0ken");
        assert!(!admits(&auth, &["Bearer t0ken", "Bearer t0ken"]));
    }

    #[test]
    fn trailing_whitespace_of_the_field_is_not_part_of_the_token() {
        // RFC 9110: a field value has no leading or trailing whitespace.
        let auth = bearer("t0ken\n");
        assert!(admits(&auth, &["Bearer t0ken "]));
        assert!(admits(&auth, &["Bearer t0ken\t"]));
        assert!(!admits(&auth, &["Bearer t0ken x"]));
    }

    #[test]
    fn huge_fields_are_refused_without_trouble() {
        let auth = basic("alice:secret\n");
        let huge = format!("Basic {}", "A".repeat(1 << 20));
        assert!(!admits(&auth, &[&huge]));
        let huge = format!("Basic {}", b64(&format!("alice:{}", "x".repeat(1 << 20))));
        assert!(!admits(&auth, &[&huge]));
        let auth = bearer("t0ken");
        assert!(!admits(
            &auth,
            &[&format!("Bearer {}", "t".repeat(1 << 20))]
        ));
    }

    #[test]
    fn a_bearer_file_holds_exactly_one_token68() {
        for text in [
            "t0ken",
            "t0ken\n",
            "t0ken\r\n",
            "t0ken\n\n",
            "a-b.c_d~e+f/g==\n",
        ] {
            let token = file(text);
            assert!(Auth::bearer(token.path().to_owned()).is_ok(), "{text:?}");
        }
        for (text, expected) in [
            ("one\ntwo\n", "one line"),
            ("one\r\ntwo", "one line"),
            ("\none\n", "one line"),
            ("t0 ken\n", "whitespace"),
            (" t0ken\n", "whitespace"),
            ("t0ken \n", "whitespace"),
            ("t0ken\t\n", "whitespace"),
            ("t=0ken\n", "token68"),
            ("t\u{f6}ken\n", "token68"),
            ("\n", "empty"),
            ("", "empty"),
        ] {
            let token = file(text);
            let err = Auth::bearer(token.path().to_owned()).unwrap_err();
            assert!(
                err.contains(&token.path().display().to_string()),
                "{text:?}: {err}"
            );
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn a_changed_file_that_does_not_load_keeps_the_previous_credentials() {
        let users = file("alice:one\n");
        let auth = Auth::basic(users.path().to_owned()).unwrap();
        let one = format!("Basic {}", b64("alice:one"));
        let two = format!("Basic {}", b64("alice:two"));
        assert!(admits(&auth, &[&one]));
        // A duplicate user: the file does not load, the old users stay.
        std::fs::write(users.path(), "alice:two\nalice:three\n").unwrap();
        std::thread::sleep(watched::CHECK_INTERVAL + std::time::Duration::from_millis(50));
        assert!(admits(&auth, &[&one]));
        assert!(!admits(&auth, &[&two]));
        std::fs::write(users.path(), "alice:two\n").unwrap();
        std::thread::sleep(watched::CHECK_INTERVAL + std::time::Duration::from_millis(50));
        assert!(admits(&auth, &[&two]));
        assert!(!admits(&auth, &[&one]));

        let token = file("old\n");
        let auth = Auth::bearer(token.path().to_owned()).unwrap();
        std::fs::write(token.path(), "new\nsecond\n").unwrap();
        std::thread::sleep(watched::CHECK_INTERVAL + std::time::Duration::from_millis(50));
        assert!(admits(&auth, &["Bearer old"]));
        assert!(!admits(&auth, &["Bearer new"]));
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret(b"t0ken", b"t0ken"));
        assert!(!same_secret(b"t0ken", b"t0kem"));
        assert!(!same_secret(b"t0ken", b"t0ken "));
    }
}
