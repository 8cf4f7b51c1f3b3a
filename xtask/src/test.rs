//! `cargo xtask test`: the one command that runs every check, used by the
//! README and by CI (.ci/run). The work is a list of tiers, each a list of
//! named steps run in order; the first failing step stops the run with a
//! non-zero exit: the host tier (system deps, fmt, clippy, build, doctests,
//! tests, the example third-party backend), then the VM tier (`cargo xtask
//! vm test`: real LVM and ZFS in a qemu guest), which `--no-vm` skips.

use crate::{deps, shell};
use anyhow::{Context, Result};
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Skip the VM tier (the qemu tests), e.g. on machines without KVM.
    #[arg(long)]
    no_vm: bool,

    /// Extra arguments for `cargo nextest run` (test filters, `-E expr`, ...);
    /// passed to `cargo test` as well when nextest is not installed.
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

/// One named unit of work; boxed closures so tiers can capture their options.
struct Step {
    title: String,
    action: Box<dyn FnOnce() -> Result<()>>,
}

impl Step {
    fn new(title: impl Into<String>, action: impl FnOnce() -> Result<()> + 'static) -> Self {
        Step { title: title.into(), action: Box::new(action) }
    }
}

/// A group of steps that share a purpose and a prerequisite (the host, a VM).
struct Tier {
    name: &'static str,
    steps: Vec<Step>,
}

pub fn run(args: &TestArgs) -> Result<()> {
    let started = Instant::now();
    let result = run_tiers(vec![host_tier(args), vm_tier(args)]);
    let elapsed = started.elapsed();
    match &result {
        Ok(()) => println!("\nall checks passed in {:.1} s", elapsed.as_secs_f64()),
        Err(_) => println!("\nchecks FAILED after {:.1} s", elapsed.as_secs_f64()),
    }
    result
}

fn run_tiers(tiers: Vec<Tier>) -> Result<()> {
    for tier in tiers {
        for step in tier.steps {
            shell::header(&format!("[{}] {}", tier.name, step.title));
            (step.action)().with_context(|| format!("step `{}` failed", step.title))?;
        }
    }
    Ok(())
}

/// Everything that runs directly on this machine.
fn host_tier(args: &TestArgs) -> Tier {
    let mut steps = vec![
        Step::new("system dependencies", deps::ensure),
        Step::new("formatting", || shell::run(shell::cargo().args(["fmt", "--all", "--", "--check"]))),
        Step::new("clippy", || {
            shell::run(shell::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        }),
        Step::new("build", || shell::run(shell::cargo().args(["build", "--workspace", "--all-targets"]))),
    ];

    // Decided up front so the step titles say which runner is used.
    let extra = args.nextest_args.clone();
    if shell::succeeds(shell::cargo().args(["nextest", "--version"])) {
        // nextest does not run doctests, so they get their own step; it runs first, so that
        // nextest's summary is the run's closing test line.
        steps.push(Step::new("doctests", || {
            shell::run(shell::cargo().args(["test", "--workspace", "--doc"]))
        }));
        steps.push(Step::new("tests (cargo nextest)", move || {
            shell::run(shell::cargo().args(["nextest", "run", "--workspace", "--no-fail-fast"]).args(extra))
        }));
    } else {
        steps.push(Step::new("tests (cargo test; install cargo-nextest for faster runs)", move || {
            // cargo test runs the doctests too, so no separate step.
            shell::run(shell::cargo().args(["test", "--workspace", "--no-fail-fast"]).args(extra))
        }));
    }
    // The example third-party crate, built outside the workspace as its authors would, then
    // used for real: the plugin API proved from outside (examples/ari-restic).
    steps.push(Step::new("example backend: fmt, clippy, build, unit tests (examples/ari-restic)", || {
        crate::example::build_and_unit_test()
    }));
    steps.push(Step::new("example backend: real restic backups and restores", crate::example::scenario));
    // The package as an admin installs it: built from a release binary, its paths and modes
    // checked, lintian without errors.
    steps.push(Step::new("Debian package (cargo xtask deb: contents, lintian)", || {
        crate::deb::build().map(|_| ())
    }));
    Tier { name: "host", steps }
}

/// The qemu tier (`cargo xtask vm test`): the real LVM and ZFS tools in a Debian guest, with
/// the image built or reused, the guest booted, the scenarios run and the guest stopped. A
/// guest that does not boot fails the tier; only `--no-vm` skips it.
fn vm_tier(args: &TestArgs) -> Tier {
    let step = if args.no_vm {
        Step::new("VM tests", || {
            println!("VM tier: skipped (--no-vm)");
            Ok(())
        })
    } else {
        Step::new("VM tests (real LVM and ZFS in a qemu guest)", || crate::vm::test(&[]))
    };
    Tier { name: "vm", steps: vec![step] }
}
