//! The capacity of an rdiff job's store: the filesystem of `backup_store_path` (which must exist
//! before a job starts, while `backup_store_path/LABEL` is made by the first backup), as GNU
//! `stat --file-system` reads it on the backup server. The plan names that path whatever exists
//! below it, so that planning reads nothing; a job directory that is a filesystem of its own is
//! not what is measured. There is no pool.

use ari_core::capacity::{CapacityQuery, Space};
use ari_core::plugin::{JobContext, PluginError};
use ari_core::step::{Command, Host};
use ari_core::ConfigError;

use crate::settings::BACKUP_STORE_PATH;

/// The query for the job's store.
pub(crate) fn query(job: &JobContext) -> Result<Option<CapacityQuery>, ConfigError> {
    let store = job.require(&BACKUP_STORE_PATH)?;
    Ok(Some(CapacityQuery::new(store.clone(), command(&store), read)))
}

/// The filesystem's fundamental block size, its size in blocks, and the blocks free to a user
/// who is not root (what `df` shows as available), one line.
fn command(path: &str) -> Command {
    Command::argv(Host::Local, ["stat", "--file-system", "--format=%S %b %a", "--", path])
}

/// Reads `BLOCK_SIZE TOTAL_BLOCKS AVAILABLE_BLOCKS`: one line of three whole numbers, a block
/// size above 0, and sizes that fit in 64 bits.
pub(crate) fn read(printed: &str) -> Result<Space, PluginError> {
    let unreadable = || {
        PluginError::new(format!(
            "`{}` is not `BLOCK_SIZE BLOCKS AVAILABLE` as stat --file-system prints them",
            ari_core::kinds::shown(printed.trim_end())
        ))
    };
    let line = printed.strip_suffix('\n').ok_or_else(unreadable)?;
    let numbers: Vec<u64> = line
        .split(' ')
        .map(|word| {
            if word.is_empty() || word.len() > 20 || !word.bytes().all(|b| b.is_ascii_digit()) {
                return Err(unreadable());
            }
            word.parse::<u64>().map_err(|_| unreadable())
        })
        .collect::<Result<_, _>>()?;
    let [block, blocks, available] = numbers[..] else { return Err(unreadable()) };
    if block == 0 {
        return Err(unreadable());
    }
    let bytes = |count: u64| {
        count.checked_mul(block).ok_or_else(|| {
            PluginError::new(format!("{count} blocks of {block} bytes is more bytes than ari counts"))
        })
    };
    Space::new(bytes(blocks)?, bytes(available)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_s_figures_are_read_strictly() {
        let check = |printed: &str, expected: Option<(u64, u64)>| {
            let read = read(printed).ok().map(|space| (space.total_bytes, space.available_bytes));
            assert_eq!(read, expected, "{printed:?}");
        };
        check("4096 1000 250\n", Some((4_096_000, 1_024_000)));
        check("1024 0 0\n", Some((0, 0)));
        check("4096 1000 250", None);
        check("4096 1000 250\n\n", None);
        check("4096 1000\n", None);
        check("4096 1000 250 7\n", None);
        check("4096  1000 250\n", None);
        check("0 1000 250\n", None);
        check("4096 -1000 250\n", None);
        check("4096 1000 2000\n", None);
        check("4096 1000 +250\n", None);
        check("? 1000 250\n", None);
        check("4096 18446744073709551615 1\n", None);
        check("", None);
    }
}
