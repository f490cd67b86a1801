//! The metrics of one probe, rendered as blackbox_exporter renders them.
//!
//! blackbox_exporter gives every probe a fresh registry, so a metric appears
//! only if the prober registered it before it stopped; we mirror that with a
//! small set of gauges filled in as the probe goes. Output is Prometheus text
//! format 0.0.4 as Go's client writes it: families sorted by name, samples by
//! label values, floats in Go's shortest `%g` form. Timings aside, a response
//! is byte-for-byte what blackbox_exporter 0.23 prints for the same probe.

use std::fmt::Write as _;

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
    /// Label values and value, sorted by label values.
    samples: Vec<(Vec<String>, f64)>,
}

impl Family {
    /// Where the sample with `values` is, or would be inserted.
    fn find(&self, values: &[&str]) -> Result<usize, usize> {
        self.samples
            .binary_search_by(|(key, _)| key.iter().map(String::as_str).cmp(values.iter().copied()))
    }
}

/// The gauges one probe has registered so far.
///
/// Families in registration order, sorted by name only when rendered;
/// samples in a vector kept sorted (a family has a few); both looked up
/// without building a key. A probe of bench/profile.sh's target spent 47,000
/// instructions here with BTreeMaps keyed by owned strings, and 129,000 in
/// `render` with `format!`, `str::replace` and `{:e}` (issue 18).
#[derive(Debug, Default)]
pub struct Report {
    families: Vec<Family>,
    success: bool,
    refused: Option<String>,
}

impl Report {
    /// Where the family of `gauge` is. A gauge is one constant, its name
    /// one static string: most lookups are settled by comparing addresses.
    fn position(&self, gauge: Gauge) -> Option<usize> {
        let name = gauge.name;
        let families = &self.families;
        families
            .iter()
            .position(|family| std::ptr::eq(family.gauge.name, name))
            .or_else(|| families.iter().position(|family| family.gauge.name == name))
    }

    fn family(&mut self, gauge: Gauge) -> &mut Family {
        let at = self.position(gauge).unwrap_or_else(|| {
            self.families.push(Family {
                gauge,
                names: None,
                samples: Vec::new(),
            });
            self.families.len() - 1
        });
        &mut self.families[at]
    }

    fn sample(&mut self, gauge: Gauge, values: &[&str]) -> &mut f64 {
        debug_assert_eq!(gauge.labels.len(), values.len(), "{}", gauge.name);
        let family = self.family(gauge);
        let at = family.find(values).unwrap_or_else(|at| {
            let key = values.iter().map(|v| (*v).to_owned()).collect();
            family.samples.insert(at, (key, 0.0));
            at
        });
        &mut family.samples[at].1
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
        let family = self.family(gauge);
        family.gauge = gauge;
        family.names = Some(pairs.iter().map(|(n, _)| (*n).to_owned()).collect());
        family.samples = vec![(pairs.iter().map(|(_, v)| (*v).to_owned()).collect(), value)];
    }

    /// Adds to a labelled gauge's child, creating it at 0 first.
    pub fn add_labeled(&mut self, gauge: Gauge, values: &[&str], value: f64) {
        *self.sample(gauge, values) += value;
    }

    /// The value of a gauge's child, if registered.
    pub fn get(&self, gauge: Gauge, values: &[&str]) -> Option<f64> {
        let at = self.position(gauge)?;
        let family = &self.families[at];
        Some(family.samples[family.find(values).ok()?].1)
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
        let mut out = String::with_capacity(4096);
        let mut families: Vec<&Family> = self.families.iter().collect();
        families.sort_unstable_by_key(|family| family.gauge.name);
        for family in families {
            let gauge = family.gauge;
            out.push_str("# HELP ");
            out.push_str(gauge.name);
            out.push(' ');
            push_escaped(&mut out, gauge.help, false);
            out.push_str("\n# TYPE ");
            out.push_str(gauge.name);
            out.push_str(" gauge\n");
            for (values, value) in &family.samples {
                out.push_str(gauge.name);
                if !values.is_empty() {
                    out.push('{');
                    for (i, value) in values.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(match &family.names {
                            Some(names) => &names[i],
                            None => gauge.labels[i],
                        });
                        out.push_str("=\"");
                        push_escaped(&mut out, value, true);
                        out.push('"');
                    }
                    out.push('}');
                }
                out.push(' ');
                push_go_float(&mut out, *value);
                out.push('\n');
            }
        }
        out
    }
}

/// Go's expfmt escaping: backslash and line feed, and in label values
/// (`quote`) the double quote.
fn push_escaped(out: &mut String, text: &str, quote: bool) {
    let mut rest = text;
    loop {
        let bytes = rest.as_bytes();
        let found = if quote {
            memchr::memchr3(b'\\', b'\n', b'"', bytes)
        } else {
            memchr::memchr2(b'\\', b'\n', bytes)
        };
        let Some(at) = found else { break };
        out.push_str(&rest[..at]);
        out.push_str(match bytes[at] {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            _ => "\\\"",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` as expfmt uses it: shortest
/// round-trip digits, exponent form when the exponent is below -4 or at least
/// 6 (with a sign and two digits at least), and the special spellings.
pub fn go_float(value: f64) -> String {
    let mut out = String::new();
    push_go_float(&mut out, value);
    out
}

/// [`go_float`], appended to `out`, with one formatting of the float.
///
/// The digits are core::fmt's shortest round-trip ones. Where two shortest
/// forms are equally near (the double's exact value ends in 5 just past
/// them), core::fmt rounds up and Go to even: 995041352743806.25 prints
/// 9.950413527438063e+14 here and 9.950413527438062e+14 in Go. ryu breaks
/// ties as Go does, but added 12,296 bytes to the binary and saved no
/// instructions that bench/profile.sh could tell from noise (issue 18).
fn push_go_float(out: &mut String, value: f64) {
    if value.is_nan() || value.is_infinite() || value == 0.0 {
        out.push_str(match value {
            v if v.is_nan() => "NaN",
            v if v > 0.0 && v.is_infinite() => "+Inf",
            v if v.is_infinite() => "-Inf",
            _ => "0",
        });
        return;
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "-1.44541248e9".
    let start = out.len();
    let _ = write!(out, "{value:e}");
    let e = start + out[start..].rfind('e').unwrap_or(out.len() - start);
    let exponent: i32 = out[e + 1..].parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        out.truncate(e);
        out.push_str(if exponent < 0 { "e-" } else { "e+" });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push('0');
        }
        out.push_str(itoa::Buffer::new().format(magnitude));
        return;
    }
    // The same digits without an exponent, as `{}` writes them: at most 17
    // significant digits, so they fit on the stack.
    let mut digits = [0u8; 24];
    let mut n = 0;
    for &b in &out.as_bytes()[start..e] {
        if b.is_ascii_digit() && n < digits.len() {
            digits[n] = b;
            n += 1;
        }
    }
    out.truncate(start);
    if value < 0.0 {
        out.push('-');
    }
    let digit = |i: usize| char::from(if i < n { digits[i] } else { b'0' });
    if exponent < 0 {
        out.push_str("0.");
        (1..-exponent).for_each(|_| out.push('0'));
        (0..n).for_each(|i| out.push(digit(i)));
    } else {
        let whole = exponent as usize + 1;
        (0..whole).for_each(|i| out.push(digit(i)));
        if n > whole {
            out.push('.');
            (whole..n).for_each(|i| out.push(digit(i)));
        }
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
            (100000.0, "100000"),
            (999999.0, "999999"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (123.456, "123.456"),
            (-0.5, "-0.5"),
            (-1234567.0, "-1.234567e+06"),
            (1e100, "1e+100"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_float(value), text, "{value}");
        }
    }

    /// Two `format!`s: what this file did before issue 18.
    fn reference(value: f64) -> String {
        let scientific = format!("{value:e}");
        let (mantissa, exponent) = scientific.split_once('e').unwrap();
        let exponent: i32 = exponent.parse().unwrap();
        if (-4..6).contains(&exponent) {
            format!("{value}")
        } else {
            let sign = if exponent < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exponent.abs())
        }
    }

    #[test]
    fn floats_place_core_fmt_s_digits_as_go_does() {
        let mut value = 1.234_567_890_123_456_7e-300_f64;
        let mut values = vec![
            0.1,
            0.2,
            0.3,
            1e-4,
            9.999e-5,
            123_456.7,
            999_999.9,
            1e21,
            5e-324,
            f64::MAX,
        ];
        while value < 1e300 {
            values.extend([value, -value, value * 3.0, 1.0 / value, value.sqrt()]);
            value *= 7.389_056_098_930_65;
        }
        assert!(values.len() > 1000);
        for v in values {
            assert_eq!(go_float(v), reference(v), "{v:e}");
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
