//! Man pages and shell completions, generated from the clap command and the settings registry,
//! so that they cannot fall out of step with ari: `ari(1)` and `ari-SUBCOMMAND(1)` from the
//! command (clap_mangen), `ari-job(5)` from the job's own keys and every setting a job may set,
//! `ari-settings(5)` from the registry (as docs/settings.md is), and completions for bash, zsh
//! and fish (clap_complete) that know every subcommand, option and setting name.
//! `ari completions SHELL` prints a completion script; `cargo xtask dist` writes all of them.

use ari_core::settings::{self, Scope, SettingDef};
use clap::Command;
use roff::{bold, italic, roman, Roff};

pub use crate::job_keys::JOB_KEY_HELP;

/// A generated file: its name (`ari-run.1`, `ari.bash`) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The file name.
    pub name: String,
    /// Its contents.
    pub text: String,
}

/// The shells ari writes completions for, with the file name each expects.
pub const SHELLS: &[(clap_complete::Shell, &str)] = &[
    (clap_complete::Shell::Bash, "ari.bash"),
    (clap_complete::Shell::Zsh, "_ari"),
    (clap_complete::Shell::Fish, "ari.fish"),
];

/// The completion script for `shell`, rendered into memory (clap_complete's `generate` panics
/// on a closed stdout).
pub fn completion(shell: clap_complete::Shell) -> String {
    crate::commands::completions::script(shell, crate::cli::full_command())
}

/// Every completion script, by file name.
pub fn completions() -> Vec<Generated> {
    SHELLS
        .iter()
        .map(|(shell, name)| Generated { name: name.to_string(), text: completion(*shell) })
        .collect()
}

/// Every man page, by file name: `ari.1`, one `ari-SUBCOMMAND.1` each, `ari-job.5`,
/// `ari-settings.5`.
pub fn pages() -> Vec<Generated> {
    // ari(1) lists the setting options once; the subcommands' pages refer to it.
    let top = crate::cli::command_with_settings_on_top();
    let mut pages = vec![Generated { name: "ari.1".into(), text: render_man(top.clone()) }];
    for sub in top.get_subcommands() {
        let name = format!("ari-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("ari {}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"))
            .after_help(
                "Every setting is also an option here (--NAME VALUE): see ari(1) and ari-settings(5).",
            );
        pages.push(Generated { name: format!("{name}.1"), text: render_man(page) });
    }
    pages.push(Generated { name: "ari-job.5".into(), text: job_page() });
    pages.push(Generated { name: "ari-settings.5".into(), text: settings_page() });
    pages
}

fn render_man(command: Command) -> String {
    let mut buffer = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(command).render(&mut buffer);
    String::from_utf8_lossy(&buffer).into_owned()
}

fn page_header(roff: &mut Roff, title: &str, section: &str, summary: &str) {
    roff.control("TH", [title, section, "", &format!("ari {}", env!("CARGO_PKG_VERSION")), "ari"])
        .control("SH", ["NAME"])
        .text([roman(format!("{} - {summary}", title.to_lowercase()))]);
}

fn setting_entry(roff: &mut Roff, def: &SettingDef) {
    let default = def.default.map(|d| format!(" [default: {d}]")).unwrap_or_default();
    roff.control("TP", [] as [&str; 0])
        .text([bold(def.name), roman(" "), italic(def.kind.describe()), roman(format!(" ({})", def.owner))])
        .text([roman(format!("{}{default}", def.help))]);
}

fn job_page() -> String {
    let mut roff = Roff::new();
    page_header(&mut roff, "ARI-JOB", "5", "the job files of ari, in jobs_dir (YAML)");
    roff.control("SH", ["DESCRIPTION"]).text([roman(
        "A job file is a YAML mapping of the job's own keys and of settings. Unknown keys, values of the wrong type or kind, and settings of a backend the job does not use are errors naming the file, line, column and key; nothing runs after such an error.",
    )]);
    roff.control("SH", ["KEYS"]);
    for (key, help) in JOB_KEY_HELP {
        roff.control("TP", [] as [&str; 0]).text([bold(*key)]).text([roman(*help)]);
    }
    roff.control("SH", ["COMMANDS"]).text([roman(
        "Each of pre, after_snapshot and post is a list of {command: ..., host: ..., when: ...}. A string command runs through a shell; a list runs without one, every element one argument, on a remote host too. host defaults to localhost; when (post only) to always.",
    )]);
    roff.control("SH", ["SETTINGS"]).text([roman(
        "Every setting of the job's scope may be set in a job file, over the global config and under the command line:",
    )]);
    for def in settings::registry().values().filter(|d| d.scope == Scope::Job) {
        setting_entry(&mut roff, def);
    }
    roff.control("SH", ["SEE ALSO"]).text([roman("ari(1), ari-settings(5)")]);
    roff.render()
}

fn settings_page() -> String {
    let mut roff = Roff::new();
    page_header(&mut roff, "ARI-SETTINGS", "5", "every setting of ari, and where it may be set");
    roff.control("SH", ["DESCRIPTION"]).text([roman(
        "Settings are layered: default < global config (/etc/ari-backup/ari-backup.conf.yaml) < job file < command line (--NAME VALUE or --set NAME=VALUE). Settings of the process (marked below) take effect once per ari process and may not be set in a job file.",
    )]);
    roff.control("SH", ["SETTINGS"]);
    for def in settings::registry().values() {
        setting_entry(&mut roff, def);
        if def.scope == Scope::Process {
            roff.text([italic("a setting of the process: global config or command line only")]);
        }
    }
    roff.control("SH", ["SEE ALSO"]).text([roman("ari(1), ari-job(5)")]);
    roff.render()
}

/// Runs `program args` with `input` on its stdin, for ari-cli's tests that check what it
/// generates with the real tool (groff, bash, zsh, python3's jsonschema): its output, or a panic
/// saying how to install `package`. The tests crate has its own (`tests::run_with_stdin`), which
/// ari-cli's unit tests do not depend on.
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the tests run the real tools on what ari-cli generates
pub(crate) fn run_with_stdin(
    program: &str,
    args: &[&str],
    input: &[u8],
    package: &str,
) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("{program} is needed for this test ({err}): apt-get install -y {package}")
        });
    let mut stdin = child.stdin.take().expect("a piped stdin");
    // Written from another thread, so that a tool that answers before it has read everything
    // cannot block the test; one that stops reading early gives its answer in its output.
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = stdin.write_all(input);
        });
        child.wait_with_output().unwrap_or_else(|err| panic!("waiting for {program}: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program args` with `input` on stdin; its stderr.
    fn stderr_of(program: &str, package: &str, args: &[&str], input: &str) -> String {
        let out = run_with_stdin(program, args, input.as_bytes(), package);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    #[test]
    fn the_job_page_names_every_key_of_a_job_file() {
        let keys: Vec<&str> = JOB_KEY_HELP.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, ari_core::job::JOB_KEYS, "JOB_KEY_HELP is out of step with the job's keys");
        let page = job_page();
        for def in settings::registry().values() {
            let listed = page.contains(&format!("\\fB{}\\fR", def.name.replace('-', "\\-")));
            assert_eq!(listed, def.scope == Scope::Job, "{} in ari-job(5)", def.name);
        }
    }

    #[test]
    fn there_is_a_page_for_every_subcommand_and_every_setting_is_on_ari_1_and_ari_settings_5() {
        let pages = pages();
        let names: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
        for sub in crate::cli::full_command().get_subcommands() {
            let name = format!("ari-{}.1", sub.get_name());
            assert!(names.contains(&name.as_str()), "no page {name}: {names:?}");
        }
        let page = |name: &str| &pages.iter().find(|p| p.name == name).expect(name).text;
        for def in settings::registry().values() {
            let option = format!("\\-\\-{}", def.name.replace('-', "\\-"));
            assert!(page("ari.1").contains(&option), "{} is not an option in ari(1)", def.name);
            assert!(page("ari-settings.5").contains(def.name), "{} is not in ari-settings(5)", def.name);
        }
        assert!(page("ari-recover.1").contains("\\-\\-forget"), "ari-recover(1) shows its own options");
    }

    #[test]
    fn man_pages_have_no_groff_warnings() {
        for page in pages() {
            let warnings = stderr_of("groff", "groff-base", &["-man", "-ww", "-z"], &page.text);
            assert!(warnings.trim().is_empty(), "groff warns about {}:\n{warnings}", page.name);
        }
    }

    #[test]
    fn completions_know_every_subcommand_and_setting_and_parse_in_their_shell() {
        for generated in completions() {
            for sub in crate::cli::full_command().get_subcommands() {
                assert!(
                    generated.text.contains(sub.get_name()),
                    "{} lacks {}",
                    generated.name,
                    sub.get_name()
                );
            }
            for def in settings::registry().values() {
                assert!(generated.text.contains(def.name), "{} lacks --{}", generated.name, def.name);
            }
        }
        for (shell, name) in [("bash", "ari.bash"), ("zsh", "_ari")] {
            let text = &completions().into_iter().find(|g| g.name == name).expect(name).text;
            let errors = stderr_of(shell, shell, &["-n"], text);
            assert!(errors.trim().is_empty(), "{shell} finds {name} malformed:\n{errors}");
        }
    }
}
