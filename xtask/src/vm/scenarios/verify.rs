//! The spot check (`verify_sample`) against the real tools in the guest: inside a real LVM
//! snapshot, whose origin an `after_snapshot` command changes before the backup (the check
//! passes: it reads the snapshot, as the backup did), and inside a real ZFS snapshot. Then
//! honest faults fail it: a byte of a stored file flipped with its size and time kept (rdiff's
//! quick check never sends it again), and a file rewritten on the host with its size and time
//! kept (rsync's quick check skips it); a byte flipped in the live dataset after the snapshot
//! does not count. Every run leaves the
//! guest clean.

use anyhow::{ensure, Result};
use std::path::Path;

use super::fixture::{assert_clean, assert_no_ledger, read, Ctx, Fixture};
use super::lvm::{lvm_rdiff_job, RDIFF_ORIGIN};
use super::zfs::{zfs_lvm_job, zfs_snapshots};

/// What the job's last run's spot check recorded in its history.
pub(super) fn last_verify(fx: &Fixture, label: &str) -> Result<serde_json::Value> {
    let history = read(&fx.path("state/history").join(format!("{label}.json")))?;
    let history: serde_json::Value = serde_json::from_str(&history)?;
    Ok(history["runs"]
        .as_array()
        .and_then(|runs| runs.last())
        .map(|run| run["verify"].clone())
        .unwrap_or_default())
}

/// Fails unless the job's last run's spot check passed, having compared some files.
pub(super) fn assert_verified(fx: &Fixture, label: &str) -> Result<()> {
    let verify = last_verify(fx, label)?;
    ensure!(
        verify["passed"] == true && verify["files"].as_u64().unwrap_or(0) > 0,
        "job {label}: the spot check did not pass: {verify}"
    );
    println!("  {label}: spot check passed, {} files compared", verify["files"]);
    Ok(())
}

/// Fails unless the newest snapshot of `dataset` carries `ari:verify` = `verdict`.
fn assert_mark(vm: &crate::vm::machine::Vm, dataset: &str, verdict: &str) -> Result<()> {
    let newest = zfs_snapshots(vm, dataset)?.pop().unwrap_or_default();
    let mark = vm.run(&format!("zfs get -H -o value ari:verify {newest}"))?;
    ensure!(mark.trim() == verdict, "{newest} is marked ari:verify={}, expected {verdict}", mark.trim());
    println!("  {newest}: ari:verify={verdict}");
    Ok(())
}

/// A guest command that flips the first byte of `file`, keeping its size and modification time.
fn flip_in_guest(file: &str) -> String {
    format!("f={file}; t=$(stat -c %y $f); printf 'X' | dd of=$f bs=1 seek=0 conv=notrunc status=none; touch -d \"$t\" $f; sync")
}

/// Flips the first byte of `file` on this machine, keeping its size and modification time.
fn flip_first_byte(file: &Path) -> Result<()> {
    let mtime = std::fs::metadata(file)?.modified()?;
    let mut bytes = std::fs::read(file)?;
    bytes[0] ^= 0x20;
    std::fs::write(file, &bytes)?;
    std::fs::File::options().write(true).open(file)?.set_modified(mtime)?;
    Ok(())
}

/// rdiff-backup of two LVM snapshots with a spot check of every file: it passes although the
/// origins changed after the snapshots; a byte flipped in the mirror fails the next run.
pub(super) fn lvm_rdiff_verify(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "lvm-rdiff-verify";
    vm.run(RDIFF_ORIGIN)?;
    let fx = Fixture::new(ctx)?;
    let job = fx.job(label, &format!("{}verify_sample: 100%\n", lvm_rdiff_job(label)))?;
    let job = job.display().to_string();
    fx.ari_expect(ctx, &["run", &job], 0)?;
    assert_verified(&fx, label)?;
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)?;

    let blob = fx.path("store").join(label).join("srv/data/blob.bin");
    flip_first_byte(&blob)?;
    let stderr = fx.ari_expect(ctx, &["run", &job], 1)?;
    ensure!(
        stderr.contains("/srv/data/blob.bin (content differs)"),
        "the failed check does not name blob.bin: {stderr}"
    );
    ensure!(last_verify(&fx, label)?["passed"] == false, "the history does not mark the failed check");
    println!("  a byte flipped in the mirror (size and time kept): exit 1, blob.bin named");
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)
}

/// The zfs backend over LVM with a spot check of every file against the new ZFS snapshot; a file
/// rsync did not send again fails it and keeps expiry from running; a byte flipped in the live
/// dataset after the snapshot does not count (`ari verify` reads the snapshot).
pub(super) fn lvm_zfs_verify(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let (label, dataset) = ("zfs-lvm-verify", "tank/backups/zfs-lvm-verify");
    vm.run(&format!("zfs create {dataset} && {RDIFF_ORIGIN}"))?;
    let fx = Fixture::new(ctx)?;
    let job_text = |extra: &str| {
        zfs_lvm_job(label, dataset, "%Y-%m-%d--%H%M%S", &format!("verify_sample: 100%\n{extra}"))
    };
    let job = fx.job(label, &job_text(""))?.display().to_string();
    fx.ari_expect(ctx, &["run", &job], 0)?;
    assert_verified(&fx, label)?;
    assert_mark(vm, dataset, "passed")?;
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)?;

    // An honest fault: blob.bin rewritten on the host with its size and time kept, which
    // rsync's quick check does not send again: the LVM snapshot holds the new content, the new
    // ZFS snapshot the old one.
    let snapshots = zfs_snapshots(vm, dataset)?.len();
    vm.run(&flip_in_guest("/srv/data/blob.bin"))?;
    let stderr = fx.ari_expect(ctx, &["run", &job], 1)?;
    ensure!(
        stderr.contains("/srv/data/blob.bin (content differs)"),
        "the failed check does not name blob.bin: {stderr}"
    );
    ensure!(
        zfs_snapshots(vm, dataset)?.len() == snapshots + 1,
        "the failed run's snapshot is kept, and nothing expired"
    );
    assert_mark(vm, dataset, "failed")?;
    println!("  blob.bin rewritten with its size and time kept: rsync skipped it, exit 1, blob.bin named");
    assert_clean(vm, label)?;
    // Touched, it is sent again.
    vm.run("touch /srv/data/blob.bin && sync")?;

    // Back to the full job; then a byte flipped in the live dataset after its snapshot.
    fx.ari_expect(ctx, &["run", &job], 0)?;
    assert_verified(&fx, label)?;
    vm.run(&flip_in_guest(&format!("/{dataset}/srv/data/blob.bin")))?;
    fx.ari_expect(ctx, &["verify", label, "--sample", "100%"], 0)?;
    ensure!(fx.stdout().contains(" 0 failed"), "ari verify counted the live dataset: {}", fx.stdout());
    println!(
        "  a byte flipped in the live dataset after the snapshot: ari verify passes (it reads the snapshot)"
    );
    assert_no_ledger(&fx, label)?;
    assert_clean(vm, label)
}
