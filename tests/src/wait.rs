//! Waiting for an event, never for a time: a test polls for what it needs (a call in the fakes'
//! log, a marker file, a line on stderr, a process asleep) and decides on what it saw. The
//! deadline only ends a hang; no test passes or fails because some time went by.

use std::thread;
use std::time::{Duration, Instant};

/// How long [`eventually`] polls before it gives up: far longer than any event takes on a
/// loaded machine, so that reaching it means the event will not come.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// How often [`eventually`] looks.
const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` until it holds, for at most [`WAIT_LIMIT`]; whether it came to hold.
pub fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}
