//! What puts a store right after an rdiff-backup session that did not end normally (killed with
//! ari, stopped, failed): the backup step's repairs, which the engine runs only once the
//! session's process is proven gone (`Step::repaired_by`).
//!
//! rdiff-backup marks a session by a second `current_mirror` marker in `rdiff-backup-data`,
//! which names the process that wrote it, and its next run regresses the store by itself. But
//! it takes any live process id as its session still running (a zombie, or an unrelated process
//! that got the id again, of either marker), and then refuses; and its regress ends with the
//! "warnings only" status 2, whose words `--terminal-verbosity 1` hides. So ari regresses the
//! store deliberately, as soon as it knows the session is over: `rdiff-backup --force regress
//! STORE` (`--check-destination-dir` in the legacy command line), whose `--force` skips that
//! check of live ids (ari's record has proven the session gone), at a verbosity that shows its
//! words, status 2 counting as success only with the words that say the regress happened.
//!
//! `--force` is safe only while the store holds two markers, the newer one ari's session's: with
//! rdiff-backup's API 201, a forced regress of a store that needs none removes its newest
//! backup, and one of a session that is not ari's (rdiff-backup run by hand into the store)
//! would undo what that session, perhaps still running, wrote. The repair's presence query,
//! asked right before it runs, is that count and the newer marker's `PID N` line, which must
//! name the process of the step it repairs (the engine gives it as `$ARI_REPAIRED_PID`, once
//! that process is proven gone); without it, nothing is forced. A newer marker that is empty
//! counts too: rdiff-backup creates the file before it writes its id into it, so a session
//! killed in between leaves it empty, and rdiff-backup itself takes a marker without an id for
//! a session that is over (its next run would regress, and end with status 2).
//!
//! With API 201 (`--api-version 201`), an interrupted first backup also leaves its lock file,
//! and rdiff-backup refuses to start again while it is there ("an initial backup in a strange
//! state"), though the kernel lock on it went with the process. The second repair removes that
//! file when the store holds no marker at all: rdiff-backup then clears the interrupted first
//! backup itself and starts over.

use ari_core::quote::shell_quote;
use ari_core::step::{Command, Host, Phase, Step};

use crate::argv::Cli;

/// What rdiff-backup says (at verbosity 2 and up) when it regresses a store.
pub const REGRESSED: &str = "Previous backup seems to have failed, regressing destination now";

/// The argv that regresses `destination` to its last complete backup.
pub fn regress(program: &str, cli: Cli, destination: &str) -> Vec<String> {
    let action = match cli {
        Cli::New => "regress",
        Cli::Legacy => "--check-destination-dir",
    };
    [program, "--force", "--terminal-verbosity", "3", action, destination].map(str::to_string).to_vec()
}

/// The repairs of the backup step into `destination`, in the order they run.
pub fn repairs(program: &str, cli: Cli, destination: &str) -> Vec<Step> {
    let data = format!("{}/rdiff-backup-data", shell_quote(destination.trim_end_matches('/')));
    let lock = format!("{}/rdiff-backup-data/lock.yml", destination.trim_end_matches('/'));
    // `$1` exists when the glob matched one marker, `$2` when it matched two.
    let markers = format!("set -- {data}/current_mirror.*");
    vec![
        Step::run(
            Phase::Cleanup,
            "regress the store",
            Command::argv(Host::Local, regress(program, cli, destination)),
        )
        .present_while(Command::shell(
            Host::Local,
            format!(
                "{markers}; test -e \"$2\" && {{ grep -qx \"PID ${{{pid}:?}}\" \"$2\" || test ! -s \"$2\"; }}",
                pid = ari_core::step::REPAIRED_PID
            ),
        ))
        .tolerating(2, REGRESSED)
        .removes(format!("the unfinished session in {destination}, if the backup left one")),
        Step::run(
            Phase::Cleanup,
            "clear the lock of the interrupted first backup",
            Command::argv(Host::Local, ["rm", "-f", "--", &lock]),
        )
        .present_while(Command::shell(
            Host::Local,
            format!(
                "{markers}; test ! -e \"$1\" && {{ test -e {data}/lock.yml || test -h {data}/lock.yml; }}"
            ),
        ))
        .removes(format!("the lock file of an interrupted first backup in {destination}, if there is one")),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ari_core::step::Program;
    use ari_core::testkit;

    use super::*;

    /// Runs a repair's presence query against a store laid out with `files` in its
    /// rdiff-backup-data; whether it says the repair is needed.
    fn needed(repair: &Step, store: &Path, files: &[&str]) -> bool {
        let data = store.join("rdiff-backup-data");
        std::fs::create_dir_all(&data).unwrap();
        for file in std::fs::read_dir(&data).unwrap() {
            std::fs::remove_file(file.unwrap().path()).unwrap();
        }
        for file in files {
            std::fs::write(data.join(file), "PID 4242\n").unwrap();
        }
        let (query, _) = repair.presence().unwrap();
        let Program::Shell(script) = query.program() else { panic!("{query}") };
        // As the engine gives it: the repaired process's id (4242, the markers' own here).
        let query = &Command::shell(Host::Local, format!("ARI_REPAIRED_PID=4242; {script}"));
        // Run as the pipeline runs it.
        match testkit::run(query) {
            Ok(0) => true,
            Ok(1) => false,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_repair_is_needed_only_in_the_state_it_repairs() {
        let dir = tempfile::tempdir().unwrap();
        // A store path a shell would split or glob: the query must still name it.
        let store = dir.path().join("store [db] it's");
        let repairs = repairs("/usr/bin/rdiff-backup", Cli::New, store.to_str().unwrap());
        let (regress, unlock) = (&repairs[0], &repairs[1]);
        let one = "current_mirror.2026-01-01T00:00:00Z.data";
        let two = "current_mirror.2026-01-02T00:00:00Z.data";
        let check = |files: &[&str], expected: (bool, bool)| {
            assert_eq!(
                (needed(regress, &store, files), needed(unlock, &store, files)),
                expected,
                "{files:?}"
            );
        };
        check(&[], (false, false));
        check(&[one], (false, false));
        check(&[one, "lock.yml"], (false, false));
        check(&[one, two], (true, false));
        check(&[one, two, "lock.yml"], (true, false));
        check(&["lock.yml"], (false, true));
        check(&["lock.yml", "error_log.2026-01-01T00:00:00Z.data"], (false, true));
    }

    /// A store whose `rdiff-backup-data` holds the session markers `older` and `newer` (their
    /// texts), and the regress's presence query: the status it exits with after `prefix`.
    fn regress_query(older: &str, newer: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("rdiff-backup-data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("current_mirror.2026-01-01T00:00:00Z.data"), older).unwrap();
        std::fs::write(data.join("current_mirror.2026-01-02T00:00:00Z.data"), newer).unwrap();
        let repairs = repairs("/usr/bin/rdiff-backup", Cli::New, dir.path().to_str().unwrap());
        let (query, _) = repairs[0].presence().unwrap();
        let Program::Shell(script) = query.program() else { panic!("{query}") };
        (dir, script.clone())
    }

    fn ran(script: &str, prefix: &str) -> Result<i32, String> {
        testkit::run(&Command::shell(Host::Local, format!("{prefix}{script}")))
    }

    #[test]
    fn only_a_session_of_the_repaired_process_is_regressed_by_force() {
        // The newer marker: another process's session (rdiff-backup run by hand).
        let (_dir, script) = regress_query("PID 4242\n", "PID 42\n");
        let ran = |prefix: &str| ran(&script, prefix);
        assert_eq!(ran("ARI_REPAIRED_PID=42; "), Ok(0), "the newer marker is the repaired process's");
        for (prefix, what) in [
            ("ARI_REPAIRED_PID=4242; ", "the older marker's"),
            ("ARI_REPAIRED_PID=4; ", "a prefix of 42"),
            ("", "no process"),
        ] {
            assert!(matches!(ran(prefix), Ok(code) if code != 0), "{what}: not needed");
        }
    }

    #[test]
    fn a_session_killed_before_its_marker_names_it_is_regressed() {
        // The newer marker as a session killed between creating it and writing its id left it.
        let (dir, script) = regress_query("PID 42\n", "");
        let ran = |prefix: &str| ran(&script, prefix);
        assert_eq!(ran("ARI_REPAIRED_PID=4242; "), Ok(0), "an empty newer marker is a session that is over");
        // With one marker only, nothing is regressed, empty or not.
        let data = dir.path().join("rdiff-backup-data");
        std::fs::remove_file(data.join("current_mirror.2026-01-01T00:00:00Z.data")).unwrap();
        assert_ne!(ran("ARI_REPAIRED_PID=4242; "), Ok(0), "one marker: no unfinished session");
    }

    #[test]
    fn the_regress_forces_past_live_ids_and_counts_its_warning_only_with_its_words() {
        let repairs = repairs("/usr/bin/rdiff-backup", Cli::New, "/srv/store/db");
        let regress = &repairs[0];
        assert_eq!(
            regress.command().program(),
            &Program::Argv(
                ["/usr/bin/rdiff-backup", "--force", "--terminal-verbosity", "3", "regress", "/srv/store/db"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert!(regress.tolerates(2, &format!("WARNING: {REGRESSED}\n")));
        assert!(!regress.tolerates(2, "usage: rdiff-backup ..."));
        assert_eq!(
            super::regress("rdiff-backup", Cli::Legacy, "/s"),
            ["rdiff-backup", "--force", "--terminal-verbosity", "3", "--check-destination-dir", "/s"]
        );
    }
}
