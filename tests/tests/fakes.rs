//! Tests of the fake LVM, mount and ZFS tools themselves (`tests::fakes` and the
//! `ari-fake` binary): each tool's normal behaviour and its real counterpart's failures,
//! fault rules, unexpected calls, concurrent calls, and the same state reached through the
//! harness's sshd. The scenario tests of ari rely on all of this.
//!
//! The tools are run by bare name through a `PATH` that starts with the fakes' `bin/`, as
//! ari runs them.

// Tests spawn the fake tools and ssh directly on purpose: the workspace's one-spawner rule
// is for production code.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;
use tests::fakes::stream::ResumeToken;
use tests::fakes::Fakes;
use tests::{describe_output, eventually, run, Sshd};

/// The fake `tool` by bare name, as ari runs it.
fn command(fakes: &Fakes, tool: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(tool);
    // A PATH set on the command is also the one the command is looked up in.
    cmd.args(args).env("PATH", fakes.path_env());
    cmd
}

/// Runs the fake `tool` and checks its exit status, stdout and stderr exactly.
fn expect(fakes: &Fakes, tool: &str, args: &[&str], exit: i32, stdout: &str, stderr: &str) {
    let mut cmd = command(fakes, tool, args);
    let output = run(cmd.stdin(Stdio::null()));
    let got = (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        got == (Some(exit), stdout.into(), stderr.into()),
        "expected exit {exit}, stdout {stdout:?}, stderr {stderr:?}\n{}\n{}",
        describe_output(&cmd, &output),
        fakes.report()
    );
}

/// Runs the fake `tool`, expecting it to succeed.
fn ok(fakes: &Fakes, tool: &str, args: &[&str]) -> String {
    let mut cmd = command(fakes, tool, args);
    let output = run(cmd.stdin(Stdio::null()));
    assert!(output.status.success(), "{}\n{}", describe_output(&cmd, &output), fakes.report());
    String::from_utf8(output.stdout).expect("the fakes print UTF-8")
}

fn text(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// A volume's content: a file, a private file, nested directories, a read-only empty one
/// and a symlink, all with old times, so that a copy with fresh times would show.
fn content() -> TempDir {
    let dir = tempfile::Builder::new().prefix("ari-fakes-content-").tempdir().expect("create content dir");
    let root = dir.path();
    fs::create_dir_all(root.join("etc")).expect("mkdir etc");
    fs::create_dir_all(root.join("var/empty")).expect("mkdir var/empty");
    fs::write(root.join("etc/hostname"), "box\n").expect("write hostname");
    fs::write(root.join("secret"), "s3cret\n").expect("write secret");
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).expect("chmod secret");
    symlink("etc/hostname", root.join("link")).expect("symlink");
    for (path, seconds) in [("etc/hostname", 1_600_000_000), ("secret", 1_600_000_100)] {
        File::options()
            .write(true)
            .open(root.join(path))
            .and_then(|f| f.set_times(FileTimes::new().set_accessed(at(seconds)).set_modified(at(seconds))))
            .expect("set file times");
    }
    // Directories last, once nothing more is created in them. `var/empty` read-only last of
    // all: the copy must give it that mode only once it is filled, and an empty one can
    // still be removed by a user who is not root.
    for (path, seconds) in
        [("var/empty", 1_500_000_000), ("var", 1_500_000_100), ("etc", 1_500_000_200), ("", 1_500_000_300)]
    {
        File::open(root.join(path))
            .and_then(|f| f.set_times(FileTimes::new().set_accessed(at(seconds)).set_modified(at(seconds))))
            .expect("set dir times");
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).expect("chmod the root");
    fs::set_permissions(root.join("var/empty"), fs::Permissions::from_mode(0o555)).expect("chmod var/empty");
    dir
}

/// Every entry under `root`, the root itself as "", with its kind, mode, mtime and content
/// or link target: what rsync and rdiff-backup compare.
fn listing(root: &Path) -> BTreeMap<String, (String, u32, Option<SystemTime>, String)> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).expect("stat");
        let relative = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        let (kind, body) = if meta.is_symlink() {
            ("symlink", fs::read_link(&path).expect("readlink").to_string_lossy().into_owned())
        } else if meta.is_dir() {
            stack.extend(fs::read_dir(&path).expect("read dir").map(|e| e.expect("dir entry").path()));
            ("dir", String::new())
        } else {
            ("file", fs::read_to_string(&path).expect("read file"))
        };
        // Access times are left out: reading the tree updates them.
        entries.insert(relative, (kind.to_owned(), meta.permissions().mode(), meta.modified().ok(), body));
    }
    entries
}

/// Fakes with the origin volume `vg0/root` showing a fresh [`content`], and an empty mount
/// point; the temp dirs live as long as the returned values.
fn lvm_fixture() -> (Fakes, TempDir, TempDir) {
    let fakes = Fakes::new();
    let content = content();
    fakes.add_volume("vg0/root", content.path());
    let mnt = tempfile::Builder::new().prefix("ari-fakes-mnt-").tempdir().expect("create mount dir");
    (fakes, content, mnt)
}

#[test]
fn snapshot_mount_umount_remove() {
    let (fakes, content, mnt_parent) = lvm_fixture();
    expect(
        &fakes,
        "lvcreate",
        &["-s", "-L", "1G", "vg0/root", "-n", "root-ari_backup"],
        0,
        "  Logical volume \"root-ari_backup\" created.\n",
        "",
    );
    assert_eq!(fakes.snapshots(), ["vg0/root-ari_backup"]);
    expect(
        &fakes,
        "lvs",
        &["--noheadings", "-o", "vg_name,lv_name,origin"],
        0,
        "  vg0 root \n  vg0 root-ari_backup root\n",
        "",
    );
    expect(
        &fakes,
        "lvs",
        &["--noheadings", "-o", "vg_name,lv_name,origin", "vg0/root-ari_backup"],
        0,
        "  vg0 root-ari_backup root\n",
        "",
    );

    let mnt = mnt_parent.path().join("snap");
    fs::create_dir(&mnt).expect("mkdir the mount point");
    fs::set_permissions(&mnt, fs::Permissions::from_mode(0o700)).expect("chmod the mount point");
    let before = listing(&mnt);
    expect(&fakes, "mountpoint", &["-q", text(&mnt)], 1, "", "");
    // A trailing slash names the same directory.
    let with_slash = format!("{}/", mnt.display());
    ok(&fakes, "mount", &["-o", "ro,noatime", "/dev/vg0/root-ari_backup", &with_slash]);

    assert_eq!(listing(&mnt), listing(content.path()), "the mount shows the content, modes and times");
    let state = fakes.state();
    assert_eq!(fakes.mounts(), [text(&mnt)]);
    assert_eq!(state.mounts[text(&mnt)].device, "/dev/vg0/root-ari_backup");
    assert_eq!(state.mounts[text(&mnt)].options, "ro,noatime");
    expect(&fakes, "mountpoint", &["-q", text(&mnt)], 0, "", "");
    expect(&fakes, "mountpoint", &["-q", &with_slash], 0, "", "");

    ok(&fakes, "umount", &[text(&mnt)]);
    assert_eq!(listing(&mnt), before, "after umount the mount point is empty and as it was");
    assert!(fakes.mounts().is_empty());
    expect(&fakes, "mountpoint", &["-q", text(&mnt)], 1, "", "");

    expect(
        &fakes,
        "lvremove",
        &["-f", "vg0/root-ari_backup"],
        0,
        "  Logical volume \"root-ari_backup\" successfully removed.\n",
        "",
    );
    assert!(fakes.snapshots().is_empty());
    fakes.assert_clean();
    let tools: Vec<String> = fakes.calls().into_iter().map(|c| c.tool).collect();
    assert_eq!(
        tools,
        [
            "lvcreate",
            "lvs",
            "lvs",
            "mountpoint",
            "mount",
            "mountpoint",
            "mountpoint",
            "umount",
            "mountpoint",
            "lvremove"
        ]
    );
    let lvcreates = fakes.calls_of("lvcreate");
    assert_eq!(lvcreates.len(), 1);
    assert_eq!(lvcreates[0].args, ["-s", "-L", "1G", "vg0/root", "-n", "root-ari_backup"]);
    assert_eq!((lvcreates[0].exit, lvcreates[0].unexpected), (0, false));
    assert_eq!(fakes.state().snapshots.len(), 0);
}

#[test]
fn the_origin_itself_mounts_too() {
    let (fakes, content, mnt) = lvm_fixture();
    ok(&fakes, "mount", &["/dev/vg0/root", text(mnt.path())]);
    assert_eq!(listing(mnt.path()), listing(content.path()));
    assert_eq!(fakes.state().mounts[text(mnt.path())].options, "", "no -o, no options");
    ok(&fakes, "umount", &[text(mnt.path())]);
    fakes.assert_clean();
}

#[test]
fn lvcreate_failures() {
    let (fakes, _content, _mnt) = lvm_fixture();
    let lvcreate = |origin: &str, name: &str, exit: i32, stderr: &str| {
        let stdout =
            if exit == 0 { format!("  Logical volume \"{name}\" created.\n") } else { String::new() };
        expect(&fakes, "lvcreate", &["-s", "-L", "1G", origin, "-n", name], exit, &stdout, stderr);
    };
    lvcreate("vg9/root", "s", 5, "  Volume group \"vg9\" not found\n");
    lvcreate("vg0/home", "s", 5, "  Failed to find logical volume \"vg0/home\"\n");
    lvcreate("vg0/root", "s", 0, "");
    lvcreate("vg0/root", "s", 5, "  Logical Volume \"s\" already exists in volume group \"vg0\"\n");
    lvcreate("vg0/root", "root", 5, "  Logical Volume \"root\" already exists in volume group \"vg0\"\n");
    // Options in another order are the same call.
    expect(
        &fakes,
        "lvcreate",
        &["vg0/root", "-n", "t", "-L", "2G", "-s"],
        0,
        "  Logical volume \"t\" created.\n",
        "",
    );
    assert_eq!(fakes.snapshots(), ["vg0/s", "vg0/t"]);
    assert_eq!(fakes.state().snapshots["vg0/t"].size, "2G");
    expect(
        &fakes,
        "lvs",
        &["--noheadings", "-o", "vg_name,lv_name,origin", "vg0/nope"],
        5,
        "",
        "  Failed to find logical volume \"vg0/nope\"\n",
    );
    expect(&fakes, "lvremove", &["-f", "vg0/nope"], 5, "", "  Failed to find logical volume \"vg0/nope\"\n");
    fakes.assert_no_unexpected_calls();
}

#[test]
fn lvremove_of_a_mounted_snapshot_fails() {
    let (fakes, _content, mnt) = lvm_fixture();
    ok(&fakes, "lvcreate", &["-s", "-L", "1G", "vg0/root", "-n", "snap"]);
    ok(&fakes, "mount", &["-o", "ro", "/dev/vg0/snap", text(mnt.path())]);
    expect(
        &fakes,
        "lvremove",
        &["-f", "vg0/snap"],
        5,
        "",
        "  Logical volume vg0/snap contains a filesystem in use.\n",
    );
    assert_eq!(fakes.snapshots(), ["vg0/snap"]);
    ok(&fakes, "umount", &[text(mnt.path())]);
    ok(&fakes, "lvremove", &["-f", "vg0/snap"]);
    fakes.assert_clean();
}

#[test]
fn mount_failures() {
    let (fakes, _content, mnt) = lvm_fixture();
    let dir = text(mnt.path());
    ok(&fakes, "lvcreate", &["-s", "-L", "1G", "vg0/root", "-n", "snap"]);

    let missing = mnt.path().join("missing");
    let missing = text(&missing);
    expect(
        &fakes,
        "mount",
        &["/dev/vg0/snap", missing],
        32,
        "",
        &format!("mount: {missing}: mount point does not exist.\n"),
    );
    expect(
        &fakes,
        "mount",
        &["/dev/vg0/gone", dir],
        32,
        "",
        &format!("mount: {dir}: special device /dev/vg0/gone does not exist.\n"),
    );
    expect(
        &fakes,
        "mount",
        &["-o", "ro,bogus", "/dev/vg0/snap", dir],
        32,
        "",
        &format!(
            "mount: {dir}: wrong fs type, bad option, bad superblock on /dev/vg0/snap, missing codepage or \
             helper program, or other error.\n"
        ),
    );
    assert!(fakes.mounts().is_empty(), "a failed mount mounts nothing");
    assert!(listing(mnt.path()).len() == 1, "a failed mount copies nothing");

    ok(&fakes, "mount", &["-o", "ro,nouuid,norecovery", "/dev/vg0/snap", dir]);
    expect(
        &fakes,
        "mount",
        &["-o", "ro", "/dev/vg0/snap", dir],
        32,
        "",
        &format!("mount: {dir}: /dev/vg0/snap already mounted on {dir}.\n"),
    );
    assert_eq!(fakes.mounts(), [dir]);

    ok(&fakes, "umount", &[dir]);
    expect(&fakes, "umount", &[dir], 32, "", &format!("umount: {dir}: not mounted.\n"));
    expect(
        &fakes,
        "mountpoint",
        &["-q", missing],
        32,
        "",
        &format!("mountpoint: {missing}: No such file or directory\n"),
    );
    ok(&fakes, "lvremove", &["-f", "vg0/snap"]);
    fakes.assert_clean();
}

/// `findmnt --source` shows where a device is mounted (nothing, exit 1, when nowhere), and
/// `umount DEVICE` unmounts it there, as the real ones do.
#[test]
fn findmnt_and_umount_by_device() {
    let (fakes, _content, mnt) = lvm_fixture();
    let dir = text(mnt.path());
    let findmnt = ["-n", "-o", "TARGET", "--source", "/dev/vg0/snap"];
    ok(&fakes, "lvcreate", &["-s", "-L", "1G", "vg0/root", "-n", "snap"]);
    expect(&fakes, "findmnt", &findmnt, 1, "", "");
    ok(&fakes, "mount", &["/dev/vg0/snap", dir]);
    expect(&fakes, "findmnt", &findmnt, 0, &format!("{dir}\n"), "");
    ok(&fakes, "umount", &["/dev/vg0/snap"]);
    assert!(fakes.mounts().is_empty() && listing(mnt.path()).len() == 1, "umount by device emptied {dir}");
    expect(&fakes, "umount", &["/dev/vg0/snap"], 32, "", "umount: /dev/vg0/snap: not mounted.\n");
    expect(&fakes, "findmnt", &findmnt, 1, "", "");
    ok(&fakes, "lvremove", &["-f", "vg0/snap"]);
    fakes.assert_clean();
}

#[test]
fn fail_by_call_number_counts_failed_calls_too() {
    let (fakes, _content, mnt) = lvm_fixture();
    let dir = text(mnt.path());
    fakes.fail("umount", &[1, 2], 32, &format!("umount: {dir}: target is busy."));
    ok(&fakes, "lvcreate", &["-s", "-L", "1G", "vg0/root", "-n", "snap"]);
    ok(&fakes, "mount", &["/dev/vg0/snap", dir]);
    for _ in 0..2 {
        expect(&fakes, "umount", &[dir], 32, "", &format!("umount: {dir}: target is busy.\n"));
        assert_eq!(fakes.mounts(), [dir], "a faulted call changes nothing");
        assert!(mnt.path().join("etc/hostname").exists(), "a faulted umount leaves the files");
    }
    ok(&fakes, "umount", &[dir]);
    ok(&fakes, "lvremove", &["-f", "vg0/snap"]);
    let exits: Vec<i32> = fakes.calls_of("umount").iter().map(|c| c.exit).collect();
    assert_eq!(exits, [32, 32, 0]);
    fakes.assert_clean();
}

#[test]
fn fail_always_and_fail_matching() {
    let (fakes, _content, _mnt) = lvm_fixture();
    fakes.fail_matching("lvcreate", "-n doomed", 5, "  Insufficient free space");
    ok(&fakes, "lvcreate", &["-s", "-L", "1G", "vg0/root", "-n", "fine"]);
    for _ in 0..2 {
        expect(
            &fakes,
            "lvcreate",
            &["-s", "-L", "1G", "vg0/root", "-n", "doomed"],
            5,
            "",
            "  Insufficient free space\n",
        );
    }
    assert_eq!(fakes.snapshots(), ["vg0/fine"]);

    fakes.fail_always("lvremove", 5, "  device-mapper: remove ioctl failed: Device or resource busy");
    for _ in 0..3 {
        expect(
            &fakes,
            "lvremove",
            &["-f", "vg0/fine"],
            5,
            "",
            "  device-mapper: remove ioctl failed: Device or resource busy\n",
        );
    }
    assert_eq!(fakes.snapshots(), ["vg0/fine"]);
    // A rule does not hide a malformed call of its tool.
    expect(
        &fakes,
        "lvremove",
        &["vg0/fine"],
        99,
        "",
        "ari-fake: unexpected call: lvremove vg0/fine\nari-fake: -f is missing\n",
    );
}

#[test]
fn output_replaces_normal_output() {
    let fakes = Fakes::new();
    fakes.add_dataset("pool/backups");
    fakes.add_zfs_snapshot("pool/backups@ari-backup-2026-01-01--0000", 1_767_225_600);
    fakes.output("zfs", &[2], "pool/backups@garbage\tnot-a-number\n");
    let list = zfs_list("pool/backups");
    let good = "pool/backups@ari-backup-2026-01-01--0000\t1767225600\n";
    expect(&fakes, "zfs", &list, 0, good, "");
    expect(&fakes, "zfs", &list, 0, "pool/backups@garbage\tnot-a-number\n", "");
    expect(&fakes, "zfs", &list, 0, good, "");

    // Output instead of a change: the state stays as it was.
    fakes.output("zfs", &[4], "");
    ok(&fakes, "zfs", &["snapshot", "pool/backups@new"]);
    assert_eq!(fakes.zfs_snapshots().len(), 1);
    fakes.assert_no_unexpected_calls();
}

#[test]
fn a_hanging_call_hangs_until_killed_and_others_go_on() {
    let fakes = Fakes::new();
    fakes.add_dataset("pool/x");
    fakes.hang("zfs", &[1]);
    let mut hanging = command(&fakes, "zfs", &["snapshot", "pool/x@first"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the hanging zfs");
    // Wait until it is recorded, so that the next call counts as the second.
    assert!(
        eventually(|| !fakes.calls().is_empty()),
        "the hanging call was never recorded\n{}",
        fakes.report()
    );
    // While it hangs, it holds no lock: other calls and reads go on.
    ok(&fakes, "zfs", &["snapshot", "pool/x@second"]);
    assert!(
        hanging.try_wait().expect("poll the hanging zfs").is_none(),
        "the call ended before the call after it did"
    );
    // It hangs in the fake's sleep loop, not on its way out: the kernel shows it asleep there.
    let wchan = format!("/proc/{}/wchan", hanging.id());
    assert!(
        eventually(|| fs::read_to_string(&wchan).is_ok_and(|w| w.contains("nanosleep"))),
        "the hanging zfs is not asleep: {wchan} shows {:?}\n{}",
        fs::read_to_string(&wchan),
        fakes.report()
    );
    // Child::kill signals this one process, which the wrapper script exec'd into.
    hanging.kill().expect("kill the hanging zfs");
    let status = hanging.wait().expect("reap the hanging zfs");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the call hung until it was killed: {status}");

    let calls = fakes.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].hung && calls[0].exit == -1, "{}", fakes.report());
    assert!(!calls[1].hung && calls[1].exit == 0, "{}", fakes.report());
    let names: Vec<String> = fakes.zfs_snapshots().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["pool/x@second"], "the hanging call changed nothing");
    fakes.assert_no_unexpected_calls();
}

#[test]
fn zfs_snapshot_list_destroy() {
    let fakes = Fakes::new();
    fakes.add_dataset("pool/backups/x");
    fakes.add_dataset("pool/backups/x/child");
    fakes.set_now(1_767_225_600);
    ok(&fakes, "zfs", &["snapshot", "pool/backups/x@ari-backup-2026-01-01--0000"]);
    fakes.set_now(1_767_312_000);
    ok(&fakes, "zfs", &["snapshot", "pool/backups/x/child@ari-backup-2026-01-02--0000"]);
    ok(&fakes, "zfs", &["snapshot", "pool/backups/x@ari-backup-2026-01-02--0000"]);
    // Made earlier, added later: listed by creation time, first.
    fakes.add_zfs_snapshot("pool/backups/x@ari-backup-2025-12-31--0000", 1_767_139_200);

    expect(
        &fakes,
        "zfs",
        &zfs_list("pool/backups/x"),
        0,
        "pool/backups/x@ari-backup-2025-12-31--0000\t1767139200\n\
         pool/backups/x@ari-backup-2026-01-01--0000\t1767225600\n\
         pool/backups/x@ari-backup-2026-01-02--0000\t1767312000\n",
        "",
    );
    expect(
        &fakes,
        "zfs",
        &zfs_list("pool/backups/x/child"),
        0,
        "pool/backups/x/child@ari-backup-2026-01-02--0000\t1767312000\n",
        "",
    );
    expect(&fakes, "zfs", &zfs_list("pool/nope"), 1, "", "cannot open 'pool/nope': dataset does not exist\n");
    expect(
        &fakes,
        "zfs",
        &["snapshot", "pool/nope@s"],
        1,
        "",
        "cannot open 'pool/nope': dataset does not exist\n",
    );
    expect(
        &fakes,
        "zfs",
        &["snapshot", "pool/backups/x@ari-backup-2026-01-01--0000"],
        1,
        "",
        "cannot create snapshot 'pool/backups/x@ari-backup-2026-01-01--0000': dataset already exists\n",
    );

    ok(&fakes, "zfs", &["destroy", "pool/backups/x@ari-backup-2025-12-31--0000"]);
    expect(
        &fakes,
        "zfs",
        &["destroy", "pool/backups/x@ari-backup-2025-12-31--0000"],
        1,
        "",
        "could not find any snapshots to destroy; check snapshot names.\n",
    );
    assert_eq!(
        fakes.zfs_snapshots(),
        [
            ("pool/backups/x@ari-backup-2026-01-01--0000".to_owned(), 1_767_225_600),
            ("pool/backups/x/child@ari-backup-2026-01-02--0000".to_owned(), 1_767_312_000),
            ("pool/backups/x@ari-backup-2026-01-02--0000".to_owned(), 1_767_312_000),
        ]
    );
    fakes.assert_no_unexpected_calls();
}

#[test]
fn zfs_snapshot_uses_the_real_clock_without_a_fake_one() {
    let fakes = Fakes::new();
    fakes.add_dataset("pool/x");
    let before = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    ok(&fakes, "zfs", &["snapshot", "pool/x@now"]);
    let after = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let creation = u64::try_from(fakes.zfs_snapshots()[0].1).expect("a positive time");
    assert!((before..=after).contains(&creation), "{before} <= {creation} <= {after}");
}

#[test]
fn unexpected_calls_exit_99_and_are_recorded() {
    let (fakes, _content, _mnt) = lvm_fixture();
    fakes.add_dataset("pool/x");
    let unexpected: &[(&str, &[&str], &str)] = &[
        ("lvcreate", &["-s", "-L", "1G", "vg0/root"], "-n is missing"),
        ("lvcreate", &["--snapshot", "-L", "1G", "vg0/root", "-n", "s"], "unknown option --snapshot"),
        (
            "lvremove",
            &["-f", "vg0/root"],
            "refusing to remove vg0/root, which is an origin volume, not a snapshot",
        ),
        (
            "lvs",
            &["--noheadings", "-o", "lv_name", "vg0/root"],
            "the fake lvs shows only -o vg_name,lv_name,origin",
        ),
        ("mount", &["/dev/vg0/root"], "expected 2 argument(s) besides the options, got 1"),
        ("umount", &["-l", "/mnt"], "unknown option -l"),
        (
            "findmnt",
            &["-n", "-o", "SOURCE", "--source", "/dev/vg0/x"],
            "the fake findmnt shows only -o TARGET, got \"SOURCE\"",
        ),
        ("mountpoint", &["/mnt"], "-q is missing"),
        ("zfs", &["destroy", "pool/x"], "refusing to destroy \"pool/x\", which is a dataset, not a snapshot"),
        ("zfs", &["list", "pool/x"], "-H is missing"),
        ("zfs", &["rollback", "pool/x@s"], "the fake zfs has no subcommand \"rollback\""),
    ];
    for (tool, args, reason) in unexpected {
        let stderr = format!("ari-fake: unexpected call: {tool} {}\nari-fake: {reason}\n", args.join(" "));
        expect(&fakes, tool, args, 99, "", &stderr);
    }
    assert_eq!(fakes.snapshots(), Vec::<String>::new());
    let calls = fakes.calls();
    assert_eq!(calls.len(), unexpected.len());
    assert!(calls.iter().all(|c| c.unexpected && c.exit == 99), "{}", fakes.report());

    let message = panic_message(|| fakes.assert_no_unexpected_calls());
    assert!(message.contains("lvremove -f vg0/root -> exit 99 UNEXPECTED"), "{message}");
    assert!(message.contains("--- fake state"), "the panic shows the state: {message}");
    let message = panic_message(|| fakes.assert_clean());
    assert!(message.contains("unexpected calls"), "{message}");
}

#[test]
fn an_unknown_tool_is_unexpected() {
    let fakes = Fakes::new();
    // Not one of the planted scripts: run the binary the way they do.
    let script = fs::read_to_string(fakes.bin_dir().join("lvs")).expect("read a wrapper script");
    let script = script.replace("--tool lvs", "--tool vgchange");
    let path = fakes.dir().join("vgchange");
    fs::write(&path, script).expect("write the script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod the script");
    let output = run(Command::new(&path).args(["-an", "vg0"]).stdin(Stdio::null()));
    assert_eq!(output.status.code(), Some(99));
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with("ari-fake: unexpected call: vgchange -an vg0\n")
    );
    assert_eq!(fakes.calls_of("vgchange").len(), 1);
    assert!(fakes.calls_of("vgchange")[0].unexpected);
}

#[test]
fn assert_clean_shows_what_is_left() {
    let (fakes, _content, mnt) = lvm_fixture();
    ok(&fakes, "lvcreate", &["-s", "-L", "1G", "vg0/root", "-n", "left"]);
    ok(&fakes, "mount", &["/dev/vg0/left", text(mnt.path())]);
    let message = panic_message(|| fakes.assert_clean());
    assert!(message.contains("snapshots left: [\"vg0/left\"]"), "{message}");
    assert!(message.contains(&format!("mounts left: [\"{}\"]", mnt.path().display())), "{message}");
    assert!(message.contains("lvcreate -s -L 1G vg0/root -n left -> exit 0"), "the call log: {message}");
    ok(&fakes, "umount", &[text(mnt.path())]);
}

#[test]
fn concurrent_calls_all_land() {
    let (fakes, _content, _mnt) = lvm_fixture();
    thread::scope(|scope| {
        for n in 0..8 {
            let fakes = &fakes;
            scope.spawn(move || {
                let name = format!("snap{n}");
                ok(fakes, "lvcreate", &["-s", "-L", "1G", "vg0/root", "-n", &name]);
            });
        }
    });
    let expected: Vec<String> = (0..8).map(|n| format!("vg0/snap{n}")).collect();
    assert_eq!(fakes.snapshots(), expected, "{}", fakes.report());
    assert_eq!(fakes.calls_of("lvcreate").len(), 8);
    fakes.assert_no_unexpected_calls();
}

#[test]
fn through_sshd_the_same_state_changes() {
    let (fakes, _content, _mnt) = lvm_fixture();
    let sshd = Sshd::builder().path_prefix(fakes.bin_dir()).start();
    let mut cmd = sshd.ssh_command();
    cmd.args(["lvcreate", "-s", "-L", "1G", "vg0/root", "-n", "root-snap"]);
    let output = run(&mut cmd);
    assert!(
        output.status.success(),
        "{}\n--- sshd log ---\n{}\n{}",
        describe_output(&cmd, &output),
        sshd.log_tail(),
        fakes.report()
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "  Logical volume \"root-snap\" created.\n");
    assert_eq!(fakes.snapshots(), ["vg0/root-snap"]);
    // And back locally: one state, whichever side calls.
    ok(&fakes, "lvremove", &["-f", "vg0/root-snap"]);
    fakes.assert_clean();
}

/// `zfs recv` as ari runs it, resumable; a script adds `-F` and the dataset.
const RECV: &str = "zfs recv -s -u -o readonly=on -o canmount=noauto -x mountpoint";

/// Runs `script` with `sh -c`, the fakes first on `PATH`: a real pipe between send and recv.
fn sh(fakes: &Fakes, script: &str) -> (Command, std::process::Output) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).env("PATH", fakes.path_env()).stdin(Stdio::null());
    let output = run(&mut cmd);
    (cmd, output)
}

/// Runs `script`, expecting it to succeed; its stdout.
fn sh_ok(fakes: &Fakes, script: &str) -> String {
    let (cmd, output) = sh(fakes, script);
    assert!(output.status.success(), "{}\n{}", describe_output(&cmd, &output), fakes.report());
    String::from_utf8(output.stdout).expect("the fakes print UTF-8")
}

/// Runs `script`, expecting it to exit with `exit` and print `stderr` exactly.
fn sh_fails(fakes: &Fakes, script: &str, exit: i32, stderr: &str) {
    let (cmd, output) = sh(fakes, script);
    assert!(
        output.status.code() == Some(exit) && String::from_utf8_lossy(&output.stderr) == stderr,
        "expected exit {exit}, stderr {stderr:?}\n{}\n{}",
        describe_output(&cmd, &output),
        fakes.report()
    );
}

/// The replication listing of `dataset`: name, GUID, createtxg, creation, userrefs.
fn zfs_list_replication(fakes: &Fakes, dataset: &str) -> Vec<(String, u64, u64, i64, u32)> {
    let args =
        ["list", "-H", "-p", "-t", "snapshot", "-o", "name,guid,createtxg,creation,userrefs", "-d", "1"];
    let mut args = args.to_vec();
    args.push(dataset);
    ok(fakes, "zfs", &args)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 5, "five columns: {line:?}");
            let number = |index: usize| fields[index].parse::<u64>().expect("a number");
            (
                fields[0].to_owned(),
                number(1),
                number(2),
                fields[3].parse().expect("a time"),
                u32::try_from(number(4)).expect("a count"),
            )
        })
        .collect()
}

/// Fakes with `pool/src` holding the snapshots `names`, made a day apart, and the pool
/// `backup` to receive into.
fn replication_fixture(names: &[&str]) -> Fakes {
    let fakes = Fakes::new();
    fakes.add_dataset("pool/src");
    fakes.add_dataset("backup");
    for (day, name) in (0..).zip(names) {
        fakes.set_now(1_767_225_600 + day * 86_400);
        ok(&fakes, "zfs", &["snapshot", &format!("pool/src@{name}")]);
    }
    fakes
}

/// The `name@snapshot -> (GUID, creation)` of `dataset`'s snapshots, by name after `@`.
fn guids(fakes: &Fakes, dataset: &str) -> Vec<(String, u64, i64)> {
    zfs_list_replication(fakes, dataset)
        .into_iter()
        .map(|(name, guid, _, creation, _)| {
            (name.split_once('@').expect("a snapshot").1.to_owned(), guid, creation)
        })
        .collect()
}

/// A full send then an incremental one, through a shell pipe: the receiver ends with the
/// sender's snapshots, GUIDs and creation times, and ari's receive properties.
#[test]
fn zfs_send_recv_full_then_incremental() {
    let fakes = replication_fixture(&["a", "b", "c"]);
    let listed = zfs_list_replication(&fakes, "pool/src");
    let names: Vec<&str> = listed.iter().map(|row| row.0.as_str()).collect();
    assert_eq!(names, ["pool/src@a", "pool/src@b", "pool/src@c"]);
    let txgs: Vec<u64> = listed.iter().map(|row| row.2).collect();
    assert!(txgs.windows(2).all(|pair| pair[0] < pair[1]), "createtxg grows: {txgs:?}");
    assert!(listed.iter().all(|row| row.1 != 0 && row.4 == 0), "GUIDs set, no holds: {listed:?}");
    let mut unique: Vec<u64> = listed.iter().map(|row| row.1).collect();
    unique.dedup();
    assert_eq!(unique.len(), 3, "GUIDs differ: {listed:?}");

    expect(
        &fakes,
        "zfs",
        &["list", "-H", "-o", "name", "backup/dst"],
        1,
        "",
        "cannot open 'backup/dst': dataset does not exist\n",
    );
    sh_ok(&fakes, &format!("zfs send pool/src@a | {RECV} backup/dst"));
    expect(&fakes, "zfs", &["list", "-H", "-o", "name", "backup/dst"], 0, "backup/dst\n", "");
    assert_eq!(guids(&fakes, "backup/dst"), guids(&fakes, "pool/src")[..1]);

    sh_ok(&fakes, &format!("zfs send -I @a pool/src@c | {RECV} backup/dst"));
    assert_eq!(guids(&fakes, "backup/dst"), guids(&fakes, "pool/src"), "the same snapshots, GUIDs and times");
    let received = zfs_list_replication(&fakes, "backup/dst");
    assert_eq!(
        received.iter().map(|row| row.2).collect::<Vec<_>>(),
        [1, 2, 3],
        "the receiving pool's own txgs"
    );
    let token = ["get", "-H", "-p", "-o", "value", "receive_resume_token", "backup/dst"];
    expect(&fakes, "zfs", &token, 0, "-\n", "");
    let state = fakes.state();
    let properties: Vec<(&str, &str)> =
        state.dataset_properties["backup/dst"].iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(properties, [("canmount", "noauto"), ("readonly", "on")]);

    // The long form of -I, raw, without -s, into a new dataset after a full raw send.
    sh_ok(
        &fakes,
        "zfs send -w pool/src@a | zfs recv -u -o readonly=on -o canmount=noauto -x mountpoint backup/raw",
    );
    sh_ok(
        &fakes,
        "zfs send -w -I pool/src@a pool/src@b | zfs recv -u -o readonly=on -o canmount=noauto -x mountpoint backup/raw",
    );
    assert_eq!(guids(&fakes, "backup/raw"), guids(&fakes, "pool/src")[..2]);
    assert_eq!(fakes.state().dataset_properties["backup/raw"]["received_raw"], "yes");

    let streaming: Vec<String> = fakes
        .calls_of("zfs")
        .iter()
        .filter(|call| call.args[0] == "send" || call.args[0] == "recv")
        .map(|call| call.describe())
        .collect();
    assert_eq!(streaming.len(), 8, "{streaming:?}");
    assert!(streaming.iter().all(|call| call.ends_with("-> exit 0")), "{streaming:?}");
    fakes.assert_no_unexpected_calls();
}

/// Holds as `zfs hold`, `holds -H` and `release` keep and show them, and a held snapshot
/// refuses to be destroyed.
#[test]
fn zfs_holds_and_the_busy_destroy() {
    let fakes = replication_fixture(&["a"]);
    let snap = "pool/src@a";
    fakes.set_now(1_796_724_000); // Tue Dec  8 10:00 2026 UTC
    expect(&fakes, "zfs", &["holds", "-H", snap], 0, "", "");
    ok(&fakes, "zfs", &["hold", "ari-send", snap]);
    ok(&fakes, "zfs", &["hold", "ari-keep", snap]);
    expect(
        &fakes,
        "zfs",
        &["hold", "ari-send", snap],
        1,
        "",
        "cannot hold snapshot 'pool/src@a': tag already exists on this dataset\n",
    );
    expect(
        &fakes,
        "zfs",
        &["holds", "-H", snap],
        0,
        "pool/src@a\tari-keep\tTue Dec  8 10:00 2026\npool/src@a\tari-send\tTue Dec  8 10:00 2026\n",
        "",
    );
    assert_eq!(zfs_list_replication(&fakes, "pool/src")[0].4, 2, "userrefs counts the holds");
    expect(&fakes, "zfs", &["destroy", snap], 1, "", "cannot destroy snapshot pool/src@a: dataset is busy\n");
    assert!(fakes.zfs_snapshot(snap).is_some(), "a busy destroy destroys nothing");

    ok(&fakes, "zfs", &["release", "ari-send", snap]);
    expect(
        &fakes,
        "zfs",
        &["release", "ari-send", snap],
        1,
        "",
        "cannot release hold from snapshot 'pool/src@a': no such tag on this dataset\n",
    );
    ok(&fakes, "zfs", &["release", "ari-keep", snap]);
    ok(&fakes, "zfs", &["destroy", snap]);

    expect(
        &fakes,
        "zfs",
        &["holds", "-H", snap],
        1,
        "",
        "cannot open 'pool/src@a': dataset does not exist\nno datasets available\n",
    );
    expect(
        &fakes,
        "zfs",
        &["hold", "t", snap],
        1,
        "",
        "cannot hold snapshot 'pool/src@a': dataset does not exist\n",
    );
    expect(
        &fakes,
        "zfs",
        &["hold", "t", "pool/gone@a"],
        1,
        "",
        "cannot open 'pool/gone': dataset does not exist\n",
    );
    fakes.assert_no_unexpected_calls();
}

/// The resume token of `dataset`, read as `zfs get` shows it.
fn token_of(fakes: &Fakes, dataset: &str) -> (String, ResumeToken) {
    let text = ok(fakes, "zfs", &["get", "-H", "-p", "-o", "value", "receive_resume_token", dataset]);
    let text = text.trim_end().to_owned();
    let token =
        ResumeToken::decode(&text).unwrap_or_else(|err| panic!("{text:?}: {err}\n{}", fakes.report()));
    (text, token)
}

/// A stream cut on the way leaves a resume token with `-s`; `send -nvt` shows what it
/// names, other streams are refused while it is there, and `send -t` completes it. A cut
/// inside a `-I` stream keeps the snapshots that were all in.
#[test]
fn a_cut_stream_leaves_a_token_that_send_t_completes() {
    let fakes = replication_fixture(&["a", "b", "c"]);
    let payload = 1 << 20;
    fakes.set_send_payload_bytes(payload);
    let a = fakes.zfs_snapshot("pool/src@a").expect("a");

    // The send's own complaint (a broken pipe) goes elsewhere: the log shows it.
    let (cmd, output) =
        sh(&fakes, &format!("zfs send pool/src@a 2>/dev/null | head -c 300000 | {RECV} backup/dst"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe_output(&cmd, &output));
    let (text, token) = token_of(&fakes, "backup/dst");
    assert_eq!(
        stderr,
        format!(
            "cannot receive new filesystem stream: checksum mismatch or incomplete stream.\n\
             Partially received snapshot is saved.\n\
             A resuming stream can be generated on the sending system by running:\n    zfs send -t {text}\n"
        )
    );
    assert!(text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase() || b == b'-'), "{text}");
    assert_eq!((token.toname.as_str(), token.toguid, token.fromguid), ("pool/src@a", a.guid, None));
    assert!(token.bytes > 0 && token.bytes < payload, "part of the payload is in: {token:?}");
    expect(&fakes, "zfs", &["list", "-H", "-o", "name", "backup/dst"], 0, "backup/dst\n", "");
    assert!(guids(&fakes, "backup/dst").is_empty(), "no snapshot yet");
    let send = fakes.calls().into_iter().find(|call| call.args[0] == "send").expect("the send is logged");
    assert_eq!(send.exit, 1, "the send saw its pipe break: {}", send.describe());

    let dry = ok(&fakes, "zfs", &["send", "-nvt", &text]);
    let contents = format!(
        "resume token contents:\nnvlist version: 0\n\tobject = 0x1\n\toffset = {:#x}\n\tbytes = {:#x}\n\
         \ttoguid = {:#x}\n\ttoname = pool/src@a\nfull send of pool/src@a estimated size is ",
        token.bytes, token.bytes, a.guid
    );
    assert!(dry.starts_with(&contents) && dry.ends_with("K\n"), "{dry:?}\nexpected {contents:?}...");

    // Other streams cannot land on the partial state.
    sh_fails(
        &fakes,
        &format!("zfs send pool/src@b 2>/dev/null | {RECV} -F backup/dst"),
        1,
        "cannot receive new filesystem stream: destination backup/dst contains partially-complete state from \
         \"zfs receive -s\".\n",
    );
    sh_fails(
        &fakes,
        &format!("zfs send pool/src@b 2>/dev/null | {RECV} backup/dst"),
        1,
        "cannot receive new filesystem stream: destination 'backup/dst' exists\nmust specify -F to overwrite it\n",
    );
    assert_eq!(token_of(&fakes, "backup/dst").0, text, "refused streams leave the token");

    sh_ok(&fakes, &format!("zfs send -t {text} | {RECV} backup/dst"));
    assert_eq!(guids(&fakes, "backup/dst"), guids(&fakes, "pool/src")[..1]);
    expect(
        &fakes,
        "zfs",
        &["get", "-H", "-p", "-o", "value", "receive_resume_token", "backup/dst"],
        0,
        "-\n",
        "",
    );

    // Cut inside c: b is in, c is partial, and the token names c from b.
    let b = fakes.zfs_snapshot("pool/src@b").expect("b");
    let c = fakes.zfs_snapshot("pool/src@c").expect("c");
    sh(&fakes, &format!("zfs send -I @a pool/src@c | head -c {} | {RECV} backup/dst", payload + 200_000));
    assert_eq!(guids(&fakes, "backup/dst"), guids(&fakes, "pool/src")[..2]);
    let (text, token) = token_of(&fakes, "backup/dst");
    assert_eq!((token.toname.as_str(), token.toguid, token.fromguid), ("pool/src@c", c.guid, Some(b.guid)));
    let dry = ok(&fakes, "zfs", &["send", "-nvt", &text]);
    assert!(
        dry.starts_with(&format!("resume token contents:\nnvlist version: 0\n\tfromguid = {:#x}\n", b.guid)),
        "{dry}"
    );
    assert!(
        dry.contains("\ttoname = pool/src@c\nsend from pool/src@b to pool/src@c estimated size is "),
        "{dry}"
    );
    sh_fails(
        &fakes,
        &format!("zfs send -I @b pool/src@c 2>/dev/null | {RECV} backup/dst"),
        1,
        "cannot receive incremental stream: destination backup/dst contains partially-complete state from \
         \"zfs receive -s\".\n",
    );
    sh_ok(&fakes, &format!("zfs send -t {text} | {RECV} backup/dst"));
    assert_eq!(guids(&fakes, "backup/dst"), guids(&fakes, "pool/src"));
    assert_eq!(fakes.resume_token("backup/dst"), None);

    // Without -s a cut stream keeps nothing.
    let (_, output) = sh(
        &fakes,
        "zfs send pool/src@a 2>/dev/null | head -c 1000 | zfs recv -u -o readonly=on -o canmount=noauto -x mountpoint backup/plain",
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "cannot receive new filesystem stream: incomplete stream\n"
    );
    expect(
        &fakes,
        "zfs",
        &["list", "-H", "-o", "name", "backup/plain"],
        1,
        "",
        "cannot open 'backup/plain': dataset does not exist\n",
    );
    fakes.assert_no_unexpected_calls();
}

/// A receive killed after the stream's header leaves its token (set before any payload),
/// shows in the call log as killed, and `recv -A` removes the dataset it had created.
#[test]
fn a_killed_receive_leaves_its_token_and_recv_a_aborts_it() {
    let fakes = replication_fixture(&["a"]);
    fakes.set_send_payload_bytes(1 << 20);
    let mut send = command(&fakes, "zfs", &["send", "pool/src@a"]);
    let stream = run(send.stdin(Stdio::null())).stdout;
    let recv_args: Vec<&str> = RECV.split(' ').skip(1).chain(["backup/dst"]).collect();
    let mut recv = command(&fakes, "zfs", &recv_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zfs recv");
    let mut input = recv.stdin.take().expect("recv's stdin");
    std::io::Write::write_all(&mut input, &stream[..1000]).expect("write part of the stream");
    assert!(
        eventually(|| fakes.resume_token("backup/dst").is_some()),
        "the receive set no token\n{}",
        fakes.report()
    );
    recv.kill().expect("kill zfs recv");
    assert_eq!(recv.wait().expect("reap zfs recv").signal(), Some(libc::SIGKILL));
    drop(input);

    let (text, token) = token_of(&fakes, "backup/dst");
    assert_eq!((token.toname.as_str(), token.bytes), ("pool/src@a", 0), "the token as the header set it");
    let recvs = fakes.calls().into_iter().filter(|call| call.args[0] == "recv").collect::<Vec<_>>();
    assert_eq!(recvs.len(), 1);
    assert!(recvs[0].describe().ends_with("-> running or killed"), "{}", recvs[0].describe());

    expect(&fakes, "zfs", &["recv", "-A", "backup/dst"], 0, "", "");
    expect(
        &fakes,
        "zfs",
        &["list", "-H", "-o", "name", "backup/dst"],
        1,
        "",
        "cannot open 'backup/dst': dataset does not exist\n",
    );
    expect(
        &fakes,
        "zfs",
        &["recv", "-A", "backup/dst"],
        2,
        "",
        "cannot open 'backup/dst': dataset does not exist\n",
    );
    expect(
        &fakes,
        "zfs",
        &["recv", "-A", "pool/src"],
        1,
        "",
        "'pool/src' does not have any resumable receive state to abort\n",
    );
    // The token outlived the partial state: the sender still knows what it names.
    ok(&fakes, "zfs", &["send", "-nvt", &text]);
    fakes.assert_no_unexpected_calls();
}

/// A receiver that changed since the last replication is refused, and `-F` rolls it back;
/// sends and receives that cannot be are refused with OpenZFS's words, and write nothing.
#[test]
fn zfs_send_recv_refusals() {
    let fakes = replication_fixture(&["a", "b"]);
    sh_ok(&fakes, &format!("zfs send pool/src@a | {RECV} backup/dst"));
    ok(&fakes, "zfs", &["snapshot", "backup/dst@local"]);
    sh_fails(
        &fakes,
        &format!("zfs send -I @a pool/src@b | {RECV} backup/dst"),
        1,
        "cannot receive incremental stream: destination backup/dst has been modified\nsince most recent snapshot\n",
    );
    sh_ok(&fakes, &format!("zfs send -I @a pool/src@b | {RECV} -F backup/dst"));
    assert_eq!(guids(&fakes, "backup/dst"), guids(&fakes, "pool/src"), "-F destroyed @local");

    // Same names, other GUIDs: another history.
    fakes.add_dataset("backup/other");
    fakes.add_zfs_snapshot_with_guid("backup/other@a", 1_767_225_600, 12345);
    sh_fails(
        &fakes,
        &format!("zfs send -I @a pool/src@b | {RECV} -F backup/other"),
        1,
        "cannot receive incremental stream: most recent snapshot of backup/other does not\nmatch incremental source\n",
    );
    sh_fails(
        &fakes,
        &format!("zfs send -I @a pool/src@b | {RECV} backup/none"),
        1,
        "cannot receive incremental stream: destination 'backup/none' does not exist\n",
    );
    sh_fails(
        &fakes,
        &format!("zfs send pool/src@a | {RECV} nopool/x"),
        1,
        "cannot open 'nopool': dataset does not exist\ncannot receive new filesystem stream: unable to restore to destination\n",
    );
    sh_fails(
        &fakes,
        &format!("zfs send pool/src@a | {RECV} -F backup/dst"),
        1,
        "cannot receive new filesystem stream: destination has snapshots (eg. backup/dst@a)\n\
         must destroy them to overwrite it\n",
    );
    expect(
        &fakes,
        "zfs",
        &RECV.split(' ').skip(1).chain(["backup/x"]).collect::<Vec<_>>(),
        1,
        "",
        "cannot receive: failed to read from stream\n",
    );

    let send_fails = |args: &[&str], exit: i32, stderr: &str| expect(&fakes, "zfs", args, exit, "", stderr);
    send_fails(&["send", "pool/src@nope"], 1, "cannot open 'pool/src@nope': dataset does not exist\n");
    send_fails(&["send", "-I", "@a", "pool/gone@b"], 1, "cannot open 'pool/gone': dataset does not exist\n");
    send_fails(
        &["send", "-I", "@b", "pool/src@a"],
        1,
        "WARNING: could not send pool/src@a:\nincremental source (pool/src@b) is not earlier than it\n",
    );
    send_fails(
        &["send", "-I", "@nope", "pool/src@b"],
        1,
        "WARNING: could not send pool/src@b:\nincremental source (pool/src@nope) does not exist\n",
    );
    send_fails(
        &["send", "-t", "garbage"],
        255,
        "cannot resume send: resume token is corrupt (invalid format)\n",
    );
    send_fails(
        &["send", "-nvt", "1-0-0-"],
        255,
        "cannot resume send: resume token is corrupt (incorrect checksum)\n",
    );

    // A token whose snapshot is gone.
    fakes.set_send_payload_bytes(100_000);
    sh(&fakes, &format!("zfs send pool/src@b | head -c 5000 | {RECV} backup/cut"));
    let (text, _) = token_of(&fakes, "backup/cut");
    ok(&fakes, "zfs", &["destroy", "pool/src@b"]);
    send_fails(
        &["send", "-t", &text],
        255,
        "cannot resume send: 'pool/src@b' used in the initial send no longer exists\n",
    );

    let unexpected: &[&[&str]] = &[
        &["send", "-R", "pool/src@a"],
        &["send", "-i", "@a", "pool/src@b"],
        &["send", "-I", "other/ds@a", "pool/src@b"],
        &["recv", "backup/dst"],
        &["recv", "-s", "-u", "backup/dst"],
        &["list", "-H", "-o", "name,used", "pool/src"],
    ];
    for args in unexpected {
        let output = run(command(&fakes, "zfs", args).stdin(Stdio::null()));
        assert_eq!(
            output.status.code(),
            Some(99),
            "zfs {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The arguments of the one `zfs list` that the fake knows.
fn zfs_list(dataset: &str) -> [&str; 10] {
    ["list", "-H", "-p", "-t", "snapshot", "-o", "name,creation", "-d", "1", dataset]
}

/// Runs `f`, which must panic, and returns its panic message.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = panic::catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}
