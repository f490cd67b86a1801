//! `--log.format=logfmt`: one line of `key=value` pairs per event, as
//! blackbox_exporter writes them (Go's slog text handler, through promslog):
//! `time=... level=INFO msg="listening" listener=probe addr=0.0.0.0:9115`.
//!
//! A value is quoted when it is empty or holds a space, `=`, `"` or a
//! control character; inside quotes `\` and `"` are escaped and control
//! characters written as `\n`, `\t` or `\u{..}`, so an event is always one
//! line whatever a target sent.

use std::fmt::{self, Write as _};

use tracing::{
    field::{Field, Visit},
    Event, Subscriber,
};
use tracing_subscriber::{
    fmt::{
        format::{FormatEvent, FormatFields, Writer},
        time::{FormatTime, SystemTime},
        FmtContext,
    },
    registry::LookupSpan,
};

/// The logfmt event format.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        write!(writer, "time={time} level={}", event.metadata().level())?;
        write!(writer, " msg={}", Value(&fields.message))?;
        writer.write_str(&fields.rest)?;
        writeln!(writer)
    }
}

/// An event's message and its other fields, already formatted.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            // Writing into a String cannot fail.
            let _ = write!(self.rest, " {}={}", Key(field.name()), Value(&value));
        }
    }
}

/// A key: anything but the characters that would end it.
struct Key<'a>(&'a str);

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            f.write_char(
                if c == '=' || c == '"' || c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                },
            )?;
        }
        Ok(())
    }
}

/// A value, quoted and escaped when it must be.
struct Value<'a>(&'a str);

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let plain = !text.is_empty()
            && !text
                .chars()
                .any(|c| c == '=' || c == '"' || c == '\\' || c.is_whitespace() || c.is_control());
        if plain {
            return f.write_str(text);
        }
        f.write_char('"')?;
        for c in text.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_they_must_be() {
        for (value, written) in [
            ("listening", "listening"),
            ("0.0.0.0:9115", "0.0.0.0:9115"),
            ("", "\"\""),
            ("two words", "\"two words\""),
            ("a=b", "\"a=b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("back\\slash", "\"back\\\\slash\""),
            (
                "line\nbreak\r\tand\u{7}bell",
                "\"line\\nbreak\\r\\tand\\u{7}bell\"",
            ),
        ] {
            assert_eq!(Value(value).to_string(), written, "{value:?}");
        }
        assert_eq!(Key("a b=c").to_string(), "a_b_c");
    }

    #[test]
    fn an_event_is_one_line_of_pairs() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(Logfmt)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(listener = "probe", addr = %"0.0.0.0:9115", n = 3, "listening\nnow");
        });
        let line = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(line.starts_with("time=") && line.ends_with('\n'), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(
            line.contains(
                " level=WARN msg=\"listening\\nnow\" listener=probe addr=0.0.0.0:9115 n=3\n"
            ),
            "{line}"
        );
    }
}
