//! Settings are layered default < global config < job file < command line, every value knows
//! where it came from, and `ari settings` shows it.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use tests::{run, stderr, stdout, Fixture};

/// The row of `ari settings` output for a setting: [value, source, owner].
fn row(output: &str, name: &str) -> Vec<String> {
    let header = output.lines().find(|l| l.starts_with("NAME")).expect("a header line");
    let columns: Vec<usize> =
        ["VALUE", "SOURCE", "OWNER", "HELP"].iter().map(|c| header.find(c).expect("column")).collect();
    let line = output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{output}"));
    let cell = |i: usize| line.get(columns[i]..columns[i + 1]).unwrap_or("").trim().to_string();
    vec![cell(0), cell(1), cell(2)]
}

#[test]
fn each_level_overrides_the_one_below_and_settings_shows_the_source() {
    let fx = Fixture::new();
    fx.write_config("remote_user: from-config\nssh_port: 2200\nretry_interval: 7\nssh_compression: true\n");
    let job = fx.write_job(
        "layers.yaml",
        "source_hostname: db\ninclude: [/etc]\nrdiff_backup_cli: new\nssh_port: 2201\nremote_user: from-job\n",
    );
    let config = fx.config_path().display().to_string();
    let job_path = job.display().to_string();

    let out = run(fx.ari().args(["settings"]).arg(&job).args(["--remote_user", "from-cli"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let check = |name: &str, value: &str, source: &str, owner: &str| {
        assert_eq!(row(&text, name), [value, source, owner], "{name}");
    };
    check("remote_user", "from-cli", "command line", "core");
    check("ssh_port", "2201", &format!("job {job_path}"), "core");
    check("retry_interval", "7", &format!("config {config}"), "core");
    check("ssh_compression", "true", &format!("config {config}"), "rdiff");
    check("max_retries", "3", "default", "core");
    check("remove_older_than_timespec", "(unset)", "-", "rdiff");

    // Without a job: defaults, config and command line only.
    let out = run(fx.ari().args(["settings", "--set", "ssh_port=2202"]));
    let text = stdout(&out);
    check_row(&text, "ssh_port", ["2202", "command line", "core"]);
    check_row(&text, "remote_user", ["from-config", &format!("config {config}"), "core"]);

    // A user that is not root starts no systemd unit without remote_sudo: rdiff-backup's
    // server then runs unconfined only when the admin says so.
    let out = run(fx.ari().args(["plan", "--json"]).arg(&job).args(["--remote-user=from-cli"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`from-cli`: rdiff-backup's server runs in a systemd unit"),
        "{}",
        stderr(&out)
    );

    // The layered values reach the commands.
    let out = run(fx
        .ari()
        .args(["plan", "--json"])
        .arg(&job)
        .args(["--remote-user=from-cli", "--rdiff-backup-server-confinement=none"]));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    // The first steps read the store's capacity; the backup is the main step.
    let main =
        plan["steps"].as_array().expect("steps").iter().position(|s| s["phase"] == "main").expect("main");
    let schema = plan["steps"][main]["argv"][4].as_str().expect("remote schema");
    let wrapper = fx.path("state").join("run/layers/ssh");
    assert_eq!(
        schema,
        format!(
            "{} -C {{h}} 'rdiff-backup server --restrict-path / --restrict-mode read-only'",
            wrapper.display()
        ),
        "rdiff-backup's ssh is the job's wrapper; ssh_compression from the config adds -C"
    );
    let host = &plan["connections"]["hosts"][0];
    assert_eq!(host["destination"], "from-cli@db");
    let ssh: Vec<&str> = host["ssh"].as_array().expect("ssh").iter().map(|w| w.as_str().unwrap()).collect();
    let at = ssh.iter().position(|w| *w == "-p").expect("-p");
    assert_eq!(ssh[at + 1], "2201", "the job's ssh_port reaches the ssh of every command: {ssh:?}");
    let argv = plan["steps"][main]["argv"].as_array().expect("argv");
    assert!(argv.iter().any(|a| a == "from-cli@db::/"), "remote_user from the command line: {argv:?}");
}

fn check_row(text: &str, name: &str, expected: [&str; 3]) {
    assert_eq!(row(text, name), expected, "{name}");
}
