//! The dump phase (`dumps:`, docs/jobs.md): for each dump, a step that streams the dump tool's
//! output from its host through ari (and a compressor on the backup server) into a temporary
//! name in the store's dump directory, then a step that renames it over the previous dump; then
//! what the backend runs once every dump landed (rdiff's versioning).
//!
//! *Invariant:* a dump replaces the previous one only after every stage of its stream exited 0
//! and its bytes passed its format's check: the rename is a step of its own, which the phase
//! reaches only after the stream's step succeeded. Every command here is fixed by the job (no
//! run-time value reaches a host), so `ari authorize` allows each exactly.

use std::time::Duration;

use crate::contract::core_settings::DUMP_TIMEOUT;
use crate::contract::dump_store::DumpStore;
use crate::contract::error::ConfigError;
use crate::contract::job::dump::{Compression, Dump, DumpOf};
use crate::contract::job::Job;
use crate::contract::plugin::Tool;
use crate::contract::settings::Settings;
use crate::contract::step::{Action, Command, DumpStream, Host, Phase, Program, Step};

/// Writes its input to `$1/$2`, a temporary name, and syncs it: in the directory `$1` (made
/// when missing; 0700 whatever it was), entered without following a symbolic link anywhere on
/// its path (`pwd -P` must be `$1` itself), so that nothing on the store's host can send the
/// dump elsewhere. The name is made anew by `dd`'s `conv=excl` (`O_CREAT|O_EXCL`, which no
/// existing name passes, a link to a device or a FIFO included: a shell's `set -C` would write
/// through those) and `oflag=nofollow`.
pub(crate) const WRITE: &str = r#"umask 077; mkdir -p -- "$1" && cd -P -- "$1" || exit 3; [ "$(pwd -P)" = "$1" ] || { echo "ari-dump: $1 leads to $(pwd -P): refused" >&2; exit 3; }; chmod 700 . && rm -f -- "$2" && dd of="$2" bs=1M conv=excl,fsync oflag=nofollow status=none"#;

/// Renames `$1/$2` (what [`WRITE`] wrote) to `$1/$3` over the previous dump, and syncs the
/// directory; in `$1` entered as [`WRITE`] does. `$2` must be a regular file (not a link put in
/// its place since), and a compressed dump must pass `zstd -t`, read through `dd
/// iflag=nofollow,nonblock` (no link followed, and a FIFO swapped in reads as empty instead of
/// blocking): what was stored, not only what
/// ari read, is whole; what the rename put in place must be that file still (a link swapped in
/// between the test and the rename is removed, and the dump fails).
pub(crate) const KEEP: &str = r#"cd -P -- "$1" || exit 3; [ "$(pwd -P)" = "$1" ] || { echo "ari-dump: $1 leads to $(pwd -P): refused" >&2; exit 3; }; { [ -f "$2" ] && [ ! -L "$2" ]; } || { echo "ari-dump: $2 is not the file the dump wrote" >&2; exit 3; }; case $3 in *.zst) dd if="$2" iflag=nofollow,nonblock bs=1M status=none | zstd -q -t || exit 3 ;; esac; mv -fT -- "$2" "$3" || exit 3; { [ -f "$3" ] && [ ! -L "$3" ]; } || { rm -f -- "$3"; echo "ari-dump: $3 is not the file the dump wrote" >&2; exit 3; }; sync -- ."#;

/// Reads the dump `$2` that the store keeps in `$1` (entered as [`WRITE`] does): its size,
/// then its first and last 4 KiB (of a plain dump: from its size and one read of each end; of a
/// compressed one: decompressed, after `zstd -t`); for `ari verify --full`, which judges them by
/// the dump's format. Every read opens the
/// file with `dd iflag=nofollow,nonblock`, so that a link put in its place (by a host that
/// writes the directory) is never read through, and a FIFO never blocks it. It changes nothing.
pub(crate) const CHECK: &str = r#"cd -P -- "$1" || exit 3; [ "$(pwd -P)" = "$1" ] || { echo "ari-dump: $1 leads to $(pwd -P): refused" >&2; exit 3; }; { [ -f "$2" ] && [ ! -L "$2" ]; } || { echo "ari-dump: there is no dump $2 in $1" >&2; exit 4; }; r() { dd if="$2" iflag=nofollow,nonblock bs=1M status=none; }; case $2 in *.zst) r "$@" | zstd -q -t || exit 5; r "$@" | zstd -q -d -c | wc -c; r "$@" | zstd -q -d -c | head -c 4096; r "$@" | zstd -q -d -c | tail -c 4096 ;; *) n=$(stat -c %s -- "$2") || exit 3; echo "$n"; r "$@" | head -c 4096; if [ "$n" -gt 4096 ]; then o=$((n - 4096)); else o=0; fi; dd if="$2" iflag=nofollow,nonblock,skip_bytes skip="$o" bs=4096 count=1 status=none ;; esac"#;

/// `ari verify --full`'s check of each dump the store keeps: its label, the read-only command
/// ([`CHECK`]) on the store's host, and what its bytes must show.
pub(crate) fn checks(dump_steps: &[Step]) -> Vec<(String, Command, crate::contract::end_check::EndCheck)> {
    dump_steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Dump(stream) => {
                let argv = ["sh", "-c", CHECK, "ari-dump", &stream.directory, &stream.file];
                Some((stream.name.clone(), Command::argv(stream.writer.host.clone(), argv), stream.check))
            }
            _ => None,
        })
        .collect()
}

/// Judges what [`CHECK`] printed (a size line, then the first and last bytes, each at most
/// `EndCheck::TAIL`): the dump's size, or why it is not whole.
pub(crate) fn judge_stored(
    printed: &[u8],
    check: &crate::contract::end_check::EndCheck,
) -> Result<u64, String> {
    let keep = crate::contract::end_check::EndCheck::TAIL as u64;
    let newline = printed.iter().position(|&b| b == b'\n').ok_or("it printed no size")?;
    let size: u64 = std::str::from_utf8(&printed[..newline])
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or("it printed no size")?;
    let rest = &printed[newline + 1..];
    let part = size.min(keep) as usize;
    if rest.len() != 2 * part {
        return Err(format!("it printed {} bytes of the dump's ends, not {}", rest.len(), 2 * part));
    }
    check.judge(&rest[..part], &rest[part..])?;
    Ok(size)
}

/// The file a dump is kept as: its name, its format's extension, `.zst` when compressed.
pub(crate) fn file_name(dump: &Dump) -> String {
    let extension = match &dump.of {
        DumpOf::Postgresql { database: Some(_) } => "pgdump",
        DumpOf::Postgresql { database: None } | DumpOf::Mysql { .. } | DumpOf::Sqlite { .. } => "sql",
        DumpOf::Mongodb { .. } => "archive",
        DumpOf::Command(_) => "dump",
    };
    match dump.compress {
        Compression::None => format!("{}.{extension}", dump.name),
        Compression::Zstd => format!("{}.{extension}.zst", dump.name),
    }
}

/// How to load a dump once restored, as a command to show (`FILE` for its path).
pub(crate) fn load_hint(dump: &Dump) -> String {
    match &dump.of {
        DumpOf::Postgresql { database: Some(database) } => {
            format!("pg_restore --dbname={database} FILE (into an existing database; --create --dbname=postgres makes it)")
        }
        DumpOf::Postgresql { database: None } => "psql --file=FILE postgres".to_string(),
        DumpOf::Mysql { .. } => "mysql < FILE".to_string(),
        DumpOf::Mongodb { .. } => "mongorestore --archive=FILE".to_string(),
        DumpOf::Sqlite { .. } => "sqlite3 NEW.db < FILE".to_string(),
        DumpOf::Command(program) => format!("FILE is what `{program}` wrote to its standard output"),
    }
}

/// The dump tool's command line, before the container or user it runs as.
fn tool(dump: &Dump) -> Program {
    let words = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let argv = match &dump.of {
        // `--no-password`: libpq asks /dev/tty, not stdin, so a dump run from a terminal would
        // otherwise wait at a prompt no one sees until its timeout.
        DumpOf::Postgresql { database: Some(database) } => {
            let mut argv = words(&["pg_dump", "--format=custom", "--no-password"]);
            argv.extend(dump.options.iter().cloned());
            argv.push(database.clone());
            argv
        }
        DumpOf::Postgresql { database: None } => {
            let mut argv = words(&["pg_dumpall", "--globals-only", "--no-password"]);
            argv.extend(dump.options.iter().cloned());
            argv
        }
        DumpOf::Mysql { database } => {
            let mut argv = words(&["mysqldump", "--single-transaction"]);
            argv.extend(dump.options.iter().cloned());
            match database {
                Some(database) => argv.extend(["--databases".to_string(), database.clone()]),
                None => argv.push("--all-databases".to_string()),
            }
            argv
        }
        DumpOf::Mongodb { database } => {
            let mut argv = words(&["mongodump", "--archive"]);
            argv.extend(dump.options.iter().cloned());
            argv.extend(database.iter().map(|database| format!("--db={database}")));
            argv
        }
        // `.dump` writes the whole database as SQL in one transaction; read-only, it changes
        // nothing (`.backup` cannot write to stdout).
        DumpOf::Sqlite { path } => words(&["sqlite3", "-readonly", path, ".dump"]),
        DumpOf::Command(program) => return program.clone(),
    };
    Program::Argv(argv)
}

/// The dump's command on its host: the tool, inside its container or as its user.
pub(crate) fn source(job: &Job, dump: &Dump) -> Command {
    let host = Host::named(dump.host.as_deref().unwrap_or(&job.source_hostname));
    let inner = tool(dump);
    let prefix: Vec<String> = match (&dump.container, &dump.run_as) {
        (Some(container), user) => {
            let mut prefix = vec![container.engine.clone(), "exec".to_string()];
            if let Some(user) = user {
                prefix.extend(["--user".to_string(), user.clone()]);
            }
            prefix.push(container.name.clone());
            prefix
        }
        (None, Some(user)) => vec!["runuser".to_string(), "-u".to_string(), user.clone(), "--".to_string()],
        (None, None) => Vec::new(),
    };
    match (inner, prefix.is_empty()) {
        (program, true) => Command { host, program },
        (Program::Argv(argv), false) => Command::argv(host, prefix.into_iter().chain(argv)),
        (Program::Shell(text), false) => {
            Command::argv(host, prefix.into_iter().chain(["sh".to_string(), "-c".to_string(), text]))
        }
    }
}

/// The dump phase's steps of `job`, whose dumps land in `store`.
pub(crate) fn steps(job: &Job, settings: &Settings, store: DumpStore) -> Vec<Step> {
    let mut steps = Vec::new();
    let default_timeout: Duration = settings.get(&DUMP_TIMEOUT);
    for dump in &job.dumps {
        let file = file_name(dump);
        let partial = format!(".{file}.partial");
        let on_store = |script: &str, names: &[&str]| {
            let mut argv =
                vec!["sh".to_string(), "-c".to_string(), script.to_string(), "ari-dump".to_string()];
            argv.push(store.directory.clone());
            argv.extend(names.iter().map(|name| name.to_string()));
            Command::argv(store.host.clone(), argv)
        };
        let stream = DumpStream {
            name: dump.name.clone(),
            source: source(job, dump),
            compress: match dump.compress {
                Compression::None => None,
                Compression::Zstd => {
                    Some(Command::argv(Host::Local, ["zstd", "-q", "-c", "-T0", "--rsyncable"]))
                }
            },
            writer: on_store(WRITE, &[&partial]),
            directory: store.directory.clone(),
            file: file.clone(),
            check: dump.of.end_check(),
            timeout: dump.timeout.unwrap_or(default_timeout),
        };
        let mut step = Step::run(Phase::Dump, format!("dump {}", dump.name), stream.source.clone());
        step.action = Action::Dump(Box::new(stream));
        steps.push(step);
        steps.push(Step::run(
            Phase::Dump,
            format!("keep dump {}", dump.name),
            on_store(KEEP, &[&partial, &file]),
        ));
    }
    steps.extend(store.then.into_iter().map(|mut step| {
        step.phase = Phase::Dump;
        step
    }));
    steps
}

/// The local programs the dumps need: the compressor.
pub(crate) fn tools(job: &Job) -> Vec<Tool> {
    let compressed = job.dumps.iter().any(|dump| dump.compress == Compression::Zstd);
    compressed.then(|| Tool::new("dumps", "zstd")).into_iter().collect()
}

/// Refuses a job with dumps whose backend keeps none.
pub(crate) fn no_store(job: &Job, backend: &str) -> ConfigError {
    job.error_at("dumps", format!("the {backend} backend keeps no database dumps"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dumps: &str) -> Job {
        Job::parse(
            std::path::Path::new("/etc/ari-backup/jobs.d/db.yaml"),
            &format!("source_hostname: db\ndumps:\n{dumps}"),
        )
        .unwrap()
    }

    fn check(dump: &str, expected: &str) {
        let job = job(&format!("  - {dump}\n"));
        let command = source(&job, &job.dumps[0]);
        assert_eq!(command.to_string(), expected, "{dump}");
    }

    #[test]
    fn each_kind_runs_its_tool_on_its_host() {
        check(
            "{name: app, type: postgresql, database: app, run_as: postgres}",
            "`runuser -u postgres -- pg_dump --format=custom --no-password app` on db",
        );
        check(
            "{name: g, type: postgresql, globals: true, options: [--no-role-passwords]}",
            "`pg_dumpall --globals-only --no-password --no-role-passwords` on db",
        );
        check(
            "{name: all, type: mysql, options: [--routines, '--socket=/run/mysqld/mysqld.sock']}",
            "`mysqldump --single-transaction --routines --socket=/run/mysqld/mysqld.sock --all-databases` on db",
        );
        check(
            "{name: one, type: mysql, database: shop, host: localhost}",
            "`mysqldump --single-transaction --databases shop` on localhost",
        );
        check(
            "{name: u, type: mongodb, database: users, container: mongo}",
            "`docker exec mongo mongodump --archive --db=users` on db",
        );
        check(
            "{name: u, type: mongodb, container: mongo, container_engine: podman, run_as: mongodb}",
            "`podman exec --user mongodb mongo mongodump --archive` on db",
        );
        check(
            "{name: c, type: sqlite, path: /var/lib/app/db.sqlite3}",
            "`sqlite3 -readonly /var/lib/app/db.sqlite3 .dump` on db",
        );
        check("{name: ldap, command: [slapcat, -n, '1']}", "`slapcat -n 1` on db");
        check(
            "{name: s, command: 'pg_dump app | head', run_as: postgres}",
            "`runuser -u postgres -- sh -c 'pg_dump app | head'` on db",
        );
    }

    #[test]
    fn the_check_reads_as_many_bytes_of_each_end_as_the_judge_expects() {
        let keep = crate::contract::end_check::EndCheck::TAIL;
        assert!(CHECK.contains(&format!("head -c {keep}")), "{CHECK}");
        assert!(CHECK.contains(&format!("tail -c {keep}")), "{CHECK}");
        assert!(
            CHECK.contains(&format!("n - {keep}")) && CHECK.contains(&format!("bs={keep} count=1")),
            "{CHECK}"
        );
    }

    #[test]
    fn a_stored_dump_is_judged_by_its_size_and_ends() {
        let mysql = DumpOf::Mysql { database: None }.end_check();
        let dump = b"-- MariaDB dump\nINSERT;\n-- Dump completed on 2026-12-07\n";
        let printed = [format!("{}\n", dump.len()).as_bytes(), dump, dump].concat();
        assert_eq!(judge_stored(&printed, &mysql), Ok(dump.len() as u64));
        let cut = b"-- MariaDB dump\nINSERT;\n";
        let printed = [format!("{}\n", cut.len()).as_bytes(), cut, cut].concat();
        assert!(judge_stored(&printed, &mysql).unwrap_err().contains("cut short"));
        assert!(judge_stored(b"12\nshort", &mysql).unwrap_err().contains("not 24"));
        assert!(judge_stored(b"", &mysql).is_err());
    }

    #[test]
    fn files_are_named_by_label_format_and_compression() {
        let job = job("  - {name: app, type: postgresql, database: app}\n  - {name: all, type: mysql, compress: zstd}\n  - {name: x, command: [x]}\n");
        let names: Vec<String> = job.dumps.iter().map(file_name).collect();
        assert_eq!(names, ["app.pgdump", "all.sql.zst", "x.dump"]);
    }
}
