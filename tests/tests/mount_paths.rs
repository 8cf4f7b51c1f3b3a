//! Mount paths that cannot be planted (docs/failures.md, "Mount directories"): another local
//! user (uid 65534, through `setpriv`) prepares the LVM job's mount directory, or a directory
//! on the way to it, in a world-writable sticky root like `/tmp`; ari must refuse before anything
//! is mounted, write nothing through a symlink, leave nothing of its own behind, and say why.
//! The same after a crash: recovery removes no directory through a path planted since.
//!
//! `mkdir`, `find` and `rmdir` run for real, locally and through the harness's sshd; `lvcreate`,
//! `mount`, `umount`, `findmnt` and friends are the stateful fakes. Planting needs another user,
//! so these tests need root (as CI runs them) and fail saying so without it.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, fingerprint, require_tool, run, stderr, Sshd, World};

/// The other user.
const NOBODY: u32 = 65534;

/// Where the job's snapshots go: a sticky, world-writable directory of root's, as `/tmp` is.
const SHARED: &str = "shared";

/// Fails unless the tests run as root, which planting as another user needs.
fn require_root() {
    let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "this test needs root: it plants files as uid {NOBODY} with setpriv; run the tests as root \
         (as CI does), e.g. `sudo -E cargo nextest run -p tests --test mount_paths`"
    );
}

/// The LVM world with `shared/` (1777, root's) that uid 65534 can reach, and `victim/`, a tree
/// of root's that a redirected mkdir, mount or rmdir would change: an empty `srv/data`, and a
/// file.
struct Rig {
    world: World,
    /// Where an ssh job reaches the same fakes; `None` for a local job.
    sshd: Option<Sshd>,
}

impl Rig {
    fn new(remote: bool) -> Rig {
        require_root();
        require_tool("setpriv", "util-linux");
        rdiff_backup();
        let world = World::lvm();
        // The fixture is private (0700); the other user must reach `shared/`, as anyone reaches
        // /tmp.
        fs::set_permissions(world.fx.root(), fs::Permissions::from_mode(0o755)).unwrap();
        let shared = world.fx.path(SHARED);
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let victim = world.fx.path("victim");
        fs::create_dir_all(victim.join("srv/data")).unwrap();
        fs::write(victim.join("keep.txt"), "root's\n").unwrap();
        let sshd = remote.then(|| Sshd::builder().path_prefix(world.fakes.bin_dir()).start());
        let rig = Rig { world, sshd };
        rig.world.write_config(&format!(
            "max_retries: 1\n{}",
            rig.sshd.as_ref().map(|s| s.config_yaml()).unwrap_or_default()
        ));
        rig
    }

    fn host(&self) -> &str {
        self.sshd.as_ref().map_or("localhost", |s| s.host_alias())
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.world.fx.path(relative)
    }

    fn p(&self, relative: &str) -> String {
        self.world.fx.p(relative)
    }

    /// A job `db` over `vg1/data` at `/srv/data` (so ari makes `db`, `db/srv`, `db/srv/data`),
    /// or with `root_volume` over `vg0/root` at `/` too, mounted under `root`.
    fn job(&self, root: &str, root_volume: bool) -> PathBuf {
        let volumes = if root_volume {
            "  - {name: vg0/root, mount_point: /}\n  - {name: vg1/data, mount_point: /srv/data}\n"
        } else {
            "  - {name: vg1/data, mount_point: /srv/data}\n"
        };
        self.world.fx.write_job(
            "db.yaml",
            &format!(
                "label: db\nsource_hostname: {}\nsnapshot: lvm\nsnapshot_mount_root: {root}\nvolumes:\n{volumes}include: [/srv/data]\n",
                self.host()
            ),
        )
    }

    /// Runs `program args...` as uid 65534, which must succeed.
    fn as_nobody(&self, program: &str, args: &[&str]) {
        let out = run(Command::new("setpriv")
            .args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into()])
            .arg(program)
            .args(args)
            .stdin(Stdio::null()));
        assert_exit(&out, 0);
    }

    fn run(&self, job: &Path) -> Output {
        self.world.run(job)
    }

    /// Nothing mounted, no snapshot, no ledger, nothing written in `victim/`.
    #[track_caller]
    fn assert_nothing_made(
        &self,
        victim_before: &std::collections::BTreeMap<String, (bool, u64, std::time::SystemTime)>,
    ) {
        self.world.fakes.assert_clean();
        assert!(
            self.world.fakes.calls_of("mount").is_empty(),
            "ari mounted: {:?}",
            self.world.tools_called()
        );
        assert!(!self.path("state/ledger/db.json").exists(), "a ledger was left");
        assert_eq!(&fingerprint(&self.path("victim")), victim_before, "something was written in victim/");
    }
}

fn owner(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).uid()
}

/// The job's own directory, planted in the root as a symlink or as another user's directory,
/// blocks the job: `mkdir` without `-p` makes nothing through it, and ari mounts nothing.
#[test]
fn a_planted_job_directory_blocks_the_job_and_redirects_nothing() {
    for remote in [false, true] {
        for planted in ["symlink", "directory"] {
            let rig = Rig::new(remote);
            let base = rig.p(&format!("{SHARED}/db"));
            match planted {
                "symlink" => rig.as_nobody("ln", &["-s", &rig.p("victim"), &base]),
                _ => rig.as_nobody("mkdir", &[&base]),
            }
            let victim = fingerprint(&rig.path("victim"));
            let out = rig.run(&rig.job(&rig.p(SHARED), true));
            assert_exit(&out, 1);
            let err = stderr(&out);
            assert!(
                // The quotes around the path are the locale's.
                err.contains(&format!("snapshot step mkdir {base} failed"))
                    && err.contains("mkdir: cannot create directory")
                    && err.contains(": File exists"),
                "{planted}, remote {remote}: {err}"
            );
            rig.assert_nothing_made(&victim);
            assert_eq!(owner(Path::new(&base)), NOBODY, "ari left the other user's {planted} alone");
        }
    }
}

/// A symlink, or another user's directory, at a directory on the way (the root, which ari makes
/// when it is missing) is refused by the proof of the path, before ari makes its directory.
#[test]
fn a_planted_component_of_the_root_is_refused_before_anything_is_made() {
    for remote in [false, true] {
        for planted in ["symlink", "directory"] {
            let rig = Rig::new(remote);
            let root = rig.p(&format!("{SHARED}/ari"));
            match planted {
                "symlink" => rig.as_nobody("ln", &["-s", &rig.p("victim"), &root]),
                _ => rig.as_nobody("mkdir", &["-m", "0777", &root]),
            }
            let victim = fingerprint(&rig.path("victim"));
            let out = rig.run(&rig.job(&root, false));
            assert_exit(&out, 1);
            let err = stderr(&out);
            // find shows the planted one as an `ls -dils` line, not as its path.
            let shown =
                if planted == "symlink" { format!("{root} -> {}", rig.p("victim")) } else { root.clone() };
            assert!(
                err.contains(&format!("snapshot step mkdir {root}/db failed: refused: `find -P / "))
                    && err.contains(&shown)
                    && err.contains(&format!("not `/ {} {} {root}`", parent(&rig.p(SHARED)), rig.p(SHARED))),
                "{planted}, remote {remote}: {err}"
            );
            assert!(err.contains(if planted == "symlink" { "lrwxrwxrwx" } else { "drwxrwxrwx" }), "{err}");
            rig.assert_nothing_made(&victim);
            assert!(!rig.path("victim/db").exists(), "ari made its directory through the symlink");
        }
    }
}

/// The directories above `path`, space-separated, as a proof lists them.
fn parent(path: &str) -> String {
    let mut dirs = Vec::new();
    let mut dir = Path::new(path).parent();
    while let Some(d) = dir {
        dirs.push(d.display().to_string());
        dir = d.parent();
    }
    dirs.reverse();
    // `/` comes first in the proof, on its own.
    dirs.into_iter().skip(1).collect::<Vec<_>>().join(" ")
}

/// A directory on the way that its group may write to lets that group replace what follows:
/// refused, whoever owns it.
#[test]
fn a_group_writable_directory_on_the_way_is_refused() {
    let rig = Rig::new(false);
    let root = rig.path("group-writable");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o775)).unwrap();
    let victim = fingerprint(&rig.path("victim"));
    let out = rig.run(&rig.job(&root.display().to_string(), true));
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("snapshot step mkdir {}/db failed: refused: `find -P / ", root.display()))
            && err.contains("drwxrwxr-x"),
        "{err}"
    );
    rig.assert_nothing_made(&victim);
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "ari made its directory in it");
}

/// A mount point inside another volume's snapshot is that snapshot's: when it is a symlink there
/// (`/srv/data -> /victim`, as an admin may have linked a data directory), a mount through it
/// would cover the host's own directory. Refused by the proof before the mount.
#[test]
fn a_mount_point_that_is_a_symlink_inside_the_snapshot_is_refused() {
    for remote in [false, true] {
        let rig = Rig::new(remote);
        let origin = rig.path("origin-root/srv/data");
        fs::remove_dir(&origin).unwrap();
        std::os::unix::fs::symlink(rig.path("victim"), &origin).unwrap();
        let victim = fingerprint(&rig.path("victim"));
        let root = rig.p(SHARED);
        let out = rig.run(&rig.job(&root, true));
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("snapshot step mount {root}/db/srv/data failed: refused: `find -P / "))
                && err.contains(&format!("{root}/db/srv/data -> {}", rig.p("victim"))),
            "remote {remote}: {err}"
        );
        assert_eq!(rig.world.fakes.calls_of("mount").len(), 1, "only the root volume was mounted");
        assert_eq!(fingerprint(&rig.path("victim")), victim, "the snapshot was mounted over victim/");
        rig.world.fakes.assert_clean();
        assert_eq!(fs::read_dir(rig.path(SHARED)).unwrap().count(), 0, "the job's directory is gone");
    }
}

/// A root that is missing is made 0700, kept for the next job, and the job's directory in it
/// goes again; the default root, /run/ari-backup, is made the same way.
#[test]
fn a_missing_root_is_made_private_and_kept() {
    for remote in [false, true] {
        let rig = Rig::new(remote);
        let root = rig.path("private/ari-backup");
        fs::create_dir(rig.path("private")).unwrap();
        let out = rig.run(&rig.job(&root.display().to_string(), true));
        assert_exit(&out, 0);
        let meta = fs::symlink_metadata(&root).unwrap();
        assert!(meta.is_dir() && meta.mode() & 0o7777 == 0o700 && meta.uid() == 0, "{:o}", meta.mode());
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "the job's directory is gone");
        rig.world.fakes.assert_clean();
        // A second run finds it there.
        assert_exit(&rig.run(&rig.job(&root.display().to_string(), true)), 0);
    }
}

/// After a crash the mount directories stay; when they are gone (a reboot empties /tmp) and the
/// other user plants the job's directory as a symlink to a tree of root's with the same
/// directories, recovery removes none of them through it, and says so; once the symlink is
/// gone, recovery finds nothing left to do.
#[test]
fn recovery_removes_no_directory_through_a_path_planted_since() {
    let rig = Rig::new(false);
    let job = rig.job(&rig.p(SHARED), false);
    let base = rig.p(&format!("{SHARED}/db"));
    // umount keeps failing: the mount and the directories under it stay, with their ledger.
    rig.world.fakes.fail("umount", &[1, 2], 32, "umount: target is busy.");
    assert_exit(&rig.run(&job), 3);
    assert!(rig.path("state/ledger/db.json").exists());
    // The "reboot": nothing mounted any more, and the directories gone.
    run(Command::new(rig.world.fakes.bin_dir().join("umount")).arg("/dev/vg1/data-ari_backup"));
    fs::remove_dir_all(&base).unwrap();
    rig.as_nobody("ln", &["-s", &rig.p("victim"), &base]);
    let victim = fingerprint(&rig.path("victim"));

    let out = run(rig.world.ari().args(["recover", "db"]));
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("refused: `find -P / ") && err.contains(&format!("{base} -> {}", rig.p("victim"))),
        "{err}"
    );
    assert_eq!(fingerprint(&rig.path("victim")), victim, "recovery removed a directory through the symlink");
    assert!(rig.path("victim/srv/data").is_dir());
    assert!(rig.world.fakes.snapshots().is_empty(), "the snapshot, proven by lvs, went: {err}");

    // The admin removes the symlink: the directories are gone, and so is the ledger.
    fs::remove_file(&base).unwrap();
    let out = run(rig.world.ari().args(["recover", "db"]));
    assert_exit(&out, 0);
    assert!(!rig.path("state/ledger/db.json").exists(), "{}", stderr(&out));
    rig.world.fakes.assert_clean();
}
