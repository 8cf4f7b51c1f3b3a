//! `job_timeout` during a transfer that is still running: an rdiff-backup through a throttling
//! ssh relay, and an rsync with `--bwlimit`. The job's remote readers stop with it, so both
//! snapshots unmount on the first try and nothing of the backup is left in the guest.

use anyhow::{bail, ensure, Result};
use std::fs;
use std::path::Path;
use std::time::Instant;

use super::fixture::{assert_clean, assert_no_ledger, lvm_job, yaml, Ctx, Fixture};
use super::zfs::zfs_snapshots;
use crate::vm::machine::Vm;

/// f. An LVM+rdiff job whose backup of two snapshots is still transferring (through a relay at
/// 400 kB/s) when `job_timeout` ends it: rdiff-backup's server in the guest is stopped with the
/// job, so both snapshots unmount on the first try.
pub(super) fn job_timeout_lvm_rdiff(ctx: &Ctx) -> Result<()> {
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
pub(super) fn job_timeout_lvm_zfs(ctx: &Ctx) -> Result<()> {
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
