//! The `lvm` snapshot source: checks, and the steps that make and undo the snapshot view.
//!
//! For volumes `vg0/root` at `/` and `vg1/db` at `/var/lib/mysql`, a job labelled `db`, on
//! host `h`, the steps are (each undo runs in the cleanup phase, in reverse order):
//!
//! ```text
//! lvcreate -s -L 1G vg0/root -n root-ari_backup      undo: lvremove -f vg0/root-ari_backup
//! lvcreate -s -L 1G vg1/db -n db-ari_backup          undo: lvremove -f vg1/db-ari_backup
//! mountpoint -q /tmp/db       (refuse if it is one, before making anything)
//! mkdir -p /tmp/db                                   undo: rmdir /tmp/db
//! mount /dev/vg0/root-ari_backup /tmp/db             undo: umount /tmp/db
//! mountpoint -q /tmp/db/var/lib/mysql
//! mkdir -p /tmp/db/var/lib/mysql  (inside the root snapshot: nothing to undo)
//! mount -o ro /dev/vg1/db-ari_backup /tmp/db/var/lib/mysql   undo: umount /tmp/db/var/lib/mysql
//! ```
//!
//! A mount directory outside every earlier volume is made by ari, and its undo removes it and
//! every parent ari made for it (`rmdir` refuses a non-empty directory, so nothing else goes).

use ari_core::kinds;
use ari_core::plugin::{join_path, JobContext, SnapshotSource, Tool};
use ari_core::step::{Command, Phase, Step};
use ari_core::ConfigError;

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
    /// Where the snapshot is mounted (`/tmp/label/var/lib/mysql`).
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

fn base(job: &JobContext) -> String {
    join_path(&job.get(&SNAPSHOT_MOUNT_ROOT), &job.job().label)
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
        // kinds::LV_SUFFIX, SIZE); what is left spans several values.
        if job.job().volumes.is_empty() {
            return Err(job.error_at("volumes", "a job with `snapshot: lvm` needs at least one volume"));
        }
        let suffix = job.get(&SNAPSHOT_SUFFIX);
        let names: Vec<&str> = job.job().volumes.iter().map(|v| v.name.as_str()).collect();
        for volume in &job.job().volumes {
            let (vg, lv) = volume.name.split_once('/').unwrap_or(("", &volume.name));
            let snapshot = format!("{lv}{suffix}");
            kinds::check_lvm_name("logical volume", &snapshot).map_err(|why| {
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
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (i, volume) in job.job().volumes.iter().enumerate() {
            let key = format!("volumes[{i}]");
            let point = &volume.mount_point;
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
            ["lvcreate", "lvremove", "mount", "umount", "mountpoint", "mkdir", "rmdir"]
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
        let retry = job.cleanup_retry();
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
            .retry(retry)
            .removes(at(format!("snapshot {}", v.snapshot)))
            .proven_by(
                on(words(&["lvs", "--noheadings", "-o", "vg_name,lv_name,origin", &v.snapshot])),
                [vg, lv, origin],
            );
            steps.push(Step::run(Phase::Snapshot, format!("lvcreate {}", v.snapshot), create).undo(remove));
        }

        let rmdir = |dirs: &[String]| {
            let mut argv = vec!["rmdir".to_string()];
            argv.extend(dirs.iter().cloned());
            Step::run(Phase::Cleanup, format!("rmdir {}", dirs.join(" ")), on(argv))
                .retry(retry)
                .removes(at(format!("directory {}", dirs.join(", "))))
                .present_while(on(words(&["test", "-d", &dirs[0]])))
        };
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
                steps.push(
                    Step::run(Phase::Snapshot, format!("mkdir {base}"), on(words(&["mkdir", "-p", &base])))
                        .undo(rmdir(std::slice::from_ref(&base))),
                );
            }
            if v.target != base {
                // A mount point inside an earlier volume lies in that snapshot's file system: it
                // goes away with it. Elsewhere ari makes the directories, and removes what it made.
                let enclosing =
                    volumes[..i].iter().any(|earlier| is_within(&v.mount_point, &earlier.mount_point));
                let mkdir = Step::run(
                    Phase::Snapshot,
                    format!("mkdir {}", v.target),
                    on(words(&["mkdir", "-p", &v.target])),
                );
                // Directories an earlier volume made are undone with that volume, later.
                let new: Vec<String> =
                    made_dirs(&base, &v.target).into_iter().filter(|dir| !made.contains(dir)).collect();
                made.extend(new.iter().cloned());
                steps.push(if enclosing || new.is_empty() { mkdir } else { mkdir.undo(rmdir(&new)) });
            }
            let mut mount = vec!["mount".to_string()];
            if let Some(options) = &v.options {
                mount.extend(["-o".to_string(), options.clone()]);
            }
            mount.extend([v.device.clone(), v.target.clone()]);
            let umount =
                Step::run(Phase::Cleanup, format!("umount {}", v.target), on(words(&["umount", &v.target])))
                    .retry(retry)
                    .removes(at(format!("mount of {} at {}", v.device, v.target)))
                    .present_while(on(words(&["mountpoint", "-q", &v.target])));
            steps.push(Step::run(Phase::Snapshot, format!("mount {}", v.target), on(mount)).undo(umount));
        }
        Ok(steps)
    }
}

/// The directories between `base` (excluded) and `target` (included), deepest first: what
/// `mkdir -p target` made once `base` existed.
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
    use ari_core::testkit::TestJob;

    /// Recovery after a crash, and the undo of a step stopped midway, run an undo only while its
    /// thing is there: every undo must say how to tell.
    #[test]
    fn every_undo_knows_whether_its_thing_is_still_there() {
        let job = TestJob::parse(
            "snapshot: lvm\nsource_hostname: db\nvolumes:\n  - {name: vg0/root, mount_point: /}\n  - {name: vg1/data, mount_point: /srv/data}\n  - {name: vg2/web, mount_point: /var/www}\n  - {name: vg2/logs, mount_point: /var/log}\ninclude: [/etc]\n",
        );
        let ctx = job.context();
        LvmSource.check(&ctx).unwrap();
        let steps = LvmSource.steps(&ctx).unwrap();
        let undos: Vec<&Step> = steps.iter().filter_map(|s| s.undo.as_deref()).collect();
        assert_eq!(undos.len(), 4 + 1 + 4, "4 lvremove, 1 rmdir of the base, 4 umount");
        for undo in undos {
            assert!(undo.present.is_some(), "{} has no presence query", undo.name);
            assert!(undo.removes.is_some(), "{} does not say what it removes", undo.name);
            assert!(undo.retry.max_retries > 0, "{} is not retried", undo.name);
        }
    }
}
