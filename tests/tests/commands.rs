//! `pre`, `after_snapshot` and `post` commands: an argv list arrives with every argument intact,
//! locally and through ssh; a string runs through a shell, locally and remotely.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use tests::argv::{nasty, read_argv, yaml_list, ARGV_DUMP};
use tests::rdiff::rdiff_backup;
use tests::{run, stderr, Fixture, Sshd};

#[test]
fn list_commands_arrive_intact_and_strings_run_through_a_shell_locally_and_remotely() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let dump = fx.write_script("bin/argv-dump", ARGV_DUMP);
    let src = fx.make_tree("src", &[("a", "1")]);
    let argv = |out: &str| {
        let mut words = vec![dump.to_string_lossy().into_owned(), fx.p(out)];
        words.extend(nasty());
        yaml_list(&words)
    };
    let job = fx.write_job(
        "hooks.yaml",
        &format!(
            "include: [{src}]\n\
             pre:\n\
             \x20 - command: {local}\n\
             \x20 - command: {remote}\n\
             \x20   host: {host}\n\
             \x20 - command: echo \"$((6 * 7))\" > {local_shell}; echo $0 >> {local_shell}\n\
             \x20 - command: echo \"$((6 * 7))\" > {remote_shell}\n\
             \x20   host: {host}\n",
            src = src.display(),
            local = argv("local-argv"),
            remote = argv("remote-argv"),
            host = sshd.host_alias(),
            local_shell = fx.p("local-shell"),
            remote_shell = fx.p("remote-shell"),
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    let expected: Vec<String> = nasty();
    assert_eq!(read_argv(&fx.path("local-argv")), expected, "local argv");
    assert_eq!(read_argv(&fx.path("remote-argv")), expected, "remote argv, through ssh and the remote shell");
    let local_shell = std::fs::read_to_string(fx.path("local-shell")).unwrap();
    assert_eq!(local_shell, "42\n/bin/sh\n", "a local string runs through sh -c");
    assert_eq!(
        std::fs::read_to_string(fx.path("remote-shell")).unwrap(),
        "42\n",
        "a remote string runs in the remote shell"
    );
}

#[test]
fn a_remote_command_that_is_not_found_says_so() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_job(
        "missing.yaml",
        &format!(
            "include: [{}]\npre:\n  - command: [ari-no-such-tool, --flag]\n    host: {}\n",
            src.display(),
            sshd.host_alias()
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("`ari-no-such-tool --flag` on ari-test-host: command not found on ari-test-host (exit status 127)"), "{err}");
}
