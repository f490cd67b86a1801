//! The metrics of one probe, rendered as blackbox_exporter renders them.
//!
//! blackbox_exporter gives every probe a fresh registry, so a metric appears
//! only if the prober registered it before it stopped; we mirror that with a
//! small set of gauges filled in as the probe goes. Output is Prometheus text
//! format 0.0.4 as Go's client writes it: families sorted by name, samples by
//! label values, floats in Go's shortest `%g` form. Timings aside, a response
//! is byte-for-byte what blackbox_exporter 0.23 prints for the same probe.

use std::{collections::BTreeMap, fmt::Write as _};

/// Content type of [`Report::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A gauge's identity: name, HELP text and label names (in name order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge {
    /// Metric name.
    pub name: &'static str,
    /// HELP text, exactly as blackbox_exporter has it.
    pub help: &'static str,
    /// Label names, sorted.
    pub labels: &'static [&'static str],
}

macro_rules! gauges {
    ($($(#[$doc:meta])* $id:ident = $name:literal, $help:literal $(, [$($label:literal),*])?;)*) => {
        $($(#[$doc])* pub const $id: Gauge = Gauge { name: $name, help: $help, labels: &[$($($label),*)?] };)*
    };
}

gauges! {
    /// 1 on success.
    PROBE_SUCCESS = "probe_success", "Displays whether or not the probe was a success";
    /// Whole-probe wall time.
    PROBE_DURATION = "probe_duration_seconds", "Returns how long the probe took to complete in seconds";
    /// Resolution time.
    DNS_LOOKUP = "probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds";
    /// 4 or 6.
    IP_PROTOCOL = "probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6";
    /// FNV-1a of the address bytes.
    IP_ADDR_HASH = "probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if the IP address changes.";
    /// 1 when a regexp check failed.
    FAILED_DUE_TO_REGEX = "probe_failed_due_to_regex", "Indicates if probe failed due to regex";
    /// 1 when an `expect_bytes` check failed (tcp and unix, 0.26 and later).
    FAILED_DUE_TO_BYTES = "probe_failed_due_to_bytes", "Indicates if probe failed due to bytes";
    /// Per-phase HTTP timings.
    HTTP_DURATION = "probe_http_duration_seconds", "Duration of http request by phase, summed over all redirects", ["phase"];
    /// Content-Length, -1 when unknown.
    HTTP_CONTENT_LENGTH = "probe_http_content_length", "Length of http content response";
    /// Bytes of body read.
    HTTP_BODY_LENGTH = "probe_http_uncompressed_body_length", "Length of uncompressed response body";
    /// Redirects followed (or refused).
    HTTP_REDIRECTS = "probe_http_redirects", "The number of redirects";
    /// 1 when the final response came over TLS.
    HTTP_SSL = "probe_http_ssl", "Indicates if SSL was used for the final redirect";
    /// Final status code.
    HTTP_STATUS = "probe_http_status_code", "Response HTTP status code";
    /// 1, 1.1 or 2.
    HTTP_VERSION = "probe_http_version", "Returns the version of HTTP of the probe response";
    /// Last-Modified as Unix time.
    HTTP_LAST_MODIFIED = "probe_http_last_modified_timestamp_seconds", "Returns the Last-Modified HTTP response header in unixtime";
    /// Earliest NotAfter of the presented certificates (HELP text sic, as upstream).
    SSL_EARLIEST_EXPIRY = "probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime";
    /// Earliest NotAfter of the verified chain.
    SSL_LAST_CHAIN_EXPIRY = "probe_ssl_last_chain_expiry_timestamp_seconds", "Returns last SSL chain expiry in timestamp";
    /// Leaf certificate details.
    SSL_LAST_CHAIN_INFO = "probe_ssl_last_chain_info", "Contains SSL leaf certificate information", ["fingerprint_sha256", "issuer", "serialnumber", "subject", "subjectalternative"];
    /// Negotiated TLS version.
    TLS_VERSION = "probe_tls_version_info", "Returns the TLS version used or NaN when unknown", ["version"];
    /// Negotiated cipher suite (http, 0.26 and later).
    TLS_CIPHER = "probe_tls_cipher_info", "Returns the TLS cipher negotiated during handshake", ["cipher"];
    /// A `query_response` step's `labels` (tcp and unix); the label names
    /// are the module's, given with the values ([`Report::set_with_labels`]).
    EXPECT_INFO = "probe_expect_info", "Explicit content matched";
}

#[derive(Debug)]
struct Family {
    gauge: Gauge,
    /// Label names set at run time, instead of the gauge's.
    names: Option<Vec<String>>,
    samples: BTreeMap<Vec<String>, f64>,
}

/// The gauges one probe has registered so far.
#[derive(Debug, Default)]
pub struct Report {
    families: BTreeMap<&'static str, Family>,
    success: bool,
    refused: Option<String>,
}

impl Report {
    fn sample(&mut self, gauge: Gauge, values: &[&str]) -> &mut f64 {
        debug_assert_eq!(gauge.labels.len(), values.len(), "{}", gauge.name);
        let family = self.families.entry(gauge.name).or_insert_with(|| Family {
            gauge,
            names: None,
            samples: BTreeMap::new(),
        });
        family
            .samples
            .entry(values.iter().map(|v| (*v).to_owned()).collect())
            .or_insert(0.0)
    }

    /// Sets an unlabelled gauge (registering it).
    pub fn set(&mut self, gauge: Gauge, value: f64) {
        *self.sample(gauge, &[]) = value;
    }

    /// Sets a labelled gauge's child.
    pub fn set_labeled(&mut self, gauge: Gauge, values: &[&str], value: f64) {
        *self.sample(gauge, values) = value;
    }

    /// Registers `gauge` with the label names of `pairs` (name, value), which
    /// replace any it had, and sets that child; labels print sorted by name,
    /// as Go's client sorts them.
    pub fn set_with_labels(&mut self, gauge: Gauge, pairs: &[(&str, &str)], value: f64) {
        let mut pairs = pairs.to_vec();
        pairs.sort_unstable_by_key(|(name, _)| *name);
        let values = pairs.iter().map(|(_, v)| (*v).to_owned()).collect();
        self.families.insert(
            gauge.name,
            Family {
                gauge,
                names: Some(pairs.iter().map(|(n, _)| (*n).to_owned()).collect()),
                samples: BTreeMap::from([(values, value)]),
            },
        );
    }

    /// Adds to a labelled gauge's child, creating it at 0 first.
    pub fn add_labeled(&mut self, gauge: Gauge, values: &[&str], value: f64) {
        *self.sample(gauge, values) += value;
    }

    /// The value of a gauge's child, if registered.
    pub fn get(&self, gauge: Gauge, values: &[&str]) -> Option<f64> {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        self.families.get(gauge.name)?.samples.get(&key).copied()
    }

    /// Records the outcome as `probe_success`.
    pub fn finish(&mut self, success: bool, seconds: f64) {
        self.success = success;
        self.set(PROBE_SUCCESS, if success { 1.0 } else { 0.0 });
        self.set(PROBE_DURATION, seconds);
    }

    /// Whether the probe succeeded.
    pub fn success(&self) -> bool {
        self.success
    }

    /// Marks the probe as refused for lack of capacity: it says nothing
    /// about the target, so /probe answers 503 instead of its metrics.
    pub(crate) fn refuse(&mut self, reason: String) {
        self.refused = Some(reason);
    }

    /// Why the probe was refused for lack of capacity, if it was.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Text format 0.0.4, as Go's client writes it.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        for family in self.families.values() {
            let gauge = family.gauge;
            let _ = writeln!(out, "# HELP {} {}", gauge.name, escape_help(gauge.help));
            let _ = writeln!(out, "# TYPE {} gauge", gauge.name);
            let names: Vec<&str> = match &family.names {
                Some(names) => names.iter().map(String::as_str).collect(),
                None => gauge.labels.to_vec(),
            };
            for (values, value) in &family.samples {
                out.push_str(gauge.name);
                if !values.is_empty() {
                    out.push('{');
                    for (i, (label, value)) in names.iter().zip(values).enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{label}=\"{}\"", escape_label(value));
                    }
                    out.push('}');
                }
                out.push(' ');
                out.push_str(&go_float(*value));
                out.push('\n');
            }
        }
        out
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` as expfmt uses it: shortest
/// round-trip digits, exponent form when the exponent is below -4 or at least
/// 6 (with a sign and two digits at least), and the special spellings.
pub fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if value == 0.0 {
        return "0".into();
    }
    // `{:e}` gives the shortest round-trip mantissa, e.g. "1.44541248e9".
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        format!("{value}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        for (value, text) in [
            (1.0, "1"),
            (0.0, "0"),
            (-1.0, "-1"),
            (1.1, "1.1"),
            (12.0, "12"),
            (5000.0, "5000"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.000154439, "0.000154439"),
            (3.8669e-05, "3.8669e-05"),
            (1445412480.0, "1.44541248e+09"),
            (3668918509.0, "3.668918509e+09"),
            (-62135596800.0, "-6.21355968e+10"),
            (0.0030919339999999997, "0.0030919339999999997"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_float(value), text, "{value}");
        }
    }

    #[test]
    fn families_sort_by_name_and_samples_by_labels() {
        let mut report = Report::default();
        report.set(HTTP_STATUS, 200.0);
        report.add_labeled(HTTP_DURATION, &["transfer"], 0.5);
        report.add_labeled(HTTP_DURATION, &["connect"], 0.25);
        report.add_labeled(HTTP_DURATION, &["connect"], 0.25);
        report.finish(true, 0.75);
        let text = report.render();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(
            names,
            [
                "probe_duration_seconds gauge",
                "probe_http_duration_seconds gauge",
                "probe_http_status_code gauge",
                "probe_success gauge"
            ]
        );
        assert!(text.contains(
            "probe_http_duration_seconds{phase=\"connect\"} 0.5\nprobe_http_duration_seconds{phase=\"transfer\"} 0.5\n"
        ));
    }

    #[test]
    fn run_time_label_names_print_sorted_by_name() {
        let mut report = Report::default();
        report.set_with_labels(EXPECT_INFO, &[("version", "2.0"), ("banner", "a\"b")], 1.0);
        assert!(report
            .render()
            .ends_with("# TYPE probe_expect_info gauge\nprobe_expect_info{banner=\"a\\\"b\",version=\"2.0\"} 1\n"));
        report.set_with_labels(EXPECT_INFO, &[], 1.0);
        assert!(report
            .render()
            .ends_with("# TYPE probe_expect_info gauge\nprobe_expect_info 1\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut report = Report::default();
        report.set_labeled(
            SSL_LAST_CHAIN_INFO,
            &["ab", "CN=x", "0f", "O=A\\, Inc.", "q\"\n"],
            1.0,
        );
        assert!(report.render().contains(
            "probe_ssl_last_chain_info{fingerprint_sha256=\"ab\",issuer=\"CN=x\",serialnumber=\"0f\",subject=\"O=A\\\\, Inc.\",subjectalternative=\"q\\\"\\n\"} 1\n"
        ));
    }
}
