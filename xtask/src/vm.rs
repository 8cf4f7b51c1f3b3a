//! `cargo xtask vm`: the tier that proves the LVM and ZFS paths against the real tools. This
//! machine's kernel has neither device-mapper nor ZFS, so the host tests use fakes; here a
//! Debian guest under qemu (TCG: KVM does not work on these machines, see
//! shared/reference/vm-recipe.md) has real `lvcreate`, `mount` and `zfs`, and the real `ari`
//! binary on the host backs it up over ssh as a remote host. `build` makes (or reuses) the guest
//! image in a fixed cache directory, `up`/`ssh`/`down` are for poking at a guest by hand, and
//! `test` runs the scenarios (`vm/scenarios/`) against a guest of its own, always stopping it;
//! a second `test` on the machine waits for the first.
//! Modules: `cache` (the fixed cache directory and its locks), `image` (the cached image and
//! the host packages), `instance` (a guest's directory, state file and lock, and stopping what
//! it records), `machine` (one running guest: boot, saved state, ssh, stop) and `scenarios` (the guest's setup and the real-tool checks,
//! a file per family of scenarios).

mod cache;
mod image;
mod instance;
mod machine;
mod scenarios;

use anyhow::{bail, Result};
use std::time::Instant;

use crate::shell;
use instance::Instance;

#[derive(Debug, clap::Args)]
pub struct VmArgs {
    #[command(subcommand)]
    command: VmCommand,
}

#[derive(Debug, clap::Subcommand)]
enum VmCommand {
    /// Build the guest image in /var/cache/ari-vm, or reuse it when its recipe is unchanged.
    Build {
        /// Rebuild even when the cached image matches the recipe.
        #[arg(long)]
        force: bool,
    },
    /// Boot a guest for manual use (stop it with `cargo xtask vm down`).
    Up,
    /// Build if needed, boot a guest, run the real-tool scenarios, stop the guest.
    Test {
        /// Run only the scenarios whose name contains one of these words.
        filters: Vec<String>,
    },
    /// Run a command in the guest started by `up` (no command: an interactive shell).
    Ssh {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Stop the guest started by `up` and remove its disks.
    Down,
}

pub fn run(args: &VmArgs) -> Result<()> {
    match &args.command {
        VmCommand::Build { force } => {
            shell::header("VM image");
            image::ensure(*force)?;
            Ok(())
        }
        VmCommand::Up => {
            let image = image::ensure(false)?;
            shell::header("booting the guest");
            let instance = Instance::dev();
            if instance.is_running()? {
                bail!(
                    "a guest is already running (state file {}); stop it with `cargo xtask vm down`",
                    instance.state_path().display()
                );
            }
            let vm = machine::boot(&image, &instance)?;
            let port = vm.port;
            // The guest outlives this command on purpose; `down` finds it through the state file.
            vm.detach();
            println!("guest up on 127.0.0.1:{port}; `cargo xtask vm ssh` to enter it, `cargo xtask vm down` to stop it");
            Ok(())
        }
        VmCommand::Test { filters } => test(filters),
        VmCommand::Ssh { command } => {
            let instance = Instance::dev();
            let state = instance.read_state()?;
            let status = machine::interactive_ssh(&state, command)?;
            if !status.success() {
                bail!("ssh to the guest: {status}");
            }
            Ok(())
        }
        VmCommand::Down => {
            let instance = Instance::dev();
            if instance.stop_recorded()? {
                println!("guest stopped");
            } else {
                println!("no guest was running");
            }
            Ok(())
        }
    }
}

/// `cargo xtask vm test` and the VM tier of `cargo xtask test`: build (if needed), boot, run
/// every scenario, stop, and fail if any scenario failed. The guest is stopped whatever
/// happened after it booted.
pub fn test(filters: &[String]) -> Result<()> {
    let started = Instant::now();
    let selected = scenarios::select(filters)?;
    shell::header("building ari for the scenarios");
    shell::run(shell::cargo().args(["build", "-p", "ari-cli"]))?;
    let ari = shell::target_dir().join("debug/ari");
    // The package scenario installs the .deb that `cargo xtask deb` builds and checks.
    let deb = if selected.contains(&scenarios::PACKAGE_SCENARIO) { Some(crate::deb::build()?) } else { None };

    shell::header("VM image");
    let instance = Instance::test();
    // Held until this function returns, after the guest is stopped: one test run at a time on
    // a machine (see `Instance::lock`). Taken before the image, so that a run which must
    // rebuild it waits for a running guest to be stopped instead of refusing.
    let _run = instance.lock()?;
    let image = image::ensure(false)?;

    shell::header("booting the guest");
    // With the lock held, a guest recorded here belongs to a run that died without stopping
    // it (its lock went with it): stop it before reusing its directory.
    if instance.stop_recorded()? {
        println!("stopped a test guest left behind by an earlier run");
    }
    let mut vm = machine::boot(&image, &instance)?;
    let summary = scenarios::run_all(&vm, &ari, deb.as_deref(), &selected);
    shell::header("stopping the guest");
    let stopped = vm.stop();
    println!("VM tier took {:.1} s", started.elapsed().as_secs_f64());
    // The closing line CI reads; alone on its line.
    println!("{} passed, {} failed", summary.passed, summary.failed);
    stopped?;
    if summary.failed > 0 {
        bail!("{} of {} VM scenarios failed", summary.failed, summary.passed + summary.failed);
    }
    Ok(())
}
