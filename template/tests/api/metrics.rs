use std::collections::HashMap;

use crate::helpers::spawn_ready_app;

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status_class() {
    let app = spawn_ready_app().await;
    app.get("/healthz").await;
    app.get("/no/such/path?x=1").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    for line in [
        "my_service_http_requests_total{route=\"/healthz\",status=\"2xx\"} 1\n",
        "my_service_http_requests_total{route=\"unmatched\",status=\"4xx\"} 1\n",
    ] {
        assert!(
            metrics.body.contains(line),
            "{line} missing:\n{}",
            metrics.body
        );
    }
    // The raw path never becomes a label value.
    assert!(!metrics.body.contains("no/such/path"), "{}", metrics.body);
}

#[tokio::test]
async fn build_info_is_1_with_the_version() {
    let app = spawn_ready_app().await;
    let body = app.get("/metrics").await.body;
    let version = env!("CARGO_PKG_VERSION");
    let build_info = body
        .lines()
        .find(|l| l.starts_with("my_service_build_info{"))
        .unwrap_or_else(|| panic!("no build info:\n{body}"));
    assert!(build_info.starts_with(&format!(
        "my_service_build_info{{version=\"{version}\",revision=\""
    )));
    assert!(build_info.ends_with("\"} 1"), "{build_info}");
}

#[tokio::test]
async fn metrics_are_well_formed_openmetrics() {
    let app = spawn_ready_app().await;
    app.get("/healthz").await;
    let body = app.get("/metrics").await.body;
    let families = check_openmetrics(&body).unwrap_or_else(|e| panic!("{e}:\n{body}"));
    assert_eq!(families["my_service_build_info"], "gauge");
    assert_eq!(families["my_service_http_requests"], "counter");
}

/// The subset of the OpenMetrics text format (https://prometheus.io/docs/specs/om/open_metrics_spec/)
/// the service emits: each family's `# HELP` and `# TYPE` before its samples, every sample
/// named after the family declared last (counters with `_total`), label values quoted, the
/// value a number, `# EOF` last. Returns each family's type.
fn check_openmetrics(text: &str) -> Result<HashMap<String, String>, String> {
    let mut families = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let body = text.strip_suffix("# EOF\n").ok_or("no final # EOF")?;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').ok_or(format!("bad HELP: {line}"))?;
            if help.is_empty() || families.contains_key(name) {
                return Err(format!("empty or repeated HELP: {line}"));
            }
            current = None;
            families.insert(name.to_owned(), String::new());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
            if ![
                "counter",
                "gauge",
                "histogram",
                "info",
                "stateset",
                "unknown",
            ]
            .contains(&kind)
            {
                return Err(format!("unknown type: {line}"));
            }
            let declared = families
                .get_mut(name)
                .ok_or(format!("TYPE before HELP: {line}"))?;
            *declared = kind.to_owned();
            current = Some((name.to_owned(), kind.to_owned()));
        } else if line.starts_with('#') {
            return Err(format!("unexpected comment: {line}"));
        } else {
            let (name, kind) = current
                .as_ref()
                .ok_or(format!("sample outside a family: {line}"))?;
            let (series, value) = line.rsplit_once(' ').ok_or(format!("no value: {line}"))?;
            value
                .parse::<f64>()
                .map_err(|_| format!("bad value: {line}"))?;
            let sample = series.split_once('{').map_or(series, |(n, _)| n);
            let expected = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.clone()
            };
            if sample != expected {
                return Err(format!("sample {sample} in family {name}: {line}"));
            }
            if let Some(labels) = series.strip_prefix(sample) {
                if !labels.is_empty() {
                    check_labels(labels).map_err(|e| format!("{e}: {line}"))?;
                }
            }
        }
    }
    Ok(families)
}

/// `{name="value",...}`: valid names, quoted values (none of ours holds a comma).
fn check_labels(labels: &str) -> Result<(), String> {
    let inner = labels
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .ok_or("labels not in braces")?;
    for pair in inner.split(',') {
        let (name, value) = pair.split_once('=').ok_or("label without =")?;
        let valid_name = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        if !(valid_name && quoted) {
            return Err(format!("bad label {pair}"));
        }
    }
    Ok(())
}
