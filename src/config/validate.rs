//! The checks that a prober's settings do not contradict each other, nor ask
//! for what lookout cannot do. Each value was checked on its own as it was
//! read; these see a whole table. mod.rs runs them for every module and
//! names the module in the error.

use std::collections::BTreeMap;

use super::{
    http::HttpProbe,
    tls::{TlsConfig, TlsVersion},
};

/// A value that contradicts another: where, below the table checked, and why.
#[derive(Debug)]
pub(super) struct Invalid {
    /// Dotted key path below the table checked; empty for the table itself.
    pub(super) field: String,
    /// What is wrong.
    pub(super) message: String,
}

impl Invalid {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem, seen from the table that holds `key`.
    pub(super) fn under(self, key: &str) -> Self {
        let field = match self.field.as_str() {
            "" => key.to_owned(),
            field => format!("{key}.{field}"),
        };
        Self { field, ..self }
    }
}

/// The http prober's settings.
pub(super) fn http(http: &HttpProbe) -> Result<(), Invalid> {
    // Credentials, proxies, http_headers and body_file: prometheus/common's rules.
    super::http_auth::check(http)?;
    super::http3::check(http)?;
    for code in &http.valid_status_codes {
        if !(100..=599).contains(code) {
            return Err(Invalid::new(
                "valid_status_codes",
                format!("{code} is not an HTTP status code"),
            ));
        }
    }
    // Lower-cased name -> the name as written.
    let mut names = BTreeMap::new();
    for (header, value) in &http.headers {
        // Go's yaml keeps `Host` and `host` as two keys, and
        // blackbox_exporter sets them in Go's random map order: which
        // value is sent would change from probe to probe.
        if let Some(first) = names.insert(header.to_ascii_lowercase(), header) {
            return Err(Invalid::new(
                "headers",
                format!(
                    "{first:?} and {header:?} name the same header (names are case-insensitive)"
                ),
            ));
        }
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(Invalid::new(
                "headers",
                format!("{header:?} is not a valid header name"),
            ));
        }
        if http::HeaderValue::from_str(value).is_err() {
            return Err(Invalid::new(
                format!("headers.{header}"),
                "not a valid header value",
            ));
        }
    }
    super::compression::check(&http.compression, &http.headers)?;
    tls(&http.tls_config).map_err(|invalid| invalid.under("tls_config"))
}

/// The `tls_config` of a prober whose other settings were checked as they were read.
pub(super) fn tls_config(tls_config: &TlsConfig) -> Result<(), Invalid> {
    tls(tls_config).map_err(|invalid| invalid.under("tls_config"))
}

/// A `tls_config`, wherever it is.
fn tls(tls: &TlsConfig) -> Result<(), Invalid> {
    // prometheus/common's TLSConfig.Validate, in its order and words.
    if tls.ca.is_some() && tls.ca_file.is_some() {
        return Err(Invalid::new(
            "",
            "at most one of ca and ca_file must be configured",
        ));
    }
    if tls.cert.is_some() && tls.cert_file.is_some() {
        return Err(Invalid::new(
            "",
            "at most one of cert and cert_file must be configured",
        ));
    }
    if tls.key.is_some() && tls.key_file.is_some() {
        return Err(Invalid::new(
            "",
            "at most one of key and key_file must be configured",
        ));
    }
    let cert = tls.cert.is_some() || tls.cert_file.is_some();
    let key = tls.key.is_some() || tls.key_file.is_some();
    if cert && !key {
        return Err(Invalid::new(
            "",
            "exactly one of key or key_file must be configured when a client certificate is configured",
        ));
    }
    if key && !cert {
        return Err(Invalid::new(
            "",
            "exactly one of cert or cert_file must be configured when a client key is configured",
        ));
    }
    if let (Some(min), Some(max)) = (tls.min_version, tls.max_version) {
        if min > max {
            return Err(Invalid::new("", "min_version is above max_version"));
        }
    }
    if tls.max_version.is_some_and(|max| max < TlsVersion::Tls12) {
        return Err(Invalid::new(
            "max_version",
            "lookout speaks TLS 1.2 and 1.3 only",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    #[test]
    fn inline_pem_and_its_file_cannot_both_be_set_and_a_key_needs_its_certificate() {
        let block = |tls: &str| {
            format!("modules:\n  m:\n    prober: tcp\n    tcp:\n      tls_config: {{{tls}}}\n")
        };
        for (tls, expected) in [
            ("ca: x, ca_file: c.pem", "at most one of ca and ca_file must be configured"),
            ("cert: x, cert_file: c.pem, key: y", "at most one of cert and cert_file must be configured"),
            ("cert: x, key: y, key_file: k.pem", "at most one of key and key_file must be configured"),
            ("cert: x", "exactly one of key or key_file must be configured when a client certificate is configured"),
            ("key_file: k.pem", "exactly one of cert or cert_file must be configured when a client key is configured"),
            ("key: y", "exactly one of cert or cert_file must be configured"),
        ] {
            let err = parse(&block(tls)).unwrap_err();
            assert!(err.contains("modules.m.tcp.tls_config"), "{tls}: {err}");
            assert!(err.contains(expected), "{tls}: {err}");
        }
        // Inline PEM that is not PEM is refused when the module is built,
        // naming the key; the key's text is never quoted.
        let config = parse(&block("cert: not pem, key: also not pem")).unwrap();
        let err = crate::prober::Modules::build(&config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls_config.cert"), "{err}");
        assert!(!err.contains("also not pem"), "{err}");
    }

    #[test]
    fn header_names_that_differ_only_in_case_are_an_error() {
        // Go's yaml keeps `Host` and `host` as two keys, and blackbox_exporter
        // then sets them in map order, which Go randomises: which one is sent
        // changes from probe to probe. lookout refuses the file instead.
        let err = parse(
            "modules:\n  a:\n    prober: http\n    http:\n      headers:\n        Host: a.example\n        host: b.example\n",
        )
        .unwrap_err();
        assert!(err.contains("modules.a.http.headers"), "{err}");
        assert!(
            err.contains("\"Host\"") && err.contains("\"host\""),
            "{err}"
        );
    }
}
