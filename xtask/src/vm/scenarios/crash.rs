//! The crash ledger against real snapshots: ari SIGKILLed while its snapshots are mounted
//! leaves them and its ledger behind, its remote command stops by itself, and `ari recover`
//! undoes the real mounts and snapshots.

use anyhow::{bail, ensure, Result};
use std::process::Child;
use std::time::{Duration, Instant};

use super::fixture::{assert_clean, lvm_job, Ctx, Fixture, MOUNT_ROOT};

/// d. The crash ledger against real snapshots: ari is SIGKILLed while its snapshots are
/// mounted (an `after_snapshot` command sleeps); they are left behind, as is the ledger; then
/// `ari recover` removes the real mounts and snapshots and the ledger.
pub(super) fn crash_ledger(ctx: &Ctx) -> Result<()> {
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
