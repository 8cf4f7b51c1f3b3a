//! `ari authorize`: the filter it generates, installed as the forced command of the harness
//! sshd's key (`restrict,command=...`), lets every job kind run unchanged (rdiff, rdiff over LVM
//! snapshots with remote hooks, rsync into ZFS over LVM, a crash and `ari recover`, `ari check
//! --connect`, `ari history`), and refuses, and logs, every command that is not in the plans.
//! The fake LVM and ZFS tools and a recording `logger` are first on the sshd's PATH.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, eventually, require_tool, run, stderr, stdout, Running, Sshd, World};

/// A world with the two LVM volumes, a ZFS dataset, and an sshd whose commands find the fakes
/// and a `logger` that appends its arguments to `logged`.
struct Rig {
    world: World,
    sshd: Sshd,
    logged: PathBuf,
    sudo: bool,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_sudo(false)
    }

    /// With `remote_sudo`, a fake `sudo` on the sshd's PATH that takes only `-n --`, records
    /// the command in `sudo-log` and runs it.
    fn with_sudo(sudo: bool) -> Rig {
        rdiff_backup();
        require_tool("rsync", "rsync");
        let world = World::lvm();
        let (logger_dir, logged) = world.fake_logger_and_sudo();
        let sshd = Sshd::builder().path_prefix(world.fakes.bin_dir()).path_prefix(&logger_dir).start();
        world.write_config(&format!(
            "{}ssh_filter_path: {}\nremote_sudo: {sudo}\n",
            sshd.config_yaml(),
            world.fx.p("ssh-filter")
        ));
        std::fs::create_dir_all(world.fx.path("zfs/web")).unwrap();
        world.fakes.add_dataset("pool/backups/web");
        Rig { world, sshd, logged, sudo }
    }

    fn host(&self) -> &'static str {
        self.sshd.host_alias()
    }

    /// The three jobs: rdiff with remote and local hooks, rdiff over both LVM volumes, zfs over
    /// the root volume.
    fn write_jobs(&self) -> [PathBuf; 3] {
        let (fx, host) = (&self.world.fx, self.host());
        let src = fx.make_tree("src", &[("a", "one")]);
        // The spot check's line is longer than a sudoers rule can match: without sudo only.
        let verify = if self.sudo { "" } else { "verify_sample: 100%\n" };
        let plain = fx.write_job(
            "plain.yaml",
            &format!(
                "label: plain\nsource_hostname: {host}\ninclude: [{src}]\n{verify}pre:\n  - {{command: [touch, {mark}], host: {host}}}\n  - {{command: \"echo hooked > {said}\", host: {host}}}\npost:\n  - {{command: [\"true\"]}}\n",
                src = src.display(),
                mark = fx.p("pre-ran"),
                said = fx.p("pre-said"),
            ),
        );
        let db = fx.write_job(
            "db.yaml",
            &format!(
                "label: db\nsource_hostname: {host}\nsnapshot: lvm\nvolumes:\n  - {{name: vg0/root, mount_point: /}}\n  - {{name: vg1/data, mount_point: /srv/data, mount_options: \"ro,noatime\"}}\ninclude: [/etc, /srv/data]\n{verify}"
            ),
        );
        let web = fx.write_job(
            "web.yaml",
            &format!(
                "label: web\nbackend: zfs\nsource_hostname: {host}\nsnapshot: lvm\nvolumes: [{{name: vg0/root, mount_point: /}}]\nrsync_dst: {host}:{dst}\nzfs_hostname: {host}\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\n",
                dst = fx.p("zfs/web"),
            ),
        );
        [plain, db, web]
    }

    /// `ari authorize --host HOST --json` over every job, installed: the filter at its path,
    /// the key's line in the sshd's authorized_keys. Returns the host's entry.
    fn authorize(&self) -> serde_json::Value {
        let key = format!("{}.pub", self.sshd.client_key_path().display());
        let out = run(self.world.ari().args(["authorize", "--host", self.host(), "--key", &key, "--json"]));
        assert_exit(&out, 0);
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let hosts = json["hosts"].as_array().unwrap();
        assert_eq!(hosts.len(), 1, "one destination: {json}");
        let entry = hosts[0].clone();
        let path = Path::new(entry["filter_path"].as_str().unwrap());
        std::fs::write(path, entry["filter"].as_str().unwrap()).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let sum = run(Command::new("sha256sum").arg(path));
        assert_exit(&sum, 0);
        assert!(
            stdout(&sum).starts_with(entry["filter_sha256"].as_str().unwrap()),
            "the checksum is sha256sum's"
        );
        let line = entry["authorized_keys_line"].as_str().unwrap();
        let options = line.split_once(' ').unwrap().0;
        assert_eq!(options, format!("restrict,command=\"{}\"", path.display()));
        self.sshd.set_key_options(options);
        entry
    }

    /// With a plain rdiff job of the host in jobs_dir: `ari authorize --installer` for
    /// `user`'s key line in `keys` (a user other than root starts no systemd unit for
    /// rdiff-backup's server, so that job says `none`).
    fn installer_for(&self, user: &str, keys: &str) -> String {
        let host = self.host();
        self.world
            .fx
            .write_job("plain.yaml", &format!("label: plain\nsource_hostname: {host}\ninclude: [/etc]\n"));
        let key = format!("{}.pub", self.sshd.client_key_path().display());
        let out = run(self
            .world
            .ari()
            .args(["authorize", "--host", host, "--key", &key, "--installer"])
            .args(["--set", &format!("remote_user={user}"), "--set", &format!("authorized_keys_file={keys}")])
            .args(["--set", "rdiff_backup_server_confinement=none"]));
        assert_exit(&out, 0);
        stdout(&out)
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(&self.logged).unwrap()
    }
}

#[test]
fn every_job_kind_runs_through_the_generated_filter_unchanged() {
    every_job_kind_runs_through_the_filter(false);
}

#[test]
fn under_remote_sudo_every_remote_command_goes_through_sudo_and_the_filter() {
    let rig = every_job_kind_runs_through_the_filter(true);
    let ran = std::fs::read_to_string(rig.world.fx.path("sudo-log")).unwrap();
    for command in [
        "true",
        "lvcreate -s",
        "mount ",
        "rdiff-backup server",
        "rrsync -wo ",
        "zfs snapshot",
        "/bin/sh -c ( echo hooked",
        "touch ",
    ] {
        assert!(
            ran.lines().any(|line| line.starts_with(command) || line.contains(command)),
            "{command} not through sudo:\n{ran}"
        );
    }
}

fn every_job_kind_runs_through_the_filter(sudo: bool) -> Rig {
    let rig = Rig::with_sudo(sudo);
    let [plain, db, web] = rig.write_jobs();
    let entry = rig.authorize();
    let jobs: Vec<&str> = entry["jobs"].as_array().unwrap().iter().map(|j| j.as_str().unwrap()).collect();
    assert_eq!(jobs, ["db", "plain", "web"], "the jobs of jobs_dir that touch the host");
    let allowed: Vec<&str> =
        entry["allowed"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let sudo_ = if sudo { "sudo -n -- " } else { "" };
    // rdiff-backup's server, for the plain job and over the db job's snapshots: in a unit of
    // systemd-run's, restricted to the job's source root, read-only.
    let servers: Vec<&&str> = allowed.iter().filter(|c| c.contains("rdiff-backup server")).collect();
    assert_eq!(servers.len(), 2, "{allowed:?}");
    for server in &servers {
        assert!(server.starts_with(&format!("{sudo_}/bin/sh -c 'trap ")), "{server}");
        assert!(server.contains(" systemd-run --quiet --pipe --wait "), "{server}");
        assert!(server.ends_with(" --restrict-mode read-only'"), "{server}");
    }
    // The plain job's source root is top_level_src_dir (`/`), the db job's the snapshots' base.
    for root in ["/".to_string(), rig.world.fx.p("mnt/db")] {
        assert!(
            servers.iter().any(|s| s.contains(&format!("-- rdiff-backup server --restrict-path {root} "))),
            "a server serves {root} only: {servers:?}"
        );
    }
    // ari's own reading of the login shell runs without sudo: any user may read it, and the
    // drop-in needs no rule for it.
    let login_shell = format!("getent passwd {}", rig.sshd.user());
    assert!(allowed.contains(&login_shell.as_str()), "{allowed:?}");
    // So does the probe of rrsync, which the filter hands rsync's server to.
    assert!(allowed.contains(&"rrsync -help"), "{allowed:?}");
    assert!(
        allowed.iter().all(|c| c.starts_with(sudo_) || *c == login_shell || *c == "rrsync -help"),
        "{allowed:?}"
    );
    let patterns: Vec<&str> = entry["allowed_patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["template"].as_str().unwrap())
        .collect();
    // What ari runs itself goes through sudo as one text in a subshell; what rsync starts
    // through the job's ssh arrives as rsync writes it.
    let ours =
        |text: &str| if sudo { format!("sudo -n -- /bin/sh -c '( exec {text} )'") } else { text.to_string() };
    for expected in [
        ours("zfs snapshot pool/backups/web@ari-backup-{}"),
        ours("zfs destroy pool/backups/web@ari-backup-{}"),
        format!("{sudo_}rsync --server {{}}{}", rig.world.fx.p("zfs/web")),
    ] {
        assert!(patterns.contains(&expected.as_str()), "{expected}: {patterns:?}");
    }

    for job in [&plain, &db, &web] {
        let out = rig.world.run(job);
        assert_eq!(out.status.code(), Some(0), "{}\nrefused:\n{}", stderr(&out), rig.logged());
    }
    // Both rdiff jobs' spot checks ran through the filter, each to a verdict that passed.
    for label in ["plain", "db"].into_iter().filter(|_| !sudo) {
        let history =
            std::fs::read_to_string(rig.world.fx.path(&format!("state/history/{label}.json"))).unwrap();
        let history: serde_json::Value = serde_json::from_str(&history).unwrap();
        let verify = &history["runs"][0]["verify"];
        assert!(verify["passed"] == true && verify["files"].as_u64() > Some(0), "{label}: {history}");
    }
    // One spot check line per rdiff job, and the db job's live one (`ari verify` lists the live
    // root, not the snapshot's mount base).
    assert!(
        patterns.iter().filter(|p| p.contains(" ari-verify {}")).count() == if sudo { 0 } else { 3 },
        "the spot check lines: {patterns:?}"
    );
    if !sudo {
        // The live check's line goes through the filter too: what it finds of this machine's
        // /etc is beside the point here.
        let out = run(rig.world.ari().args(["verify", "db"]));
        assert!(!stderr(&out).contains("refused by the ssh filter"), "{}", stderr(&out));
        assert!(stdout(&out).contains("job db: verify:"), "{}{}", stdout(&out), stderr(&out));
    }
    assert!(
        rig.world.fx.path("pre-ran").exists() && rig.world.fx.path("pre-said").exists(),
        "the remote hooks ran"
    );
    assert_eq!(rig.world.fakes.zfs_snapshots().len(), 1, "the zfs job's snapshot");
    let out = run(rig.world.ari().args(["check", "--connect"]));
    assert_exit(&out, 0);
    assert_login_shell_warning(&rig, &stdout(&out));
    let out = run(rig.world.ari().args(["history", "web"]));
    assert_exit(&out, 0);

    // A crash with both snapshots made and the second mount hanging; `ari recover` undoes it
    // through the filter.
    rig.world.fakes.hang("mount", &[5]);
    let mut ari = Running::start(rig.world.ari().arg("run").arg(&db));
    assert!(eventually(|| rig.world.fakes.calls_of("mount").iter().any(|call| call.hung)), "the mount hangs");
    ari.signal(libc::SIGKILL);
    let _ = ari.wait();
    let out = run(rig.world.ari().args(["recover", "db"]));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("job db: recovered"), "{}", stdout(&out));
    rig.world.assert_clean();
    assert_eq!(rig.logged(), "", "nothing was refused");
    // Both rdiff jobs' servers ran in the stand-in's units, and every unit ended.
    let units = rig.sshd.systemd_calls();
    assert_eq!(
        units
            .iter()
            .filter(|c| c.starts_with("run ") && c.contains("rdiff-backup server --restrict-path"))
            .count(),
        2,
        "{units:?}"
    );
    assert!(rig.sshd.systemd_units().is_empty(), "{:?}", rig.sshd.systemd_units());
    rig.world.fakes.assert_no_unexpected_calls();
    rig
}

#[test]
fn commands_that_are_not_in_the_plans_are_refused_and_logged() {
    let rig = Rig::new();
    rig.write_jobs();
    rig.authorize();
    let marker = "echo ari-remote-pgid 0123456789abcdef $$ >&2; ";
    let watcher = ari_core::testkit::remote_wrapper(None);
    let wrapped = |body: &str| format!("{marker}{watcher}{body}");
    let allowed = [
        wrapped("true"),
        "true".to_string(),
        wrapped("lvs --noheadings -o vg_name,lv_name,origin vg0/root-ari_backup"),
    ];
    for command in &allowed {
        let out = run(rig.sshd.ssh_command().arg(command));
        assert_exit(&out, if command.contains("lvs") { 5 } else { 0 });
    }
    let refused = [
        ("a changed argument", wrapped("lvremove -f vg0/root")),
        ("an extra argument", wrapped("umount /tmp/x /")),
        ("a shell metacharacter", wrapped("true; id")),
        ("a command substitution", wrapped("true $(id)")),
        ("another program", wrapped("id")),
        ("a bare other program", "cat /etc/shadow".to_string()),
        ("a forged marker", format!("echo ari-remote-pgid xyz $$ >&2; {watcher}true")),
        ("a snapshot of another dataset", wrapped("zfs snapshot pool/other@ari-backup-x")),
        ("a destroy of the dataset itself", wrapped("zfs destroy pool/backups/web")),
        ("a snapshot name with a space", wrapped("zfs snapshot pool/backups/web@ari-backup-x y")),
        ("an rsync server writing elsewhere", wrapped("rsync --server -logDtpre.iLsfxCIvu . /etc")),
    ];
    for (what, command) in &refused {
        let out = run(rig.sshd.ssh_command().arg(command));
        assert_exit(&out, 126);
        assert!(stderr(&out).contains("ari-filter: refused"), "{what}: {}", stderr(&out));
        assert!(rig.logged().contains(command.as_str()), "{what}: not logged: {}", rig.logged());
    }
    // A login without a command.
    let out = run(&mut rig.sshd.ssh_command());
    assert_exit(&out, 126);
    assert!(rig.logged().contains("no command (a login)"), "{}", rig.logged());
    // Port forwarding: `restrict` refuses it before any command runs.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = run(rig.sshd.ssh_command().args([
        "-o",
        "ExitOnForwardFailure=yes",
        "-N",
        "-R",
        &format!("127.0.0.1:{port}:127.0.0.1:{}", rig.sshd.port()),
    ]));
    assert_exit(&out, 255);
    assert!(stderr(&out).contains("forwarding failed"), "{}", stderr(&out));
}

#[test]
fn install_keeps_other_keys_and_check_connect_names_the_jobs_that_changed_since() {
    let rig = Rig::new();
    let keys = rig.sshd.dir().join("authorized_keys");
    // ssh_key_options go on the line that --install writes: this key may log in from loopback.
    rig.world.write_config(&format!(
        "{}ssh_filter_path: {}\nauthorized_keys_file: {}\nssh_key_options: 'from=\"127.0.0.1\"'\n",
        rig.sshd.config_yaml(),
        rig.world.fx.p("ssh-filter"),
        keys.display(),
    ));
    let other =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOfSomebodyElse0000000000000000000 admin@elsewhere";
    let before = std::fs::read_to_string(&keys).unwrap();
    std::fs::write(&keys, format!("# the admin's comment\n{other}\n{before}")).unwrap();
    let [_, db, _] = rig.write_jobs();
    let key = format!("{}.pub", rig.sshd.client_key_path().display());

    // A key file whose key is a fragment (it would match other lines) is refused first.
    let short = rig.world.fx.path("short.pub");
    std::fs::write(&short, "ssh-ed25519 AAAA admin@x\n").unwrap();
    let out =
        run(rig.world.ari().args(["authorize", "--host", rig.host(), "--install", "--key"]).arg(&short));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("is not the base64 of an ssh public key"), "{}", stderr(&out));

    let out = run(rig.world.ari().args(["authorize", "--host", rig.host(), "--key", &key, "--install"]));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("ari: installed"), "{}", stdout(&out));
    assert!(stdout(&out).contains("lets ari's key run its"), "{}", stdout(&out));
    let lines: Vec<String> = std::fs::read_to_string(&keys).unwrap().lines().map(String::from).collect();
    assert_eq!(
        lines[..2],
        ["# the admin's comment".to_string(), other.to_string()],
        "other lines kept: {lines:?}"
    );
    let client = std::fs::read_to_string(&key).unwrap();
    let blob = client.split_whitespace().nth(1).unwrap();
    let ours: Vec<&String> = lines.iter().filter(|l| l.contains(blob)).collect();
    assert_eq!(ours.len(), 1, "the key's earlier line replaced: {lines:?}");
    assert!(ours[0].starts_with("restrict,command="), "{}", ours[0]);
    assert!(ours[0].contains(",from=\"127.0.0.1\" "), "ssh_key_options on the line: {}", ours[0]);

    assert_exit(&rig.world.run(&db), 0);
    let out = run(rig.world.ari().args(["check", "--connect"]));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("ok: ssh filter"), "{}", stdout(&out));

    // Once in place, the filter does not let the key replace it.
    let out = run(rig.world.ari().args(["authorize", "--host", rig.host(), "--key", &key, "--install"]));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("cannot replace itself"), "{}", stderr(&out));

    // A job whose commands there changed and a new job are named. An include is one only for
    // a job that verifies (its spot check lists the includes on the host; the backup reads the
    // snapshot from the backup server).
    let text = std::fs::read_to_string(&db).unwrap();
    std::fs::write(&db, text.replace("include: [/etc, /srv/data]", "include: [/etc, /srv/data, /var]"))
        .unwrap();
    let out = run(rig.world.ari().args(["check", "--connect"]));
    assert_exit(&out, 2);
    assert!(stdout(&out).contains("job db changed since the filter was made"), "{}", stdout(&out));
    let text = std::fs::read_to_string(&db).unwrap();
    std::fs::write(&db, text.replace("include: [/etc, /srv/data, /var]", "include: [/etc, /srv/data]"))
        .unwrap();
    let out = run(rig.world.ari().args(["check", "--connect"]));
    assert_exit(&out, 0);
    let text = std::fs::read_to_string(&db).unwrap().replace("ro,noatime", "ro");
    std::fs::write(&db, text).unwrap();
    rig.world
        .fx
        .write_job("new.yaml", &format!("label: new\nsource_hostname: {}\ninclude: [/etc]\n", rig.host()));
    let out = run(rig.world.ari().args(["check", "--connect"]));
    assert_exit(&out, 2);
    assert!(stdout(&out).contains("job db changed since the filter was made"), "{}", stdout(&out));
    assert!(stdout(&out).contains("job new is not in the filter"), "{}", stdout(&out));
    let install = format!("ari authorize --host {0} --installer | ssh ADMIN@{0} sh", rig.host());
    assert!(
        stdout(&out).contains(&format!("{install}\n")),
        "one line, ending with the command: {}",
        stdout(&out)
    );

    // The admin installs the new one with their own access (here: this machine is the host).
    let out = run(rig.world.ari().args(["authorize", "--host", rig.host(), "--key", &key, "--installer"]));
    assert_exit(&out, 0);
    let path = format!("{}:{}", rig.world.fx.p("logger-bin"), std::env::var("PATH").unwrap_or_default());
    let installed = run(Command::new("sh").arg("-c").arg(stdout(&out)).env("PATH", path));
    assert_exit(&installed, 0);
    let shell = login_shell(rig.sshd.user());
    assert_eq!(
        stderr(&installed).contains(&format!(
            "ari: warning: the login shell of {} here is {shell}, which runs its startup files",
            rig.sshd.user()
        )),
        !PLAIN_SHELLS.contains(&shell.as_str()),
        "{}",
        stderr(&installed)
    );
    let out = run(rig.world.ari().args(["check", "--connect"]));
    assert_exit(&out, 0);
    assert_exit(&rig.world.run(&db), 0);
    let logged = rig.logged();
    let refusals: Vec<&str> = logged.lines().filter(|l| l.starts_with("-t ari-filter")).collect();
    assert_eq!(refusals.len(), 3, "the two installs' self-tests and the refused reinstall: {refusals:?}");
    assert_eq!(refusals.iter().filter(|l| l.ends_with("ari-filter-self-test")).count(), 2, "{refusals:?}");
}

#[test]
fn under_remote_sudo_the_sudoers_drop_in_passes_visudo_and_names_every_command() {
    let visudo = require_tool("/usr/sbin/visudo", "sudo");
    let rig = Rig::with_sudo(true);
    rig.write_jobs();
    let key = format!("{}.pub", rig.sshd.client_key_path().display());
    let out = run(rig.world.ari().args([
        "authorize",
        "--host",
        rig.host(),
        "--key",
        &key,
        "--json",
        "--set",
        "remote_user=backup",
    ]));
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let entry = &json["hosts"][0];
    let sudoers = entry["sudoers"].as_str().unwrap();
    let rules: Vec<&str> =
        sudoers.lines().filter(|l| !l.starts_with('#') && !l.starts_with("Defaults")).collect();
    assert!(rules.iter().all(|r| r.starts_with("backup ALL=(root) NOPASSWD: ")), "{sudoers}");
    // rsync's server is handed to rrsync, which alone keeps the request sudo would drop; no
    // rule lets rsync's server itself run as root.
    assert!(sudoers.contains("NOPASSWD: @rrsync@ ^-wo /tmp/"), "{sudoers}");
    let defaults: Vec<&str> = sudoers.lines().filter(|l| l.starts_with("Defaults")).collect();
    assert_eq!(
        defaults,
        [
            "Defaults:backup runcwd=/, env_reset, secure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"",
            "Defaults!@rrsync@ env_keep += \"SSH_ORIGINAL_COMMAND\""
        ],
        "{sudoers}"
    );
    assert!(!rules.iter().any(|r| r.contains("^--server")), "{sudoers}");
    let allowed =
        entry["allowed"].as_array().unwrap().len() + entry["allowed_patterns"].as_array().unwrap().len();
    assert_eq!(
        rules.len(),
        allowed - 2,
        "a rule per allowed command but getent's and rrsync -help's:\n{sudoers}"
    );
    assert!(!sudoers.contains("getent"), "{sudoers}");
    for expected in [
        // Each command as one text in a subshell, whose every other split no shell runs.
        "NOPASSWD: /bin/sh ^-c \\( exec lvcreate -s -L 1G vg0/root -n root-ari_backup \\)$",
        "NOPASSWD: /bin/sh ^-c \\( exec zfs snapshot pool/backups/web@ari-backup-[A-Za-z0-9_.:-]+ \\)$",
        "NOPASSWD: /bin/sh ^-c \\( exec true \\)$",
    ] {
        assert!(sudoers.contains(expected), "{expected}:\n{sudoers}");
    }
    // rdiff-backup's servers: the shell that starts each in its unit, with that text only.
    let servers: Vec<&&str> =
        rules.iter().filter(|r| r.contains("rdiff-backup server --restrict-path")).collect();
    assert_eq!(servers.len(), 2, "{sudoers}");
    for rule in servers {
        assert!(
            rule.contains("NOPASSWD: /bin/sh ^-c trap \"systemctl stop ari-rdiff-\\$\\$\\.service"),
            "{rule}"
        );
        assert!(rule.ends_with(" --restrict-mode read-only$"), "{rule}");
    }
    // The installer's part: each @PROGRAM@ becomes the program's path on the host.
    let filled = tests::installed_sudoers(sudoers);
    let file = rig.world.fx.path("ari-sudoers");
    std::fs::write(&file, filled).unwrap();
    let checked = run(Command::new(visudo).arg("-cf").arg(&file));
    assert_exit(&checked, 0);
}

/// The shells that read no startup file before sshd's command (and those that run none).
const PLAIN_SHELLS: [&str; 4] = ["/bin/sh", "/usr/bin/sh", "/bin/dash", "/usr/bin/dash"];

/// `user`'s login shell on this machine, the harness sshd's host.
fn login_shell(user: &str) -> String {
    let out = run(Command::new("getent").args(["passwd", user]));
    assert_exit(&out, 0);
    stdout(&out).trim_end().rsplit(':').next().unwrap().to_string()
}

/// `ari check --connect`'s output warns of the remote user's login shell exactly when it reads a
/// startup file (root's bash on Debian reads ~/.bashrc under sshd).
fn assert_login_shell_warning(rig: &Rig, checked: &str) {
    let (user, host) = (rig.sshd.user(), rig.host());
    let shell = login_shell(user);
    let warned = checked.lines().find(|l| l.starts_with(&format!("warning: {user}'s login shell on {host}")));
    if PLAIN_SHELLS.contains(&shell.as_str()) {
        assert_eq!(warned, None, "{checked}");
    } else if shell.ends_with("/bash") {
        assert_eq!(
            warned,
            Some(format!("warning: {user}'s login shell on {host} is {shell}, which runs ~/.bashrc before ari's filter: use /bin/sh (chsh -s /bin/sh {user})").as_str()),
            "{checked}"
        );
    } else {
        assert!(warned.is_some_and(|w| w.contains(&format!(" is {shell}, "))), "{checked}");
    }
}

#[test]
fn a_run_that_an_older_filter_refuses_names_the_check_and_the_installer() {
    for sudo in [false, true] {
        let rig = Rig::with_sudo(sudo);
        let (fx, host) = (&rig.world.fx, rig.host());
        let src = fx.make_tree("src", &[("a", "one")]);
        fx.write_job(
            "other.yaml",
            &format!("label: other\nsource_hostname: {host}\ninclude: [{}]\n", src.display()),
        );
        // The filter in place is made for the jobs there were: `hooked` came after it.
        rig.authorize();
        let hooked = fx.write_job(
            "hooked.yaml",
            &format!(
                "label: hooked\nsource_hostname: {host}\ninclude: [{}]\npre:\n  - {{command: [touch, {}], host: {host}}}\n",
                src.display(),
                fx.p("pre-ran")
            ),
        );
        let out = rig.world.run(&hooked);
        assert_exit(&out, 1);
        let sudo_ = if sudo { "sudo " } else { "" };
        let install = format!("ari authorize --host {host} --installer | ssh ADMIN@{host} {sudo_}sh");
        let err = stderr(&out);
        for said in [
            format!("was refused by the ssh filter on {host} (exit status 126)"),
            "that filter may be older than this ari or than the job".to_string(),
            "run `ari check --connect`".to_string(),
            format!("install the filter the jobs need: {install}"),
        ] {
            assert!(err.contains(&said), "{said}:\n{err}");
        }
        assert!(!fx.path("pre-ran").exists(), "the hook did not run");
        assert!(rig.logged().contains("touch"), "the filter logged its refusal: {}", rig.logged());

        let out = run(rig.world.ari().args(["check", "--connect"]));
        assert_exit(&out, 2);
        let checked = stdout(&out);
        let problems: Vec<&str> = checked.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(problems.len(), 1, "one problem for the host: {}", stdout(&out));
        assert!(
            problems[0].contains("it lets through other commands than the jobs run now"),
            "{}",
            problems[0]
        );
        assert!(problems[0].contains("job hooked is not in the filter"), "{}", problems[0]);
        assert!(problems[0].ends_with(&install), "{}", problems[0]);

        // Made for these jobs, by this ari: ok. Then as another ari, and an older one, made it.
        let entry = rig.authorize();
        let path = PathBuf::from(entry["filter_path"].as_str().unwrap());
        // An older ari's filter allowed another rdiff-backup server line than this ari's: the
        // local rdiff-backup's own ssh is refused, and its error says the same.
        let made = std::fs::read_to_string(&path).unwrap();
        let without_server: String =
            made.lines().filter(|l| !l.contains("rdiff-backup server")).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, &without_server).unwrap();
        let out = rig.world.run(&fx.path("jobs.d/other.yaml"));
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(err.contains(&format!("was refused by the ssh filter on {host} (exit status ")), "{err}");
        let step = err.lines().find(|l| l.contains("main step rdiff-backup failed")).unwrap_or_default();
        assert!(step.contains(&format!("was refused by the ssh filter on {host}")), "rdiff-backup's: {err}");
        assert!(err.contains(&format!("install the filter the jobs need: {install}")), "{err}");
        std::fs::write(&path, &made).unwrap();
        assert_exit(&rig.world.run(&fx.path("jobs.d/other.yaml")), 0);
        let out = run(rig.world.ari().args(["check", "--connect"]));
        assert_exit(&out, 0);
        let made = std::fs::read_to_string(&path).unwrap();
        let version = env!("CARGO_PKG_VERSION");
        std::fs::write(&path, made.replace(&format!("# ari version {version}\n"), "# ari version 0.3.0\n"))
            .unwrap();
        let out = run(rig.world.ari().args(["check", "--connect"]));
        assert_exit(&out, 2);
        assert!(
            stdout(&out).contains(&format!("it was made by ari 0.3.0, this is ari {version}; the jobs'")),
            "{}",
            stdout(&out)
        );
        let older: String = made
            .lines()
            .filter(|l| {
                !["# ari version", "# ari filter-format", "# ari rules", "# ari sudoers"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, older).unwrap();
        let out = run(rig.world.ari().args(["check", "--connect"]));
        assert_exit(&out, 2);
        assert!(
            stdout(&out).contains("it was made by an ari older than 0.4.0; the jobs'"),
            "{}",
            stdout(&out)
        );
        assert!(stdout(&out).contains(&format!("{install}\n")), "{}", stdout(&out));
    }
}

#[test]
fn the_installer_writes_nothing_for_a_user_that_is_not_there_or_not_the_one_running_it() {
    let rig = Rig::new();
    let fx = &rig.world.fx;
    let keys = fx.p("keys/authorized_keys");
    let installer = |user: &str| rig.installer_for(user, &keys);
    let nothing_written = || {
        assert!(
            !fx.path("ssh-filter").exists() && !fx.path("ssh-filter.ari-new").exists(),
            "no filter written"
        );
        assert!(!fx.path("keys").exists(), "no authorized_keys written");
    };

    let out = run(Command::new("sh").arg("-c").arg(installer("ari-no-such-user")));
    assert_exit(&out, 1);
    assert_eq!(stderr(&out), "ari: no user ari-no-such-user here; nothing installed\n");
    nothing_written();

    // Not root, and not the user whose key it installs (daemon's, a user of every Debian).
    let setpriv = require_tool("setpriv", "util-linux");
    let out = run(Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c"])
        .arg(installer("daemon"))
        .current_dir("/"));
    assert_exit(&out, 1);
    let nobody = run(Command::new("getent").args(["passwd", "65534"]));
    let nobody = stdout(&nobody).split(':').next().unwrap_or_default().to_string();
    assert_eq!(
        stderr(&out),
        format!("ari: this runs as {nobody}, not as daemon whose key it installs: run it as daemon, or as root; nothing installed\n")
    );
    nothing_written();
}

/// Run by root for another user (the documented `--installer | ssh ADMIN@HOST sudo sh`), the
/// installer writes the key's line as that user wherever that user could plant a link: a link
/// the user put at `authorized_keys.ari-new` (to a file of root's) or at `authorized_keys`
/// (to a secret of root's) reaches only what the user could write or read anyway.
#[test]
fn run_by_root_the_installer_follows_no_link_the_remote_user_planted() {
    let rig = Rig::new();
    let fx = &rig.world.fx;
    let nobody = run(Command::new("getent").args(["passwd", "65534"]));
    let nobody = stdout(&nobody).split(':').next().unwrap_or_default().to_string();
    assert!(!nobody.is_empty(), "a user 65534 (nobody) on this machine");
    // The user's own directory for its keys, as ~/.ssh is.
    let keys_dir = fx.path("user-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    std::os::unix::fs::chown(&keys_dir, Some(65534), Some(65534)).unwrap();
    let keys = keys_dir.join("authorized_keys");
    let victim = fx.path("root-file");
    let secret = fx.path("root-secret");
    std::fs::write(&victim, "root's own\n").unwrap();
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let installer = rig.installer_for(&nobody, &keys.display().to_string());

    for (planted, target) in [(keys_dir.join("authorized_keys.ari-new"), &victim), (keys.clone(), &secret)] {
        let _ = std::fs::remove_file(keys_dir.join("authorized_keys.ari-new"));
        let _ = std::fs::remove_file(&keys);
        std::os::unix::fs::symlink(target, &planted).unwrap();
        let out = run(Command::new("sh").arg("-c").arg(&installer).current_dir("/"));
        assert_exit(&out, 1);
        assert!(stderr(&out).contains("but not the key's line"), "{}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "root's own\n",
            "root's file through {planted:?}"
        );
        let meta = std::fs::metadata(&victim).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0, "root's file stays root's");
        let readable: Vec<String> = std::fs::read_dir(&keys_dir)
            .unwrap()
            .flatten()
            .filter(|e| !e.file_type().unwrap().is_symlink())
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        assert!(!readable.iter().any(|t| t.contains("s3cret")), "root's secret copied out: {readable:?}");
    }

    // A directory of root's in one of the user's (a root-owned ~/.ssh in the user's home): the
    // user could swap it for a link between root's check and root's writes, so the user writes,
    // and here cannot; nothing of root's is touched.
    let home = fx.path("user-home");
    let ssh_dir = home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let swappable = rig.installer_for(&nobody, &ssh_dir.join("authorized_keys").display().to_string());
    let out = run(Command::new("sh").arg("-c").arg(swappable).current_dir("/"));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("but not the key's line"), "{}", stderr(&out));
    assert!(!ssh_dir.join("authorized_keys").exists(), "root wrote into a directory the user could swap");

    // Without links, the line goes in, as the user's own file.
    let _ = std::fs::remove_file(&keys);
    let out = run(Command::new("sh").arg("-c").arg(&installer).current_dir("/"));
    assert_exit(&out, 0);
    let written = std::fs::read_to_string(&keys).unwrap();
    assert!(written.contains("restrict,command="), "{written}");
    let meta = std::fs::metadata(&keys).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534, "the user's own file");
}
