//! How a benchmark measures a command: its wall time from spawn to reaping and its peak RSS,
//! read from wait4 (std's `Child::wait` does not return resource usage), and the median of
//! a batch. Every benchmark of `cargo xtask bench` measures through this file.

use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::shell;

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) wall: Duration,
    /// ru_maxrss from wait4, in KiB (Linux's unit).
    pub(super) max_rss_kib: i64,
    /// User and system CPU time from wait4: the command's and that of the children it waited
    /// for.
    pub(super) cpu: Duration,
}

impl Sample {
    pub(super) fn mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }

    pub(super) fn ms(&self) -> f64 {
        self.wall.as_secs_f64() * 1e3
    }

    pub(super) fn cpu_ms(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3
    }
}

/// Runs `cmd` to completion, timing it from spawn to reaping, and reads its
/// peak RSS from wait4.
///
/// std's Child::wait does not return resource usage, so we reap the child
/// ourselves. Linux's wait4 reports the larger of the child's own peak RSS
/// and that of the descendants it waited for: for `ari run` that includes
/// rdiff-backup, for a dry run (which spawns nothing) it is ari alone.
pub(super) fn measure(cmd: &mut Command, log: &Path) -> Result<Sample> {
    let (sample, status) = reap(cmd, log)?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let output = fs::read_to_string(log).unwrap_or_default();
        bail!("`{}` failed ({}); its output:\n{output}", shell::display(cmd), describe_status(status));
    }
    Ok(sample)
}

/// As [`measure`], for a command whose refusal is what is measured: its exit code, whatever it
/// is; killed by a signal is still an error.
pub(super) fn measure_any_exit(cmd: &mut Command, log: &Path) -> Result<(Sample, i32)> {
    let (sample, status) = reap(cmd, log)?;
    if !libc::WIFEXITED(status) {
        bail!("`{}` did not exit ({})", shell::display(cmd), describe_status(status));
    }
    Ok((sample, libc::WEXITSTATUS(status)))
}

/// Runs `cmd` to completion with its output in `log`: its sample and its wait status.
fn reap(cmd: &mut Command, log: &Path) -> Result<(Sample, libc::c_int)> {
    let shown = shell::display(cmd);
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("could not start `{shown}`"))?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child, and both out-pointers are
        // valid for writes for the duration of the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("waiting for `{shown}`"));
        }
    }
    let wall = started.elapsed();
    // Already reaped above; dropping a std Child neither waits nor kills.
    drop(child);
    let time =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let cpu = time(usage.ru_utime) + time(usage.ru_stime);
    Ok((Sample { wall, max_rss_kib: usage.ru_maxrss, cpu }, status))
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// The median; the mean of the two middle values for an even count, NaN
/// for no values.
pub(super) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }
}
