//! What the attacks on retention and a wrong clock share: the real clock, the names of the
//! retention world's snapshots, ten real daily ones, what a run made, and `ari` with periods
//! read in UTC.

use std::process::Output;

use crate::worlds::{zfs_calls, World, ZFS_DATASET};

/// A day, in seconds.
pub const DAY: i64 = 86_400;

/// Now, by the real clock, in seconds since the epoch.
pub fn real_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The full name of the snapshot `name` of [`ZFS_DATASET`].
pub fn snap(name: &str) -> String {
    format!("{ZFS_DATASET}@{name}")
}

/// Ten real daily snapshots, 1..=10 days old by the real clock.
pub fn ten_days() -> Vec<(String, i64)> {
    (1..=10).map(|d| (snap(&format!("ari-backup-day{d}")), real_now() - d * DAY)).collect()
}

/// The snapshots that `zfs snapshot` made, in order.
pub fn made(world: &World) -> Vec<String> {
    zfs_calls(world, "snapshot").into_iter().map(|args| args[1].clone()).collect()
}

/// `ari ARGS` in the world, periods read in `tz`.
pub fn ari_in(world: &World, tz: &str, args: &[&str]) -> Output {
    crate::run(world.ari().env("TZ", tz).args(args))
}

/// What `ari` printed, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
