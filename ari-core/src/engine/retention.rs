//! Retention: the post step that destroys what a backend's judgement leaves unkept
//! ([`Retention`]), and the preview of the same judgement (`ari plan --preview`, `ari
//! history`, `ari prune --dry-run`). What no backend's rule may break is enforced here: the
//! newest backup is never destroyed, nor one that the run itself made (whatever the store
//! host's clock dated it), a backup is judged once, and a destroying command runs only if it
//! matches the pattern the backend declared.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::contract::plugin::{Retention, Verdict, CLOCK_SLACK};
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
/// When the backup the run made is dated far from `now`, the store host's clock is off, and the
/// judgement is made by the earlier of the two clocks: a store host's clock behind dated its
/// other backups too, and judging them by the server's clock would destroy them run after run;
/// a clock ahead would make every backup look older than it is. By the earlier clock, no backup
/// looks older than it is, and those that look newer are kept ([`FUTURE`]).
pub(crate) fn decide(
    retention: &Retention,
    listing: &str,
    now: i64,
    before: &Before,
) -> Result<Decision, String> {
    let mut verdicts = judged(retention, listing, now)?;
    let mut warnings = Vec::new();
    // The earliest of what the run made: any other new one (a snapshot a hook made, a line a
    // hostile host added) dated later only keeps more by being taken for the run's. Only a
    // listing before the backup tells what the run made (when it failed, every backup counts
    // as the run's, to keep it, but none tells the store host's clock).
    // A store whose runs add copies dated elsewhere (replicated snapshots) says nothing of its
    // clock by them.
    let (made, listed_at) = match before {
        Before::Listed { at, .. } if !retention.copies => {
            (verdicts.iter().filter(|v| before.made(v)).min_by_key(|v| v.time), *at)
        }
        _ => (None, now),
    };
    let mut now = now;
    // Off: dated before the listing that came before the backup, or after now, by more than
    // the slack (a backup made at the start of a long run is no sign of a wrong clock).
    let off =
        |time: i64| time < listed_at.saturating_sub(CLOCK_SLACK) || time > now.saturating_add(CLOCK_SLACK);
    if let Some(made) = made.filter(|made| off(made.time)) {
        let behind = made.time < listed_at;
        let off = if behind { made.time.abs_diff(listed_at) } else { made.time.abs_diff(now) };
        warnings.push(format!(
            "the backup this run made, `{}`, is dated {} {} this server's clock: is the store host's clock \
             wrong? {} {} until the two agree",
            made.name,
            crate::engine::process::humane_days(off),
            if behind { "before" } else { "after" },
            retention.name,
            if behind {
                "judges the store's backups by the store host's clock"
            } else {
                "keeps the store's backups dated after this server's clock"
            },
        ));
        if behind {
            now = made.time;
            verdicts = judged(retention, listing, now)?;
        }
    }
    let misdated = verdicts.iter().filter(|v| v.store_dated.is_some()).count();
    if misdated > 0 {
        warnings.push(format!(
            "{misdated} of the store's backups are dated by the store host far from the time ari named them \
             (the store host's clock was off when they were made): {} judges them by the time in their names",
            retention.name
        ));
    }
    warnings.extend(keep_this_runs(&mut verdicts, before, now, &retention.name));
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

/// The backend's judgement of the listing at `now`, oldest first, each backup named once.
fn judged(retention: &Retention, listing: &str, now: i64) -> Result<Vec<Verdict>, String> {
    let mut verdicts = (retention.judge)(listing, now).map_err(|err| err.to_string())?;
    verdicts.sort_by(|a, b| (a.time, &a.name).cmp(&(b.time, &b.name)));
    let mut names: Vec<&str> = verdicts.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("the judgement names `{}` twice; nothing is destroyed", twice[0]));
    }
    Ok(verdicts)
}

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
    /// The backups the store's listing gave before the backup, by name and time: a name that
    /// the run made again after its backup went (a second run within the timestamp's minute) is
    /// another backup.
    Listed {
        /// Name and time of each.
        backups: BTreeSet<(String, i64)>,
        /// When it was listed, by the backup server's clock.
        at: i64,
    },
    /// The listing failed or could not be judged: why. Nothing is destroyed then, since what
    /// the run made cannot be told from what was there.
    Unknown(String),
}

impl Before {
    /// Whether the run made `verdict`'s backup: the listing before it did not hold it (when it
    /// could not list, every backup counts as the run's).
    fn made(&self, verdict: &Verdict) -> bool {
        match self {
            Before::NoneMade => false,
            Before::Listed { backups, .. } => !backups.contains(&(verdict.name.clone(), verdict.time)),
            Before::Unknown(_) => true,
        }
    }
}

/// The step that lists the store's backups before the backup, as the run report shows it.
pub(crate) fn before_step(retention: &Retention) -> crate::contract::step::Step {
    use crate::contract::step::{Phase, Step};
    Step::run(
        Phase::Capacity,
        format!("{} listing before the backup", retention.name),
        retention.listing.clone(),
    )
}

/// Lists the store's backups before the backup (`step`: the retention's own read-only listing,
/// judged at this moment), so that the retention step after it can tell what the run made; its
/// record goes to `records`. A listing that fails leaves what the run made unknown (nothing is
/// destroyed then), unless ari was interrupted or the job's deadline passed: that stops the job.
pub(crate) fn before(
    step: &crate::contract::step::Step,
    retention: &Retention,
    runner: &Runner,
    records: &mut Vec<StepRecord>,
) -> Result<Before, StepError> {
    let clock = Instant::now();
    let at = jiff::Timestamp::now().as_second();
    let output = runner.run(&retention.listing);
    let stopped = runner.is_cancelled() || runner.job_expired().is_some();
    let listed = match output {
        Err(error) if stopped => {
            let error = StepError::from(error);
            let mut record = StepRecord::of(step, &Ok(None), clock.elapsed());
            record.error = Some(error.to_string());
            records.push(record);
            return Err(error);
        }
        Err(error) => Err(crate::contract::error::chain(&error)),
        Ok(output) => output
            .stdout()
            .map_err(|too_long| too_long.to_string())
            .and_then(|printed| (retention.judge)(printed, at).map_err(|err| err.to_string())),
    };
    let mut record = StepRecord::of(step, &Ok(None), clock.elapsed());
    record.error = listed.as_ref().err().cloned();
    records.push(record);
    Ok(match listed {
        Ok(verdicts) => {
            Before::Listed { backups: verdicts.into_iter().map(|v| (v.name, v.time)).collect(), at }
        }
        Err(why) => {
            log::warn!(
                "{}: the store's backups could not be listed before the backup: {why}",
                retention.name
            );
            Before::Unknown(why)
        }
    })
}

/// Keeps what the run made (`before` did not list it; when it could not list, everything), and
/// backups dated after `now` by more than [`CLOCK_SLACK`], and says so.
fn keep_this_runs(verdicts: &mut [Verdict], before: &Before, now: i64, step: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for verdict in verdicts.iter_mut().filter(|v| before.made(v)) {
        verdict.kept_by.push(THIS_RUN.to_string());
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
/// kept), then each destroying command, none after a signal (what is not destroyed stays, which
/// is always safe); its record says how many it kept and destroyed, and what the backups' dates
/// say of the store host's clock. `runner` is the job's, which a signal and the deadline stop: a
/// listing or a destroy that hangs must not hold the job.
pub(crate) fn run(
    step: &crate::contract::step::Step,
    retention: &Retention,
    before: &Before,
    runner: &Runner,
    records: &mut Vec<StepRecord>,
) -> Result<(), StepError> {
    let clock = Instant::now();
    let (retained, warnings, result) = attempt(retention, before, runner);
    let mut record = StepRecord::of(step, &Ok(None), clock.elapsed());
    record.error = result.as_ref().err().map(ToString::to_string);
    record.retained = retained;
    record.warnings = warnings;
    records.push(record);
    result
}

/// What a retention step kept and destroyed, what it warned of, and how it ended.
type Attempt = (Option<Retained>, Vec<String>, Result<(), StepError>);

fn attempt(retention: &Retention, before: &Before, runner: &Runner) -> Attempt {
    let output = match runner.run(&retention.listing) {
        Ok(output) => output,
        Err(error) => return (None, Vec::new(), Err(error.into())),
    };
    if runner.is_dry_run() {
        return (None, Vec::new(), Ok(()));
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
            return (None, Vec::new(), Err(StepError::Expand { command, message }));
        }
    };
    for warning in &decision.warnings {
        log::warn!("{warning}");
    }
    let mut errors = Vec::new();
    let mut destroyed = 0;
    for (i, command) in decision.destroy.iter().enumerate() {
        if runner.is_cancelled() {
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
    let newest = decision
        .verdicts
        .iter()
        .filter(|v| !v.kept_by.is_empty() && !v.kept_by.iter().any(|by| by == FUTURE))
        .map(|v| v.time)
        .max();
    let retained = Retained { kept, destroyed, newest };
    let mut errors = errors.into_iter();
    let result = match (errors.next(), errors.next()) {
        (None, _) => Ok(()),
        (Some(only), None) => Err(only.into()),
        (Some(first), Some(second)) => {
            Err(StepError::Several([first, second].into_iter().chain(errors).collect()))
        }
    };
    (Some(retained), decision.warnings, result)
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
        let listed = |names: &[(&str, i64)], at: i64| Before::Listed {
            backups: names.iter().map(|(name, time)| (name.to_string(), *time)).collect(),
            at,
        };
        let destroyed = |decision: &Decision| decision.destroy.iter().map(remote_line).collect::<Vec<_>>();
        // The store host's clock a year behind: the run's backup `new` is the oldest, unkept.
        let behind =
            retention(&[("new", 0, false), ("a", 300 * 86_400, false), ("b", 301 * 86_400, true)], "pool/x@");
        let now = 365 * 86_400;
        let decision =
            decide(&behind, "", now, &listed(&[("a", 300 * 86_400), ("b", 301 * 86_400)], now)).unwrap();
        // Judged by the store host's clock (`new`'s date), `a` and `b` are from its future: kept.
        assert!(destroyed(&decision).is_empty(), "{:?}", destroyed(&decision));
        assert_eq!(decision.verdicts[0].kept_by, [THIS_RUN]);
        assert_eq!(decision.verdicts[1].kept_by, [FUTURE]);
        assert_eq!(decision.warnings.len(), 2, "{:?}", decision.warnings);
        assert!(decision.warnings[0].contains("`new`, is dated 365 days before"), "{:?}", decision.warnings);
        assert!(decision.warnings[0].contains("by the store host's clock"), "{:?}", decision.warnings);
        assert!(decision.warnings[1].contains("2 of the store's backups are dated in the future"));
        // A backup named as one the listing before held, but of another time, is the run's (a
        // name freed and taken again within the timestamp's minute).
        let renamed = decide(&behind, "", now, &listed(&[("new", 5), ("a", 300 * 86_400)], now)).unwrap();
        assert_eq!(renamed.verdicts[0].kept_by, [THIS_RUN]);
        // A run whose listing before the backup failed destroys nothing, and says why.
        let unknown = decide(&behind, "", now, &Before::Unknown("ssh: timed out".into())).unwrap();
        assert!(unknown.destroy.is_empty());
        assert!(unknown
            .warnings
            .iter()
            .any(|w| w.contains("could not be listed before the backup (ssh: timed out)")));
        assert!(
            !unknown.warnings.iter().any(|w| w.contains("the backup this run made")),
            "{:?}",
            unknown.warnings
        );
        // A prune made nothing: the same judgement destroys what no rule keeps, and the newest
        // rule still holds (`new` is not the newest by date).
        let pruned = decide(&behind, "", now, &Before::NoneMade).unwrap();
        assert_eq!(destroyed(&pruned), ["zfs destroy pool/x@new", "zfs destroy pool/x@a"]);
        // A backup from the future is kept even by a backend that judged it unkept.
        let ahead = retention(&[("a", 10, false), ("b", 20, true), ("ahead", 100 + 7200, false)], "pool/x@");
        let decision = decide(&ahead, "", 100, &Before::NoneMade).unwrap();
        assert_eq!(destroyed(&decision), ["zfs destroy pool/x@a"]);
        assert_eq!(decision.verdicts[2].kept_by, [FUTURE]);
        // A store of copies (replicated snapshots, dated by their sender): what the run added long
        // ago says nothing of the store's clock; it is kept, and the rest judged by this clock.
        let copies = behind.clone().keeping_their_times();
        let decision =
            decide(&copies, "", now, &listed(&[("a", 300 * 86_400), ("b", 301 * 86_400)], now)).unwrap();
        assert_eq!(destroyed(&decision), ["zfs destroy pool/x@a"]);
        assert_eq!(decision.verdicts[0].kept_by, [THIS_RUN]);
        assert!(decision.warnings.is_empty(), "{:?}", decision.warnings);
        // A clock that agrees says nothing.
        let agreed = retention(&[("a", 10, false), ("new", 100, false)], "pool/x@");
        let decision = decide(&agreed, "", 100, &listed(&[("a", 10)], 100)).unwrap();
        assert_eq!(destroyed(&decision), ["zfs destroy pool/x@a"]);
        assert!(decision.warnings.is_empty(), "{:?}", decision.warnings);
    }

    #[test]
    fn a_store_host_whose_clock_is_off_is_judged_by_the_earlier_clock() {
        const DAY: i64 = 86_400;
        // A judge that keeps what is younger than ten days at the `now` it is given.
        let host = Host::named("store");
        let declared = CommandPattern::argv_then(
            host.clone(),
            ["zfs", "destroy", "pool/x@"],
            Chars::new("a name", "a-z0-9-"),
        );
        let aging = Retention::new(
            "expiry",
            Command::argv(host.clone(), ["zfs", "list"]),
            |_, now| {
                Ok([("old", 600 * DAY), ("prev", 634 * DAY), ("new", 635 * DAY)]
                    .into_iter()
                    .map(|(name, time)| {
                        Verdict::new(
                            name,
                            time,
                            if now - time < 10 * DAY { vec!["age".into()] } else { vec![] },
                        )
                    })
                    .collect())
            },
            move |name| Command::argv(host.clone(), ["zfs", "destroy", &format!("pool/x@{name}")]),
            declared,
        );
        // The server's clock a year ahead of the store host's: by the server's, `prev` (the last
        // run's backup) is old; by the store host's, which dated `new` a moment ago, it is a day.
        let listed = |at| Before::Listed {
            backups: [("old".to_string(), 600 * DAY), ("prev".to_string(), 634 * DAY)].into(),
            at,
        };
        let decision = decide(&aging, "", 1000 * DAY, &listed(1000 * DAY)).unwrap();
        let destroyed: Vec<String> = decision.destroy.iter().map(remote_line).collect();
        assert_eq!(destroyed, ["zfs destroy pool/x@old"]);
        assert_eq!(decision.verdicts[1].kept_by, ["age"]);
        assert_eq!(decision.verdicts[2].kept_by, ["age", THIS_RUN]);
        // A store host's clock ahead: by its clock `old` would be 35 days old, by the server's
        // it lies in the future. The earlier clock judges: nothing is destroyed.
        let decision = decide(&aging, "", 500 * DAY, &listed(500 * DAY)).unwrap();
        assert!(decision.destroy.is_empty(), "{:?}", decision.destroy);
        assert!(decision.verdicts.iter().all(|v| !v.kept_by.is_empty()), "{:?}", decision.verdicts);
        assert!(decision.warnings[0].contains("keeps the store's backups dated after this server's clock"));
        // A run that took two hours after its backup (a long spot check): no clock is off.
        let decision = decide(&aging, "", 635 * DAY + 7200, &listed(635 * DAY - 60)).unwrap();
        assert!(decision.warnings.is_empty(), "{:?}", decision.warnings);
    }

    #[test]
    fn the_earliest_new_backup_is_the_runs_and_a_misdated_one_is_said() {
        // Two new backups: the run's, dated by a store clock a year behind, and one dated right
        // (a snapshot a hook received). The earlier is the run's: judged by the store's clock,
        // the old ones are from its future, kept.
        let two = retention(
            &[("new", 0, false), ("a", 300 * 86_400, false), ("other", 365 * 86_400, true)],
            "pool/x@",
        );
        let before = Before::Listed { backups: [("a".to_string(), 300 * 86_400)].into(), at: 365 * 86_400 };
        let decision = decide(&two, "", 365 * 86_400, &before).unwrap();
        assert!(decision.destroy.is_empty(), "{:?}", decision.destroy);
        // A backend that knows a backup's time otherwise (its name) says what the store dated it.
        let judge = |_: &str, _: i64| {
            Ok(vec![
                Verdict::new("x", 100, vec![]).dated_by_store(100 - 86_400),
                Verdict::new("y", 200, vec!["daily".into()]),
            ])
        };
        let host = Host::named("store");
        let misdated = Retention::new(
            "expiry",
            Command::argv(host.clone(), ["zfs", "list"]),
            judge,
            move |name| Command::argv(host.clone(), ["zfs", "destroy", &format!("pool/x@{name}")]),
            CommandPattern::argv_then(
                Host::named("store"),
                ["zfs", "destroy", "pool/x@"],
                Chars::new("a name", "a-z0-9-"),
            ),
        );
        let decision = decide(&misdated, "", 300, &Before::NoneMade).unwrap();
        assert!(
            decision.warnings.iter().any(|w| w.contains(
                "1 of the store's backups are dated by the store host far from the time ari named them"
            )),
            "{:?}",
            decision.warnings
        );
    }
}
