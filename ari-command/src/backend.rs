//! The command backend: checks, tools and the one main step.

use ari_core::plugin::{BackupBackend, JobContext, Tool};
use ari_core::step::{Command, Host, Phase, Step};
use ari_core::ConfigError;

use crate::argv::{self, Placeholders};
use crate::settings::{COMMAND, COMMAND_HOST};

/// The backend that runs the job's own command, registered as `command`.
pub struct CommandBackend;

ari_core::register_backend!(CommandBackend);

/// The host the command runs on: the job's source host, or the backup server.
fn host(job: &JobContext) -> Host {
    match job.get(&COMMAND_HOST).as_str() {
        "local" => Host::Local,
        _ => job.source_host(),
    }
}

/// The command's argv with its placeholders filled in; the error names the key.
fn argv(job: &JobContext) -> Result<Vec<String>, ConfigError> {
    let command = job.require(&COMMAND)?;
    let snapshot_root = job.snapshot_root();
    let placeholders = Placeholders { label: &job.job().label, snapshot_root: snapshot_root.as_deref() };
    argv::expand(&command, &placeholders).map_err(|message| job.error_at("command", message))
}

impl BackupBackend for CommandBackend {
    fn name(&self) -> &'static str {
        "command"
    }

    fn summary(&self) -> &'static str {
        "the job's own command (restic, borg, pg_dump, ...), on the source host or the backup server"
    }

    fn check(&self, job: &JobContext) -> Result<(), ConfigError> {
        argv(job)?;
        // ari would silently drop them: what the command backs up is what the command names.
        for (key, paths) in [("include", &job.job().include), ("exclude", &job.job().exclude)] {
            if !paths.is_empty() {
                return Err(job.error_at(
                    key,
                    "the command backend does not use include or exclude; name what to back up (and skip) in `command`",
                ));
            }
        }
        Ok(())
    }

    fn tools(&self, job: &JobContext) -> Vec<Tool> {
        if !host(job).is_local() {
            return Vec::new();
        }
        match argv(job) {
            Ok(argv) => argv.into_iter().take(1).map(|program| Tool::new("command", program)).collect(),
            Err(_) => Vec::new(), // check() reports it
        }
    }

    fn main_steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        let argv = argv(job)?;
        let name = argv::step_name(&argv);
        Ok(vec![Step::run(Phase::Main, name, Command::argv(host(job), argv))])
    }
}

#[cfg(test)]
mod tests {

    use ari_core::plugin::SnapshotSource;
    use ari_core::step::Program;
    use ari_core::testkit::TestJob;

    use super::*;

    /// A snapshot source for the tests, showing the frozen files under `/snap/LABEL`.
    struct Frozen;

    impl SnapshotSource for Frozen {
        fn name(&self) -> &'static str {
            "frozen"
        }
        fn summary(&self) -> &'static str {
            "test snapshots"
        }
        fn check(&self, _job: &JobContext) -> Result<(), ConfigError> {
            Ok(())
        }
        fn tools(&self, _job: &JobContext) -> Vec<Tool> {
            Vec::new()
        }
        fn root(&self, job: &JobContext) -> String {
            format!("/snap/{}", job.job().label)
        }
        fn steps(&self, _job: &JobContext) -> Result<Vec<Step>, ConfigError> {
            Ok(Vec::new())
        }
    }

    /// Parses a job of the command backend (`backend: command` is added) and calls `f` with its
    /// context, with the test snapshot source when `snapshot` is true.
    fn with_job<T>(yaml: &str, snapshot: bool, f: impl FnOnce(&JobContext) -> T) -> T {
        let text = format!("backend: command\n{yaml}");
        let mut job = TestJob::try_parse_at("/jobs/db.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        if snapshot {
            job = job.with_snapshot_source(&Frozen);
        }
        f(&job.context())
    }

    /// What the backend makes of a job: `host: argv` of its step and its tools, or the error.
    fn plan(yaml: &str, snapshot: bool) -> Result<String, String> {
        with_job(yaml, snapshot, |job| {
            let backend = CommandBackend;
            backend.check(job).map_err(|e| e.to_string())?;
            assert!(backend.post_steps(job).unwrap().is_empty(), "no post steps");
            let steps = backend.main_steps(job).map_err(|e| e.to_string())?;
            let [step] = steps.as_slice() else { panic!("one main step, not {steps:?}") };
            let command = step.command();
            let Program::Argv(argv) = command.program() else { panic!("no shell: {command:?}") };
            let tools = backend.tools(job);
            Ok(format!("{} on {}: {argv:?} tools {tools:?}", step.name(), command.host()))
        })
    }

    #[track_caller]
    fn check(yaml: &str, snapshot: bool, expected: Result<&str, &str>) {
        match (plan(yaml, snapshot), expected) {
            (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "{yaml}"),
            (Err(actual), Err(expected)) => {
                let expected = match expected.starts_with(|c: char| c.is_ascii_digit()) {
                    true => format!("/jobs/db.yaml:{expected}"),
                    false => format!("/jobs/db.yaml: {expected}"),
                };
                assert_eq!(actual, expected, "{yaml}");
            }
            (actual, _) => panic!("{yaml}: expected {expected:?}, got {actual:?}"),
        }
    }

    #[test]
    fn steps_hosts_and_tools() {
        check(
            "command: restic -r /srv/restic backup --tag '{label}' /etc\n",
            false,
            Ok(
                r#"restic on localhost: ["restic", "-r", "/srv/restic", "backup", "--tag", "db", "/etc"] tools [Tool { setting: "command", program: "restic" }]"#,
            ),
        );
        check(
            "source_hostname: db-server\ncommand: [/usr/bin/borg, create, '::{label}', /var/lib]\n",
            false,
            Ok(r#"borg on db-server: ["/usr/bin/borg", "create", "::db", "/var/lib"] tools []"#),
        );
        check(
            "source_hostname: db-server\ncommand_host: local\ncommand: [rsync, -a, 'db-server:{snapshot_root}/', /srv/db]\n",
            true,
            Ok(r#"rsync on localhost: ["rsync", "-a", "db-server:/snap/db/", "/srv/db"] tools [Tool { setting: "command", program: "rsync" }]"#),
        );
        check(
            "command_host: source\ncommand: [tar, -C, '{snapshot_root}', -cf, /srv/db.tar, .]\n",
            true,
            Ok(
                r#"tar on localhost: ["tar", "-C", "/snap/db", "-cf", "/srv/db.tar", "."] tools [Tool { setting: "command", program: "tar" }]"#,
            ),
        );
    }

    #[test]
    fn errors_name_the_key() {
        check(
            "source_hostname: db-server\n",
            false,
            Err("command: required by the command backend; set it in the job file or the global config"),
        );
        check(
            "command: []\n",
            false,
            Err("2:10: command: is empty: name the program and its arguments, e.g. [restic, backup, /etc]"),
        );
        check(
            "command: ''\n",
            false,
            Err("2:10: command: is empty: name the program and its arguments, e.g. [restic, backup, /etc]"),
        );
        check(
            "command: [restic, backup, '{snapshot_root}']\n",
            false,
            Err("2:10: command: `{snapshot_root}`: {snapshot_root} needs a snapshot source (snapshot: lvm), and this job has none"),
        );
        check(
            "command: pg_dump db > /srv/db.sql\n",
            false,
            Err("2:10: command: `>` is a shell operator, but the command runs without a shell; for redirections and pipes write [sh, -c, \"...\"], or use the program's own option (pg_dump --file)"),
        );
        check(
            "command: [restic, backup, /etc]\ninclude: [/etc]\n",
            false,
            Err("3:10: include: the command backend does not use include or exclude; name what to back up (and skip) in `command`"),
        );
        check(
            "command: [restic, backup, /]\nexclude: [/proc]\n",
            false,
            Err("3:10: exclude: the command backend does not use include or exclude; name what to back up (and skip) in `command`"),
        );
    }

    #[test]
    fn a_remote_command_is_quoted_word_by_word_for_the_remote_shell() {
        let yaml = "source_hostname: db-server\nremote_user: backup\nssh_port: 2222\ncommand: [sh, -c, 'pg_dump --file \"/var/backups/{label} dump.sql\" app', \"it's\"]\n";
        let local_argv = with_job(yaml, false, |job| {
            let steps = CommandBackend.main_steps(job).unwrap();
            steps[0].command().local_argv(&job.ssh())
        });
        insta::assert_yaml_snapshot!(local_argv);
    }
}
