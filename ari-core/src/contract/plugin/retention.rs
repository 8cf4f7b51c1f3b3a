//! What a store's retention keeps and destroys ([`Retention`]): the backend lists its backups
//! and judges each one; the engine destroys what the judgement leaves unkept, after a
//! successful backup, and shows the same judgement in `ari plan --preview`, `ari history` and
//! `ari prune --dry-run`. The engine, not the backend, enforces what no rule may break: nothing
//! is destroyed when the stale guard holds, the newest backup is never destroyed, and a destroying
//! command runs only if it matches the pattern the backend declared (what `ari authorize` lets
//! through a host's filter).

use std::fmt;
use std::sync::Arc;

use super::error::PluginError;
use crate::contract::step::{Command, CommandPattern};

/// How far a backup's time may lie from the backup server's clock before its store host's clock
/// counts as wrong: the engine keeps a backup dated more than this after now (`future`), and a
/// backend that knows a backup's time otherwise trusts that over a store's date this far off.
pub const CLOCK_SLACK: i64 = 3600;

/// One backup that retention may destroy, judged: the rules that keep it, or none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Its name in the store, as the history lists it.
    pub(crate) name: String,
    /// When it was made, seconds since the epoch.
    pub(crate) time: i64,
    /// The rules that keep it (`daily`, `keep_min`), in the backend's words; empty when the
    /// next run destroys it.
    pub(crate) kept_by: Vec<String>,
    /// When the store dated it, if that is not `time` (the store host's clock was off when it
    /// was made, and the backend knows the backup's time otherwise: from its name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) store_dated: Option<i64>,
}

impl Verdict {
    /// The backup `name`, made at `time`, kept by `kept_by` (none: destroyed).
    pub fn new(name: impl Into<String>, time: i64, kept_by: Vec<String>) -> Verdict {
        Verdict { name: name.into(), time, kept_by, store_dated: None }
    }

    /// The same, dated `creation` by the store, which is not its time: the store host's clock
    /// was off when the backup was made, and `time` is what the backend knows otherwise (the
    /// time in its name). The run report says so.
    pub fn dated_by_store(self, creation: i64) -> Verdict {
        Verdict { store_dated: Some(creation), ..self }
    }

    /// Its name in the store.
    #[doc(hidden)]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it was made, seconds since the epoch.
    #[doc(hidden)]
    pub fn time(&self) -> i64 {
        self.time
    }

    /// The rules that keep it; empty when it is destroyed.
    #[doc(hidden)]
    pub fn kept_by(&self) -> &[String] {
        &self.kept_by
    }
}

/// Reads a listing's output, at a time (seconds since the epoch), into verdicts.
pub(crate) type Judge = Arc<dyn Fn(&str, i64) -> Result<Vec<Verdict>, PluginError> + Send + Sync>;

/// The command that destroys one backup, by name.
pub(crate) type Destroy = Arc<dyn Fn(&str) -> Command + Send + Sync>;

/// How a backend's retention lists, judges and destroys its backups: see the module's notes.
#[derive(Clone)]
pub struct Retention {
    /// The step's name (`zfs expiry`).
    pub(crate) name: String,
    /// Lists the backups; it must not change anything (`ari plan --preview` runs it).
    pub(crate) listing: Command,
    /// Judges what the listing printed.
    pub(crate) judge: Judge,
    /// Destroys one backup.
    pub(crate) destroy: Destroy,
    /// What every destroying command must match.
    pub(crate) destroys: CommandPattern,
    /// Whether the backups a run adds keep the times they had elsewhere
    /// ([`Retention::keeping_their_times`]).
    pub(crate) copies: bool,
}

impl Retention {
    /// A retention step named `name`: `listing` lists the store's backups without changing
    /// anything; `judge` reads what it printed, at a time in seconds since the epoch, into a
    /// verdict for each backup that retention may destroy (only the backend's own: another
    /// tool's snapshots are no candidates, and are left out); `destroy` is the command that
    /// destroys one, by name, and must match `destroys`.
    pub fn new(
        name: impl Into<String>,
        listing: Command,
        judge: impl Fn(&str, i64) -> Result<Vec<Verdict>, PluginError> + Send + Sync + 'static,
        destroy: impl Fn(&str) -> Command + Send + Sync + 'static,
        destroys: CommandPattern,
    ) -> Retention {
        Retention {
            name: name.into(),
            listing,
            judge: Arc::new(judge),
            destroy: Arc::new(destroy),
            destroys,
            copies: false,
        }
    }

    /// The same, for a store whose runs add backups that keep the times they had elsewhere (a
    /// replicated ZFS snapshot keeps the sender's `creation`): a backup a run added that is
    /// dated long before it says nothing of the store host's clock, so the engine judges by its
    /// own. What a run added is still kept by that run.
    pub fn keeping_their_times(mut self) -> Retention {
        self.copies = true;
        self
    }

    /// The command that lists the backups.
    #[doc(hidden)]
    pub fn listing(&self) -> &Command {
        &self.listing
    }
}

impl fmt::Debug for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retention")
            .field("name", &self.name)
            .field("listing", &self.listing)
            .field("destroys", &self.destroys)
            .finish()
    }
}
