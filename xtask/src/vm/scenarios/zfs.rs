//! The zfs backend over LVM snapshots, everything in the guest: rsync into the dataset, a
//! prefixed `zfs snapshot`, expiry against real creation times (made days old by setting the
//! guest's clock back), `zfs_keep_min`, a command dump that lands in the same snapshot as the files
//! (and comes back with `ari restore --dump`), then `ari history` and `ari restore` against the real
//! snapshots, compared entry by entry with what `.zfs/snapshot` holds. `zfs_keep` is calendar
//! retention against real creation times, runs at set guest times, then `ari plan --preview`
//! and `ari prune`. Its job and its snapshot helpers are reused by the timeout and filter
//! scenarios.

use anyhow::{ensure, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::fixture::{
    assert_clean, assert_no_ledger, history, lvm_job, read, sha256_file, unix_now, yaml, Ctx, Fixture,
};
use crate::vm::machine::Vm;

/// c. The zfs backend over LVM snapshots, everything in the guest: rsync from the snapshot
/// mounts into the dataset's directory, a prefixed `zfs snapshot`, and expiry against the real
/// creation times of snapshots made days ago (by setting the guest's clock back): old prefixed
/// ones go; one without the prefix and one of a child dataset stay; `zfs_keep_min` keeps the
/// newest however old. Then `ari history` and `ari restore` against the real snapshots
/// (`zfs_history_and_restore`).
pub(super) fn zfs_over_lvm(ctx: &Ctx) -> Result<()> {
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
    // A command dump streams from the host into the dataset before the LVM snapshot is made.
    let dumps = "dumps:\n  - {name: state, command: [cat, /srv/data/state.txt]}\n";
    let job = fx.job(label, &job_text("%Y-%m-%d--%H%M%S-first", dumps))?;
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
    // The run's dump is in the same snapshot as the files, and comes back out of it.
    let dumped = vm.run(&format!(
        "cat /tank/backups/zfs-lvm/.zfs/snapshot/{}/.ari-dumps/state.dump",
        first.split_once('@').map(|(_, s)| s).unwrap_or_default()
    ))?;
    ensure!(dumped == "zfs-run-1\n", "the snapshot does not hold the run's dump: {dumped:?}");
    let to = fx.path("restored-dump");
    fx.ari_expect(
        ctx,
        &[
            "restore",
            &job.display().to_string(),
            "--dump",
            "state",
            "--at",
            "0B",
            "--to",
            &to.display().to_string(),
        ],
        0,
    )?;
    let restored = fs::read_to_string(to.join("state.dump")).context("read the restored dump")?;
    ensure!(restored == "zfs-run-1\n", "ari restore --dump gave {restored:?}");
    println!("  the dump is in the snapshot with the files, and ari restore --dump brings it back");
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
pub(super) fn zfs_lvm_job(label: &str, dataset: &str, format: &str, extra: &str) -> String {
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

/// The snapshot names of `dataset` and its children, one per line.
pub(super) fn zfs_snapshots(vm: &Vm, dataset: &str) -> Result<Vec<String>> {
    Ok(vm
        .run(&format!("zfs list -H -t snapshot -o name -r {dataset}"))?
        .lines()
        .map(str::to_string)
        .collect())
}

/// Makes snapshots with creation times in the past, by setting the guest's clock back for each
/// (`days` old, snapshot name), then puts the clock right again whatever happened.
pub(super) fn old_snapshots(vm: &Vm, snapshots: &[(u64, &str)]) -> Result<()> {
    let hours: Vec<(u64, &str)> = snapshots.iter().map(|(days, name)| (days * 24, *name)).collect();
    old_snapshots_hours(vm, &hours)
}

/// [`old_snapshots`], each `hours` old.
fn old_snapshots_hours(vm: &Vm, snapshots: &[(u64, &str)]) -> Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let script: String = snapshots
        .iter()
        .map(|(hours, name)| format!("date -s @{} >/dev/null && zfs snapshot {name}\n", now - hours * 3600))
        .collect();
    let made = vm.run(&format!("set -e\n{script}"));
    vm.set_clock()?;
    made?;
    // Proof that the trick worked: the creation times ZFS recorded are really that old.
    for (hours, name) in snapshots {
        let creation: u64 = vm.run(&format!("zfs get -H -p -o value creation {name}"))?.trim().parse()?;
        let age = now.saturating_sub(creation);
        ensure!(age + 60 >= hours * 3600, "{name} is {age} s old, expected {hours} hours");
    }
    Ok(())
}

fn same_set(got: &[String], expected: &[String]) -> bool {
    let mut got = got.to_vec();
    let mut expected = expected.to_vec();
    got.sort();
    expected.sort();
    got == expected
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

/// Calendar retention (`zfs_keep`) against the creation times real ZFS records: prefixed
/// snapshots made over fourteen months by setting the guest's clock back, then three runs at
/// guest times 41 days ago, two hours later, and now. After each run the dataset holds exactly
/// what the rules keep by the creation times `zfs list -p` shows (read here in UTC, as ari
/// reads them with `TZ=UTC`), and another tool's snapshot stays. Then a tighter policy: `ari
/// plan --preview` names what it would destroy, and `ari prune` destroys exactly that.
pub(super) fn zfs_keep(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "zfs-keep";
    let dataset = "tank/backups/zfs-keep";
    vm.run(&format!("set -e\nzfs create {dataset}\nmkdir -p /srv/keep\necho kept > /srv/keep/file"))?;
    let hours_ago = [
        430 * 24,
        400 * 24,
        371 * 24,
        200 * 24,
        121 * 24,
        100 * 24,
        95 * 24,
        70 * 24,
        66 * 24,
        60 * 24,
        45 * 24,
        44 * 24,
        43 * 24 + 5,
        43 * 24,
    ];
    let names: Vec<String> = (0..hours_ago.len()).map(|i| format!("{dataset}@ari-backup-seed-{i}")).collect();
    let mut seeds: Vec<(u64, &str)> =
        hours_ago.iter().zip(&names).map(|(hours, name)| (*hours, name.as_str())).collect();
    let manual = format!("{dataset}@manual-before-upgrade");
    seeds.push((300 * 24, &manual));
    old_snapshots_hours(vm, &seeds)?;
    let fx = Fixture::new(ctx)?;
    // Names without a year: the guest's clock is set to make creation times span months, while
    // ari names snapshots by the host's clock; a name that gives a date and a time would be
    // taken for the snapshot's time, the guest's clock for a wrong one (docs/jobs.md).
    let job_text = |keep: &str| {
        format!(
            "label: {label}\nsource_hostname: 127.0.0.1\ninclude: [/srv/keep]\nbackend: zfs\nrsync_dst: /{dataset}\nzfs_hostname: 127.0.0.1\ndataset_name: {dataset}\nzfs_keep: {keep}\nzfs_snapshot_timestamp_format: '%j-%H%M%S'\n"
        )
    };
    let rules: &[(&str, usize)] = &[("daily", 3), ("monthly", 3), ("yearly", 2)];
    let job = fx.job(label, &job_text("{daily: 3, monthly: 3, yearly: 2}"))?;
    let job = job.display().to_string();
    let now = unix_now()?;
    for (run, at) in [now - 41 * 86_400, now - 41 * 86_400 + 2 * 3600, now].into_iter().enumerate() {
        let before = prefixed_snapshots(vm, dataset)?;
        vm.run(&format!("date -s @{at} >/dev/null"))?;
        let ran = fx.ari(ctx, &["run", &job]);
        vm.set_clock()?;
        let (code, stderr) = ran?;
        ensure!(code == Some(0), "run {run} exited {code:?}: {stderr}");
        let after = prefixed_snapshots(vm, dataset)?;
        let made: Vec<_> = after.iter().filter(|s| !before.contains(s)).cloned().collect();
        ensure!(made.len() == 1, "run {run} made {made:?}");
        let judged: Vec<(String, i64)> = before.iter().chain(&made).cloned().collect();
        let expected = calendar_keeps(&judged, rules);
        let remaining: BTreeSet<String> = after.iter().map(|(name, _)| name.clone()).collect();
        ensure!(
            remaining == expected,
            "run {run}: the dataset holds {remaining:?}; the rules keep {expected:?} of {judged:?}"
        );
        println!("  run {run}: {} of {} snapshots kept, as the rules say", remaining.len(), judged.len());
    }
    ensure!(zfs_snapshots(vm, dataset)?.contains(&manual), "another tool's snapshot was destroyed");

    // A tighter policy: the preview names what goes, destroys nothing; prune destroys exactly it.
    fx.job(label, &job_text("{daily: 1, monthly: 1}"))?;
    let held = prefixed_snapshots(vm, dataset)?;
    fx.ari_expect(ctx, &["plan", &job, "--preview"], 0)?;
    let preview = fx.stdout();
    let to_go: BTreeSet<String> = preview
        .lines()
        .filter(|line| line.trim_end().ends_with(" destroy"))
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with("ari-backup-")))
        .map(|name| format!("{dataset}@{name}"))
        .collect();
    let expected: BTreeSet<String> = held
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| !calendar_keeps(&held, &[("daily", 1), ("monthly", 1)]).contains(n))
        .collect();
    ensure!(
        to_go == expected && !to_go.is_empty(),
        "the preview destroys {to_go:?}, the rules {expected:?}:\n{preview}"
    );
    ensure!(prefixed_snapshots(vm, dataset)? == held, "the preview destroyed something");
    fx.ari_expect(ctx, &["prune", &job], 0)?;
    let left: BTreeSet<String> = prefixed_snapshots(vm, dataset)?.into_iter().map(|(n, _)| n).collect();
    let kept: BTreeSet<String> = held.iter().map(|(n, _)| n.clone()).filter(|n| !to_go.contains(n)).collect();
    ensure!(left == kept, "after prune the dataset holds {left:?}, expected {kept:?}");
    println!("  prune with a tighter policy: destroyed the {} the preview named", to_go.len());
    vm.run(&format!("zfs destroy -r {dataset} && rm -rf /srv/keep"))?;
    Ok(())
}

/// The dataset's own `ari-backup-` snapshots with their creation times, as `zfs list -p` shows.
fn prefixed_snapshots(vm: &Vm, dataset: &str) -> Result<Vec<(String, i64)>> {
    let listing = vm.run(&format!("zfs list -H -p -t snapshot -o name,creation -d 1 {dataset}"))?;
    let mut snapshots = Vec::new();
    for line in listing.lines() {
        let (name, creation) = line.split_once('\t').with_context(|| format!("zfs list printed {line:?}"))?;
        if name.starts_with(&format!("{dataset}@ari-backup-")) {
            snapshots.push((name.to_string(), creation.trim().parse()?));
        }
    }
    Ok(snapshots)
}

/// What `rules` (daily, monthly, yearly, in UTC) and `zfs_keep_min: 1` keep of `snapshots`,
/// read apart from ari: for each rule, newest first, the first snapshot of each of its N newest
/// periods.
fn calendar_keeps(snapshots: &[(String, i64)], rules: &[(&str, usize)]) -> BTreeSet<String> {
    let mut newest_first = snapshots.to_vec();
    newest_first.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
    let mut kept: BTreeSet<String> = newest_first.iter().take(1).map(|(n, _)| n.clone()).collect();
    for (rule, count) in rules {
        let mut periods = Vec::new();
        for (name, creation) in &newest_first {
            let (year, month, day) = civil_from_days(creation.div_euclid(86_400));
            let period = match *rule {
                "daily" => (year, month, day),
                "monthly" => (year, month, 0),
                _ => (year, 0, 0),
            };
            if !periods.contains(&period) {
                if periods.len() == *count {
                    break;
                }
                periods.push(period);
                kept.insert(name.clone());
            }
        }
    }
    kept
}

/// The UTC date of a day since the epoch (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Capacity and pool health against real ZFS, each checked before the job's `pre` hook (which
/// leaves a mark in the guest): a mirror of two 64 MiB file vdevs with one side taken offline
/// is DEGRADED: the job is warned (in its run report) and backed up; with
/// `refuse_degraded_pool` it is refused, nothing made. The same pool exported is unavailable:
/// refused. A dataset of `tank` whose quota is nearly full is refused by `min_free_space: 20%`,
/// and runs once the quota is raised.
pub(super) fn zfs_capacity(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let mark = "/run/ari-capacity-pre";
    vm.run(
        "set -e\ntruncate -s 64M /var/tmp/ari-m1 /var/tmp/ari-m2\nzpool create -f -m /mirr mirr mirror /var/tmp/ari-m1 /var/tmp/ari-m2\nzfs create mirr/backups\nzpool offline mirr /var/tmp/ari-m2\nmkdir -p /srv/cap\necho cap > /srv/cap/file",
    )?;
    let health = vm.run("zpool list -H -o health mirr")?;
    ensure!(health.trim() == "DEGRADED", "the mirror with one side offline is {health:?}");
    let fx = Fixture::new(ctx)?;
    let job = |label: &str, dataset: &str, extra: &str| -> Result<String> {
        let text = format!(
            "label: {label}\nsource_hostname: 127.0.0.1\ninclude: [/srv/cap]\nbackend: zfs\nrsync_dst: /{dataset}\nzfs_hostname: 127.0.0.1\ndataset_name: {dataset}\nzfs_keep: {{daily: 3}}\npre:\n  - {{command: 'touch {mark}', host: 127.0.0.1}}\n{extra}"
        );
        Ok(fx.job(label, &text)?.display().to_string())
    };
    // Whether the run reached its pre hook (the mark), and how many snapshots the dataset has.
    let after = |dataset: &str| -> Result<(bool, usize)> {
        let reached = vm.run(&format!("if [ -e {mark} ]; then echo yes; fi; rm -f {mark}"))?.trim() == "yes";
        let snapshots =
            vm.run(&format!("zfs list -H -t snapshot -o name -d 1 {dataset} 2>/dev/null || true"))?;
        Ok((reached, snapshots.lines().count()))
    };

    // DEGRADED: warned, backed up.
    vm.run("zfs create mirr/backups/degraded")?;
    let degraded = job("cap-degraded", "mirr/backups/degraded", "")?;
    fx.ari_expect(ctx, &["run", &degraded], 0)?;
    ensure!(after("mirr/backups/degraded")? == (true, 1), "a DEGRADED pool is backed up to");
    let report = newest_report(&fx)?;
    ensure!(report.contains("DEGRADED"), "the run report does not warn of the DEGRADED pool: {report}");
    println!("  DEGRADED mirror: warned, backed up");
    // With refuse_degraded_pool: refused before pre, nothing made.
    let refused = job("cap-degraded", "mirr/backups/degraded", "refuse_degraded_pool: true\n")?;
    let stderr = fx.ari_expect(ctx, &["run", &refused], 1)?;
    ensure!(stderr.contains("DEGRADED"), "the refusal does not name the pool's state: {stderr}");
    ensure!(
        after("mirr/backups/degraded")? == (false, 1),
        "refused, yet the pre hook ran or a snapshot was made"
    );
    println!("  refuse_degraded_pool: refused before pre, no snapshot");
    // Unavailable (exported): refused.
    vm.run("zpool export mirr")?;
    let stderr = fx.ari_expect(ctx, &["run", &degraded], 1)?;
    ensure!(stderr.contains("mirr"), "the refusal does not name the pool: {stderr}");
    ensure!(!after("mirr/backups/degraded")?.0, "the pre hook of a job on an unavailable pool ran");
    vm.run("zpool import -d /var/tmp mirr && zpool destroy mirr && rm -f /var/tmp/ari-m1 /var/tmp/ari-m2")?;
    println!("  unavailable pool: refused before pre");

    // A nearly full quota: refused by min_free_space 20%; runs once the quota is raised.
    let dataset = "tank/backups/cap-quota";
    vm.run(&format!(
        "set -e\nzfs create -o quota=64M {dataset}\ndd if=/dev/urandom of=/{dataset}/fill bs=1M count=56 status=none\nsync"
    ))?;
    let quota = job("cap-quota", dataset, "min_free_space: 20%\n")?;
    let stderr = fx.ari_expect(ctx, &["run", &quota], 1)?;
    ensure!(stderr.contains("below min_free_space 20%"), "the refusal does not name the threshold: {stderr}");
    ensure!(after(dataset)? == (false, 0), "refused, yet the pre hook ran or a snapshot was made");
    vm.run(&format!("zfs set quota=512M {dataset}"))?;
    fx.ari_expect(ctx, &["run", &quota], 0)?;
    ensure!(after(dataset)? == (true, 1), "with room under its quota, the job did not back up");
    println!("  nearly full quota: refused by min_free_space 20%; with the quota raised, backed up");
    vm.run(&format!("zfs destroy -r {dataset} && rm -rf /srv/cap"))?;
    Ok(())
}

/// The text of the fixture's newest run report.
fn newest_report(fx: &Fixture) -> Result<String> {
    let mut reports: Vec<_> = fs::read_dir(fx.path("state/reports"))?.flatten().map(|e| e.path()).collect();
    reports.sort();
    let newest = reports.last().context("no run report")?;
    read(newest)
}
