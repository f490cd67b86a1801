//! The YAML under `Config::parse`, read as Go's yaml.v3 (blackbox_exporter's
//! parser) reads it where serde_yaml_ng differs:
//!
//! - a key defined twice in one mapping, at any depth, is an error naming the
//!   key, the mapping's path and both lines (serde_yaml_ng keeps the last
//!   value for a map, and names no line for a struct);
//! - merge keys (`<<: *base`, `<<: [*a, *b]`) merge in every mapping: the
//!   keys written in the mapping win, then the merged mappings in order,
//!   each with its own merges applied first; a quoted `"<<"` is a plain key;
//! - aliases may expand the document to at most one value per byte of its
//!   text plus [`ALIAS_ALLOWANCE`], so an alias bomb fails fast;
//! - a `!!binary` value is bytes (base64-decoded), where bytes are read: see
//!   `binary.rs`.
//!
//! A file without merge keys is deserialized straight from its text, so every
//! error has its line and column. A file with merge keys is read into a tree
//! (each scalar as written, so `1.10` stays `1.10` in a string), merged, and
//! written out as plain YAML, one key per line, that the same deserializer
//! reads; its errors are mapped back to the line of the key in the file, or
//! say that the line is unknown. Either way an error is one line: serde's
//! message with the key path, then the position. The layer knows no schema:
//! the caller's [`Explain`] rewords the schema's own errors.

use std::{
    collections::{HashMap, HashSet},
    fmt::{self, Write as _},
};

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, Visitor};

use super::binary;

/// The schema's own wording for one of its errors (serde's message, one line,
/// without the position), or `None` to keep serde's.
pub(super) type Explain = fn(&str) -> Option<String>;

/// Values the aliases of a file may add beyond one per byte of its text
/// (a file without aliases has fewer values than bytes): room for a
/// thousand modules sharing a block of forty values, while each value an
/// alias repeats is built in full (a compiled regexp takes kilobytes).
const ALIAS_ALLOWANCE: usize = 100_000;

/// Where a line of the written-out document comes from: the line of the
/// file, and whether a merge key brought it in.
type Origin = Option<(usize, bool)>;

/// The document in `text`, or its error as one line.
pub(super) fn read<T: DeserializeOwned>(text: &str, explain: Explain) -> Result<T, String> {
    let mut scan = Scan {
        text,
        budget: text.len() + ALIAS_ALLOWANCE,
        kinds: Vec::new(),
        merges: false,
        tagged: false,
    };
    (&mut scan)
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .map_err(|e| explain_yaml_error(&e, None, explain))?;
    // `!!binary` tags made visible, lines and columns unchanged.
    let binary = binary::rewrite(text)?;
    if let Some(binary) = &binary {
        let text = &binary.text;
        if scan.merges {
            return Err("YAML tags (`!!binary`) cannot be combined with merge keys (`<<`)".into());
        }
        let (value, decoded) = binary::counting(|| serde_yaml_ng::from_str(text));
        let value = value.map_err(|e| explain_yaml_error(&e, None, explain))?;
        if decoded != binary.tags {
            let lines: Vec<String> = binary
                .at
                .iter()
                .map(|&at| line_of(text, at).to_string())
                .collect();
            return Err(format!(
                "a `!!binary` value stands where lookout does not read one (only query_response's `send` and `expect_bytes` take bytes; `!!binary` at line {})",
                lines.join(", ")
            ));
        }
        return Ok(value);
    }
    if !scan.merges {
        let (value, decoded) = binary::counting(|| serde_yaml_ng::from_str(text));
        if decoded > 0 {
            return Err(binary::RESERVED.to_owned());
        }
        return value.map_err(|e| explain_yaml_error(&e, None, explain));
    }
    if scan.tagged {
        return Err("YAML tags (`!name`) cannot be combined with merge keys (`<<`)".into());
    }
    let mut build = Build {
        text,
        kinds: scan.kinds.into_iter(),
    };
    let tree = (&mut build)
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .map_err(|e| explain_yaml_error(&e, None, explain))?;
    let lines = Lines::new(text);
    let tree = merge(tree, &mut Vec::new(), &lines)?;
    let mut out = Writer {
        lines: &lines,
        yaml: String::new(),
        origins: Vec::new(),
    };
    out.root(&tree);
    serde_yaml_ng::from_str(&out.yaml)
        .map_err(|e| explain_yaml_error(&e, Some(&out.origins), explain))
}

/// serde's message, one line, in the schema's own words where it has them
/// (`explain`), then the position. `origins` maps the lines of a document
/// [`read`] wrote back to the lines of the file; without it the error's own
/// position is the file's.
fn explain_yaml_error(
    error: &serde_yaml_ng::Error,
    origins: Option<&[Origin]>,
    explain: Explain,
) -> String {
    let mut message = one_line(&error.to_string());
    let mut location = String::new();
    if let Some(l) = error.location() {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(bare) = message.strip_suffix(&suffix) {
            message = bare.to_owned();
        }
        location = match origins {
            None => suffix,
            Some(origins) => locate(origins, l.line()),
        };
    }
    format!("{}{location}", explain_message(&message, explain))
}

/// [`explain_yaml_error`] on a message without its position.
fn explain_message(message: &str, explain: Explain) -> String {
    match message {
        "repetition limit exceeded" => {
            "aliases repeat the document too often (repetition limit exceeded)".to_owned()
        }
        "recursion limit exceeded" => {
            "nested too deep, or an alias inside its own anchor (recursion limit exceeded)"
                .to_owned()
        }
        _ => explain(message).unwrap_or_else(|| message.to_owned()),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The position to print for an error on `line` (1-based) of a
/// written-out document.
fn locate(origins: &[Origin], line: usize) -> String {
    match origins.get(line.saturating_sub(1)) {
        Some(Some((line, false))) => format!(" at line {line}"),
        Some(Some((line, true))) => format!(" at line {line} (brought in by a merge key `<<`)"),
        _ => " (line unknown: the file uses merge keys `<<`)".to_owned(),
    }
}

/// The 1-based line of byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    Lines::new(text).of(at)
}

/// Where the lines of a text end, to find the line of a byte quickly.
/// Line breaks are libyaml's: `\r\n`, `\n`, `\r`, NEL, LS and PS.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        let mut breaks = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            let after_cr = c == '\r' && chars.peek().is_some_and(|&(_, next)| next == '\n');
            if matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') && !after_cr {
                breaks.push(at);
            }
        }
        Self(breaks)
    }

    /// The 1-based line of byte `at`.
    fn of(&self, at: usize) -> usize {
        self.0.partition_point(|&newline| newline < at) + 1
    }
}

/// Where `part`, a string the parser lent out of `text`, starts in it.
fn offset_in(text: &str, part: &str) -> Option<usize> {
    let at = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    (at + part.len() <= text.len()).then_some(at)
}

/// What a value is, as the first pass saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string scalar.
    Text,
    /// A number, boolean or null, whose text the second pass reads.
    Plain,
    /// A mapping.
    Map,
    /// A sequence.
    Seq,
}

/// A mapping key as written.
#[derive(Debug)]
struct Key {
    text: String,
    /// Byte offset in the file, when the parser lent the key out of it
    /// (always for plain and simple quoted keys).
    at: Option<usize>,
    /// A plain `<<`.
    merge: bool,
}

/// Reads one mapping key as text; with `seen`, refuses one defined
/// before in the same mapping, at the key's own position.
struct KeySeed<'a, 't> {
    text: &'t str,
    seen: Option<&'a mut HashMap<String, Option<usize>>>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, 'de> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, 'de> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key, E> {
        let at = offset_in(self.text, key);
        self.key(key, at)
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        self.key(key, None)
    }
}

impl KeySeed<'_, '_> {
    fn key<E: de::Error>(self, key: &str, at: Option<usize>) -> Result<Key, E> {
        if let Some(seen) = self.seen {
            if let Some(first) = seen.insert(key.to_owned(), at) {
                let first = first
                    .map(|at| format!(" (first at line {})", line_of(self.text, at)))
                    .unwrap_or_default();
                return Err(E::custom(format!(
                    "duplicate key `{}`{first}",
                    key.escape_debug()
                )));
            }
        }
        // A quoted "<<" is an ordinary key, as in Go: the parser lends
        // out the text inside the quotes.
        let quoted = at
            .and_then(|at| at.checked_sub(1))
            .is_some_and(|before| matches!(self.text.as_bytes()[before], b'"' | b'\''));
        Ok(Key {
            merge: key == "<<" && at.is_some() && !quoted,
            text: key.to_owned(),
            at,
        })
    }
}

/// First pass over the whole document, aliases expanded: refuses
/// duplicate keys and alias bombs, finds merge keys and tags, and
/// records the kind of every value for the second pass.
struct Scan<'t> {
    text: &'t str,
    /// Values (keys included) still allowed.
    budget: usize,
    kinds: Vec<Kind>,
    merges: bool,
    tagged: bool,
}

impl Scan<'_> {
    fn spend<E: de::Error>(&mut self) -> Result<(), E> {
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            E::custom(format!(
                "aliases expand the file to more than {ALIAS_ALLOWANCE} values beyond its size (an alias bomb?)"
            ))
        })?;
        Ok(())
    }

    fn value<E: de::Error>(&mut self, kind: Kind) -> Result<(), E> {
        self.spend()?;
        self.kinds.push(kind);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for &mut Scan<'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Scan<'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.value(Kind::Plain)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.value(Kind::Plain)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.value(Kind::Plain)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.value(Kind::Plain)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.value(Kind::Plain)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.value(Kind::Plain)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.value(Kind::Plain)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.value(Kind::Plain)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.value(Kind::Text)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.value(Kind::Seq)?;
        while seq.next_element_seed(&mut *self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.value(Kind::Map)?;
        let mut seen = HashMap::new();
        loop {
            let seed = KeySeed {
                text: self.text,
                seen: Some(&mut seen),
            };
            let Some(key) = map.next_key_seed(seed)? else {
                return Ok(());
            };
            self.spend()?;
            self.merges |= key.merge;
            map.next_value_seed(&mut *self)?;
        }
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A `!tag`: serde_yaml_ng hands the tagged value over as a variant.
        self.tagged = true;
        let (IgnoredAny, value) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(value, self)
    }
}

/// A value of the document, each scalar as written.
#[derive(Debug)]
enum Node {
    Scalar {
        text: String,
        /// A string, written out quoted; otherwise written as it was.
        quoted: bool,
        at: Option<usize>,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug)]
struct Entry {
    key: Key,
    value: Node,
    /// Brought in by a merge key.
    merged: bool,
}

/// Second pass, only for a file with merge keys: the tree, with every
/// scalar read as text (the first pass knows which values are scalars).
struct Build<'t, I> {
    text: &'t str,
    kinds: I,
}

/// A scalar as text.
struct ScalarSeed<'t> {
    text: &'t str,
    quoted: bool,
}

impl<'de> Visitor<'de> for ScalarSeed<'de> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Node, E> {
        Ok(Node::Scalar {
            at: offset_in(self.text, text),
            text: text.to_owned(),
            quoted: self.quoted,
        })
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Node, E> {
        Ok(Node::Scalar {
            text: text.to_owned(),
            quoted: self.quoted,
            at: None,
        })
    }
}

impl<'de, I: Iterator<Item = Kind>> DeserializeSeed<'de> for &mut Build<'de, I> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        let text = self.text;
        match self.kinds.next() {
            Some(kind @ (Kind::Text | Kind::Plain)) => deserializer.deserialize_str(ScalarSeed {
                text,
                quoted: kind == Kind::Text,
            }),
            Some(Kind::Map) => deserializer.deserialize_map(self),
            Some(Kind::Seq) => deserializer.deserialize_seq(self),
            None => Err(de::Error::custom("the document changed between two reads")),
        }
    }
}

impl<'de, I: Iterator<Item = Kind>> Visitor<'de> for &mut Build<'de, I> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or a sequence")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(&mut *self)? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        let seed = |text| KeySeed { text, seen: None };
        while let Some(key) = map.next_key_seed(seed(self.text))? {
            let value = map.next_value_seed(&mut *self)?;
            entries.push(Entry {
                key,
                value,
                merged: false,
            });
        }
        Ok(Node::Map(entries))
    }
}

/// `path` as serde_yaml_ng prints it (`modules.m.http.headers`, `[0]`).
fn render(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(&part.escape_debug().to_string());
    }
    out
}

/// Applies the merge keys of `node` and everything under it, as yaml.v3.
fn merge(node: Node, path: &mut Vec<String>, lines: &Lines) -> Result<Node, String> {
    match node {
        Node::Scalar { .. } => Ok(node),
        Node::Seq(items) => {
            let mut merged = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                path.push(format!("[{i}]"));
                merged.push(merge(item, path, lines)?);
                path.pop();
            }
            Ok(Node::Seq(merged))
        }
        Node::Map(entries) => merge_map(entries, path, lines).map(Node::Map),
    }
}

/// The entries of a mapping once its merge key is applied: its own
/// keys, then those of each merged mapping (itself merged first) that
/// are not there yet.
fn merge_map(
    entries: Vec<Entry>,
    path: &mut Vec<String>,
    lines: &Lines,
) -> Result<Vec<Entry>, String> {
    let mut out = Vec::with_capacity(entries.len());
    let mut keys = HashSet::new();
    let mut sources = None;
    for entry in entries {
        if entry.key.merge {
            // Only one: a second `<<` is a duplicate key.
            sources = Some((entry.key, entry.value));
            continue;
        }
        path.push(entry.key.text.clone());
        let value = merge(entry.value, path, lines)?;
        path.pop();
        keys.insert(entry.key.text.clone());
        out.push(Entry { value, ..entry });
    }
    let Some((key, value)) = sources else {
        return Ok(out);
    };
    let wrong = || {
        let at = key
            .at
            .map(|at| format!(" at line {}", lines.of(at)))
            .unwrap_or_default();
        let path = match render(path) {
            p if p.is_empty() => p,
            p => format!("{p}: "),
        };
        format!("{path}a merge key `<<` needs a mapping or a list of mappings{at}")
    };
    let sources = match value {
        Node::Map(entries) => vec![entries],
        Node::Seq(items) => items
            .into_iter()
            .map(|item| match item {
                Node::Map(entries) => Ok(entries),
                _ => Err(wrong()),
            })
            .collect::<Result<_, _>>()?,
        Node::Scalar { .. } => return Err(wrong()),
    };
    // Earlier mappings in the list win over later ones.
    for source in sources {
        for entry in merge_map(source, path, lines)? {
            if keys.insert(entry.key.text.clone()) {
                out.push(Entry {
                    merged: true,
                    ..entry
                });
            }
        }
    }
    Ok(out)
}

/// Writes a merged tree out as block YAML, one key or item per line,
/// strings double-quoted with escapes, other scalars as written.
struct Writer<'l> {
    lines: &'l Lines,
    yaml: String,
    /// For each line written, where it comes from.
    origins: Vec<Origin>,
}

impl Writer<'_> {
    fn line(&mut self, indent: usize, line: fmt::Arguments<'_>, at: Option<usize>, merged: bool) {
        let _ = writeln!(self.yaml, "{:indent$}{line}", "");
        self.origins.push(at.map(|at| (self.lines.of(at), merged)));
    }

    fn root(&mut self, node: &Node) {
        match inline(node) {
            Some(scalar) => self.line(0, format_args!("{scalar}"), None, false),
            None => self.block(node, 0, false),
        }
    }

    fn block(&mut self, node: &Node, indent: usize, merged: bool) {
        match node {
            Node::Map(entries) => {
                for entry in entries {
                    let merged = merged || entry.merged;
                    let key = quote(&entry.key.text);
                    let value_at = scalar_at(&entry.value);
                    // A value on a line of its own in the file gets one
                    // here too, so its errors name its line, not the key's.
                    let apart = match (entry.key.at, value_at) {
                        (Some(key), Some(value)) => self.lines.of(key) != self.lines.of(value),
                        _ => false,
                    };
                    match inline(&entry.value) {
                        Some(value) if apart && !value.is_empty() => {
                            self.line(indent, format_args!("{key}:"), entry.key.at, merged);
                            self.line(indent + 2, format_args!("{value}"), value_at, merged);
                        }
                        Some(value) => {
                            self.line(indent, format_args!("{key}: {value}"), entry.key.at, merged);
                        }
                        None => {
                            self.line(indent, format_args!("{key}:"), entry.key.at, merged);
                            self.block(&entry.value, indent + 2, merged);
                        }
                    }
                }
            }
            Node::Seq(items) => {
                for item in items {
                    let at = first_at(item);
                    match inline(item) {
                        Some(value) => self.line(indent, format_args!("- {value}"), at, merged),
                        None => {
                            self.line(indent, format_args!("-"), at, merged);
                            self.block(item, indent + 2, merged);
                        }
                    }
                }
            }
            Node::Scalar { .. } => {}
        }
    }
}

/// Where a scalar is in the file, when the parser lent it out of it.
fn scalar_at(node: &Node) -> Option<usize> {
    match node {
        Node::Scalar { at, .. } => *at,
        _ => None,
    }
}

/// Where the first key or scalar of a value is in the file: where an
/// error about the value as a whole points.
fn first_at(node: &Node) -> Option<usize> {
    match node {
        Node::Scalar { at, .. } => *at,
        Node::Map(entries) => entries.first().and_then(|entry| entry.key.at),
        Node::Seq(items) => items.first().and_then(first_at),
    }
}

/// A value that fits on its key's line: a scalar or an empty collection.
fn inline(node: &Node) -> Option<String> {
    match node {
        Node::Scalar {
            text, quoted: true, ..
        } => Some(quote(text)),
        Node::Scalar { text, .. } => Some(text.clone()),
        Node::Map(entries) if entries.is_empty() => Some("{}".to_owned()),
        Node::Seq(items) if items.is_empty() => Some("[]".to_owned()),
        _ => None,
    }
}

/// `text` as a double-quoted YAML scalar of printable ASCII.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use crate::config::{tests::parse, ByteSize, Config, ProberKind};

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err =
            parse("modules:\n  m:\n    prober: http\n    http:\n      methd: GET\n").unwrap_err();
        assert!(err.starts_with("test.yml: "), "{err}");
        assert!(err.contains("unknown field `methd`"), "{err}");
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn a_duplicate_key_is_an_error_at_every_level_naming_key_path_and_line() {
        for (text, key, path, line) in [
            (
                "modules:\n  a:\n    prober: http\n  a:\n    prober: tcp\n",
                "`a`",
                "modules",
                4,
            ),
            (
                "modules:\n  a:\n    prober: http\n    prober: tcp\n",
                "`prober`",
                "modules.a",
                4,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      method: GET\n      method: POST\n",
                "`method`",
                "modules.a.http",
                6,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      headers:\n        X-A: 1\n        X-A: 2\n",
                "`X-A`",
                "modules.a.http.headers",
                7,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      headers: {Host: a, Host: b}\n",
                "`Host`",
                "modules.a.http.headers",
                5,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      tls_config:\n        ca_file: a\n        ca_file: b\n",
                "`ca_file`",
                "modules.a.http.tls_config",
                7,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      basic_auth: {username: u, username: v}\n",
                "`username`",
                "modules.a.http.basic_auth",
                5,
            ),
            (
                "modules:\n  a:\n    prober: http\n    http:\n      fail_if_header_matches:\n        - header: a\n          header: b\n          regexp: x\n",
                "`header`",
                "modules.a.http.fail_if_header_matches[0]",
                7,
            ),
            (
                "modules:\n  a:\n    prober: tcp\n    tcp:\n      tls: true\n      tls: false\n",
                "`tls`",
                "modules.a.tcp",
                6,
            ),
            ("modules: {}\nmodules: {}\n", "`modules`", "", 2),
            // Quoted or plain, the key is the same text.
            (
                "modules:\n  a:\n    prober: http\n    \"prober\": tcp\n",
                "`prober`",
                "modules.a",
                4,
            ),
            (
                "modules:\n  'a':\n    prober: http\n  \"a\":\n    prober: tcp\n",
                "`a`",
                "modules",
                4,
            ),
            // Two merge keys in one mapping are two `<<` keys, as in Go.
            (
                "modules:\n  b: &b {prober: http}\n  c: &c {prober: tcp}\n  m:\n    <<: *b\n    <<: *c\n",
                "`<<`",
                "modules.m",
                6,
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(&format!("duplicate key {key}")), "{text:?}: {err}");
            assert!(err.contains(&format!("{path}: duplicate")) || path.is_empty(), "{text:?}: {err}");
            assert!(err.contains(&format!("at line {line} ")), "{text:?}: {err}");
            assert!(err.contains("first at line"), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn merge_keys_work_as_in_go_yaml() {
        let config = parse(
            r#"
modules:
  http_base: &http_base
    prober: http
    timeout: 5s
    http: &http
      method: POST
      headers: &headers {X-A: a, X-B: b}
  explicit_after:
    <<: *http_base
    timeout: 7s
  explicit_before:
    timeout: 9s
    <<: *http_base
  list:
    <<: [{timeout: 1s}, *http_base]
  nested:
    <<: *http_base
    http:
      <<: *http
      headers:
        <<: *headers
        X-B: override
        X-C: c
"#,
        )
        .unwrap();
        let m = &config.modules;
        assert_eq!(m["explicit_after"].prober, ProberKind::Http);
        assert_eq!(m["explicit_after"].timeout.0.as_secs(), 7);
        assert_eq!(m["explicit_before"].timeout.0.as_secs(), 9);
        assert_eq!(m["explicit_before"].http.method.0, http::Method::POST);
        // Earlier entries of a merge list win over later ones.
        assert_eq!(m["list"].timeout.0.as_secs(), 1);
        assert_eq!(m["list"].prober, ProberKind::Http);
        let headers = &m["nested"].http.headers;
        assert_eq!(m["nested"].http.method.0, http::Method::POST);
        assert_eq!(headers["X-A"], "a");
        assert_eq!(headers["X-B"], "override");
        assert_eq!(headers["X-C"], "c");
    }

    #[test]
    fn merges_chain_through_anchors_that_merge_themselves() {
        let config = parse(
            "modules:\n  a: &a {prober: http, timeout: 1s}\n  b: &b {<<: *a, timeout: 2s}\n  c: {<<: *b}\n",
        )
        .unwrap();
        assert_eq!(config.modules["c"].prober, ProberKind::Http);
        assert_eq!(config.modules["c"].timeout.0.as_secs(), 2);
    }

    #[test]
    fn merged_values_keep_their_text_as_without_a_merge() {
        // Header values, passwords and bodies are strings even when they
        // look like numbers; the merge path must not read them as numbers.
        let text = "modules:\n  b: &b {prober: http}\n  m:\n    <<: *b\n    http:\n      headers: {X-Version: 1.10, X-Octal: 0123, X-Bool: True, X-Null: ~, X-Hex: 0x1F, X-Empty: }\n      basic_auth: {username: 007, password: 1.50}\n      body: 1e3\n      body_size_limit: 1.5KB\n";
        let config = parse(text).unwrap();
        let plain = parse(&text.replace("    <<: *b\n", "    prober: http\n")).unwrap();
        for config in [&config, &plain] {
            let http = &config.modules["m"].http;
            assert_eq!(http.headers["X-Version"], "1.10");
            assert_eq!(http.headers["X-Octal"], "0123");
            assert_eq!(http.headers["X-Bool"], "True");
            assert_eq!(http.headers["X-Null"], "~");
            assert_eq!(http.headers["X-Hex"], "0x1F");
            assert_eq!(http.headers["X-Empty"], "");
            let auth = http.basic_auth.as_ref().unwrap();
            assert_eq!(auth.username, "007");
            assert_eq!(auth.password.as_ref().unwrap().0, "1.50");
            assert_eq!(http.body.as_deref(), Some("1e3"));
            assert_eq!(http.body_size_limit, ByteSize(1536));
        }
    }

    #[test]
    fn a_merge_cannot_bring_in_unknown_fields_and_errors_keep_a_line() {
        // The unknown key sits in the anchor (line 5); it is reported there.
        let err = parse(
            "modules:\n  base: &base\n    prober: http\n    http:\n      methd: GET\n  m:\n    <<: *base\n",
        )
        .unwrap_err();
        assert!(err.contains("unknown field `methd`"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        // A key written next to the merge keeps its own line.
        let err = parse(
            "modules:\n  base: &base\n    prober: http\n  m:\n    <<: *base\n    timeout: 5x\n",
        )
        .unwrap_err();
        assert!(err.contains("modules.m.timeout"), "{err}");
        assert!(err.contains("invalid duration"), "{err}");
        assert!(err.contains("line 6"), "{err}");
        // blackbox_exporter keys lookout does not support are still named.
        let err = parse(
            "modules:\n  base: &base {prober: http, http: {basic_auth: {password_ref: x}}}\n  m: {<<: *base}\n",
        )
        .unwrap_err();
        assert!(
            err.contains("`password_ref` is a blackbox_exporter option"),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
        // A field missing after the merge is named with its path.
        let err = parse(
            "modules:\n  m:\n    prober: http\n    http:\n      headers: &h {regexp: x}\n      fail_if_header_matches:\n        - <<: *h\n          allow_missing: true\n",
        )
        .unwrap_err();
        assert!(
            err.contains("modules.m.http.fail_if_header_matches[0]: missing field `header`"),
            "{err}"
        );
        assert!(err.contains("line 8"), "{err}");
    }

    #[test]
    fn a_merge_needs_a_mapping_or_a_list_of_mappings() {
        for text in [
            "modules:\n  m:\n    <<: 1\n    prober: http\n",
            "modules:\n  m:\n    <<: ~\n    prober: http\n",
            "modules:\n  m:\n    <<: [1]\n    prober: http\n",
            "modules:\n  m:\n    <<: [[{prober: http}]]\n",
            "modules:\n  s: &s [a]\n  m:\n    <<: *s\n    prober: http\n",
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains("`<<`") && err.contains("mapping"),
                "{text:?}: {err}"
            );
            assert!(err.contains("line "), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn a_quoted_merge_key_is_an_ordinary_key_as_in_go() {
        let err =
            parse("modules:\n  b: &b {prober: http}\n  m:\n    \"<<\": *b\n    prober: http\n")
                .unwrap_err();
        assert!(err.contains("unknown field `<<`"), "{err}");
    }

    /// Runs `text` through the parser on another thread and fails the test
    /// if it takes longer than `limit` (a hang or an explosion).
    fn parse_within(text: String, limit: std::time::Duration) -> Result<Config, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(parse(&text));
        });
        rx.recv_timeout(limit)
            .unwrap_or_else(|_| panic!("the parser took over {limit:?}"))
    }

    #[test]
    fn alias_bombs_and_merge_loops_fail_fast() {
        let limit = std::time::Duration::from_secs(10);
        // Billion laughs: nine levels of ten aliases each, 10^9 leaves.
        let mut bomb = String::from("modules:\n  m:\n    prober: http\n    http:\n      headers: {X: &a0 \"lol\"}\n      fail_if_body_matches_regexp: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\n");
        let mut tail = String::new();
        for level in 2..10 {
            let prev = level - 1;
            tail.push_str(&format!(
                "  l{level}: &a{level} {{prober: http, http: {{fail_if_body_matches_regexp: [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]}}}}\n"
            ));
        }
        bomb.push_str(&tail);
        assert!(parse_within(bomb.clone(), limit).is_err());
        // The same bomb with a merge key takes the merge path.
        bomb.push_str("  merged: {<<: *a9}\n");
        assert!(parse_within(bomb, limit).is_err());
        // Quadratic: one anchor of 5,000 values, aliased 5,000 times.
        let mut wide = String::from(
            "modules:\n  m:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: &w [",
        );
        wide.push_str(&vec!["a"; 5_000].join(", "));
        wide.push_str("]\n");
        for i in 0..5_000 {
            wide.push_str(&format!(
                "  m{i}: {{prober: http, http: {{fail_if_body_matches_regexp: *w}}}}\n"
            ));
        }
        let err = parse_within(wide.clone(), limit).unwrap_err();
        assert!(err.contains("alias"), "{err}");
        wide.push_str("  merged: {<<: {prober: http}}\n");
        let err = parse_within(wide, limit).unwrap_err();
        assert!(err.contains("alias"), "{err}");
        // An anchor that merges itself, and one that contains itself.
        for text in [
            "modules:\n  m: &m\n    prober: http\n    <<: *m\n",
            "modules:\n  m: &m\n    prober: http\n    http: {headers: *m}\n",
            "modules: &m\n  <<: *m\n",
        ] {
            let err = parse_within(text.to_owned(), limit).unwrap_err();
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn an_ordinary_anchor_and_alias_still_work_without_a_merge() {
        let config = parse(
            "modules:\n  a: &a {prober: http, timeout: 3s}\n  b: *a\n  c:\n    prober: http\n    http: {headers: &h {X-A: a}}\n  d:\n    prober: http\n    http: {headers: *h}\n",
        )
        .unwrap();
        assert_eq!(config.modules["b"].timeout.0.as_secs(), 3);
        assert_eq!(config.modules["d"].http.headers["X-A"], "a");
    }

    #[test]
    fn sharing_a_module_among_many_stays_within_the_alias_allowance() {
        // 500 modules sharing one 20-header block, plain and merged.
        let headers: Vec<String> = (0..20).map(|i| format!("X-{i}: v")).collect();
        let mut text = format!(
            "modules:\n  base: &base\n    prober: http\n    http: {{headers: {{{}}}}}\n",
            headers.join(", ")
        );
        for i in 0..500 {
            text.push_str(&format!(
                "  plain{i}: *base\n  merged{i}: {{<<: *base, timeout: 1s}}\n"
            ));
        }
        let config = parse(&text).unwrap();
        assert_eq!(config.modules.len(), 1_001);
        assert_eq!(config.modules["merged499"].http.headers.len(), 20);
    }

    #[test]
    fn yaml_tags_cannot_be_combined_with_merge_keys() {
        // Without merge keys a tag is ignored, as before.
        assert!(parse("modules:\n  a: !x {prober: http}\n").is_ok());
        let err =
            parse("modules:\n  a: !x {prober: http}\n  b: {<<: {prober: tcp}}\n").unwrap_err();
        assert!(err.contains("tags") && err.contains("`<<`"), "{err}");
    }
}
