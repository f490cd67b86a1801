//! blackbox_exporter's `query_response` (tcp, and unix in 0.28): the steps of
//! a conversation over the connection, each reading a line that must match
//! `expect` or bytes equal to `expect_bytes`, then sending `send`, then
//! perhaps starting TLS (`starttls`).
//!
//! What blackbox_exporter refuses at load is refused here with its words
//! (`expect` with `expect_bytes`). What would make it panic while probing, and
//! so fail the whole scrape, is refused at load: a second `starttls`, or one
//! on a connection that `tls: true` already secured (the TLS gauges would be
//! registered twice), a second step with `labels` (`probe_expect_info`
//! twice), and a label name the Prometheus client refuses.

use serde::Deserialize;

use super::{
    binary::Payload,
    pattern::{check_template, Pattern},
    validate::Invalid,
};

/// One step of the conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Step")]
pub(crate) struct QueryResponse {
    /// A line to wait for (lines that do not match are skipped).
    pub(crate) expect: Option<Pattern>,
    /// Bytes the next read must return, exactly (0.28).
    pub(crate) expect_bytes: Payload,
    /// `probe_expect_info`'s labels, expanded against the matched line.
    pub(crate) labels: Option<Vec<Label>>,
    /// Sent with a `\n` after it; expanded against the matched line when
    /// the step has `expect`.
    pub(crate) send: Payload,
    /// Start TLS once the step has sent.
    pub(crate) starttls: bool,
}

/// One of `probe_expect_info`'s labels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Label {
    /// The label's name.
    pub(crate) name: String,
    /// Its value, `$1`/`${name}` replaced by the matched line's groups.
    pub(crate) value: String,
}

/// A step as written, checked on its own by [`QueryResponse`]'s `TryFrom`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Step {
    expect: Option<Pattern>,
    expect_bytes: Payload,
    labels: Option<Vec<Label>>,
    send: Payload,
    starttls: bool,
}

impl TryFrom<Step> for QueryResponse {
    type Error = String;

    fn try_from(step: Step) -> Result<Self, String> {
        if step.expect.is_some() && !step.expect_bytes.is_empty() {
            // blackbox_exporter's own words.
            return Err("expect and expect_bytes are mutually exclusive".to_owned());
        }
        let mut names = Vec::new();
        for label in step.labels.iter().flatten() {
            if !legacy_label_name(&label.name) || label.name.starts_with("__") {
                return Err(format!(
                    "labels: {:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
                    label.name
                ));
            }
            if names.contains(&label.name) {
                return Err(format!("labels: {:?} is defined twice", label.name));
            }
            names.push(label.name.clone());
        }
        if step.expect.is_some() {
            check_template(&step.send.0).map_err(|e| format!("send: {e}"))?;
            for label in step.labels.iter().flatten() {
                check_template(label.value.as_bytes())
                    .map_err(|e| format!("labels: {:?}: {e}", label.name))?;
            }
        }
        Ok(Self {
            expect: step.expect,
            expect_bytes: step.expect_bytes,
            labels: step.labels,
            send: step.send,
            starttls: step.starttls,
        })
    }
}

/// The Prometheus label names every client and format accepts.
fn legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The steps of one prober's conversation, against each other and `tls`.
pub(super) fn check(steps: &[QueryResponse], tls: bool) -> Result<(), Invalid> {
    let invalid = |i: usize, message: &str| Invalid {
        field: format!("query_response[{i}]"),
        message: message.to_owned(),
    };
    let mut starttls = None;
    let mut labels = None;
    for (i, step) in steps.iter().enumerate() {
        if step.starttls {
            if tls {
                return Err(invalid(
                    i,
                    "starttls on a connection that `tls: true` already secured (blackbox_exporter panics on it)",
                ));
            }
            if starttls.replace(i).is_some() {
                return Err(invalid(
                    i,
                    "a second starttls (blackbox_exporter panics on it: TLS inside TLS, its gauges registered twice)",
                ));
            }
        }
        if step.expect.is_some() && step.labels.is_some() && labels.replace(i).is_some() {
            return Err(invalid(
                i,
                "labels on a second step (blackbox_exporter panics registering probe_expect_info twice)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    fn tcp(steps: &str) -> Result<Vec<super::QueryResponse>, String> {
        parse(&format!(
            "modules:\n  m:\n    prober: tcp\n    tcp:\n      query_response:\n{steps}"
        ))
        .map(|mut config| config.modules.remove("m").unwrap().tcp.query_response)
    }

    #[test]
    fn steps_read_as_blackbox_exporter_reads_them() {
        let steps = tcp("        - expect: '^SSH-2.0-'\n        - send: 'QUIT'\n          starttls: true\n        - expect_bytes: S\n        - {}\n").unwrap();
        assert_eq!(steps.len(), 4);
        assert!(steps[0].expect.is_some() && steps[0].send.is_empty());
        assert_eq!(steps[1].send.0, b"QUIT");
        assert!(steps[1].starttls);
        assert_eq!(steps[2].expect_bytes.0, b"S");
        assert!(steps[3].expect.is_none() && steps[3].labels.is_none());
        // An empty regexp matches every line, as Go's does; null is no regexp.
        let steps =
            tcp("        - expect: ''\n        - expect: ~\n          send: 1.10\n").unwrap();
        assert!(steps[0].expect.is_some() && steps[1].expect.is_none());
        assert_eq!(steps[1].send.0, b"1.10", "a scalar's text, as written");
        let steps = tcp("        - send: ~\n        - send: ''\n        - send:\n").unwrap();
        assert!(steps.iter().all(|s| s.send.is_empty()));
        // `labels: []` is a list (probe_expect_info without labels), `labels:` none.
        let steps =
            tcp("        - {expect: a, labels: []}\n        - {expect: b, labels: }\n").unwrap();
        assert_eq!(steps[0].labels.as_ref().map(Vec::len), Some(0));
        assert!(steps[1].labels.is_none());
    }

    #[test]
    fn binary_values_are_bytes() {
        // PostgreSQL's SSLRequest: not UTF-8, so only !!binary can write it.
        let steps =
            tcp("        - send: !!binary AAAACATSFi8=\n          expect_bytes: !!binary Uw==\n")
                .unwrap();
        assert_eq!(steps[0].send.0, b"\x00\x00\x00\x08\x04\xd2\x16\x2f");
        assert_eq!(steps[0].expect_bytes.0, b"S");
        for spelling in [
            "!!binary 'aGk='",
            "!!binary \"aGk=\"",
            "!<tag:yaml.org,2002:binary> aGk=",
            "!!binary |\n            aG\n            k=",
            "&a !!binary aGk=",
        ] {
            let steps = tcp(&format!("        - send: {spelling}\n"))
                .unwrap_or_else(|e| panic!("{spelling}: {e}"));
            assert_eq!(steps[0].send.0, b"hi", "{spelling}");
        }
        // Through an alias, as yaml.v3 decodes it.
        let steps = tcp("        - send: &b !!binary aGk=\n        - send: *b\n").unwrap();
        assert_eq!(steps[1].send.0, b"hi");
        // The same words as text are text, and so are other tags.
        let steps = tcp("        - send: 'say !!binary aGk='\n        - send: !foo aGk=\n        - send: aGk= # !!binary\n").unwrap();
        assert_eq!(steps[0].send.0, b"say !!binary aGk=");
        assert_eq!(steps[1].send.0, b"aGk=");
        assert_eq!(steps[2].send.0, b"aGk=");
    }

    #[test]
    fn binary_values_elsewhere_or_unreadable_are_errors() {
        for (steps, expected) in [
            ("        - send: !!binary a\n", "invalid base64"),
            ("        - send: !!binary aGk\n", "invalid base64"),
            ("        - send: !!binary aG k=\n", "invalid base64"),
            (
                "        - expect: !!binary aGk=\n",
                "only query_response's `send` and `expect_bytes`",
            ),
            (
                "        - labels: [{name: a, value: !!binary aGk=}]\n",
                "at line 6",
            ),
            (
                "        - send: \"a\\tb !!binary x\"\n",
                "write that string differently",
            ),
            (
                "        - send: |\n            a !!binary b\n",
                "write that string differently",
            ),
            ("        - send: !lookbin aGk=\n", "`!lookbin`"),
        ] {
            let err = tcp(steps).unwrap_err();
            assert!(err.contains(expected), "{steps:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        for value in ["{a: b}", "[a]", "!foo {a: b}"] {
            let err = tcp(&format!("        - send: {value}\n")).unwrap_err();
            assert!(
                err.contains("query_response[0].send: invalid type:"),
                "{err}"
            );
            assert!(
                err.ends_with(", expected a string at line 6 column 17"),
                "{err}"
            );
        }
        let err = parse("modules:\n  m:\n    prober: http\n    http:\n      body: !!binary aGk=\n")
            .unwrap_err();
        assert!(err.contains("`!!binary` at line 5"), "{err}");
        let err = parse("base: &b {prober: tcp}\nmodules:\n  m:\n    <<: *b\n    tcp: {query_response: [{send: !!binary aGk=}]}\n").unwrap_err();
        assert!(err.contains("merge keys"), "{err}");
    }

    #[test]
    fn what_blackbox_exporter_refuses_or_panics_on_is_an_error_at_load() {
        for (steps, expected) in [
            ("        - {expect: a, expect_bytes: b}\n", "expect and expect_bytes are mutually exclusive"),
            ("        - {expect: a, labels: [{name: 1a, value: x}]}\n", "\"1a\" is not a valid label name"),
            ("        - {expect: a, labels: [{name: a-b, value: x}]}\n", "not a valid label name"),
            ("        - {expect: a, labels: [{name: __a, value: x}]}\n", "not a valid label name"),
            ("        - {expect: a, labels: [{value: x}]}\n", "\"\" is not a valid label name"),
            ("        - {expect: a, labels: [{name: a, value: x}, {name: a, value: y}]}\n", "\"a\" is defined twice"),
            ("        - {expect: a, labels: [{name: a, value: x, extra: 1}]}\n", "unknown field `extra`"),
            ("        - {expect: a, sned: x}\n", "unknown field `sned`"),
            ("        - {expect: '(', send: x}\n", "invalid regexp"),
            ("        - {starttls: true}\n        - {starttls: true}\n", "query_response[1]: a second starttls"),
            ("        - {expect: a, labels: []}\n        - {expect: b, labels: [{name: x, value: y}]}\n", "query_response[1]: labels on a second step"),
            ("        - {expect: '(x)', send: '$1é'}\n", "non-ASCII"),
            ("        - {expect: '(x)', labels: [{name: a, value: '${é}'}]}\n", "non-ASCII"),
        ] {
            let err = tcp(steps).unwrap_err();
            assert!(err.contains(expected), "{steps:?}: {err}");
            assert!(err.contains("modules.m.tcp.query_response"), "{steps:?}: {err}");
        }
        let err = parse("modules:\n  m:\n    prober: tcp\n    tcp:\n      tls: true\n      query_response: [{starttls: true}]\n").unwrap_err();
        assert!(err.contains("modules.m.tcp.query_response[0]: starttls on a connection that `tls: true` already secured"), "{err}");
        let err = parse("modules:\n  m:\n    prober: unix\n    unix:\n      query_response: [{expect: a, expect_bytes: b}]\n").unwrap_err();
        assert!(
            err.contains(
                "modules.m.unix.query_response: expect and expect_bytes are mutually exclusive"
            ),
            "{err}"
        );
        assert!(err.contains("line 5"), "{err}");
        // Labels without expect are never used, and a `$` name in ASCII, or
        // a non-ASCII character after a name, is fine.
        tcp("        - {labels: [{name: a, value: x}]}\n        - {expect: b, labels: [{name: a, value: x}]}\n").unwrap();
        tcp("        - {expect: '(x)', send: '${1}é $1 é$$é'}\n").unwrap();
    }
}
