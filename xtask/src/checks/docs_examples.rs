//! The code of docs/writing-a-backend.md is the example crate's code: every ```rust and ```toml
//! block there follows a line `<!-- file: PATH -->` and is that file of the repository, or a run
//! of its lines, and every file of examples/ari-restic is shown. `cargo xtask test` builds,
//! lints and tests that crate and backs up with it (`example.rs`), so the walk-through cannot
//! drift from code that builds and works.

#![cfg(test)]

use std::fs;

use super::root;

/// The walk-through.
const DOC: &str = "docs/writing-a-backend.md";
/// The crate it walks through.
const CRATE: &str = "examples/ari-restic";

/// A fenced code block of a Markdown text.
#[derive(Debug, PartialEq, Eq)]
struct Block {
    /// The line of its opening fence, from 1.
    line: usize,
    /// The word after the fence (`rust`, `toml`, `yaml`, ...).
    lang: String,
    /// The file named by a `<!-- file: PATH -->` line right before the fence.
    file: Option<String>,
    /// Its lines.
    text: Vec<String>,
}

/// The fenced blocks of `markdown`, each with the file its marker names.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines().enumerate();
    let mut marker: Option<String> = None;
    while let Some((index, line)) = lines.next() {
        let Some(lang) = line.trim_start().strip_prefix("```") else {
            marker = line
                .trim()
                .strip_prefix("<!-- file:")
                .and_then(|rest| rest.strip_suffix("-->"))
                .map(|path| path.trim().to_string());
            continue;
        };
        let text =
            lines.by_ref().map(|(_, line)| line).take_while(|line| line.trim() != "```").map(String::from);
        blocks.push(Block {
            line: index + 1,
            lang: lang.trim().to_string(),
            file: marker.take(),
            text: text.collect(),
        });
    }
    blocks
}

/// Whether `block` is a non-empty run of consecutive lines of `file`.
fn is_excerpt(block: &[String], file: &str) -> bool {
    let lines: Vec<&str> = file.lines().collect();
    !block.is_empty() && lines.windows(block.len()).any(|window| window.iter().eq(block.iter()))
}

/// The files of the example crate that the walk-through must show: its manifest and sources.
fn crate_files() -> Vec<String> {
    let mut files = vec![format!("{CRATE}/Cargo.toml")];
    let src = root().join(CRATE).join("src");
    for entry in fs::read_dir(&src).expect("the example crate's src") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            files.push(format!("{CRATE}/src/{name}"));
        }
    }
    files.sort();
    files
}

#[test]
fn the_walk_through_shows_the_example_crate_as_it_is() {
    let doc = fs::read_to_string(root().join(DOC)).expect("the walk-through");
    let mut shown = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for block in blocks(&doc).into_iter().filter(|b| b.lang == "rust" || b.lang == "toml") {
        let Some(file) = &block.file else {
            problems.push(format!(
                "{DOC}:{}: a ```{} block without `<!-- file: PATH -->`",
                block.line, block.lang
            ));
            continue;
        };
        match fs::read_to_string(root().join(file)) {
            Ok(text) if is_excerpt(&block.text, &text) => {
                shown.insert(file.clone());
            }
            Ok(_) => {
                problems.push(format!("{DOC}:{}: the block is not a run of lines of {file}", block.line))
            }
            Err(err) => problems.push(format!("{DOC}:{}: {file}: {err}", block.line)),
        }
    }
    for file in crate_files() {
        if !shown.contains(&file) {
            problems.push(format!("{DOC} shows nothing of {file}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn blocks_and_excerpts() {
    let doc = "text\n<!-- file: a.rs -->\n```rust\nfn a() {}\n\nfn b() {}\n```\n\n```yaml\nx: 1\n```\n<!-- file: b.toml -->\nnot the block's line\n```toml\n[x]\n```\n";
    let found = blocks(doc);
    let lines = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        found,
        [
            Block {
                line: 3,
                lang: "rust".into(),
                file: Some("a.rs".into()),
                text: lines(&["fn a() {}", "", "fn b() {}"])
            },
            Block { line: 9, lang: "yaml".into(), file: None, text: lines(&["x: 1"]) },
            Block { line: 14, lang: "toml".into(), file: None, text: lines(&["[x]"]) },
        ]
    );
    let file = "one\ntwo\nthree\n";
    assert!(is_excerpt(&lines(&["one", "two", "three"]), file));
    assert!(is_excerpt(&lines(&["two", "three"]), file));
    assert!(!is_excerpt(&lines(&["one", "three"]), file), "lines that are not consecutive");
    assert!(!is_excerpt(&lines(&["two", "three", ""]), file), "a line the file does not have");
    assert!(!is_excerpt(&lines(&["two "]), file), "a line that differs");
    assert!(!is_excerpt(&[], file), "an empty block");
}
