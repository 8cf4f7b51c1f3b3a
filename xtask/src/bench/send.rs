//! `cargo xtask bench --only send`: what ari's `zfs-send` pipeline costs over the bare pipe, on
//! this machine, with a stand-in `zfs` (the real one is the VM's; this measures what ari adds).
//!
//! - **Throughput**: `ari run` of a zfs-send job whose plan is one whole send of `SIZE` bytes
//!   (the stand-in's `zfs send` is `head -c SIZE /dev/zero`, its `zfs recv` reads to the end),
//!   against the bare `sh -c 'zfs send ... | zfs recv ...'` of the same stand-ins: the ratio
//!   is the bare pipe's wall time over ari's (1.0: ari's relay costs nothing).
//! - **An unchanged incremental**: `ari run` of a job whose receiver already has the sender's
//!   newest snapshot (nothing to send), against the sum of the stand-in commands it runs (the
//!   capacity check, both listings, the expiry listings), run one after another: ari's own
//!   fixed cost per run, in milliseconds, and its CPU time. Each run of ari starts without the
//!   job's history (a `rm -f` in the `sh` that starts it), so that ari does not wait for the
//!   second after the last run, as it does for a store that dates backups by the second.
//!
//! Reported, never asserted.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::data::yaml_path;
use super::measure::{measure, median};
use crate::shell;

/// The stream's size for the throughput run.
const SIZE: u64 = 4 << 30;

/// The stand-in `zfs` (and `zpool`): the forms ari's zfs-send job runs, for a sender with the
/// one snapshot `tank/b@ari-backup-1` and a receiver `vault/b` that is absent (`full`) or has
/// that snapshot (`uptodate`).
fn stand_in(receiver_has_it: bool) -> String {
    let receiver = if receiver_has_it {
        r#"vault/b) exit 0 ;;"#
    } else {
        r#"vault/b) echo "cannot open 'vault/b': dataset does not exist" >&2; exit 1 ;;"#
    };
    let listing =
        if receiver_has_it { "printf 'vault/b@ari-backup-1\\t7\\t10\\t1700000000\\t0\\n'" } else { ":" };
    format!(
        r#"#!/bin/sh
case "$1 $2" in
"list -H")
    case "$4" in
    name) case "$5" in tank/b|vault) exit 0 ;; {receiver} esac ;;
    esac
    case "$7" in
    name,guid,createtxg,creation,userrefs) case "${{10}}" in
        tank/b) printf 'tank/b@ari-backup-1\t7\t10\t1700000000\t1\n' ;;
        vault/b) {listing} ;;
        esac ;;
    name,creation,userrefs) {listing} ;;
    esac ;;
"get -H")
    case "$6" in
    receive_resume_token) echo - ;;
    available,used) printf '1000000000000\n1000\n' ;;
    esac ;;
"holds -H") printf '%s\tari-send-b\tMon Dec  7 10:00 2026\n' "$3" ;;
"send tank/b@ari-backup-1") exec head -c {SIZE} /dev/zero ;;
"recv -s") exec cat >/dev/null ;;
"hold "*|"release "*) exit 0 ;;
*) echo "stand-in zfs: unexpected: $*" >&2; exit 99 ;;
esac
"#
    )
}

const ZPOOL: &str = "#!/bin/sh\nprintf '  pool: vault\\n state: ONLINE\\n  scan: none requested\\nconfig:\\n\\n\\tNAME        STATE     READ WRITE CKSUM\\n\\tvault       ONLINE       0     0     0\\n\\nerrors: No known data errors\\n'\n";

pub(super) fn send_benchmarks(ari: &Path, runs: usize) -> Result<Value> {
    let dir = shell::target_dir().join("bench/send");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing the old {}", dir.display()))?;
    }
    for made in ["full", "uptodate", "jobs.d", "state", "logs"] {
        fs::create_dir_all(dir.join(made))?;
    }
    for (bin, has_it) in [("full", false), ("uptodate", true)] {
        for (tool, text) in [("zfs", stand_in(has_it)), ("zpool", ZPOOL.to_string())] {
            let path = dir.join(bin).join(tool);
            fs::write(&path, text)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
    }
    let config = dir.join("ari-backup.conf.yaml");
    fs::write(
        &config,
        format!(
            "state_dir: {}\njobs_dir: {}\n",
            yaml_path(&dir.join("state"))?,
            yaml_path(&dir.join("jobs.d"))?
        ),
    )?;
    fs::write(
        dir.join("jobs.d/b.yaml"),
        "label: b\nbackend: zfs-send\nsource_hostname: localhost\nsource_dataset: tank/b\ndataset_name: vault/b\nzfs_keep: {daily: 7}\n",
    )?;
    let log = dir.join("logs/run.log");
    let path_of =
        |bin: &str| format!("{}:{}", dir.join(bin).display(), std::env::var("PATH").unwrap_or_default());
    // A zfs-send job starts no sooner than the second after its last run ended (ZFS dates
    // snapshots by the second): each timed run starts without that history, so that the wait
    // is not counted as ari's cost.
    let history = dir.join("state/history/b.json");
    let ari_run = |bin: &str| {
        let mut command = Command::new("sh");
        command
            .args(["-c", "rm -f \"$1\" && exec \"$2\" --config \"$3\" run b", "bench"])
            .arg(&history)
            .arg(ari)
            .arg(&config)
            .env("PATH", path_of(bin))
            .env_remove("ARI_CONFIG");
        command
    };

    shell::header(&format!("send: a whole stream of {} GiB through ari", SIZE >> 30));
    let mut ari_full = ari_run("full");
    let mut bare_full = Command::new("sh");
    bare_full
        .args(["-c", "zfs send tank/b@ari-backup-1 | zfs recv -s -u -o readonly=on -o canmount=noauto -x mountpoint vault/b"])
        .env("PATH", path_of("full"));
    let (ari_ms, bare_ms, ari_cpu) = timed(&mut ari_full, &mut bare_full, runs, &log)?;
    let gib_s = |ms: f64| (SIZE as f64 / (1u64 << 30) as f64) / (ms / 1000.0);
    println!(
        "  ari {ari_ms:.0} ms ({:.2} GiB/s), the bare pipe {bare_ms:.0} ms ({:.2} GiB/s): ari's throughput is {:.3}x the bare pipe's; ari's own CPU {ari_cpu:.0} ms",
        gib_s(ari_ms),
        gib_s(bare_ms),
        bare_ms / ari_ms
    );
    let throughput = json!({
        "bytes": SIZE,
        "ari_ms": ari_ms,
        "bare_ms": bare_ms,
        "throughput_ratio": bare_ms / ari_ms,
        "ari_cpu_ms": ari_cpu,
    });

    shell::header("send: an unchanged incremental (nothing to send)");
    let mut ari_none = ari_run("uptodate");
    // The commands such a run makes, one after another, as a shell runs them.
    let script = "zpool status vault >/dev/null; zfs get -H -p -o value available,used vault >/dev/null; \
                  for i in 1 2 3; do zfs list -H -o name vault/b >/dev/null && zfs get -H -p -o value receive_resume_token vault/b >/dev/null && zfs list -H -p -t snapshot -o name,guid,createtxg,creation,userrefs -d 1 vault/b >/dev/null; done; \
                  zfs list -H -p -t snapshot -o name,guid,createtxg,creation,userrefs -d 1 tank/b >/dev/null; zfs holds -H tank/b@ari-backup-1 >/dev/null; \
                  zfs list -H -p -t snapshot -o name,creation,userrefs -d 1 vault/b >/dev/null";
    let mut bare_none = Command::new("sh");
    bare_none.args(["-c", script]).env("PATH", path_of("uptodate"));
    let (ari_ms, bare_ms, ari_cpu) = timed(&mut ari_none, &mut bare_none, runs, &log)?;
    println!(
        "  ari {ari_ms:.1} ms, the commands alone {bare_ms:.1} ms (ratio {:.1}; ari's own {:.1} ms a run), ari's CPU {ari_cpu:.1} ms",
        ari_ms / bare_ms,
        ari_ms - bare_ms
    );
    let unchanged = json!({
        "ari_ms": ari_ms,
        "commands_ms": bare_ms,
        "ratio": ari_ms / bare_ms,
        "ari_cpu_ms": ari_cpu,
    });
    Ok(json!({"throughput": throughput, "unchanged_incremental": unchanged}))
}

/// One warm-up each, then `runs` timed runs of each: the medians of ari's and the bare side's
/// wall time, and of ari's CPU time (user and system, its children included), in ms.
fn timed(ari: &mut Command, bare: &mut Command, runs: usize, log: &Path) -> Result<(f64, f64, f64)> {
    measure(ari, log)?;
    measure(bare, log)?;
    let ari_samples = (0..runs).map(|_| measure(ari, log)).collect::<Result<Vec<_>>>()?;
    let bare_samples = (0..runs).map(|_| measure(bare, log)).collect::<Result<Vec<_>>>()?;
    Ok((
        median(&ari_samples.iter().map(|s| s.ms()).collect::<Vec<_>>()),
        median(&bare_samples.iter().map(|s| s.ms()).collect::<Vec<_>>()),
        median(&ari_samples.iter().map(|s| s.cpu_ms()).collect::<Vec<_>>()),
    ))
}
