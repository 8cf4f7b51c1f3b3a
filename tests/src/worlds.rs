//! The world an LVM or ZFS scenario runs in: a [`Fixture`] and the stateful [`Fakes`] first on
//! `PATH`, a mount root for snapshots, and a config that mounts them there and does not pause
//! between retries (the retry policy is what the tests check, not the clock). [`World::lvm`]
//! adds the two origin volumes every LVM scenario backs up.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::fakes::Fakes;
use crate::Fixture;

/// A fixture and the fakes its `ari` runs with.
pub struct World {
    /// The ari installation: config, jobs, state, store, and the `mnt/` mount root.
    pub fx: Fixture,
    /// The fake LVM, mount and ZFS tools, first on the `PATH` of [`World::ari`].
    pub fakes: Fakes,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// A fixture with an empty `mnt/`, its config as [`World::write_config`] writes it, and
    /// fakes without volumes or datasets.
    pub fn new() -> World {
        let world = World { fx: Fixture::new(), fakes: Fakes::new() };
        fs::create_dir_all(world.fx.path("mnt")).expect("create the mount root");
        world.write_config("");
        world
    }

    /// [`World::new`] with two origin volumes: `vg0/root` (`origin-root`: `/etc/hosts`,
    /// `/etc/app.conf`, and an empty `/srv/data`, the mount point of the other) and `vg1/data`
    /// (`origin-data`: `db/table.ibd`, `db/log`, what `/srv/data` holds).
    pub fn lvm() -> World {
        let world = World::new();
        let root = world
            .fx
            .make_tree("origin-root", &[("etc/hosts", "127.0.0.1 localhost\n"), ("etc/app.conf", "x=1\n")]);
        fs::create_dir_all(root.join("srv/data")).expect("create the data volume's mount point");
        let data = world.fx.make_tree("origin-data", &[("db/table.ibd", "rows\n"), ("db/log", "log\n")]);
        world.fakes.add_volume("vg0/root", &root);
        world.fakes.add_volume("vg1/data", &data);
        world
    }

    /// Writes the config: the fixture's directories, `snapshot_mount_root` in `mnt/`,
    /// `retry_interval: 0`, then `extra` YAML lines.
    pub fn write_config(&self, extra: &str) {
        self.fx
            .write_config(&format!("snapshot_mount_root: {}\nretry_interval: 0\n{extra}", self.fx.p("mnt")));
    }

    /// `ari --config CONFIG` with the fakes first on `PATH`.
    pub fn ari(&self) -> Command {
        let mut command = self.fx.ari();
        command.env("PATH", self.fakes.path_env());
        command
    }

    /// `ari run JOB` to its end.
    pub fn run(&self, job: &Path) -> Output {
        crate::run(self.ari().arg("run").arg(job))
    }

    /// Every call of a fake so far, as `tool args...`.
    pub fn tools_called(&self) -> Vec<String> {
        self.fakes.calls().iter().map(|c| format!("{} {}", c.tool, c.args.join(" "))).collect()
    }

    /// What is left in the mount root (on the real disk).
    pub fn mount_dirs(&self) -> Vec<PathBuf> {
        fs::read_dir(self.fx.path("mnt")).expect("read the mount root").flatten().map(|e| e.path()).collect()
    }

    /// A fake `logger` that appends each message to `logged` (a filter's refusals) and a fake
    /// `sudo` that takes only `-n --`, records the command in `sudo-log` and runs it, both in
    /// `logger-bin/`, for an sshd's PATH. The directory, and the path of `logged` (made empty).
    pub fn fake_logger_and_sudo(&self) -> (PathBuf, PathBuf) {
        let logged = self.fx.path("logged");
        self.fx.write_script(
            "logger-bin/logger",
            &format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\n", logged.display()),
        );
        fs::write(&logged, "").expect("make the logger's file");
        self.fx.write_script(
            "logger-bin/sudo",
            &format!(
                "#!/bin/sh\n[ \"$1\" = -n ] && [ \"$2\" = -- ] || {{ echo \"fake sudo: want -n --, got $*\" >&2; exit 99; }}\nshift 2\nprintf '%s\\n' \"$*\" >> {}\nexec \"$@\"\n",
                self.fx.p("sudo-log")
            ),
        );
        (self.fx.path("logger-bin"), logged)
    }

    /// Nothing left: no snapshot, no mount, no unexpected call (the fakes), no mount directory.
    #[track_caller]
    pub fn assert_clean(&self) {
        self.fakes.assert_clean();
        let left = self.mount_dirs();
        assert!(left.is_empty(), "mount directories left behind: {left:?}");
    }
}

/// The calls of the fakes in a run of a job over `vg0/root` alone, mounted at `base`: the
/// snapshot, the refusal of a mount point already in use, the mount, then the cleanup, each
/// step with its proof (`mkdir`, `find` and `rmdir` run for real, and are not in the log).
pub fn root_volume_calls(base: &str) -> Vec<String> {
    vec![
        "lvcreate -s -L 1G vg0/root -n root-ari_backup".to_string(),
        format!("mountpoint -q {base}"),
        format!("mount /dev/vg0/root-ari_backup {base}"),
        "findmnt -n -o TARGET --source /dev/vg0/root-ari_backup".to_string(),
        "umount /dev/vg0/root-ari_backup".to_string(),
        "lvs --noheadings -o vg_name,lv_name,origin vg0/root-ari_backup".to_string(),
        "lvremove -f vg0/root-ari_backup".to_string(),
    ]
}

/// A pre hook that leaves `marker` behind when it runs, as a job file's lines.
pub fn pre_hook(marker: &Path) -> String {
    format!("pre:\n  - command: [touch, {}]\n", marker.display())
}

/// The dataset of [`zfs_world`].
pub const ZFS_DATASET: &str = "pool/backups/web";

/// A zfs world for the capacity tests: the dataset [`ZFS_DATASET`], its directory, a metrics
/// file, and a job `web` with a pre hook that leaves a marker; `config` goes into the config,
/// `extra` into the job. The world, the job, and the marker's path.
pub fn zfs_world(config: &str, extra: &str) -> (World, PathBuf, PathBuf) {
    crate::require_tool("rsync", "rsync");
    let zfs = World::new();
    fs::create_dir_all(zfs.fx.path("metrics")).expect("create the metrics directory");
    zfs.write_config(&format!("metrics_file: {}\n{config}", zfs.fx.p("metrics/ari.prom")));
    zfs.fakes.add_dataset(ZFS_DATASET);
    fs::create_dir_all(zfs.fx.path("zfs/web")).expect("create the dataset's directory");
    let src = zfs.fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    let marker = zfs.fx.path("pre-ran");
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{}]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: {ZFS_DATASET}\nsnapshot_expiration_days: 60\n{}{extra}",
            src.display(),
            zfs.fx.p("zfs/web"),
            pre_hook(&marker)
        ),
    );
    (zfs, job, marker)
}

/// The job `web` of a retention world: the zfs backend on [`ZFS_DATASET`] at localhost, with the
/// retention lines `keep` and the job lines `extra`.
pub fn write_zfs_job(world: &World, keep: &str, extra: &str) -> PathBuf {
    let src = world.fx.path("src");
    if !src.exists() {
        world.fx.make_tree("src", &[("etc/hosts", "127.0.0.1 localhost\n")]);
    }
    fs::create_dir_all(world.fx.path("zfs/web")).expect("create the dataset's directory");
    world.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{src}/etc]\nrsync_dst: {dst}\nzfs_hostname: localhost\ndataset_name: {ZFS_DATASET}\n{keep}{extra}",
            src = src.display(),
            dst = world.fx.p("zfs/web"),
        ),
    )
}

/// A retention world: the dataset [`ZFS_DATASET`] with `snapshots` (full name, creation), the
/// fake ZFS host's clock at `zfs_now`, and the job of [`write_zfs_job`]. The world and the job.
pub fn snapshot_world<S: AsRef<str>>(
    snapshots: &[(S, i64)],
    zfs_now: i64,
    keep: &str,
    extra: &str,
) -> (World, String) {
    let world = World::new();
    world.fakes.add_dataset(ZFS_DATASET);
    for (name, creation) in snapshots {
        world.fakes.add_zfs_snapshot(name.as_ref(), *creation);
    }
    world.fakes.set_now(zfs_now);
    let job = write_zfs_job(&world, keep, extra).to_string_lossy().into_owned();
    (world, job)
}

/// The full names of the snapshots the fake ZFS holds.
pub fn snapshot_names(world: &World) -> std::collections::BTreeSet<String> {
    world.fakes.zfs_snapshots().into_iter().map(|(name, _)| name).collect()
}

/// The arguments of every `zfs SUBCOMMAND` the fakes saw (`destroy`, `snapshot`), in order.
pub fn zfs_calls(world: &World, subcommand: &str) -> Vec<Vec<String>> {
    world
        .fakes
        .calls_of("zfs")
        .into_iter()
        .filter(|c| c.args.first().map(String::as_str) == Some(subcommand))
        .map(|c| c.args)
        .collect()
}

/// The names after `@` of `dataset`'s snapshots in the fake ZFS, oldest first.
pub fn snapshots_of(world: &World, dataset: &str) -> Vec<String> {
    let prefix = format!("{dataset}@");
    world
        .fakes
        .zfs_snapshots()
        .into_iter()
        .filter_map(|(name, _)| name.strip_prefix(&prefix).map(String::from))
        .collect()
}

/// The names after `@` of `dataset`'s snapshots that `tag` holds, oldest first.
pub fn held_by(world: &World, dataset: &str, tag: &str) -> Vec<String> {
    snapshots_of(world, dataset)
        .into_iter()
        .filter(|name| {
            world.fakes.zfs_snapshot(&format!("{dataset}@{name}")).is_some_and(|s| s.holds.contains_key(tag))
        })
        .collect()
}

/// The GUID of the fake ZFS's snapshot `name` (`DATASET@NAME`); panics when there is none.
pub fn snapshot_guid(world: &World, name: &str) -> u64 {
    world.fakes.zfs_snapshot(name).unwrap_or_else(|| panic!("no snapshot {name}")).guid
}
