//! One probe's own log: every step a prober logs (resolution, connection,
//! request, response, the check that failed, the outcome), kept for
//! `/probe?debug=true` and `lookout probe`, as blackbox_exporter's per-probe
//! logger keeps them for its debug output.
//!
//! The probers log through `tracing` as everywhere else; a [`ProbeLog`]
//! attached to a probe's span collects the events inside that span at every
//! level, whatever `RUST_LOG` lets through to stderr. The layer that does it
//! is part of every subscriber [`super::logging`] builds; a probe without a
//! log attached costs a span lookup per debug event and nothing else.
//!
//! A target controls how much its probe logs (a DNS server can answer with
//! a stream of replies that are each ignored, and logged), so the log is
//! bounded: at most [`MAX_LINES`] lines and [`MAX_BYTES`] bytes, each line
//! at most [`MAX_LINE_BYTES`]. What does not fit is counted, and the last
//! line (the outcome) is always kept.

use std::{
    fmt::{self, Write as _},
    sync::{Arc, Mutex, PoisonError},
};

use tracing::{
    field::{Field, Visit},
    Event, Level, Metadata, Subscriber,
};
use tracing_subscriber::{
    fmt::{format::Writer, time::FormatTime as _},
    layer::{Context, Filter, Layer},
    registry::LookupSpan,
    Registry,
};

/// Most lines one probe's log keeps.
pub const MAX_LINES: usize = 1000;
/// Most bytes one probe's log keeps.
pub const MAX_BYTES: usize = 64 << 10;
/// Longest line kept; a longer one is cut, and says so.
pub const MAX_LINE_BYTES: usize = 4 << 10;

/// The log of one probe; clones share it.
#[derive(Debug, Clone)]
pub struct ProbeLog {
    buffer: Arc<Mutex<Buffer>>,
    /// Module and target, on every line.
    labels: Arc<(String, String)>,
}

#[derive(Debug, Default)]
struct Buffer {
    lines: Vec<String>,
    bytes: usize,
    /// Lines that did not fit.
    dropped: usize,
    /// The most recent line, kept when it did not fit.
    last_dropped: Option<String>,
    /// The most recent event as one line without time and level.
    last_event: Option<String>,
}

impl ProbeLog {
    /// An empty log for a probe of `target` with `module`.
    pub fn new(module: &str, target: &str) -> Self {
        Self {
            buffer: Arc::default(),
            labels: Arc::new((module.to_owned(), target.to_owned())),
        }
    }

    /// The span of a probe, made by `make`, with `log` (if any) attached:
    /// the probe-log layer keeps the span only then, so a probe without a
    /// log costs it nothing.
    pub fn span(log: Option<&Self>, make: impl FnOnce() -> tracing::Span) -> tracing::Span {
        WANTED.with(|wanted| wanted.set(log.is_some()));
        let span = make();
        WANTED.with(|wanted| wanted.set(false));
        if let Some(log) = log {
            log.attach(&span);
        }
        span
    }

    /// Collects the events of `span` (and the spans inside it) from now on.
    /// Does nothing when the span is disabled or the subscriber does not
    /// keep spans in a [`Registry`] (no [`layer`] then either).
    fn attach(&self, span: &tracing::Span) {
        span.with_subscriber(|(id, dispatch)| {
            if let Some(span) = dispatch
                .downcast_ref::<Registry>()
                .and_then(|registry| registry.span(id))
            {
                span.extensions_mut().insert(self.clone());
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, line: String, event: String) {
        let mut buffer = self.lock();
        buffer.last_event = Some(event);
        if buffer.lines.len() < MAX_LINES && buffer.bytes + line.len() <= MAX_BYTES {
            buffer.bytes += line.len();
            buffer.lines.push(line);
        } else {
            buffer.dropped += 1;
            buffer.last_dropped = Some(line);
        }
    }

    /// The lines, each ending in a newline; when some did not fit, a line
    /// saying how many, then the last one.
    pub fn render(&self) -> String {
        let buffer = self.lock();
        let mut out = String::with_capacity(buffer.bytes + 256);
        for line in &buffer.lines {
            out.push_str(line);
            out.push('\n');
        }
        if buffer.dropped > 0 {
            let _ = writeln!(
                out,
                "[{} more lines not kept: a probe log keeps {MAX_LINES} lines and {MAX_BYTES} bytes; the last one follows]",
                buffer.dropped
            );
            if let Some(last) = &buffer.last_dropped {
                out.push_str(last);
                out.push('\n');
            }
        }
        out
    }

    /// The most recent event, as `message (field: value, ...)`: the reason
    /// a check gave for failing the probe.
    pub fn last_event(&self) -> Option<String> {
        self.lock().last_event.clone()
    }
}

/// The layer that fills the [`ProbeLog`]s attached to probe spans, with its
/// filter: lookout's events up to DEBUG inside such a span, and the probe
/// spans themselves, whatever the filter of the other layers says.
pub(crate) fn layer<S>() -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    Collect.with_filter(InProbe)
}

/// Whether a span or event can belong in a probe log.
fn wanted(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("lookout")
        && *metadata.level() <= Level::DEBUG
        && (metadata.is_event() || metadata.name() == "probe")
}

thread_local! {
    /// Set while [`ProbeLog::span`] makes the span of a probe with a log.
    static WANTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct InProbe;

impl<S> Filter<S> for InProbe
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        if !wanted(metadata) {
            return false;
        }
        if metadata.is_span() {
            return WANTED.with(std::cell::Cell::get);
        }
        cx.lookup_current().is_some_and(|span| {
            span.scope()
                .any(|s| s.extensions().get::<ProbeLog>().is_some())
        })
    }

    fn callsite_enabled(
        &self,
        metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if wanted(metadata) {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }
}

struct Collect;

impl<S> Layer<S> for Collect
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        let Some(log) = cx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<ProbeLog>().cloned())
        }) else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        let mut line = String::with_capacity(128);
        line.push_str("time=");
        let _ = tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut line));
        let _ = write!(
            line,
            " level={level} msg={} module={} target={}",
            logfmt(&fields.message),
            logfmt(&log.labels.0),
            logfmt(&log.labels.1)
        );
        for (key, value) in &fields.pairs {
            let _ = write!(line, " {key}={}", logfmt(value));
        }
        let mut summary = fields.message.clone();
        if !fields.pairs.is_empty() {
            let pairs: Vec<String> = fields
                .pairs
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = write!(summary, " ({})", pairs.join(", "));
        }
        log.push(cut(line), cut(summary));
    }
}

/// An event's message and fields, as text.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.pairs.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.pairs.push((field.name(), text));
        }
    }
}

/// A logfmt value as Go's slog writes it: quoted when empty or when it
/// holds a space, `=`, a quote or a character that is not printable.
fn logfmt(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '=' && c != '"');
    if plain {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

/// At most [`MAX_LINE_BYTES`], cut on a character boundary, and one line.
fn cut(mut line: String) -> String {
    if line.contains(['\n', '\r']) {
        line = line.replace(['\n', '\r'], " ");
    }
    if line.len() > MAX_LINE_BYTES {
        let mut end = MAX_LINE_BYTES;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str(" [cut]");
    }
    line
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Runs `f` under a subscriber with the probe-log layer only, inside a
    /// probe span with `log` attached (or none).
    fn in_probe(log: Option<&ProbeLog>, f: impl FnOnce()) {
        let subscriber = Registry::default().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            let span = ProbeLog::span(log, || {
                tracing::debug_span!("probe", module = "m", target = "t")
            });
            span.in_scope(f);
        });
    }

    #[test]
    fn events_inside_the_probe_span_are_kept_at_every_level_as_logfmt() {
        let log = ProbeLog::new("http_2xx", "http://example.org/a b");
        in_probe(Some(&log), || {
            tracing::debug!(status_code = 404, "Received HTTP response");
            tracing::info!(reason = "x=\"y\"", "Probe failed");
        });
        let text = log.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("time="), "{text}");
        assert!(
            lines[0].ends_with(
                " level=DEBUG msg=\"Received HTTP response\" module=http_2xx target=\"http://example.org/a b\" status_code=404"
            ),
            "{text}"
        );
        assert!(
            lines[1].ends_with(" level=INFO msg=\"Probe failed\" module=http_2xx target=\"http://example.org/a b\" reason=\"x=\\\"y\\\"\""),
            "{text}"
        );
        assert_eq!(
            log.last_event().as_deref(),
            Some("Probe failed (reason: x=\"y\")")
        );
    }

    #[test]
    fn events_outside_a_probe_with_a_log_are_not_kept() {
        let log = ProbeLog::new("m", "t");
        in_probe(None, || tracing::debug!("elsewhere"));
        let subscriber = Registry::default().with(layer());
        tracing::subscriber::with_default(subscriber, || tracing::debug!("no span at all"));
        assert_eq!(log.render(), "");
        assert_eq!(log.last_event(), None);
    }

    #[test]
    fn a_flood_of_events_keeps_the_log_bounded_and_its_last_line() {
        let log = ProbeLog::new("m", "t");
        let long = "x".repeat(10_000);
        in_probe(Some(&log), || {
            for id in 0..5_000 {
                tracing::debug!(id, "ignoring a reply with another ID");
            }
            tracing::debug!(detail = %long, "a line longer than a line may be");
            tracing::debug!(duration_seconds = 1.5, "Probe failed");
        });
        let text = log.render();
        let lines: Vec<&str> = text.lines().collect();
        // The kept lines, the note, the last line.
        assert!(lines.len() <= MAX_LINES + 2, "{} lines", lines.len());
        assert!(
            text.len() <= MAX_BYTES + 2 * MAX_LINE_BYTES,
            "{} bytes",
            text.len()
        );
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE_BYTES + 10));
        let note = lines[lines.len() - 2];
        assert!(note.contains("more lines not kept"), "{note}");
        assert!(
            lines[lines.len() - 1].contains("msg=\"Probe failed\""),
            "{text}"
        );

        // One long line alone is cut, and says so.
        let log = ProbeLog::new("m", "t");
        in_probe(Some(&log), || tracing::debug!(detail = %long, "long"));
        let text = log.render();
        assert!(text.len() < MAX_LINE_BYTES + 16, "{}", text.len());
        assert!(text.trim_end().ends_with("[cut]"), "{text}");
    }

    #[test]
    fn a_line_never_breaks_into_two() {
        let log = ProbeLog::new("m", "t\nforged=1");
        in_probe(Some(&log), || {
            tracing::debug!(reason = "a\nb\r\nc", "multi\nline");
        });
        let text = log.render();
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
