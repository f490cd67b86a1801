//! Regular expressions as blackbox_exporter's Go `regexp` reads them, matched
//! on bytes in linear time.
//!
//! regex-syntax parses RE2 syntax, which is Go's. Three things make the
//! meaning Go's: `\d`, `\s`, `\w` and `\b` are rewritten to their ASCII forms
//! in the syntax tree (Go's are ASCII-only; no Unicode class tables are linked
//! in for them); repetition counts above 1000 are refused as Go refuses them;
//! octal escapes (`\101`) are accepted. The pattern is compiled with Unicode
//! on and UTF-8 validation off, so it matches a body's bytes where they are,
//! with no lossy copy, and regex-automata's lazy DFA keeps a match linear in
//! the body's length (a body regexp on 10 MiB takes milliseconds, not the
//! seconds a backtracking or Pike VM engine can spend).
//!
//! Differences that remain, all rare in probe configurations: Unicode classes
//! (`\pL`, `\p{Greek}`) are refused at load; `\Q...\E` and `\C` are refused; a
//! byte that is not UTF-8 is matched by no `.` or negated class (Go reads it
//! as U+FFFD).

use std::{fmt, ops::Range, str::FromStr};

use regex_automata::{meta, PatternID};
use regex_syntax::ast::{
    self, Ast, ClassBracketed, ClassPerl, ClassPerlKind, ClassSet, ClassSetItem, ClassSetRange,
    ClassSetUnion, Flag, Flags, FlagsItem, FlagsItemKind, Group, GroupKind, Literal, LiteralKind,
    RepetitionKind, RepetitionRange,
};
use serde::{Deserialize, Deserializer};

use super::values::deserialize_from_str;

/// Go's limit on `{n}`, `{n,}` and `{n,m}`.
const MAX_REPEAT: u32 = 1000;

/// Compiled size limit: a pattern that needs more is refused at load rather
/// than allowed to take the memory.
const NFA_SIZE_LIMIT: usize = 4 << 20;

/// The lazy DFA's state per running match (regex-automata's default is
/// 2 MiB); when a pattern needs more, the match goes on in a slower engine.
const DFA_CACHE_CAPACITY: usize = 1 << 20;

/// A compiled regular expression with Go's RE2 semantics.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: meta::Regex,
}

impl Pattern {
    /// Whether the pattern matches anywhere in `haystack` (unanchored).
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.regex.is_match(haystack)
    }

    /// The pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// Go's `FindSubmatchIndex`: the leftmost-first match's groups (0 is the
    /// whole match) as byte ranges, `None` for a group that did not take part.
    pub(crate) fn captures(&self, haystack: &[u8]) -> Option<Vec<Option<Range<usize>>>> {
        let mut caps = self.regex.create_captures();
        self.regex.captures(haystack, &mut caps);
        caps.is_match().then(|| {
            (0..caps.group_len())
                .map(|group| caps.get_group(group).map(|span| span.range()))
                .collect()
        })
    }

    /// Go's `Regexp.Expand`: `template` with `$1`, `${1}`, `$name` and
    /// `${name}` replaced by what those groups of `groups` (from
    /// [`Pattern::captures`] on `haystack`) matched, `$$` by `$`. A name is
    /// as long as possible (`$1x` is `${1x}`); a number or name no group has
    /// matched gives nothing; a `$` without a well-formed name stays a `$`.
    /// Names are read with ASCII letters, digits and `_`, which is Go's
    /// reading of every template [`check_template`] accepts.
    pub(crate) fn expand(
        &self,
        template: &[u8],
        haystack: &[u8],
        groups: &[Option<Range<usize>>],
    ) -> Vec<u8> {
        let names = self.regex.group_info().pattern_names(PatternID::ZERO);
        let mut out = Vec::with_capacity(template.len());
        let mut rest = template;
        while let Some(dollar) = rest.iter().position(|&b| b == b'$') {
            out.extend_from_slice(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            if let Some(after) = rest.strip_prefix(b"$") {
                out.push(b'$');
                rest = after;
                continue;
            }
            let Some((name, after)) = template_name(rest) else {
                out.push(b'$');
                continue;
            };
            rest = after;
            let group = match group_number(name) {
                Some(number) => groups.get(number),
                None => names
                    .clone()
                    .zip(groups)
                    .find(|(n, range)| n.is_some_and(|n| n.as_bytes() == name) && range.is_some())
                    .map(|(_, range)| range),
            };
            if let Some(Some(range)) = group {
                out.extend_from_slice(&haystack[range.clone()]);
            }
        }
        out.extend_from_slice(rest);
        out
    }
}

/// The name after a `$` (Go's `extract`): `name` or `{name}`, and what
/// follows it; `None` when malformed (empty, or a brace left open).
fn template_name(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let (braced, text) = match text.strip_prefix(b"{") {
        Some(inner) => (true, inner),
        None => (false, text),
    };
    let end = text
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    let (name, rest) = text.split_at(end);
    if braced {
        return rest.strip_prefix(b"}").map(|rest| (name, rest));
    }
    Some((name, rest))
}

/// A group number as Go reads one: decimal digits without a leading zero
/// (`0` itself is the whole match), given up at 10^8; anything else is a name.
fn group_number(name: &[u8]) -> Option<usize> {
    if name.len() > 1 && name[0] == b'0' {
        return None;
    }
    name.iter().try_fold(0usize, |number, &b| {
        (b.is_ascii_digit() && number < 100_000_000).then(|| number * 10 + usize::from(b - b'0'))
    })
}

/// The character `bytes` starts with and its length; `None` at the end or
/// at a byte that starts no UTF-8 character (Go's U+FFFD, no letter).
fn first_char(bytes: &[u8]) -> Option<(char, usize)> {
    let window = &bytes[..bytes.len().min(4)];
    let c = window.utf8_chunks().next()?.valid().chars().next()?;
    Some((c, c.len_utf8()))
}

/// Refuses a template whose `$` names Go would read differently from
/// [`Pattern::expand`]: Go takes any Unicode letter or digit into a name,
/// and its letter and digit tables are not linked in here. Such a name can
/// never be a group's (group names are ASCII), but where it ends decides
/// what follows it, so lookout refuses it rather than guess.
pub(crate) fn check_template(template: &[u8]) -> Result<(), String> {
    let mut rest = template;
    while let Some(dollar) = rest.iter().position(|&b| b == b'$') {
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix(b"$") {
            rest = after;
            continue;
        }
        let mut name = rest.strip_prefix(b"{").unwrap_or(rest);
        while let Some((c, len)) = first_char(name) {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            if !c.is_ascii() {
                return Err(format!(
                    "the `$` name before {c:?} holds a non-ASCII letter or digit, which Go's regexp reads into the name; name the group in ASCII, as `${{1}}` or `${{name}}`"
                ));
            }
            name = &name[len..];
        }
    }
    Ok(())
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl FromStr for Pattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &dyn fmt::Display| {
            let why = why.to_string();
            let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("invalid regexp {text:?}: {why}")
        };
        let mut ast = ast::parse::ParserBuilder::new()
            .octal(true)
            .build()
            .parse(text)
            .map_err(|e| invalid(&e.kind()))?;
        go_semantics(&mut ast).map_err(|e| invalid(&e))?;
        let hir = regex_syntax::hir::translate::TranslatorBuilder::new()
            .unicode(true)
            .utf8(false)
            .build()
            .translate(text, &ast)
            .map_err(|e| invalid(&e.kind()))?;
        let regex = meta::Builder::new()
            .configure(
                meta::Config::new()
                    .nfa_size_limit(Some(NFA_SIZE_LIMIT))
                    .hybrid_cache_capacity(DFA_CACHE_CAPACITY),
            )
            .build_from_hir(&hir)
            .map_err(|e| invalid(&e))?;
        Ok(Self {
            source: text.to_owned(),
            regex,
        })
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer, "a regular expression")
    }
}

/// Rewrites `ast` in place to mean what Go means by it.
fn go_semantics(ast: &mut Ast) -> Result<(), String> {
    match ast {
        Ast::ClassPerl(perl) => {
            let class = ascii_perl_class(perl);
            *ast = Ast::class_bracketed(class);
        }
        Ast::ClassBracketed(class) => go_class_set(&mut class.kind),
        Ast::Assertion(assertion) => {
            use ast::AssertionKind::{EndLine, EndText, StartLine, StartText};
            if !matches!(assertion.kind, StartLine | EndLine | StartText | EndText) {
                // Word boundaries: ASCII word characters, as Go's `\b`.
                let span = assertion.span;
                let inner = std::mem::replace(ast, Ast::empty(span));
                *ast = Ast::group(Group {
                    span,
                    kind: GroupKind::NonCapturing(Flags {
                        span,
                        items: vec![
                            FlagsItem {
                                span,
                                kind: FlagsItemKind::Negation,
                            },
                            FlagsItem {
                                span,
                                kind: FlagsItemKind::Flag(Flag::Unicode),
                            },
                        ],
                    }),
                    ast: Box::new(inner),
                });
            }
        }
        Ast::Repetition(repetition) => {
            if let RepetitionKind::Range(
                RepetitionRange::Exactly(n)
                | RepetitionRange::AtLeast(n)
                | RepetitionRange::Bounded(_, n),
            ) = repetition.op.kind
            {
                if n > MAX_REPEAT {
                    return Err(format!(
                        "repetition count {n} is above Go's limit of {MAX_REPEAT}"
                    ));
                }
            }
            go_semantics(&mut repetition.ast)?;
        }
        Ast::Group(group) => go_semantics(&mut group.ast)?,
        Ast::Alternation(alternation) => {
            for ast in &mut alternation.asts {
                go_semantics(ast)?;
            }
        }
        Ast::Concat(concat) => {
            for ast in &mut concat.asts {
                go_semantics(ast)?;
            }
        }
        Ast::Empty(_) | Ast::Flags(_) | Ast::Literal(_) | Ast::Dot(_) | Ast::ClassUnicode(_) => {}
    }
    Ok(())
}

fn go_class_set(set: &mut ClassSet) {
    match set {
        ClassSet::Item(item) => go_class_item(item),
        ClassSet::BinaryOp(op) => {
            go_class_set(&mut op.lhs);
            go_class_set(&mut op.rhs);
        }
    }
}

fn go_class_item(item: &mut ClassSetItem) {
    match item {
        ClassSetItem::Perl(perl) => {
            let class = ascii_perl_class(perl);
            *item = ClassSetItem::Bracketed(Box::new(class));
        }
        ClassSetItem::Bracketed(class) => go_class_set(&mut class.kind),
        ClassSetItem::Union(union) => union.items.iter_mut().for_each(go_class_item),
        ClassSetItem::Empty(_)
        | ClassSetItem::Literal(_)
        | ClassSetItem::Range(_)
        | ClassSetItem::Ascii(_)
        | ClassSetItem::Unicode(_) => {}
    }
}

/// Go's Perl classes: `\d` `[0-9]`, `\s` `[\t\n\f\r ]`, `\w` `[0-9A-Za-z_]`.
fn ascii_perl_class(perl: &ClassPerl) -> ClassBracketed {
    let span = perl.span;
    let literal = |c| {
        ClassSetItem::Literal(Literal {
            span,
            kind: LiteralKind::Verbatim,
            c,
        })
    };
    let range = |start, end| {
        ClassSetItem::Range(ClassSetRange {
            span,
            start: Literal {
                span,
                kind: LiteralKind::Verbatim,
                c: start,
            },
            end: Literal {
                span,
                kind: LiteralKind::Verbatim,
                c: end,
            },
        })
    };
    let items = match perl.kind {
        ClassPerlKind::Digit => vec![range('0', '9')],
        ClassPerlKind::Space => ['\t', '\n', '\x0c', '\r', ' '].map(literal).to_vec(),
        ClassPerlKind::Word => vec![
            range('0', '9'),
            range('A', 'Z'),
            range('a', 'z'),
            literal('_'),
        ],
    };
    ClassBracketed {
        span,
        negated: perl.negated,
        kind: ClassSet::union(ClassSetUnion { span, items }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, haystack: &[u8]) -> bool {
        pattern.parse::<Pattern>().unwrap().is_match(haystack)
    }

    #[test]
    fn perl_classes_and_word_boundaries_are_ascii_as_in_go() {
        assert!(matches(r"^\d+$", b"123"));
        assert!(!matches(r"\d", "٣".as_bytes()), "Arabic-Indic digit");
        assert!(!matches(r"\w", "é".as_bytes()));
        assert!(matches(r"\W", "é".as_bytes()));
        assert!(!matches(r"\s", "\u{a0}".as_bytes()), "no-break space");
        assert!(!matches(r"\s", b"\x0b"), "Go's \\s has no vertical tab");
        assert!(matches(r"[\d_]", b"_") && matches(r"[^\D]", b"7"));
        assert!(!matches(r"[^\D]", b"x"));
        assert!(matches(r"\bok\b", b"it is ok."));
        // é is no ASCII word character, so Go sees a boundary before "x".
        assert!(matches(r"\bx", "éx".as_bytes()));
        assert!(matches(r"caf\B", b"cafe"));
    }

    #[test]
    fn dot_case_folding_and_literals_are_unicode() {
        assert!(matches(r"^.$", "é".as_bytes()));
        assert!(matches(r"(?i)ÉTÉ", "été".as_bytes()));
        assert!(matches("naïve", "a naïve body".as_bytes()));
        assert!(matches(r"\101", b"A"), "octal, as Go accepts it");
        assert!(matches(r"\x{2603}", "☃".as_bytes()));
    }

    #[test]
    fn bodies_are_bytes_and_need_not_be_utf8() {
        assert!(matches("healthy", b"\xff\xfe status: healthy \xff"));
        assert!(!matches("^a.b$", b"a\xffb"));
    }

    #[test]
    fn what_go_refuses_is_refused_with_the_reason() {
        for (pattern, reason) in [
            ("a{1001}", "above Go's limit of 1000"),
            ("(", "unclosed group"),
            (r"\pL", "invalid regexp"),
            ("a{2,1}", "invalid regexp"),
        ] {
            let err = pattern.parse::<Pattern>().unwrap_err();
            assert!(err.contains(reason), "{pattern}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        assert!("a{1000}".parse::<Pattern>().is_ok());
    }

    #[test]
    fn a_pattern_too_large_to_compile_is_refused_not_built() {
        let err = "(((a{100}){100}){100})".parse::<Pattern>().unwrap_err();
        assert!(err.contains("invalid regexp"), "{err}");
    }

    #[test]
    fn a_10_mib_body_is_searched_in_full() {
        // The attack from issue 12: with a Pike VM this took seconds.
        let re: Pattern = "[0-9a-f]{32}Z".parse().unwrap();
        let body = vec![b'a'; 10 << 20];
        assert!(!re.is_match(&body));
    }
}
