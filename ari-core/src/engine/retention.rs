//! Retention: the post step that destroys what a backend's judgement leaves unkept
//! ([`Retention`]), and the preview of the same judgement (`ari plan --preview`, `ari
//! history`, `ari prune --dry-run`). What no backend's rule may break is enforced here: the
//! newest backup is never destroyed, nor one that the run itself made (whatever the store
//! host's clock dated it), a backup is judged once, and a destroying command runs only if it
//! matches the pattern the backend declared.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::contract::plugin::{Retention, Verdict};
use crate::contract::step::{remote_line, Command};
use crate::engine::runner::Runner;
use crate::engine::step_run::{Retained, StepError, StepRecord};

/// What the judgement decided: every candidate's verdict, oldest first, the commands that
/// destroy the unkept ones, and what the run report says beside them.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) verdicts: Vec<Verdict>,
    pub(crate) destroy: Vec<Command>,
    pub(crate) warnings: Vec<String>,
}

/// Judges what the listing printed, at `now`; what is new since `before` is the run's, and kept.
pub(crate) fn decide(
    retention: &Retention,
    listing: &str,
    now: i64,
    before: &Before,
) -> Result<Decision, String> {
    let mut verdicts = (retention.judge)(listing, now).map_err(|err| err.to_string())?;
    verdicts.sort_by(|a, b| (a.time, &a.name).cmp(&(b.time, &b.name)));
    let mut names: Vec<&str> = verdicts.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("the judgement names `{}` twice; nothing is destroyed", twice[0]));
    }
    let warnings = keep_this_runs(&mut verdicts, before, now, &retention.name);
    if let Some(newest) = verdicts.last().filter(|newest| newest.kept_by.is_empty()) {
        return Err(format!(
            "refusing to destroy `{}`: it is the newest backup, which retention always keeps",
            newest.name
        ));
    }
    let destroy: Vec<Command> =
        verdicts.iter().filter(|v| v.kept_by.is_empty()).map(|v| (retention.destroy)(&v.name)).collect();
    let pattern = &retention.destroys;
    if let Some(other) =
        destroy.iter().find(|command| command.host != pattern.host || !pattern.matches(&remote_line(command)))
    {
        return Err(format!(
            "refusing `{other}`: it is not the destroying command the backend declared (`{}`)",
            pattern.template
        ));
    }
    Ok(Decision { verdicts, destroy, warnings })
}

/// How far a backup's time may lie from the backup server's clock before the run report says
/// that the store host's clock is off.
const CLOCK_SLACK: i64 = 3600;

/// The rule that keeps a backup that the run itself made.
pub(crate) const THIS_RUN: &str = "this run";
/// The rule that keeps a backup dated more than [`CLOCK_SLACK`] after now.
const FUTURE: &str = "future";

/// The backups a store held before the run, which its retention step compares with: what is
/// new since is this run's, and kept whatever its time says.
#[derive(Debug)]
pub(crate) enum Before {
    /// Nothing to compare with: a prune, or a dry run, makes no backup.
    NoneMade,
    /// The names the store's listing gave before the backup.
    Listed(BTreeSet<String>),
    /// The listing failed or could not be judged: why. Nothing is destroyed then, since what
    /// the run made cannot be told from what was there.
    Unknown(String),
}

/// Lists the store's backups before the backup (the retention's own read-only listing, judged
/// at `now`), so that the retention step after it can tell what the run made.
pub(crate) fn before(retention: &Retention, runner: &Runner) -> Before {
    let listed = runner
        .run(&retention.listing)
        .map_err(|err| crate::contract::error::chain(&err))
        .and_then(|output| output.stdout().map(str::to_string).map_err(|too_long| too_long.to_string()))
        .and_then(|printed| {
            (retention.judge)(&printed, jiff::Timestamp::now().as_second()).map_err(|err| err.to_string())
        });
    match listed {
        Ok(verdicts) => Before::Listed(verdicts.into_iter().map(|v| v.name).collect()),
        Err(why) => {
            log::warn!(
                "{}: the store's backups could not be listed before the backup: {why}",
                retention.name
            );
            Before::Unknown(why)
        }
    }
}

/// Keeps what the run made (`before` did not list it; when it could not list, everything), and
/// says what the backups' times tell of the store host's clock: a backup of this run dated far
/// from `now`, backups from the future.
fn keep_this_runs(verdicts: &mut [Verdict], before: &Before, now: i64, step: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let new = |verdict: &Verdict| match before {
        Before::NoneMade => false,
        Before::Listed(names) => !names.contains(&verdict.name),
        Before::Unknown(_) => true,
    };
    for verdict in verdicts.iter_mut().filter(|v| new(v)) {
        verdict.kept_by.push(THIS_RUN.to_string());
        let off = verdict.time.saturating_sub(now);
        if matches!(before, Before::Listed(_)) && off.unsigned_abs() > CLOCK_SLACK.unsigned_abs() {
            warnings.push(format!(
                "the backup this run made, `{}`, is dated {} {} this server's clock: is the store host's \
                 clock wrong? It is kept, but {step} judges the others by their dates",
                verdict.name,
                crate::engine::process::humane_days(off.unsigned_abs()),
                if off > 0 { "after" } else { "before" },
            ));
        }
    }
    if let Before::Unknown(why) = before {
        warnings.push(format!(
            "{step} destroyed nothing: the store's backups could not be listed before the backup ({why}), \
             so what this run made cannot be told from what was there"
        ));
    }
    // A backup from the future is kept, whatever the backend judged: its date says nothing of
    // its age.
    let mut ahead = 0;
    for verdict in verdicts.iter_mut().filter(|v| v.time.saturating_sub(now) > CLOCK_SLACK) {
        ahead += 1;
        if verdict.kept_by.is_empty() {
            verdict.kept_by.push(FUTURE.to_string());
        }
    }
    if ahead > 0 {
        warnings.push(format!(
            "{ahead} of the store's backups are dated in the future, more than an hour after this server's \
             clock (is the store host's clock ahead?): {step} keeps them until their dates have passed"
        ));
    }
    warnings
}

/// The engine's retention step, after the backend's post steps: `retention`'s listing, then the
/// judgement and the destroying commands it declared (`run`).
pub(crate) fn step(retention: &Retention) -> crate::contract::step::Step {
    use crate::contract::step::{Action, Phase, Step};
    let shows = retention.destroys.template.replace("{}", "...");
    Step {
        action: Action::Retention(retention.listing.clone()),
        ..Step::run(Phase::Post, &retention.name, retention.listing.clone())
    }
    .may_run(retention.destroys.clone())
    .showing(format!(
        "{shows}, for each backup that no rule keeps (nor the run made: the listing runs before the backup too)"
    ))
}

/// Runs a retention step: the listing, the judgement (what the run made, by `before`, is
/// kept), then each destroying command, none after `stopped` says so (a signal: what is not
/// destroyed stays, which is always safe); its record says how many it kept and destroyed, and
/// what the backups' dates say of the store host's clock. `runner` stops at a signal: a listing
/// or a destroy that hangs must not hold the job.
pub(crate) fn run(
    step: &crate::contract::step::Step,
    retention: &Retention,
    before: &Before,
    runner: &Runner,
    stopped: &dyn Fn() -> bool,
    records: &mut Vec<StepRecord>,
) -> Result<(), StepError> {
    let clock = Instant::now();
    let mut warnings = Vec::new();
    let (retained, result) = attempt(retention, before, runner, stopped, &mut warnings);
    let mut record = StepRecord::of(step, &Ok(None), clock.elapsed());
    record.error = result.as_ref().err().map(ToString::to_string);
    record.retained = retained;
    record.warnings = warnings;
    records.push(record);
    result
}

fn attempt(
    retention: &Retention,
    before: &Before,
    runner: &Runner,
    stopped: &dyn Fn() -> bool,
    warnings: &mut Vec<String>,
) -> (Option<Retained>, Result<(), StepError>) {
    let output = match runner.run(&retention.listing) {
        Ok(output) => output,
        Err(error) => return (None, Err(error.into())),
    };
    if runner.is_dry_run() {
        return (None, Ok(()));
    }
    let now = jiff::Timestamp::now().as_second();
    let decision = match output
        .stdout()
        .map_err(|too_long| too_long.to_string())
        .and_then(|printed| decide(retention, printed, now, before))
    {
        Ok(decision) => decision,
        Err(message) => {
            let command = retention.listing.to_string();
            return (None, Err(StepError::Expand { command, message }));
        }
    };
    for warning in &decision.warnings {
        log::warn!("{warning}");
    }
    warnings.extend(decision.warnings.iter().cloned());
    let mut errors = Vec::new();
    let mut destroyed = 0;
    for (i, command) in decision.destroy.iter().enumerate() {
        if stopped() {
            log::warn!(
                "{}: interrupted; {} backups it would have destroyed stay",
                retention.name,
                decision.destroy.len() - i
            );
            break;
        }
        match runner.run(command) {
            Ok(_) => destroyed += 1,
            Err(error) => errors.push(error),
        }
    }
    // A backup whose destruction failed, or was not tried, is still there: kept, as far as the
    // store goes.
    let kept = decision.verdicts.len() - destroyed;
    log::info!("{}: kept {kept}, destroyed {destroyed}", retention.name);
    let retained = Retained { kept, destroyed };
    let mut errors = errors.into_iter();
    let result = match (errors.next(), errors.next()) {
        (None, _) => Ok(()),
        (Some(only), None) => Err(only.into()),
        (Some(first), Some(second)) => {
            Err(StepError::Several([first, second].into_iter().chain(errors).collect()))
        }
    };
    (Some(retained), result)
}

/// What the next run's retention would keep and destroy: the listing runs (it only reads), the
/// judgement is made at this moment, and nothing is destroyed. With a guard holding (`held`:
/// its name, `stale guard`), every backup is kept by it.
pub(crate) fn preview(
    retention: &Retention,
    runner: &Runner,
    held: Option<&str>,
) -> Result<Vec<Verdict>, String> {
    let output = runner.run(&retention.listing).map_err(|err| crate::contract::error::chain(&err))?;
    let printed = output.stdout().map_err(|too_long| too_long.to_string())?;
    let mut verdicts =
        decide(retention, printed, jiff::Timestamp::now().as_second(), &Before::NoneMade)?.verdicts;
    if let Some(guard) = held {
        for verdict in verdicts.iter_mut().filter(|v| v.kept_by.is_empty()) {
            verdict.kept_by.push(guard.to_string());
        }
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::step::{Chars, CommandPattern, Host};

    /// A retention whose judge gives `verdicts` (name, time, kept), destroying with `destroy`
    /// on `host`, declared as `zfs destroy pool/x@{}`.
    fn retention(verdicts: &'static [(&'static str, i64, bool)], destroy: &'static str) -> Retention {
        let host = Host::named("store");
        let declared = CommandPattern::argv_then(
            host.clone(),
            ["zfs", "destroy", "pool/x@"],
            Chars::new("a name", "a-z0-9-"),
        );
        Retention::new(
            "expiry",
            Command::argv(host.clone(), ["zfs", "list"]),
            move |_, _| {
                Ok(verdicts
                    .iter()
                    .map(|(name, time, kept)| {
                        Verdict::new(*name, *time, if *kept { vec!["daily".into()] } else { vec![] })
                    })
                    .collect())
            },
            move |name| Command::argv(host.clone(), ["zfs", "destroy", &format!("{destroy}{name}")]),
            declared,
        )
    }

    #[test]
    fn the_unkept_are_destroyed_oldest_first() {
        let decision = decide(
            &retention(&[("c", 30, true), ("a", 10, false), ("b", 20, false)], "pool/x@"),
            "",
            0,
            &Before::NoneMade,
        )
        .unwrap();
        let names: Vec<&str> = decision.verdicts.iter().map(|v| v.name()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let lines: Vec<String> = decision.destroy.iter().map(remote_line).collect();
        assert_eq!(lines, ["zfs destroy pool/x@a", "zfs destroy pool/x@b"]);
    }

    #[test]
    fn what_no_rule_may_break_is_refused_whatever_the_backend_judged() {
        let refused = |verdicts: &'static [(&'static str, i64, bool)], destroy: &'static str, why: &str| {
            let err = decide(&retention(verdicts, destroy), "", 0, &Before::NoneMade).unwrap_err();
            assert!(err.contains(why), "{err}");
        };
        refused(&[("a", 10, true), ("b", 20, false)], "pool/x@", "`b`: it is the newest backup");
        refused(&[("a", 10, false)], "pool/x@", "`a`: it is the newest backup");
        refused(&[("a", 10, false), ("a", 20, true)], "pool/x@", "names `a` twice");
        // A destroying command that is not the declared one: another dataset, an option.
        refused(
            &[("a", 10, false), ("b", 20, true)],
            "pool/y@",
            "is not the destroying command the backend declared",
        );
        refused(&[("a", 10, false), ("b", 20, true)], "-r pool/x@", "is not the destroying command");
        // Nothing to judge is nothing to destroy.
        assert!(decide(&retention(&[], "pool/x@"), "", 0, &Before::NoneMade).unwrap().destroy.is_empty());
    }

    #[test]
    fn what_the_run_made_is_kept_whatever_its_date_and_a_clock_that_is_off_is_said() {
        let listed = |names: &[&str]| Before::Listed(names.iter().map(|n| n.to_string()).collect());
        let destroyed = |decision: &Decision| decision.destroy.iter().map(remote_line).collect::<Vec<_>>();
        // The store host's clock a year behind: the run's backup `new` is the oldest, unkept.
        let behind =
            retention(&[("new", 0, false), ("a", 300 * 86_400, false), ("b", 301 * 86_400, true)], "pool/x@");
        let now = 365 * 86_400;
        let decision = decide(&behind, "", now, &listed(&["a", "b"])).unwrap();
        assert_eq!(destroyed(&decision), ["zfs destroy pool/x@a"]);
        assert_eq!(decision.verdicts[0].kept_by, [THIS_RUN]);
        assert_eq!(decision.warnings.len(), 1, "{:?}", decision.warnings);
        assert!(decision.warnings[0].contains("`new`, is dated 365 days before"), "{:?}", decision.warnings);
        // A run whose listing before the backup failed destroys nothing, and says why.
        let unknown = decide(&behind, "", now, &Before::Unknown("ssh: timed out".into())).unwrap();
        assert!(unknown.destroy.is_empty());
        assert!(unknown
            .warnings
            .iter()
            .any(|w| w.contains("could not be listed before the backup (ssh: timed out)")));
        // A prune made nothing: the same judgement destroys what no rule keeps, and the newest
        // rule still holds (`new` is not the newest by date).
        let pruned = decide(&behind, "", now, &Before::NoneMade).unwrap();
        assert_eq!(destroyed(&pruned), ["zfs destroy pool/x@new", "zfs destroy pool/x@a"]);
        // A backup from the future is kept even by a backend that judged it unkept.
        let ahead = retention(&[("a", 10, false), ("b", 20, true), ("ahead", 100 + 7200, false)], "pool/x@");
        let decision = decide(&ahead, "", 100, &Before::NoneMade).unwrap();
        assert_eq!(destroyed(&decision), ["zfs destroy pool/x@a"]);
        assert_eq!(decision.verdicts[2].kept_by, ["future"]);
        // A clock that agrees says nothing.
        let agreed = retention(&[("a", 10, false), ("new", 100, false)], "pool/x@");
        let decision = decide(&agreed, "", 100, &listed(&["a"])).unwrap();
        assert_eq!(destroyed(&decision), ["zfs destroy pool/x@a"]);
        assert!(decision.warnings.is_empty(), "{:?}", decision.warnings);
    }
}
