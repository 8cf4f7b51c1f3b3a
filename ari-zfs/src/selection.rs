//! rsync's selection as a spot check's rules (`ari_core::sample::Sample`): the job's includes
//! are the paths rsync sends (`--relative`, from `/`), its excludes rsync filter patterns, read
//! as rsync reads them (its man page, "FILTER RULES"): a pattern starting with `/` is anchored
//! at the transfer's root, any other matches the end of a path (its last component, when it
//! holds no `/`), a trailing `/` matches only a directory, a trailing `/***` the directory and
//! everything in it; `*` and `?` match within one component, `**` across them, `[...]` is a
//! class (`[!...]` and `[^...]` its complement), and `\` takes the next character as it is.

use ari_core::sample::Sample;

/// What an exclude pattern becomes: a rule, and whether it matches directories only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludeRule {
    /// The rule over a path from the root (`/home/ann`).
    pub rule: String,
    /// Whether only a directory it matches is excluded (a trailing `/`).
    pub directories_only: bool,
}

/// rsync's reading of the exclude pattern `pattern`.
pub fn exclude_rule(pattern: &str) -> ExcludeRule {
    let pattern = pattern.strip_suffix("/***").unwrap_or(pattern);
    let (pattern, directories_only) = match pattern.strip_suffix('/') {
        Some(rest) if !rest.is_empty() => (rest, true),
        _ => (pattern, false),
    };
    // rsync reads a pattern without `*`, `?` or `[` as it is, backslashes included.
    let read = |text: &str| {
        if text.contains(['*', '?', '[']) {
            Sample::glob(text)
        } else {
            Sample::literal(text)
        }
    };
    let rule = match pattern.strip_prefix('/') {
        Some(anchored) => format!("/{}", read(anchored)),
        None => format!(".*/{}", read(pattern)),
    };
    ExcludeRule { rule, directories_only }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str) -> (String, bool) {
        let rule = exclude_rule(pattern);
        (rule.rule, rule.directories_only)
    }

    #[test]
    fn rsync_patterns_become_the_rules_rsync_matches_them_by() {
        let of = |rule: &str, only: bool| (rule.to_string(), only);
        assert_eq!(rule("/var/cache"), of("/var/cache", false));
        assert_eq!(rule("*.tmp"), of(".*/[^/]*\\.tmp", false));
        assert_eq!(rule("cache/"), of(".*/cache", true));
        assert_eq!(rule("/srv/tmp/***"), of("/srv/tmp", false));
        assert_eq!(rule("home/*/Cache"), of(".*/home/[^/]*/Cache", false));
        assert_eq!(rule("/data/**/old"), of("/data/.*/old", false));
        assert_eq!(rule("file?[!x][a-c]\\*"), of(".*/file[^/][^x][a-c]\\*", false));
        assert_eq!(rule("a[b"), of(".*/a\\[b", false));
        assert_eq!(rule("[]x]"), of(".*/[]x]", false));
        // Without a wildcard rsync takes a backslash as it is.
        assert_eq!(rule("foo\\bar"), of(".*/foo\\\\bar", false));
    }
}
