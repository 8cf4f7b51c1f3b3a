//! SIGINT, SIGTERM and SIGHUP: the first stops the running command (its whole process group)
//! and lets cleanup and the post steps run as after a failure; a second is refused, because
//! cleanup must not be interrupted; a third aborts cleanup, leaving the ledger for `ari recover`.
//! The handlers only count: a thread reads them (signal-hook) and sets two flags that the
//! runners poll.

use std::sync::atomic::Ordering;

use ari_core::engine_api::job_run::StopFlags;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Installs the handlers and starts the thread that counts signals into the flags it returns.
pub fn install() -> std::io::Result<StopFlags> {
    let flags = StopFlags::default();
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let counted = flags.clone();
    std::thread::spawn(move || {
        for (count, signal) in signals.forever().enumerate() {
            let name = match signal {
                SIGINT => "SIGINT",
                SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            match count {
                0 => {
                    counted.interrupted.store(true, Ordering::SeqCst);
                    eprintln!("ari: received {name}: stopping the running command, then cleaning up");
                }
                1 => eprintln!(
                    "ari: received {name} again: cleanup is not interrupted by a second signal; a third one aborts it and leaves the ledger for `ari recover`"
                ),
                _ => {
                    counted.abort.store(true, Ordering::SeqCst);
                    eprintln!("ari: received {name} a third time: aborting cleanup; run `ari recover` to undo what is left");
                }
            }
        }
    });
    Ok(flags)
}
