//! Two real scenarios, an rdiff backup of an LVM snapshot and an rsync into ZFS over one, with
//! each setting they may take set in turn to a hostile value of its kind (an option where a name
//! belongs, shell code, `..`, an empty suffix, a zero size): every one is refused with exit 2,
//! naming its line, before any command runs on any host (the fakes saw no call, the `pre`
//! command left no marker). The same job without the hostile value then backs up, so the
//! refusal is the value's alone. The settings come from the registry: a new setting is covered
//! the day it is registered, and a kind without a hostile value here fails the test.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::PathBuf;

use ari_core::settings::{self, SettingDef, SettingKind};
use tests::rdiff::rdiff_backup;
use tests::{require_tool, run, stderr, World};

// The registry is collected at link time: name every plugin, as the `ari` binary does.
use ari_command as _;
use ari_lvm as _;
use ari_rdiff as _;
use ari_zfs as _;

/// A hostile value of `def`'s kind, as YAML: one that would do harm, or fail at run time, were
/// it not refused. `marker` is a file that a value run as shell code would create.
fn hostile(def: &SettingDef, marker: &str) -> String {
    let text = match def.kind {
        SettingKind::Bool => "maybe".to_string(),
        SettingKind::Integer { min, max } => {
            return if min > i64::MIN { (min - 1).to_string() } else { (max as i128 + 1).to_string() }
        }
        SettingKind::Duration => "0s".to_string(),
        SettingKind::DurationAtMost(max) => format!("{}s", max + 1),
        SettingKind::Choice(_) => "bogus".to_string(),
        SettingKind::Words => "--a 'unbalanced".to_string(),
        SettingKind::String => "a\0b".to_string(),
        SettingKind::Checked(kind) if kind.name() == "ssh options" => {
            return format!("[\"-oProxyCommand=touch {marker}\", example.com]")
        }
        SettingKind::CheckedWords(kind) if kind.name() == "rdiff-backup options" => {
            return format!("[--remote-schema, \"touch {marker}\"]")
        }
        SettingKind::Counts(_) => "{daily: 0}".to_string(),
        SettingKind::Text(kind) => match kind.name() {
            "host" => format!("-oProxyCommand=touch {marker}"),
            "user" => format!("x;touch {marker};"),
            "path" => "/var/lib/../../tmp".to_string(),
            "program" => format!("x;touch {marker}"),
            "lv suffix" => String::new(),
            "size" => "0".to_string(),
            "sample" => "0%".to_string(),
            "bytes" => "-1G".to_string(),
            "free space" => "-10%".to_string(),
            "timespec" => "--force".to_string(),
            "dataset" => "-r".to_string(),
            "rsync destination" => "local/path".to_string(),
            "snapshot prefix" => String::new(),
            "strftime format" => "%Y %m".to_string(),
            "url" => format!("file:///{marker}"),
            "authorized_keys options" => format!("command=\"touch {marker}\" ssh-ed25519 AAAA"),
            other => panic!("setting {}: no hostile value for the kind `{other}`: add one", def.name),
        },
        other => panic!("setting {}: no hostile value for the kind {other:?}: add one", def.name),
    };
    serde_json::to_string(&text).expect("a string serializes")
}

/// A job in the LVM [`World`], and the owners whose settings it may take.
struct Scenario {
    world: World,
    job: String,
    owners: [&'static str; 3],
    marker: PathBuf,
}

impl Scenario {
    fn new(backend: &'static str) -> Scenario {
        let world = World::lvm();
        let fx = &world.fx;
        let marker = fx.path("pre-ran");
        let common = format!(
            "label: db\nsnapshot: lvm\nvolumes: [{{name: vg0/root, mount_point: /}}]\ninclude: [/etc]\npre:\n  - command: [touch, {}]\n",
            marker.display()
        );
        let job = match backend {
            "rdiff" => {
                rdiff_backup();
                format!("{common}backend: rdiff\n")
            }
            _ => {
                require_tool("rsync", "rsync");
                world.fakes.add_dataset("pool/backups/db");
                std::fs::create_dir_all(fx.path("zfs/db")).unwrap();
                format!(
                    "{common}backend: zfs\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: pool/backups/db\nsnapshot_expiration_days: 60\n",
                    fx.p("zfs/db")
                )
            }
        };
        Scenario { world, job, owners: ["core", backend, "lvm"], marker }
    }

    /// Runs the job with `line` appended; every problem found, or none.
    fn refused(&self, name: &str, line: &str) -> Vec<String> {
        let text = format!("{}{line}\n", self.job);
        let number = text.lines().count();
        let job = self.world.fx.write_job("db.yaml", &text);
        let mut problems = Vec::new();
        for command in ["check", "run"] {
            let out = run(self.world.ari().arg(command).arg(&job));
            let err = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
            if out.status.code() != Some(2) {
                problems
                    .push(format!("{name}: `{line}`: ari {command} exited {:?}:\n{err}", out.status.code()));
            }
            let at = format!("{}:{number}:", job.display());
            if !err.contains(&at) || !err.contains(&format!("{name}:")) {
                problems.push(format!("{name}: `{line}`: ari {command} did not name {at} {name}:\n{err}"));
            }
        }
        let calls = self.world.fakes.calls();
        if !calls.is_empty() {
            problems.push(format!(
                "{name}: `{line}`: commands ran: {:?}",
                calls.iter().map(|c| c.describe()).collect::<Vec<_>>()
            ));
        }
        if self.marker.exists() {
            problems.push(format!("{name}: `{line}`: the pre command ran"));
        }
        problems
    }

    fn check_every_setting(&self) {
        let marker = self.world.fx.p("hostile-ran");
        let mut problems = Vec::new();
        let mut tried = 0;
        for def in settings::registry().values() {
            if !self.owners.contains(&def.owner) {
                continue;
            }
            let line = format!("{}: {}", def.name, hostile(def, &marker));
            problems.extend(self.refused(def.name, &line));
            tried += 1;
        }
        for (key, line) in [
            ("source_hostname", format!("source_hostname: \"-oProxyCommand=touch {marker}\"")),
            ("exclude[0]", "exclude: [/etc/../root]".to_string()),
            ("post[0].host", format!("post: [{{command: [touch, {marker}], host: \"h;touch {marker}\"}}]")),
        ] {
            problems.extend(self.refused(key, &line));
            tried += 1;
        }
        assert!(tried > 20, "only {tried} hostile values tried");
        assert!(std::fs::metadata(&marker).is_err(), "a hostile value ran as a command");
        assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));

        // Without the hostile value the same job runs: the value alone was refused.
        let job = self.world.fx.write_job("db.yaml", &self.job);
        let out = run(self.world.ari().arg("run").arg(&job));
        assert_eq!(out.status.code(), Some(0), "the job itself must run:\n{}", stderr(&out));
        assert!(self.marker.exists(), "the pre command of the valid job ran");
        self.world.assert_clean();
    }
}

#[test]
fn rdiff_over_lvm_refuses_every_hostile_setting_before_running_anything() {
    Scenario::new("rdiff").check_every_setting();
}

#[test]
fn zfs_over_lvm_refuses_every_hostile_setting_before_running_anything() {
    Scenario::new("zfs").check_every_setting();
}
