//! The exit codes of `ari`, in one place (documented in `docs/exit-codes.md`).
//!
//! A job's result maps to one of these; a run of several jobs exits with the worst of them.

/// Every job succeeded.
pub const SUCCESS: i32 = 0;
/// A job failed, and its cleanup succeeded: nothing is left behind.
pub const JOB_FAILED: i32 = 1;
/// Usage, config or missing-tool error: nothing ran.
pub const USAGE: i32 = 2;
/// A cleanup step failed: something (a snapshot, a mount) may be left behind.
pub const CLEANUP_FAILED: i32 = 3;

/// Combines two exit codes into the one that tells the admin most: cleanup failures beat usage
/// errors, which beat job failures, which beat success.
pub fn worst(a: i32, b: i32) -> i32 {
    let rank = |code: i32| match code {
        SUCCESS => 0,
        JOB_FAILED => 1,
        USAGE => 2,
        CLEANUP_FAILED => 3,
        _ => 1,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_prefers_what_needs_attention() {
        let check = |a, b, expected| assert_eq!(worst(a, b), expected, "worst({a}, {b})");
        check(SUCCESS, SUCCESS, SUCCESS);
        check(SUCCESS, JOB_FAILED, JOB_FAILED);
        check(JOB_FAILED, SUCCESS, JOB_FAILED);
        check(JOB_FAILED, CLEANUP_FAILED, CLEANUP_FAILED);
        check(CLEANUP_FAILED, USAGE, CLEANUP_FAILED);
        check(USAGE, JOB_FAILED, USAGE);
    }
}
