//! `ari restore JOB PATH [--at TIME] --to DIR [--force]`: a file and a directory at several
//! points in time, out of a real rdiff-backup store (local and remote jobs) and out of the fake
//! ZFS's snapshots (local and remote ZFS host); never over an existing path without `--force`;
//! bad times, paths and directories refused with exit 2 before anything is written; a PATH that
//! no backup holds is exit 2 with nothing written.
//!
//! Restores stay inside DIR: a DIR that another user prepared or could swap (set up as uid 65534
//! through `setpriv`, which needs root), symlinks below DIR and at DIR/PATH, a `--to` through a
//! symlink into the store, and DIR swapped for a symlink while the copy runs. The oracle is
//! always a tree outside DIR (and the store) that must not change.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, fingerprint, read_tree, require_tool, run, stderr, stdout, Fixture, Sshd, World};

/// The other user that prepares directories in the tests.
const NOBODY: u32 = 65534;

/// The names `ari history` gives the job's backups, newest first.
fn backup_names(ari: &mut std::process::Command) -> Vec<(String, i64, String)> {
    let out = run(ari);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    json["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let text = |key: &str| b[key].as_str().unwrap().to_string();
            (text("name"), b["time"].as_i64().unwrap(), text("time_rfc3339"))
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn tree(path: &Path) -> BTreeMap<String, String> {
    read_tree(path, &[]).into_iter().map(|(k, v)| (k, String::from_utf8(v).unwrap())).collect()
}

fn files(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Three versions of a source tree, one backed up after each: `a` is `one`, `two!`, `three!!`
/// (each its own length, so that no rewrite within a second goes unseen); `d` gains `z` in the
/// second and loses `y` in the third.
fn back_up_three_versions(src: &Path, mut backup: impl FnMut()) {
    let write = |name: &str, text: &str| {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("a", "one");
    write("d/x", "x1");
    write("d/y", "y1");
    backup();
    write("a", "two!");
    write("d/x", "x22");
    write("d/z", "z2");
    backup();
    write("a", "three!!");
    std::fs::remove_file(src.join("d/y")).unwrap();
    backup();
}

/// `ari restore JOB PATH --to TO EXTRA...` to its end.
fn restore(mut ari: std::process::Command, job: &str, path: &Path, to: &Path, extra: &[&str]) -> Output {
    run(ari.args(["restore", job]).arg(path).arg("--to").arg(to).args(extra))
}

/// `ari restore` of `path` at `at` into a fresh directory; the restored path.
fn restore_at(
    ari: impl Fn() -> std::process::Command,
    job: &str,
    path: &Path,
    at: Option<&str>,
    to: &Path,
) -> PathBuf {
    let mut command = ari();
    command.args(["restore", job]).arg(path).arg("--to").arg(to);
    if let Some(at) = at {
        command.args(["--at", at]);
    }
    let out = run(&mut command);
    assert_exit(&out, 0);
    let target = to.join(path.strip_prefix("/").unwrap());
    assert!(
        stdout(&out).contains(&format!("to {}\n", target.display())),
        "says where it restored to: {}",
        stdout(&out)
    );
    target
}

#[test]
fn an_rdiff_job_restores_a_file_and_a_directory_at_each_time_locally_and_remotely() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    for (name, host) in [("local", "localhost"), ("remote", sshd.host_alias())] {
        let src = fx.make_tree(&format!("src-{name}"), &[]);
        let job = fx.write_job(
            &format!("{name}.yaml"),
            &format!("source_hostname: {host}\ninclude: [{}]\n", src.display()),
        );
        back_up_three_versions(&src, || assert_exit(&run(fx.ari().arg("run").arg(&job)), 0));
        let names = backup_names(fx.ari().args(["history", name, "--json"]));
        assert_eq!(names.len(), 3, "{names:?}");
        let (a, d) = (src.join("a"), src.join("d"));
        let to = |what: &str| fx.path(&format!("restored-{name}-{what}"));

        // A file: the newest by default, then by sessions back, by name, by time.
        assert_eq!(read(&restore_at(|| fx.ari(), name, &a, None, &to("latest"))), "three!!");
        assert_eq!(read(&restore_at(|| fx.ari(), name, &a, Some("1B"), &to("1B"))), "two!");
        assert_eq!(read(&restore_at(|| fx.ari(), name, &a, Some(&names[2].0), &to("name"))), "one");
        let second = names[1].2.clone();
        assert_eq!(read(&restore_at(|| fx.ari(), name, &a, Some(&second), &to("time"))), "two!", "{second}");
        let before_second = (names[1].1 - 1).to_string();
        assert_eq!(read(&restore_at(|| fx.ari(), name, &a, Some(&before_second), &to("epoch"))), "one");

        // A directory, as each backup holds it.
        assert_eq!(
            tree(&restore_at(|| fx.ari(), name, &d, Some("2B"), &to("d2B"))),
            files(&[("x", "x1"), ("y", "y1")])
        );
        assert_eq!(
            tree(&restore_at(|| fx.ari(), name, &d, Some("1B"), &to("d1B"))),
            files(&[("x", "x22"), ("y", "y1"), ("z", "z2")])
        );
        assert_eq!(
            tree(&restore_at(|| fx.ari(), name, &d, None, &to("d0B"))),
            files(&[("x", "x22"), ("z", "z2")])
        );

        // Never over what is there without --force; with it, replaced.
        let out = restore(fx.ari(), name, &a, &to("latest"), &["--at", "2B"]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("exists, and ari never overwrites"), "{}", stderr(&out));
        assert_eq!(read(&to("latest").join(a.strip_prefix("/").unwrap())), "three!!", "left as it was");
        let out = restore(fx.ari(), name, &a, &to("latest"), &["--at", "2B", "--force"]);
        assert_exit(&out, 0);
        assert_eq!(read(&to("latest").join(a.strip_prefix("/").unwrap())), "one");
        std::fs::write(to("d0B").join(d.strip_prefix("/").unwrap()).join("stray"), "x").unwrap();
        let out = restore(fx.ari(), name, &d, &to("d0B"), &["--at", "1B", "--force"]);
        assert_exit(&out, 0);
        assert_eq!(
            tree(&to("d0B").join(d.strip_prefix("/").unwrap())),
            files(&[("x", "x22"), ("y", "y1"), ("z", "z2")])
        );

        // How to put it back, on the job's host.
        let out = run(fx.ari().args(["restore", name]).arg(&d).arg("--to").arg(to("hint")));
        assert_exit(&out, 0);
        let restored = to("hint").join(d.strip_prefix("/").unwrap());
        let place = match name {
            "remote" => format!("{}:{}/", sshd.host_alias(), d.display()),
            _ => format!(" {}/", d.display()),
        };
        let hint = stdout(&out);
        let rsh = match name {
            "remote" => {
                format!("-e '/usr/bin/ssh -p {} -F {}' ", sshd.port(), sshd.ssh_config_path().display())
            }
            _ => String::new(),
        };
        assert!(hint.contains(&format!("  rsync -a --numeric-ids {rsh}{}/ ", restored.display())), "{hint}");
        assert!(hint.trim_end().ends_with(&place), "{hint}");
    }
}

#[test]
fn bad_times_paths_and_directories_are_refused_with_exit_2_before_anything_is_written() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "one"), ("skip/b", "two")]);
    let job = fx.write_job("web.yaml", &format!("include: [{0}]\nexclude: [{0}/skip]\n", src.display()));
    let a = src.join("a").display().to_string();
    let to = fx.p("restored");

    // Before the first backup, there is nothing to restore from.
    let out = run(fx.ari().args(["restore", "web", &a, "--to", &to]));
    assert_exit(&out, 1);
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);

    let cases: &[(&[&str], &str)] = &[
        (&[&a, "--at", "3X"], "`3X` is no backup's name and no time"),
        (&[&a, "--at=-3D"], "no backup name or time starts with `-`"),
        (&[&a, "--at", "5B"], "the store holds 1 backups, `0B` (the newest) to `0B`"),
        (&[&a, "--at", "1990-01-01"], "the store holds no backup that old"),
        (&[&a, "--at", "10Y"], "the store holds no backup that old"),
        (&["src/a"], "is not an absolute path"),
        (&["/elsewhere/a"], "is not in what the job backs up"),
        (&[&format!("{}/../etc/passwd", src.display())], "`..`"),
        (&[&format!("{}/skip/b", src.display())], "is excluded by the job (exclude[0]"),
    ];
    for (args, expected) in cases {
        let out = run(fx.ari().args(["restore", "web"]).args(*args).args(["--to", &to]));
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
        assert!(!Path::new(&to).exists(), "{args:?}: nothing written");
    }
    // A dry run says what it would run, and writes nothing.
    let out = run(fx.ari().args(["restore", "web", &a, "--to", &to, "--dry-run"]));
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("would restore with: "), "{}", stderr(&out));
    assert!(!Path::new(&to).exists(), "a dry run writes nothing");

    let out = run(fx.ari().args(["restore", "web", &a, "--to", &fx.p("store/web/restored")]));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("restore outside the store"), "{}", stderr(&out));

    // While a run of the job holds its lock (this test, here), a restore is refused before it
    // makes the directories above its target.
    let lock = std::fs::File::open(fx.path("state/locks/web.lock")).unwrap();
    lock.try_lock().unwrap();
    let out = run(fx.ari().args(["restore", "web", &a, "--to", &format!("{to}/deep")]));
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!(
            "job web is already running (pid {}); try again once it has ended",
            std::process::id()
        )),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(&to).exists(), "a refused restore makes no directory");
    drop(lock);

    let command = fx.write_job("cmd.yaml", "backend: command\ncommand_host: local\ncommand: [\"true\"]\n");
    let out = run(fx.ari().arg("restore").arg(&command).args(["/etc", "--to", &to]));
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("the command backend keeps no backups that ari can restore from"),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(&to).exists());
}

/// A ZFS world: the fake dataset mounted at `zfs/web`, which rsync_dst names.
fn zfs_world() -> World {
    require_tool("rsync", "rsync");
    let zfs = World::new();
    std::fs::create_dir_all(zfs.fx.path("zfs/web")).unwrap();
    zfs.fakes.add_mounted_dataset("pool/backups/web", &zfs.fx.path("zfs/web"));
    zfs
}

#[test]
fn a_zfs_job_restores_out_of_its_snapshots_from_a_local_and_a_remote_zfs_host() {
    for remote in [false, true] {
        let zfs = zfs_world();
        let sshd = remote.then(|| Sshd::builder().path_prefix(zfs.fakes.bin_dir()).start());
        let (host, dst) = match &sshd {
            Some(sshd) => {
                zfs.write_config(&sshd.config_yaml());
                (sshd.host_alias().to_string(), format!("{}:{}", sshd.host_alias(), zfs.fx.p("zfs/web")))
            }
            None => ("localhost".to_string(), zfs.fx.p("zfs/web")),
        };
        let src = zfs.fx.make_tree("src", &[]);
        let job = zfs.fx.write_job(
            "web.yaml",
            &format!(
                "backend: zfs\ninclude: [{}]\nrsync_dst: {dst}\nzfs_hostname: {host}\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\n",
                src.display()
            ),
        );
        back_up_three_versions(&src, || assert_exit(&zfs.run(&job), 0));
        let names = backup_names(zfs.ari().args(["history", "web", "--json"]));
        assert_eq!(names.len(), 3, "{names:?}");
        let (a, d) = (src.join("a"), src.join("d"));
        let to = |what: &str| zfs.fx.path(&format!("restored-{what}"));
        let ari = || zfs.ari();
        assert_eq!(read(&restore_at(ari, "web", &a, None, &to("latest"))), "three!!", "remote: {remote}");
        assert_eq!(read(&restore_at(ari, "web", &a, Some("1B"), &to("1B"))), "two!");
        assert_eq!(read(&restore_at(ari, "web", &a, Some(&names[2].0), &to("name"))), "one");
        assert_eq!(
            tree(&restore_at(ari, "web", &d, Some("2B"), &to("d2B"))),
            files(&[("x", "x1"), ("y", "y1")])
        );
        assert_eq!(tree(&restore_at(ari, "web", &d, None, &to("d0B"))), files(&[("x", "x22"), ("z", "z2")]));
        // With --force, the directory becomes what the backup holds: `y` comes back, nothing
        // else of what was there stays.
        std::fs::write(to("d0B").join(d.strip_prefix("/").unwrap()).join("stray"), "x").unwrap();
        let out = restore(zfs.ari(), "web", &d, &to("d0B"), &["--at", "1B", "--force"]);
        assert_exit(&out, 0);
        assert_eq!(
            tree(&to("d0B").join(d.strip_prefix("/").unwrap())),
            files(&[("x", "x22"), ("y", "y1"), ("z", "z2")])
        );
        // A path the snapshot does not hold (rsync's sender says so, with exit 23): exit 2.
        for (path, at) in [(src.join("never"), "0B"), (d.join("y"), "0B")] {
            let out = restore(zfs.ari(), "web", &path, &to("absent"), &["--at", at]);
            assert_exit(&out, 2);
            assert!(stderr(&out).contains("holds nothing at"), "remote: {remote}: {}", stderr(&out));
            assert!(!to("absent").exists(), "nothing written");
        }
        zfs.fakes.assert_no_unexpected_calls();
    }
}

#[test]
fn a_zfs_dataset_without_a_mount_point_is_named_as_the_reason() {
    let zfs = World::new();
    require_tool("rsync", "rsync");
    zfs.fakes.add_dataset("pool/backups/web");
    zfs.fakes.add_zfs_snapshot("pool/backups/web@ari-backup-old", 1_800_000_000);
    let job = zfs.fx.write_job(
        "web.yaml",
        "backend: zfs\ninclude: [/etc]\nrsync_dst: /zfs/web\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\n",
    );
    let out: Output = run(zfs.ari().arg("restore").arg(&job).args(["/etc/hosts", "--to", &zfs.fx.p("r")]));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("has the mountpoint `none`"), "{}", stderr(&out));
}

#[test]
fn a_job_that_reads_lvm_snapshots_restores_paths_as_they_are_on_the_host() {
    rdiff_backup();
    require_tool("rsync", "rsync");
    let lvm = World::lvm();
    std::fs::create_dir_all(lvm.fx.path("zfs/web")).unwrap();
    lvm.fakes.add_mounted_dataset("pool/backups/web", &lvm.fx.path("zfs/web"));
    let volumes = "snapshot: lvm\nvolumes:\n  - {name: vg0/root, mount_point: /}\n  - {name: vg1/data, mount_point: /srv/data}\n";
    let rdiff = lvm.fx.write_job("db.yaml", &format!("label: db\n{volumes}include: [/etc, /srv/data]\n"));
    let zfs = lvm.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\n{volumes}rsync_dst: {}\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\n",
            lvm.fx.p("zfs/web")
        ),
    );
    for (job, label) in [(&rdiff, "db"), (&zfs, "web")] {
        assert_exit(&lvm.run(job), 0);
        let to = lvm.fx.path(&format!("restored-{label}"));
        let out = run(lvm.ari().args(["restore", label, "/etc/hosts", "--to"]).arg(&to));
        assert_exit(&out, 0);
        assert_eq!(read(&to.join("etc/hosts")), "127.0.0.1 localhost\n", "{label}");
        let out = run(lvm.ari().args(["restore", label, "/srv/data/db", "--to"]).arg(&to));
        assert_exit(&out, 0);
        assert_eq!(
            tree(&to.join("srv/data/db")),
            files(&[("log", "log\n"), ("table.ibd", "rows\n")]),
            "{label}"
        );
    }
    lvm.assert_clean();
    lvm.fakes.assert_no_unexpected_calls();
}

#[test]
fn a_path_that_no_backup_holds_is_exit_2_and_writes_nothing() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[]);
    let job = fx.write_job("web.yaml", &format!("include: [{}]\n", src.display()));
    back_up_three_versions(&src, || assert_exit(&run(fx.ari().arg("run").arg(&job)), 0));
    let to = fx.path("restored/deep");
    // Never there; there once but not in the newest backup; there in the one before.
    for (path, at) in [(src.join("never"), "0B"), (src.join("d/y"), "0B"), (src.join("d/z"), "2B")] {
        let out = restore(fx.ari(), "web", &path, &to, &["--at", at]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains(&format!("holds nothing at {}; nothing was written", path.display())), "{err}");
        assert!(!fx.path("restored").exists(), "{}: no directory is left", path.display());
    }
    assert_eq!(read(&restore_at(|| fx.ari(), "web", &src.join("d/y"), Some("1B"), &to)), "y1");
}

/// Fails unless the tests run as root, which preparing directories as another user needs.
fn require_root() {
    let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "this test needs root: it prepares directories as uid {NOBODY} with setpriv; run the tests \
         as root (as CI does), e.g. `sudo -E cargo nextest run -p tests --test restore`"
    );
}

/// Runs `script` with sh as uid and gid 65534, without groups; it must succeed.
#[track_caller]
fn as_nobody(script: &str) {
    require_tool("setpriv", "util-linux");
    let mut command = Command::new("setpriv");
    command
        .args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into()])
        .args(["sh", "-euc", script])
        .stdin(Stdio::null());
    let out = run(&mut command);
    assert_exit(&out, 0);
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree outside every DIR of a test: its entries with type, size and mtime, and its contents.
type Outside = (BTreeMap<String, (bool, u64, std::time::SystemTime)>, BTreeMap<String, Vec<u8>>);

fn outside(path: &Path) -> Outside {
    (fingerprint(path), read_tree(path, &[]))
}

/// The staging directories left anywhere below `root`.
fn staging_left(root: &Path) -> Vec<String> {
    fingerprint(root).into_keys().filter(|k| k.contains(".ari-restore-")).collect()
}

#[test]
fn a_dir_that_another_user_prepared_or_could_swap_is_refused_and_nothing_outside_it_changes() {
    rdiff_backup();
    require_root();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "one"), ("d/x", "x1")]);
    let job = fx.write_job("web.yaml", &format!("include: [{}]\n", src.display()));
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let out_dir = fx.make_tree("outside", &[("secret", "keep"), ("d/kept", "kept")]);
    let before = outside(&out_dir);
    let a = src.join("a");
    // DIR/PATH's way below DIR: tmp/ari-test-X/src/a for /tmp/ari-test-X/src/a.
    let way = a.parent().unwrap().strip_prefix("/").unwrap().to_path_buf();
    chmod(fx.root(), 0o755);
    let shared = fx.path("shared");
    fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777); // like /tmp
    let open = fx.path("open");
    fs::create_dir(&open).unwrap();
    chmod(&open, 0o777); // world-writable, no sticky bit
    let (s, o, out_p) = (shared.display(), open.display(), out_dir.display());

    // Prepared by another user: their DIR whose way to PATH is a symlink out; their symlink as
    // DIR; their (empty) directory as DIR.
    as_nobody(&format!(
        "mkdir -p {s}/theirs/{way}; rmdir {s}/theirs/{way}; ln -s {out_p} {s}/theirs/{way}; \
         ln -s {out_p} {s}/link; mkdir {s}/squat",
        way = way.display()
    ));
    // Root's directory in a world-writable parent, which that user can swap for a symlink out.
    fs::create_dir(open.join("dir")).unwrap();
    as_nobody(&format!("mv {o}/dir {o}/gone; ln -s {out_p} {o}/dir"));
    fs::create_dir(open.join("mine")).unwrap();
    // Root's DIR in the sticky directory, with a directory below it that belongs to that user
    // (as a restored home directory would), holding a symlink out.
    let first = way.iter().next().unwrap().to_string_lossy().into_owned();
    let rest: PathBuf = way.iter().skip(1).collect();
    fs::create_dir_all(shared.join("mine").join(&first)).unwrap();
    std::os::unix::fs::chown(shared.join("mine").join(&first), Some(NOBODY), Some(NOBODY)).unwrap();
    as_nobody(&format!(
        "mkdir -p {s}/mine/{first}/{rest}; rmdir {s}/mine/{first}/{rest}; ln -s {out_p} {s}/mine/{first}/{rest}",
        rest = rest.display()
    ));

    let cases: &[(&str, &str)] = &[
        ("shared/theirs", "is owned by uid 65534"),
        ("shared/link", "is a symlink owned by uid 65534"),
        ("shared/squat", "is owned by uid 65534"),
        ("open/dir", "has mode 0777: its group and other users may rename or replace what it holds"),
        ("open/mine", "has mode 0777"),
        ("shared/mine", "is owned by uid 65534"),
    ];
    for (dir, expected) in cases {
        for force in [&[][..], &["--force"][..]] {
            let out = restore(fx.ari(), "web", &a, &fx.path(dir), force);
            assert_exit(&out, 2);
            assert!(stderr(&out).contains(expected), "{dir} {force:?}: {}", stderr(&out));
            assert_eq!(outside(&out_dir), before, "{dir} {force:?}: nothing outside DIR changes");
        }
    }
    // A DIR ari makes itself in the sticky directory is its own (0700), and takes the restore;
    // the same for the directory PATH `/` restores into.
    assert_eq!(read(&restore_at(|| fx.ari(), "web", &a, None, &shared.join("fresh"))), "one");
    let fresh = fs::metadata(shared.join("fresh")).unwrap();
    assert_eq!((fresh.uid(), fresh.mode() & 0o7777), (0, 0o700));
    assert_exit(&restore(fx.ari(), "web", Path::new("/"), &shared.join("whole"), &[]), 0);
    assert_eq!(read(&shared.join("whole").join(&way).join("a")), "one");
    assert_eq!(outside(&out_dir), before);
    assert_eq!(staging_left(fx.root()), Vec::<String>::new());
}

#[test]
fn symlinks_below_dir_are_never_followed_and_force_replaces_only_dir_path() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "one"), ("d/x", "x1"), ("d/sub/y", "y1")]);
    let job = fx.write_job("web.yaml", &format!("include: [{}]\n", src.display()));
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let out_dir = fx.make_tree("outside", &[("secret", "keep"), ("d/kept", "kept")]);
    let before = outside(&out_dir);
    let (a, d) = (src.join("a"), src.join("d"));
    let below = |dir: &str, path: &Path| fx.path(dir).join(path.strip_prefix("/").unwrap());

    // A symlink on the way below DIR: refused, with --force too.
    let way = below("r1", src.parent().unwrap());
    fs::create_dir_all(way.parent().unwrap()).unwrap();
    symlink(&out_dir, &way).unwrap();
    for force in [&[][..], &["--force"][..]] {
        let out = restore(fx.ari(), "web", &a, &fx.path("r1"), force);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("below --to ari follows no symlink"), "{}", stderr(&out));
    }

    // DIR/PATH a symlink out: without --force it exists; with it, the symlink itself is
    // replaced, and what it pointed to is as it was.
    fs::create_dir_all(below("r2", &src)).unwrap();
    symlink(out_dir.join("secret"), below("r2", &a)).unwrap();
    assert_exit(&restore(fx.ari(), "web", &a, &fx.path("r2"), &[]), 2);
    assert_exit(&restore(fx.ari(), "web", &a, &fx.path("r2"), &["--force"]), 0);
    assert_eq!(read(&below("r2", &a)), "one");
    assert!(!fs::symlink_metadata(below("r2", &a)).unwrap().is_symlink());

    // A directory holding symlinks out, replaced with --force: they go as links.
    fs::create_dir_all(below("r2", &d).join("inner")).unwrap();
    symlink(&out_dir, below("r2", &d).join("link")).unwrap();
    symlink(out_dir.join("d"), below("r2", &d).join("inner/dir-link")).unwrap();
    symlink(out_dir.join("secret"), below("r2", &d).join("inner/file-link")).unwrap();
    assert_exit(&restore(fx.ari(), "web", &d, &fx.path("r2"), &["--force"]), 0);
    assert_eq!(tree(&below("r2", &d)), files(&[("x", "x1"), ("sub/y", "y1")]));
    assert_eq!(outside(&out_dir), before);
    assert_eq!(staging_left(fx.root()), Vec::<String>::new());
}

#[test]
fn a_to_through_a_symlink_into_the_store_is_refused_and_the_store_is_unchanged() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "one")]);
    let job = fx.write_job("web.yaml", &format!("include: [{}]\n", src.display()));
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let store = fx.path("store");
    let before = outside(&store);
    symlink(store.join("web"), fx.path("into-mirror")).unwrap();
    symlink(&store, fx.path("into-store")).unwrap();
    fs::create_dir(fx.path("r")).unwrap();
    symlink(fx.root(), fx.path("r/up")).unwrap();
    let a = src.join("a");
    let cases: &[(&str, &[&str])] = &[
        ("into-mirror", &[]),
        ("into-mirror/x", &[]),
        ("into-store", &[]),
        ("into-store/web/rdiff-backup-data", &[]),
    ];
    for (to, extra) in cases {
        let out = restore(fx.ari(), "web", &a, &fx.path(to), extra);
        assert_ne!(out.status.code(), Some(0), "{to}");
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("restore outside the store"), "{to}: {}", stderr(&out));
        assert_eq!(outside(&store), before, "{to}: the store is as it was");
    }
    // PATH `/` with --force replaces DIR itself: a DIR that holds the store is refused.
    let out = restore(fx.ari(), "web", Path::new("/"), fx.root(), &["--force"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("restore outside the store"), "{}", stderr(&out));
    assert_eq!(outside(&store), before);
    assert!(fx.path("src/a").exists());
}

#[test]
fn the_copy_stays_in_the_directory_ari_holds_when_dir_is_swapped_for_a_symlink_meanwhile() {
    let rdiff = rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "one")]);
    let out_dir = fx.make_tree("outside", &[("secret", "keep")]);
    let before = outside(&out_dir);
    let to = fx.path("r");
    fs::create_dir(&to).unwrap();
    // rdiff-backup, but a restore first moves DIR away and puts a symlink out in its place, and
    // notes the target it was given.
    let wrapper = fx.write_script(
        "bin/rdiff-backup",
        &format!(
            "#!/bin/sh\nif [ \"$1\" = restore ]; then\n  mv {to} {to}.moved && ln -s {out} {to}\n  printf '%s' \"$5\" > {log}\nfi\nexec {rdiff} \"$@\"\n",
            to = to.display(),
            out = out_dir.display(),
            log = fx.path("target-given").display(),
            rdiff = rdiff.display()
        ),
    );
    let job = fx.write_job(
        "web.yaml",
        &format!("include: [{}]\nrdiff_backup_path: {}\n", src.display(), wrapper.display()),
    );
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let a = src.join("a");
    let out = restore(fx.ari(), "web", &a, &to, &[]);
    assert_exit(&out, 0);
    let given = fs::read_to_string(fx.path("target-given")).unwrap();
    assert!(given.starts_with("/proc/") && given.contains("/fd/") && given.ends_with("/copy/a"), "{given}");
    assert_eq!(read(&fx.path("r.moved").join(a.strip_prefix("/").unwrap())), "one");
    assert_eq!(outside(&out_dir), before, "nothing went through the symlink");
    assert_eq!(staging_left(fx.root()), Vec::<String>::new());
}
