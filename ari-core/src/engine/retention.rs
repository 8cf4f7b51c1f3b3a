//! Retention: the post step that destroys what a backend's judgement leaves unkept
//! ([`Retention`]), and the preview of the same judgement (`ari plan --preview`, `ari
//! history`, `ari prune --dry-run`). What no backend's rule may break is enforced here: the
//! newest backup is never destroyed, a backup is judged once, and a destroying command runs only
//! if it matches the pattern the backend declared.

use std::time::Instant;

use crate::contract::plugin::{Retention, Verdict};
use crate::contract::step::{remote_line, Command};
use crate::engine::runner::Runner;
use crate::engine::step_run::{Retained, StepError, StepRecord};

/// What the judgement decided: every candidate's verdict, oldest first, and the commands that
/// destroy the unkept ones.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) verdicts: Vec<Verdict>,
    pub(crate) destroy: Vec<Command>,
}

/// Judges what the listing printed, at `now`.
pub(crate) fn decide(retention: &Retention, listing: &str, now: i64) -> Result<Decision, String> {
    let mut verdicts = (retention.judge)(listing, now).map_err(|err| err.to_string())?;
    verdicts.sort_by(|a, b| (a.time, &a.name).cmp(&(b.time, &b.name)));
    let mut names: Vec<&str> = verdicts.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("the judgement names `{}` twice; nothing is destroyed", twice[0]));
    }
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
    Ok(Decision { verdicts, destroy })
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
    .showing(format!("{shows}, for each backup that no rule keeps"))
}

/// Runs a retention step: the listing, the judgement, then each destroying command, none after
/// `stopped` says so (a signal: what is not destroyed stays, which is always safe); its record
/// says how many it kept and destroyed.
pub(crate) fn run(
    step: &crate::contract::step::Step,
    retention: &Retention,
    runner: &Runner,
    stopped: &dyn Fn() -> bool,
    records: &mut Vec<StepRecord>,
) -> Result<(), StepError> {
    let clock = Instant::now();
    let (retained, result) = attempt(retention, runner, stopped);
    let mut record = StepRecord::of(step, &Ok(None), clock.elapsed());
    record.error = result.as_ref().err().map(ToString::to_string);
    record.retained = retained;
    records.push(record);
    result
}

fn attempt(
    retention: &Retention,
    runner: &Runner,
    stopped: &dyn Fn() -> bool,
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
        .and_then(|printed| decide(retention, printed, now))
    {
        Ok(decision) => decision,
        Err(message) => {
            let command = retention.listing.to_string();
            return (None, Err(StepError::Expand { command, message }));
        }
    };
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
    let mut verdicts = decide(retention, printed, jiff::Timestamp::now().as_second())?.verdicts;
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
        let decision =
            decide(&retention(&[("c", 30, true), ("a", 10, false), ("b", 20, false)], "pool/x@"), "", 0)
                .unwrap();
        let names: Vec<&str> = decision.verdicts.iter().map(|v| v.name()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let lines: Vec<String> = decision.destroy.iter().map(remote_line).collect();
        assert_eq!(lines, ["zfs destroy pool/x@a", "zfs destroy pool/x@b"]);
    }

    #[test]
    fn what_no_rule_may_break_is_refused_whatever_the_backend_judged() {
        let refused = |verdicts: &'static [(&'static str, i64, bool)], destroy: &'static str, why: &str| {
            let err = decide(&retention(verdicts, destroy), "", 0).unwrap_err();
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
        assert!(decide(&retention(&[], "pool/x@"), "", 0).unwrap().destroy.is_empty());
    }
}
