//! The main step's argv: the job's `command` with its placeholders filled in, checked. A pure
//! function, so that its rules are tested without a job or a process.

/// Replaced by where the snapshot source shows the frozen files on the source host.
pub const SNAPSHOT_ROOT: &str = "{snapshot_root}";
/// Replaced by the job's label.
pub const LABEL: &str = "{label}";

/// Words that a shell would take as a pipe, a list or a redirection. The command runs without a
/// shell, where they would reach the program as arguments: `pg_dump db > db.sql` would pass `>`
/// and `db.sql` to pg_dump and write nothing. `;` is not among them: `find ... -exec ... ;` needs
/// it as an argument.
const SHELL_OPERATORS: &[&str] =
    &["|", "||", "&&", "&", ">", ">>", "<", "<<", "2>", "2>>", "&>", "2>&1", ">&2", "1>&2"];

/// The values of the placeholders for one job.
#[derive(Debug, Clone, Copy)]
pub struct Placeholders<'a> {
    /// The job's label.
    pub label: &'a str,
    /// Where the snapshot source shows the frozen files, when the job has one.
    pub snapshot_root: Option<&'a str>,
}

/// The command's words with `{snapshot_root}` and `{label}` replaced, wherever they stand in a
/// word; other braces stay as written (`find -exec {} ;`, a jq filter). The error is a message
/// about the `command` setting, without its name.
pub fn expand(command: &[String], placeholders: &Placeholders) -> Result<Vec<String>, String> {
    let Some(program) = command.first() else {
        return Err("is empty: name the program and its arguments, e.g. [restic, backup, /etc]".into());
    };
    if program.is_empty() {
        return Err("the program (the first word) is empty".into());
    }
    if let Some(operator) = command.iter().find(|word| SHELL_OPERATORS.contains(&word.as_str())) {
        return Err(format!(
            "`{operator}` is a shell operator, but the command runs without a shell; for redirections and pipes write [sh, -c, \"...\"], or use the program's own option (pg_dump --file)"
        ));
    }
    let mut values = vec![(LABEL, placeholders.label)];
    if let Some(root) = placeholders.snapshot_root {
        values.push((SNAPSHOT_ROOT, root));
    }
    let filled = command
        .iter()
        .map(|word| match placeholders.snapshot_root {
            None if word.contains(SNAPSHOT_ROOT) => Err(format!(
                "`{word}`: {SNAPSHOT_ROOT} needs a snapshot source (snapshot: lvm), and this job has none"
            )),
            _ => Ok(fill(word, &values)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Run without a shell, the first word is what is executed (a placeholder in it filled in):
    // a relative path would be looked for wherever ari, or the remote shell, happens to start.
    ari_core::kinds::PROGRAM
        .check(&filled[0])
        .map_err(|why| format!("the program `{}` {why}", ari_core::kinds::shown(&filled[0])))?;
    Ok(filled)
}

/// `word` with each placeholder replaced by its value, in one pass: a value is never expanded
/// again, whatever it holds.
fn fill(word: &str, values: &[(&str, &str)]) -> String {
    let mut filled = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(at) = rest.find('{') {
        filled.push_str(&rest[..at]);
        rest = &rest[at..];
        match values.iter().find(|(name, _)| rest.starts_with(name)) {
            Some((name, value)) => {
                filled.push_str(value);
                rest = &rest[name.len()..];
            }
            None => {
                filled.push('{');
                rest = &rest[1..];
            }
        }
    }
    filled.push_str(rest);
    filled
}

/// The name of the main step: the program's file name (`restic` for `/usr/bin/restic`).
pub fn step_name(argv: &[String]) -> String {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    std::path::Path::new(program)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[track_caller]
    fn check(command: &[&str], snapshot_root: Option<&str>, expected: Result<&[&str], &str>) {
        let placeholders = Placeholders { label: "db", snapshot_root };
        let actual = expand(&words(command), &placeholders);
        match expected {
            Ok(argv) => assert_eq!(actual, Ok(words(argv)), "{command:?}"),
            Err(fragment) => {
                let message = actual.expect_err("an error");
                assert!(message.contains(fragment), "{command:?}: `{fragment}` not in `{message}`");
            }
        }
    }

    #[test]
    fn placeholders() {
        let root = Some("/tmp/db");
        check(&["restic", "backup", "/etc"], None, Ok(&["restic", "backup", "/etc"]));
        check(&["restic", "backup", "{snapshot_root}"], root, Ok(&["restic", "backup", "/tmp/db"]));
        check(&["tar", "-C", "{snapshot_root}/etc", "."], root, Ok(&["tar", "-C", "/tmp/db/etc", "."]));
        check(&["x", "--root={snapshot_root}/"], root, Ok(&["x", "--root=/tmp/db/"]));
        check(&["x", "{snapshot_root}{snapshot_root}"], root, Ok(&["x", "/tmp/db/tmp/db"]));
        check(&["x", "--tag", "{label}"], None, Ok(&["x", "--tag", "db"]));
        check(&["/usr/local/bin/backup-{label}"], None, Ok(&["/usr/local/bin/backup-db"]));
        check(&["x", "{snapshot_root}/{label}.sql"], root, Ok(&["x", "/tmp/db/db.sql"]));
        // Other braces are the program's business.
        check(&["find", "/", "-exec", "ls", "{}", ";"], None, Ok(&["find", "/", "-exec", "ls", "{}", ";"]));
        check(
            &["x", "{snapshot}", "{ label }", "{LABEL}"],
            None,
            Ok(&["x", "{snapshot}", "{ label }", "{LABEL}"]),
        );
        check(&["x", "{{label}}", "{", "}{", "{label"], None, Ok(&["x", "{db}", "{", "}{", "{label"]));
        check(&["x", "€{label}€"], None, Ok(&["x", "€db€"]));
        // A placeholder's value is never expanded again.
        let odd = Placeholders { label: "{snapshot_root}", snapshot_root: Some("/mnt/{label}") };
        let argv = expand(&words(&["x", "{label}", "{snapshot_root}"]), &odd);
        assert_eq!(argv, Ok(words(&["x", "{snapshot_root}", "/mnt/{label}"])));
    }

    #[test]
    fn bad_commands() {
        check(&[], None, Err("is empty: name the program and its arguments"));
        check(&["", "backup"], None, Err("the program (the first word) is empty"));
        check(
            &["restic", "backup", "{snapshot_root}/etc"],
            None,
            Err("`{snapshot_root}/etc`: {snapshot_root} needs a snapshot source (snapshot: lvm), and this job has none"),
        );
        check(&["{snapshot_root}/bin/x"], None, Err("needs a snapshot source"));
        check(
            &["pg_dump", "db", ">", "/x.sql"],
            None,
            Err("`>` is a shell operator, but the command runs without a shell"),
        );
        check(&["a", "|", "b"], None, Err("`|` is a shell operator"));
        check(&["a", "2>&1"], None, Err("`2>&1` is a shell operator"));
        check(&["a", "&&", "b"], None, Err("`&&` is a shell operator"));
        // The program is executed as it stands: a relative path would depend on the directory
        // ari starts in (cron's, the remote user's home).
        let relative = "is a relative path: give an absolute path, or a bare name looked up on PATH";
        check(&["./backup.sh"], None, Err(&format!("the program `./backup.sh` {relative}")));
        check(&["bin/backup", "{label}"], None, Err(&format!("the program `bin/backup` {relative}")));
        check(&["-rf", "/"], None, Err("the program `-rf` must not start with `-`"));
        check(&["/usr/local/bin/"], None, Err("names a directory"));
        check(&["{label}.sh"], None, Ok(&["db.sh"]));
        // Inside a word, or quoted for sh -c, they are arguments.
        check(&["sh", "-c", "pg_dump db > /x.sql"], None, Ok(&["sh", "-c", "pg_dump db > /x.sql"]));
        check(&["grep", "a|b", "--", "x>y"], None, Ok(&["grep", "a|b", "--", "x>y"]));
    }

    #[test]
    fn step_names() {
        let check = |argv: &[&str], expected: &str| assert_eq!(step_name(&words(argv)), expected, "{argv:?}");
        check(&["restic", "backup"], "restic");
        check(&["/usr/bin/borg", "create"], "borg");
        check(&["./bin/backup.sh"], "backup.sh");
        check(&["/"], "/");
        check(&[], "");
    }
}
