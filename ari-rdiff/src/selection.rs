//! rdiff-backup's selection, as a job's `include` and `exclude` give it: absolute, normalised
//! paths, or globs that rdiff-backup matches against whole paths, which start with `/`.

use ari_core::kinds;
use ari_core::sample::Sample;

/// Checks an include or exclude entry of rdiff-backup: a normalised absolute path, or a pattern
/// starting with `/` or `**`. rdiff-backup matches a pattern against whole paths, which start
/// with `/`: one starting with a single `*` (`*.tmp`) matches nothing, and rdiff-backup stops.
pub fn check_pattern(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    kinds::check_no_control(path)?;
    match path.strip_prefix("**") {
        // Its parts are a path's, after the `**` that matches any start.
        Some(rest) => kinds::PATH.check(&format!("/**{rest}")),
        None if path.starts_with('/') => kinds::PATH.check(path),
        None => Err(
            "is not an absolute path (nor a pattern starting with `**`, which matches anywhere: `**/*.tmp`)"
                .into(),
        ),
    }
}

/// Checks what a job includes, as a path or a pattern: absolute, since a relative pattern
/// (`**/cache`) includes whatever matches anywhere on the host, and no glob of the whole tree
/// (`*` includes all of `/`); `/` says that, when it is meant.
pub fn check_include(path: &str) -> Result<(), String> {
    if kinds::is_whole_tree_glob(path) {
        return Err("is a glob of the whole tree: write `/` to back up everything".into());
    }
    if path.starts_with("**") {
        return Err("is a relative pattern, which includes what it matches anywhere on the host: write where, from `/` (`/home/**/cache`)".into());
    }
    if !path.is_empty() && !path.starts_with('/') {
        kinds::check_no_control(path)?;
        return Err("is not an absolute path (it must start with `/`)".into());
    }
    check_pattern(path)
}

/// An include or exclude entry as a spot check's rule (see `ari_core::sample::Sample`), from the
/// source root `root`: the directory its matches lie in, and the POSIX extended regular
/// expression that rdiff-backup's own translation of the glob gives (`**` any text, `*` and
/// `?` any but `/`, `[...]` a class, `[!...]` its complement). `None` for an absolute entry
/// outside `root`, which rdiff-backup never reaches.
pub fn sample_rule(entry: &str, root: &str) -> Option<(String, String)> {
    let entry = if entry.len() > 1 { entry.trim_end_matches('/') } else { entry };
    let from_root = match entry.strip_prefix("**") {
        Some(_) => entry.to_string(),
        None => format!("/{}", ari_core::plugin::relative_to(entry, root)?),
    };
    // A backslash escapes the next character: the base ends before the first of them too.
    let literal_end = from_root.find(['*', '?', '[', '\\']).unwrap_or(from_root.len());
    let base = if literal_end == from_root.len() {
        from_root.clone()
    } else {
        from_root[..literal_end].rsplit_once('/').map(|(dir, _)| dir).unwrap_or_default().to_string()
    };
    let base = if base.is_empty() { "/".to_string() } else { base };
    let rule = if from_root == "/" { String::new() } else { Sample::glob(&from_root) };
    Some((base, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(rule: fn(&str) -> Result<(), String>, ok: &[&str], bad: &[(&str, &str)]) {
        for value in ok {
            assert_eq!(rule(value), Ok(()), "{value:?}");
        }
        for (value, why) in bad {
            match rule(value) {
                Ok(()) => panic!("{value:?} was accepted"),
                Err(err) => assert!(err.contains(why), "{value:?}: `{why}` not in `{err}`"),
            }
        }
    }

    #[test]
    fn patterns() {
        check(
            check_pattern,
            &["/etc", "**/*.tmp", "/srv/**/cache", "/srv/data/", "/", "**"],
            &[
                ("etc", "not an absolute path"),
                ("*.tmp", "not an absolute path"),
                ("*", "not an absolute path"),
                ("ignorecase:/etc", "not an absolute path"),
                ("/srv/../etc", "`..`"),
                ("/srv/./x", "`.`"),
                ("**/../etc", "write `/etc`"),
                ("", "is empty"),
                ("/a\nb", "control character"),
            ],
        );
    }

    #[test]
    fn includes_are_absolute_and_no_glob_of_everything() {
        check(
            check_include,
            &["/", "/etc", "/srv/**/cache", "/home/*/Documents", "/*.conf", "/srv/data/"],
            &[
                ("etc", "not an absolute path (it must start with `/`)"),
                ("*.conf", "not an absolute path (it must start with `/`)"),
                ("", "is empty"),
                ("-x\n", "control character"),
                ("*", "glob of the whole tree"),
                ("**", "glob of the whole tree"),
                ("**/cache", "is a relative pattern"),
                ("/*", "glob of the whole tree: write `/`"),
                ("/**", "glob of the whole tree"),
                ("/**/*", "glob of the whole tree"),
                ("/*/", "glob of the whole tree"),
                ("/srv/../etc", "`..`"),
            ],
        );
    }

    #[test]
    fn entries_become_the_rules_rdiff_backup_matches_them_by() {
        let rule = |entry: &str, root: &str| sample_rule(entry, root);
        let some = |base: &str, rule: &str| Some((base.to_string(), rule.to_string()));
        assert_eq!(rule("/", "/"), some("/", ""));
        assert_eq!(rule("/etc", "/"), some("/etc", "/etc"));
        assert_eq!(rule("/srv/data/", "/"), some("/srv/data", "/srv/data"));
        assert_eq!(rule("/home/*/Documents", "/"), some("/home", "/home/[^/]*/Documents"));
        assert_eq!(rule("/srv/**/cache", "/"), some("/srv", "/srv/.*/cache"));
        assert_eq!(rule("/*.conf", "/"), some("/", "/[^/]*\\.conf"));
        assert_eq!(rule("**/*.tmp", "/"), some("/", ".*/[^/]*\\.tmp"));
        assert_eq!(rule("/a/file?[!x][^y][a-c]", "/"), some("/a", "/a/file[^/][^x][^y][a-c]"));
        assert_eq!(rule("/a/\\*x\\[", "/"), some("/a", "/a/\\*x\\["));
        assert_eq!(rule("/a/[]x]", "/"), some("/a", "/a/[]x]"));
        assert_eq!(rule("/a/[x", "/"), some("/a", "/a/\\[x"));
        assert_eq!(rule("/srv/www", "/srv"), some("/www", "/www"));
        // An escaped character ends the base as a wildcard does.
        assert_eq!(rule("/srv/My\\ Files", "/"), some("/srv", "/srv/My Files"));
        assert_eq!(rule("/etc", "/srv"), None);
    }
}
