//! `enable_http3`: blackbox_exporter 0.28's HTTP/3 switch, with its load-time
//! rules (config.go's `HTTPProbe.UnmarshalYAML`): `HTTP/3.0` is a valid
//! version only with `enable_http3`; with it, `HTTP/1.1` and `HTTP/2.0` are
//! not, and `enable_http2` (true by default) must be set to false.
//!
//! lookout adds one rule: blackbox_exporter's HTTP/3 client is not built
//! from prometheus/common's options, so it never uses a proxy (QUIC cannot
//! cross an HTTP CONNECT proxy); a module naming one with `enable_http3`
//! would silently probe directly, and is refused instead.

use super::{
    http::{HttpProbe, HttpVersion},
    validate::Invalid,
};

/// blackbox_exporter's rules on `enable_http3`, plus the proxy rule above.
pub(super) fn check(http: &HttpProbe) -> Result<(), Invalid> {
    let names = |wanted: &[HttpVersion]| {
        http.valid_http_versions
            .iter()
            .any(|version| wanted.contains(version))
    };
    if !http.enable_http3 {
        if names(&[HttpVersion::Http3]) {
            return Err(Invalid::new(
                "valid_http_versions",
                "HTTP/3 cannot be used as a valid HTTP version when enable_http3 is false",
            ));
        }
        return Ok(());
    }
    if names(&[HttpVersion::Http11, HttpVersion::Http2]) {
        return Err(Invalid::new(
            "valid_http_versions",
            "HTTP/3 and HTTP/2.0/1.1 cannot be used together - only HTTP/3.0 is allowed when enable_http3 is true",
        ));
    }
    if http.enable_http2 {
        return Err(Invalid::new(
            "enable_http2",
            "when enable_http3 is true, enable_http2 must be set to false",
        ));
    }
    if http.proxy().is_set() {
        return Err(Invalid::new(
            "enable_http3",
            "HTTP/3 probes are never sent through a proxy (blackbox_exporter ignores proxy_url and proxy_from_environment with enable_http3); remove the proxy or enable_http3",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{tests::parse, HttpVersion};

    fn module(body: &str) -> Result<crate::config::Config, String> {
        parse(&format!(
            "modules:\n  m:\n    prober: http\n    http:\n{body}"
        ))
    }

    #[test]
    fn enable_http3_with_http2_off_and_http3_versions_loads() {
        let config = module(
            "      enable_http3: true\n      enable_http2: false\n      valid_http_versions: [\"HTTP/3.0\"]\n",
        )
        .unwrap();
        let http = &config.modules["m"].http;
        assert!(http.enable_http3);
        assert_eq!(http.valid_http_versions, [HttpVersion::Http3]);
        assert!(
            !module("      enable_http3: false\n").unwrap().modules["m"]
                .http
                .enable_http3
        );
    }

    #[test]
    fn blackbox_0_28s_example_http_3xx_module_loads() {
        // ../shared/blackbox-0.28/blackbox.yml's module, as written there.
        let config = module(
            "      preferred_ip_protocol: \"ip4\"\n      enable_http3: true\n      enable_http2: false\n      valid_http_versions: [\"HTTP/3.0\"]\n",
        )
        .unwrap();
        assert!(config.modules["m"].http.enable_http3);
    }

    #[test]
    fn enable_http3_rules_are_blackbox_exporters() {
        let cases = [
            (
                "      enable_http3: true\n",
                "modules.m.http.enable_http2",
                "enable_http2 must be set to false",
            ),
            (
                "      valid_http_versions: [\"HTTP/3.0\"]\n",
                "modules.m.http.valid_http_versions",
                "when enable_http3 is false",
            ),
            (
                "      enable_http3: true\n      enable_http2: false\n      valid_http_versions: [\"HTTP/3.0\", \"HTTP/1.1\"]\n",
                "modules.m.http.valid_http_versions",
                "only HTTP/3.0 is allowed",
            ),
            (
                "      enable_http3: true\n      enable_http2: false\n      valid_http_versions: [\"HTTP/2.0\"]\n",
                "modules.m.http.valid_http_versions",
                "only HTTP/3.0 is allowed",
            ),
            (
                "      enable_http3: true\n      enable_http2: false\n      proxy_url: http://127.0.0.1:3128\n",
                "modules.m.http.enable_http3",
                "never sent through a proxy",
            ),
            (
                "      enable_http3: true\n      enable_http2: false\n      proxy_from_environment: true\n",
                "modules.m.http.enable_http3",
                "never sent through a proxy",
            ),
        ];
        for (body, field, message) in cases {
            let err = module(body).unwrap_err();
            assert!(
                err.contains(field) && err.contains(message),
                "{body}: {err}"
            );
        }
        assert!(module("      enable_http3: maybe\n").is_err());
    }

    #[test]
    fn cel_checks_are_refused_by_name() {
        for key in [
            "fail_if_body_json_matches_cel",
            "fail_if_body_json_not_matches_cel",
        ] {
            let err = parse(&format!(
                "modules:\n  m:\n    prober: http\n    http:\n      {key}: 'body.ok == true'\n"
            ))
            .unwrap_err();
            assert!(
                err.contains(&format!(
                    "`{key}` is a blackbox_exporter option that lookout does not support"
                )),
                "{err}"
            );
            assert!(err.contains("line 5"), "{err}");
        }
    }
}
