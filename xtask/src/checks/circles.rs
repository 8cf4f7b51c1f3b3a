//! No import circles between the files of a crate (HOUSE_STYLE: "No import circles between
//! files"): when file A uses file B and B uses A, directly or through others, none of them can be
//! read, tested or moved without the rest. This builds the file-level import graph of a crate's
//! `src/` and finds its strongly connected components of more than one file (Tarjan).
//!
//! A file uses another when its shipped code names a path into it: a `use` declaration (with groups
//! `{a, b::c}`, `self` in a group, `as`, `*`) or a path in the code (`crate::a::b(..)`,
//! `super::x::Y`), starting with `crate`, `super`, `self`, or the name of one of the file's own
//! child modules (`machine::boot` in `vm.rs`). A file's uses of its children count like any other:
//! a `mod.rs` that calls its children while they use its helpers through `super::` is a circle too,
//! whose helpers belong in a file of their own. The code is read as the invariants read it
//! ([`scan`]): comments and literals blanked, `#[cfg(test)]` items and test-only files left out,
//! since test code may use what it tests from anywhere. A path names the module file that is its
//! longest prefix (`a/b.rs` or `a/b/mod.rs` for `a::b`), so `crate::a::b::Item::new` is a use of
//! `a/b.rs`; paths inside an inline `mod name { .. }` start from that module.
//!
//! The crate root (`lib.rs`, or `main.rs` without one) is never the file used: its `pub use`
//! block re-exports items of other files under short names, so `crate::Foo` means a file that
//! only name resolution could tell, and counting it as a use of the root would put every file
//! that uses a re-export in one circle with the root, which declares and re-exports them all.
//! A folder's `mod.rs` may re-export too: a use of its re-export counts as a use of the
//! `mod.rs`, and where that closes a circle, the re-export is what to move. Where a crate has both `lib.rs` and `main.rs`, `main.rs` is the root of
//! another crate (the binary, which reaches the library by its name only) and is left out.

#![cfg(test)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::invariants::{closing, module_files, rust_files, scan};
use super::root;

/// The crate folders whose files must not use each other in a circle.
const CHECKED_CRATES: &[&str] = &["xtask", "ari-core", "ari-cli"];

/// A module that is a file: its path from the crate root (empty for the root).
type Module = Vec<String>;

/// The file-level import graph of a crate's `src/`.
#[derive(Debug)]
struct Graph {
    /// Each module's file, relative to `src/`.
    files: BTreeMap<Module, String>,
    /// What each module uses: the modules, each with the first path that names it.
    uses: BTreeMap<Module, BTreeMap<Module, String>>,
}

/// The module whose file is `relative` (to `src/`, with `/` between folders).
fn module_of(relative: &str) -> Module {
    if relative == "lib.rs" || relative == "main.rs" {
        return Vec::new();
    }
    let mut parts: Module = relative.trim_end_matches(".rs").split('/').map(String::from).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The graph of a crate's files, each given as its path relative to `src/` and its text.
fn graph_of(sources: &[(String, String)]) -> Graph {
    let has_lib = sources.iter().any(|(file, _)| file == "lib.rs");
    let sources: Vec<&(String, String)> =
        sources.iter().filter(|(file, _)| !(has_lib && file == "main.rs")).collect();
    let files: BTreeMap<Module, String> =
        sources.iter().map(|(file, _)| (module_of(file), file.clone())).collect();
    let mut uses = BTreeMap::new();
    for (file, text) in sources {
        let module = module_of(file);
        let code = scan(text).code;
        let inline = inline_modules(&code);
        let mut used: BTreeMap<Module, String> = BTreeMap::new();
        for (at, path) in paths(&code) {
            let within: Vec<String> = inline
                .iter()
                .filter(|(open, close, _)| *open < at && at < *close)
                .map(|m| m.2.clone())
                .collect();
            if let Some(target) = target(&files, &module, &within, &path) {
                used.entry(target).or_insert_with(|| path.join("::"));
            }
        }
        uses.insert(module, used);
    }
    Graph { files, uses }
}

/// The graph of the crate in `dir` (a crate folder), without the files of its test modules and
/// of its other binaries (`src/bin`).
fn graph(dir: &Path) -> Graph {
    let src = dir.join("src");
    let texts: Vec<(PathBuf, String)> = rust_files(&src)
        .into_iter()
        .filter(|file| !file.starts_with(src.join("bin")))
        .map(|file| {
            let text = fs::read_to_string(&file).expect("read source");
            (file, text)
        })
        .collect();
    let test_files: Vec<PathBuf> = texts
        .iter()
        .flat_map(|(file, text)| {
            scan(text).test_modules.into_iter().flat_map(|name| module_files(file, &name))
        })
        .collect();
    let sources: Vec<(String, String)> = texts
        .into_iter()
        .filter(|(file, _)| !test_files.contains(file))
        .map(|(file, text)| {
            let relative = file.strip_prefix(&src).expect("a file of src").to_string_lossy().into_owned();
            (relative, text)
        })
        .collect();
    graph_of(&sources)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path that `code` names, with where it stands: each path of each `use` declaration, and
/// each path of two segments or more in the rest of the code. Which of them lead into the
/// crate's files is for [`target`] to say.
fn paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = is_ident(chars[i]) && (i == 0 || !is_ident(chars[i - 1]));
        if !starts_word {
            i += 1;
            continue;
        }
        let word_end = (i..chars.len()).find(|&j| !is_ident(chars[j])).unwrap_or(chars.len());
        let word: String = chars[i..word_end].iter().collect();
        if word == "use" && chars.get(word_end).is_some_and(|c| c.is_whitespace()) {
            let end = (word_end..chars.len()).find(|&j| chars[j] == ';').unwrap_or(chars.len());
            let tree: String = chars[word_end..end].iter().collect();
            found.extend(use_paths(&tree).into_iter().map(|path| (i, path)));
            i = end;
            continue;
        }
        // A path's first segment: not one after `::`.
        let after_colons = i >= 2 && chars[i - 2] == ':' && chars[i - 1] == ':';
        let (path, end) = path_at(&chars, i);
        if !after_colons && path.len() >= 2 {
            found.push((i, path));
        }
        i = end;
    }
    found
}

/// The segments of the path that starts at `start` (`a::b::c`, up to a `::<`, `::{` or `::*`),
/// and where it ends.
fn path_at(chars: &[char], start: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    let mut i = start;
    loop {
        let end = (i..chars.len()).find(|&j| !is_ident(chars[j])).unwrap_or(chars.len());
        segments.push(chars[i..end].iter().collect());
        let more = chars.get(end) == Some(&':')
            && chars.get(end + 1) == Some(&':')
            && chars.get(end + 2).is_some_and(|&c| is_ident(c));
        if !more {
            return (segments, end);
        }
        i = end + 2;
    }
}

/// The paths of a use tree (what follows `use`, up to its `;`): `a::{b, c::{self, D as E}}`
/// gives `a::b`, `a::c`, `a::c::D`; a glob gives the path it globs.
fn use_paths(tree: &str) -> Vec<Vec<String>> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = tree.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_ident(c) {
            let end = (i..chars.len()).find(|&j| !is_ident(chars[j])).unwrap_or(chars.len());
            tokens.push(chars[i..end].iter().collect::<String>());
            i = end;
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".into());
            i += 2;
        } else {
            if matches!(c, '{' | '}' | ',' | '*') {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    let mut paths = Vec::new();
    let mut at = 0;
    use_tree(&tokens, &mut at, &[], &mut paths);
    paths
}

/// Reads one use tree from `tokens[*at..]` under `prefix` into `paths`.
fn use_tree(tokens: &[String], at: &mut usize, prefix: &[String], paths: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    // `self` alone in a group is the group's prefix.
    if !prefix.is_empty() && tokens.get(*at).is_some_and(|t| t == "self") {
        *at += 1;
    }
    while let Some(token) = tokens.get(*at) {
        match token.as_str() {
            "::" => *at += 1,
            "*" => {
                *at += 1;
                break;
            }
            "{" => {
                *at += 1;
                while tokens.get(*at).is_some_and(|t| t != "}") {
                    use_tree(tokens, at, &path, paths);
                    if tokens.get(*at).is_some_and(|t| t == ",") {
                        *at += 1;
                    }
                }
                *at += 1;
                return;
            }
            "as" => {
                // The alias names nothing in the crate.
                *at += 2;
                break;
            }
            "," | "}" => break,
            segment => {
                path.push(segment.to_string());
                *at += 1;
            }
        }
    }
    if !path.is_empty() {
        paths.push(path);
    }
}

/// Every inline module (`mod name { .. }`) of `code`: where its body opens and closes, and its
/// name.
fn inline_modules(code: &str) -> Vec<(usize, usize, String)> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    for i in 0..chars.len() {
        let is_mod = chars[i..].starts_with(&['m', 'o', 'd'])
            && (i == 0 || !is_ident(chars[i - 1]))
            && chars.get(i + 3).is_some_and(|c| c.is_whitespace());
        if !is_mod {
            continue;
        }
        let name_start = (i + 3..chars.len()).find(|&j| !chars[j].is_whitespace()).unwrap_or(chars.len());
        let name_end = (name_start..chars.len()).find(|&j| !is_ident(chars[j])).unwrap_or(chars.len());
        let open = (name_end..chars.len()).find(|&j| !chars[j].is_whitespace());
        if let Some(open) = open.filter(|&open| chars[open] == '{' && name_end > name_start) {
            let close = closing(&chars, open).unwrap_or(chars.len());
            found.push((open, close, chars[name_start..name_end].iter().collect()));
        }
    }
    found
}

/// The module file that `path`, written in `module` inside its inline modules `inline`, names:
/// the longest prefix of the absolute path that is a file; none for a path that does not start
/// in the crate, or that names the root or `module` itself.
fn target(
    files: &BTreeMap<Module, String>,
    module: &[String],
    inline: &[String],
    path: &[String],
) -> Option<Module> {
    let here: Module = module.iter().chain(inline).cloned().collect();
    let absolute: Module = match path.first()?.as_str() {
        "crate" => path[1..].to_vec(),
        "self" => here.iter().chain(&path[1..]).cloned().collect(),
        "super" => {
            let mut base = here;
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.into_iter().chain(rest.iter().cloned()).collect()
        }
        child => {
            let mut child_module = here.clone();
            child_module.push(child.to_string());
            if !files.contains_key(&child_module) {
                return None;
            }
            here.iter().chain(path).cloned().collect()
        }
    };
    let found = (0..=absolute.len()).rev().map(|n| absolute[..n].to_vec()).find(|m| files.contains_key(m))?;
    (!found.is_empty() && found != module).then_some(found)
}

/// The strongly connected components of the graph with more than one module (Tarjan), each
/// sorted, in order.
fn circles(graph: &Graph) -> Vec<Vec<Module>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, node: &'g Module) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            for next in self.graph.uses.get(node).into_iter().flat_map(|used| used.keys()) {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    component.push(top.clone());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan =
        Tarjan { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for node in graph.files.keys() {
        if !tarjan.index.contains_key(node) {
            tarjan.visit(node);
        }
    }
    tarjan.found.sort();
    tarjan.found
}

/// The circles of `graph` as a failure message: each circle's files, and the uses that close it.
fn report(src: &str, graph: &Graph, circles: &[Vec<Module>]) -> String {
    let file = |module: &Module| format!("{src}/{}", graph.files[module]);
    let mut text = format!("{} import circle(s) between the files of {src}:\n", circles.len());
    for circle in circles {
        let files: Vec<String> = circle.iter().map(file).collect();
        text += &format!("  {}\n", files.join(", "));
        for from in circle {
            for (to, path) in graph.uses[from].iter().filter(|(to, _)| circle.contains(to)) {
                text += &format!("    {} uses {} (`{path}`)\n", file(from), file(to));
            }
        }
    }
    text + "break each circle by moving what its files share to where it belongs (a file of its own that \
            they all use, or the one file that owns it), so that the uses run one way"
}

#[test]
fn no_import_circles_in_checked_crates() {
    let mut failures = Vec::new();
    for krate in CHECKED_CRATES {
        let graph = graph(&root().join(krate));
        let uses: usize = graph.uses.values().map(BTreeMap::len).sum();
        assert!(graph.files.len() > 1 && uses > 0, "{krate}: read too little to check: {graph:?}");
        let circles = circles(&graph);
        if !circles.is_empty() {
            failures.push(report(&format!("{krate}/src"), &graph, &circles));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The crate of `files` (each its path relative to `src/` and its text).
fn crate_of(files: &[(&str, &str)]) -> Graph {
    let sources: Vec<(String, String)> = files.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect();
    graph_of(&sources)
}

/// Checks the uses of the crate of `files`, as `from -> to` lines of files.
#[track_caller]
fn check(files: &[(&str, &str)], expected: &[&str]) {
    let graph = crate_of(files);
    let mut got = Vec::new();
    for (from, used) in &graph.uses {
        for to in used.keys() {
            got.push(format!("{} -> {}", graph.files[from], graph.files[to]));
        }
    }
    got.sort();
    assert_eq!(got, expected, "{files:?}");
}

#[test]
fn each_kind_of_path_names_the_file_it_reaches() {
    let root = ("lib.rs", "mod a;\nmod b;\n");
    let b = ("b.rs", "pub struct B;\n");
    // `use super::`, `use crate::`, with an item after the module, and an inline path.
    check(&[root, ("a.rs", "use super::b::B;\n"), b], &["a.rs -> b.rs"]);
    check(&[root, ("a.rs", "use crate::b::B::new;\n"), b], &["a.rs -> b.rs"]);
    check(&[root, ("a.rs", "fn f() { let _ = crate::b::B::new(1); }\n"), b], &["a.rs -> b.rs"]);
    check(&[root, ("a.rs", "fn f() -> super::b::B { super::b::B }\n"), b], &["a.rs -> b.rs"]);
    // Groups, `self` in a group, `as`, a glob.
    check(&[root, ("a.rs", "use crate::{b::{self, B as C}, x};\n"), b], &["a.rs -> b.rs"]);
    check(&[root, ("a.rs", "use super::{b as other};\n"), b], &["a.rs -> b.rs"]);
    check(&[root, ("a.rs", "pub(crate) use crate::b::*;\n"), b], &["a.rs -> b.rs"]);
    // The root is never the file used: `crate::A` is a re-export. The root's own uses count.
    check(
        &[
            ("lib.rs", "mod a;\nmod b;\npub use a::A;\n"),
            ("a.rs", "pub struct A;\n"),
            ("b.rs", "use crate::A;\nuse super::A as X;\n"),
        ],
        &["lib.rs -> a.rs"],
    );
    // A file's child modules, by name and by `self::`; `super::super` from a folder.
    let folder = [
        ("lib.rs", "mod a;\nmod d;\n"),
        ("a/mod.rs", "mod b;\nmod c;\nuse self::c::C;\nfn f() { b::g(); }\n"),
        ("a/b.rs", "fn g() { super::super::d::h(); }\n"),
        ("a/c.rs", "pub struct C;\n"),
        ("d.rs", "pub fn h() {}\n"),
    ];
    check(&folder, &["a/b.rs -> d.rs", "a/mod.rs -> a/b.rs", "a/mod.rs -> a/c.rs"]);
    // A name that is no child module of the file names nothing here; nor do later segments.
    check(&[root, ("a.rs", "use std::fs;\nfn f() { fs::read(x::b::B); }\n"), b], &[]);
    // Inside an inline module, `super` is the file's own module.
    check(
        &[("lib.rs", "mod a;\n"), ("a.rs", "mod b;\nmod inner {\n    use super::b::B;\n}\n"), ("a/b.rs", "")],
        &["a.rs -> a/b.rs"],
    );
    // Comments, literals and test code name nothing; `main.rs` beside `lib.rs` is another crate.
    check(
        &[
            root,
            ("a.rs", "// use crate::b::B;\nconst S: &str = \"crate::b::B\";\n#[cfg(test)]\nmod tests {\n    use crate::b::B;\n}\n"),
            b,
            ("main.rs", "mod b;\nfn main() { crate::b::B; }\n"),
        ],
        &[],
    );
}

/// Checks the circles of the crate of `files`, each as its files.
#[track_caller]
fn check_circles(files: &[(&str, &str)], expected: &[&[&str]]) {
    let graph = crate_of(files);
    let got: Vec<Vec<&str>> =
        circles(&graph).iter().map(|c| c.iter().map(|m| graph.files[m].as_str()).collect()).collect();
    assert_eq!(got, expected, "{files:?}");
}

#[test]
fn planted_circles_are_found_and_a_crate_without_one_passes() {
    // a -> b -> a through `use super::`.
    check_circles(
        &[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use super::b::B;\npub struct A;\n"),
            ("b.rs", "use super::a::A;\npub struct B;\n"),
        ],
        &[&["a.rs", "b.rs"]],
    );
    // a -> b -> c -> a through a group and an inline path, beside a file outside the circle
    // that uses one in it.
    check_circles(
        &[
            ("main.rs", "mod a;\nmod b;\nmod c;\nmod d;\n"),
            ("a.rs", "use crate::{b::{self, B}, x::Y};\n"),
            ("b.rs", "pub fn f() { crate::c::g(); }\n"),
            ("c.rs", "pub fn g() { let _ = super::a::A::default(); }\n"),
            ("d.rs", "use crate::a::A;\n"),
        ],
        &[&["a.rs", "b.rs", "c.rs"]],
    );
    // The same files with the uses running one way, through a folder and a re-export at the
    // root; comments, literals and test code that would close a circle do not count.
    check_circles(
        &[
            ("lib.rs", "mod a;\nmod d;\npub use a::b::X;\n"),
            ("a/mod.rs", "mod b;\nmod c;\nfn f() { b::x(); }\n"),
            ("a/b.rs", "use super::c::Y;\npub struct X;\n"),
            ("a/c.rs", "use crate::d::Z;\npub struct Y;\n"),
            (
                "d.rs",
                "use crate::X;\n// crate::a::c::Y\nconst S: &str = \"super::a::c\";\n#[cfg(test)]\nmod tests {\n    use crate::a::c::Y;\n}\npub struct Z;\n",
            ),
        ],
        &[],
    );
}

#[test]
fn a_circle_is_reported_with_its_files_and_the_uses_that_close_it() {
    let graph = crate_of(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use super::b::B;\n"),
        ("b.rs", "fn f() { super::a::g(); }\n"),
    ]);
    assert_eq!(
        report("k/src", &graph, &circles(&graph)),
        "1 import circle(s) between the files of k/src:\n  k/src/a.rs, k/src/b.rs\n    k/src/a.rs uses k/src/b.rs \
         (`super::b::B`)\n    k/src/b.rs uses k/src/a.rs (`super::a::g`)\nbreak each circle by moving what its \
         files share to where it belongs (a file of its own that they all use, or the one file that owns it), so \
         that the uses run one way"
    );
}
