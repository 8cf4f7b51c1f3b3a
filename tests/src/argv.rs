//! Proving that a command's arguments arrive intact: lists of arguments a shell would mangle, a
//! script that writes the arguments it receives to a file, the reader of that file, and markers
//! that tell, when words did not arrive intact, which word became what.

use std::path::Path;

/// Arguments that a shell would mangle: spaces, quotes, `$`, `;`, `*`, newlines, an empty one,
/// braces.
pub const NASTY: &[&str] = &[
    "two words",
    "it's",
    "\"double\"",
    "$HOME",
    "$(echo injected)",
    "a;b",
    ";",
    "*",
    "line one\nline two",
    "",
    "-n",
    "back\\slash",
    "{}",
];

/// A script that writes its arguments, NUL-separated, to the file named first, and to that name
/// plus `.where` whether it ran through ssh.
pub const ARGV_DUMP: &str = "#!/bin/sh\nout=$1\nshift\n\
    if [ -n \"${SSH_CONNECTION:-}\" ]; then echo ssh > \"$out.where\"; else echo local > \"$out.where\"; fi\n\
    : > \"$out\"\nfor a in \"$@\"; do printf '%s\\0' \"$a\" >> \"$out\"; done\n";

/// `NASTY` as owned strings.
pub fn nasty() -> Vec<String> {
    NASTY.iter().map(|w| w.to_string()).collect()
}

/// Words as a YAML flow list, each quoted as JSON (which YAML reads).
pub fn yaml_list(words: &[String]) -> String {
    let quoted: Vec<String> =
        words.iter().map(|w| serde_json::to_string(w).expect("a string serializes")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The arguments `ARGV_DUMP` wrote to `path`.
pub fn read_argv(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{} was not written: {e}", path.display()));
    let mut words: Vec<String> =
        bytes.split(|b| *b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    words.pop(); // after the last NUL
    words
}

/// Words that some login shell, in some mode, would change unless quoted: brace expansion (bash,
/// zsh), tildes, history expansion (`!` in interactive bash and zsh), arithmetic and parameter
/// expansion, globs (extended ones too: bash's `extglob`, zsh's `extendedglob` with `^`, `#` and
/// `~`), comments, zsh's `=cmd`, quotes, whitespace, backslashes, words a program would read as
/// options, and empty words. None is a whole-word shell operator (`&`, `|`, `>`), which the
/// command backend refuses.
pub const SHELL_SPECIAL: &[&str] = &[
    "{a,b}",
    "x{1..3}",
    "{}",
    "{a,b}c",
    "~",
    "~root",
    "~/x",
    "a=~root",
    "!",
    "!!",
    "x!y",
    "!#",
    "!$",
    "line one\n!! two",
    "$(( 1+1 ))",
    "$HOME",
    "${HOME}",
    "`id`",
    "*",
    "?",
    "[ab]",
    "*.rs",
    "@(a|b)",
    "+(x)",
    "!(x)",
    "x~y",
    "#",
    "#x",
    "a#b",
    "it's",
    "'",
    "\"double\"",
    "\"",
    "line one\nline two",
    "tab\there",
    "\t",
    "cr\r",
    "back\\slash",
    "\\",
    "trailing\\",
    "-n",
    "--x",
    "-",
    "=ls",
    "==",
    "^x",
    "x^y",
    "%1",
    "",
    " ",
    "two words",
    "a;b",
    ";",
    "a&b",
    "(x)",
    "<x",
    "€ ünïcode",
];

/// The prefix of the markers that [`with_markers`] puts before each word.
const MARKER: &str = "@word@";

/// `words`, each after a marker word of its own (`@word@0`, `@word@1`, ...) that no shell
/// changes, so that [`mangled`] can tell which word became what even when one was split in
/// two, vanished, or swallowed the rest of the line.
pub fn with_markers<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    words.iter().enumerate().flat_map(|(i, w)| [format!("{MARKER}{i}"), w.as_ref().to_owned()]).collect()
}

/// One line for each of `words` that did not arrive as itself, given what arrived for
/// [`with_markers`]`(words)`: the word, and what arrived in its place. Empty when everything
/// arrived exactly; a line without a word names what arrived out of order.
pub fn mangled<S: AsRef<str>>(words: &[S], arrived: &[String]) -> Vec<String> {
    if arrived == with_markers(words) {
        return Vec::new();
    }
    let marker_at = |i: usize| arrived.iter().position(|w| *w == format!("{MARKER}{i}"));
    let mut lines = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let word = word.as_ref();
        let Some(start) = marker_at(i) else {
            lines.push(format!("word {i} {word:?}: lost, with its marker (an earlier word swallowed it?)"));
            continue;
        };
        let end = arrived[start + 1..]
            .iter()
            .position(|w| w.starts_with(MARKER))
            .map_or(arrived.len(), |offset| start + 1 + offset);
        let got = &arrived[start + 1..end];
        if got != [word] {
            lines.push(format!("word {i} {word:?}: arrived as {got:?}"));
        }
    }
    if lines.is_empty() {
        lines.push(format!("every word arrived, but not in order: {arrived:?}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(arrived: &[&str], expected: &[&str]) {
        let words = ["{a,b}", "#", "ok"];
        let arrived: Vec<String> = arrived.iter().map(|w| w.to_string()).collect();
        assert_eq!(mangled(&words, &arrived), expected, "{arrived:?}");
    }

    #[test]
    fn mangled_names_each_word_and_what_arrived_for_it() {
        check(&["@word@0", "{a,b}", "@word@1", "#", "@word@2", "ok"], &[]);
        check(
            &["@word@0", "a", "b", "@word@1", "#", "@word@2", "ok"],
            &[r#"word 0 "{a,b}": arrived as ["a", "b"]"#],
        );
        // A comment swallowed the rest of the line.
        check(
            &["@word@0", "{a,b}", "@word@1"],
            &[
                r##"word 1 "#": arrived as []"##,
                r#"word 2 "ok": lost, with its marker (an earlier word swallowed it?)"#,
            ],
        );
        check(
            &["@word@0", "{a,b}", "@word@2", "ok", "@word@1", "#"],
            &[
                r##"every word arrived, but not in order: ["@word@0", "{a,b}", "@word@2", "ok", "@word@1", "#"]"##,
            ],
        );
    }
}
