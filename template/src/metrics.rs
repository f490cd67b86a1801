//! The service's own metrics, served as OpenMetrics text on `/metrics`.
//!
//! Every label value comes from a fixed set (route templates of the router,
//! status classes), so no client can grow the number of series.

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// What Prometheus negotiates (it asks for OpenMetrics first).
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prefix of every metric name: rename it with the crate.
const PREFIX: &str = "my_service";

/// Commit the binary was built from, when the build sets `GIT_REVISION`.
const REVISION: &str = match option_env!("GIT_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

/// Labels of the build-info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
}

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The route's template (`/healthz`), or `unmatched`: never the raw path.
    pub(crate) route: String,
    /// `1xx` to `5xx`.
    pub(crate) status: &'static str,
}

/// The registry and the handles that update it.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests answered, by route and status class.
    pub(crate) http_requests: Family<RequestLabels, Counter>,
}

impl Metrics {
    /// A registry holding every metric, build info already set.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: REVISION,
            })
            .set(1);
        registry.register(
            "build_info",
            "The version and revision of the running binary, always 1",
            build_info,
        );
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status class",
            http_requests.clone(),
        );
        Self {
            registry,
            http_requests,
        }
    }

    /// The OpenMetrics exposition of everything registered.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        // Writing to a String cannot fail; an Err would be an encoder bug, and
        // a partial page still beats none.
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The `status` label: the class, not the code, to keep the series few.
pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_and_the_counter_are_exposed() {
        let metrics = Metrics::new();
        metrics
            .http_requests
            .get_or_create(&RequestLabels {
                route: "/healthz".to_owned(),
                status: status_class(200),
            })
            .inc();
        let text = metrics.render();
        let version = env!("CARGO_PKG_VERSION");
        assert!(text.contains(&format!(
            "my_service_build_info{{version=\"{version}\",revision=\"{REVISION}\"}} 1\n"
        )));
        assert!(text.contains("# TYPE my_service_http_requests counter\n"));
        assert!(
            text.contains("my_service_http_requests_total{route=\"/healthz\",status=\"2xx\"} 1\n")
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn status_codes_fall_into_five_classes() {
        let classes: Vec<_> = [101, 200, 204, 301, 404, 499, 500, 503]
            .into_iter()
            .map(status_class)
            .collect();
        assert_eq!(
            classes,
            ["1xx", "2xx", "2xx", "3xx", "4xx", "4xx", "5xx", "5xx"]
        );
    }
}
