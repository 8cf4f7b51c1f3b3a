//! The plugin API of ari-core, as a listing that a test compares with the committed
//! `ari-core/api.txt`: every public item of the modules the crate documents as its plugin API
//! (functions and their signatures, types, fields, variants, trait methods and whether they have
//! a default, trait impls, macros, re-exports).
//!
//! A change that removes or alters a line of the listing is a breaking change for third-party
//! plugins: the test fails until ari-core's version is bumped (`api.txt` names the version it
//! lists). A change that only adds lines fails too, so that the listing stays the truth, but
//! needs no bump. `ARI_UPDATE_API=1 cargo test -p xtask api` rewrites the listing, and refuses to
//! accept removals without a new version.
//!
//! This reads the source, not rustdoc's JSON (nightly only) nor `cargo semver-checks` (a long
//! install on every fresh machine): the plugin modules are written plainly enough for a line scan.
#![cfg(test)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules of ari-core's plugin API: lib.rs and the files of `src/contract/` (lib.rs
/// documents the split).
const PLUGIN_MODULES: &[&str] = &[
    "lib",
    "capacity",
    "core_settings",
    "dump_store",
    "error",
    "job",
    "kinds",
    "plugin",
    "prelude",
    "quote",
    "sample",
    "settings",
    "ssh",
    "step",
    "testkit",
];

fn core_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ari-core")
}

/// `text` without `#[cfg(test)]` items, comments and string-free noise: the code that ships.
fn without_tests(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut skipping: Option<i32> = None;
    let mut pending_test = false;
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(depth) = skipping.as_mut() {
            *depth += braces(line);
            if *depth <= 0 {
                skipping = None;
            }
            continue;
        }
        if line == "#[cfg(test)]" {
            pending_test = true;
            continue;
        }
        if pending_test {
            pending_test = false;
            let depth = braces(line);
            if depth > 0 {
                skipping = Some(depth);
            }
            continue;
        }
        if line.starts_with("//") || line.is_empty() {
            continue;
        }
        lines.push(line.to_string());
    }
    lines
}

/// How much `line` opens braces (outside string and char literals, roughly).
fn braces(line: &str) -> i32 {
    let mut depth = 0;
    let mut in_string = false;
    let mut previous = ' ';
    for c in line.chars() {
        match c {
            '"' if previous != '\\' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => depth -= 1,
            _ => {}
        }
        previous = c;
    }
    depth
}

/// The signature that starts at `lines[i]`: up to its body's `{`, its `;` or its `,` (a field
/// or variant), whitespace normalised.
fn signature(lines: &[String], i: usize) -> (String, usize) {
    let mut text = String::new();
    let mut j = i;
    // Inside an open `(` (a function's parameters), a `,` ends no signature.
    let mut parens = 0;
    loop {
        let line = &lines[j];
        text.push(' ');
        text.push_str(line);
        parens += line.matches('(').count() as i32 - line.matches(')').count() as i32;
        let ends = line.ends_with('{')
            || line.ends_with(';')
            || line.ends_with('}')
            || (line.ends_with(',') && parens <= 0);
        if ends || j + 1 == lines.len() {
            break;
        }
        j += 1;
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // A static's or constant's value is no part of its signature.
    let text = match (text.starts_with("pub static ") || text.starts_with("pub const "), text.find(" = ")) {
        (true, Some(at)) if !text.starts_with("pub const fn") => text[..at].to_string(),
        _ => text,
    };
    // A body on the same line is no part of the signature.
    let text = match text.find(" {") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    let text = text.trim_end_matches(['{', ';', ',']).trim_end().to_string();
    (text.replace("( ", "(").replace(" )", ")").replace(", )", ")"), j)
}

/// The listing of one module.
fn module_items(module: &str, text: &str) -> Vec<String> {
    let lines = without_tests(text);
    let mut items = Vec::new();
    // What the lines being read are inside: a pub struct, enum, trait, an impl, or nothing.
    let mut context: Vec<(String, i32)> = Vec::new();
    let mut depth = 0;
    let mut hidden = false;
    let mut attributes: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].clone();
        if line.starts_with("#[") {
            if line.starts_with("#[doc(hidden)]") {
                hidden = true;
            }
            if line.starts_with("#[non_exhaustive]") || line.starts_with("#[macro_export]") {
                attributes.push(line.clone());
            }
            i += 1;
            continue;
        }
        let (sig, end) = signature(&lines, i);
        let inside = context.last().map(|(c, _)| c.clone());
        let in_pub_type =
            inside.as_deref().is_some_and(|c| c.starts_with("struct ") || c.starts_with("enum "));
        let in_trait = inside.as_deref().is_some_and(|c| c.starts_with("trait "));
        let record = |items: &mut Vec<String>, what: String| {
            let attrs =
                if attributes.is_empty() { String::new() } else { format!("{} ", attributes.join(" ")) };
            let place = inside.as_deref().map(|c| format!("{c}: ")).unwrap_or_default();
            items.push(format!("{module}: {place}{attrs}{what}"));
        };
        let opened: i32 = lines[i..=end].iter().map(|l| braces(l)).sum();
        if !hidden {
            if let Some(rest) = sig.strip_prefix("pub ") {
                if inside.as_deref().is_none_or(|c| c.starts_with("impl") || in_pub_type) {
                    record(&mut items, format!("pub {rest}"));
                }
            } else if sig.starts_with("macro_rules!") && attributes.iter().any(|a| a.contains("macro_export"))
            {
                record(&mut items, sig.clone());
            } else if in_trait
                && (sig.starts_with("fn ") || sig.starts_with("const ") || sig.starts_with("type "))
            {
                let default = if opened > 0 { " (provided)" } else { " (required)" };
                record(&mut items, format!("{sig}{default}"));
            } else if inside.as_deref().is_some_and(|c| c.starts_with("enum "))
                && sig.chars().next().is_some_and(char::is_uppercase)
            {
                record(&mut items, format!("variant {sig}"));
            } else if sig.starts_with("impl") && sig.contains(" for ") {
                record(&mut items, sig.clone());
            }
        }
        // Enter the item's body, naming what it is.
        if opened > 0 {
            let name = if let Some(rest) = sig.strip_prefix("pub struct ") {
                format!("struct {}", rest.split(['<', ' ', '(']).next().unwrap_or(rest))
            } else if let Some(rest) = sig.strip_prefix("pub enum ") {
                format!("enum {}", rest.split(['<', ' ']).next().unwrap_or(rest))
            } else if let Some(rest) = sig.strip_prefix("pub trait ") {
                format!("trait {}", rest.split(['<', ' ', ':']).next().unwrap_or(rest))
            } else if sig.starts_with("impl") {
                sig.clone()
            } else {
                format!("private {sig}")
            };
            let private = name.starts_with("private") || hidden;
            context.push((if private { format!("private {name}") } else { name }, depth));
            // A private item's insides are not API: skip to its end.
            if private {
                let mut inner = opened;
                let mut k = end + 1;
                while k < lines.len() && inner > 0 {
                    inner += braces(&lines[k]);
                    k += 1;
                }
                context.pop();
                hidden = false;
                attributes.clear();
                i = k;
                continue;
            }
        }
        depth += opened;
        while context.last().is_some_and(|(_, d)| depth <= *d) {
            context.pop();
        }
        hidden = false;
        attributes.clear();
        i = end + 1;
    }
    items
}

/// The plugin API of ari-core now.
fn listing() -> Vec<String> {
    let mut all = BTreeSet::new();
    for module in PLUGIN_MODULES {
        let room = if *module == "lib" { "" } else { "contract" };
        let path = core_dir().join("src").join(room).join(format!("{module}.rs"));
        // A module's own files (`job/file.rs`: reading a job file) add to its items.
        let mut paths = vec![path.clone()];
        if let Ok(entries) = std::fs::read_dir(path.with_extension("")) {
            let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            children.sort();
            paths.extend(children.into_iter().filter(|p| p.extension().is_some_and(|e| e == "rs")));
        }
        for path in paths {
            let text =
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            // Inside ari-core the contract's modules are `crate::contract::NAME`; a plugin names
            // them `ari_core::NAME` (lib.rs re-exports them), as the listing does.
            all.extend(
                module_items(module, &text)
                    .into_iter()
                    .map(|item| item.replace("crate::contract::", "crate::")),
            );
        }
    }
    // A trait impl is API when the type it is for is.
    let public: BTreeSet<String> = all
        .iter()
        .filter_map(|item| {
            let rest = item.split(": ").nth(1)?;
            let rest = rest.strip_prefix("#[non_exhaustive] ").unwrap_or(rest);
            let name = rest.strip_prefix("pub struct ").or_else(|| rest.strip_prefix("pub enum "))?;
            Some(name.split(['<', '(', ' ']).next()?.to_string())
        })
        .collect();
    all.into_iter()
        .filter(|item| {
            let Some((_, target)) = item.split_once(" for ") else { return true };
            !item.split(": ").nth(1).is_some_and(|i| i.starts_with("impl"))
                || public.contains(target.split(['<', ' ']).next().unwrap_or(target))
        })
        .collect()
}

fn core_version() -> String {
    let manifest =
        std::fs::read_to_string(core_dir().join("../Cargo.toml")).expect("read the workspace manifest");
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| l.trim().strip_prefix("version = ").map(|v| v.trim_matches('"').to_string()))
        .expect("a workspace version")
}

#[test]
fn the_plugin_api_matches_the_committed_listing() {
    let path = core_dir().join("api.txt");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let mut committed_lines = committed.lines();
    let committed_version =
        committed_lines.next().and_then(|l| l.strip_prefix("# ari-core ")).unwrap_or("none").to_string();
    let before: BTreeSet<&str> = committed_lines.collect();
    let now = listing();
    let after: BTreeSet<&str> = now.iter().map(String::as_str).collect();
    let removed: Vec<&&str> = before.difference(&after).collect();
    let added: Vec<&&str> = after.difference(&before).collect();
    let version = core_version();
    let breaking = !removed.is_empty() && committed_version == version;
    if std::env::var_os("ARI_UPDATE_API").is_some() && !breaking {
        let text = format!("# ari-core {version}\n{}\n", now.join("\n"));
        std::fs::write(&path, text).expect("write api.txt");
        return;
    }
    let show = |lines: &[&&str]| lines.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n");
    assert!(
        !breaking,
        "ari-core's plugin API changed in a breaking way without a new version ({version}): removed or altered:\n{}\nadded:\n{}\nbump the version in the workspace Cargo.toml, then run `ARI_UPDATE_API=1 cargo test -p xtask api`",
        show(&removed),
        show(&added)
    );
    assert!(
        removed.is_empty() && added.is_empty() && committed_version == version,
        "ari-core/api.txt is out of date (version {committed_version}, now {version}); removed:\n{}\nadded:\n{}\nrun `ARI_UPDATE_API=1 cargo test -p xtask api`",
        show(&removed),
        show(&added)
    );
}

#[test]
fn the_scan_sees_what_a_plugin_would_use() {
    let text = "\
pub struct Tool {
    pub setting: &'static str,
    secret: u8,
}
impl Tool {
    pub fn new(setting: &'static str) -> Tool {
        Tool { setting, secret: 0 }
    }
    fn private(&self) {}
}
#[doc(hidden)]
pub struct Hidden;
pub trait Backend: Send {
    fn name(&self) -> &'static str;
    fn probe(&self) -> u8 {
        0
    }
}
#[non_exhaustive]
pub enum Host {
    Local,
    Remote(String),
}
struct Private {
    pub not_api: u8,
}
#[cfg(test)]
mod tests {
    pub fn test_only() {}
}
pub fn after_tests() {}
";
    let items = module_items("m", text);
    assert_eq!(
        items,
        [
            "m: pub struct Tool",
            "m: struct Tool: pub setting: &'static str",
            "m: impl Tool: pub fn new(setting: &'static str) -> Tool",
            "m: pub trait Backend: Send",
            "m: trait Backend: fn name(&self) -> &'static str (required)",
            "m: trait Backend: fn probe(&self) -> u8 (provided)",
            "m: #[non_exhaustive] pub enum Host",
            "m: enum Host: variant Local",
            "m: enum Host: variant Remote(String)",
            "m: pub fn after_tests()",
        ]
    );
}
