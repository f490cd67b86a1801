//! The invariants the fuzz targets check. The regression test
//! (`tests/fuzz_regressions.rs`) includes this very file with `#[path]`, so a
//! saved input replays through exactly the code that the fuzzer ran.
//!
//! Each function takes one raw fuzz input and panics when an invariant does
//! not hold; a panic inside lookout is a failure as well.

use std::{path::Path, sync::OnceLock, time::Duration};

use lookout::{
    config::{Config, Module, Pattern, PromDuration, TlsConfig, DEFAULT_MODULES},
    prober::{self, policy::Rule, url, Modules},
    server::probe_api::ProbeRequest,
};

/// What a fuzzed modules file is called in error messages.
const ORIGIN: &str = "fuzz.yml";

/// The directory a fuzzed modules file is read from (relative paths in it
/// resolve against this).
const BASE: &str = "/etc/lookout";

/// Scrape timeouts every parsed module's deadline is computed for.
const SCRAPE_TIMEOUTS: [Option<f64>; 8] = [
    None,
    Some(0.0),
    Some(0.25),
    Some(10.0),
    Some(-1.0),
    Some(1e30),
    Some(f64::INFINITY),
    Some(f64::NAN),
];

/// The deadline when neither the module nor Prometheus sets one: 120 s
/// minus the 0.5 s offset, as blackbox_exporter.
const DEFAULT_DEADLINE: Duration = Duration::from_millis(119_500);

/// Modules `/probe` is fuzzed against: the embedded defaults, plus one module
/// with its own timeout and a Host header, so that the hostname conflict
/// check and the module-timeout branch are reachable.
const EXTRA_MODULES: &str = "  http_host:
    prober: http
    timeout: 5s
    http:
      headers:
        Host: example.org
";

/// `Config::parse` (the modules file, blackbox.yml format; the input is read
/// as UTF-8, invalid bytes as U+FFFD).
///
/// - never panics;
/// - an error is one line (no `\n` or `\r`) that starts with the file's name;
/// - on success every file path in it is absolute (resolved against the
///   file's directory), every module gives a deadline for any scrape
///   timeout, and, when it names no TLS files (so nothing is read from
///   disk), building the modules (`Modules::build`) does not panic.
pub(crate) fn modules_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let config = match Config::parse(&text, ORIGIN, Path::new(BASE)) {
        Ok(config) => config,
        Err(error) => {
            let message = error.to_string();
            assert!(
                !message.contains(['\n', '\r']),
                "a config error spans lines: {message:?}"
            );
            assert!(
                message.starts_with(&format!("{ORIGIN}: ")),
                "a config error does not name the file: {message:?}"
            );
            return;
        }
    };
    for (name, module) in &config.modules {
        for path in module_paths(module) {
            assert!(
                path.is_absolute(),
                "modules.{name}: path {path:?} was not resolved against {BASE}"
            );
        }
        for scrape in SCRAPE_TIMEOUTS {
            let deadline = prober::timeout(scrape, module);
            check_deadline(deadline, module);
        }
    }
    let reads_files = config.modules.values().any(|m| {
        tls_files(&m.http.tls_config)
            .chain(tls_files(&m.tcp.tls_config))
            .next()
            .is_some()
    });
    if !reads_files {
        // An error (say, a TLS version range rustls cannot offer) is fine.
        let _ = Modules::build(&config);
    }
}

fn tls_files(tls: &TlsConfig) -> impl Iterator<Item = &Path> {
    [&tls.ca_file, &tls.cert_file, &tls.key_file]
        .into_iter()
        .filter_map(|p| p.as_deref())
}

fn module_paths(module: &Module) -> Vec<&Path> {
    let http = &module.http;
    let mut paths: Vec<&Path> = tls_files(&http.tls_config)
        .chain(tls_files(&module.tcp.tls_config))
        .collect();
    paths.extend(http.bearer_token_file.as_deref());
    if let Some(auth) = &http.basic_auth {
        paths.extend(auth.password_file.as_deref());
    }
    paths
}

/// A probe never runs longer than its module's timeout, when it has one.
fn check_deadline(deadline: Duration, module: &Module) {
    let own = module.timeout.0;
    if !own.is_zero() {
        assert!(
            deadline <= own,
            "deadline {deadline:?} exceeds the module's timeout {own:?}"
        );
    }
}

/// The prober `/probe` is fuzzed against, built once.
fn probe_prober() -> &'static Modules {
    static PROBER: OnceLock<Modules> = OnceLock::new();
    PROBER.get_or_init(|| {
        let text = format!("{DEFAULT_MODULES}{EXTRA_MODULES}");
        let config =
            Config::parse(&text, "fuzz modules", Path::new(".")).expect("the fuzz modules parse");
        Modules::build(&config).expect("the fuzz modules build")
    })
}

/// Splits a `probe_query` input: up to the first newline is the
/// `X-Prometheus-Scrape-Timeout-Seconds` header, the rest the raw query
/// string; an input without a newline is a query sent without the header.
/// (A real header value cannot hold a newline, so nothing is lost.)
pub(crate) fn split_probe_input(data: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    }
}

/// `ProbeRequest::parse` (`/probe`'s query and scrape-timeout header; the
/// input as [`split_probe_input`] splits it, the query read as UTF-8).
///
/// - never panics;
/// - a request names a module the prober has and a non-empty target, and
///   carries no scrape timeout when no header was sent; its deadline
///   (`prober::timeout`) is computed without panicking, never exceeds the
///   module's timeout, and is 119.5 s without a header on a module without
///   a timeout;
/// - a refusal is a 400 or a 500 whose body ends with a newline; an
///   unknown module is a 400.
pub(crate) fn probe_query(data: &[u8]) {
    let prober = probe_prober();
    let (header, query) = split_probe_input(data);
    let query = String::from_utf8_lossy(query);
    match ProbeRequest::parse(&query, header, prober) {
        Ok(request) => {
            assert!(!request.target.is_empty(), "empty target accepted");
            assert!(
                prober.module(&request.module.name).is_some(),
                "module {:?} is not the prober's",
                request.module.name
            );
            if header.is_none() {
                assert_eq!(request.scrape_timeout, None, "a timeout without a header");
            }
            let module = &request.module.config;
            let deadline = prober::timeout(request.scrape_timeout, module);
            check_deadline(deadline, module);
            if header.is_none() && module.timeout.0.is_zero() {
                assert_eq!(deadline, DEFAULT_DEADLINE);
            }
        }
        Err(refusal) => {
            let status = refusal.status.as_u16();
            assert!(
                status == 400 || status == 500,
                "refused with {status}: {:?}",
                refusal.body
            );
            assert!(
                refusal.body.ends_with('\n'),
                "refusal body without a final newline: {:?}",
                refusal.body
            );
            if refusal.unknown_module {
                assert_eq!(status, 400, "unknown module: {:?}", refusal.body);
            }
        }
    }
}

/// `PromDuration` from text (a module's `timeout`, durations on the command
/// line): never panics; an error is one line; a parsed duration prints in a
/// form that parses back to the same duration.
pub(crate) fn duration(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match text.parse::<PromDuration>() {
        Ok(parsed) => {
            let shown = parsed.to_string();
            let again = shown
                .parse::<PromDuration>()
                .unwrap_or_else(|e| panic!("{text:?} printed as {shown:?}, which fails: {e}"));
            assert_eq!(again, parsed, "{text:?} printed as {shown:?}");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains('\n'), "error spans lines: {message:?}");
        }
    }
}

/// `policy::Rule` from text (an allow or deny list entry): never panics; an
/// error is one line; a parsed rule prints in a form that parses back to the
/// same rule.
pub(crate) fn policy_rule(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match text.parse::<Rule>() {
        Ok(rule) => {
            let shown = rule.to_string();
            let again = shown
                .parse::<Rule>()
                .unwrap_or_else(|e| panic!("{text:?} printed as {shown:?}, which fails: {e}"));
            assert_eq!(again, rule, "{text:?} printed as {shown:?}");
        }
        Err(message) => {
            assert!(!message.contains('\n'), "error spans lines: {message:?}");
        }
    }
}

/// A `/probe` target and a redirect's `Location` (`target\nlocation`), read
/// as Go's net/url reads them (`prober::url`).
///
/// - never panics;
/// - a URL it accepts has a non-empty ASCII host name, a port that is a
///   number or a one-line error, and a request target that could go on an
///   HTTP/1.1 request line (starts with `/`, visible ASCII only);
/// - what it accepts, written back out (`scheme://authority` and the request
///   target), parses again to the same URL;
/// - a Location resolved against an accepted target satisfies the same.
pub(crate) fn target_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (target, location) = match text.split_once('\n') {
        Some((target, location)) => (target, Some(location)),
        None => (text.as_ref(), None),
    };
    let Ok(parsed) = url::parse_target(target) else {
        return;
    };
    check_url(&parsed);
    if let Some(location) = location {
        match parsed.join(location) {
            Ok((joined, _)) => check_url(&joined),
            Err(error) => assert!(!error.contains(['\n', '\r']), "one line: {error:?}"),
        }
    }
}

fn check_url(parsed: &url::Url) {
    assert!(
        !parsed.hostname().is_empty() && parsed.hostname().is_ascii(),
        "{parsed:?}"
    );
    if let Err(error) = parsed.port() {
        assert!(!error.contains('\n'), "{error:?}");
    }
    let uri = parsed.request_uri();
    assert!(uri.starts_with('/'), "{uri:?}");
    assert!(uri.bytes().all(|b| b.is_ascii_graphic()), "{uri:?}");
    // The authority is kept decoded (as Go's URL.Host); a zone's `%` is
    // written back escaped, as Go's String() does.
    let written = format!(
        "{}://{}{uri}",
        parsed.scheme(),
        parsed.authority().replace('%', "%25")
    );
    let again = url::Url::parse(&written)
        .unwrap_or_else(|e| panic!("{written:?} does not parse again: {e}"));
    assert_eq!(
        (
            again.hostname(),
            again.port(),
            again.request_uri(),
            again.authority()
        ),
        (
            parsed.hostname(),
            parsed.port(),
            uri.clone(),
            parsed.authority()
        ),
        "{written:?}"
    );
}

/// A regexp of a modules file (`Pattern`, Go's RE2 semantics), and a haystack
/// (`regexp\nhaystack`).
///
/// - never panics, compiling or matching;
/// - an error is one line that says the regexp is invalid;
/// - a pattern made only of letters and digits finds itself.
pub(crate) fn regexp(data: &[u8]) {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (pattern, haystack) = data.split_at(split);
    let pattern = String::from_utf8_lossy(pattern);
    match pattern.parse::<Pattern>() {
        Ok(compiled) => {
            let _ = compiled.is_match(haystack);
            if !pattern.is_empty() && pattern.bytes().all(|b| b.is_ascii_alphanumeric()) {
                assert!(compiled.is_match(pattern.as_bytes()), "{pattern:?}");
            }
        }
        Err(error) => {
            assert!(error.starts_with("invalid regexp"), "{error:?}");
            assert!(!error.contains(['\n', '\r']), "one line: {error:?}");
        }
    }
}

/// A DNS response, read as blackbox_exporter's miekg/dns reads it and
/// printed as it prints records (`prober::dns::read_response`).
///
/// - never panics, whatever the bytes (pointers, counts, lengths);
/// - an error is one line;
/// - the records printed are as many as the checking pass counted (the
///   counts the prober reports), never more than the header claims;
/// - every record prints as one line of printable ASCII fields separated
///   by tabs, its header first, except the three miekg prints as comments
///   or raw: OPT (a dig-style pseudo-section), TSIG (its pseudo-section
///   prefix, then one line) and NULL (its bytes as they are);
/// - reading is deterministic.
pub(crate) fn dns_message(data: &[u8]) {
    let Ok(response) = prober::dns::read_response(data).map_err(|error| {
        assert!(!error.contains(['\n', '\r']), "one line: {error:?}");
    }) else {
        return;
    };
    let claimed = [6, 8, 10].map(|at| usize::from(u16::from_be_bytes([data[at], data[at + 1]])));
    for ((texts, count), claimed) in response.sections.iter().zip(response.counts).zip(claimed) {
        assert_eq!(texts.len(), count, "printed and counted records differ");
        assert!(count <= claimed, "more records than the header claims");
        for text in texts {
            check_record_text(text);
        }
    }
    assert_eq!(prober::dns::read_response(data), Ok(response));
}

fn check_record_text(text: &[u8]) {
    if text.starts_with(b"\n;; OPT PSEUDOSECTION:\n") {
        return;
    }
    let line = text
        .strip_prefix(b"\n;; TSIG PSEUDOSECTION:\n; ")
        .or_else(|| text.strip_prefix(b";"))
        .unwrap_or(text);
    let fields: Vec<&[u8]> = line.splitn(5, |b| *b == b'\t').collect();
    assert_eq!(fields.len(), 5, "owner, TTL, class, type, data: {text:?}");
    if fields[3] == b"NULL" {
        return;
    }
    assert!(
        line.iter()
            .all(|b| *b == b'\t' || (0x20..=0x7e).contains(b)),
        "one line of printable ASCII: {:?}",
        String::from_utf8_lossy(text)
    );
}
