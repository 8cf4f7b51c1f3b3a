//! The LVM scenarios with rdiff-backup: a backup of two snapshots holds what they held while
//! the origins change under them (crash consistency), restores give that content back, and
//! failures on the way (a refused mount, a refused option, a planted directory or symlink, a
//! failing backup) each leave nothing behind. The job of the first is reused by the filter
//! scenarios (`lvm_rdiff_job`).

use anyhow::{ensure, Result};
use std::fs;
use std::process::Command;

use super::fixture::{
    assert_clean, assert_no_ledger, history, lvm_job, read, sha256_file, unix_now, yaml, Ctx, Fixture,
    MOUNT_ROOT,
};
use crate::shell;
use crate::vm::machine::Vm;

/// a. rdiff-backup of two LVM snapshots, one mounted `ro`: an `after_snapshot` command changes
/// the origin after the snapshots exist and before the backup; the backup holds the snapshot's
/// content, and a restore (rdiff-backup's own, and `ari restore` of the file as the guest names
/// it) gives it back; `ari history` lists the one backup. Nothing is left in the guest.
pub(super) fn lvm_rdiff_crash_consistent(ctx: &Ctx) -> Result<()> {
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
pub(super) fn lvm_rdiff_job(label: &str) -> String {
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
pub(super) const RDIFF_ORIGIN: &str =
    "echo before-snapshot > /srv/data/state.txt && echo 'row 1' > /srv/data/db/table.dat && sync";

/// After a run of `lvm_rdiff_job`: the origins were changed by its `after_snapshot` command,
/// and the mirror holds what they held before (`RDIFF_ORIGIN`), the snapshots' content.
pub(super) fn assert_mirror_is_the_snapshot(vm: &Vm, fx: &Fixture, label: &str) -> Result<()> {
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
pub(super) fn lvm_failures_leave_nothing(ctx: &Ctx) -> Result<()> {
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
