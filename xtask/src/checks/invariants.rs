//! Architecture invariants that code can check, as tests (ARCHITECTURE.md names them):
//! plugin crates depend on ari-core only, only ari-core's `process` module spawns processes,
//! only ari-core's `engine/files` makes, writes, moves or removes files, library crates never print,
//! every source file opens with a `//!` paragraph, and ARCHITECTURE.md mentions every crate.
//!
//! The three rules about code read every file whole. They are rules about what ships, so each
//! one leaves out exactly the test code, found by the compiler's own marker: an item under
//! `#[cfg(test)]` (a `mod tests { ... }` block, ended by its matching brace, or a test-only
//! function), a module file that its parent declares `#[cfg(test)] mod name;`, and a file that
//! opens with `#![cfg(test)]`. Tests spawn fake tools, print what they compare and write their
//! fixtures on purpose; everything after a test module is code again. Comments and the insides
//! of string and character literals are blanked before a rule looks, so that a sentence about
//! `println!` is not a print and a `"}"` does not end a module early.

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

use super::root;

/// Every crate folder of the workspace (a folder at the top level with a Cargo.toml).
fn crates() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root())
        .expect("read workspace root")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Plugin crates: everything named `ari-*` except the core and the command.
pub(super) fn plugin_crates() -> Vec<String> {
    crates().into_iter().filter(|c| c.starts_with("ari-") && c != "ari-core" && c != "ari-cli").collect()
}

pub(super) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The attribute that marks test code; a rule reads everything else. Only this exact spelling
/// (rustfmt's) counts: `#[cfg(all(test, unix))]` and the like stay under the rules.
const TEST_ATTRIBUTE: &str = "#[cfg(test)]";
/// The inner attribute that makes a whole file test code.
const TEST_FILE_ATTRIBUTE: &str = "#![cfg(test)]";

/// A source file as the rules read it.
#[derive(Debug)]
pub(super) struct Scanned {
    /// The whole file but its test items, with comments and the insides of literals blanked
    /// (line breaks kept, so that the code keeps its lines).
    pub(super) code: String,
    /// The test modules it declares out of line (`#[cfg(test)] mod name;`), whose files are test
    /// code too.
    pub(super) test_modules: Vec<String>,
}

/// Reads `text` whole: blanks comments and literals, then leaves out every item under
/// `#[cfg(test)]` up to its end (its matching `}`, or its `;`), and all of a file that opens
/// with `#![cfg(test)]`. The code after a test item is read like the code before it.
pub(super) fn scan(text: &str) -> Scanned {
    let chars: Vec<char> = blank_comments_and_literals(text).chars().collect();
    let mut code = String::with_capacity(chars.len());
    let mut test_modules = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        if depth == 0 && starts_with(&chars, i, TEST_FILE_ATTRIBUTE) {
            return Scanned {
                code: chars.iter().filter(|c| **c == '\n').collect(),
                test_modules: Vec::new(),
            };
        }
        if starts_with(&chars, i, TEST_ATTRIBUTE) {
            let (item, end) = item_after(&chars, i + TEST_ATTRIBUTE.chars().count());
            let item: String = chars[item..end].iter().collect();
            test_modules.extend(out_of_line_module(&item));
            code.extend(chars[i..end].iter().filter(|c| **c == '\n'));
            i = end;
            continue;
        }
        match chars[i] {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        code.push(chars[i]);
        i += 1;
    }
    Scanned { code, test_modules }
}

fn starts_with(chars: &[char], at: usize, word: &str) -> bool {
    word.chars().enumerate().all(|(k, w)| chars.get(at + k) == Some(&w))
}

/// The item that starts at or after `from` (past white space and further outer attributes):
/// where it starts, and where it ends, just after its `;` or its closing `}` outside any
/// bracket. An item cut short by the end of the file ends there.
fn item_after(chars: &[char], from: usize) -> (usize, usize) {
    let mut i = from;
    loop {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if !(chars.get(i) == Some(&'#') && chars.get(i + 1) == Some(&'[')) {
            break;
        }
        i = closing(chars, i + 1).map_or(chars.len(), |end| end + 1);
    }
    let start = i;
    let mut depth = 0usize;
    while i < chars.len() {
        match chars[i] {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return (start, i + 1);
                }
            }
            ';' if depth == 0 => return (start, i + 1),
            _ => {}
        }
        i += 1;
    }
    (start, chars.len())
}

/// The index of the bracket that closes the one at `open`.
pub(super) fn closing(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in chars.iter().enumerate().skip(open) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `name` when `item` is `mod name;` (with any visibility).
fn out_of_line_module(item: &str) -> Option<String> {
    let item = item.trim().strip_suffix(';')?;
    let mut words = item.split_whitespace().skip_while(|w| w.starts_with("pub"));
    match (words.next(), words.next(), words.next()) {
        (Some("mod"), Some(name), None) => Some(name.to_string()),
        _ => None,
    }
}

/// `text` with every comment and the inside of every string and character literal replaced by
/// spaces (line breaks kept). Lifetimes and labels (`'a`) are code.
pub(super) fn blank_comments_and_literals(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = c.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for x in &mut out[from.min(to)..to] {
            if *x != '\n' {
                *x = ' ';
            }
        }
    };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            let end = c[i..].iter().position(|&x| x == '\n').map_or(c.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c[i] == '/' && next == Some('*') {
            // Block comments nest.
            let mut depth = 0usize;
            let mut j = i;
            while j < c.len() {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            let end = j.min(c.len());
            blank(&mut out, i, end);
            i = end;
        } else if let Some((hashes, quote)) = raw_string(&c, i) {
            let mut j = quote + 1;
            while j < c.len() && !(c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#'))) {
                j += 1;
            }
            blank(&mut out, quote + 1, j.min(c.len()));
            i = j + 1 + hashes;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            let end = j.min(c.len());
            blank(&mut out, i + 1, end);
            i = end + 1;
        } else if c[i] == '\'' {
            // `'\n'`, `'\''` and `'\u{7f}'` after their backslash and the character after it;
            // `'{'` is one character between quotes; anything else is a lifetime or a label.
            let end = if next == Some('\\') {
                c.iter().skip(i + 3).position(|&x| x == '\'').map(|p| i + 3 + p)
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut out, i + 1, end);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// When a raw string (`r"…"`, `r#"…"#`, `br"…"`, `cr"…"`) starts at `at`: its number of `#`
/// and the index of its opening quote.
fn raw_string(c: &[char], at: usize) -> Option<(usize, usize)> {
    if at > 0 && (c[at - 1].is_alphanumeric() || c[at - 1] == '_') {
        return None;
    }
    let mut j = at;
    if matches!(c.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((hashes, j))
}

/// Where the module `name` that `parent` declares lives: beside `parent` when that is a
/// `lib.rs`, `main.rs` or `mod.rs`, else in the folder named like `parent`.
pub(super) fn module_files(parent: &Path, name: &str) -> [PathBuf; 2] {
    let dir = parent.parent().expect("a source file sits in a folder");
    let stem = parent.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let base = if matches!(stem, "lib" | "main" | "mod") { dir.to_path_buf() } else { dir.join(stem) };
    [base.join(format!("{name}.rs")), base.join(name).join("mod.rs")]
}

/// The code that ships of every Rust file in the `src` of each `ari-*` crate: each file
/// [`scan`]ned, without the files of test modules declared out of line.
fn shipped_code() -> Vec<(PathBuf, String)> {
    let mut shipped = Vec::new();
    for krate in crates().iter().filter(|c| c.starts_with("ari-")) {
        let scanned: Vec<(PathBuf, Scanned)> = rust_files(&root().join(krate).join("src"))
            .into_iter()
            .map(|file| {
                let text = fs::read_to_string(&file).expect("read source");
                (file, scan(&text))
            })
            .collect();
        let test_files: Vec<PathBuf> = scanned
            .iter()
            .flat_map(|(file, s)| s.test_modules.iter().flat_map(|name| module_files(file, name)))
            .collect();
        shipped.extend(
            scanned.into_iter().filter(|(file, _)| !test_files.contains(file)).map(|(f, s)| (f, s.code)),
        );
    }
    assert!(shipped.len() > 20, "found too few source files to check: {}", shipped.len());
    shipped
}

/// What in `code` would spawn a process.
fn spawns(code: &str) -> Vec<&'static str> {
    let mut found = found(code, &["process::Command", "duct::", "cmd!("]);
    // clap has a `Command` too: look for the std and duct ones by path.
    let grouped_std_command = code
        .split("std::process::{")
        .skip(1)
        .any(|group| group.split('}').next().is_some_and(|names| names.contains("Command")));
    if grouped_std_command {
        found.push("std::process::{Command}");
    }
    found
}

/// What in `code` would make, write, move or remove a file.
fn writes(code: &str) -> Vec<&'static str> {
    found(
        code,
        &[
            "OpenOptions",
            "DirBuilder",
            "create_dir",
            "File::create",
            "fs::write",
            "fs::rename",
            "remove_file",
            "remove_dir",
            "set_permissions",
            "tempfile",
            // Descriptor-relative writes (`ari restore`'s, through rustix).
            "mkdirat",
            "renameat",
            "unlinkat",
            "fchmod",
        ],
    )
}

/// What in `code` would print.
fn prints(code: &str) -> Vec<&'static str> {
    found(code, &["println!", "eprintln!", "print!(", "eprint!(", "std::io::stdout", "std::io::stderr"])
}

fn found(code: &str, fragments: &[&'static str]) -> Vec<&'static str> {
    fragments.iter().copied().filter(|f| code.contains(f)).collect()
}

/// Every use in shipped code of what `rule` finds, outside the files `allowed` selects.
fn violations(rule: fn(&str) -> Vec<&'static str>, allowed: impl Fn(&Path) -> bool, fix: &str) -> String {
    let mut report = String::new();
    for (file, code) in shipped_code() {
        if allowed(&file) {
            continue;
        }
        for what in rule(&code) {
            report.push_str(&format!("{} uses {what}: {fix}\n", file.display()));
        }
    }
    report
}

#[test]
fn plugin_crates_depend_on_ari_core_only() {
    let plugins = plugin_crates();
    assert!(plugins.contains(&"ari-rdiff".to_string()), "found plugins: {plugins:?}");
    for plugin in plugins {
        let manifest = fs::read_to_string(root().join(&plugin).join("Cargo.toml")).expect("manifest");
        for other in crates().iter().filter(|c| c.starts_with("ari-") && *c != "ari-core") {
            let depends = manifest.lines().any(|l| {
                l.trim_start().starts_with(&format!("{other} "))
                    || l.trim_start().starts_with(&format!("{other}."))
            });
            assert!(!depends, "{plugin} depends on {other}: plugin crates depend on ari-core only");
        }
    }
}

/// Test code may spawn (a test of the process module, a fake tool): clippy's
/// `disallowed_methods` still asks it for an `#[allow]` with a reason.
#[test]
fn only_the_process_module_spawns_processes() {
    let report = violations(
        spawns,
        |file| {
            file.ends_with("ari-core/src/engine/process.rs")
                || file.starts_with(root().join("ari-core/src/engine/process"))
        },
        "spawn through ari_core::process",
    );
    assert!(report.is_empty(), "{report}");
}

/// Every file ari writes is state, and state goes through `files::StateDir` (private modes, no
/// symlinks followed, no stranger's file trusted), or is a restore, which goes through
/// `files::restore_target` (held directories, no symlink followed below DIR): no other code
/// opens a file for writing, makes a directory, or moves, removes or chmods a file. Test code
/// writes its fixtures into temp dirs, which are no state.
#[test]
fn only_the_files_module_writes_files() {
    let report = violations(
        writes,
        |file| {
            file.ends_with("ari-core/src/engine/files.rs")
                || file.starts_with(root().join("ari-core/src/engine/files"))
        },
        "write state through ari-core's engine::files::StateDir",
    );
    assert!(report.is_empty(), "{report}");
}

/// Test code may print: the test runner captures it.
#[test]
fn library_crates_never_print() {
    let report = violations(prints, |file| file.starts_with(root().join("ari-cli")), "only ari-cli prints");
    assert!(report.is_empty(), "{report}");
}

/// The rules find what they forbid in the one place each allows it, so none of them passes
/// because the scan read nothing.
#[test]
fn each_rule_finds_what_it_forbids_where_it_is_allowed() {
    let shipped = shipped_code();
    let code = |path: &str| {
        shipped
            .iter()
            .find(|(file, _)| file.ends_with(path))
            .map(|(_, code)| code.as_str())
            .unwrap_or_else(|| panic!("{path} is not among the files checked"))
    };
    assert!(spawns(code("ari-core/src/engine/process.rs")).contains(&"duct::"));
    assert!(writes(code("ari-core/src/engine/files/state_dir.rs")).contains(&"OpenOptions"));
    assert!(writes(code("ari-core/src/engine/files/restore_target.rs")).contains(&"renameat"));
    assert!(prints(code("ari-cli/src/commands/run_all.rs")).contains(&"print!("));
    // ari-cli's test module of its plugins is declared out of line: its file is left out.
    assert!(!shipped.iter().any(|(file, _)| file.ends_with("ari-cli/src/plugin_invariants.rs")));
}

#[test]
fn every_source_file_opens_with_a_doc_paragraph() {
    for krate in crates() {
        for file in rust_files(&root().join(&krate)) {
            if file.components().any(|c| c.as_os_str() == "target") {
                continue;
            }
            let text = fs::read_to_string(&file).expect("read source");
            assert!(text.starts_with("//!"), "{} does not open with a `//!` paragraph", file.display());
        }
    }
}

#[test]
fn architecture_md_mentions_every_crate() {
    let architecture = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    for krate in crates() {
        assert!(architecture.contains(&format!("`{krate}`")), "ARCHITECTURE.md does not mention `{krate}`");
    }
}

/// Checks what of `file` the rules read (`expected`, its lines with the blank ones and trailing
/// spaces dropped) and the test modules it declares out of line.
#[track_caller]
fn check(file: &str, expected: &str, test_modules: &[&str]) {
    let scanned = scan(file);
    let code: Vec<&str> = scanned.code.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    assert_eq!(code.join("\n"), expected, "{file}");
    assert_eq!(scanned.test_modules, test_modules, "{file}");
    assert_eq!(scanned.code.lines().count(), file.lines().count(), "the code keeps its lines: {file}");
}

#[test]
fn the_scan_leaves_out_test_items_and_reads_everything_else() {
    // Code after a test module, and between two, is read.
    check("fn a() {}\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\nfn b() {}\n", "fn a() {}\nfn b() {}", &[]);
    check(
        "#[cfg(test)]\nmod tests {\n}\nfn between() {}\n#[cfg(test)]\nmod props {\n}\nfn last() {}\n",
        "fn between() {}\nfn last() {}",
        &[],
    );
    // A test module ends at its matching brace, whatever braces its literals and comments hold.
    check(
        "#[cfg(test)]\nmod tests {\n    const S: &str = \"}\\\"}\";\n    const C: char = '}';\n    const Q: char = '\\'';\n    // }\n    /* } /* } */ } */\n    const R: &str = r#\"}\"}\"#;\n    const B: &[u8] = b\"}\";\n    fn f<'a>(x: &'a str) -> &'a str { x }\n    fn g() { if true { } }\n}\nfn after() {}\n",
        "fn after() {}",
        &[],
    );
    // Further attributes and a doc comment between `#[cfg(test)]` and the module.
    check(
        "#[cfg(test)]\n/// Properties.\n#[allow(clippy::all)]\nmod props {\n    use super::*;\n}\nfn x() {}\n",
        "fn x() {}",
        &[],
    );
    // A test-only function, and the code after it.
    check(
        "#[cfg(test)]\nfn command() -> Command {\n    command_for(None)\n}\nconst SUBCOMMANDS: &[&str] = &[\"run\"];\n",
        "const SUBCOMMANDS: &[&str] = &[\"   \"];",
        &[],
    );
    check("#[cfg(test)]\nconst N: [u8; 2] = [0; 2];\nfn y() {}\n", "fn y() {}", &[]);
    // A test module in a file of its own.
    check(
        "mod cli;\n#[cfg(test)]\nmod plugin_invariants;\nuse ari_lvm as _;\n",
        "mod cli;\nuse ari_lvm as _;",
        &["plugin_invariants"],
    );
    check("#[cfg(test)]\npub(crate) mod kit;\n", "", &["kit"]);
    // A file that is all test code.
    check("//! Tests.\n\n#![cfg(test)]\n\nfn t() {}\n", "", &[]);
    // Anything else is code: other conditions, the attribute's words in a literal or a
    // comment, and the words of comments and literals are blanked.
    check("#[cfg(not(test))]\nfn f() {}\n", "#[cfg(not(test))]\nfn f() {}", &[]);
    check("#[cfg(all(test, unix))]\nfn f() {}\n", "#[cfg(all(test, unix))]\nfn f() {}", &[]);
    check(
        "const A: &str = \"#[cfg(test)]\";\n// #[cfg(test)]\nfn f() {}\n",
        "const A: &str = \"            \";\nfn f() {}",
        &[],
    );
    check("/// Never println! here.\nfn f<'a>(_: &'a ()) {}\n", "fn f<'a>(_: &'a ()) {}", &[]);
}

/// Checks that `rule` finds `expected` in `line` after a test module (which holds `line` too),
/// and nothing in the test module alone: test code is left out on purpose, and only test code.
#[track_caller]
fn check_rule(rule: fn(&str) -> Vec<&'static str>, line: &str, expected: &[&str]) {
    let after = format!(
        "fn before() {{}}\n#[cfg(test)]\nmod tests {{\n    {line}\n}}\nfn after() {{\n    {line}\n}}\n"
    );
    assert_eq!(rule(&scan(&after).code), expected, "{after}");
    let test_only = format!("#[cfg(test)]\nmod tests {{\n    fn t() {{\n        {line}\n    }}\n}}\n");
    assert_eq!(rule(&scan(&test_only).code), [] as [&str; 0], "{test_only}");
}

#[test]
fn each_rule_catches_code_after_a_test_module() {
    check_rule(spawns, "let _ = std::process::Command::new(\"x\");", &["process::Command"]);
    check_rule(spawns, "use std::process::{Command, Stdio};", &["std::process::{Command}"]);
    check_rule(spawns, "duct::cmd(\"x\", [\"y\"]).run();", &["duct::"]);
    check_rule(spawns, "cmd!(\"x\").run();", &["cmd!("]);
    check_rule(spawns, "let _ = clap::Command::new(\"ari\");", &[]);
    check_rule(writes, "std::fs::write(path, b\"x\");", &["fs::write"]);
    check_rule(writes, "fs::OpenOptions::new().append(true).open(path);", &["OpenOptions"]);
    check_rule(writes, "std::fs::create_dir_all(path);", &["create_dir"]);
    check_rule(writes, "std::fs::remove_file(path);", &["remove_file"]);
    check_rule(writes, "let dir = tempfile::tempdir();", &["tempfile"]);
    check_rule(writes, "std::fs::read(path);", &[]);
    check_rule(prints, "println!(\"x\");", &["println!"]);
    check_rule(prints, "eprintln!(\"x\");", &["println!", "eprintln!"]);
    check_rule(prints, "print!(\"x\");", &["print!("]);
    check_rule(prints, "let _ = std::io::stderr();", &["std::io::stderr"]);
    check_rule(prints, "log::info!(\"x\");", &[]);
}
