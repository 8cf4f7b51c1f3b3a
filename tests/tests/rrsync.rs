//! The ZFS host's filter hands rsync's server to `rrsync -wo RSYNC_DST` (issue 17): what ari's
//! key can make rsync do there, tried as an attacker who holds the key.
//!
//! The live tests run the harness sshd in a mount namespace of its own, with a scratch
//! directory over the login's home and no `SHLVL`, so that the login bash reads `~/.bashrc`
//! before the forced command, as Debian's does: a `.bashrc` the key could write would run as
//! the host's root at the next login. The oracle of every attack is that nothing outside
//! rsync_dst was read, written or run (rrsync may accept an option and keep it inside).

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::{assert_exit, fingerprint, require_tool, run, stderr, Sshd, World};

/// rsync and rrsync (with its interpreter), or a failure that says how to get them.
fn rsync_and_rrsync() {
    require_tool("rsync", "rsync");
    require_tool("rrsync", "rsync (Debian 12 and later ship /usr/bin/rrsync)");
    require_tool("python3", "python3");
}

/// A zfs job on the backup server: a local source, `rsync_dst` on `host`, the dataset's
/// commands there too.
fn web_job(world: &World, host: &str, dst: &Path, options: &str) -> PathBuf {
    let src = world.fx.make_tree("src", &[("a", "one\n"), ("dir/b", "two\n")]);
    world.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{src}]\nrsync_dst: {host}:{dst}\nzfs_hostname: {host}\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\n{options}",
            src = src.display(),
            dst = dst.display(),
        ),
    )
}

/// `ari authorize --json` for the host: its one entry.
fn authorized(world: &World, sshd: &Sshd) -> serde_json::Value {
    let key = format!("{}.pub", sshd.client_key_path().display());
    let out = run(world.ari().args(["authorize", "--host", sshd.host_alias(), "--key", &key, "--json"]));
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&tests::stdout(&out)).unwrap();
    json["hosts"][0].clone()
}

/// Writes the filter of `entry` where it goes, executable.
fn install_filter(entry: &serde_json::Value, filter: &str) {
    let path = Path::new(entry["filter_path"].as_str().unwrap());
    std::fs::write(path, filter).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn every_rsync_option_ari_takes_passes_rrsync_through_the_generated_filter() {
    rsync_and_rrsync();
    let world = World::new();
    world.write_config(&format!("ssh_filter_path: {}\n", world.fx.p("ssh-filter")));
    let dst = world.fx.path("zfs/web");
    std::fs::create_dir_all(&dst).unwrap();
    let job = web_job(&world, "zfs-host", &dst, "");
    let out = run(world.ari().args(["authorize", "--host", "zfs-host", "--json"]));
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&tests::stdout(&out)).unwrap();
    let entry = &json["hosts"][0];
    install_filter(entry, entry["filter"].as_str().unwrap());
    let pattern = entry["allowed_patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["template"].as_str().unwrap().starts_with("rsync --server"))
        .unwrap_or_else(|| panic!("no rsync server pattern: {entry}"))
        .clone();
    assert_eq!(
        pattern["handed_to"].as_str().unwrap(),
        format!("SSH_ORIGINAL_COMMAND='rsync --server {{}}.' rrsync -wo {}", dst.display())
    );
    // An ssh that hands the command to the filter as sshd would: what rsync runs on the ZFS host.
    let ssh = world.fx.write_script(
        "fake-ssh",
        &format!("#!/bin/sh\nshift\nSSH_ORIGINAL_COMMAND=\"$*\" exec /bin/sh {}\n", world.fx.p("ssh-filter")),
    );
    assert!(job.exists());
    let src = format!("{}/", world.fx.p("src"));
    // ari's defaults together, then each option ari takes on its own after `--archive`.
    let defaults = ["--acls", "--numeric-ids", "--delete", "--inplace"].map(String::from);
    for option in defaults.into_iter().chain(ari_zfs::rrsync::accepted_examples()) {
        std::fs::remove_dir_all(&dst).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let out = run(Command::new("rsync")
            .arg("--archive")
            .arg(&option)
            .arg("-e")
            .arg(&ssh)
            .arg(&src)
            .arg(format!("zfs-host:{}", dst.display())));
        assert_eq!(out.status.code(), Some(0), "{option}: {}", stderr(&out));
        if !["--existing", "--dirs", "-d"].contains(&option.as_str()) {
            // Under its name, or its whole path (--relative).
            let arrived = fingerprint(&dst).keys().any(|path| path.ends_with("dir/b"));
            assert!(arrived, "{option}: nothing arrived: {:?}", fingerprint(&dst));
        }
    }
}

/// The live rig: a World with the ZFS fakes, an sshd over a scratch home whose `.bashrc`
/// records that it ran, the web job, its filter installed as the key's forced command.
struct Live {
    world: World,
    sshd: Sshd,
    home: PathBuf,
    dst: PathBuf,
    job: PathBuf,
    entry: serde_json::Value,
}

/// What the scratch home's `.bashrc` says: it runs, as every command's login bash starts.
fn bashrc(world: &World) -> String {
    format!("touch {}\n", world.fx.p("bashrc-ran"))
}

impl Live {
    /// With `sudoers`: the sshd's `/etc/sudoers` (see [`tests::SshdBuilder::sudoers`]).
    fn start(sudoers: Option<&dyn Fn(&World) -> String>, extra_config: &str) -> Live {
        rsync_and_rrsync();
        let world = World::new();
        let home = world.fx.path("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".bashrc"), bashrc(&world)).unwrap();
        let mut builder = Sshd::builder().path_prefix(world.fakes.bin_dir()).scratch_home(&home);
        if let Some(sudoers) = sudoers {
            builder = builder.sudoers(sudoers(&world));
        }
        let sshd = builder.start();
        world.write_config(&format!(
            "{}ssh_filter_path: {}\n{extra_config}",
            sshd.config_yaml(),
            world.fx.p("ssh-filter")
        ));
        let dst = world.fx.path("zfs/web");
        std::fs::create_dir_all(&dst).unwrap();
        world.fakes.add_dataset("pool/backups/web");
        let job = web_job(&world, sshd.host_alias(), &dst, "");
        let entry = authorized(&world, &sshd);
        install_filter(&entry, entry["filter"].as_str().unwrap());
        let line = entry["authorized_keys_line"].as_str().unwrap();
        sshd.set_key_options(line.split_once(' ').unwrap().0);
        Live { world, sshd, home, dst, job, entry }
    }

    /// The attacker's rsync: its own options and paths, through ssh with ari's key.
    fn rsync(&self, args: &[&str]) -> Output {
        let ssh = format!("ssh -F {}", self.sshd.ssh_config_path().display());
        run(Command::new("rsync").arg("-e").arg(ssh).args(args))
    }

    /// The attacker's ssh, sending `line` as the command.
    fn ssh(&self, line: &str) -> Output {
        run(self.sshd.ssh_command().arg(line))
    }

    fn remote(&self, path: &str) -> String {
        format!("{}:{path}", self.sshd.host_alias())
    }

    /// Nothing outside rsync_dst changed: the home as it was (its `.bashrc` as written), no
    /// file read out, the canary next to rsync_dst untouched.
    #[track_caller]
    fn assert_confined(
        &self,
        what: &str,
        home_before: &std::collections::BTreeMap<String, (bool, u64, std::time::SystemTime)>,
    ) {
        assert_eq!(
            std::fs::read_to_string(self.home.join(".bashrc")).unwrap(),
            bashrc(&self.world),
            "{what}"
        );
        assert_eq!(&fingerprint(&self.home), home_before, "{what}: the home changed");
        assert_eq!(std::fs::read_to_string(self.world.fx.path("zfs/canary")).unwrap(), "canary\n", "{what}");
    }
}

fn live_attacks(sudo: bool) {
    let live = Live::start(None, if sudo { "remote_sudo: true\n" } else { "" });
    std::fs::write(live.world.fx.path("zfs/canary"), "canary\n").unwrap();
    let home_before = fingerprint(&live.home);

    // The login bash reads ~/.bashrc here: a .bashrc the key could write would run.
    // ari's own `true` passes the filter as sent: the refusals below are the filter's own.
    let allowed = if sudo { "sudo -n -- /bin/sh -c '( exec true )'" } else { "true" };
    assert_exit(&live.ssh(allowed), 0);
    assert!(live.world.fx.path("bashrc-ran").exists(), "the login shell read the scratch ~/.bashrc");

    // The job runs through the filter, rsync handed to rrsync, nothing refused.
    let out = live.world.run(&live.job);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The include's whole path (rsync's --relative).
    let arrived = live.dst.join(live.world.fx.p("src/dir/b").trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(&arrived).unwrap(), "two\n");
    assert_eq!(live.world.fakes.zfs_snapshots().len(), 1);
    live.assert_confined("the job's run", &home_before);

    let src = format!("{}/", live.world.fx.p("src"));
    let dst = live.remote(&live.dst.display().to_string());
    let out_dir = live.world.fx.path("stolen");
    std::fs::create_dir_all(&out_dir).unwrap();
    let stolen = format!("{}/", out_dir.display());
    let attacks: Vec<(&str, Vec<String>)> = vec![
        (
            "a log file in the home (rsync's cwd)",
            vec!["-a".into(), "-M--log-file=.bashrc".into(), src.clone(), dst.clone()],
        ),
        (
            "a log file above rsync_dst",
            vec!["-a".into(), "-M--log-file=../canary".into(), src.clone(), dst.clone()],
        ),
        ("a log file named ..", vec!["-a".into(), "-M--log-file=..".into(), src.clone(), dst.clone()]),
        (
            "a backup dir above rsync_dst",
            vec!["-ab".into(), "--backup-dir=..".into(), src.clone(), dst.clone()],
        ),
        ("a temp dir above", vec!["-a".into(), "-M--temp-dir=..".into(), src.clone(), dst.clone()]),
        ("the home as the destination", vec!["-a".into(), src.clone(), live.remote(".")]),
        ("a relative destination out of the home", vec!["-a".into(), src.clone(), live.remote("../..")]),
        ("reading a file of the host", vec!["-a".into(), live.remote("/etc/hostname"), stolen.clone()]),
        ("reading through ..", vec!["-a".into(), live.remote("../../etc/hostname"), stolen.clone()]),
        ("reading rsync_dst itself", vec!["-a".into(), format!("{dst}/"), stolen.clone()]),
        (
            "deleting what is read",
            vec!["-a".into(), "--remove-source-files".into(), format!("{dst}/a"), stolen.clone()],
        ),
        (
            "a server option the table refuses",
            vec!["-a".into(), "-M--write-devices".into(), src.clone(), dst.clone()],
        ),
    ];
    for (what, args) in &attacks {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = live.rsync(&args);
        live.assert_confined(what, &home_before);
        assert!(std::fs::read_dir(&out_dir).unwrap().next().is_none(), "{what}: something was read out");
        assert!(live.dst.join("a").exists(), "{what}: a file of rsync_dst was removed");
    }

    // A symlink planted in rsync_dst, then a push through it.
    let planted = live.world.fx.path("planted");
    std::fs::create_dir_all(&planted).unwrap();
    std::os::unix::fs::symlink(&live.home, planted.join("esc")).unwrap();
    let _ = live.rsync(&["-a", &format!("{}/", planted.display()), &dst]);
    let through = live.world.fx.make_tree("through", &[("esc/.bashrc", "touch /tmp/pwned\n")]);
    for flags in ["-a", "-aK", "-aR"] {
        let _ = live.rsync(&[flags, &format!("{}/./esc", through.display()), &dst]);
        let _ = live.rsync(&[flags, &format!("{}/", through.display()), &dst]);
        live.assert_confined(&format!("a push through a planted symlink ({flags})"), &home_before);
    }

    // Lines the filter refuses outright.
    for line in [
        format!("rsync --server -logDtpre.iLsfxC . {}; touch ~/.bashrc", live.dst.display()),
        format!("rsync --server --log-file=/root/.bashrc . {}", live.dst.display()),
        format!("rsync --server -logDtpre.iLsfxC . {}/../x", live.dst.display()),
        "rrsync -wo /".to_string(),
        format!("SSH_ORIGINAL_COMMAND='rsync --server --sender . /' rrsync -wo {}", live.dst.display()),
    ] {
        let out = live.ssh(&line);
        assert_exit(&out, 126);
        assert!(stderr(&out).contains("ari-filter: refused (not a command of the jobs)"), "{}", stderr(&out));
        live.assert_confined(&line, &home_before);
    }
}

#[test]
fn through_the_filter_rsync_writes_only_inside_rsync_dst_and_reads_nothing() {
    live_attacks(false);
}

/// `ari check --connect` runs rrsync's probe through the filter: a host where rrsync cannot run
/// (here its interpreter is missing, as when python3 is not installed) is a problem, named; and
/// the installer, run there, stops before it writes anything.
#[test]
fn check_connect_and_the_installer_say_when_rrsync_cannot_run_on_the_zfs_host() {
    let live = Live::start(None, "");
    let out = run(live.world.ari().args(["check", "--connect"]));
    assert_exit(&out, 0);
    assert!(tests::stdout(&out).contains("ok: ssh filter"), "{}", tests::stdout(&out));
    // First on the sshd's PATH: an rrsync that fails as one does without python3 (execve's
    // ENOENT for the interpreter, which sh reports as the program not found, 127; a real one
    // here would only make sh search on and find the machine's).
    let broken = live.world.fakes.bin_dir().join("rrsync");
    std::fs::write(&broken, "#!/bin/sh\necho \"sh: 1: rrsync: not found\" >&2\nexit 127\n").unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run(live.world.ari().args(["check", "--connect"]));
    assert_exit(&out, 2);
    assert!(
        tests::stdout(&out).contains("`rrsync -help` cannot run on")
            && tests::stdout(&out).contains("apt install rsync python3"),
        "{}",
        tests::stdout(&out)
    );

    let key = format!("{}.pub", live.sshd.client_key_path().display());
    let host = live.sshd.host_alias();
    // Its keys in the fixture, never the machine's, should the installer get that far.
    let keys = format!("authorized_keys_file={}", live.world.fx.p("installer-keys"));
    let out = run(live.world.ari().args([
        "authorize",
        "--host",
        host,
        "--key",
        &key,
        "--installer",
        "--set",
        &keys,
    ]));
    assert_exit(&out, 0);
    let filter = live.entry["filter_path"].as_str().unwrap();
    std::fs::remove_file(filter).unwrap();
    let path = format!("{}:/usr/bin:/bin", live.world.fakes.bin_dir().display());
    let out = run(Command::new("sh").arg("-c").arg(tests::stdout(&out)).env("PATH", path));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("`rrsync -help` does not run here"), "{}", stderr(&out));
    assert!(!Path::new(filter).exists(), "the installer wrote the filter");
}

/// The mutation check: the same filter, widened back to running the rsync server as it is
/// (the handover taken out), lets the first attack write the login's `~/.bashrc`, which the
/// oracle above sees.
#[test]
fn a_filter_widened_back_lets_the_attack_write_the_bashrc_and_the_oracle_sees_it() {
    let live = Live::start(None, "");
    let filter = live.entry["filter"].as_str().unwrap();
    let handover = filter.lines().find(|l| l.contains("; cmd=\"${cmd%")).expect("the handover's line");
    let (head, _) = handover.split_once("; cmd=").unwrap();
    let widened = filter.replace(handover, &format!("{head}; fi; fi; fi"));
    assert_ne!(widened, filter);
    install_filter(&live.entry, &widened);
    let src = format!("{}/", live.world.fx.p("src"));
    let _ = live.rsync(&["-a", "-M--log-file=.bashrc", &src, &live.remote(&live.dst.display().to_string())]);
    let bashrc_now = std::fs::read_to_string(live.home.join(".bashrc")).unwrap();
    assert_ne!(bashrc_now, bashrc(&live.world), "the widened filter let rsync write the home's .bashrc");
}

/// With `remote_sudo` and the real sudo (1.9.13 on Debian 12): `/etc/sudoers` in the sshd's
/// namespace is the drop-in `ari authorize` made, its programs filled in as the installer
/// does, and nothing else. The job runs (sudo keeps the request for rrsync, and only the
/// drop-in's commands run as root), and the attacks of the test above stay inside rsync_dst.
#[test]
fn under_real_sudo_the_drop_in_hands_rrsync_its_request_and_rsync_stays_inside() {
    let visudo = require_tool("/usr/sbin/visudo", "sudo");
    require_tool("sudo", "sudo");
    // Until the drop-in is made: sudo allows nothing.
    let live = Live::start(Some(&|_: &World| "Defaults env_reset\n".to_string()), "remote_sudo: true\n");
    let drop_in = live.entry["sudoers"].as_str().expect("a drop-in under remote_sudo");
    assert!(drop_in.contains("Defaults!@rrsync@ env_keep += \"SSH_ORIGINAL_COMMAND\""), "{drop_in}");
    let fakes = live.world.fakes.bin_dir();
    let mut filled = format!(
        "Defaults env_reset\nDefaults secure_path=\"{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n",
        fakes.display()
    );
    for line in drop_in.lines() {
        // The fakes are this host's zfs: first on the drop-in's own path too.
        let mut line = line.replace("secure_path=\"", &format!("secure_path=\"{}:", fakes.display()));
        while let Some(start) = line.find('@') {
            let Some(len) = line[start + 1..].find('@') else { break };
            let program = line[start + 1..start + 1 + len].to_string();
            let path = if fakes.join(&program).exists() {
                fakes.join(&program)
            } else {
                require_tool(&program, &program)
            };
            line.replace_range(start..start + len + 2, &path.display().to_string());
        }
        filled.push_str(&line);
        filled.push('\n');
    }
    // The namespace's sudoers is the one in effect: with no rule yet, sudo refuses the run.
    let out = live.world.run(&live.job);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("is not in the sudoers file"), "{}", stderr(&out));
    let sudoers = live.sshd.dir().join("sudoers");
    // In place: the namespace's /etc/sudoers is this file's inode.
    std::fs::write(&sudoers, &filled).unwrap();
    assert_exit(&run(Command::new(visudo).arg("-cf").arg(&sudoers)), 0);
    std::fs::write(live.world.fx.path("zfs/canary"), "canary\n").unwrap();
    let home_before = fingerprint(&live.home);

    let out = live.world.run(&live.job);
    assert_eq!(out.status.code(), Some(0), "{}\n{filled}", stderr(&out));
    let arrived = live.dst.join(live.world.fx.p("src/dir/b").trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(&arrived).unwrap(), "two\n");
    assert_eq!(live.world.fakes.zfs_snapshots().len(), 1);

    let src = format!("{}/", live.world.fx.p("src"));
    let dst = live.remote(&live.dst.display().to_string());
    for option in ["-M--log-file=.bashrc", "-M--log-file=..", "--backup-dir=..", "-M--write-devices"] {
        let _ = live.rsync(&["-ab", "--rsync-path=sudo -n -- rsync", option, &src, &dst]);
        live.assert_confined(option, &home_before);
    }
    // A shell as the remote user (not the key: the filter passes only the two words) could
    // give rrsync's rule one argument, `-wo DIR`, which sudo's joined match admits and rrsync
    // reads as a directory relative to where it runs: read-write, there. The drop-in runs the
    // user's commands from `/` (`runcwd`), where only root could make `-wo /...`; without it, rrsync
    // takes the planted directory, which holds a link to the whole host.
    let attack_dir = live.world.fx.path("attacker-cwd");
    let planted = attack_dir.join(format!("-wo {}", live.dst.display()));
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/", &planted).unwrap();
    let split = |sudoers_file: &Path| {
        let script = "mount --bind \"$1\" /etc/sudoers && cd \"$2\" && SSH_ORIGINAL_COMMAND='rsync --server --sender -logDtpre.iLsfxC . etc/hostname' exec sudo -n -- \"$3\" \"$4\"";
        run(Command::new("unshare")
            .args(["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh"])
            .arg(sudoers_file)
            .arg(&attack_dir)
            .arg(require_tool("rrsync", "rsync"))
            .arg(format!("-wo {}", live.dst.display()))
            .stdin(std::process::Stdio::null()))
    };
    // rrsync looks for `/-wo DIR` (its lock, or its directory check, says it is not there).
    let out = split(&sudoers);
    let missing = |text: &str| {
        text.contains(&format!("'/-wo {}'", live.dst.display()))
            || text.contains("Restricted directory does not exist")
    };
    assert!(missing(&stderr(&out)), "{}", stderr(&out));
    let without = live.world.fx.path("sudoers-without-runcwd");
    assert!(filled.contains("\nDefaults:root runcwd=/, "), "{filled}");
    std::fs::write(&without, filled.replace("\nDefaults:root runcwd=/, ", "\nDefaults:root ")).unwrap();
    std::fs::set_permissions(&without, std::os::unix::fs::PermissionsExt::from_mode(0o440)).unwrap();
    let out = split(&without);
    assert!(
        !missing(&stderr(&out)) && !stderr(&out).contains("sudo:"),
        "without runcwd the split reaches the planted directory: {}",
        stderr(&out)
    );

    // Every other rule is one text in a subshell: sudo admits its other splits (here the text
    // cut after `zfs list`, its rest as `$0 $1 ...`), and sh runs none of them.
    let rule = filled.lines().find(|l| l.contains("( exec zfs list")).expect("the zfs list rule");
    let text = rule.split_once("^-c ").unwrap().1.trim_end_matches('$').replace('\\', "");
    let (head, rest) = text.split_at(text.find(" -H").unwrap());
    let script = "mount --bind \"$1\" /etc/sudoers && shift && cd / && exec sudo -n -- /bin/sh -c \"$@\"";
    let calls = live.world.fakes.calls_of("zfs").len();
    let out = run(Command::new("unshare")
        .args(["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh"])
        .arg(&sudoers)
        .arg(head)
        .args(rest.split_whitespace())
        .stdin(std::process::Stdio::null()));
    assert!(!stderr(&out).contains("sudo:"), "sudo admits the split: {}", stderr(&out));
    assert_eq!(out.status.code(), Some(2), "sh refuses `{head}`: {}", stderr(&out));
    assert_eq!(live.world.fakes.calls_of("zfs").len(), calls, "zfs ran");

    // The programs a rule names are found on the drop-in's own secure_path, not on the caller's
    // PATH (a third review: with no secure_path in the host's sudoers, a `true` of the user's
    // ran as root). Here the host's sudoers has none; the caller's PATH starts with a `true`
    // that leaves a mark.
    let hijack = live.world.fx.path("hijack");
    std::fs::create_dir_all(&hijack).unwrap();
    let mark = live.world.fx.path("hijacked");
    let fake_true = hijack.join("true");
    std::fs::write(&fake_true, format!("#!/bin/sh\ntouch {}\n", mark.display())).unwrap();
    std::fs::set_permissions(&fake_true, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let host_has_none: String =
        filled.lines().filter(|l| !l.starts_with("Defaults secure_path")).map(|l| format!("{l}\n")).collect();
    let hijacked = |sudoers_text: &str| {
        let file = live.world.fx.path("sudoers-hijack");
        std::fs::write(&file, sudoers_text).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o440)).unwrap();
        let _ = std::fs::remove_file(&mark);
        let script = "mount --bind \"$1\" /etc/sudoers && cd / && PATH=\"$2:/usr/bin:/bin\" exec sudo -n -- /bin/sh -c '( exec true )'";
        let out = run(Command::new("unshare")
            .args(["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh"])
            .arg(&file)
            .arg(&hijack)
            .stdin(std::process::Stdio::null()));
        assert!(!stderr(&out).contains("sudo:"), "sudo allows it: {}", stderr(&out));
        mark.exists()
    };
    assert!(!hijacked(&host_has_none), "the caller's `true` ran as root");
    let without_secure_path =
        host_has_none.replace(&format!(", secure_path=\"{}:", fakes.display()), ", secure_path_unused=\"");
    let without_secure_path: String = without_secure_path
        .lines()
        .filter(|l| !l.contains("secure_path_unused"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(hijacked(&without_secure_path), "without a secure_path anywhere, the caller's PATH wins");

    // sudo itself: what the drop-in does not name is refused, even for a line the filter
    // would let through were it the jobs'.
    let out = live.ssh("sudo -n -- rsync --server --sender -logDtpre.iLsfxC . /etc/hostname");
    assert_exit(&out, 126);
    live.assert_confined("sudo rsync --sender", &home_before);
}
