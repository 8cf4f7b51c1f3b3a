//! ari-core's two rooms (ARCHITECTURE.md): the plugin contract (`ari-core/src/contract/`) never
//! names the engine (`crate::engine`, or the list ari-cli uses, `engine_api`), except its test
//! kit, which builds a plan as `ari plan` does; and a backend crate names nothing of ari-core
//! outside the contract: the modules and items `lib.rs` re-exports from it, and its macros.
//! A backend's tests count too: what they need of the engine, the test kit gives them.
//!
//! Code is read as the other invariants read it: comments and literals blanked; test items are
//! left out for the contract's rule (a unit test may use what it tests from anywhere), and kept
//! for the backends' rule.

#![cfg(test)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::invariants::{blank_comments_and_literals, plugin_crates, rust_files, scan};
use super::root;

/// The one contract file that may name the engine.
const TEST_KIT: &str = "ari-core/src/contract/testkit.rs";

/// The paths from inside ari-core that name the engine, in `code`.
fn engine_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("engine") {
        let before = &code[..at];
        let after = &code[at + "engine".len()..];
        let word_ends =
            !after.starts_with(|c: char| c.is_alphanumeric() || c == '_') || after.starts_with("_api");
        let path = before.ends_with("crate::") || before.ends_with("super::");
        if word_ends && path {
            let start =
                before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(0, |i| i + 1);
            let end =
                after.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(after.len());
            found.push(format!("{}engine{}", &before[start..], &after[..end]));
        }
    }
    found
}

/// What a plugin may name of ari-core: the contract's modules and the items `lib.rs` re-exports
/// from it, and the macros it exports.
fn contract_names() -> BTreeSet<String> {
    let lib = fs::read_to_string(root().join("ari-core/src/lib.rs")).expect("read ari-core's lib.rs");
    let code = blank_comments_and_literals(&lib);
    let mut names = BTreeSet::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(used) = statement.strip_prefix("pub use ") else { continue };
        // `contract::{a, b}`, `error::ConfigError`: the last segment of each path is the name.
        let (base, list) = match used.split_once("::{") {
            Some((base, list)) => (base, list.trim_end_matches('}').split(',').collect::<Vec<_>>()),
            None => used.rsplit_once("::").map_or((used, vec![used]), |(base, name)| (base, vec![name])),
        };
        if base == "inventory" || base.starts_with("crate::engine") {
            continue;
        }
        names.extend(list.iter().map(|name| name.trim().to_string()).filter(|name| !name.is_empty()));
    }
    for line in code.lines() {
        if let Some(name) = line.trim().strip_prefix("macro_rules! ") {
            names.insert(name.trim_end_matches(['{', ' ']).to_string());
        }
    }
    for dir in ["ari-core/src/contract"] {
        for file in rust_files(&root().join(dir)) {
            let text = fs::read_to_string(&file).unwrap_or_default();
            for line in blank_comments_and_literals(&text).lines() {
                if let Some(name) = line.trim().strip_prefix("macro_rules! ") {
                    names.insert(name.trim_end_matches(['{', ' ']).to_string());
                }
            }
        }
    }
    names
}

/// The names after `ari_core::` in `code` that are not in `allowed`.
fn outside_the_contract(code: &str, allowed: &BTreeSet<String>) -> Vec<String> {
    code.match_indices("ari_core::")
        .filter(|(at, _)| !code[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .filter_map(|(at, _)| {
            let rest = &code[at + "ari_core::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            // `ari_core::{a, b}`: each name of the group.
            if name.is_empty() && rest.starts_with('{') {
                let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
                let names: Vec<String> = group
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or_default().to_string())
                    .filter(|n| !n.is_empty() && !allowed.contains(n))
                    .collect();
                return (!names.is_empty()).then(|| names.join(", "));
            }
            (!allowed.contains(&name)).then_some(name)
        })
        .collect()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

#[test]
fn the_contract_never_names_the_engine() {
    let mut report = String::new();
    for file in rust_files(&root().join("ari-core/src/contract")) {
        if relative(&file) == TEST_KIT {
            continue;
        }
        let text = fs::read_to_string(&file).expect("read a contract file");
        for path in engine_paths(&scan(&text).code) {
            report.push_str(&format!("{} names the engine: `{path}`\n", relative(&file)));
        }
    }
    assert!(
        report.is_empty(),
        "{report}the plugin contract must not depend on the engine: move what both need into the contract, \
         or have the engine hand it to the contract as data (as it hands JobContext the probed versions)"
    );
}

#[test]
fn backend_crates_name_only_the_contract() {
    let allowed = contract_names();
    assert!(allowed.contains("step") && allowed.contains("register_backend"), "{allowed:?}");
    assert!(!allowed.contains("engine_api") && !allowed.contains("engine"), "{allowed:?}");
    let mut crates: Vec<String> = plugin_crates();
    crates.push("examples/ari-restic".to_string());
    let mut report = String::new();
    for name in &crates {
        for file in rust_files(&root().join(name)) {
            let text = fs::read_to_string(&file).expect("read a backend's file");
            for outside in outside_the_contract(&blank_comments_and_literals(&text), &allowed) {
                report.push_str(&format!("{} names ari_core::{outside}\n", relative(&file)));
            }
        }
    }
    assert!(
        report.is_empty(),
        "{report}a backend uses ari-core's contract only (ari_core::prelude, step, plugin, settings, kinds, testkit, ...)"
    );
}

#[test]
fn each_rule_finds_what_it_forbids() {
    let code = "use crate::engine::process::Runner;\nlet x = super::engine::exit::USAGE;\nuse crate::engine_api::plan;\n\
                let engineer = crate::engineering;\nuse crate::contract::step;";
    assert_eq!(
        engine_paths(code),
        ["crate::engine::process::Runner", "super::engine::exit::USAGE", "crate::engine_api::plan"]
    );
    let allowed: BTreeSet<String> = ["step", "prelude"].map(String::from).into();
    let code = "use ari_core::prelude::*;\nuse ari_core::engine_api::runner::Runner;\nuse ari_core::{step, process};\n\
                let a = my_ari_core::x;";
    assert_eq!(outside_the_contract(code, &allowed), ["engine_api", "process"]);
    // The crates it reads are there, so that the rule did not pass by reading nothing.
    assert!(rust_files(&root().join("ari-rdiff")).len() > 2);
    assert!(rust_files(&root().join("ari-core/src/contract")).len() > 5);
}
