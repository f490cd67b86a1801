//! The http prober's credentials against real local servers: `oauth2`
//! against a token endpoint that checks the client credentials grant and
//! counts its fetches (one token for a module's probes until it expires or
//! the modules are reloaded), x/oauth2's fallback from basic to form
//! credentials, and the attacks on the token endpoint (denied addresses,
//! redirects, a huge or missing answer, its proxy); then `authorization`,
//! `basic_auth` files, `http_headers` and `body_file` as the target sees
//! them.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use base64::Engine as _;

use crate::{
    http_peers::{response, value, Modules, Recorder, Script, ScriptedProxy, Seen},
    probe::probe,
    support::{spawn_app, App},
};

fn start(modules: &Modules, args: &[&str]) -> App {
    let path = modules.path();
    let mut argv = vec!["--config.file", path.to_str().unwrap()];
    argv.extend_from_slice(args);
    let app = spawn_app(&argv, &[("RUST_LOG", "info,lookout=debug")]);
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

fn form(seen: &Seen) -> BTreeMap<String, String> {
    form_urlencoded::parse(&seen.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A token endpoint: `tok-N` for the Nth token it issues, valid for
/// `expires_in` seconds; with `form_only` it refuses credentials in the
/// Authorization header, as some servers do.
fn token_server(ip: &str, expires_in: i64, form_only: bool) -> (Recorder, Arc<AtomicUsize>) {
    let issued = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&issued);
    let server = Recorder::start(ip, None, move |seen| {
        let fields = form(seen);
        let in_header = seen.header("authorization").is_some();
        let right = if in_header {
            !form_only
                && seen.header("authorization") == Some(basic("my+client", "s3cr%26t").as_str())
        } else {
            fields.get("client_id").map(String::as_str) == Some("my client")
                && fields.get("client_secret").map(String::as_str) == Some("s3cr&t")
        };
        if seen.line != "POST /token HTTP/1.1"
            || seen.header("content-type") != Some("application/x-www-form-urlencoded")
            || fields.get("grant_type").map(String::as_str) != Some("client_credentials")
            || !right
        {
            return response(
                "401 Unauthorized",
                "Content-Type: application/json\r\n",
                r#"{"error":"invalid_client"}"#,
            );
        }
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        response(
            "200 OK",
            "Content-Type: application/json\r\n",
            &format!(
                r#"{{"access_token":"tok-{n}","token_type":"bearer","expires_in":{expires_in},"scope":"read write"}}"#
            ),
        )
    });
    (server, issued)
}

/// A target that wants `Authorization: Bearer tok-...`.
fn bearer_target() -> Recorder {
    Recorder::start("127.0.0.1", None, |seen| {
        match seen.header("authorization") {
            Some(token) if token.starts_with("Bearer tok-") => response("200 OK", "", "in\n"),
            _ => response("401 Unauthorized", "", "out\n"),
        }
    })
}

fn oauth2_module(name: &str, token_url: &str, extra: &str) -> String {
    format!(
        "  {name}:
    prober: http
    http:
      oauth2:
        client_id: my client
        client_secret: s3cr&t
        scopes: [read, write]
        token_url: {token_url}
        endpoint_params: {{audience: probes}}
{extra}"
    )
}

#[test]
fn a_client_credentials_token_is_fetched_once_for_the_probes_of_a_module_and_sent() {
    let (tokens, issued) = token_server("127.0.0.1", 3600, false);
    let target = bearer_target();
    let modules = Modules::new(&format!(
        "modules:\n{}",
        oauth2_module("m", &format!("http://{}/token", tokens.addr), "")
    ));
    let app = start(&modules, &[]);
    for _ in 0..3 {
        let metrics = probe(&app, "m", &format!("http://{}/", target.addr));
        assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    }
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "one token for three probes"
    );
    let asked = &tokens.requests()[0];
    // x/oauth2: the client's id and secret form-escaped in basic auth, and
    // the form's keys sorted.
    assert_eq!(
        asked.header("authorization"),
        Some(basic("my+client", "s3cr%26t").as_str())
    );
    assert_eq!(
        String::from_utf8_lossy(&asked.body),
        "audience=probes&grant_type=client_credentials&scope=read+write"
    );
    assert!(asked.header("user-agent").unwrap().starts_with("lookout/"));
    let seen: Vec<_> = target
        .requests()
        .iter()
        .map(|s| s.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(seen, ["Bearer tok-1"; 3]);

    // A reload prepares the modules anew: their tokens go with them.
    assert_eq!(app.admin("POST", "/-/reload").status, 200);
    let metrics = probe(&app, "m", &format!("http://{}/", target.addr));
    assert_eq!(value(&metrics, "probe_success"), Some(1.0));
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    assert_eq!(
        target.requests()[3].header("authorization"),
        Some("Bearer tok-2")
    );
}

#[test]
fn a_token_is_fetched_again_once_it_expires() {
    // x/oauth2 renews a token ten seconds before it expires: one that lasts
    // 11 s is good for one second, one that lasts 1 s for no other request.
    let (lasting, lasting_issued) = token_server("127.0.0.1", 11, false);
    let (short, short_issued) = token_server("127.0.0.1", 1, false);
    let target = bearer_target();
    let modules = Modules::new(&format!(
        "modules:\n{}{}",
        oauth2_module("eleven", &format!("http://{}/token", lasting.addr), ""),
        oauth2_module("one", &format!("http://{}/token", short.addr), "")
    ));
    let app = start(&modules, &[]);
    let url = format!("http://{}/", target.addr);
    let fetched = Instant::now();
    assert_eq!(
        value(&probe(&app, "eleven", &url), "probe_success"),
        Some(1.0)
    );
    // Past the token's renewal time, whatever the machine's speed.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(fetched.elapsed()));
    assert_eq!(
        value(&probe(&app, "eleven", &url), "probe_success"),
        Some(1.0)
    );
    assert_eq!(lasting_issued.load(Ordering::SeqCst), 2);
    let last = target
        .requests()
        .last()
        .unwrap()
        .header("authorization")
        .unwrap()
        .to_owned();
    assert_eq!(last, "Bearer tok-2");

    for _ in 0..2 {
        assert_eq!(value(&probe(&app, "one", &url), "probe_success"), Some(1.0));
    }
    assert_eq!(short_issued.load(Ordering::SeqCst), 2);
}

#[test]
fn a_server_that_refuses_basic_gets_the_credentials_in_the_form_and_that_is_remembered() {
    let (tokens, issued) = token_server("127.0.0.1", 1, true);
    let target = bearer_target();
    let modules = Modules::new(&format!(
        "modules:\n{}",
        oauth2_module("m", &format!("http://{}/token", tokens.addr), "")
    ));
    let app = start(&modules, &[]);
    for _ in 0..2 {
        let metrics = probe(&app, "m", &format!("http://{}/", target.addr));
        assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    }
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    let asked = tokens.requests();
    assert_eq!(
        asked.len(),
        3,
        "basic, then the form; then the form at once"
    );
    assert!(asked[0].header("authorization").is_some());
    for request in &asked[1..] {
        assert_eq!(request.header("authorization"), None);
        assert_eq!(form(request)["client_id"], "my client");
        assert_eq!(form(request)["client_secret"], "s3cr&t");
    }
}

#[test]
fn a_changed_client_secret_file_brings_a_new_token() {
    let issued = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&issued);
    let tokens = Recorder::start("127.0.0.1", None, move |seen| {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        let secret = seen.header("authorization").unwrap_or_default().to_owned();
        response(
            "200 OK",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            &format!("access_token=tok-{n}-{}&expires_in=3600", secret.len()),
        )
    });
    let target = bearer_target();
    let modules = Modules::new(&format!(
        "modules:
  m:
    prober: http
    http:
      oauth2: {{client_id: c, client_secret_file: secret, token_url: 'http://{}/token'}}
",
        tokens.addr
    ));
    modules.write("secret", "first\n");
    let app = start(&modules, &[]);
    let url = format!("http://{}/", target.addr);
    assert_eq!(value(&probe(&app, "m", &url), "probe_success"), Some(1.0));
    assert_eq!(value(&probe(&app, "m", &url), "probe_success"), Some(1.0));
    modules.write("secret", "the second\n");
    assert_eq!(value(&probe(&app, "m", &url), "probe_success"), Some(1.0));
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    let asked = tokens.requests();
    assert_eq!(
        asked[0].header("authorization"),
        Some(basic("c", "first").as_str())
    );
    assert_eq!(
        asked[1].header("authorization"),
        Some(basic("c", "the+second").as_str())
    );
}

#[test]
fn the_token_endpoint_is_held_to_the_target_policy_and_its_answers_are_bounded() {
    let (denied_tokens, _) = token_server("127.0.0.2", 3600, false);
    let denied_url = format!("http://{}/token", denied_tokens.addr);
    // Redirects: to the denied server, and (allowed) to another name for
    // this host, which must not get the client's credentials.
    let (allowed, _) = token_server("127.0.0.1", 3600, true);
    let other_host = format!("http://localhost:{}/token", allowed.addr.port());
    let redirector = Recorder::start("127.0.0.1", None, move |seen| {
        let to = if seen.line.contains("/to-denied") {
            denied_url.clone()
        } else {
            other_host.clone()
        };
        response("307 Temporary Redirect", &format!("Location: {to}\r\n"), "")
    });
    let huge = Recorder::start("127.0.0.1", None, |_| {
        response(
            "200 OK",
            "Content-Type: application/json\r\n",
            &format!(r#"{{"access_token":"{}"}}"#, "a".repeat(1 << 20)),
        )
    });
    let silent = ScriptedProxy::start("127.0.0.1", Script::Silent);
    let (proxied_tokens, _) = token_server("127.0.0.1", 3600, false);
    let token_proxy = ScriptedProxy::start("127.0.0.1", Script::Forward(proxied_tokens.addr));
    let denied_proxy = ScriptedProxy::start("127.0.0.2", Script::Forward(proxied_tokens.addr));
    let target = bearer_target();
    let modules = Modules::new(&format!(
        "modules:\n{}{}{}{}{}{}{}",
        oauth2_module(
            "denied",
            &format!("http://{}/token", denied_tokens.addr),
            ""
        ),
        oauth2_module(
            "redirect_denied",
            &format!("http://{}/to-denied", redirector.addr),
            ""
        ),
        oauth2_module(
            "redirect_elsewhere",
            &format!("http://{}/token", redirector.addr),
            ""
        ),
        oauth2_module("huge", &format!("http://{}/token", huge.addr), ""),
        oauth2_module(
            "silent",
            &format!("http://{}/token", silent.addr),
            "    timeout: 1s\n"
        ),
        oauth2_module(
            "proxied",
            &format!("http://{}/token", proxied_tokens.addr),
            &format!("        proxy_url: http://{}\n", token_proxy.addr)
        ),
        oauth2_module(
            "denied_proxy",
            &format!("http://{}/token", proxied_tokens.addr),
            &format!("        proxy_url: http://{}\n", denied_proxy.addr)
        ),
    ));
    let app = start(&modules, &["--deny-target", "127.0.0.2"]);
    let url = format!("http://{}/", target.addr);
    for module in [
        "denied",
        "redirect_denied",
        "huge",
        "silent",
        "denied_proxy",
    ] {
        let metrics = probe(&app, module, &url);
        assert_eq!(
            value(&metrics, "probe_success"),
            Some(0.0),
            "{module}: {metrics:?}"
        );
        // The phases are registered, as blackbox_exporter's are when the
        // request fails before connecting.
        assert!(metrics
            .iter()
            .any(|(s, _)| s == "probe_http_duration_seconds{phase=\"connect\"}"));
    }
    assert_eq!(denied_tokens.connection_count(), 0);
    assert_eq!(denied_proxy.connection_count(), 0);
    assert_eq!(target.connection_count(), 0, "no token, no request");
    app.log_line("larger than 65536 bytes");
    app.log_line("probe refused by the target policy");

    // Go drops the Authorization header on a redirect to another host; the
    // client then authenticates in the form.
    let metrics = probe(&app, "redirect_elsewhere", &url);
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    let redirected = allowed.requests();
    assert!(redirected
        .iter()
        .all(|r| r.header("authorization").is_none()));
    assert_eq!(
        redirected.last().unwrap().header("host"),
        Some(format!("localhost:{}", allowed.addr.port()).as_str())
    );

    // No token is fetched for a target the policy refuses.
    let metrics = probe(
        &app,
        "proxied",
        &format!("http://127.0.0.2:{}/", target.addr.port()),
    );
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert_eq!(proxied_tokens.connection_count(), 0);
    let metrics = probe(&app, "proxied", &url);
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    assert_eq!(
        token_proxy.requests()[0].line,
        format!("POST http://{}/token HTTP/1.1", proxied_tokens.addr)
    );
}

#[test]
fn authorization_basic_auth_files_http_headers_and_body_file_reach_the_target_as_configured() {
    let target = Recorder::start("127.0.0.1", None, |_| response("200 OK", "", "ok\n"));
    let other = Recorder::start("127.0.0.1", None, |_| response("200 OK", "", "ok\n"));
    let elsewhere = format!("http://localhost:{}/landed", other.addr.port());
    let redirector = Recorder::start("127.0.0.1", None, move |_| {
        response("302 Found", &format!("Location: {elsewhere}\r\n"), "")
    });
    // x/oauth2 reads a text/plain answer as a query string.
    let tokens = Recorder::start("127.0.0.1", None, |_| {
        response(
            "200 OK",
            "Content-Type: text/plain\r\n",
            "access_token=t0k&token_type=bearer",
        )
    });
    let modules = Modules::new(&format!(
        "modules:
  token:
    prober: http
    http:
      method: POST
      body_file: body.json
      authorization: {{type: Token, credentials_file: creds}}
      http_headers:
        X-Multi: {{values: [plain], secrets: [hidden], files: [header-value]}}
  basic_files:
    prober: http
    http:
      basic_auth: {{username_file: user, password_file: password}}
  header_wins:
    prober: http
    http:
      headers: {{Authorization: Custom mine}}
      basic_auth: {{username: u, password: p}}
  oauth_replaces_header:
    prober: http
    http:
      headers: {{Authorization: Custom mine}}
      oauth2: {{client_id: c, token_url: 'http://{}/token'}}
  missing_file:
    prober: http
    http:
      authorization: {{credentials_file: nowhere}}
  missing_body:
    prober: http
    http:
      body_file: nowhere
",
        tokens.addr
    ));
    modules.write("body.json", "{\"probe\": true}\n");
    modules.write("creds", "abc\n");
    modules.write("header-value", " from a file \n");
    modules.write("user", "alice\n");
    modules.write("password", " pa ss \n");
    let app = start(&modules, &[]);
    let url = format!("http://{}/", target.addr);

    assert_eq!(
        value(&probe(&app, "token", &url), "probe_success"),
        Some(1.0)
    );
    let seen = target.requests().pop().unwrap();
    assert_eq!(seen.line, "POST / HTTP/1.1");
    assert_eq!(seen.header("authorization"), Some("Token abc"));
    assert_eq!(seen.all("x-multi"), ["plain", "hidden", "from a file"]);
    assert_eq!(seen.body, b"{\"probe\": true}\n");
    assert_eq!(seen.header("content-length"), Some("16"));

    assert_eq!(
        value(&probe(&app, "basic_files", &url), "probe_success"),
        Some(1.0)
    );
    let seen = target.requests().pop().unwrap();
    assert_eq!(
        seen.header("authorization"),
        Some(basic("alice", "pa ss").as_str())
    );

    assert_eq!(
        value(&probe(&app, "header_wins", &url), "probe_success"),
        Some(1.0)
    );
    let seen = target.requests().pop().unwrap();
    assert_eq!(seen.all("authorization"), ["Custom mine"]);

    assert_eq!(
        value(&probe(&app, "oauth_replaces_header", &url), "probe_success"),
        Some(1.0)
    );
    let seen = target.requests().pop().unwrap();
    assert_eq!(seen.all("authorization"), ["Bearer t0k"]);
    assert_eq!(tokens.requests()[0].line, "POST /token HTTP/1.1");

    // Unreadable files fail the probe; a missing body_file before the
    // phases are registered, as blackbox_exporter opens it first.
    let metrics = probe(&app, "missing_file", &url);
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert!(metrics
        .iter()
        .any(|(s, _)| s == "probe_http_duration_seconds{phase=\"connect\"}"));
    let metrics = probe(&app, "missing_body", &url);
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert!(!metrics
        .iter()
        .any(|(s, _)| s == "probe_http_duration_seconds{phase=\"connect\"}"));
    app.log_line("unable to read authorization credentials");

    // A redirect to another host gets http_headers values, not its secrets,
    // files or credentials.
    let metrics = probe(&app, "token", &format!("http://{}/", redirector.addr));
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    let landed = other.requests().pop().unwrap();
    assert_eq!(landed.line, "GET /landed HTTP/1.1");
    assert_eq!(landed.all("x-multi"), ["plain"]);
    assert_eq!(landed.header("authorization"), None);
    assert_eq!(
        redirector.requests()[0].header("authorization"),
        Some("Token abc")
    );
}

#[test]
fn an_unusable_oauth2_tls_config_stops_the_modules_from_loading_naming_the_module() {
    let modules = Modules::new(
        "modules:
  m:
    prober: http
    http:
      oauth2:
        client_id: c
        token_url: https://auth.invalid/token
        tls_config: {ca_file: missing-ca.pem}
",
    );
    let err = lookout::check_config(&modules.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("module \"m\": oauth2 tls_config:"), "{err}");
    assert!(err.contains("missing-ca.pem"), "{err}");
}
