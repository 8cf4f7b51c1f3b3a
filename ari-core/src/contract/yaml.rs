//! Reading YAML documents safely, and finding where a key is in one.
//!
//! Before a config or job file reaches serde, [`document`] strips a UTF-8 byte order mark,
//! refuses a file larger than [`MAX_DOCUMENT_BYTES`], and reads the file once through the YAML
//! parser's own events ([`events`], one event alive at a time), refusing, at the line and column
//! of the node at fault:
//!
//! - sequences and mappings, block or flow, nested deeper than [`MAX_DEPTH`]: the parser's cost
//!   grows with the product of a document's length and its flow depth (80 KB of `[[[[...` took
//!   seconds, 1 MiB minutes), and serde_yaml holds every event of a document in memory before it
//!   stops at its own recursion limit (4 MiB of `- - - ...` took 1.2 GB);
//! - a document of more than [`MAX_NODES`] nodes (scalars, sequences and mappings) or
//!   [`MAX_VALUE_BYTES`] bytes of scalars, **counted after alias expansion**: an alias `*a`
//!   counts as every node and byte of the node `&a` names, aliases inside it included, because
//!   serde_yaml builds each of those again every time an alias repeats them. Without this, a
//!   76 KB job (10,000 hooks aliasing one hook of 1,000 words) took 1.1 GB to load. The budget
//!   is deterministic (it depends on the text only), an alias inside the node it names is
//!   refused (serde would repeat it until its recursion limit), and no alias is refused for what
//!   it is, only for what it adds up to;
//! - YAML tags (`!!str`, `!foo`, `!<...>`): ari reads values by their kind, and serde_yaml would
//!   ignore most tags without a word (`!!binary aGk=` read as the text `aGk=`).
//!
//! With these limits every file costs time and memory linear in its size, and at most
//! [`MAX_NODES`] values: a real job file is a few kilobytes, a few hundred nodes, nested three
//! or four levels. A document the parser cannot read is left to serde_yaml, which reads it with
//! the same parser and reports the same error, after no more nodes than were counted here.
//!
//! [`locate`] finds the line and column of a key path (`volumes[1].mount_point`) in a document,
//! so that a check made after parsing (by a backend, about several keys) can point at the line
//! it is about. It reads the document once more, with serde, and lets serde_yaml report the
//! position of the node it stops at: no second YAML parser, and every YAML style works.

mod events;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::contract::error::ConfigError;
use events::{Event, Mark, Node, Parser};

/// The largest config or job file ari reads: generous for any real file (a thousand includes
/// are 30 KB), small enough to parse in well under a second.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 8 << 20;

/// The deepest nesting of sequences and mappings (`[a, [b]]`, `- - x`, indented keys) ari reads.
pub(crate) const MAX_DEPTH: usize = 64;

/// The most nodes (scalars, sequences, mappings) a document may hold, aliases expanded: a job
/// of a thousand includes and a hundred hooks holds a few thousand.
pub(crate) const MAX_NODES: usize = 100_000;

/// The most bytes of scalars a document may hold, aliases expanded: what a file of
/// [`MAX_DOCUMENT_BYTES`] could hold without them.
pub(crate) const MAX_VALUE_BYTES: usize = MAX_DOCUMENT_BYTES;

/// Reads a config or job file, no further than [`MAX_DOCUMENT_BYTES`] (and a byte order mark)
/// allows: a file of gigabytes, or `--config /dev/zero`, costs no more memory than one of 8 MiB.
/// A longer file is an error of kind `FileTooLarge` that says so.
pub(crate) fn read_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let limit = MAX_DOCUMENT_BYTES + '\u{feff}'.len_utf8();
    let mut bytes = Vec::new();
    (&file).take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        let size = file.metadata().ok().filter(|m| m.is_file()).map(|m| format!("is {} bytes,", m.len()));
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "the file {} more than the {MAX_DOCUMENT_BYTES} bytes ari reads (a job file is a few kilobytes)",
                size.as_deref().unwrap_or("holds")
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8")
    })
}

/// The text of a config or job file, ready for the YAML parser: without a byte order mark, and
/// checked against the size, depth and alias limits and for tags.
pub(crate) fn document<'a>(path: &Path, text: &'a str) -> Result<&'a str, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(ConfigError::in_file(
            path,
            format!(
                "the file is {} bytes, more than the {} bytes ari reads (a job file is a few kilobytes)",
                text.len(),
                MAX_DOCUMENT_BYTES
            ),
        ));
    }
    bounded(text).map_err(|refusal| ConfigError {
        file: Some(path.to_path_buf()),
        position: Some(refusal.at.position()),
        message: refusal.message,
        others: Vec::new(),
    })?;
    Ok(text)
}

/// A value written as YAML on the command line (`--set exclude=[a, b]`), checked as a file's
/// text is: the same limits, the error saying where in the value.
pub(crate) fn value_text(text: &str) -> Result<(), String> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the value is {} bytes, more than the {MAX_DOCUMENT_BYTES} bytes ari reads",
            text.len()
        ));
    }
    bounded(text).map_err(|refusal| {
        let (line, column) = refusal.at.position();
        format!("{} (at line {line} column {column} of the value)", refusal.message)
    })
}

/// Why [`bounded`] refused a document, and where.
#[derive(Debug, PartialEq)]
struct Refusal {
    at: Mark,
    message: String,
}

/// Nodes and bytes of scalars, counted as serde_yaml builds them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl std::ops::Sub for Size {
    type Output = Size;
    fn sub(self, before: Size) -> Size {
        Size { nodes: self.nodes - before.nodes, bytes: self.bytes - before.bytes }
    }
}

/// A sequence or mapping not yet ended: its anchor, and the size of the document before it.
struct Open {
    anchor: Option<Vec<u8>>,
    before: Size,
}

/// Reads `text` once through the parser's events and refuses it at the first node that nests
/// too deep, carries a tag, or brings the document past [`MAX_NODES`] or [`MAX_VALUE_BYTES`]
/// (an alias counting as everything its anchor's node holds). One pass; memory for the open
/// collections (at most [`MAX_DEPTH`]) and one size per anchor.
fn bounded(text: &str) -> Result<(), Refusal> {
    no_tag_directive(text)?;
    let mut parser = Parser::new(text);
    let mut anchors: HashMap<Vec<u8>, Size> = HashMap::new();
    let mut open: Vec<Open> = Vec::new();
    let mut total = Size::default();
    loop {
        let (event, at) = parser.next_event();
        let refuse = |message: String| Err(Refusal { at, message });
        let (added, alias) = match event {
            Event::End | Event::Error => return Ok(()),
            Event::Other => continue,
            // Anchors are a document's own, as serde_yaml reads them.
            Event::DocumentStart => {
                anchors.clear();
                continue;
            }
            Event::Scalar { node, len } => {
                no_tag(&node).or_else(refuse)?;
                let size = Size { nodes: 1, bytes: len };
                if let Some(anchor) = node.anchor {
                    anchors.insert(anchor, size);
                }
                (size, None)
            }
            Event::CollectionStart { node } => {
                no_tag(&node).or_else(refuse)?;
                if open.len() >= MAX_DEPTH {
                    return refuse(format!(
                        "sequences and mappings are nested deeper than {MAX_DEPTH} levels"
                    ));
                }
                open.push(Open { anchor: node.anchor, before: total });
                (Size { nodes: 1, bytes: 0 }, None)
            }
            Event::CollectionEnd => {
                if let Some(Open { anchor: Some(anchor), before }) = open.pop() {
                    anchors.insert(anchor, total - before);
                }
                continue;
            }
            Event::Alias { name } => {
                if open.iter().any(|o| o.anchor.as_deref() == Some(name.as_slice())) {
                    return refuse(format!(
                        "the alias `*{}` is inside the node `&{}` it repeats, which would repeat itself without end",
                        shown_name(&name),
                        shown_name(&name)
                    ));
                }
                // An unknown anchor is serde_yaml's to report, at this same place.
                let Some(size) = anchors.get(&name) else { return Ok(()) };
                (*size, Some(name))
            }
        };
        total = Size { nodes: total.nodes + added.nodes, bytes: total.bytes + added.bytes };
        let past = if total.nodes > MAX_NODES {
            Some(format!("{MAX_NODES} nodes (values, lists and mappings; a job file holds a few hundred)"))
        } else if total.bytes > MAX_VALUE_BYTES {
            Some(format!("{MAX_VALUE_BYTES} bytes of values"))
        } else {
            None
        };
        if let Some(limit) = past {
            return refuse(match alias {
                Some(name) => format!(
                    "the alias `*{}` repeats {} node{} and {} bytes, which brings the document, aliases expanded, past {limit}",
                    shown_name(&name),
                    added.nodes,
                    if added.nodes == 1 { "" } else { "s" },
                    added.bytes
                ),
                None => format!("the document holds more than {limit}"),
            });
        }
    }
}

/// Refuses a node with a tag, naming it as it is usually written (`!!str`, `!foo`).
/// Refuses a `%TAG` directive before the parser sees it: tags are refused anyway, and the
/// parser's cost grows with the square of their number (800 KB of `%TAG` lines took 25 s). A
/// directive starts a line; in a config or job file (a mapping) no other line starts with
/// `%TAG` and a blank.
fn no_tag_directive(text: &str) -> Result<(), Refusal> {
    let directive = text.lines().position(|line| {
        line.strip_prefix("%TAG").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    });
    match directive {
        None => Ok(()),
        Some(line) => Err(Refusal {
            at: Mark { line, column: 0 },
            message: "a `%TAG` directive: ari reads no YAML tags, so it takes no directive that declares them; remove it".into(),
        }),
    }
}

fn no_tag(node: &Node) -> Result<(), String> {
    let Some(tag) = &node.tag else { return Ok(()) };
    let tag = String::from_utf8_lossy(tag);
    let written = match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(core) => format!("!!{core}"),
        None => tag.into_owned(),
    };
    Err(format!(
        "the YAML tag `{}` is not read: ari reads every value by what its key holds; remove the tag (quote a value to make it text)",
        crate::contract::kinds::shown(&written)
    ))
}

fn shown_name(name: &[u8]) -> String {
    crate::contract::kinds::shown(&String::from_utf8_lossy(name))
}

/// The 1-based line and column of the node at `path` in `text` (`label`, `include[2]`,
/// `volumes[1].mount_point`), as serde_yaml reports positions; `None` when it is not there.
pub(crate) fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let segments = segments(path)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let deserializer = serde_yaml::Deserializer::from_str(text);
    match (Locate { path: &segments }).deserialize(deserializer) {
        Err(err) if err.to_string().contains(FOUND) => err.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

/// The message of the error [`Locate`] raises at the node it looks for.
const FOUND: &str = "ari-locate: found";

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `volumes[1].mount_point` as `[Key(volumes), Index(1), Key(mount_point)]`.
fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while !rest.is_empty() {
            let (number, after) = rest.split_once(']')?;
            segments.push(Segment::Index(number.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    (!segments.is_empty()).then_some(segments)
}

/// Walks down `path`, skipping everything else, and fails at the node it names.
struct Locate<'a> {
    path: &'a [Segment],
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Locate<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "any node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.here()?;
        let Segment::Index(wanted) = self.path[0] else { return Ok(()) };
        let mut index = 0;
        while index < wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
        seq.next_element_seed(Locate { path: &self.path[1..] })?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.here()?;
        let Segment::Key(wanted) = &self.path[0] else { return Ok(()) };
        while let Some(key) = map.next_key::<KeyText>()? {
            if key.0.as_deref() == Some(wanted.as_str()) {
                map.next_value_seed(Locate { path: &self.path[1..] })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// A mapping key as text, when it is text.
struct KeyText(Option<String>);

impl<'de> serde::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KeyText, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(KeyText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KeyText(None))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_indexes() {
        use Segment::*;
        assert_eq!(segments("label"), Some(vec![Key("label".into())]));
        assert_eq!(
            segments("volumes[1].mount_point"),
            Some(vec![Key("volumes".into()), Index(1), Key("mount_point".into())])
        );
        assert_eq!(segments("a[0][2]"), Some(vec![Key("a".into()), Index(0), Index(2)]));
        assert_eq!(segments("a[x]"), None);
        assert_eq!(segments(""), None);
    }

    #[test]
    fn nodes_are_found_in_every_style() {
        let block = "label: db\nvolumes:\n  - name: vg0/root\n    mount_point: /\n  - name: vg1/data\n    mount_point: /srv\n";
        assert_eq!(locate(block, "label"), Some((1, 8)));
        assert_eq!(locate(block, "volumes[1].mount_point"), Some((6, 18)));
        assert_eq!(locate(block, "volumes[0]"), Some((3, 5)));
        let flow = "include: [/etc]\nvolumes: [{name: vg0/root, mount_point: /}, {name: vg1/d, mount_point: /srv}]\n";
        assert_eq!(locate(flow, "volumes[1].mount_point"), Some((2, 72)));
        assert_eq!(locate(flow, "include[0]"), Some((1, 11)));
        assert_eq!(locate(flow, "volumes[2]"), None);
        assert_eq!(locate(flow, "missing"), None);
        assert_eq!(locate("\u{feff}a: 1\n", "a"), Some((1, 4)));
        assert_eq!(locate("not: [valid\n", "not"), Some((1, 6)), "found before the syntax error");
    }

    /// `bounded(text)`: `Ok` or the 1-based position and the message of its refusal.
    #[track_caller]
    fn check(text: &str, expected: Result<(), ((usize, usize), &str)>) {
        let got = bounded(text).map_err(|r| (r.at.position(), r.message));
        let got = match &got {
            Ok(()) => Ok(()),
            Err((at, message)) => Err((*at, message.as_str())),
        };
        assert_eq!(got, expected, "{}", &text[..text.len().min(200)]);
    }

    const TOO_DEEP: &str = "sequences and mappings are nested deeper than 64 levels";

    #[test]
    fn nesting_is_counted_in_every_style() {
        // The root mapping is a level: 63 more fit, the 64th more does not.
        check(&format!("a: {}x{}\n", "[".repeat(63), "]".repeat(63)), Ok(()));
        check(&format!("a: {}x{}\n", "[".repeat(64), "]".repeat(64)), Err(((1, 67), TOO_DEEP)));
        check(&format!("a: {}1{}\n", "{a: ".repeat(64), "}".repeat(64)), Err(((1, 256), TOO_DEEP)));
        // Block sequences on one line, and keys indented a column each.
        check(&format!("{}x\n", "- ".repeat(64)), Ok(()));
        check(&format!("{}x\n", "- ".repeat(65)), Err(((1, 129), TOO_DEEP)));
        let indented =
            |levels: usize| (0..levels).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>();
        check(&indented(64), Ok(()));
        check(&indented(65), Err(((65, 65), TOO_DEEP)));
        // Brackets in scalars, comments and block scalars are text, as the parser reads them.
        let deep = "[".repeat(100);
        for text in [
            format!("command: echo {deep} x\n"),
            format!("a: '{deep}'\nb: \"{deep}\"\n"),
            format!("a: x # {deep}\n# {deep}\n"),
            format!("- command: |\n    if {deep}\n  host: db\n"),
        ] {
            check(&text, Ok(()));
        }
    }

    #[test]
    fn tags_are_refused_where_they_are_written() {
        let refused = |tag: &str| {
            format!(
                "the YAML tag `{tag}` is not read: ari reads every value by what its key holds; remove the tag (quote a value to make it text)"
            )
        };
        check("label: !!str db\n", Err(((1, 8), &refused("!!str"))));
        check("label: !!binary aGk=\n", Err(((1, 8), &refused("!!binary"))));
        check("include: !foo [/etc]\n", Err(((1, 10), &refused("!foo"))));
        check("a: ! x\n", Err(((1, 4), &refused("!"))));
        check("a: !<tag:example.com,2024:x> y\n", Err(((1, 4), &refused("tag:example.com,2024:x"))));
        check("- &a !!map {b: c}\n", Err(((1, 3), &refused("!!map"))));
        let directive = "a `%TAG` directive: ari reads no YAML tags, so it takes no directive that declares them; remove it";
        check("%TAG !e! tag:example.com,2024:\n---\na: !e!x y\n", Err(((1, 1), directive)));
        check("%YAML 1.1\n%TAG\t!e! tag:e,2024:\n---\na: b\n", Err(((2, 1), directive)));
        // Thousands of them cost one pass over the lines, not the parser's square.
        let many = "%TAG !t! tag:x,2000:\n".repeat(40_000) + "---\na: b\n";
        check(&many, Err(((1, 1), directive)));
        check("%YAML 1.1\n---\na: \"%TAG x\"\nb: |\n  %TAG y\n", Ok(()));
        // A `!` inside a value is text.
        check("command: echo !x\nb: '!!str'\nc: [a!b]\n", Ok(()));
    }

    #[test]
    fn aliases_count_as_everything_they_repeat() {
        // `&a` names a sequence of 1,000 nodes (itself and 999 scalars of a byte): the root
        // mapping, the keys and both sequences are 4 more, so 98 aliases fit and the 99th does not.
        let list = |aliases: usize| {
            format!("a: &a [{}]\nb: [{}]\n", vec!["x"; 999].join(", "), vec!["*a"; aliases].join(", "))
        };
        check(&list(98), Ok(()));
        let text = list(99);
        let column = text.lines().nth(1).unwrap().rfind("*a").unwrap() + 1;
        check(
            &text,
            Err((
                (2, column),
                "the alias `*a` repeats 1000 nodes and 999 bytes, which brings the document, aliases expanded, past 100000 nodes (values, lists and mappings; a job file holds a few hundred)",
            )),
        );
        // Aliases inside an anchored node count in full each time it is repeated: 20 levels of
        // doubling would be a million nodes.
        let mut laughs = String::from("l0: &l0 [x, x]\n");
        for level in 1..20 {
            laughs.push_str(&format!("l{level}: &l{level} [*l{p}, *l{p}]\n", p = level - 1));
        }
        // l13 holds 2^15 - 1 nodes; the document before l14 holds 65,533, its second `*l13`
        // brings it past the budget.
        let refusal = bounded(&laughs).unwrap_err();
        assert_eq!(refusal.at.position(), (15, 18));
        assert!(
            refusal.message.starts_with("the alias `*l13` repeats 32767 nodes and 16384 bytes"),
            "{refusal:?}"
        );
        // Bytes count too: a scalar of 100 KB and 82 aliases of it fit in 8 MiB, 83 do not.
        let big = |aliases: usize| {
            format!("a: &a {}\nb: [{}]\n", "y".repeat(100_000), vec!["*a"; aliases].join(", "))
        };
        check(&big(82), Ok(()));
        check(
            &big(83),
            Err((
                (2, 333),
                "the alias `*a` repeats 1 node and 100000 bytes, which brings the document, aliases expanded, past 8388608 bytes of values",
            )),
        );
        // An alias inside the node it names; an anchor that a later one of the same name
        // replaces, as serde_yaml reads it; an unknown anchor, which serde_yaml reports.
        check(
            "a: &a [x, *a]\n",
            Err((
                (1, 11),
                "the alias `*a` is inside the node `&a` it repeats, which would repeat itself without end",
            )),
        );
        check(
            &format!("a: &a [{}]\na: &a x\nb: [{}]\n", vec!["x"; 999].join(", "), vec!["*a"; 200].join(", ")),
            Ok(()),
        );
        check("b: *nowhere\n", Ok(()));
    }

    #[test]
    fn a_document_without_aliases_is_bounded_too() {
        // The root mapping, its key and the sequence are 3 nodes.
        let list = |n: usize| format!("a: [{}]\n", vec!["x"; n].join(","));
        check(&list(MAX_NODES - 3), Ok(()));
        check(
            &list(MAX_NODES - 2),
            Err((
                (1, 3 + 2 * (MAX_NODES - 2)),
                "the document holds more than 100000 nodes (values, lists and mappings; a job file holds a few hundred)",
            )),
        );
        // Each document's anchors are its own; the nodes of every document count.
        check("a: &a x\n---\nb: *a\n", Ok(()));
        // Syntax errors are serde_yaml's to report.
        check("a: [x\n", Ok(()));
        check("a: 'x\n", Ok(()));
    }

    #[test]
    fn documents_are_bounded_and_lose_their_byte_order_mark() {
        let path = Path::new("/j.yaml");
        assert_eq!(document(path, "\u{feff}a: 1\nb: 2\n").unwrap(), "a: 1\nb: 2\n");
        let deep = format!("a: {}{}\n", "[".repeat(1 << 20), "]".repeat(1 << 20));
        let err = document(path, &deep).unwrap_err();
        assert_eq!(err.to_string(), format!("/j.yaml:1:67: {TOO_DEEP}"));
        let big = "#".repeat(MAX_DOCUMENT_BYTES + 1);
        assert!(document(path, &big).unwrap_err().to_string().contains("more than the 8388608 bytes"));
        assert_eq!(
            value_text("[a, !!str b]"),
            Err("the YAML tag `!!str` is not read: ari reads every value by what its key holds; remove the tag (quote a value to make it text) (at line 1 column 5 of the value)".into())
        );
        assert_eq!(value_text("[a, b]"), Ok(()));
    }

    #[test]
    fn files_are_read_no_further_than_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.yaml");
        std::fs::write(&path, format!("\u{feff}{}", "#".repeat(MAX_DOCUMENT_BYTES))).unwrap();
        assert_eq!(read_file(&path).unwrap().len(), MAX_DOCUMENT_BYTES + 3, "8 MiB and a BOM are read");
        std::fs::write(&path, "#".repeat(MAX_DOCUMENT_BYTES + 4)).unwrap();
        let err = read_file(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(err.to_string(), "the file is 8388612 bytes, more than the 8388608 bytes ari reads (a job file is a few kilobytes)");
        // A file without end is read no further either.
        let err = read_file(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().starts_with("the file holds more than the 8388608 bytes ari reads"), "{err}");
    }
}
