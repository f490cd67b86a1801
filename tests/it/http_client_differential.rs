//! The http prober's client options that blackbox_exporter 0.23 has
//! (`proxy_url` with the real tinyproxy, `skip_resolve_phase_with_proxy`,
//! `authorization`, `bearer_token_file`, `basic_auth.password_file`, `oauth2`)
//! against the oracle: both exporters load the same modules file, probe the
//! same local targets, and must report the same metrics (see
//! `differential::compare`).

use crate::{
    differential::{compare, exposition, same_or_timing, since_0_23, spawn_blackbox},
    http_peers::{response, Modules, Recorder, Tinyproxy},
    probe::encode,
    support::{request, spawn_app},
    targets::{closed_port, server_tls, Pki},
};

#[test]
fn proxy_and_credentials_options_answer_as_blackbox_exporter_does() {
    let modules = Modules::new("");
    let pki = Pki::new("differential CA");
    let ca = modules.write("ca.pem", &pki.ca_pem());
    let https = Recorder::start(
        "127.0.0.1",
        Some(server_tls(
            pki.leaf(&["localhost"], (2020, 2040)),
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )),
        |_| response("200 OK", "", "secure\n"),
    );
    let http = Recorder::start("127.0.0.1", None, |seen| {
        let wanted = match seen.line.split(' ').nth(1).unwrap_or_default() {
            "/token-auth" => Some("Token abc"),
            "/bearer" => Some("Bearer t0k"),
            // alice:pw
            "/basic" => Some("Basic YWxpY2U6cHc="),
            "/oauth" => Some("Bearer issued"),
            _ => None,
        };
        match wanted {
            Some(w) if seen.header("authorization") != Some(w) => {
                response("401 Unauthorized", "", "who are you\n")
            }
            _ => response("200 OK", "", "hello world\n"),
        }
    });
    let tokens = Recorder::start("127.0.0.1", None, |seen| {
        if String::from_utf8_lossy(&seen.body).contains("grant_type=client_credentials") {
            response(
                "200 OK",
                "Content-Type: application/json\r\n",
                r#"{"access_token":"issued","token_type":"bearer","expires_in":3600}"#,
            )
        } else {
            response(
                "400 Bad Request",
                "Content-Type: application/json\r\n",
                r#"{"error":"invalid_request"}"#,
            )
        }
    });
    let refusing = Recorder::start("127.0.0.1", None, |_| {
        response(
            "401 Unauthorized",
            "Content-Type: application/json\r\n",
            r#"{"error":"invalid_client"}"#,
        )
    });
    let tinyproxy = Tinyproxy::start(None);
    let creds = modules.write("creds", "t0k\n");
    let password = modules.write("password", "pw\n");
    let missing = modules.dir.path().join("missing");
    let closed = closed_port();
    std::fs::write(
        modules.path(),
        format!(
            "modules:
  proxy_http:
    prober: http
    http: {{proxy_url: 'http://{proxy}'}}
  proxy_https:
    prober: http
    http:
      preferred_ip_protocol: ip4
      proxy_url: 'http://{proxy}'
      tls_config: {{ca_file: {ca}}}
  proxy_skip_resolve:
    prober: http
    http: {{proxy_url: 'http://{proxy}', skip_resolve_phase_with_proxy: true}}
  proxy_closed:
    prober: http
    http: {{proxy_url: 'http://{closed}'}}
  authorization_token:
    prober: http
    http: {{authorization: {{type: Token, credentials: abc}}}}
  authorization_file:
    prober: http
    http: {{authorization: {{credentials_file: {creds}}}}}
  authorization_missing_file:
    prober: http
    http: {{authorization: {{credentials_file: {missing}}}}}
  bearer_file:
    prober: http
    http: {{bearer_token_file: {creds}}}
  basic_password_file:
    prober: http
    http: {{basic_auth: {{username: alice, password_file: {password}}}}}
  oauth:
    prober: http
    http:
      oauth2: {{client_id: c, client_secret: s, scopes: [a], token_url: 'http://{tokens}/token', endpoint_params: {{x: y}}}}
  oauth_refused:
    prober: http
    http:
      oauth2: {{client_id: c, client_secret: s, token_url: 'http://{refusing}/token'}}
",
            proxy = tinyproxy.addr,
            ca = ca.display(),
            creds = creds.display(),
            password = password.display(),
            missing = missing.display(),
            tokens = tokens.addr,
            refusing = refusing.addr,
        ),
    )
    .unwrap();
    let lookout = spawn_app(&["--config.file", modules.path().to_str().unwrap()], &[]);
    lookout.admin_until("/readyz", |r| r.status == 200);
    let blackbox = spawn_blackbox(&modules.path());

    let target = http.addr;
    // Each case with the outcome it is meant to have, so that no case
    // compares two failures it did not mean.
    let cases = [
        ("proxy_http", format!("http://{target}/ok"), 1.0),
        ("proxy_http", format!("http://{target}/basic"), 0.0),
        ("proxy_http", format!("http://{closed}/"), 0.0),
        (
            "proxy_https",
            format!("https://localhost:{}/", https.addr.port()),
            1.0,
        ),
        ("proxy_skip_resolve", format!("http://{target}/ok"), 1.0),
        ("proxy_closed", format!("http://{target}/ok"), 0.0),
        ("proxy_closed", format!("https://{target}/ok"), 0.0),
        (
            "authorization_token",
            format!("http://{target}/token-auth"),
            1.0,
        ),
        (
            "authorization_token",
            format!("http://{target}/bearer"),
            0.0,
        ),
        ("authorization_file", format!("http://{target}/bearer"), 1.0),
        (
            "authorization_missing_file",
            format!("http://{target}/ok"),
            0.0,
        ),
        ("bearer_file", format!("http://{target}/bearer"), 1.0),
        ("basic_password_file", format!("http://{target}/basic"), 1.0),
        ("oauth", format!("http://{target}/oauth"), 1.0),
        ("oauth_refused", format!("http://{target}/ok"), 0.0),
    ];
    let mut differences = Vec::new();
    for (module, target, success) in &cases {
        let path = format!("/probe?module={module}&target={}", encode(target));
        let ours = request(lookout.probe, "GET", &path, &[]);
        let theirs = request(blackbox.addr, "GET", &path, &[]);
        assert_eq!(
            (ours.status, theirs.status),
            (200, 200),
            "{module} {target}"
        );
        let (ours, theirs) = since_0_23(&ours.body, &theirs.body, module);
        let case = format!("{module} {target}");
        let ours = exposition(&ours);
        assert_eq!(ours.0.get("probe_success"), Some(success), "{case}");
        differences.extend(compare(&case, &ours, &exposition(&theirs), same_or_timing));
        eprintln!("compared {case}: {} series", ours.0.len());
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    // The cases reached what they meant to: the proxy carried requests, the
    // token endpoint issued tokens.
    assert!(http.requests().iter().any(|r| r.header("via").is_some()));
    assert!(https.requests().len() >= 2);
    assert!(tokens.requests().len() >= 2);
}
