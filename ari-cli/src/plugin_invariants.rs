//! Invariants of every plugin linked into `ari`, checked over the registry rather than trusted
//! to each plugin: every default is a valid value of its kind, and no undo step can name what ari
//! did not make (an origin volume), however the job's settings are chosen; every repair says
//! what it repairs.

use std::path::Path;

use ari_core::engine_api::plan::JobPlan;
use ari_core::job::Job;
use ari_core::plugin;
use ari_core::settings::{self, Layer, Source};
use ari_core::step::{Program, Step};

#[test]
fn every_registered_default_is_a_valid_value_of_its_kind() {
    for def in settings::registry().values() {
        if let Some(text) = def.default {
            if let Err(err) = settings::parse_text(def, text) {
                panic!("the default of {} ({}) is refused by its kind: {err}", def.name, def.owner);
            }
        }
    }
}

/// The settings a job of each in-tree backend needs, beside its snapshot and volumes.
fn backend_sample(backend: &str) -> &'static str {
    match backend {
        "rdiff" => "backup_store_path: /srv/store\nrdiff_backup_cli: new\ninclude: [/etc]\n",
        "zfs" => "rsync_dst: zfs:/p\nzfs_hostname: zfs\ndataset_name: pool/x\nsnapshot_expiration_days: 60\n",
        "zfs-send" => "source_dataset: tank/x\ndataset_name: pool/x\nzfs_keep: {daily: 7}\n",
        "command" => "command: [restic, backup, '{snapshot_root}']\n",
        other => panic!("backend {other} has no sample job here: add one"),
    }
}

const ORIGINS: [&str; 2] = ["vg0/root", "vg1/data"];

/// The backends that take no snapshot source (their check refuses `snapshot:`): zfs-send sends
/// the sender's own ZFS snapshots.
const NO_SNAPSHOT_SOURCE: [&str; 1] = ["zfs-send"];

/// Programs whose undo destroys data, or acts on whatever its path leads to when it runs
/// (`umount`, `rmdir`): each must prove its target before it runs.
const DESTRUCTIVE: [&str; 5] = ["lvremove", "zfs", "rm", "umount", "rmdir"];

fn undo_steps(plan: &JobPlan) -> Vec<&Step> {
    plan.snapshot.iter().filter_map(|step| step.undone_by()).collect()
}

#[test]
fn no_undo_step_can_name_an_origin_volume() {
    let mut plans = 0;
    for source in plugin::sources() {
        for backend in plugin::backends().filter(|b| !NO_SNAPSHOT_SOURCE.contains(&b.name())) {
            for suffix in ["-ari_backup", "_snap", ".1", "+x", "-", "_"] {
                let text = format!(
                    "backend: {}\nsnapshot: {}\nsource_hostname: db\nsnapshot_suffix: '{suffix}'\nvolumes:\n  - {{name: vg0/root, mount_point: /}}\n  - {{name: vg1/data, mount_point: /srv/data}}\n{}",
                    backend.name(),
                    source.name(),
                    backend_sample(backend.name())
                );
                let job = Job::parse(Path::new("/jobs/db.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
                let empty = Layer::new(Source::Default);
                let plan = JobPlan::build(job, &empty, &empty, None).unwrap_or_else(|e| panic!("{e}"));
                plans += 1;
                for undo in undo_steps(&plan) {
                    let Program::Argv(argv) = undo.command().program() else {
                        panic!("{}: an undo step runs through a shell", undo.name());
                    };
                    for origin in ORIGINS {
                        let device = format!("/dev/{origin}");
                        assert!(
                            !argv.iter().any(|word| word == origin || *word == device),
                            "{} (suffix {suffix:?}) names the origin {origin}: {argv:?}",
                            undo.name()
                        );
                    }
                    assert!(
                        undo.presence().is_some(),
                        "{}: no query tells whether its thing is there",
                        undo.name()
                    );
                    assert!(undo.removal().is_some(), "{}: does not say what it removes", undo.name());
                    if DESTRUCTIVE.contains(&argv[0].as_str()) {
                        let proof = undo.presence().and_then(|(_, expect)| expect);
                        assert!(
                            proof.is_some(),
                            "{} destroys without proving its target: {argv:?}",
                            undo.name()
                        );
                    }
                    assert!(
                        !(argv[0] == "rm" && argv.iter().any(|w| w.starts_with('-') && w.contains('r'))),
                        "{}: a recursive remove: {argv:?}",
                        undo.name()
                    );
                }
            }
        }
    }
    assert!(plans > 0, "no snapshot source or backend is registered");
}

#[test]
fn an_empty_suffix_is_refused_before_any_plan() {
    let text =
        "snapshot: lvm\nsnapshot_suffix: ''\nvolumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\n";
    let err = Job::parse(Path::new("/jobs/db.yaml"), text).unwrap_err().to_string();
    assert_eq!(
        err,
        "/jobs/db.yaml:2:18: snapshot_suffix: `` is empty, which would give the snapshot its origin's name"
    );
}

/// Every repair a backend declares (`Step::repaired_by`) says what it puts right, is an argv
/// on the backup server, and removes nothing recursively; the engine itself refuses a repair
/// without a presence query, and runs one only while that query succeeds.
#[test]
fn every_repair_says_what_it_repairs_and_removes_nothing_recursively() {
    let mut repairs = 0;
    for backend in plugin::backends() {
        let snapshot = if NO_SNAPSHOT_SOURCE.contains(&backend.name()) {
            ""
        } else {
            "snapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\n"
        };
        let text = format!(
            "backend: {}\n{snapshot}source_hostname: db\n{}",
            backend.name(),
            backend_sample(backend.name())
        );
        let job = Job::parse(Path::new("/jobs/db.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
        let empty = Layer::new(Source::Default);
        let plan = JobPlan::build(job, &empty, &empty, None).unwrap_or_else(|e| panic!("{e}"));
        for repair in plan.steps().iter().flat_map(|step| step.repairs()) {
            repairs += 1;
            let Program::Argv(argv) = repair.command().program() else {
                panic!("{}: a repair runs through a shell", repair.name());
            };
            assert!(repair.command().host().is_local(), "{}: not on the backup server", repair.name());
            assert!(repair.presence().is_some(), "{}: no query tells whether it is needed", repair.name());
            assert!(repair.removal().is_some(), "{}: does not say what it repairs", repair.name());
            assert!(
                !(argv[0] == "rm" && argv.iter().any(|w| w.starts_with('-') && w.contains('r'))),
                "{}: a recursive remove: {argv:?}",
                repair.name()
            );
        }
    }
    assert!(repairs > 0, "no backend declares a repair: rdiff's regress is missing");
}
