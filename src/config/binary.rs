//! Byte strings in the modules file ([`Payload`]), and YAML's `!!binary` tag.
//!
//! blackbox_exporter's `send` and `expect_bytes` are Go strings, which hold
//! any bytes; yaml.v3 decodes a `!!binary` value (base64) into one, which is
//! how a file writes bytes that are not UTF-8 (PostgreSQL's SSLRequest).
//! serde_yaml_ng resolves the tag and forgets it: a `!!binary` scalar reaches
//! a visitor as its base64 text. So [`rewrite`] turns each `!!binary` tag in
//! the text into the local tag `!lookbin` (padded to the same length, so every
//! line and column stays put), which serde_yaml_ng does report; only
//! [`Payload`] accepts it, and `yaml::read` checks that every tag reached one
//! ([`counting`]), so a `!!binary` anywhere else is an error, not base64 text.
//!
//! Which `!!binary` in the text is a tag? A first pass lists the strings the
//! parser lends out of the text (plain and quoted scalars on one line without
//! escapes); an occurrence inside one of them is text and stays. The others
//! are rewritten, and a second pass checks that no string changed: one does
//! only when an occurrence sat in a string the parser could not lend (a block
//! scalar, a string over several lines, escapes), which is refused by name.
//! Comments may change freely. `%TAG` handles are not followed (`!e!binary`).

use std::{cell::Cell, fmt, ops::Range};

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// The local tag a `!!binary` becomes, as serde_yaml_ng names it.
const TAG: &str = "lookbin";

/// `!!binary` and its verbatim spelling, each with its replacement (`!lookbin`
/// padded with spaces to the same length).
const SPELLINGS: [(&str, &str); 2] = [
    ("!!binary", "!lookbin"),
    ("!<tag:yaml.org,2002:binary>", "!lookbin                   "),
];

/// Go's `base64.StdEncoding`: padding required, trailing bits ignored
/// (line breaks are taken out before decoding, as Go skips them).
const GO_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Why a file that writes `!lookbin` itself is refused.
pub(super) const RESERVED: &str =
    "the YAML tag `!lookbin` is lookout's name for `!!binary`; it cannot be used in the file";

thread_local! {
    /// `!!binary` values decoded by the deserialization running on this thread.
    static DECODED: Cell<usize> = const { Cell::new(0) };
}

/// Bytes written as text, or base64 under `!!binary`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Payload(pub(crate) Vec<u8>);

impl Payload {
    /// Whether there is nothing (Go's `""`, which blackbox_exporter skips).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl<'de> de::Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As an enum, serde_yaml_ng hands over a scalar's tag, if local.
        deserializer.deserialize_enum("Payload", &[], PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Payload, A::Error> {
        let (head, value) = data.variant_seed(HeadSeed)?;
        match head {
            Head::Null => de::VariantAccess::unit_variant(value).map(|()| Payload::default()),
            Head::Text(text) => {
                de::VariantAccess::unit_variant(value).map(|()| Payload(text.into_bytes()))
            }
            // Another tag: yaml.v3 puts the scalar's text in a string.
            Head::Tag(tag) if tag != TAG => {
                de::VariantAccess::newtype_variant_seed(value, TextSeed)
                    .map(|text| Payload(text.into_bytes()))
            }
            Head::Tag(_) => {
                let text = de::VariantAccess::newtype_variant_seed(value, TextSeed)?;
                let base64: Vec<u8> = text.bytes().filter(|b| !b"\r\n".contains(b)).collect();
                let bytes = GO_BASE64.decode(&base64).map_err(|e| {
                    de::Error::custom(format_args!(
                        "!!binary value contains invalid base64 data ({e})"
                    ))
                })?;
                DECODED.with(|decoded| decoded.set(decoded.get() + 1));
                Ok(Payload(bytes))
            }
        }
    }
}

/// What serde_yaml_ng hands over as the enum's variant: for a tagged
/// scalar the tag (as a plain string), otherwise the scalar itself, which a
/// nullable read tells apart (the tag's string does not answer it).
enum Head {
    Tag(String),
    Text(String),
    Null,
}

struct HeadSeed;

impl<'de> DeserializeSeed<'de> for HeadSeed {
    type Value = Head;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Head, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for HeadSeed {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, tag: &str) -> Result<Head, E> {
        Ok(Head::Tag(tag.to_owned()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Head, E> {
        Ok(Head::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Head, E> {
        Ok(Head::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, scalar: D) -> Result<Head, D::Error> {
        TextSeed.deserialize(scalar).map(Head::Text)
    }
}

/// A scalar's text, whatever it looks like (`1.10` stays `1.10`).
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for TextSeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }
}

/// A modules file whose `!!binary` tags became `!lookbin`.
#[derive(Debug)]
pub(super) struct Rewritten {
    /// The text to parse instead, as long as the file's, line for line.
    pub(super) text: String,
    /// How many `!lookbin` values the document holds, aliases expanded.
    pub(super) tags: usize,
    /// Byte offsets of the rewritten spellings (tags, or words in comments).
    pub(super) at: Vec<usize>,
}

/// `text` with its `!!binary` tags rewritten, or `None` when it has none.
/// `text` must have passed `yaml::read`'s first pass (no alias bomb).
pub(super) fn rewrite(text: &str) -> Result<Option<Rewritten>, String> {
    if !SPELLINGS
        .iter()
        .any(|(spelling, _)| text.contains(spelling))
    {
        return Ok(None);
    }
    let before = survey(text)?;
    if before.tags > 0 {
        return Err(RESERVED.to_owned());
    }
    let mut rewritten = text.to_owned();
    let mut at = Vec::new();
    for (spelling, replacement) in SPELLINGS {
        for (start, _) in text.match_indices(spelling) {
            let end = start + spelling.len();
            let lent = before.lent.iter().any(|r| r.start <= start && end <= r.end);
            if !lent && is_token(text, start, end) {
                rewritten.replace_range(start..end, replacement);
                at.push(start);
            }
        }
    }
    let after = survey(&rewritten)?;
    if after.strings_with_tag > before.strings_with_tag {
        return Err(
            "the text `!!binary` stands in a string whose place in the file the YAML parser does not report (a block scalar, a string over several lines, or a quoted string with escapes); lookout finds `!!binary` tags by their text, so write that string differently (in double quotes, `!\\x21binary`)"
                .to_owned(),
        );
    }
    if after.tags == 0 {
        return Ok(None);
    }
    at.sort_unstable();
    Ok(Some(Rewritten {
        text: rewritten,
        tags: after.tags,
        at,
    }))
}

/// Whether `text[start..end]` stands alone as a tag would: after the start,
/// white space or an indicator, and before white space or the end.
fn is_token(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    before.is_none_or(|c| c.is_whitespace() || "[{,:".contains(c))
        && after.is_none_or(char::is_whitespace)
}

/// Runs `parse`, a deserialization on this thread, and counts the `!!binary`
/// values it decoded.
pub(super) fn counting<T>(parse: impl FnOnce() -> T) -> (T, usize) {
    DECODED.with(|decoded| decoded.set(0));
    let value = parse();
    (value, DECODED.with(Cell::take))
}

/// What one pass over the document found.
#[derive(Default)]
struct Survey {
    /// Strings lent out of the text that hold a `!!binary` spelling.
    lent: Vec<Range<usize>>,
    /// Values tagged `!lookbin`, aliases expanded.
    tags: usize,
    /// Strings (keys too) holding the text `!lookbin`.
    strings_with_tag: usize,
}

fn survey(text: &str) -> Result<Survey, String> {
    let mut pass = Pass {
        text,
        found: Survey::default(),
    };
    (&mut pass)
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .map_err(|e| {
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })?;
    Ok(pass.found)
}

struct Pass<'t> {
    text: &'t str,
    found: Survey,
}

impl Pass<'_> {
    fn string(&mut self, value: &str) {
        if value.contains(SPELLINGS[0].1) {
            self.found.strings_with_tag += 1;
        }
    }
}

impl<'de> DeserializeSeed<'de> for &mut Pass<'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Pass<'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<(), E> {
        if SPELLINGS
            .iter()
            .any(|(spelling, _)| value.contains(spelling))
        {
            let start = (value.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize);
            if let Some(start) = start.filter(|s| s + value.len() <= self.text.len()) {
                self.found.lent.push(start..start + value.len());
            }
        }
        self.string(value);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.string(value);
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(&mut *self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(&mut *self)?.is_some() {
            map.next_value_seed(&mut *self)?;
        }
        Ok(())
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (tag, value) = data.variant::<String>()?;
        if tag == TAG {
            self.found.tags += 1;
        }
        de::VariantAccess::newtype_variant_seed(value, self)
    }
}
