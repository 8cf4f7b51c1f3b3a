//! The real-tool scenarios: the `ari` binary on the host backs up the guest as a remote host
//! (`source_hostname: 127.0.0.1` on the forwarded port, as root with the image's key), so every
//! `lvcreate`, `mount`, `umount`, `lvremove`, `zfs` and `rsync` of a job runs for real in the
//! guest. The host tests prove the same paths against stateful fakes; these prove that the
//! commands ari builds do what the fakes pretend they do.
//!
//! The guest is prepared once per boot (`PREPARE`): two ext4 logical volumes on /dev/vdb,
//! vg0/data at /srv/data and vg0/db at /srv/data/db (a volume inside another, as a database
//! under a root volume is), and a pool `tank` with a dataset `tank/backups` on /dev/vdc, and a
//! mark of this run in /run. Before each scenario the runner checks that the guest answering is
//! that prepared one (`check_prepared`), so an unprepared guest fails with what it holds instead
//! of with a scenario's first missing file. Each scenario asserts that it left nothing behind
//! (`lvs`, `findmnt`, the mount directory), and the runner then resets the guest anyway, so that
//! one failure cannot fail the scenarios after it.

use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::machine::Vm;
use crate::shell;

/// How many scenarios passed and failed.
#[derive(Debug, Default)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

/// A named scenario: a function that returns an error naming what did not hold.
struct Scenario {
    name: &'static str,
    run: fn(&Ctx) -> Result<()>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "lvm_rdiff_backs_up_the_snapshot_not_the_changed_origin",
        run: lvm_rdiff_crash_consistent,
    },
    Scenario { name: "lvm_failures_leave_nothing_behind", run: lvm_failures_leave_nothing },
    Scenario { name: "zfs_over_lvm_snapshots_and_expires_by_real_creation_times", run: zfs_over_lvm },
    Scenario { name: "crash_ledger_recover_undoes_real_snapshots_and_mounts", run: crash_ledger },
    Scenario {
        name: "job_timeout_mid_transfer_lvm_rdiff_unmounts_on_the_first_try",
        run: job_timeout_lvm_rdiff,
    },
    Scenario {
        name: "job_timeout_mid_transfer_lvm_rsync_zfs_unmounts_on_the_first_try",
        run: job_timeout_lvm_zfs,
    },
    Scenario { name: PACKAGE_SCENARIO, run: package_through_systemd },
    Scenario {
        name: "ssh_filter_of_authorize_install_lets_the_lvm_and_zfs_jobs_through_and_refuses_the_rest",
        run: filtered_jobs,
    },
    Scenario {
        name: "ssh_filter_and_sudoers_of_authorize_installer_let_a_non_root_user_run_the_lvm_and_zfs_jobs_and_refuse_the_rest",
        run: sudo_filtered_jobs,
    },
];

/// The scenario that installs the Debian package in the guest (`vm test` builds it first).
pub const PACKAGE_SCENARIO: &str = "deb_package_installs_and_backs_up_through_its_systemd_unit";

/// Bound on one `ari` run: a backup here takes seconds; minutes means a hang.
const ARI_TIMEOUT: Duration = Duration::from_secs(300);

/// The guest's volumes, pool and data, made once per boot.
const PREPARE: &str = r#"set -euo pipefail
pvcreate -q /dev/vdb
vgcreate -q vg0 /dev/vdb
lvcreate -q -y -L 400M -n data vg0
lvcreate -q -y -L 200M -n db vg0
mkfs.ext4 -q /dev/vg0/data
mkfs.ext4 -q /dev/vg0/db
mkdir -p /srv/data
mount /dev/vg0/data /srv/data
mkdir -p /srv/data/db
mount /dev/vg0/db /srv/data/db
mkdir -p /srv/data/etc
echo 'x=1' > /srv/data/etc/app.conf
head -c 4194304 /dev/urandom > /srv/data/blob.bin
modprobe zfs
zpool create -f -m /tank tank /dev/vdc
zfs create tank/backups
sync
"#;

/// Where the preparation leaves the run's mark (`mark`). /run is a tmpfs, so the mark lasts
/// exactly as long as the boot that was prepared.
const MARK_FILE: &str = "/run/ari-vm-prepared";

/// The mount points of `PREPARE`, each with the source and type mounted exactly there, as
/// `check_prepared`'s report shows them.
const PREPARED_MOUNTS: &[(&str, &str)] =
    &[("/srv/data", "/dev/mapper/vg0-data ext4"), ("/srv/data/db", "/dev/mapper/vg0-db ext4")];

/// Where ari mounts the snapshots of a job labelled LABEL, at `MOUNT_ROOT/LABEL`:
/// `snapshot_mount_root`'s default, which ari makes 0700 when it is missing (after a boot).
const MOUNT_ROOT: &str = "/run/ari-backup";

/// The two volumes of every LVM job: the outer one first, the one mounted inside it with
/// `mount_options` (`{db_options}` is filled in).
const VOLUMES: &str = "snapshot: lvm\nsnapshot_size: 100M\nvolumes:\n  - {name: vg0/data, mount_point: /srv/data}\n  - {name: vg0/db, mount_point: /srv/data/db, mount_options: \"{db_options}\"}\n";

struct Ctx<'a> {
    vm: &'a Vm,
    ari: &'a Path,
    /// The Debian package, when a scenario that installs it is selected.
    deb: Option<&'a Path>,
}

/// The scenarios whose names contain one of `filters` (all when there is none); a filter that
/// selects nothing is an error, so that a typo cannot pass as an empty, green run.
pub fn select(filters: &[String]) -> Result<Vec<&'static str>> {
    let selected: Vec<&'static str> = SCENARIOS
        .iter()
        .map(|s| s.name)
        .filter(|name| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        bail!("no scenario matches {filters:?}; the scenarios are: {}", names.join(", "));
    }
    Ok(selected)
}

/// Prepares the guest, runs the `selected` scenarios one after another, and counts them. A
/// guest that cannot be prepared fails every scenario; a scenario that finds the guest no longer
/// prepared fails without running.
pub fn run_all(vm: &Vm, ari: &Path, deb: Option<&Path>, selected: &[&str]) -> Summary {
    let selected: Vec<&Scenario> = SCENARIOS.iter().filter(|s| selected.contains(&s.name)).collect();
    let mut summary = Summary::default();
    shell::header("preparing the guest: LVM on /dev/vdb, ZFS on /dev/vdc");
    let started = Instant::now();
    let mark = mark();
    let prepared =
        vm.run(&format!("{PREPARE}echo {mark} > {MARK_FILE}\n")).and_then(|_| check_prepared(vm, &mark));
    if let Err(err) = prepared {
        println!("FAILED to prepare the guest: {err:#}");
        summary.failed = selected.len();
        return summary;
    }
    println!("prepared in {:.1} s", started.elapsed().as_secs_f64());
    let ctx = Ctx { vm, ari, deb };
    for scenario in selected {
        shell::header(&format!("scenario {}", scenario.name));
        let started = Instant::now();
        let result = check_prepared(vm, &mark).and_then(|()| (scenario.run)(&ctx));
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                summary.passed += 1;
                println!("PASS {} ({secs:.1} s)", scenario.name);
            }
            Err(err) => {
                summary.failed += 1;
                println!("FAIL {} ({secs:.1} s): {err:#}", scenario.name);
            }
        }
        if let Err(err) = reset_guest(vm) {
            println!("warning: could not reset the guest after {}: {err:#}", scenario.name);
        }
    }
    summary
}

/// This run's mark for the guest it prepares: the xtask's PID and the time, which no other run
/// and no earlier boot can have written.
fn mark() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("ari-vm-{}-{nanos}", std::process::id())
}

/// Fails unless the guest answering is the one this run prepared and still has its volumes and
/// dataset mounted where `PREPARE` put them; the error says what the guest has instead.
fn check_prepared(vm: &Vm, mark: &str) -> Result<()> {
    let mut script = format!("echo \"mark: $(cat {MARK_FILE} 2>/dev/null)\"\n");
    for (point, _) in PREPARED_MOUNTS {
        script += &format!("echo \"{point}: $(findmnt -n -o SOURCE,FSTYPE --mountpoint {point} | xargs)\"\n");
    }
    // Not xargs for zfs's output: its errors quote names, and xargs parses quotes.
    script += r#"echo "tank/backups: $(zfs list -H -o mounted,mountpoint tank/backups 2>&1 | tr '\t\n' '  ')"
echo "findmnt: $(findmnt -rn -o TARGET,SOURCE,FSTYPE | grep -E '^/(srv|tank)' | paste -sd ';')"
echo "lsblk: $(lsblk -rn -o NAME,TYPE,MOUNTPOINT 2>&1 | sed 's/ *$//' | paste -sd ';')"
"#;
    prepared(&vm.run(&script)?, mark)
}

/// The verdict of `check_prepared` on the guest's report (`name: value` lines).
fn prepared(report: &str, mark: &str) -> Result<()> {
    let mut problems = Vec::new();
    let found = field(report, "mark");
    if found.is_empty() {
        problems.push(format!(
            "{MARK_FILE} is missing (this run wrote `{mark}` there): another guest answered, or this one rebooted"
        ));
    } else if found != mark {
        problems.push(format!(
            "{MARK_FILE} holds `{found}`, not this run's `{mark}`: another run's guest answered"
        ));
    }
    for (point, expected) in PREPARED_MOUNTS {
        match field(report, point) {
            found if found == *expected => {}
            found if found.is_empty() => problems.push(format!("{point} is not a mount point")),
            found => problems.push(format!("{point} has `{found}` mounted, expected `{expected}`")),
        }
    }
    let dataset = field(report, "tank/backups");
    if dataset != "yes /tank/backups" {
        problems.push(format!("tank/backups is not mounted at /tank/backups (zfs list: `{dataset}`)"));
    }
    let mounts = field(report, "findmnt");
    ensure!(
        problems.is_empty(),
        "the guest is not prepared: {} (findmnt under /srv and /tank: {}; lsblk: {})",
        problems.join("; "),
        if mounts.is_empty() { "nothing" } else { &mounts },
        field(report, "lsblk")
    );
    Ok(())
}

/// The value of the line `NAME: value` of a report printed in the guest, trimmed; empty when
/// there is no such line.
fn field(report: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    report.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_default().trim().to_string()
}

/// Undoes whatever a failed scenario may have left (mounts and snapshots under `MOUNT_ROOT`, the
/// scenario datasets, the filter scenarios' key, filter, user and sudoers drop-in, a clock set
/// back), so the next scenario starts clean. Passing scenarios have already proven themselves
/// clean, so this finds nothing after them.
fn reset_guest(vm: &Vm) -> Result<()> {
    vm.run(&format!("{}{}", remove_sudo_user(), remove_filter()))?;
    vm.run(
        &r#"for m in $(findmnt -rn -o TARGET | grep '^MOUNT_ROOT/' | sort -r); do umount "$m" || umount -l "$m"; done
for lv in $(lvs --noheadings -o lv_name,origin vg0 | awk '$2 != "" {print $1}'); do lvremove -f -q "vg0/$lv"; done
for d in MOUNT_ROOT/*; do [ -e "$d" ] && rm -rf --one-file-system "$d"; done
rm -rf /tmp/ari-vm-planted
dpkg -s ari >/dev/null 2>&1 && dpkg --purge ari >/dev/null; rm -rf /srv/store /root/ari.deb
rm -f /srv/data/big.bin /srv/data/db/added.dat
zfs list -H -o name tank/backups/zfs-lvm >/dev/null 2>&1 && zfs destroy -r tank/backups/zfs-lvm
rm -f /run/ari-vm-sleep.pid
true"#
            .replace("MOUNT_ROOT", MOUNT_ROOT),
    )?;
    vm.set_clock()
}

/// A throwaway ari installation on the host: config, jobs, state and store in a temp dir; the
/// config points ari at the guest (port, user, key, the ssh master's socket).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(ctx: &Ctx) -> Result<Fixture> {
        Fixture::with_ssh_options(ctx, &[])
    }

    /// The same, with `extra` ssh options after the guest's.
    fn with_ssh_options(ctx: &Ctx, extra: &[String]) -> Result<Fixture> {
        let fixture = Fixture::without_config()?;
        let options: Vec<String> = ctx.vm.ssh_options().into_iter().chain(extra.iter().cloned()).collect();
        fixture.write_config(ctx, &options, "")?;
        Ok(fixture)
    }

    /// The directories only, for a scenario that writes the config itself (`write_config`).
    fn without_config() -> Result<Fixture> {
        let dir = tempfile::Builder::new().prefix("ari-vm-").tempdir().context("create a temp dir")?;
        for sub in ["jobs.d", "state", "store"] {
            fs::create_dir_all(dir.path().join(sub))?;
        }
        Ok(Fixture { dir })
    }

    /// The config: this fixture's directories, the guest's port as root, `ssh_options`, and
    /// the `extra` lines.
    fn write_config(&self, ctx: &Ctx, ssh_options: &[String], extra: &str) -> Result<()> {
        self.write_config_as(ctx, "root", ssh_options, extra)
    }

    /// The same, logging in to the guest as `user`.
    fn write_config_as(&self, ctx: &Ctx, user: &str, ssh_options: &[String], extra: &str) -> Result<()> {
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

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn p(&self, relative: &str) -> String {
        self.path(relative).display().to_string()
    }

    fn config(&self) -> PathBuf {
        self.path("ari-backup.conf.yaml")
    }

    fn job(&self, name: &str, yaml: &str) -> Result<PathBuf> {
        let path = self.path("jobs.d").join(format!("{name}.yaml"));
        fs::write(&path, yaml)?;
        Ok(path)
    }

    /// `ari --config CONFIG ARGS`, with its output going to files (read by `finish`).
    fn spawn_ari(&self, ctx: &Ctx, args: &[&str]) -> Result<Child> {
        let mut cmd = Command::new(ctx.ari);
        cmd.arg("--config").arg(self.config()).args(args).env_remove("ARI_CONFIG");
        println!("$ {}", shell::display(&cmd));
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(self.path("ari.out"))?)
            .stderr(fs::File::create(self.path("ari.err"))?)
            .spawn()
            .context("start ari")
    }

    /// Runs ari to the end (bounded by `ARI_TIMEOUT`) and returns its exit code and stderr.
    fn ari(&self, ctx: &Ctx, args: &[&str]) -> Result<(Option<i32>, String)> {
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
    fn ari_expect(&self, ctx: &Ctx, args: &[&str], code: i32) -> Result<String> {
        let (got, stderr) = self.ari(ctx, args)?;
        ensure!(
            got == Some(code),
            "`ari {}` exited {got:?}, expected {code}; stderr:\n{stderr}",
            args.join(" ")
        );
        Ok(stderr)
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.path("ari.err")).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        fs::read_to_string(self.path("ari.out")).unwrap_or_default()
    }
}

/// A YAML scalar for any string (JSON strings are YAML).
fn yaml(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The lines of a job over the guest: remote source, both volumes, `extra` lines after.
fn lvm_job(label: &str, db_options: &str, extra: &str) -> String {
    format!(
        "label: {label}\nsource_hostname: 127.0.0.1\n{}{extra}",
        VOLUMES.replace("{db_options}", db_options)
    )
}

/// Fails unless the guest holds no snapshot, no mount under `MOUNT_ROOT/LABEL` and no
/// `MOUNT_ROOT/LABEL`, while the origin volumes are still mounted where they belong, and the
/// root ari made is private (0700, root's).
fn assert_clean(vm: &Vm, label: &str) -> Result<()> {
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
fn assert_no_ledger(fx: &Fixture, label: &str) -> Result<()> {
    let ledger = fx.path("state/ledger").join(format!("{label}.json"));
    ensure!(!ledger.exists(), "the run left a ledger: {}", read(&ledger).unwrap_or_default());
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}

fn sha256_file(path: &Path) -> Result<String> {
    super::image::sha256(&fs::read(path).with_context(|| format!("read {}", path.display()))?)
}

fn unix_now() -> Result<i64> {
    Ok(i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?)
}

/// One backup as `ari history --json` lists it.
#[derive(Debug, PartialEq)]
struct Listed {
    name: String,
    time: i64,
    size: Option<u64>,
}

/// `ari history LABEL --json`, which must exit 0: the backups in the order ari printed them,
/// each with the fields the JSON documents (`name`, `time`, `time_rfc3339`, `size`).
fn history(ctx: &Ctx, fx: &Fixture, label: &str) -> Result<Vec<Listed>> {
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

/// One line per entry of a tree, sorted: `d PATH`, `f SHA256 PATH`, `l TARGET PATH` or
/// `o PATH`, PATH relative to the tree's root; the same from the guest (`guest_tree`) and from
/// this machine (`host_tree`), so that a restore can be compared with what a snapshot holds.
fn guest_tree(vm: &Vm, dir: &str) -> Result<Vec<String>> {
    let listing = vm.run(&format!(
        r#"set -e
cd {}
find . -mindepth 1 | while IFS= read -r p; do
  q="${{p#./}}"
  if [ -L "$p" ]; then echo "l $(readlink "$p") $q"
  elif [ -d "$p" ]; then echo "d $q"
  elif [ -f "$p" ]; then echo "f $(sha256sum < "$p" | cut -d' ' -f1) $q"
  else echo "o $q"; fi
done"#,
        yaml(dir)
    ))?;
    let mut lines: Vec<String> = listing.lines().map(str::to_string).collect();
    lines.sort();
    Ok(lines)
}

fn host_tree(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, lines: &mut Vec<String>) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
            let path = entry?.path();
            let relative = path.strip_prefix(root)?.display().to_string();
            let kind = fs::symlink_metadata(&path)?.file_type();
            if kind.is_symlink() {
                lines.push(format!("l {} {relative}", fs::read_link(&path)?.display()));
            } else if kind.is_dir() {
                lines.push(format!("d {relative}"));
                walk(root, &path, lines)?;
            } else if kind.is_file() {
                lines.push(format!("f {} {relative}", sha256_file(&path)?));
            } else {
                lines.push(format!("o {relative}"));
            }
        }
        Ok(())
    }
    let mut lines = Vec::new();
    walk(dir, dir, &mut lines)?;
    lines.sort();
    Ok(lines)
}

/// a. rdiff-backup of two LVM snapshots, one mounted `ro`: an `after_snapshot` command changes
/// the origin after the snapshots exist and before the backup; the backup holds the snapshot's
/// content, and a restore (rdiff-backup's own, and `ari restore` of the file as the guest names
/// it) gives it back; `ari history` lists the one backup. Nothing is left in the guest.
fn lvm_rdiff_crash_consistent(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "lvm-rdiff";
    let started = unix_now()?;
    let blob_sum = vm.run(&format!("{RDIFF_ORIGIN} && sha256sum /srv/data/blob.bin"))?;
    let blob_sum = blob_sum.split_whitespace().next().unwrap_or_default().to_string();
    let fx = Fixture::new(ctx)?;
    let job = fx.job(label, &lvm_rdiff_job(label))?;
    fx.ari_expect(ctx, &["run", &job.display().to_string()], 0)?;
    assert_mirror_is_the_snapshot(vm, &fx, label)?;
    let mirror = fx.path("store").join(label).join("srv/data");
    ensure!(read(&mirror.join("etc/app.conf"))? == "x=1\n", "etc/app.conf missing from the mirror");
    ensure!(sha256_file(&mirror.join("blob.bin"))? == blob_sum, "blob.bin differs from the guest's");
    println!("  the mirror holds the snapshots' content (state.txt before-snapshot, table.dat row 1)");

    // And what rdiff-backup restores is that content too.
    let restored = fx.path("restored");
    shell::run(
        Command::new("rdiff-backup")
            .args(["--force", "restore", "--at", "now"])
            .arg(fx.path("store").join(label))
            .arg(&restored),
    )?;
    ensure!(
        read(&restored.join("srv/data/state.txt"))? == "before-snapshot\n",
        "restored state.txt is the changed one"
    );
    ensure!(
        read(&restored.join("srv/data/db/table.dat"))? == "row 1\n",
        "restored table.dat is the changed one"
    );
    println!("  rdiff-backup restore gives the snapshots' content back");

    // ari's own view of the store: the one backup, named by its time, with its size.
    let listed = history(ctx, &fx, label)?;
    let now = unix_now()?;
    ensure!(
        listed.len() == 1
            && listed[0].name == listed[0].time.to_string()
            && (started - 5..=now + 5).contains(&listed[0].time)
            && listed[0].size.is_some(),
        "ari history lists {listed:?}, expected one backup made between {started} and {now}, with its size"
    );
    // And `ari restore` of the file, as the guest names it, is the snapshot's content.
    fx.ari_expect(ctx, &["restore", label, "/srv/data/state.txt", "--to", &fx.p("ari-restored")], 0)?;
    let restored = read(&fx.path("ari-restored/srv/data/state.txt"))?;
    ensure!(restored == "before-snapshot\n", "ari restore gives state.txt as {restored:?}");
    println!(
        "  ari history lists the backup; ari restore of /srv/data/state.txt gives the snapshot's content"
    );
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)
}

/// The LVM+rdiff job of (a): both volumes, the db one `ro`, and an `after_snapshot` command in
/// the guest that first proves the db snapshot is mounted read-only (mount_options reached
/// mount), then changes both origins: only the snapshots may reach the backup. Before it runs,
/// the origins hold `RDIFF_ORIGIN`.
fn lvm_rdiff_job(label: &str) -> String {
    lvm_job(
        label,
        "ro",
        &format!(
            "include: [/srv/data]\nafter_snapshot:\n  - command: {}\n    host: 127.0.0.1\n",
            yaml(&format!(
                "findmnt -n -o OPTIONS {MOUNT_ROOT}/{label}/srv/data/db | grep -qw ro && echo changed-after-snapshot > /srv/data/state.txt && echo 'row 2' > /srv/data/db/table.dat && sync"
            ))
        ),
    )
}

/// What the origins hold before `lvm_rdiff_job` runs.
const RDIFF_ORIGIN: &str =
    "echo before-snapshot > /srv/data/state.txt && echo 'row 1' > /srv/data/db/table.dat && sync";

/// After a run of `lvm_rdiff_job`: the origins were changed by its `after_snapshot` command,
/// and the mirror holds what they held before (`RDIFF_ORIGIN`), the snapshots' content.
fn assert_mirror_is_the_snapshot(vm: &Vm, fx: &Fixture, label: &str) -> Result<()> {
    let origin = vm.run("cat /srv/data/state.txt /srv/data/db/table.dat")?;
    ensure!(
        origin == "changed-after-snapshot\nrow 2\n",
        "after_snapshot did not change the origin: {origin:?}"
    );
    let mirror = fx.path("store").join(label).join("srv/data");
    ensure!(
        read(&mirror.join("state.txt"))? == "before-snapshot\n",
        "the mirror holds the changed state.txt"
    );
    ensure!(read(&mirror.join("db/table.dat"))? == "row 1\n", "the mirror holds the changed db/table.dat");
    Ok(())
}

/// b. A `mount` that fails (an option ext4 refuses), a mount option ari refuses before anything
/// runs, a directory or a symlink another user planted where the mount root would be (refused,
/// nothing made in it or through it), and a backup that fails (the store is a file): each exits
/// 1 (2 for the option) and leaves no snapshot, no mount and no mount directory.
fn lvm_failures_leave_nothing(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let fx = Fixture::new(ctx)?;

    let label = "lvm-badmount";
    // An option ari passes (XFS's nouuid) that ext4's mount refuses: the second mount fails.
    let job = fx.job(label, &lvm_job(label, "ro,nouuid", "include: [/srv/data]\n"))?;
    let stderr = fx.ari_expect(ctx, &["run", &job.display().to_string()], 1)?;
    ensure!(stderr.contains("snapshot step mount"), "the error does not name the mount: {stderr}");
    println!("  mount option ext4 refuses: exit 1, the error names the mount");
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)?;

    // An option that does more than restrict the mount never reaches the guest.
    let job = fx.job(label, &lvm_job(label, "ro,loop", "include: [/srv/data]\n"))?;
    let stderr = fx.ari_expect(ctx, &["run", &job.display().to_string()], 2)?;
    ensure!(stderr.contains("holds `loop`"), "the error does not name the option: {stderr}");
    println!("  mount option loop: exit 2 before anything ran");
    assert_clean(vm, label)?;

    // Another user's directory where the root would be, in the world-writable /tmp (they could
    // swap what ari makes in it for a symlink): refused by the proof of the path before ari
    // makes its directory in it; nothing is mounted.
    let label = "lvm-planted";
    let planted = "/tmp/ari-vm-planted";
    let job = fx.job(
        label,
        &lvm_job(label, "ro", &format!("include: [/srv/data]\nsnapshot_mount_root: {planted}\n")),
    )?;
    vm.run(&format!("setpriv --reuid=65534 --regid=65534 --clear-groups mkdir -m 0777 {planted}"))?;
    let result = fx.ari_expect(ctx, &["run", &job.display().to_string()], 1);
    let made = vm.run(&format!("if [ -e {planted}/{label} ]; then echo made; fi; rmdir {planted}"))?;
    let stderr = result?;
    ensure!(
        stderr.contains(&format!(
            "snapshot step mkdir {planted}/{label} failed: refused: `find -P / /tmp {planted}"
        )),
        "the planted directory was not refused by the proof: {stderr}"
    );
    ensure!(made.trim().is_empty(), "ari made its directory in the other user's {planted}");
    println!("  another user's directory on the way: exit 1, refused by the proof, nothing made in it");
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)?;

    // Their symlink there instead: Debian's fs.protected_symlinks already keeps root from
    // following it (`mkdir -p` fails with EACCES), and where that is off, the proof refuses it
    // (the host tests). Either way nothing is made through it.
    vm.run(&format!("setpriv --reuid=65534 --regid=65534 --clear-groups ln -s /etc {planted}"))?;
    let result = fx.ari_expect(ctx, &["run", &job.display().to_string()], 1);
    let through = vm.run(&format!("if [ -e /etc/{label} ]; then echo made; fi; rm -f {planted}"))?;
    let stderr = result?;
    ensure!(
        stderr.contains(&format!("snapshot step mkdir {planted} failed"))
            || stderr.contains(&format!("snapshot step mkdir {planted}/{label} failed: refused: `find -P ")),
        "the planted symlink was not refused: {stderr}"
    );
    ensure!(through.trim().is_empty(), "ari made /etc/{label} through the planted symlink");
    println!("  another user's symlink on the way: exit 1, nothing made through it");
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)?;

    let label = "lvm-badstore";
    // The store exists (ari checks that before anything runs), but the job's backup there is a
    // file, which rdiff-backup can only fail on, with the snapshot mounted.
    let store = fx.path("store-with-a-file");
    fs::create_dir_all(&store)?;
    fs::write(store.join(label), "not a directory\n")?;
    let job = fx.job(
        label,
        &lvm_job(
            label,
            "ro",
            &format!("include: [/srv/data]\nbackup_store_path: {}\n", yaml(&store.display().to_string())),
        ),
    )?;
    let stderr = fx.ari_expect(ctx, &["run", &job.display().to_string()], 1)?;
    ensure!(stderr.contains("rdiff-backup"), "the error does not name rdiff-backup: {stderr}");
    println!("  backup into a file: exit 1, the error names rdiff-backup");
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)
}

/// The snapshot names of `dataset` and its children, one per line.
fn zfs_snapshots(vm: &Vm, dataset: &str) -> Result<Vec<String>> {
    Ok(vm
        .run(&format!("zfs list -H -t snapshot -o name -r {dataset}"))?
        .lines()
        .map(str::to_string)
        .collect())
}

/// Makes snapshots with creation times in the past, by setting the guest's clock back for each
/// (`days` old, snapshot name), then puts the clock right again whatever happened.
fn old_snapshots(vm: &Vm, snapshots: &[(u64, &str)]) -> Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let script: String = snapshots
        .iter()
        .map(|(days, name)| format!("date -s @{} >/dev/null && zfs snapshot {name}\n", now - days * 86400))
        .collect();
    let made = vm.run(&format!("set -e\n{script}"));
    vm.set_clock()?;
    made?;
    // Proof that the trick worked: the creation times ZFS recorded are really that old.
    for (days, name) in snapshots {
        let creation: u64 = vm.run(&format!("zfs get -H -p -o value creation {name}"))?.trim().parse()?;
        let age = now.saturating_sub(creation);
        ensure!(age + 60 >= days * 86400, "{name} is {age} s old, expected {days} days");
    }
    Ok(())
}

/// c. The zfs backend over LVM snapshots, everything in the guest: rsync from the snapshot
/// mounts into the dataset's directory, a prefixed `zfs snapshot`, and expiry against the real
/// creation times of snapshots made days ago (by setting the guest's clock back): old prefixed
/// ones go; one without the prefix and one of a child dataset stay; `zfs_keep_min` keeps the
/// newest however old. Then `ari history` and `ari restore` against the real snapshots
/// (`zfs_history_and_restore`).
fn zfs_over_lvm(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "zfs-lvm";
    let started = unix_now()?;
    let dataset = "tank/backups/zfs-lvm";
    let blob_sum = vm.run(&format!(
        "set -e\nzfs create {dataset}\nzfs create -o canmount=off {dataset}/child\necho zfs-run-1 > /srv/data/state.txt\necho 'row 1' > /srv/data/db/table.dat\nsync\nsha256sum /srv/data/blob.bin"
    ))?;
    let blob_sum = blob_sum.split_whitespace().next().unwrap_or_default().to_string();
    old_snapshots(
        vm,
        &[
            (5, &format!("{dataset}@ari-backup-old-5d")),
            (5, &format!("{dataset}@manual-old")),
            (5, &format!("{dataset}/child@ari-backup-child-old")),
            (3, &format!("{dataset}@ari-backup-old-3d")),
        ],
    )?;
    let fx = Fixture::new(ctx)?;
    let job_text = |format: &str, extra: &str| zfs_lvm_job(label, dataset, format, extra);

    // First run: the default zfs_keep_min (1) keeps only the new snapshot among the old ones.
    let job = fx.job(label, &job_text("%Y-%m-%d--%H%M%S-first", ""))?;
    fx.ari_expect(ctx, &["run", &job.display().to_string()], 0)?;
    let arrived = vm.run(
        "cat /tank/backups/zfs-lvm/srv/data/state.txt /tank/backups/zfs-lvm/srv/data/db/table.dat && sha256sum /tank/backups/zfs-lvm/srv/data/blob.bin",
    )?;
    ensure!(
        arrived.starts_with("zfs-run-1\nrow 1\n") && arrived.contains(&blob_sum),
        "the files did not arrive in the dataset: {arrived:?}"
    );
    let snapshots = zfs_snapshots(vm, dataset)?;
    let first: Vec<&String> = snapshots
        .iter()
        .filter(|s| s.starts_with(&format!("{dataset}@ari-backup-")) && s.ends_with("-first"))
        .collect();
    ensure!(first.len() == 1, "expected one new prefixed snapshot, got {snapshots:?}");
    let first = first[0].clone();
    let in_snapshot = vm.run(&format!(
        "cat /tank/backups/zfs-lvm/.zfs/snapshot/{}/srv/data/state.txt",
        first.split_once('@').map(|(_, s)| s).unwrap_or_default()
    ))?;
    ensure!(in_snapshot == "zfs-run-1\n", "the new snapshot does not hold the backup: {in_snapshot:?}");
    let expected =
        [format!("{dataset}@manual-old"), first.clone(), format!("{dataset}/child@ari-backup-child-old")];
    ensure!(
        same_set(&snapshots, &expected),
        "after expiry with snapshot_expiration_days 1 the snapshots are {snapshots:?}, expected {expected:?}"
    );
    println!("  files arrived; {first} made; old prefixed snapshots destroyed; manual and child kept");

    // Second run with zfs_keep_min 3: of four prefixed snapshots older than a day plus the new
    // one, the newest three stay although `old-4d` is old enough to go.
    old_snapshots(
        vm,
        &[(6, &format!("{dataset}@ari-backup-old-6d")), (4, &format!("{dataset}@ari-backup-old-4d"))],
    )?;
    // What the second backup holds differs from the first in a file and in a directory (a
    // changed file and one more); `zfs_history_and_restore` tells them apart.
    vm.run("echo zfs-run-2 > /srv/data/state.txt && echo 'row 2' > /srv/data/db/table.dat && echo added > /srv/data/db/added.dat && sync")?;
    let job = fx.job(label, &job_text("%Y-%m-%d--%H%M%S-second", "zfs_keep_min: 3\n"))?;
    fx.ari_expect(ctx, &["run", &job.display().to_string()], 0)?;
    let snapshots = zfs_snapshots(vm, dataset)?;
    let second: Vec<&String> = snapshots.iter().filter(|s| s.ends_with("-second")).collect();
    ensure!(second.len() == 1, "expected one new `-second` snapshot, got {snapshots:?}");
    let expected = [
        format!("{dataset}@manual-old"),
        first.clone(),
        second[0].clone(),
        format!("{dataset}@ari-backup-old-4d"),
        format!("{dataset}/child@ari-backup-child-old"),
    ];
    ensure!(
        same_set(&snapshots, &expected),
        "with zfs_keep_min 3 the snapshots are {snapshots:?}, expected {expected:?}"
    );
    let arrived = vm.run("cat /tank/backups/zfs-lvm/srv/data/state.txt")?;
    ensure!(arrived == "zfs-run-2\n", "the second backup did not arrive: {arrived:?}");
    println!("  zfs_keep_min 3 kept old-4d with the two new ones; old-6d destroyed");
    let restores = zfs_history_and_restore(ctx, &fx, label, dataset, started, [&first, second[0]]);
    vm.run("rm -f /srv/data/db/added.dat")?;
    restores?;
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)
}

/// The zfs-over-LVM job of (c): rsync in the guest from both snapshots into `dataset`'s
/// directory (`/DATASET`, as the pool is mounted at /tank), its snapshots named with `format`,
/// expiry after a day; `extra` lines after.
fn zfs_lvm_job(label: &str, dataset: &str, format: &str, extra: &str) -> String {
    lvm_job(
        label,
        "ro",
        &format!(
            "backend: zfs\nrsync_dst: /{dataset}\nzfs_hostname: 127.0.0.1\ndataset_name: {dataset}\nsnapshot_expiration_days: 1\nzfs_snapshot_timestamp_format: {}\n{extra}",
            yaml(format)
        ),
    )
}

/// `ari history` of the zfs job lists the dataset's own snapshots (not its child's) as `zfs
/// list` does, newest first, with their creation times and sizes; `ari restore` copies a file and
/// a directory out of the newest (`0B`, the default) and an older one (`1B`, or its snapshot's
/// name) as those snapshots hold them, refuses to replace what it restored without `--force`
/// and replaces it with it, and refuses a backup the dataset does not have (`99B`).
fn zfs_history_and_restore(
    ctx: &Ctx,
    fx: &Fixture,
    label: &str,
    dataset: &str,
    started: i64,
    [first, second]: [&String; 2],
) -> Result<()> {
    let vm = ctx.vm;
    let name = |snapshot: &str| snapshot.split_once('@').map(|(_, s)| s.to_string()).unwrap_or_default();
    let (first, second) = (name(first), name(second));

    let listed = history(ctx, fx, label)?;
    let now = unix_now()?;
    let zfs: Vec<(String, i64)> = vm
        .run(&format!("zfs list -H -p -t snapshot -o name,creation -S creation -d 1 {dataset}"))?
        .lines()
        .map(|line| {
            let (snapshot, creation) = line.split_once('\t').unwrap_or((line, ""));
            Ok((name(snapshot), creation.parse().with_context(|| format!("zfs list printed {line:?}"))?))
        })
        .collect::<Result<_>>()?;
    let got: Vec<(String, i64)> = listed.iter().map(|b| (b.name.clone(), b.time)).collect();
    ensure!(got == zfs, "ari history lists {got:?}; zfs list, newest first: {zfs:?}");
    let names: Vec<&str> = listed.iter().map(|b| b.name.as_str()).collect();
    ensure!(
        names == [second.as_str(), first.as_str(), "ari-backup-old-4d", "manual-old"],
        "ari history lists {names:?}, expected the two new snapshots, old-4d and manual-old"
    );
    let day = 86_400;
    for (backup, from, to) in [
        (&listed[0], started - 60, now + 60),
        (&listed[1], started - 60, now + 60),
        (&listed[2], started - 4 * day - 600, now - 4 * day + 600),
        (&listed[3], started - 5 * day - 600, now - 5 * day + 600),
    ] {
        ensure!(
            (from..=to).contains(&backup.time),
            "{} was created at {}, expected between {from} and {to}",
            backup.name,
            backup.time
        );
    }
    ensure!(listed.iter().all(|b| b.size.is_some()), "a snapshot without its size: {listed:?}");
    println!("  ari history: {names:?}, newest first, times and sizes as zfs list has them");

    let snapshot_dir = |name: &str, path: &str| format!("/tank/backups/zfs-lvm/.zfs/snapshot/{name}{path}");
    let restore = |path: &str, at: Option<&str>, to: &str, force: bool, code: i32| {
        let mut args = vec!["restore", label, path, "--to", to];
        args.extend(at.map(|at| ["--at", at]).into_iter().flatten());
        if force {
            args.push("--force");
        }
        fx.ari_expect(ctx, &args, code)
    };
    let (to, older) = (fx.p("restored"), fx.p("restored-older"));
    restore("/srv/data/state.txt", None, &to, false, 0)?;
    ensure!(
        fx.stdout().contains(&format!("(backup {second})")),
        "ari restore does not name the newest backup {second}: {}",
        fx.stdout()
    );
    restore("/srv/data/state.txt", Some("1B"), &older, false, 0)?;
    let (newest, before) = (
        read(&fx.path("restored/srv/data/state.txt"))?,
        read(&fx.path("restored-older/srv/data/state.txt"))?,
    );
    ensure!(
        newest == "zfs-run-2\n" && before == "zfs-run-1\n",
        "ari restore gives state.txt as {newest:?} (newest) and {before:?} (1B), expected zfs-run-2 and zfs-run-1"
    );
    println!("  ari restore /srv/data/state.txt: zfs-run-2 from {second}, zfs-run-1 with --at 1B");

    // A directory, from the newest; then the older one by its snapshot's name over it, which
    // only --force may do, and which leaves the directory as that snapshot holds it.
    let db = fx.path("restored/srv/data/db");
    restore("/srv/data/db", None, &to, false, 0)?;
    let (got, held) = (host_tree(&db)?, guest_tree(vm, &snapshot_dir(&second, "/srv/data/db"))?);
    ensure!(got == held, "ari restore of /srv/data/db gives {got:?}; {second} holds {held:?}");
    ensure!(read(&db.join("added.dat"))? == "added\n", "the newest /srv/data/db has no added.dat: {got:?}");
    let stderr = restore("/srv/data/db", Some(&first), &to, false, 2)?;
    ensure!(stderr.contains("exists"), "the refusal does not say the target exists: {stderr}");
    ensure!(host_tree(&db)? == got, "a refused restore changed {}", db.display());
    restore("/srv/data/db", Some(&first), &to, true, 0)?;
    let (got, held) = (host_tree(&db)?, guest_tree(vm, &snapshot_dir(&first, "/srv/data/db"))?);
    ensure!(got == held, "ari restore --force of /srv/data/db at {first} gives {got:?}; it holds {held:?}");
    ensure!(
        read(&db.join("table.dat"))? == "row 1\n" && !db.join("added.dat").exists(),
        "after --force, /srv/data/db is not as {first} holds it: {got:?}"
    );
    println!("  ari restore /srv/data/db: as {second} holds it; over it without --force exit 2, with --force as {first} holds it");

    let none = fx.p("restored-99B");
    let stderr = restore("/srv/data/state.txt", Some("99B"), &none, false, 2)?;
    ensure!(
        stderr.contains("holds 4 backups"),
        "--at 99B is refused without naming what the store holds: {stderr}"
    );
    ensure!(!Path::new(&none).exists(), "--at 99B made {none}");
    println!("  --at 99B: exit 2, nothing written");
    Ok(())
}

fn same_set(got: &[String], expected: &[String]) -> bool {
    let mut got = got.to_vec();
    let mut expected = expected.to_vec();
    got.sort();
    expected.sort();
    got == expected
}

/// d. The crash ledger against real snapshots: ari is SIGKILLed while its snapshots are
/// mounted (an `after_snapshot` command sleeps); they are left behind, as is the ledger; then
/// `ari recover` removes the real mounts and snapshots and the ledger.
fn crash_ledger(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "crash";
    let fx = Fixture::new(ctx)?;
    // The command records its PID so that the scenario can see it end after the crash; `exec`
    // makes that PID the sleep's.
    let job = fx.job(
        label,
        &lvm_job(
            label,
            "ro",
            "include: [/srv/data]\nafter_snapshot:\n  - command: \"echo $$ > /run/ari-vm-sleep.pid && exec sleep 120\"\n    host: 127.0.0.1\n",
        ),
    )?;
    let mut ari = fx.spawn_ari(ctx, &["run", &job.display().to_string()])?;
    let waited = wait_until_sleeping(ctx, &fx, &mut ari);
    // SIGKILL: ari gets no chance to clean up, as in an OOM kill or a power cut.
    ari.kill().ok();
    ari.wait().ok();
    waited?;
    println!("  ari SIGKILLed while the snapshots were mounted");

    let left = vm.run(&format!(
        "lvs --noheadings -o lv_name vg0 | xargs; findmnt -rn -o TARGET | grep '^{MOUNT_ROOT}/{label}' | xargs"
    ))?;
    let result = (|| {
        ensure!(
            left.lines().next() == Some("data data-ari_backup db db-ari_backup"),
            "the snapshots were not left behind: {left:?}"
        );
        ensure!(
            left.lines().nth(1)
                == Some(&format!("{MOUNT_ROOT}/{label}/srv/data {MOUNT_ROOT}/{label}/srv/data/db")),
            "the mounts were not left behind: {left:?}"
        );
        let ledger = fx.path("state/ledger").join(format!("{label}.json"));
        ensure!(ledger.is_file(), "no ledger at {}", ledger.display());
        println!("  left behind as expected: two snapshots, two mounts, {}", ledger.display());
        Ok(ledger)
    })();
    // The remote command does not outlive ari: its ssh died with ari (PR_SET_PDEATHSIG), and
    // ari's remote wrapper stopped it once the session was gone.
    let gone = (0..60).any(|_| {
        let alive = vm.run_status("kill -0 $(cat /run/ari-vm-sleep.pid) 2>/dev/null");
        if alive {
            std::thread::sleep(Duration::from_millis(500));
        }
        !alive
    });
    if !gone {
        vm.run("kill $(cat /run/ari-vm-sleep.pid); rm -f /run/ari-vm-sleep.pid")?;
        bail!("the after_snapshot command outlived the SIGKILLed ari by 30 s in the guest");
    }
    vm.run("rm -f /run/ari-vm-sleep.pid")?;
    println!("  the after_snapshot command stopped in the guest once ari was gone");
    let ledger = result?;

    fx.ari_expect(ctx, &["recover", label], 0)?;
    ensure!(!ledger.exists(), "ari recover left the ledger {}", ledger.display());
    println!("  ari recover: exit 0, ledger gone");
    assert_clean(vm, label)
}

/// Polls the guest until the `after_snapshot` command runs (its PID file exists, so every
/// snapshot is mounted), failing if ari exits first or nothing happens within the bound.
fn wait_until_sleeping(ctx: &Ctx, fx: &Fixture, ari: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = ari.try_wait()? {
            bail!("ari exited ({status}) before its after_snapshot command ran; stderr:\n{}", fx.stderr());
        }
        if ctx.vm.run_status(&format!(
            "test -s /run/ari-vm-sleep.pid && findmnt -rn {MOUNT_ROOT}/crash/srv/data/db"
        )) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the snapshots were not mounted within 120 s; stderr:\n{}", fx.stderr());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// h. The Debian package in the guest, as an admin installs it: `dpkg -i`, the timer installed
/// but not enabled, `/var/lib/ari-backup` 0700; a job of the guest's own LVM volume in
/// `/etc/ari-backup/jobs.d`, run by `systemctl start ari-backup.service` (the installed unit,
/// `/usr/bin/ari run-all`); its lines in the unit's journal, the backup in the store, nothing
/// left; then `dpkg --purge`.
fn package_through_systemd(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let deb = ctx.deb.context("the Debian package was not built for this run")?;
    let mut copy = vm.ssh("cat > /root/ari.deb");
    copy.stdin(fs::File::open(deb).with_context(|| format!("open {}", deb.display()))?);
    ensure!(copy.status()?.success(), "could not copy {} into the guest", deb.display());
    let installed = vm.run(
        "dpkg -i /root/ari.deb >/dev/null && ari --version && stat -c %a /var/lib/ari-backup && (systemctl is-enabled ari-backup.timer || true)",
    )?;
    ensure!(
        installed.contains(&format!("ari {}", env!("CARGO_PKG_VERSION")))
            && installed.lines().any(|l| l == "700")
            && installed.lines().any(|l| l == "disabled"),
        "after dpkg -i: {installed:?} (expected the version, /var/lib/ari-backup 700, the timer disabled)"
    );
    println!("  installed: /usr/bin/ari, /var/lib/ari-backup 0700, the timer not enabled");
    let result = (|| {
        vm.run(
            "mkdir -p /srv/store && printf 'backup_store_path: /srv/store\n' > /etc/ari-backup/ari-backup.conf.yaml && \
             printf 'label: local\nsnapshot: lvm\nsnapshot_size: 100M\nvolumes: [{name: vg0/data, mount_point: /srv/data}]\ninclude: [/srv/data/etc]\n' > /etc/ari-backup/jobs.d/local.yaml",
        )?;
        let started = vm.run("systemctl start ari-backup.service; echo \"exit=$?\"; systemctl show -p Result --value ari-backup.service")?;
        let journal = vm.run("journalctl -u ari-backup.service --no-pager -o cat")?;
        ensure!(
            started.contains("exit=0") && started.lines().any(|l| l == "success"),
            "systemctl start ari-backup.service: {started:?}; journal:\n{journal}"
        );
        ensure!(
            journal.lines().any(|l| l.contains("(local) [INFO]") && l.contains("job succeeded")),
            "the unit's journal has no line of the job:\n{journal}"
        );
        let backup = vm.run("cat /srv/store/local/srv/data/etc/app.conf")?;
        ensure!(backup == "x=1\n", "the backup holds {backup:?}");
        println!("  systemctl start ari-backup.service: success, the job's lines in its journal, the backup in the store");
        assert_clean(vm, "local")
    })();
    vm.run(
        "dpkg --purge ari >/dev/null; rm -rf /srv/store /var/lib/ari-backup /etc/ari-backup /root/ari.deb",
    )?;
    result
}

/// A TCP relay for ssh's `ProxyCommand` (`python3 RELAY HOST PORT BYTES_PER_SECOND`): what the
/// guest sends reaches ssh no faster than the rate, so that a backup of 64 MiB (160 s at 400 kB/s)
/// is still transferring when `job_timeout` (100 s: the snapshots take half a minute under TCG)
/// ends the job.
const RELAY: &str = r#"import os, socket, sys, threading, time
host, port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port))
def up():
    while True:
        data = os.read(0, 65536)
        if not data:
            s.shutdown(socket.SHUT_WR)
            return
        s.sendall(data)
threading.Thread(target=up, daemon=True).start()
while True:
    data = s.recv(16384)
    if not data:
        break
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
    time.sleep(len(data) / rate)
"#;

/// The big file both timeout scenarios send, written into the origin before the snapshot.
const BIG_FILE: &str = "head -c 67108864 /dev/urandom > /srv/data/big.bin && sync";

/// What a job killed at `job_timeout` while its backup read from the snapshots must leave: exit
/// 1 (not 3: every cleanup step succeeded), the error naming the deadline, no retry of an
/// unmount (the remote reader was stopped with the job, so the mount was not busy), no process
/// of the backup left in the guest, no ledger, a clean guest.
fn assert_stopped_mid_transfer(ctx: &Ctx, fx: &Fixture, label: &str, job: &Path, reader: &str) -> Result<()> {
    let started = Instant::now();
    let stderr = fx.ari_expect(ctx, &["run", &job.display().to_string(), "--debug"], 1)?;
    println!("  stopped after {:.1} s", started.elapsed().as_secs_f64());
    ensure!(
        stderr.lines().any(|l| l.contains("[ERROR]") && l.contains("main step") && l.contains("job_timeout")),
        "the backup step was not the one job_timeout stopped: {stderr}"
    );
    ensure!(
        stderr.contains("stopping process group"),
        "ari did not stop the remote command's process group on the guest: {stderr}"
    );
    if let Some(retry) = stderr.lines().find(|l| l.contains("failed, retry")) {
        bail!("a cleanup step needed a retry (the snapshot was still busy?): {retry}\n{stderr}");
    }
    let left = vm_processes(ctx.vm, reader)?;
    ensure!(left.is_empty(), "processes of the backup are left in the guest: {left}");
    println!("  exit 1 at job_timeout, unmounted on the first try, no `{reader}` left in the guest");
    assert_no_ledger(fx, label)?;
    assert_clean(ctx.vm, label)?;
    ctx.vm.run("rm -f /srv/data/big.bin")?;
    Ok(())
}

/// The processes in the guest whose command line holds `pattern`, as `ps` shows them.
fn vm_processes(vm: &Vm, pattern: &str) -> Result<String> {
    vm.run(&format!("ps -eo pid,args | grep -F -- {} | grep -v grep || true", yaml(pattern)))
}

/// f. An LVM+rdiff job whose backup of two snapshots is still transferring (through a relay at
/// 400 kB/s) when `job_timeout` ends it: rdiff-backup's server in the guest is stopped with the
/// job, so both snapshots unmount on the first try.
fn job_timeout_lvm_rdiff(ctx: &Ctx) -> Result<()> {
    let label = "lvm-rdiff-timeout";
    ctx.vm.run(BIG_FILE)?;
    let relay = std::env::temp_dir().join(format!("ari-vm-relay-{}.py", std::process::id()));
    fs::write(&relay, RELAY)?;
    let throttle = format!("ProxyCommand=python3 {} %h %p 400000", relay.display());
    let fx = Fixture::with_ssh_options(ctx, &["-o".to_string(), throttle])?;
    let job = fx.job(label, &lvm_job(label, "ro", "include: [/srv/data]\njob_timeout: 100s\n"))?;
    let result = assert_stopped_mid_transfer(ctx, &fx, label, &job, "rdiff-backup server");
    let _ = fs::remove_file(&relay);
    result
}

/// g. An LVM+rsync job of the ZFS backend (rsync runs in the guest, reading the snapshots) still
/// transferring (`--bwlimit`) when `job_timeout` ends it: the rsync processes stop with the job,
/// so both snapshots unmount on the first try, and no ZFS snapshot is taken.
fn job_timeout_lvm_zfs(ctx: &Ctx) -> Result<()> {
    let label = "zfs-lvm-timeout";
    let dataset = "tank/backups/zfs-lvm";
    ctx.vm.run(&format!("{BIG_FILE} && zfs create {dataset}"))?;
    let fx = Fixture::new(ctx)?;
    let job = fx.job(
        label,
        &lvm_job(
            label,
            "ro",
            &format!(
                "backend: zfs\nrsync_dst: /tank/backups/zfs-lvm\nzfs_hostname: 127.0.0.1\ndataset_name: {dataset}\nsnapshot_expiration_days: 1\nrsync_options: [--archive, --bwlimit=400]\njob_timeout: 100s\n"
            ),
        ),
    )?;
    assert_stopped_mid_transfer(ctx, &fx, label, &job, "--bwlimit=400")?;
    let snapshots = zfs_snapshots(ctx.vm, dataset)?;
    ensure!(snapshots.is_empty(), "a snapshot was taken of an unfinished transfer: {snapshots:?}");
    Ok(())
}

/// The comment of the filter scenario's own key, by which its line in root's authorized_keys
/// is found (plain, or as `ari authorize --install` rewrote it) and removed.
const FILTER_KEY_COMMENT: &str = "ari-vm-filter-scenario";

/// Where the filter scenario installs the filter in the guest (`ssh_filter_path`).
const FILTER_PATH: &str = "/usr/local/lib/ari-backup/ssh-filter";

/// The guest script that removes what the filter scenario adds there: its key's line (the
/// harness's own line stays), the filter and what the installer may have left beside them.
fn remove_filter() -> String {
    format!(
        "sed -i '/ {FILTER_KEY_COMMENT}$/d' /root/.ssh/authorized_keys\n\
         rm -f {FILTER_PATH} {FILTER_PATH}.ari-new /root/.ssh/authorized_keys.ari-new\n\
         rmdir {} 2>/dev/null || true\n",
        Path::new(FILTER_PATH).parent().map(|d| d.display().to_string()).unwrap_or_default()
    )
}

/// The guest's ssh options (`Vm::ssh_options`, pairs of words) with `key` as the only identity
/// instead of the harness's, and without the harness master's ControlPath: a connection shared
/// with that master logged in with the harness's key, which no filter restricts.
fn only_key(options: &[String], key: &str) -> Vec<String> {
    let mut kept: Vec<String> = ["-i", key, "-o", "IdentitiesOnly=yes"].map(String::from).into();
    for pair in options.chunks(2) {
        match pair {
            [flag, _] if flag == "-i" => {}
            [flag, value] if flag == "-o" && value.to_ascii_lowercase().starts_with("controlpath=") => {}
            _ => kept.extend_from_slice(pair),
        }
    }
    kept
}

/// A fresh ed25519 key in the fixture (`id_ed25519`, its comment `comment`): the private key's
/// path and the public key's line.
fn fresh_key(fx: &Fixture, comment: &str) -> Result<(String, String)> {
    let key = fx.p("id_ed25519");
    shell::run(
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &key]),
    )?;
    let public = read(&fx.path("id_ed25519.pub"))?.trim().to_string();
    Ok((key, public))
}

/// The jobs of the filter scenarios: the LVM+rdiff job of (a) and the zfs-over-LVM job of (c),
/// whose dataset holds a snapshot five days old for its expiry.
struct FilteredJobs {
    rdiff: &'static str,
    zfs: &'static str,
    dataset: &'static str,
    /// The old snapshot, which the zfs job's run must expire.
    old: String,
    rdiff_job: String,
    zfs_job: String,
    /// A zfs job whose source is the backup server itself: its rsync pushes into the guest's
    /// dataset through the filter, which hands the server to the guest's rrsync (3.2.7).
    pushed: &'static str,
    pushed_job: String,
}

/// The dataset the pushed job writes into, and a file its source holds.
const PUSHED_DATASET: &str = "tank/backups/pushed";
const PUSHED_FILE: (&str, &str) = ("pushed-src/etc/pushed.conf", "pushed through rrsync\n");

impl FilteredJobs {
    /// Prepares the guest for them (the dataset, the origins' content, the old snapshot) and
    /// writes their files into the fixture.
    fn new(vm: &Vm, fx: &Fixture) -> Result<FilteredJobs> {
        let (rdiff, zfs, dataset) = ("lvm-rdiff-filtered", "zfs-lvm-filtered", "tank/backups/zfs-lvm");
        vm.run(&format!("zfs create {dataset} && {RDIFF_ORIGIN}"))?;
        let old = format!("{dataset}@ari-backup-old-5d");
        old_snapshots(vm, &[(5, &old)])?;
        let rdiff_job = fx.job(rdiff, &lvm_rdiff_job(rdiff))?.display().to_string();
        let zfs_job = fx.job(zfs, &zfs_lvm_job(zfs, dataset, "%Y-%m-%d--%H%M%S", ""))?.display().to_string();
        let pushed = "zfs-pushed-filtered";
        vm.run(&format!("zfs create {PUSHED_DATASET}"))?;
        let (file, content) = PUSHED_FILE;
        std::fs::create_dir_all(fx.path(file).parent().context("the pushed file's directory")?)?;
        std::fs::write(fx.path(file), content)?;
        let pushed_job = fx
            .job(
                pushed,
                &format!(
                    "label: {pushed}\nbackend: zfs\ninclude: [{}]\nrsync_dst: 127.0.0.1:/{PUSHED_DATASET}\nzfs_hostname: 127.0.0.1\ndataset_name: {PUSHED_DATASET}\nsnapshot_expiration_days: 1\n",
                    fx.p("pushed-src")
                ),
            )?
            .display()
            .to_string();
        Ok(FilteredJobs { rdiff, zfs, dataset, old, rdiff_job, zfs_job, pushed, pushed_job })
    }

    /// `ari authorize --host 127.0.0.1 --key KEY.pub --json`, which must name one host with both
    /// jobs; that host's part of the JSON, its allowed commands counted.
    fn authorize_json(&self, ctx: &Ctx, fx: &Fixture, authorize: &[&str]) -> Result<serde_json::Value> {
        fx.ari_expect(ctx, &[authorize, &["--json"]].concat(), 0)?;
        let json: serde_json::Value = serde_json::from_str(&fx.stdout())
            .with_context(|| format!("ari authorize --json printed {:?}", fx.stdout()))?;
        let host = json["hosts"][0].clone();
        ensure!(
            json["hosts"].as_array().map_or(0, Vec::len) == 1
                && host["jobs"] == serde_json::json!([self.rdiff, self.zfs, self.pushed]),
            "ari authorize --json: expected one host with the three jobs: {json}"
        );
        println!(
            "  the filter lets {} commands through: {} exact lines, {} patterns",
            allowed(&host, "allowed") + allowed(&host, "allowed_patterns"),
            allowed(&host, "allowed"),
            allowed(&host, "allowed_patterns")
        );
        Ok(host)
    }

    /// Both jobs through the filter against the real tools: the rdiff mirror holds the
    /// snapshots, the zfs job's files arrive, its new snapshot is made and the old one expired,
    /// `ari history` lists the new one, and `ari check --connect` finds the filter up to date.
    /// Each runs with `--debug`, whose log holds every remote command's output, in which
    /// neither the filter nor sudo may have refused anything (`refused_in`).
    fn run(&self, ctx: &Ctx, fx: &Fixture) -> Result<()> {
        let (vm, dataset, old) = (ctx.vm, self.dataset, &self.old);
        let unrefused = |args: &[&str]| -> Result<()> {
            let stderr = fx.ari_expect(ctx, args, 0)?;
            let refused = refused_in(&stderr);
            ensure!(
                refused.is_empty(),
                "`ari {}` was refused commands:\n{}",
                args.join(" "),
                refused.join("\n")
            );
            Ok(())
        };
        unrefused(&["run", &self.rdiff_job, "--debug"])?;
        assert_mirror_is_the_snapshot(vm, fx, self.rdiff)?;
        unrefused(&["run", &self.zfs_job, "--debug"])?;
        let arrived = vm.run(&format!("cat /{dataset}/srv/data/state.txt"))?;
        let snapshots = zfs_snapshots(vm, dataset)?;
        ensure!(
            arrived == "changed-after-snapshot\n"
                && snapshots.len() == 1
                && snapshots[0].starts_with(&format!("{dataset}@ari-backup-")),
            "the zfs job through the filter: state.txt {arrived:?}, snapshots {snapshots:?} (expected one new, {old} expired)"
        );
        ensure!(
            history(ctx, fx, self.zfs)?.len() == 1,
            "ari history of {} does not list its one snapshot",
            self.zfs
        );
        println!("  both jobs ran through the filter: the rdiff mirror holds the snapshots, {} made, {old} expired; ari history lists it", snapshots[0]);
        unrefused(&["run", &self.pushed_job, "--debug"])?;
        let (file, content) = PUSHED_FILE;
        let arrived = vm.run(&format!("cat /{PUSHED_DATASET}{}", fx.p(file)))?;
        let snapshots = zfs_snapshots(vm, PUSHED_DATASET)?;
        ensure!(
            arrived == content && snapshots.len() == 1,
            "the pushed job through the filter and rrsync: {file} {arrived:?}, snapshots {snapshots:?}"
        );
        println!(
            "  the pushed job's rsync ran through the filter and the guest's rrsync: {file} arrived, {} made",
            snapshots[0]
        );
        unrefused(&["check", "--connect", "--debug"])?;
        ensure!(fx.stdout().contains("ok: ssh filter"), "ari check --connect printed {:?}", fx.stdout());
        println!("  ari check --connect: ok: ssh filter; no refusal in the --debug output of the three");
        Ok(())
    }

    /// Neither job left a ledger, a snapshot or a mount.
    fn assert_clean(&self, vm: &Vm, fx: &Fixture) -> Result<()> {
        for label in [self.rdiff, self.zfs, self.pushed] {
            assert_no_ledger(fx, label)?;
            assert_clean(vm, label)?;
        }
        Ok(())
    }
}

/// Options of ari-zfs's allow-list (ari-zfs/src/rrsync.rs) that go together, those the client
/// sends to the server as long options among them.
const RSYNC_OPTIONS_BATCH: &[&str] = &[
    "-aHAXxSUEmOJ",
    "--delete-delay",
    "--numeric-ids",
    "--partial",
    "--mkpath",
    "--fsync",
    "--open-noatime",
    "--preallocate",
    "--munge-links",
    "--safe-links",
    "--size-only",
    "--force",
    "--ignore-errors",
    "--delete-excluded",
    "--super",
    "--no-implied-dirs",
    "--itemize-changes",
    "--compress-level=3",
    "--bwlimit=100M",
    "--timeout=30",
    "--max-delete=1000",
    "--max-size=1G",
    "--min-size=1",
    "--modify-window=1",
    "--block-size=4096",
    "--skip-compress=gz",
    "--checksum-choice=md5",
    "--info=stats2",
];

/// The filtered key (`options`, as `user`, whose home is `home`) used by an attacker's own rsync
/// against the pushed job's destination, with server options that write outside it on a plain
/// rsync server: a log file in the login's home (`.bashrc`, which bash runs at every login), a
/// backup dir and a log file above it, and a read (`--sender`). The guest's rrsync (3.2.7)
/// keeps the log file inside the destination and refuses the rest; the home's `.bashrc` and
/// what is above the destination stay as they were, and nothing is read out.
fn assert_rsync_is_confined(vm: &Vm, fx: &Fixture, options: &[String], user: &str, home: &str) -> Result<()> {
    let before = vm.run(&format!("touch {home}/.bashrc; sha256sum {home}/.bashrc; ls -a /tank/backups"))?;
    let ssh = ["ssh", "-F", "/dev/null"]
        .into_iter()
        .map(String::from)
        .chain(options.iter().cloned())
        .chain(["-o", "ControlPath=none", "-o", "BatchMode=yes", "-p"].map(String::from))
        .chain([vm.port.to_string()])
        .map(|word| crate::shell::quote(std::ffi::OsStr::new(&word)))
        .collect::<Vec<_>>()
        .join(" ");
    let dst = format!("{user}@127.0.0.1:/{PUSHED_DATASET}");
    let stolen = fx.path("stolen");
    std::fs::create_dir_all(&stolen)?;
    let src = format!("{}/", fx.p("pushed-src"));
    let rsync_path: &[&str] = if user == "root" { &[] } else { &["--rsync-path=sudo -n -- rsync"] };
    // First what a job may give (rsync_options): the guest's rrsync 3.2.7 takes the options that
    // the client sends as long ones, where its tables differ from 3.5.0's, all at once.
    let out = Command::new("rsync")
        .args(["-e", &ssh])
        .args(rsync_path)
        .args(RSYNC_OPTIONS_BATCH)
        .args([src.as_str(), dst.as_str()])
        .stdin(Stdio::null())
        .output()
        .context("start rsync")?;
    ensure!(
        out.status.success(),
        "rsync with options a job may give, through the filter to the guest's rrsync: {}, {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "  rsync with {} of the options a job may give: through the filter and rrsync 3.2.7",
        RSYNC_OPTIONS_BATCH.len()
    );
    let attacks: [&[&str]; 4] = [
        &["-a", "-M--log-file=.bashrc", &src, &dst],
        &["-a", "-M--log-file=../x", &src, &dst],
        &["-ab", "--backup-dir=..", &src, &dst],
        &["-a", &format!("{user}@127.0.0.1:/etc/hostname"), &format!("{}/", stolen.display())],
    ];
    for args in attacks {
        let out = Command::new("rsync")
            .args(["-e", &ssh])
            .args(rsync_path)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("start rsync")?;
        println!(
            "  rsync {}: exit {:?}: {}",
            args[..args.len() - 2].join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or_default()
        );
    }
    let after = vm.run(&format!("sha256sum {home}/.bashrc; ls -a /tank/backups"))?;
    let stolen_any = std::fs::read_dir(&stolen)?.next().is_some();
    let confined = vm.run(&format!("test -f /{PUSHED_DATASET}/.bashrc && echo inside || echo absent"))?;
    ensure!(
        before == after && !stolen_any,
        "rsync with the filtered key reached outside /{PUSHED_DATASET}: before {before:?}, after {after:?}, read out: {stolen_any}"
    );
    println!("  rsync's server options with the filtered key: {home}/.bashrc and /tank/backups unchanged, nothing read out; the log file is {} the destination", confined.trim());
    Ok(())
}

/// The lines of an `ari --debug` log where a remote command's output says the filter or sudo
/// refused it. sudo logs nothing when it refuses `sudo -n` (it stops at "a password is
/// required", before its log), and a refused probe (`mountpoint -q`, `test -d`) exits 1 as a
/// "no" would, so this output is the only place such a refusal shows.
fn refused_in(log: &str) -> Vec<&str> {
    // Their stderr only: `ari check --connect` reads the filter back, whose text holds its message.
    log.lines().filter(|l| l.contains("stderr: sudo:") || l.contains("stderr: ari-filter: refused")).collect()
}

/// How many entries the list `key` of `ari authorize --json`'s host has.
fn allowed(host: &serde_json::Value, key: &str) -> usize {
    host[key].as_array().map_or(0, Vec::len)
}

/// The guest's journal since `since` (epoch seconds) as journalctl's `selector` chooses it,
/// messages only.
fn journal(vm: &Vm, since: &str, selector: &str) -> Result<String> {
    vm.run(&format!("journalctl -q --no-pager -o cat {selector} --since @{since}"))
}

/// The same, once a line satisfies `found` (journald may take a moment), or after 10 s.
fn journal_with(vm: &Vm, since: &str, selector: &str, found: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = journal(vm, since, selector)?;
        if logged.lines().any(&found) || Instant::now() > deadline {
            return Ok(logged);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The filter's journal lines (`-t ari-filter`) that refused a command: all but the installer's
/// own test of the filter, which it refuses on purpose.
fn filter_refusals(logged: &str) -> Vec<&str> {
    logged.lines().filter(|l| !l.ends_with(": ari-filter-self-test")).collect()
}

/// `id` through the filtered key (`options`, as `user`) is refused with 126, and logged to the
/// guest's journal since `since`.
fn assert_refused_outside_the_plans(vm: &Vm, options: &[String], user: &str, since: &str) -> Result<()> {
    let out = Command::new("ssh")
        .args(["-F", "/dev/null"])
        .args(options)
        .args(["-o", "ControlPath=none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .args(["-p", &vm.port.to_string(), &format!("{user}@127.0.0.1"), "id"])
        .stdin(Stdio::null())
        .output()
        .context("start ssh")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(126) && stderr.contains("ari-filter: refused") && out.stdout.is_empty(),
        "`id` with the filtered key: {} (expected 126), stdout {:?}, stderr {stderr:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let refused = |l: &str| l.ends_with(": not a command of the jobs: id");
    let logged = journal_with(vm, since, "-t ari-filter", refused)?;
    ensure!(logged.lines().any(refused), "the refused `id` is not in the guest's journal:\n{logged}");
    println!("  `id` with the filtered key: exit 126, logged: {}", logged.lines().last().unwrap_or_default());
    Ok(())
}

/// i. `ari authorize --install` in the guest, for a key of the scenario's own (the harness's
/// key must stay unfiltered, or the runner could not reset the guest): the LVM+rdiff job of (a)
/// and the zfs-over-LVM job of (c), with the expiry of an old snapshot, run through the filter
/// against the real tools with nothing refused; `ari check --connect` finds the filter up to
/// date; a command outside the plans is refused (126) and logged to the guest's journal. The
/// key's line and the filter are removed at the end, and by `reset_guest` after a failure.
fn filtered_jobs(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let fx = Fixture::without_config()?;
    let (key, public) = fresh_key(&fx, FILTER_KEY_COMMENT)?;
    let options = only_key(&vm.ssh_options(), &key);
    fx.write_config(ctx, &options, &format!("ssh_filter_path: {FILTER_PATH}\n"))?;
    let since = vm.run("date +%s")?.trim().to_string();
    vm.run(&format!("printf '%s\\n' '{public}' >> /root/.ssh/authorized_keys"))?;
    let result = (|| {
        let jobs = FilteredJobs::new(vm, &fx)?;
        let public_file = fx.p("id_ed25519.pub");
        let authorize = ["authorize", "--host", "127.0.0.1", "--key", &public_file];
        let host = jobs.authorize_json(ctx, &fx, &authorize)?;
        fx.ari_expect(ctx, &[&authorize[..], &["--install"]].concat(), 0)?;
        let out = fx.stdout();
        ensure!(
            out.contains("ari: installed") && out.contains("lets ari's key run its"),
            "ari authorize --install printed {out:?}"
        );
        let line = vm.run(&format!(
            "grep -F ' {FILTER_KEY_COMMENT}' /root/.ssh/authorized_keys; stat -c %a {FILTER_PATH}"
        ))?;
        ensure!(
            line == format!("restrict,command=\"{FILTER_PATH}\" {public}\n755\n"),
            "after the install, the key's line and the filter's mode are {line:?}"
        );
        println!("  installed: {FILTER_PATH} 0755, the key's line restrict,command=...");

        jobs.run(ctx, &fx)?;
        let refused = journal(vm, &since, "-t ari-filter")?;
        let refused = filter_refusals(&refused);
        ensure!(refused.is_empty(), "the filter refused commands of the jobs:\n{}", refused.join("\n"));
        println!("  journalctl -t ari-filter: nothing refused");
        assert_rsync_is_confined(vm, &fx, &options, "root", "/root")?;
        assert_a_crafted_frame_is_contained(vm, &host, &options, "root")?;
        assert_refused_outside_the_plans(vm, &options, "root", &since)?;
        jobs.assert_clean(vm, &fx)
    })();
    let removed = vm.run(&format!(
        "{}zfs list -H -o name tank/backups/zfs-lvm >/dev/null 2>&1 && zfs destroy -r tank/backups/zfs-lvm\n\
         ! zfs list -H -o name {PUSHED_DATASET} >/dev/null 2>&1 || zfs destroy -r {PUSHED_DATASET}\n\
         ! grep -q ' {FILTER_KEY_COMMENT}$' /root/.ssh/authorized_keys && ! test -e {FILTER_PATH}",
        remove_filter()
    ));
    result?;
    removed.context("removing the scenario's key line and filter from the guest")?;
    println!("  the key's line and the filter removed from the guest");
    Ok(())
}

/// What a crafted rdiff-backup frame's code tries in the guest (`FRAME_CODE`), each with what
/// shows that it happened: a marker written, a TCP and a unix listener reached, the OOM score of
/// a process of root's changed, another one killed, a program's marker written, an unconfined unit started through systemd's bus
/// (its marker written), a sysctl changed; and, as the code reports them, an io_uring and a key
/// in root's user keyring.
const FRAME_ATTEMPTS: [&str; 10] =
    ["write", "tcp", "unix", "oom", "kill", "program", "escape", "sysctl", "io_uring", "keyring"];

/// The code of the crafted frame: `DIR`, `PORT`, `VICTIM` and `OOMED` are filled in. It reads
/// /etc/shadow's first name (what the key can still do) and reports every attempt on stderr.
const FRAME_CODE: &str = r#"import ctypes, os, socket, subprocess, sys
d, results = "DIR", []
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, action):
    try:
        action()
        results.append(name + "=done")
    except BaseException as err:
        results.append(name + "=" + type(err).__name__)
def write():
    open(d + "/marker", "w").write("written by a crafted rdiff-backup frame\n")
def tcp():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.close()
def unix():
    s = socket.socket(socket.AF_UNIX)
    s.connect(d + "/sock")
    s.close()
def oom():
    open("/proc/OOMED/oom_score_adj", "w").write("1000")
def kill():
    os.kill(VICTIM, 9)
def program():
    subprocess.run(["/bin/sh", "-c", "echo ran > " + d + "/program-ran"], check=True, stderr=subprocess.DEVNULL)
def escape():
    subprocess.run(["systemd-run", "--wait", "--quiet", "--collect", "touch", d + "/escaped"], check=True, stderr=subprocess.DEVNULL)
def sysctl():
    open("/proc/sys/kernel/domainname", "w").write("ari-frame")
def io_uring():
    fd = libc.syscall(425, 4, ctypes.create_string_buffer(120))
    if fd < 0:
        raise PermissionError(ctypes.get_errno(), "io_uring_setup")
    os.close(fd)
def keyring():
    if libc.syscall(248, b"user", b"ari-frame", b"x", 1, -4) < 0:
        raise PermissionError(ctypes.get_errno(), "add_key")
read = open("/etc/shadow").readline().split(":")[0]
for name in ["write", "tcp", "unix", "oom", "kill", "program", "escape", "sysctl", "io_uring", "keyring"]:
    attempt(name, globals()[name])
sys.stderr.write("ari-frame: ran as uid %d, read /etc/shadow (%s...): %s\n" % (os.getuid(), read, " ".join(results)))
sys.stderr.flush()
"#;

/// The guest's listeners of a frame's attempt, in `DIR`: they listen on 127.0.0.1 and on
/// `DIR/sock`, write the TCP port to `DIR/port`, and accept nothing until a line arrives on the
/// FIFO `DIR/ask`; then they write to `DIR/answer` which of them has a connection waiting, and
/// end. So whether the frame reached one is read once its server has ended, without a race.
const FRAME_LISTENERS: &str = r#"import os, socket, sys
d = sys.argv[1]
tcp = socket.socket()
tcp.bind(("127.0.0.1", 0))
tcp.listen(8)
unix = socket.socket(socket.AF_UNIX)
unix.bind(d + "/sock")
unix.listen(8)
os.mkfifo(d + "/ask")
open(d + "/port.new", "w").write(str(tcp.getsockname()[1]))
os.rename(d + "/port.new", d + "/port")
open(d + "/ask").readline()
reached = []
for name, s in [("tcp", tcp), ("unix", unix)]:
    s.setblocking(False)
    try:
        s.accept()
        reached.append(name)
    except BlockingIOError:
        pass
open(d + "/answer", "w").write(" ".join(reached) + "\n")
"#;

/// Sets up the targets of a frame's attempts in a fresh directory of the guest: the listeners,
/// a `sleep` of root's to kill; returns the directory and the frame, built on the host
/// (python3's pickle, with rdiff-backup's header: `o`, a request number, seven bytes of length).
fn frame_targets(vm: &Vm) -> Result<(String, Vec<u8>)> {
    let setup = vm.run(&format!(
        "set -e; d=$(mktemp -d /var/tmp/ari-frame-XXXXXX); cat > $d/listen.py <<'EOF'\n{FRAME_LISTENERS}EOF\n\
         nohup python3 $d/listen.py $d >/dev/null 2>&1 & echo $! > $d/listener.pid\n\
         nohup sleep 600 >/dev/null 2>&1 & echo $! > $d/victim.pid\n\
         nohup sleep 600 >/dev/null 2>&1 & echo $! > $d/oomed.pid\n\
         i=0; while [ ! -s $d/port ]; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.1; done\n\
         echo \"$d $(cat $d/port) $(cat $d/victim.pid) $(cat $d/oomed.pid)\""
    ))?;
    let words: Vec<&str> = setup.split_whitespace().collect();
    let [dir, port, victim, oomed] = words[..] else { bail!("the frame's targets in the guest: {setup:?}") };
    let code = FRAME_CODE
        .replace("DIR", dir)
        .replace("PORT", port)
        .replace("VICTIM", victim)
        .replace("OOMED", oomed);
    let builder = "import pickle, sys\nclass Payload:\n    def __reduce__(self):\n        return (exec, (sys.argv[1], {}))\ndata = pickle.dumps(Payload(), protocol=4)\nsys.stdout.buffer.write(b'o' + bytes([1]) + len(data).to_bytes(7, 'big') + data)\n";
    let out = Command::new("python3").args(["-c", builder, &code]).stdin(Stdio::null()).output()?;
    ensure!(
        out.status.success(),
        "python3 could not build the frame: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((dir.to_string(), out.stdout))
}

/// Which of `FRAME_ATTEMPTS` the frame's code achieved, found in the guest (the reported ones
/// from `said`, the server's stderr), and the targets cleaned up: the listeners answered and
/// ended, the victim stopped, the directory removed, the domain name put back.
fn frame_done(vm: &Vm, dir: &str, said: &str) -> Result<Vec<&'static str>> {
    let found = vm.run(&format!(
        "d={dir}; echo ask > $d/ask; i=0; while [ ! -s $d/answer ]; do i=$((i+1)); [ $i -lt 300 ] || break; sleep 0.1; done\n\
         echo \"reached: $(cat $d/answer)\"\n\
         for f in marker program-ran escaped; do [ -e $d/$f ] && echo \"present: $f\"; done\n\
         kill -0 $(cat $d/victim.pid) 2>/dev/null && echo 'victim: alive'\n\
         echo \"oom: $(cat /proc/$(cat $d/oomed.pid)/oom_score_adj)\"\n\
         echo \"domainname: $(cat /proc/sys/kernel/domainname)\"\n\
         kill $(cat $d/victim.pid) $(cat $d/oomed.pid) 2>/dev/null; echo '(none)' > /proc/sys/kernel/domainname; rm -rf $d; true"
    ))?;
    let reached = field(&found, "reached");
    let present: Vec<&str> = found.lines().filter_map(|l| l.strip_prefix("present: ")).collect();
    let mut done = Vec::new();
    for attempt in FRAME_ATTEMPTS {
        let happened = match attempt {
            "write" => present.contains(&"marker"),
            "program" => present.contains(&"program-ran"),
            "escape" => present.contains(&"escaped"),
            "tcp" | "unix" => reached.split_whitespace().any(|r| r == attempt),
            "kill" => field(&found, "victim") != "alive",
            "oom" => field(&found, "oom") == "1000",
            "sysctl" => field(&found, "domainname") == "ari-frame",
            _ => said.contains(&format!(" {attempt}=done")),
        };
        if happened {
            done.push(attempt);
        }
    }
    Ok(done)
}

/// A crafted rdiff-backup frame (its code runs while the server unpickles it) against the real
/// systemd-run confinement, through the filter (`user`'s filtered key, `options`): sent to an
/// unconfined `rdiff-backup server` directly it does every one of `FRAME_ATTEMPTS`, among them
/// starting an unconfined unit through systemd's bus; sent as the host's allowed server line it
/// runs, reads /etc/shadow, and does none of them; and the unit is gone afterwards.
fn assert_a_crafted_frame_is_contained(
    vm: &Vm,
    host: &serde_json::Value,
    options: &[String],
    user: &str,
) -> Result<()> {
    let line = host["allowed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .find(|l| l.contains("systemd-run") && l.contains("rdiff-backup server"))
        .with_context(|| format!("no confined rdiff-backup server line among the allowed commands: {host}"))?
        .to_string();

    let (dir, frame) = frame_targets(vm)?;
    let mut control = vm.ssh("rdiff-backup server --restrict-path /srv --restrict-mode read-only");
    let file = tempfile::NamedTempFile::new()?;
    fs::write(file.path(), &frame)?;
    let out = control.stdin(fs::File::open(file.path())?).output().context("start ssh")?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let done = frame_done(vm, &dir, &said)?;
    ensure!(
        said.contains("ari-frame: ran as uid 0, read /etc/shadow (root...)") && done == FRAME_ATTEMPTS,
        "the frame against an unconfined server in the guest did {done:?} of {FRAME_ATTEMPTS:?}: {said}"
    );
    println!("  a crafted frame against `rdiff-backup server` in the guest: {}", done.join(", "));

    let (dir, frame) = frame_targets(vm)?;
    fs::write(file.path(), &frame)?;
    let out = Command::new("ssh")
        .args(["-F", "/dev/null"])
        .args(options)
        .args(["-o", "ControlPath=none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .args(["-p", &vm.port.to_string(), &format!("{user}@127.0.0.1"), &line])
        .stdin(fs::File::open(file.path())?)
        .output()
        .context("start ssh")?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let done = frame_done(vm, &dir, &said)?;
    let units = vm.run("systemctl list-units --all --no-legend --plain 'ari-rdiff-*' | wc -l")?;
    ensure!(
        said.contains("ari-frame: ran as uid 0, read /etc/shadow (root...)")
            && done.is_empty()
            && units.trim() == "0",
        "the frame through the filter to the confined line did {done:?} (units left: {}): {said}",
        units.trim()
    );
    println!("  the same frame through the filter as {user}, to the allowed line: it ran and read /etc/shadow, and did none of it; no unit left");
    Ok(())
}

/// The non-root remote user of the sudo scenario, which it creates in the guest.
const SUDO_USER: &str = "ari-backup";

/// The comment of the sudo scenario's own key.
const SUDO_KEY_COMMENT: &str = "ari-vm-sudo-scenario";

/// The sudoers drop-in that the installer writes for `SUDO_USER` (`/etc/sudoers.d/ari-USER`).
const SUDO_DROP_IN: &str = "/etc/sudoers.d/ari-ari-backup";

/// What sudo logs when it refuses a command: the lines of a refusal in its journal (not of a
/// refused `sudo -n`, which sudo does not log: `refused_in`).
const SUDO_DENIALS: &[&str] = &[
    "command not allowed",
    "a password is required",
    "incorrect password",
    "NOT in sudoers",
    "authentication failure",
];

/// The guest script that removes what the sudo scenario adds there (the user, its home with
/// the key's line, every drop-in of ari), except the filter (`remove_filter`).
fn remove_sudo_user() -> String {
    format!(
        "if id -u {SUDO_USER} >/dev/null 2>&1; then userdel -f -r {SUDO_USER} >/dev/null 2>&1 || true; fi\n\
         rm -rf --one-file-system /home/{SUDO_USER}\n\
         rm -f /etc/sudoers.d/ari-*\n"
    )
}

/// The guest script that prints `left:` and whatever of the sudo scenario is still there.
fn sudo_leftovers() -> String {
    format!(
        "left=''\n\
         if id -u {SUDO_USER} >/dev/null 2>&1; then left=\"$left user {SUDO_USER}\"; fi\n\
         if [ -e /home/{SUDO_USER} ]; then left=\"$left /home/{SUDO_USER}\"; fi\n\
         for f in /etc/sudoers.d/ari-*; do if [ -e \"$f\" ]; then left=\"$left $f\"; fi; done\n\
         if [ -e {FILTER_PATH} ]; then left=\"$left {FILTER_PATH}\"; fi\n\
         echo \"left:$left\"\n"
    )
}

/// The processes in the guest that a job under sudo may leave (`left_by_sudo_jobs`).
fn sudo_processes(vm: &Vm) -> Result<Vec<String>> {
    Ok(left_by_sudo_jobs(&vm.run("ps -eo pid=,ruser:20=,user:20=,args=")?))
}

/// The lines of `ps -eo pid=,ruser=,user=,args=` that a job under sudo may have left: a process
/// of `SUDO_USER` (its real or effective user), sudo, rdiff-backup's server or rsync; not the
/// `ps` itself.
fn left_by_sudo_jobs(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let args = words.get(3..).map(|a| a.join(" ")).unwrap_or_default();
            !args.starts_with("ps -eo")
                && (words.get(1..3).is_some_and(|users| users.contains(&SUDO_USER))
                    || args.starts_with("sudo ")
                    || args.contains("rdiff-backup server")
                    || args.contains("rsync"))
        })
        .map(str::to_string)
        .collect()
}

/// j. The same two jobs as (i), as a non-root remote user through the filter and sudo
/// (`remote_sudo`): the user is created in the guest, `ari authorize --installer` is piped to
/// `sh` as root there (the admin's way), installing the sudoers drop-in (checked by visudo),
/// the filter and the key's line in the user's own authorized_keys; the jobs run with nothing
/// refused by the filter or by sudo and nothing of theirs left running; a command outside the
/// plans is refused by the filter (126), and one outside the drop-in by sudo. The user, its
/// home, the drop-in and the filter are removed at the end, and by `reset_guest` after a
/// failure.
fn sudo_filtered_jobs(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let fx = Fixture::without_config()?;
    let (key, public) = fresh_key(&fx, SUDO_KEY_COMMENT)?;
    let options = only_key(&vm.ssh_options(), &key);
    fx.write_config_as(
        ctx,
        SUDO_USER,
        &options,
        &format!("remote_sudo: true\nssh_filter_path: {FILTER_PATH}\n"),
    )?;
    let since = vm.run("date +%s")?.trim().to_string();
    let home = format!("/home/{SUDO_USER}");
    let result = (|| {
        let passwd = vm.run(&format!("useradd -m -s /bin/sh {SUDO_USER} && getent passwd {SUDO_USER}"))?;
        println!("  user made: {}", passwd.trim());
        let jobs = FilteredJobs::new(vm, &fx)?;
        let public_file = fx.p("id_ed25519.pub");
        let authorize = ["authorize", "--host", "127.0.0.1", "--key", &public_file];
        let host = jobs.authorize_json(ctx, &fx, &authorize)?;
        let sudoers = host["sudoers"].as_str().with_context(|| format!("no sudoers drop-in in {host}"))?;
        let rules = sudoers
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("Defaults") && !l.trim().is_empty())
            .count();
        ensure!(
            sudoers.lines().any(|l| l == "Defaults!@rrsync@ env_keep += \"SSH_ORIGINAL_COMMAND\""),
            "the drop-in keeps no SSH_ORIGINAL_COMMAND for rrsync: {sudoers}"
        );
        let lines: Vec<&str> =
            host["allowed"].as_array().into_iter().flatten().filter_map(|l| l.as_str()).collect();
        ensure!(
            host["destination"] == format!("{SUDO_USER}@127.0.0.1")
                && lines.iter().all(|l| l.starts_with("sudo -n -- ") || l.starts_with("getent passwd ") || *l == "rrsync -help")
                && rules + 2 == allowed(&host, "allowed") + allowed(&host, "allowed_patterns"),
            "ari authorize --json under remote_sudo: expected {SUDO_USER}@127.0.0.1, every line through `sudo -n --` but the login shell's query and rrsync's probe, and a rule per command but those: {host}"
        );
        println!("  the sudoers drop-in has {rules} rules, one per command (the login shell's `getent passwd` and `rrsync -help` need none)");

        fx.ari_expect(ctx, &[&authorize[..], &["--installer"]].concat(), 0)?;
        let installer = fx.path("installer.sh");
        fs::write(&installer, fx.stdout())?;
        println!("$ ari authorize ... --installer | ssh root@guest sh");
        let mut install = vm.ssh("sh");
        install.stdin(fs::File::open(&installer)?);
        let out = install.output().context("start ssh")?;
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let keys = format!("{home}/.ssh/authorized_keys");
        ensure!(
            out.status.success()
                && stdout.lines().any(|l| l == format!("ari: installed {SUDO_DROP_IN}"))
                && stdout.lines().any(|l| {
                    l.starts_with(&format!("ari: installed {FILTER_PATH} (sha256 "))
                        && l.ends_with(&format!(") and the key's line in {keys}"))
                }),
            "the installer, run as root in the guest: {}, stdout {stdout:?}, stderr {stderr:?}",
            out.status
        );
        for line in stdout.lines() {
            println!("  {line}");
        }
        let report = vm.run(&format!(
            "echo \"dir: $(stat -c '%U %a' {home}/.ssh)\"\n\
             echo \"keys: $(stat -c '%U %a' {keys})\"\n\
             echo \"drop-in: $(stat -c '%U %a' {SUDO_DROP_IN})\"\n\
             echo \"filter: $(stat -c '%U %a' {FILTER_PATH})\"\n\
             echo \"rules: $(grep -c '^{SUDO_USER} ALL=(root) NOPASSWD: /' {SUDO_DROP_IN})\"\n\
             echo \"unfilled: $(grep -c 'NOPASSWD: @' {SUDO_DROP_IN})\"\n\
             echo \"visudo: $(visudo -c >/dev/null 2>&1 && echo ok)\"\n\
             echo \"groups: $(stat -c '%G' {home}/.ssh {keys} | xargs)\""
        ))?;
        let key_line = vm.run(&format!("cat {keys}"))?;
        let expected = [
            ("dir", format!("{SUDO_USER} 700")),
            ("keys", format!("{SUDO_USER} 600")),
            ("drop-in", "root 440".to_string()),
            ("filter", "root 755".to_string()),
            ("rules", rules.to_string()),
            ("unfilled", "0".to_string()),
            ("visudo", "ok".to_string()),
        ];
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(name, value)| field(&report, name) != *value)
            .map(|(name, value)| format!("{name} is `{}`, expected `{value}`", field(&report, name)))
            .collect();
        ensure!(wrong.is_empty(), "after the installer: {}\n{report}", wrong.join("; "));
        ensure!(
            key_line == format!("restrict,command=\"{FILTER_PATH}\" {public}\n"),
            "{keys} holds {key_line:?}, expected only the key's restrict line"
        );
        println!(
            "  {keys} (the user's, 0600; .ssh 0700; groups {}) holds exactly the key's restrict line; {SUDO_DROP_IN} root 0440, {rules} rules with the guest's paths, visudo -c ok",
            field(&report, "groups")
        );

        jobs.run(ctx, &fx)?;
        let refused = journal(vm, &since, "-t ari-filter")?;
        let refused = filter_refusals(&refused);
        let logged = journal(vm, &since, "_COMM=sudo")?;
        let denied: Vec<&str> =
            logged.lines().filter(|l| SUDO_DENIALS.iter().any(|d| l.contains(d))).collect();
        ensure!(
            refused.is_empty() && denied.is_empty(),
            "commands of the jobs were refused; by the filter:\n{}\nby sudo:\n{}",
            refused.join("\n"),
            denied.join("\n")
        );
        let ran = logged
            .lines()
            .filter(|l| l.starts_with(&format!("{SUDO_USER} : ")) && l.contains("COMMAND="))
            .count();
        println!("  journalctl -t ari-filter: nothing refused; _COMM=sudo: {ran} commands of {SUDO_USER} run as root, none refused");
        assert_rsync_is_confined(vm, &fx, &options, SUDO_USER, &home)?;
        assert_a_crafted_frame_is_contained(vm, &host, &options, SUDO_USER)?;
        // sshd ends a session's processes a moment after its connection closes.
        let deadline = Instant::now() + Duration::from_secs(10);
        let left = loop {
            let left = sudo_processes(vm)?;
            if left.is_empty() || Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        ensure!(left.is_empty(), "processes of the jobs are left in the guest:\n{}", left.join("\n"));
        println!("  no process of {SUDO_USER}, sudo, rdiff-backup or rsync left in the guest");

        assert_refused_outside_the_plans(vm, &options, SUDO_USER, &since)?;
        // sudo refuses it without logging it (`refused_in`); what it says is the proof.
        let out = vm.run(&format!(
            "cd / && su -s /bin/sh {SUDO_USER} -c 'sudo -n /usr/bin/id' 2>&1; echo \"exit=$?\""
        ))?;
        ensure!(
            out.lines().any(|l| l == "sudo: a password is required")
                && out.ends_with("\nexit=1\n")
                && !out.contains("uid="),
            "sudo -n /usr/bin/id as {SUDO_USER}, which the drop-in does not allow: {out:?} (expected sudo's refusal, exit 1)"
        );
        println!("  sudo -n /usr/bin/id as {SUDO_USER}: refused, exit 1: sudo: a password is required");
        jobs.assert_clean(vm, &fx)
    })();
    let removed = vm.run(&format!(
        "{}{}zfs list -H -o name tank/backups/zfs-lvm >/dev/null 2>&1 && zfs destroy -r tank/backups/zfs-lvm\n\
         ! zfs list -H -o name {PUSHED_DATASET} >/dev/null 2>&1 || zfs destroy -r {PUSHED_DATASET}\n{}",
        remove_sudo_user(),
        remove_filter(),
        sudo_leftovers()
    ));
    result?;
    let left =
        field(&removed.context("removing the scenario's user, drop-in and filter from the guest")?, "left");
    ensure!(left.is_empty(), "left in the guest after the cleanup: {left}");
    println!("  the user, its home, the drop-in and the filter removed from the guest");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_by_name_and_a_filter_matching_nothing_is_an_error() {
        assert_eq!(select(&[]).unwrap().len(), SCENARIOS.len());
        assert_eq!(
            select(&["crash".into()]).unwrap(),
            ["crash_ledger_recover_undoes_real_snapshots_and_mounts"]
        );
        assert_eq!(select(&["zfs_over".into(), "backs_up_the_snapshot".into()]).unwrap().len(), 2);
        // Both filter scenarios, as `cargo xtask vm test ssh_filter` runs them.
        assert_eq!(select(&["ssh_filter".into()]).unwrap().len(), 2);
        assert!(select(&["no-such-scenario".into()]).is_err());
    }

    /// The report of a guest as `PREPARE` leaves it, with `changes` (name, value) applied.
    fn report(changes: &[(&str, &str)]) -> String {
        let mut fields = [
            ("mark", "ari-vm-1-2"),
            ("/srv/data", "/dev/mapper/vg0-data ext4"),
            ("/srv/data/db", "/dev/mapper/vg0-db ext4"),
            ("tank/backups", "yes /tank/backups"),
            (
                "findmnt",
                "/srv/data /dev/mapper/vg0-data ext4;/srv/data/db /dev/mapper/vg0-db ext4;/tank tank zfs",
            ),
            ("lsblk", "vda disk /;vdb disk;vdc disk"),
        ];
        for (name, value) in changes {
            fields.iter_mut().find(|(n, _)| n == name).expect("a field of the report").1 = value;
        }
        fields.iter().map(|(name, value)| format!("{name}: {value}\n")).collect()
    }

    fn check(changes: &[(&str, &str)], expected: &str) {
        let got = match prepared(&report(changes), "ari-vm-1-2") {
            Ok(()) => "ok".to_string(),
            Err(err) => err.to_string(),
        };
        assert_eq!(got, expected, "changes {changes:?}");
    }

    #[test]
    fn an_unprepared_guest_is_reported_with_what_it_has() {
        check(&[], "ok");
        // The guest of another run, booted from the saved state and not prepared yet.
        check(
            &[
                ("mark", ""),
                ("/srv/data", ""),
                ("/srv/data/db", ""),
                ("tank/backups", "cannot open 'tank/backups': dataset does not exist"),
                ("findmnt", ""),
                ("lsblk", "vda disk /;vdb disk;vdc disk"),
            ],
            "the guest is not prepared: /run/ari-vm-prepared is missing (this run wrote `ari-vm-1-2` there): \
             another guest answered, or this one rebooted; /srv/data is not a mount point; /srv/data/db is not a \
             mount point; tank/backups is not mounted at /tank/backups (zfs list: `cannot open 'tank/backups': \
             dataset does not exist`) (findmnt under /srv and /tank: nothing; lsblk: vda disk /;vdb disk;vdc disk)",
        );
        check(
            &[("mark", "ari-vm-7-8")],
            "the guest is not prepared: /run/ari-vm-prepared holds `ari-vm-7-8`, not this run's `ari-vm-1-2`: \
             another run's guest answered (findmnt under /srv and /tank: /srv/data /dev/mapper/vg0-data \
             ext4;/srv/data/db /dev/mapper/vg0-db ext4;/tank tank zfs; lsblk: vda disk /;vdb disk;vdc disk)",
        );
        check(
            &[("/srv/data/db", "/dev/mapper/vg0-db-ari_backup ext4"), ("findmnt", "/srv/data /dev/mapper/vg0-data ext4")],
            "the guest is not prepared: /srv/data/db has `/dev/mapper/vg0-db-ari_backup ext4` mounted, expected \
             `/dev/mapper/vg0-db ext4` (findmnt under /srv and /tank: /srv/data /dev/mapper/vg0-data ext4; lsblk: \
             vda disk /;vdb disk;vdc disk)",
        );
        check(
            &[("tank/backups", "no /tank/backups")],
            "the guest is not prepared: tank/backups is not mounted at /tank/backups (zfs list: `no /tank/backups`) \
             (findmnt under /srv and /tank: /srv/data /dev/mapper/vg0-data ext4;/srv/data/db /dev/mapper/vg0-db \
             ext4;/tank tank zfs; lsblk: vda disk /;vdb disk;vdc disk)",
        );
    }

    #[test]
    fn the_filtered_key_replaces_the_harness_key_and_its_shared_connection() {
        let harness: Vec<String> = [
            "-i",
            "/var/cache/ari-vm/id_ed25519",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "ControlPath=/x/ssh.sock",
            "-o",
            "LogLevel=ERROR",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            only_key(&harness, "/tmp/k"),
            [
                "-i",
                "/tmp/k",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "LogLevel=ERROR"
            ]
        );
        assert!(remove_filter().contains("rmdir /usr/local/lib/ari-backup "));
    }

    #[test]
    fn the_sudo_scenario_finds_what_its_jobs_left_running_and_what_its_cleanup_left() {
        let listing = "    1 root                 root                 /sbin/init\n\
                       412 ari-backup           root                 sudo -n -- /bin/sh -c sleep 120\n\
                       413 root                 root                 sleep 120\n\
                       420 ari-backup           ari-backup           sh -c echo ari-remote-pgid\n\
                       430 root                 root                 rsync --server -logDtpre.iLsfxCIvu . /tank\n\
                       440 root                 root                 /usr/bin/python3 /usr/bin/rdiff-backup server\n\
                       450 root                 root                 ps -eo pid=,ruser:20=,user:20=,args=\n\
                       460 root                 root                 sshd: root@notty\n";
        let left: Vec<String> = left_by_sudo_jobs(listing);
        let pids: Vec<&str> = left.iter().filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(pids, ["412", "420", "430", "440"]);
        assert!(left_by_sudo_jobs("    1 root root /sbin/init\n").is_empty());
        assert!(remove_sudo_user().contains("userdel -f -r ari-backup"));
        assert!(sudo_leftovers().contains("for f in /etc/sudoers.d/ari-*;"));
        assert_eq!(
            refused_in("ari (x) [DEBUG] stderr: sudo: a password is required\nari (x) [DEBUG] stderr: ari-remote-pgid\nari (x) [DEBUG] stderr: ari-filter: refused (not a command of the jobs): ...\nari (x) [DEBUG] stdout: \techo \"ari-filter: refused ($1): ...\" >&2\n"),
            ["ari (x) [DEBUG] stderr: sudo: a password is required", "ari (x) [DEBUG] stderr: ari-filter: refused (not a command of the jobs): ..."]
        );
        assert_eq!(
            filter_refusals("refused for root from 10.0.2.2: not a command of the jobs: ari-filter-self-test\nrefused for root from 10.0.2.2: not a command of the jobs: id\n"),
            ["refused for root from 10.0.2.2: not a command of the jobs: id"]
        );
    }

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
