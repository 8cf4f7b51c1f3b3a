//! Proving that a command's arguments arrive intact: a list of arguments a shell would mangle, a
//! script that writes the arguments it receives to a file, and the reader of that file.

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
