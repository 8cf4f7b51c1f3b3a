//! The `lvm` snapshot source: checks, and the steps that make and undo the snapshot view.
//!
//! For volumes `vg0/root` at `/` and `vg1/db` at `/var/lib/mysql`, a job labelled `db`, on
//! host `h`, with `snapshot_mount_root` `/run/ari-backup`, the steps are (each undo runs in the
//! cleanup phase, in reverse order; PROOF is the query that must print exactly the paths it
//! checks, see `mount_path`):
//!
//! ```text
//! lvcreate -s -L 1G vg0/root -n root-ari_backup      undo: lvremove -f vg0/root-ari_backup
//! lvcreate -s -L 1G vg1/db -n db-ari_backup          undo: lvremove -f vg1/db-ari_backup
//! mountpoint -q /run/ari-backup/db   (refuse if it is one, before making anything)
//! mkdir -p -m 0700 /run/ari-backup   after PROOF of / /run (kept: every job's root)
//! mkdir -m 0700 /run/ari-backup/db   after PROOF of / /run /run/ari-backup
//!                                    undo: rmdir /run/ari-backup/db after PROOF of it
//! mount /dev/vg0/root-ari_backup /run/ari-backup/db   after PROOF of its path
//!                                    undo: umount /dev/vg0/root-ari_backup after findmnt
//!                                          shows it mounted at /run/ari-backup/db only
//! mountpoint -q /run/ari-backup/db/var/lib/mysql
//! mount -o ro /dev/vg1/db-ari_backup /run/ari-backup/db/var/lib/mysql   after PROOF
//!                                    undo: umount /dev/vg1/db-ari_backup after findmnt
//! ```
//!
//! A mount point inside an earlier volume must exist in that volume's snapshot (it does when
//! the volume is mounted there on the host): ari makes nothing inside a snapshot. A mount point
//! outside every earlier volume is made by ari one directory at a time, each `mkdir -m 0700`
//! without `-p` after the proof of its parent's path, each with its own `rmdir` (which refuses a
//! non-empty directory, so nothing else goes). `mkdir` without `-p` never follows a symlink at
//! the name it makes, and fails when something is there already: another user who plants the
//! job's directory in a world-writable root blocks the job, and cannot redirect it.

use ari_core::kinds;
use ari_core::plugin::{join_path, JobContext, SnapshotSource, Tool};
use ari_core::step::{Command, Phase, Step};
use ari_core::ConfigError;

use crate::mount_path::{ancestors, chain, mounted_at, proof};
use crate::settings::{SNAPSHOT_MOUNT_ROOT, SNAPSHOT_SIZE, SNAPSHOT_SUFFIX};

/// The LVM snapshot source, registered as `lvm`.
pub struct LvmSource;

ari_core::register_source!(LvmSource);

/// A volume of the job, with the names derived from it.
struct Volume {
    /// `vg0/root`.
    name: String,
    /// `vg0/root-ari_backup`.
    snapshot: String,
    /// `/dev/vg0/root-ari_backup`.
    device: String,
    /// Where the volume is normally mounted (`/var/lib/mysql`).
    mount_point: String,
    /// Where the snapshot is mounted (`/run/ari-backup/label/var/lib/mysql`).
    target: String,
    /// `-o` options.
    options: Option<String>,
}

fn volumes(job: &JobContext) -> Vec<Volume> {
    let base = base(job);
    let suffix = job.get(&SNAPSHOT_SUFFIX);
    job.job()
        .volumes
        .iter()
        .map(|v| {
            let (vg, lv) = v.name.split_once('/').unwrap_or(("", &v.name));
            Volume {
                name: v.name.clone(),
                snapshot: format!("{vg}/{lv}{suffix}"),
                device: format!("/dev/{vg}/{lv}{suffix}"),
                mount_point: v.mount_point.clone(),
                target: join_path(&base, &v.mount_point),
                options: v.mount_options.clone(),
            }
        })
        .collect()
}

/// `snapshot_mount_root`, normalised: every job's mount directory is in it.
fn mount_root(job: &JobContext) -> String {
    join_path(&job.get(&SNAPSHOT_MOUNT_ROOT), "/")
}

/// The job's own mount directory, `snapshot_mount_root/label`.
fn base(job: &JobContext) -> String {
    join_path(&mount_root(job), &job.job().label)
}

/// Whether `path` is `dir` or inside it (`/var/lib` is inside `/` and `/var`, not `/va`).
fn is_within(path: &str, dir: &str) -> bool {
    let path = join_path("/", path);
    let dir = join_path("/", dir);
    dir == "/" || path == dir || path.starts_with(&format!("{dir}/"))
}

impl SnapshotSource for LvmSource {
    fn name(&self) -> &'static str {
        "lvm"
    }

    fn summary(&self) -> &'static str {
        "LVM snapshots of the job's volumes, mounted under SNAPSHOT_MOUNT_ROOT/LABEL on the source host"
    }

    fn check(&self, job: &JobContext) -> Result<(), ConfigError> {
        // Each value was checked for what it is when it was read (kinds::VOLUME, kinds::PATH,
        // LV_SUFFIX, SIZE); what is left spans several values, or is this source's own rule for
        // a value the job model reads (a volume's mount options, by `MOUNT_OPTIONS`).
        if job.job().volumes.is_empty() {
            return Err(job.error_at("volumes", "a job with `snapshot: lvm` needs at least one volume"));
        }
        let suffix = job.get(&SNAPSHOT_SUFFIX);
        let names: Vec<&str> = job.job().volumes.iter().map(|v| v.name.as_str()).collect();
        for volume in &job.job().volumes {
            let (vg, lv) = volume.name.split_once('/').unwrap_or(("", &volume.name));
            let snapshot = format!("{lv}{suffix}");
            // The job model's rule for a volume (`kinds::VOLUME`) is LVM's for its names.
            kinds::VOLUME.check(&format!("{vg}/{snapshot}")).map_err(|why| {
                job.error_at(
                    "snapshot_suffix",
                    format!(
                        "`{suffix}` makes the snapshot of `{}` `{vg}/{snapshot}`, which {why}",
                        volume.name
                    ),
                )
            })?;
            // A snapshot named like another volume of the job would be that volume, to lvremove.
            if names.contains(&format!("{vg}/{snapshot}").as_str()) {
                return Err(job.error_at(
                    "snapshot_suffix",
                    format!(
                        "`{suffix}` makes the snapshot of `{}` `{vg}/{snapshot}`, which is also a volume of this job",
                        volume.name
                    ),
                ));
            }
        }
        // A mount path is proven by the words a host prints (mount_path): whitespace in it would
        // split one path into two words, and no proof of it could ever pass.
        let root = job.get(&SNAPSHOT_MOUNT_ROOT);
        if root.chars().any(char::is_whitespace) {
            return Err(job.error_at(
                "snapshot_mount_root",
                format!("`{root}` holds whitespace, which ari cannot prove a mount path with: choose a path without"),
            ));
        }
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (i, volume) in job.job().volumes.iter().enumerate() {
            let key = format!("volumes[{i}]");
            let point = &volume.mount_point;
            if point.chars().any(char::is_whitespace) {
                return Err(job.error_at(
                    &format!("{key}.mount_point"),
                    format!("`{point}` holds whitespace, which ari cannot prove a mount path with"),
                ));
            }
            if let Some(options) = &volume.mount_options {
                crate::options::check_mount_options(options).map_err(|why| {
                    job.error_at(
                        &format!("{key}.mount_options"),
                        format!("`{}` {why}", kinds::shown(options)),
                    )
                })?;
            }
            for (other_name, other_point) in &seen {
                if *other_name == volume.name {
                    return Err(job.error_at(
                        &format!("{key}.name"),
                        format!("volume `{}` is listed twice", volume.name),
                    ));
                }
                if join_path("/", other_point) == join_path("/", point) {
                    return Err(job.error_at(
                        &format!("{key}.mount_point"),
                        format!("`{point}` is also the mount point of `{other_name}`"),
                    ));
                }
                if is_within(other_point, point) {
                    return Err(job.error_at(
                        &format!("{key}.mount_point"),
                        format!("`{point}` contains the mount point `{other_point}` of `{other_name}`, listed before it: list the outer volume first"),
                    ));
                }
            }
            seen.push((&volume.name, point));
        }
        Ok(())
    }

    fn tools(&self, job: &JobContext) -> Vec<Tool> {
        // lvcreate, mount and friends run on the source host; when that is the backup server,
        // they must be here.
        if job.source_host().is_local() {
            [
                "lvcreate",
                "lvremove",
                "lvs",
                "mount",
                "umount",
                "mountpoint",
                "findmnt",
                "find",
                "mkdir",
                "rmdir",
            ]
            .into_iter()
            .map(|program| Tool::new("snapshot", program.to_string()))
            .collect()
        } else {
            Vec::new()
        }
    }

    fn root(&self, job: &JobContext) -> String {
        base(job)
    }

    fn steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        let host = job.source_host();
        let size = job.get(&SNAPSHOT_SIZE);
        let volumes = volumes(job);
        let base = base(job);
        let on = |argv: Vec<String>| Command::argv(host.clone(), argv);
        let at = |what: String| format!("{what} on {host}");
        let mut steps = Vec::new();

        for v in &volumes {
            let (vg, lv) = v.snapshot.split_once('/').unwrap_or(("", v.snapshot.as_str()));
            let origin = v.name.split_once('/').map_or(v.name.as_str(), |(_, lv)| lv);
            let create = on(words(&["lvcreate", "-s", "-L", &size, &v.name, "-n", lv]));
            // lvremove only a snapshot whose origin is the job's volume: `lvs` must show
            // `VG SNAPSHOT ORIGIN`, which an origin volume (no origin of its own) never does.
            let remove = Step::run(
                Phase::Cleanup,
                format!("lvremove {}", v.snapshot),
                on(words(&["lvremove", "-f", &v.snapshot])),
            )
            .removes(at(format!("snapshot {}", v.snapshot)))
            .proven_by(
                on(words(&["lvs", "--noheadings", "-o", "vg_name,lv_name,origin", &v.snapshot])),
                [vg, lv, origin],
            );
            steps.push(Step::run(Phase::Snapshot, format!("lvcreate {}", v.snapshot), create).undo(remove));
        }

        // A directory ari made goes with `rmdir` (never `rm -r`), once its path is proven.
        let rmdir = |dir: &str| {
            let (query, expect) = proof(&host, &chain(dir), None);
            Step::run(Phase::Cleanup, format!("rmdir {dir}"), on(words(&["rmdir", dir])))
                .removes(at(format!("directory {dir}")))
                .proven_by(query, expect)
        };
        // `mkdir` without `-p`: it makes `dir` or fails, and never follows a symlink planted at
        // that name; the proof of the parent's path comes first.
        let mkdir = |dir: &str| {
            let (query, expect) = proof(&host, &ancestors(dir), None);
            Step::run(Phase::Snapshot, format!("mkdir {dir}"), on(words(&["mkdir", "-m", "0700", dir])))
                .proven_by(query, expect)
                .undo(rmdir(dir))
        };
        let root = mount_root(job);
        let mut made: Vec<String> = vec![base.clone()];
        for (i, v) in volumes.iter().enumerate() {
            // Refuse before making anything, so that a refusal leaves nothing of ari's to undo.
            steps.push(Step::refuse_if(
                Phase::Snapshot,
                format!("check {}", v.target),
                on(words(&["mountpoint", "-q", &v.target])),
                format!("{} is already a mount point on {host}", v.target),
            ));
            if i == 0 {
                // The root is every job's, so ari keeps it; `-p` only spares the job a failure
                // when it exists (another job made it), since its parent's path is proven.
                let parents = ancestors(&root);
                if !parents.is_empty() {
                    let (query, expect) = proof(&host, &parents, None);
                    steps.push(
                        Step::run(
                            Phase::Snapshot,
                            format!("mkdir {root}"),
                            on(words(&["mkdir", "-p", "-m", "0700", &root])),
                        )
                        .proven_by(query, expect),
                    );
                }
                steps.push(mkdir(&base));
            }
            // A mount point inside an earlier volume lies in that snapshot's file system, where
            // ari makes nothing. Elsewhere ari makes each directory, and removes what it made.
            let enclosed = volumes[..i].iter().any(|earlier| is_within(&v.mount_point, &earlier.mount_point));
            if !enclosed {
                for dir in made_dirs(&base, &v.target).into_iter().rev() {
                    if !made.contains(&dir) {
                        steps.push(mkdir(&dir));
                        made.push(dir);
                    }
                }
            }
            let mut mount = vec!["mount".to_string()];
            if let Some(options) = &v.options {
                mount.extend(["-o".to_string(), options.clone()]);
            }
            mount.extend([v.device.clone(), v.target.clone()]);
            let (query, expect) = proof(&host, &chain(&v.target), Some(&v.target));
            // Unmounted by its device, which only ari mounts, once findmnt shows it mounted
            // there and nowhere else: no path planted since can turn it into another unmount.
            let (mounted, at_target) = mounted_at(&host, &v.device, &v.target);
            let umount =
                Step::run(Phase::Cleanup, format!("umount {}", v.target), on(words(&["umount", &v.device])))
                    .removes(at(format!("mount of {} at {}", v.device, v.target)))
                    .proven_by(mounted, at_target);
            steps.push(
                Step::run(Phase::Snapshot, format!("mount {}", v.target), on(mount))
                    .proven_by(query, expect)
                    .undo(umount),
            );
        }
        Ok(steps)
    }
}

/// The directories between `base` (excluded) and `target` (included), deepest first: what ari
/// makes for `target` once `base` exists.
fn made_dirs(base: &str, target: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut dir = target.to_string();
    while dir != base && dir.len() > base.len() {
        dirs.push(dir.clone());
        dir = match dir.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => parent.to_string(),
            _ => break,
        };
    }
    dirs
}

fn words(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within() {
        let check = |path: &str, dir: &str, expected: bool| {
            assert_eq!(is_within(path, dir), expected, "{path} in {dir}")
        };
        check("/var/lib", "/", true);
        check("/var/lib", "/var", true);
        check("/var", "/var", true);
        check("/var/lib", "/va", false);
        check("/", "/var", false);
        check("/var/lib/", "/var/lib", true);
    }

    #[test]
    fn made_dirs_stop_at_the_base() {
        assert_eq!(
            made_dirs("/tmp/db", "/tmp/db/var/lib/mysql"),
            ["/tmp/db/var/lib/mysql", "/tmp/db/var/lib", "/tmp/db/var"]
        );
        assert_eq!(made_dirs("/tmp/db", "/tmp/db/srv"), ["/tmp/db/srv"]);
        assert!(made_dirs("/tmp/db", "/tmp/db").is_empty());
    }
}

#[cfg(test)]
mod undo_tests {
    use super::*;
    use ari_core::step::Program;
    use ari_core::testkit::TestJob;

    fn argv(command: &Command) -> Vec<String> {
        match command.program() {
            Program::Argv(argv) => argv.clone(),
            Program::Shell(script) => panic!("a shell command: {script}"),
        }
    }

    /// Each step's command and, when it has one, the proof that runs before it, as text.
    fn shown(steps: &[Step]) -> Vec<String> {
        let mut lines = Vec::new();
        for step in steps {
            for step in std::iter::once(step).chain(step.undone_by()) {
                let mut line = argv(step.command()).join(" ");
                if let Some((_, Some(expect))) = step.presence() {
                    line.push_str(&format!("  [proof: {}]", expect.join(" ")));
                }
                lines.push(line);
            }
        }
        lines
    }

    /// Recovery after a crash, and the undo of a step stopped midway, run an undo only while its
    /// thing is there: every undo must say how to tell, and prove its target first.
    #[test]
    fn every_undo_knows_whether_its_thing_is_still_there() {
        let job = TestJob::parse(
            "snapshot: lvm\nsource_hostname: db\nvolumes:\n  - {name: vg0/root, mount_point: /}\n  - {name: vg1/data, mount_point: /srv/data}\n  - {name: vg2/web, mount_point: /var/www}\n  - {name: vg2/logs, mount_point: /var/log}\ninclude: [/etc]\n",
        );
        let ctx = job.context();
        LvmSource.check(&ctx).unwrap();
        let steps = LvmSource.steps(&ctx).unwrap();
        let undos: Vec<&Step> = steps.iter().filter_map(|s| s.undone_by()).collect();
        assert_eq!(undos.len(), 4 + 1 + 4, "4 lvremove, 1 rmdir of the base, 4 umount");
        for undo in undos {
            let (_, expect) =
                undo.presence().unwrap_or_else(|| panic!("{} has no presence query", undo.name()));
            assert!(expect.is_some(), "{} does not prove its target", undo.name());
            assert!(undo.removal().is_some(), "{} does not say what it removes", undo.name());
        }
    }

    /// Every step that makes a directory or mounts proves the path first, and no `mkdir` takes
    /// `-p` but the one of the root, whose parent's path it proves.
    #[test]
    fn directories_are_made_one_at_a_time_after_their_parents_are_proven() {
        let job = TestJob::parse(
            "snapshot: lvm\nvolumes:\n  - {name: vg1/data, mount_point: /srv/data}\n  - {name: vg1/www, mount_point: /srv/www, mount_options: 'ro,noatime'}\n  - {name: vg1/db, mount_point: /srv/www/db}\ninclude: [/srv]\n",
        )
        .with_config("snapshot_mount_root: /tmp/ari\n");
        let ctx = job.context();
        LvmSource.check(&ctx).unwrap();
        let steps = LvmSource.steps(&ctx).unwrap();
        let made: Vec<String> = shown(&steps).into_iter().filter(|l| !l.starts_with("lv")).collect();
        assert_eq!(
            made,
            [
                "mountpoint -q /tmp/ari/test/srv/data",
                "mkdir -p -m 0700 /tmp/ari  [proof: / /tmp]",
                "mkdir -m 0700 /tmp/ari/test  [proof: / /tmp /tmp/ari]",
                "rmdir /tmp/ari/test  [proof: / /tmp /tmp/ari /tmp/ari/test]",
                "mkdir -m 0700 /tmp/ari/test/srv  [proof: / /tmp /tmp/ari /tmp/ari/test]",
                "rmdir /tmp/ari/test/srv  [proof: / /tmp /tmp/ari /tmp/ari/test /tmp/ari/test/srv]",
                "mkdir -m 0700 /tmp/ari/test/srv/data  [proof: / /tmp /tmp/ari /tmp/ari/test /tmp/ari/test/srv]",
                "rmdir /tmp/ari/test/srv/data  [proof: / /tmp /tmp/ari /tmp/ari/test /tmp/ari/test/srv /tmp/ari/test/srv/data]",
                "mount /dev/vg1/data-ari_backup /tmp/ari/test/srv/data  [proof: / /tmp /tmp/ari /tmp/ari/test /tmp/ari/test/srv /tmp/ari/test/srv/data]",
                "umount /dev/vg1/data-ari_backup  [proof: /tmp/ari/test/srv/data]",
                "mountpoint -q /tmp/ari/test/srv/www",
                "mkdir -m 0700 /tmp/ari/test/srv/www  [proof: / /tmp /tmp/ari /tmp/ari/test /tmp/ari/test/srv]",
                "rmdir /tmp/ari/test/srv/www  [proof: / /tmp /tmp/ari /tmp/ari/test /tmp/ari/test/srv /tmp/ari/test/srv/www]",
                "mount -o ro,noatime /dev/vg1/www-ari_backup /tmp/ari/test/srv/www  [proof: / /tmp /tmp/ari /tmp/ari/test /tmp/ari/test/srv /tmp/ari/test/srv/www]",
                "umount /dev/vg1/www-ari_backup  [proof: /tmp/ari/test/srv/www]",
                // Inside the www volume's snapshot: ari makes nothing there.
                "mountpoint -q /tmp/ari/test/srv/www/db",
                "mount /dev/vg1/db-ari_backup /tmp/ari/test/srv/www/db  [proof: / /tmp /tmp/ari /tmp/ari/test /tmp/ari/test/srv /tmp/ari/test/srv/www /tmp/ari/test/srv/www/db]",
                "umount /dev/vg1/db-ari_backup  [proof: /tmp/ari/test/srv/www/db]",
            ]
        );
        for step in &steps {
            let argv = argv(step.command());
            if argv[0] == "mkdir" || argv[0] == "mount" {
                let proof = step.presence().and_then(|(_, expect)| expect);
                assert!(proof.is_some(), "{} runs without a proof of its path", step.name());
            }
        }
    }

    /// The root `/` has no parent to prove or make: the job's directory is made in it.
    #[test]
    fn a_root_of_slash_is_not_made() {
        let job =
            TestJob::parse("snapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\n")
                .with_config("snapshot_mount_root: /\n");
        let steps = LvmSource.steps(&job.context()).unwrap();
        let made: Vec<String> = shown(&steps).into_iter().filter(|l| l.starts_with("mkdir")).collect();
        assert_eq!(made, ["mkdir -m 0700 /test  [proof: /]"]);
    }

    /// The default root is the private `/run/ari-backup`, which ari makes when it is missing.
    #[test]
    fn the_default_root_is_private() {
        let job =
            TestJob::parse("snapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\n");
        let steps = LvmSource.steps(&job.context()).unwrap();
        let made: Vec<String> = shown(&steps).into_iter().filter(|l| l.starts_with("mkdir")).collect();
        assert_eq!(
            made,
            [
                "mkdir -p -m 0700 /run/ari-backup  [proof: / /run]",
                "mkdir -m 0700 /run/ari-backup/test  [proof: / /run /run/ari-backup]"
            ]
        );
    }

    #[test]
    fn mount_options_and_whitespace_are_refused_at_their_line() {
        let check = |yaml: &str, config: &str, expected: &str| {
            let job = TestJob::parse(yaml).with_config(config);
            let err = LvmSource.check(&job.context()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        };
        check(
            "snapshot: lvm\nvolumes:\n  - {name: vg0/root, mount_point: /}\n  - {name: vg1/d, mount_point: /srv, mount_options: 'ro,loop'}\ninclude: [/etc]\n",
            "",
            "test.yaml:4:53: volumes[1].mount_options: `ro,loop` holds `loop`, which makes mount read a file or another place than the snapshot",
        );
        check(
            "snapshot: lvm\nvolumes:\n  - {name: vg0/root, mount_point: /}\n  - {name: vg1/d, mount_point: /srv/my data}\ninclude: [/etc]\n",
            "",
            "test.yaml:4:32: volumes[1].mount_point: `/srv/my data` holds whitespace",
        );
        check(
            "snapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\n",
            "snapshot_mount_root: /mnt/my snapshots\n",
            "ari-backup.conf.yaml:1:22: snapshot_mount_root: `/mnt/my snapshots` holds whitespace",
        );
    }
}
