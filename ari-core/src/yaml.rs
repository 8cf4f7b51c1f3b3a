//! Reading YAML documents safely, and finding where a key is in one.
//!
//! Before a config or job file reaches the YAML parser, [`document`] strips a UTF-8 byte order
//! mark, refuses a file larger than [`MAX_DOCUMENT_BYTES`], and refuses flow collections (`[`,
//! `{`) nested deeper than [`MAX_FLOW_DEPTH`]: the parser's cost grows with the product of a
//! document's length and its flow depth, so that 80 KB of `[[[[...` took seconds and 1 MiB
//! minutes; with both limits every file parses in time linear in its size. Real job files are
//! a few kilobytes, nested three or four levels.
//!
//! [`locate`] finds the line and column of a key path (`volumes[1].mount_point`) in a document,
//! so that a check made after parsing (by a backend, about several keys) can point at the line
//! it is about. It reads the document once more, with serde, and lets serde_yaml report the
//! position of the node it stops at: no second YAML parser, and every YAML style works.

use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::ConfigError;

/// The largest config or job file ari reads: generous for any real file (a thousand includes
/// are 30 KB), small enough to parse in well under a second.
pub const MAX_DOCUMENT_BYTES: usize = 8 << 20;

/// The deepest nesting of flow collections (`[a, [b]]`, `{a: {b: c}}`) ari reads.
pub const MAX_FLOW_DEPTH: usize = 64;

/// The text of a config or job file, ready for the YAML parser: without a byte order mark, and
/// checked against the size and depth limits.
pub fn document<'a>(path: &Path, text: &'a str) -> Result<&'a str, ConfigError> {
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
    if let Some(position) = flow_deeper_than(text, MAX_FLOW_DEPTH) {
        return Err(ConfigError {
            file: Some(path.to_path_buf()),
            position: Some(position),
            message: format!("flow collections (`[`, `{{`) are nested deeper than {MAX_FLOW_DEPTH} levels"),
        });
    }
    Ok(text)
}

/// Where the nesting of flow collections first exceeds `limit`, 1-based, as the parser would
/// count it: `[` and `{` open a collection at the start of a node in block context and anywhere
/// in flow context; quoted scalars, comments and block scalars are skipped. One pass.
fn flow_deeper_than(text: &str, limit: usize) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut depth = 0;
    // Whether the next character starts a node, where a quote or a `[` means what it says.
    let mut node_start = true;
    // A quoted scalar may span lines.
    let mut quote: Option<char> = None;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let indent = line.len() - line.trim_start_matches(' ').len();
        // The column of the current block node (the key of `key: |`), and the `-` of `- |`.
        let mut node_column = indent;
        let mut dash_column = None;
        let mut block_scalar = None;
        let mut chars = line.char_indices().peekable();
        if quote.is_none() && depth == 0 {
            node_start = true;
            if indent == 0 && (line.starts_with("---") || line.starts_with("...")) {
                let marker_ends = line[3..].chars().next().is_none_or(|c| c == ' ' || c == '\t' || c == '\r');
                if marker_ends {
                    chars.nth(2);
                }
            }
        }
        let mut previous = ' ';
        while let Some((at, c)) = chars.next() {
            if let Some(q) = quote {
                match (q, c) {
                    ('"', '\\') => {
                        chars.next();
                    }
                    ('\'', '\'') if chars.peek().map(|(_, n)| *n) == Some('\'') => {
                        chars.next();
                    }
                    (q, c) if q == c => {
                        quote = None;
                        node_start = false;
                    }
                    _ => {}
                }
                previous = c;
                continue;
            }
            let next = chars.peek().map(|(_, n)| *n);
            let followed_by_space = next.is_none_or(|n| n == ' ' || n == '\t' || n == '\r');
            match c {
                '#' if previous == ' ' || previous == '\t' || at == 0 => break,
                ' ' | '\t' | '\r' => {}
                '\'' | '"' if node_start => quote = Some(c),
                '[' | '{' if depth > 0 || node_start => {
                    depth += 1;
                    if depth > limit {
                        return Some((index + 1, column(line, at)));
                    }
                    node_start = true;
                }
                ']' | '}' if depth > 0 => {
                    depth -= 1;
                    node_start = false;
                }
                ',' if depth > 0 => node_start = true,
                '-' | '?' if depth == 0 && node_start && followed_by_space => {
                    dash_column = Some(at);
                    node_column = line[at + 1..].find(|n: char| n != ' ').map_or(at + 1, |n| at + 1 + n);
                }
                ':' if followed_by_space || (depth > 0 && matches!(previous, '"' | '\'')) => {
                    dash_column = None;
                    node_start = true;
                }
                '|' | '>' if depth == 0 && node_start => {
                    // Its lines are those indented more than its parent node: the key of
                    // `key: |`, the `-` of `- |`, or the line before for a `|` alone.
                    block_scalar = Some(match dash_column {
                        Some(dash) => dash,
                        None if node_column == at => indent.saturating_sub(1),
                        None => node_column,
                    });
                    break;
                }
                '&' | '!' if node_start => {
                    // An anchor or a tag: the node starts after it.
                    while chars.peek().is_some_and(|(_, n)| *n != ' ') {
                        chars.next();
                    }
                }
                _ => node_start = false,
            }
            previous = c;
        }
        index += 1;
        if let Some(parent) = block_scalar {
            while index < lines.len() {
                let content = lines[index];
                let content_indent = content.len() - content.trim_start_matches(' ').len();
                if content.trim().is_empty() || content_indent > parent {
                    index += 1;
                } else {
                    break;
                }
            }
        }
    }
    None
}

/// The 1-based column of byte `at` of `line`, in characters.
fn column(line: &str, at: usize) -> usize {
    line[..at].chars().count() + 1
}

/// The 1-based line and column of the node at `path` in `text` (`label`, `include[2]`,
/// `volumes[1].mount_point`), as serde_yaml reports positions; `None` when it is not there.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
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

    #[track_caller]
    fn depth_ok(text: &str) {
        assert_eq!(flow_deeper_than(text, 3), None, "{text:?}");
    }

    #[track_caller]
    fn too_deep(text: &str, at: (usize, usize)) {
        assert_eq!(flow_deeper_than(text, 3), Some(at), "{text:?}");
    }

    #[test]
    fn flow_depth_counts_what_the_parser_counts() {
        depth_ok("a: [[[x]]]\nb: [[[y]]]\n");
        too_deep("a: [[[[x]]]]\n", (1, 7));
        too_deep("a: {b: [c, {d: [e]}]}\n", (1, 16));
        too_deep("- - [[[[x]]]]\n", (1, 8));
        too_deep("a:\n  [\n   [\n    [\n     [x]]]]\n", (5, 6));
        too_deep("a: !tag [[[[x]]]]\n", (1, 12));
        too_deep("a: &anchor [[[[x]]]]\n", (1, 15));
        too_deep("a: \"]]]]\" \nb: [[[[x]]]]\n", (2, 7));
        // Plain scalars, quoted scalars, comments and block scalars hold brackets freely.
        depth_ok("command: echo [[[[ x\n");
        depth_ok("a: b[[[[c\n");
        depth_ok("a: '[[[['\nb: \"{{{{\\\" [[[[\"\n");
        depth_ok("a: 'it''s [[[['\n");
        depth_ok("a: x # [[[[\n# [[[[\n");
        depth_ok("a: [\"[[[[\", '{{{{']\n");
        depth_ok("- command: |\n    if [[[[ x ]]]]; then\n      echo '\n    fi\n  host: db\n");
        depth_ok("a: >-\n  [[[[\n\n  {{{{\nb: [x]\n");
        depth_ok("a: \"multi\n  line [[[[\n  \"\n");
        // What follows a block scalar is read again.
        too_deep("a: |\n  text\nb: [[[[x]]]]\n", (3, 7));
        too_deep("- command: |\n    text\n  host: [[[[x]]]]\n", (3, 12));
        // A plain scalar's quote does not open a quoted scalar.
        too_deep("a: it's\nb: [[[[x]]]]\n", (2, 7));
        too_deep("a: [it's, [[[x]]]]\n", (1, 13));
    }

    #[test]
    fn documents_are_bounded_and_lose_their_byte_order_mark() {
        let path = Path::new("/j.yaml");
        assert_eq!(document(path, "\u{feff}a: 1\nb: 2\n").unwrap(), "a: 1\nb: 2\n");
        let deep = format!("a: {}{}\n", "[".repeat(1 << 20), "]".repeat(1 << 20));
        let started = std::time::Instant::now();
        let err = document(path, &deep).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/j.yaml:1:68: flow collections (`[`, `{`) are nested deeper than 64 levels"
        );
        // Reported, not asserted: the scan stops at the first level too deep.
        log::debug!("refused 2 MiB of nesting in {:?}", started.elapsed());
        let big = "#".repeat(MAX_DOCUMENT_BYTES + 1);
        assert!(document(path, &big).unwrap_err().to_string().contains("more than the 8388608 bytes"));
    }
}
