//! The http prober through forward proxies: the real tinyproxy end to end
//! (absolute form for http, CONNECT for https, the proxy URL's credentials),
//! a scripted proxy to see what arrives (`proxy_connect_header`, which
//! address is named, `skip_resolve_phase_with_proxy`, `no_proxy`,
//! `proxy_from_environment`) and to misbehave, and the target policy applied
//! to the proxy and to what it is asked to reach.
//!
//! No name here is ever resolved beyond /etc/hosts' `localhost`: names under
//! `.invalid` go to proxies that ignore them, so no test sends a DNS query.

use base64::Engine as _;

use crate::{
    http_peers::{has, response, value, Modules, Recorder, Script, ScriptedProxy, Seen, Tinyproxy},
    probe::{encode, parse, probe},
    support::{request, spawn_app, spawn_process, App},
    targets::{server_tls, Pki},
};

fn ok(_: &Seen) -> String {
    response("200 OK", "", "hello\n")
}

/// An HTTPS target for `names` and the CA file that trusts it.
fn https_target(modules: &Modules, names: &[&str]) -> Recorder {
    let pki = Pki::new("proxy test CA");
    modules.write("ca.pem", &pki.ca_pem());
    let tls = server_tls(
        pki.leaf(names, (2020, 2040)),
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );
    Recorder::start("127.0.0.1", Some(tls), ok)
}

fn start(modules: &Modules, args: &[&str]) -> App {
    let path = modules.path();
    let mut argv = vec!["--config.file", path.to_str().unwrap()];
    argv.extend_from_slice(args);
    let app = spawn_app(&argv, &[("RUST_LOG", "info,lookout=debug")]);
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn http_and_https_targets_are_probed_through_tinyproxy_with_the_proxy_urls_credentials() {
    let tinyproxy = Tinyproxy::start(Some(("prober", "s3cret")));
    let modules = Modules::new("");
    let https = https_target(&modules, &["localhost"]);
    let http = Recorder::start("127.0.0.1", None, ok);
    let proxy = tinyproxy.addr;
    std::fs::write(
        modules.path(),
        format!(
            "modules:
  proxied:
    prober: http
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://prober:s3cret@{proxy}
      tls_config: {{ca_file: ca.pem}}
  wrong_password:
    prober: http
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://prober:wrong@{proxy}
      tls_config: {{ca_file: ca.pem}}
"
        ),
    )
    .unwrap();
    let app = start(&modules, &[]);

    let metrics = probe(&app, "proxied", &format!("http://{}/plain", http.addr));
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    let seen = http.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].line, "GET /plain HTTP/1.1");
    assert!(
        seen[0]
            .header("via")
            .is_some_and(|v| v.contains("tinyproxy")),
        "the request came through tinyproxy: {seen:?}"
    );
    assert_eq!(seen[0].header("host"), Some(http.addr.to_string().as_str()));
    assert_eq!(seen[0].header("proxy-authorization"), None);

    let target = format!("https://localhost:{}/tls", https.addr.port());
    let metrics = probe(&app, "proxied", &target);
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    assert_eq!(value(&metrics, "probe_http_ssl"), Some(1.0));
    assert_eq!(value(&metrics, "probe_ip_protocol"), Some(4.0));
    let seen = https.requests();
    assert_eq!(seen[0].line, "GET /tls HTTP/1.1");
    assert_eq!(seen[0].header("proxy-authorization"), None);

    // tinyproxy refuses the wrong password (with 401, its answer to bad
    // credentials) for http, and the tunnel for https.
    let metrics = probe(
        &app,
        "wrong_password",
        &format!("http://{}/plain", http.addr),
    );
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert_eq!(value(&metrics, "probe_http_status_code"), Some(401.0));
    let metrics = probe(&app, "wrong_password", &target);
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert_eq!(value(&metrics, "probe_http_status_code"), Some(0.0));
    assert_eq!(http.requests().len(), 1);
    assert_eq!(https.requests().len(), 1);
}

#[test]
fn connect_carries_the_checked_address_the_proxy_credentials_and_proxy_connect_header() {
    let modules = Modules::new("");
    let https = https_target(&modules, &["localhost"]);
    let proxy = ScriptedProxy::start("127.0.0.1", Script::Forward(https.addr));
    std::fs::write(
        modules.path(),
        format!(
            "modules:
  m:
    prober: http
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://us%65r:p%40ss@{}
      proxy_connect_header:
        X-Tenant: [blue, green]
        Proxy-Authorization: [overridden by the URL]
      tls_config: {{ca_file: ca.pem}}
      http_headers:
        X-Sent: {{values: [to the target]}}
",
            proxy.addr
        ),
    )
    .unwrap();
    let app = start(&modules, &[]);
    let metrics = probe(
        &app,
        "m",
        &format!("https://localhost:{}/", https.addr.port()),
    );
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");

    let connect = &proxy.requests()[0];
    let authority = format!("127.0.0.1:{}", https.addr.port());
    assert_eq!(connect.line, format!("CONNECT {authority} HTTP/1.1"));
    assert_eq!(connect.header("host"), Some(authority.as_str()));
    assert_eq!(
        connect.all("proxy-authorization"),
        [basic("user", "p@ss").as_str()]
    );
    assert_eq!(connect.all("x-tenant"), ["blue", "green"]);
    assert_eq!(
        connect.header("x-sent"),
        None,
        "http_headers are not for the proxy"
    );
    let sent = &https.requests()[0];
    assert_eq!(sent.header("x-tenant"), None);
    assert_eq!(sent.header("proxy-authorization"), None);
    assert_eq!(sent.header("x-sent"), Some("to the target"));
}

#[test]
fn plain_http_through_a_proxy_names_the_checked_address_not_the_host_header() {
    let http = Recorder::start("127.0.0.1", None, ok);
    let proxy = ScriptedProxy::start("127.0.0.1", Script::Forward(http.addr));
    let modules = Modules::new(&format!(
        "modules:\n  m:\n    prober: http\n    http:\n      proxy_url: http://u:p@{}\n",
        proxy.addr
    ));
    let app = start(&modules, &[]);
    // The Host claims the metadata address; the proxy is asked for the address
    // lookout resolved and checked.
    let response = request(
        app.probe,
        "GET",
        &format!(
            "/probe?module=m&hostname=169.254.169.254&target={}",
            encode(&format!("http://{}/x?y=1", http.addr))
        ),
        &[],
    );
    let metrics = parse(&response.body);
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    let seen = &proxy.requests()[0];
    assert_eq!(
        seen.line,
        format!("GET http://{}/x?y=1 HTTP/1.1", http.addr)
    );
    assert_eq!(seen.header("host"), Some("169.254.169.254"));
    assert_eq!(
        seen.header("proxy-authorization"),
        Some(basic("u", "p").as_str())
    );
    assert_eq!(http.requests()[0].header("host"), Some("169.254.169.254"));
}

#[test]
fn skip_resolve_phase_with_proxy_leaves_the_name_to_the_proxy_and_reports_no_resolution() {
    let modules = Modules::new("");
    let https = https_target(&modules, &["far.invalid"]);
    let http = Recorder::start("127.0.0.1", None, ok);
    let to_https = ScriptedProxy::start("127.0.0.1", Script::Forward(https.addr));
    let to_http = ScriptedProxy::start("127.0.0.1", Script::Forward(http.addr));
    std::fs::write(
        modules.path(),
        format!(
            "modules:
  skip_https:
    prober: http
    http:
      proxy_url: http://{}
      skip_resolve_phase_with_proxy: true
      tls_config: {{ca_file: ca.pem}}
  skip_http:
    prober: http
    http:
      proxy_url: http://{}
      skip_resolve_phase_with_proxy: true
  resolve_http:
    prober: http
    http:
      proxy_url: http://{}
",
            to_https.addr, to_http.addr, to_http.addr
        ),
    )
    .unwrap();
    let app = start(&modules, &[]);
    let unresolved = |metrics: &[(String, f64)]| {
        for family in [
            "probe_ip_protocol",
            "probe_ip_addr_hash",
            "probe_dns_lookup_time_seconds",
        ] {
            assert!(!has(metrics, family), "{family} in {metrics:?}");
        }
        assert!(!metrics
            .iter()
            .any(|(s, _)| s == "probe_http_duration_seconds{phase=\"resolve\"}"));
    };

    let metrics = probe(&app, "skip_https", "https://far.invalid:8443/s");
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    unresolved(&metrics);
    assert_eq!(
        to_https.requests()[0].line,
        "CONNECT far.invalid:8443 HTTP/1.1"
    );
    assert_eq!(https.requests()[0].header("host"), Some("far.invalid:8443"));

    let metrics = probe(&app, "skip_http", "far.invalid/p");
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    unresolved(&metrics);
    assert_eq!(
        to_http.requests()[0].line,
        "GET http://far.invalid/p HTTP/1.1"
    );

    // Without the option the target is resolved and reported, proxy or not.
    let metrics = probe(
        &app,
        "resolve_http",
        &format!("http://localhost:{}/", http.addr.port()),
    );
    assert!(has(&metrics, "probe_ip_protocol"), "{metrics:?}");
    assert!(has(&metrics, "probe_dns_lookup_time_seconds"));
}

#[test]
fn with_no_proxy_loopback_and_localhost_go_direct_and_other_names_through_the_proxy() {
    let http = Recorder::start("127.0.0.1", None, ok);
    let proxy = ScriptedProxy::start("127.0.0.1", Script::Forward(http.addr));
    let modules = Modules::new(&format!(
        "modules:
  m:
    prober: http
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://{}
      no_proxy: other.invalid,10.0.0.0/8
      skip_resolve_phase_with_proxy: true
",
        proxy.addr
    ));
    let app = start(&modules, &[]);
    let port = http.addr.port();
    for target in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let metrics = probe(&app, "m", &target);
        assert_eq!(
            value(&metrics, "probe_success"),
            Some(1.0),
            "{target}: {metrics:?}"
        );
    }
    assert_eq!(
        proxy.connection_count(),
        0,
        "loopback is never proxied with no_proxy set"
    );
    assert_eq!(http.requests().len(), 2);
    let metrics = probe(&app, "m", &format!("http://named.invalid:{port}/"));
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    assert_eq!(
        proxy.requests()[0].line,
        format!("GET http://named.invalid:{port}/ HTTP/1.1")
    );
}

#[test]
fn proxy_from_environment_takes_http_proxy_and_https_proxy() {
    let modules = Modules::new("");
    let https = https_target(&modules, &["env.invalid"]);
    let http = Recorder::start("127.0.0.1", None, ok);
    let for_http = ScriptedProxy::start("127.0.0.1", Script::Forward(http.addr));
    let for_https = ScriptedProxy::start("127.0.0.1", Script::Forward(https.addr));
    std::fs::write(
        modules.path(),
        "modules:
  env:
    prober: http
    http:
      proxy_from_environment: true
      skip_resolve_phase_with_proxy: true
      proxy_connect_header: {X-From: [env module]}
      tls_config: {ca_file: ca.pem}
",
    )
    .unwrap();
    // A process of its own: the environment is the process's.
    let app = spawn_process(
        &["--config.file", modules.path().to_str().unwrap()],
        &[
            // x/net takes `host:port` as http://.
            ("HTTP_PROXY", &for_http.addr.to_string()),
            ("https_proxy", &format!("http://{}", for_https.addr)),
            ("NO_PROXY", "elsewhere.invalid"),
        ],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let metrics = probe(&app, "env", "http://env.invalid/e");
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    assert_eq!(
        for_http.requests()[0].line,
        "GET http://env.invalid/e HTTP/1.1"
    );
    let metrics = probe(&app, "env", "https://env.invalid:9443/");
    assert_eq!(value(&metrics, "probe_success"), Some(1.0), "{metrics:?}");
    let connect = &for_https.requests()[0];
    assert_eq!(connect.line, "CONNECT env.invalid:9443 HTTP/1.1");
    assert_eq!(connect.header("x-from"), Some("env module"));
}

#[test]
fn a_proxy_at_a_denied_address_or_name_is_never_contacted() {
    let http = Recorder::start("127.0.0.1", None, ok);
    let denied = ScriptedProxy::start("127.0.0.2", Script::Forward(http.addr));
    let by_name = ScriptedProxy::start("127.0.0.1", Script::Forward(http.addr));
    let port = denied.addr.port();
    let modules = Modules::new(&format!(
        "modules:
  plain: {{prober: http, http: {{proxy_url: 'http://127.0.0.2:{port}'}}}}
  mapped: {{prober: http, http: {{proxy_url: 'http://[::ffff:127.0.0.2]:{port}'}}}}
  by_name: {{prober: http, http: {{proxy_url: 'http://LocalHost.:{}'}}}}
  tunnel: {{prober: http, http: {{proxy_url: 'http://127.0.0.2:{port}'}}}}
",
        by_name.addr.port()
    ));
    let app = start(&modules, &["--deny-target", "127.0.0.2,localhost"]);
    for (module, target) in [
        ("plain", format!("http://{}/", http.addr)),
        ("mapped", format!("http://{}/", http.addr)),
        ("by_name", format!("http://{}/", http.addr)),
        ("tunnel", format!("https://{}/", http.addr)),
    ] {
        let metrics = probe(&app, module, &target);
        assert_eq!(
            value(&metrics, "probe_success"),
            Some(0.0),
            "{module}: {metrics:?}"
        );
    }
    assert_eq!(denied.connection_count(), 0);
    assert_eq!(by_name.connection_count(), 0);
    assert_eq!(http.connection_count(), 0);
    app.log_line("probe refused by the target policy");
}

#[test]
fn a_denied_target_is_not_reached_through_the_proxy_by_address_or_by_name() {
    let http = Recorder::start("127.0.0.3", None, ok);
    let proxy = ScriptedProxy::start("127.0.0.1", Script::Forward(http.addr));
    let modules = Modules::new(&format!(
        "modules:
  resolved: {{prober: http, http: {{proxy_url: 'http://{0}'}}}}
  skip: {{prober: http, http: {{proxy_url: 'http://{0}', skip_resolve_phase_with_proxy: true}}}}
",
        proxy.addr
    ));
    let app = start(&modules, &["--deny-target", "127.0.0.3,*.corp.invalid"]);
    for (module, target) in [
        ("resolved", format!("http://{}/", http.addr)),
        ("resolved", format!("https://{}/", http.addr)),
        ("skip", format!("http://{}/", http.addr)),
        ("skip", "http://db.corp.invalid/".to_owned()),
        ("skip", "https://DB.Corp.Invalid./".to_owned()),
    ] {
        let metrics = probe(&app, module, &target);
        assert_eq!(
            value(&metrics, "probe_success"),
            Some(0.0),
            "{target}: {metrics:?}"
        );
    }
    assert_eq!(proxy.connection_count(), 0);
    assert_eq!(http.connection_count(), 0);
}

#[test]
fn a_proxy_that_refuses_the_tunnel_or_never_answers_fails_the_probe_without_reaching_the_target() {
    let modules = Modules::new("");
    let https = https_target(&modules, &["localhost"]);
    let refusals = [
        "407 Proxy Authentication Required",
        "403 Forbidden",
        "502 Bad Gateway",
        "201 Created",
    ]
    .map(|status| ScriptedProxy::start("127.0.0.1", Script::Status(status)));
    let silent = ScriptedProxy::start("127.0.0.1", Script::Silent);
    let endless = ScriptedProxy::start("127.0.0.1", Script::EndlessHead);
    let mut text = String::from("modules:\n");
    for (i, proxy) in refusals.iter().enumerate() {
        text.push_str(&format!(
            "  refuse{i}: {{prober: http, http: {{proxy_url: 'http://{}'}}}}\n",
            proxy.addr
        ));
    }
    text.push_str(&format!(
        "  silent: {{prober: http, timeout: 1s, http: {{proxy_url: 'http://{}'}}}}\n  endless: {{prober: http, timeout: 10s, http: {{proxy_url: 'http://{}'}}}}\n",
        silent.addr, endless.addr
    ));
    std::fs::write(modules.path(), text).unwrap();
    let app = start(&modules, &[]);
    let target = format!("https://localhost:{}/", https.addr.port());
    for (i, refusal) in refusals.iter().enumerate() {
        let metrics = probe(&app, &format!("refuse{i}"), &target);
        assert_eq!(value(&metrics, "probe_success"), Some(0.0), "{metrics:?}");
        assert_eq!(value(&metrics, "probe_http_status_code"), Some(0.0));
        assert_eq!(
            refusal.requests()[0].line.split(' ').next(),
            Some("CONNECT")
        );
    }
    for module in ["silent", "endless"] {
        let metrics = probe(&app, module, &target);
        assert_eq!(
            value(&metrics, "probe_success"),
            Some(0.0),
            "{module}: {metrics:?}"
        );
    }
    // Plain http through the silent proxy: the deadline ends the wait too.
    let metrics = probe(&app, "silent", &format!("http://{}/", https.addr));
    assert_eq!(value(&metrics, "probe_success"), Some(0.0));
    assert_eq!(https.connection_count(), 0);
    app.log_line("proxyconnect: 407 Proxy Authentication Required");
    app.log_line("longer than");
}
