//! What the final response must satisfy, with blackbox_exporter's metrics:
//! status, HTTP version, TLS or not, headers and body regexps (the body
//! matched on a slot of its own, see `limits`; read and decoded by `body`).

use std::time::UNIX_EPOCH;

use http::{
    header::{self},
    Response, Version,
};

use super::{
    body::{self, Source},
    exchange::Exchange,
    DEFAULT_BODY_LIMIT,
};
use crate::config::{HeaderMatch, HttpProbe, HttpVersion, Pattern};
use crate::prober::{
    report::{
        Report, FAILED_DUE_TO_REGEX, HTTP_CONTENT_LENGTH, HTTP_DURATION, HTTP_LAST_MODIFIED,
        HTTP_SSL, HTTP_STATUS, HTTP_VERSION,
    },
    tls_info::{self, TlsMetrics},
    PreparedModule, ProbeOptions,
};

/// Checks and metrics of the final response.
pub(super) async fn finish(
    module: &PreparedModule,
    config: &HttpProbe,
    exchange: Exchange,
    refused_redirect: bool,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<bool, String> {
    let Exchange {
        response,
        tls,
        responded_at,
        _connection,
    } = exchange;
    let status = response.status().as_u16();
    report.set(HTTP_STATUS, f64::from(status));
    let content_length = content_length(&response);
    report.set(HTTP_CONTENT_LENGTH, content_length as f64);
    let version = match response.version() {
        Version::HTTP_10 => Some(HttpVersion::Http10),
        Version::HTTP_11 => Some(HttpVersion::Http11),
        Version::HTTP_2 => Some(HttpVersion::Http2),
        Version::HTTP_3 => Some(HttpVersion::Http3),
        _ => None,
    };
    report.set(
        HTTP_VERSION,
        match version {
            Some(HttpVersion::Http10) => 1.0,
            Some(HttpVersion::Http11) => 1.1,
            Some(HttpVersion::Http2) => 2.0,
            // quic-go's resp.Proto is "HTTP/3.0", which Go parses as 3.
            Some(HttpVersion::Http3) => 3.0,
            None => 0.0,
        },
    );
    if let Some(modified) = response
        .headers()
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    {
        report.set(HTTP_LAST_MODIFIED, modified.as_secs() as f64);
    }

    let mut success = if config.valid_status_codes.is_empty() {
        (200..300).contains(&status)
    } else {
        config.valid_status_codes.contains(&status)
    };
    if !success {
        tracing::debug!(status, "invalid HTTP response status code");
    }

    if success
        && !(config.fail_if_header_matches.is_empty()
            && config.fail_if_header_not_matches.is_empty())
    {
        let headers_ok = check_headers(config, response.headers());
        report.set(FAILED_DUE_TO_REGEX, if headers_ok { 0.0 } else { 1.0 });
        success = headers_ok;
    }

    let wants_body = !(config.fail_if_body_matches_regexp.is_empty()
        && config.fail_if_body_not_matches_regexp.is_empty());
    let limit = match config.body_size_limit.0 {
        0 => DEFAULT_BODY_LIMIT,
        limit => limit,
    };
    let source = if refused_redirect {
        // Go hands back a refused redirect with its body already closed.
        Source::Refused {
            empty: content_length == 0,
        }
    } else {
        Source::Stream(response.into_body())
    };
    let coding = config.compression.coding;
    let body = body::read(source, limit, wants_body, coding, report).await;
    if let Some(reason) = &body.start_error {
        tracing::debug!(%reason, "failed to get decompressor for HTTP response body");
        success = false;
    }
    if success && wants_body {
        let body_ok = if let Some(error) = &body.error {
            tracing::debug!(%error, "error reading HTTP body");
            false
        } else {
            match match_body(config, body.kept, options).await {
                Ok(Ok(())) => true,
                Ok(Err(reason)) => {
                    tracing::debug!(%reason, "body regexp check failed");
                    false
                }
                Err(Busy(reason)) => {
                    report.refuse(reason);
                    return Ok(false);
                }
            }
        };
        report.set(FAILED_DUE_TO_REGEX, if body_ok { 0.0 } else { 1.0 });
        success = body_ok;
    }
    if let Some(error) = body.error {
        tracing::debug!(%error, "failed to read HTTP response body");
        success = false;
    }
    report.add_labeled(
        HTTP_DURATION,
        &["transfer"],
        responded_at.elapsed().as_secs_f64(),
    );

    if !config.valid_http_versions.is_empty()
        && !version.is_some_and(|v| config.valid_http_versions.contains(&v))
    {
        tracing::debug!(?version, "invalid HTTP version");
        success = false;
    }

    match &tls {
        Some(state) => {
            report.set(HTTP_SSL, 1.0);
            tls_info::record(report, state, &module.tls.extra_roots, TlsMetrics::HTTP);
            if config.fail_if_ssl {
                tracing::debug!("final response was over TLS and fail_if_ssl is set");
                success = false;
            }
        }
        None if config.fail_if_not_ssl => {
            tracing::debug!("final response was not over TLS and fail_if_not_ssl is set");
            success = false;
        }
        None => {}
    }
    Ok(success)
}

/// Go's `resp.ContentLength`: the header's value, -1 when unknown, 0 for
/// responses that cannot have a body.
pub(super) fn content_length<B>(response: &Response<B>) -> i64 {
    let status = response.status().as_u16();
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return 0;
    }
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(-1)
}

pub(super) fn check_headers(config: &HttpProbe, headers: &http::HeaderMap) -> bool {
    let values = |matcher: &HeaderMatch| -> Vec<Vec<u8>> {
        headers
            .get_all(matcher.header.as_str())
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect()
    };
    for matcher in &config.fail_if_header_matches {
        let values = values(matcher);
        if values.is_empty() {
            if !matcher.allow_missing {
                tracing::debug!(header = %matcher.header, "missing required header");
                return false;
            }
            continue;
        }
        if values.iter().any(|v| matcher.regexp.is_match(v)) {
            tracing::debug!(header = %matcher.header, regexp = ?matcher.regexp, "header matched fail_if_header_matches");
            return false;
        }
    }
    for matcher in &config.fail_if_header_not_matches {
        let values = values(matcher);
        if values.is_empty() {
            if !matcher.allow_missing {
                tracing::debug!(header = %matcher.header, "missing required header");
                return false;
            }
            continue;
        }
        if !values.iter().any(|v| matcher.regexp.is_match(v)) {
            tracing::debug!(header = %matcher.header, regexp = ?matcher.regexp, "header did not match fail_if_header_not_matches");
            return false;
        }
    }
    true
}

/// No match slot was free: the probe is refused, not failed.
pub(super) struct Busy(String);

/// The body regexps, on a blocking thread that holds a match slot and the
/// probe's ticket: a match cannot be interrupted, so a deadline must not
/// leave it running on an async worker, nor let such threads pile up.
/// `Busy` when every slot is held by a match that outlived its probe.
pub(super) async fn match_body(
    config: &HttpProbe,
    body: Vec<u8>,
    options: ProbeOptions<'_>,
) -> Result<Result<(), String>, Busy> {
    let Some(slot) = options.matches.take().await else {
        return Err(Busy(format!(
            "Too many body regexp matches running: all {} slots are held by matches that outlived their probes; retry later",
            options.matches.count()
        )));
    };
    let must_not = config.fail_if_body_matches_regexp.clone();
    let must = config.fail_if_body_not_matches_regexp.clone();
    options
        .matches
        .run(slot, options.ticket, move || {
            check_body(&must_not, &must, &body)
        })
        .await
        .and_then(|verdict| verdict)
        .map_or_else(|reason| Ok(Err(reason)), |()| Ok(Ok(())))
}

pub(super) fn check_body(
    must_not: &[Pattern],
    must: &[Pattern],
    body: &[u8],
) -> Result<(), String> {
    if let Some(re) = must_not.iter().find(|re| re.is_match(body)) {
        return Err(format!("body matched fail_if_body_matches_regexp {re:?}"));
    }
    if let Some(re) = must.iter().find(|re| !re.is_match(body)) {
        return Err(format!(
            "body did not match fail_if_body_not_matches_regexp {re:?}"
        ));
    }
    Ok(())
}
