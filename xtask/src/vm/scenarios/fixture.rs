//! What the scenarios share: the context a scenario runs in (`Ctx`: the guest, the `ari`
//! binary, the package), a throwaway ari installation on the host that points at the guest
//! (`Fixture`), the text of an LVM job over the guest's two volumes, the checks that a run left
//! the guest clean and no ledger behind, `ari history --json` read back, and small readers.

use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::shell;
use crate::vm::machine::Vm;

/// Bound on one `ari` run: a backup here takes seconds; minutes means a hang.
const ARI_TIMEOUT: Duration = Duration::from_secs(300);

/// Where ari mounts the snapshots of a job labelled LABEL, at `MOUNT_ROOT/LABEL`:
/// `snapshot_mount_root`'s default, which ari makes 0700 when it is missing (after a boot).
pub(super) const MOUNT_ROOT: &str = "/run/ari-backup";

/// The two volumes of every LVM job: the outer one first, the one mounted inside it with
/// `mount_options` (`{db_options}` is filled in).
const VOLUMES: &str = "snapshot: lvm\nsnapshot_size: 100M\nvolumes:\n  - {name: vg0/data, mount_point: /srv/data}\n  - {name: vg0/db, mount_point: /srv/data/db, mount_options: \"{db_options}\"}\n";

pub(super) struct Ctx<'a> {
    pub(super) vm: &'a Vm,
    pub(super) ari: &'a Path,
    /// The Debian package, when a scenario that installs it is selected.
    pub(super) deb: Option<&'a Path>,
}

/// The value of the line `NAME: value` of a report printed in the guest, trimmed; empty when
/// there is no such line.
pub(super) fn field(report: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    report.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_default().trim().to_string()
}

/// A throwaway ari installation on the host: config, jobs, state and store in a temp dir; the
/// config points ari at the guest (port, user, key, the ssh master's socket).
pub(super) struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub(super) fn new(ctx: &Ctx) -> Result<Fixture> {
        Fixture::with_ssh_options(ctx, &[])
    }

    /// The same, with `extra` ssh options after the guest's.
    pub(super) fn with_ssh_options(ctx: &Ctx, extra: &[String]) -> Result<Fixture> {
        let fixture = Fixture::without_config()?;
        let options: Vec<String> = ctx.vm.ssh_options().into_iter().chain(extra.iter().cloned()).collect();
        fixture.write_config(ctx, &options, "")?;
        Ok(fixture)
    }

    /// The directories only, for a scenario that writes the config itself (`write_config`).
    pub(super) fn without_config() -> Result<Fixture> {
        let dir = tempfile::Builder::new().prefix("ari-vm-").tempdir().context("create a temp dir")?;
        for sub in ["jobs.d", "state", "store"] {
            fs::create_dir_all(dir.path().join(sub))?;
        }
        Ok(Fixture { dir })
    }

    /// The config: this fixture's directories, the guest's port as root, `ssh_options`, and
    /// the `extra` lines.
    pub(super) fn write_config(&self, ctx: &Ctx, ssh_options: &[String], extra: &str) -> Result<()> {
        self.write_config_as(ctx, "root", ssh_options, extra)
    }

    /// The same, logging in to the guest as `user`.
    pub(super) fn write_config_as(
        &self,
        ctx: &Ctx,
        user: &str,
        ssh_options: &[String],
        extra: &str,
    ) -> Result<()> {
        let options: Vec<String> = ssh_options.iter().map(|o| yaml(o)).collect();
        let config = format!(
            "backup_store_path: {}\nstate_dir: {}\njobs_dir: {}\nssh_port: {}\nremote_user: {user}\nssh_options: [{}]\nretry_interval: 1\nmax_retries: 2\n{extra}",
            yaml(&self.p("store")),
            yaml(&self.p("state")),
            yaml(&self.p("jobs.d")),
            ctx.vm.port,
            options.join(", ")
        );
        fs::write(self.config(), config)?;
        Ok(())
    }

    pub(super) fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub(super) fn p(&self, relative: &str) -> String {
        self.path(relative).display().to_string()
    }

    pub(super) fn config(&self) -> PathBuf {
        self.path("ari-backup.conf.yaml")
    }

    pub(super) fn job(&self, name: &str, yaml: &str) -> Result<PathBuf> {
        let path = self.path("jobs.d").join(format!("{name}.yaml"));
        fs::write(&path, yaml)?;
        Ok(path)
    }

    /// `ari --config CONFIG ARGS`, with its output going to files (read by `finish`).
    pub(super) fn spawn_ari(&self, ctx: &Ctx, args: &[&str]) -> Result<Child> {
        let mut cmd = Command::new(ctx.ari);
        // Calendar periods in UTC, as the scenarios read ZFS's creation times.
        cmd.arg("--config").arg(self.config()).args(args).env_remove("ARI_CONFIG").env("TZ", "UTC");
        println!("$ {}", shell::display(&cmd));
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(self.path("ari.out"))?)
            .stderr(fs::File::create(self.path("ari.err"))?)
            .spawn()
            .context("start ari")
    }

    /// Runs ari to the end (bounded by `ARI_TIMEOUT`) and returns its exit code and stderr.
    pub(super) fn ari(&self, ctx: &Ctx, args: &[&str]) -> Result<(Option<i32>, String)> {
        let started = Instant::now();
        let mut child = self.spawn_ari(ctx, args)?;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > ARI_TIMEOUT {
                child.kill().ok();
                child.wait().ok();
                bail!("ari did not finish within {} s; stderr:\n{}", ARI_TIMEOUT.as_secs(), self.stderr());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        println!("  exit {:?} after {:.1} s", status.code(), started.elapsed().as_secs_f64());
        Ok((status.code(), self.stderr()))
    }

    /// Runs ari and fails unless it exits with `code`.
    pub(super) fn ari_expect(&self, ctx: &Ctx, args: &[&str], code: i32) -> Result<String> {
        let (got, stderr) = self.ari(ctx, args)?;
        ensure!(
            got == Some(code),
            "`ari {}` exited {got:?}, expected {code}; stderr:\n{stderr}",
            args.join(" ")
        );
        Ok(stderr)
    }

    pub(super) fn stderr(&self) -> String {
        fs::read_to_string(self.path("ari.err")).unwrap_or_default()
    }

    pub(super) fn stdout(&self) -> String {
        fs::read_to_string(self.path("ari.out")).unwrap_or_default()
    }
}

/// A YAML scalar for any string (JSON strings are YAML).
pub(super) fn yaml(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The lines of a job over the guest: remote source, both volumes, `extra` lines after.
pub(super) fn lvm_job(label: &str, db_options: &str, extra: &str) -> String {
    format!(
        "label: {label}\nsource_hostname: 127.0.0.1\n{}{extra}",
        VOLUMES.replace("{db_options}", db_options)
    )
}

/// Fails unless the guest holds no snapshot, no mount under `MOUNT_ROOT/LABEL` and no
/// `MOUNT_ROOT/LABEL`, while the origin volumes are still mounted where they belong, and the
/// root ari made is private (0700, root's).
pub(super) fn assert_clean(vm: &Vm, label: &str) -> Result<()> {
    let report = vm.run(&format!(
        r#"echo "lvs: $(lvs --noheadings -o lv_name vg0 | xargs)"
echo "mounts: $(findmnt -rn -o TARGET | grep '^{MOUNT_ROOT}/{label}' | xargs)"
if [ -e {MOUNT_ROOT}/{label} ]; then echo "dir: {MOUNT_ROOT}/{label}"; else echo "dir:"; fi
if [ -e {MOUNT_ROOT} ]; then echo "root: $(stat -c '%a %U %F' {MOUNT_ROOT})"; else echo "root: missing"; fi
echo "origin: $(findmnt -rn -o SOURCE /srv/data) $(findmnt -rn -o SOURCE /srv/data/db)""#
    ))?;
    let get = |name: &str| field(&report, name);
    let mut problems = Vec::new();
    if get("lvs") != "data db" {
        problems.push(format!("logical volumes are `{}`, expected only `data db`", get("lvs")));
    }
    if !get("mounts").is_empty() {
        problems.push(format!("mounts left: {}", get("mounts")));
    }
    if !get("dir").is_empty() {
        problems.push(format!("mount directory left: {}", get("dir")));
    }
    if !["700 root directory", "missing"].contains(&get("root").as_str()) {
        problems.push(format!("{MOUNT_ROOT} is not private: {}", get("root")));
    }
    if get("origin") != "/dev/mapper/vg0-data /dev/mapper/vg0-db" {
        problems.push(format!("origin volumes not mounted as before: `{}`", get("origin")));
    }
    ensure!(problems.is_empty(), "the guest is not clean after `{label}`: {}", problems.join("; "));
    println!("  guest clean: no snapshot, no mount, no {MOUNT_ROOT}/{label}");
    Ok(())
}

/// Fails if a run that ended by itself left a ledger: everything it made was undone.
pub(super) fn assert_no_ledger(fx: &Fixture, label: &str) -> Result<()> {
    let ledger = fx.path("state/ledger").join(format!("{label}.json"));
    ensure!(!ledger.exists(), "the run left a ledger: {}", read(&ledger).unwrap_or_default());
    Ok(())
}

pub(super) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}

pub(super) fn sha256_file(path: &Path) -> Result<String> {
    crate::vm::image::sha256(&fs::read(path).with_context(|| format!("read {}", path.display()))?)
}

pub(super) fn unix_now() -> Result<i64> {
    Ok(i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?)
}

/// One backup as `ari history --json` lists it.
#[derive(Debug, PartialEq)]
pub(super) struct Listed {
    pub(super) name: String,
    pub(super) time: i64,
    pub(super) size: Option<u64>,
}

/// `ari history LABEL --json`, which must exit 0: the backups in the order ari printed them,
/// each with the fields the JSON documents (`name`, `time`, `time_rfc3339`, `size`).
pub(super) fn history(ctx: &Ctx, fx: &Fixture, label: &str) -> Result<Vec<Listed>> {
    fx.ari_expect(ctx, &["history", label, "--json"], 0)?;
    let out = fx.stdout();
    let json: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("ari history --json printed {out:?}"))?;
    ensure!(json["job"] == label, "ari history --json names another job: {out}");
    let backups = json["backups"].as_array().with_context(|| format!("no `backups` list in {out}"))?;
    backups
        .iter()
        .map(|b| {
            let (Some(name), Some(time), Some(rfc3339)) =
                (b["name"].as_str(), b["time"].as_i64(), b["time_rfc3339"].as_str())
            else {
                bail!("a backup without its name, time or time_rfc3339: {b}");
            };
            ensure!(!rfc3339.is_empty(), "a backup with an empty time_rfc3339: {b}");
            ensure!(b.get("size").is_some(), "a backup without `size`: {b}");
            Ok(Listed { name: name.to_string(), time, size: b["size"].as_u64() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_field_is_its_line_trimmed_or_empty() {
        assert_eq!(field("a: 1\nab: 2 \n", "ab"), "2");
        assert_eq!(field("/srv/data/db: x\n", "/srv/data"), "");
        assert_eq!(field("", "a"), "");
    }

    #[test]
    fn jobs_quote_their_strings_and_fill_in_the_mount_options() {
        assert_eq!(yaml("a \"b\" $$"), r#""a \"b\" $$""#);
        let job = lvm_job("x", "ro,noatime", "include: [/srv/data]\n");
        assert!(job.starts_with("label: x\nsource_hostname: 127.0.0.1\nsnapshot: lvm\n"));
        assert!(job.contains("mount_options: \"ro,noatime\"}"));
        assert!(job.ends_with("include: [/srv/data]\n"));
    }
}
