//! The capacity of a zfs job's store: the dataset's `available` (which its quota, and its
//! parents', bound) and its size as `used + available`, from `zfs get -H -p` on the ZFS host;
//! and the health of its pool (`zpool status`, read by `pool.rs`): its state and the end of its
//! last scrub. Both are read strictly: output that is not exactly what the tool prints is an
//! error, which stops the job before anything runs.

use ari_core::capacity::{CapacityQuery, Pool, Space};
use ari_core::plugin::PluginError;
use ari_core::step::{Command, Host};

/// The query for `dataset` on `host`.
pub(crate) fn query(host: Host, dataset: &str) -> CapacityQuery {
    let pool = pool_of(dataset).to_string();
    let space =
        Command::argv(host.clone(), ["zfs", "get", "-H", "-p", "-o", "value", "available,used", dataset]);
    CapacityQuery::new(dataset, space, read_space).with_pool(
        pool.clone(),
        crate::pool::status_command(host, &pool),
        move |printed: &str| read_pool(&pool, printed),
    )
}

/// The pool a dataset lies on: its name's first part.
pub(crate) fn pool_of(dataset: &str) -> &str {
    dataset.split('/').next().unwrap_or(dataset)
}

/// Reads `zfs get -H -p -o value available,used`: two lines, each a whole number of bytes, in
/// that order.
pub(crate) fn read_space(printed: &str) -> Result<Space, PluginError> {
    let unreadable = || {
        PluginError::new(format!(
            "`{}` is not the dataset's available and used bytes, a line each, as zfs get -H -p prints them",
            ari_core::kinds::shown(printed.trim_end())
        ))
    };
    let lines: Vec<&str> = printed.strip_suffix('\n').ok_or_else(unreadable)?.split('\n').collect();
    let [available, used] = lines[..] else { return Err(unreadable()) };
    let number = |word: &str| {
        if word.is_empty() || word.len() > 20 || !word.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unreadable());
        }
        word.parse::<u64>().map_err(|_| unreadable())
    };
    let (available, used) = (number(available)?, number(used)?);
    let total = available.checked_add(used).ok_or_else(unreadable)?;
    Space::new(total, available)
}

/// Reads `zpool status POOL` of `pool`: its `pool:` line must name it.
pub(crate) fn read_pool(pool: &str, printed: &str) -> Result<Pool, PluginError> {
    let named = printed.lines().find_map(|line| line.trim_start().strip_prefix("pool:")).map(str::trim);
    if named != Some(pool) {
        return Err(PluginError::new(format!(
            "zpool status names the pool `{}`, not `{pool}`",
            ari_core::kinds::shown(named.unwrap_or_default())
        )));
    }
    let status = crate::pool::read_status(printed)?;
    let last_scrub = match status.scan {
        crate::pool::Scan::Scrubbed { at, .. } => Some(at),
        _ => None,
    };
    Pool::new(pool, status.state, last_scrub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dataset_s_space_is_read_strictly() {
        let check = |printed: &str, expected: Option<(u64, u64)>| {
            let read = read_space(printed).ok().map(|space| (space.total_bytes, space.available_bytes));
            assert_eq!(read, expected, "{printed:?}");
        };
        check("1000\n4000\n", Some((5000, 1000)));
        check("0\n0\n", Some((0, 0)));
        check("1000\n4000", None);
        check("1000\n", None);
        check("1000\n4000\n7\n", None);
        check("1000\t4000\n", None);
        check("1.5G\n4000\n", None);
        check("-\n4000\n", None);
        check("1000\n\n", None);
        check(" 1000\n4000\n", None);
        check("18446744073709551615\n1\n", None);
        check("", None);
    }

    const STATUS: &str = "  pool: tank
 state: DEGRADED
status: One or more devices could not be opened.
  scan: scrub repaired 0B in 00:00:01 with 0 errors on Sun Dec  6 00:24:01 2026
config:

\tNAME        STATE     READ WRITE CKSUM
\ttank        DEGRADED     0     0     0
\t  mirror-0  DEGRADED     0     0     0
\t    /a      ONLINE       0     0     0
\t    /b      UNAVAIL      0     0     0

errors: No known data errors
";

    #[test]
    fn a_pool_s_health_is_its_state_and_last_scrub() {
        let pool = read_pool("tank", STATUS).unwrap();
        assert_eq!((pool.state.as_str(), pool.last_scrub), ("DEGRADED", Some(1_796_516_641)));
        let never = read_pool(
            "tank",
            &STATUS.replace(
                "scrub repaired 0B in 00:00:01 with 0 errors on Sun Dec  6 00:24:01 2026",
                "none requested",
            ),
        )
        .unwrap();
        assert_eq!(never.last_scrub, None);
        for state in ["FAULTED", "UNAVAIL", "SUSPENDED"] {
            let text = STATUS.replace(" state: DEGRADED", &format!(" state: {state}"));
            assert_eq!(read_pool("tank", &text).unwrap().state, state);
        }
        assert!(read_pool("other", STATUS).is_err(), "another pool's status");
        assert!(read_pool("tank", "").is_err());
        assert!(read_pool("tank", &STATUS.replace(" state: DEGRADED", " state: degraded")).is_err());
        assert!(read_pool("tank", &STATUS.replace("Sun Dec  6 00:24:01 2026", "soon")).is_err());
    }

    #[test]
    fn the_query_reads_the_pool_first_on_the_zfs_host() {
        let query = query(Host::named("zfs1"), "tank/backups/web");
        let lines: Vec<String> = query.commands().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "`env TZ=UTC zpool status tank` on zfs1",
                "`zfs get -H -p -o value available,used tank/backups/web` on zfs1"
            ]
        );
        assert_eq!(query.store(), "tank/backups/web");
    }
}
