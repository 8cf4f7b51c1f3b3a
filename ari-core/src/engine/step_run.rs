//! Running one step: the proof of a destructive step's target before each try, the tries its
//! retry policy allows, the exit statuses it tolerates, and why it failed.

use std::time::{Duration, Instant};

use crate::contract::step::{Action, Command, Phase, Step};
use crate::engine::process::{self, ProcessError};
use crate::engine::runner::Runner;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// A command did not succeed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A check that must fail succeeded.
    #[error("{command} succeeded: {reason}")]
    Refused {
        /// The check and its host.
        command: String,
        /// Why that stops the job.
        reason: String,
    },
    /// A destructive step's target is not what ari made, so the step did not run.
    #[error("refused: {query} shows `{found}`, not `{expected}`, so its target is not what ari made")]
    NotOurs {
        /// The proving query and its host.
        query: String,
        /// What it should have shown.
        expected: String,
        /// What it showed.
        found: String,
    },
    /// A dynamic step could not make sense of its query's output; nothing was run.
    #[error("cannot use the output of {command}: {message}")]
    Expand {
        /// The query and its host.
        command: String,
        /// What was wrong.
        message: String,
    },
    /// Several commands of a dynamic step failed.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<ProcessError>),
    /// ari was interrupted while no step of the job was running: between two steps, or during
    /// cleanup or the post steps, which go on regardless.
    #[error("ari was interrupted {when}")]
    Interrupted {
        /// When: `between steps, after rdiff-backup succeeded`, `during cleanup`.
        when: String,
    },
    /// The job reached its deadline before this step started.
    #[error("not started: the job reached {limit}")]
    JobTimeout {
        /// `job_timeout 6h`.
        limit: String,
    },
    /// The spot check failed, or found files the backup does not hold as the host held them.
    #[error(transparent)]
    Verification(#[from] crate::engine::verify::VerifyFailure),
    /// Every stage of a dump's stream exited 0, but its bytes are not a whole dump of its format:
    /// the previous dump stays.
    #[error("dump {name} is not whole ({bytes} bytes): {why}; the previous dump is kept")]
    Dump {
        /// The dump's label.
        name: String,
        /// What its bytes lack.
        why: String,
        /// How many bytes came.
        bytes: u64,
    },
    /// The capacity check refused the job before anything ran: a store too full, a pool not
    /// healthy (see `engine::capacity`).
    #[error(
        "{why}: the job did not start (no hook ran, nothing was made){}",
        hint.as_deref().map(|hint| format!("; {hint}")).unwrap_or_default()
    )]
    Capacity {
        /// The figure and the threshold, or the pool's state.
        why: String,
        /// What to do about it, where ari knows.
        hint: Option<String>,
    },
    /// A third signal aborted cleanup before this step ran; the ledger keeps it.
    #[error("not run: cleanup was aborted; `ari recover` will undo it")]
    Aborted,
    /// The ledger could not be written, so the step did not run (or its entry stays).
    #[error("cannot update the ledger")]
    Ledger {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A repair did not run: a process of the step it repairs still runs, and might still write
    /// what the repair would change.
    #[error("not run: {process}, started by the step it repairs, is still running after {waited}; nothing is repaired while it may still write")]
    StillRunning {
        /// The process (`pid 4242 (rdiff-backup)`).
        process: String,
        /// How long ari waited for it to end (`10s`).
        waited: String,
    },
    /// An entry older than a repair whose process still runs: it stays for a later recovery.
    #[error("not run: {process}, started by the crashed run, is still running")]
    HeldBack {
        /// The process.
        process: String,
    },
    /// Whether a repair's process has ended could not be read from `/proc`.
    #[error("cannot tell whether the process of the step it repairs has ended")]
    Liveness {
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A failed step of a job.
#[derive(Debug)]
pub struct StepFailure {
    /// The step's name.
    pub step: String,
    /// Its phase.
    pub phase: Phase,
    /// What went wrong.
    pub error: StepError,
    /// What the step would have removed, now left behind (cleanup steps).
    pub removes: Option<String>,
}

impl StepFailure {
    pub(crate) fn new(step: &Step, error: StepError) -> StepFailure {
        StepFailure { step: step.name.clone(), phase: step.phase, error, removes: step.removes.clone() }
    }

    /// An interrupt that came while no step was running: it names no step, only when it came.
    pub(crate) fn interrupted(phase: Phase, when: String) -> StepFailure {
        StepFailure { step: String::new(), phase, error: StepError::Interrupted { when }, removes: None }
    }

    /// Whether the failure is of no step: an interrupt between steps.
    pub fn is_between_steps(&self) -> bool {
        self.step.is_empty()
    }
}

/// When an interrupt came that stopped no step: after the last step that ran, if one did.
pub(crate) fn between_steps(last: Option<&Step>) -> String {
    match last {
        Some(step) => format!("between steps, after {} succeeded", step.name),
        None => "before the first step".to_string(),
    }
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// The step's name.
    pub step: String,
    /// Its phase.
    pub phase: Phase,
    /// Where its command ran.
    pub host: String,
    /// The command as it ran (`` `lvcreate ...` on db``).
    pub command: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long it took, retries included.
    pub duration: Duration,
    /// What it transferred, when it is a backup step whose tool said.
    pub transfer: Option<crate::contract::step::Transfer>,
    /// What it found, when it is the spot check.
    pub(crate) verdict: Option<crate::engine::verify::compare::Verdict>,
    /// What it streamed, when it is a dump that ran: its label and size.
    pub(crate) dumped: Option<(String, u64)>,
    /// What it kept and destroyed, when it is a retention step that judged.
    pub(crate) retained: Option<Retained>,
    /// What the run report says beside it (a retention step's clock skew).
    pub(crate) warnings: Vec<String>,
}

/// How many backups a retention step kept and destroyed, for the report and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retained {
    /// Candidates kept.
    pub kept: usize,
    /// Candidates destroyed.
    pub destroyed: usize,
    /// The time of the newest backup it kept (none dated in the future), seconds since the epoch:
    /// for a zfs-send job, the newest snapshot replicated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<i64>,
}

impl StepRecord {
    /// The record of `step`, which ended with `result` after `duration`, retries included.
    pub(crate) fn of(
        step: &Step,
        result: &Result<Option<crate::contract::step::Transfer>, StepError>,
        duration: Duration,
    ) -> StepRecord {
        StepRecord {
            step: step.name.clone(),
            phase: step.phase,
            host: step.action.command().host.to_string(),
            command: step.action.command().to_string(),
            error: result.as_ref().err().map(|e| e.to_string()),
            duration,
            transfer: result.as_ref().ok().copied().flatten(),
            verdict: None,
            dumped: None,
            retained: None,
            warnings: Vec::new(),
        }
    }
}

/// Runs an undo step only while what it removes is still there: an undo whose thing is gone
/// (a snapshot already removed, a directory never made) has nothing to do.
pub(crate) fn undo_if_present(
    step: &Step,
    runner: &Runner,
    records: &mut Vec<StepRecord>,
) -> Result<(), StepError> {
    if let Some(present) = &step.present {
        match runner.run(&present.query) {
            Ok(_) => {}
            Err(ProcessError::Exited { .. }) => {
                log::info!(
                    "{}: nothing to undo, {} is gone",
                    step.name,
                    step.removes.as_deref().unwrap_or("it")
                );
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
    }
    run_step(step, runner, records)
}

/// Says that `step` failed with `error` and will be tried again (`attempt` of its retries), and
/// waits its retry interval.
pub(crate) fn wait_to_retry(step: &Step, attempt: u32, error: &StepError) {
    log::warn!(
        "{} failed, retry {attempt} of {} in {}s: {error}",
        step.name,
        step.retry.max_retries,
        step.retry.interval.as_secs()
    );
    std::thread::sleep(step.retry.interval);
}

pub(crate) fn run_step(step: &Step, runner: &Runner, records: &mut Vec<StepRecord>) -> Result<(), StepError> {
    let clock = Instant::now();
    let mut attempt = 0;
    let result = loop {
        let result = attempt_step(step, runner, None);
        match result {
            Err(ref error) if attempt < step.retry.max_retries && !runner.is_cancelled() => {
                attempt += 1;
                wait_to_retry(step, attempt, error);
            }
            result => break result,
        }
    };
    records.push(StepRecord::of(step, &result, clock.elapsed()));
    result.map(|_| ())
}

/// Runs a spot check's two sides at once with a fresh seed and judges them; `since` is when the
/// backup started (for a live check). Its record holds the verdict, failed or not.
pub(crate) fn run_verify(
    step: &Step,
    sides: &crate::contract::step::VerifySides,
    runner: &Runner,
    since: Option<f64>,
    records: &mut Vec<StepRecord>,
) -> Result<(), StepError> {
    let clock = Instant::now();
    let result = crate::engine::verify::attempt(sides, runner, since).map_err(StepError::from);
    let verdict = match &result {
        Ok(verdict) => Some(verdict.clone()),
        Err(StepError::Verification(failure)) => failure.verdict().cloned(),
        Err(_) => None,
    };
    // The store marks the backup it compared, once there is a verdict (a ZFS user property):
    // a mark that fails is a warning, the verdict stands.
    if let (Some((passed, failed)), Some(verdict), false) = (&sides.marks, &verdict, runner.is_dry_run()) {
        let mark = if verdict.passed() { passed } else { failed };
        if let Err(err) = runner.run(mark) {
            log::warn!("the compared backup could not be marked: {}", crate::contract::error::chain(&err));
        }
    }
    let mut record = StepRecord::of(step, &Ok(None), clock.elapsed());
    record.error = result.as_ref().err().map(ToString::to_string);
    record.verdict = verdict;
    records.push(record);
    result.map(|_| ())
}

/// Streams a dump into the store's temporary name and checks its bytes by its format; its record
/// holds its size, whether it succeeded or not (a dump cut short has the size it reached).
pub(crate) fn run_dump(
    step: &Step,
    stream: &crate::contract::step::DumpStream,
    runner: &Runner,
    records: &mut Vec<StepRecord>,
) -> Result<(), StepError> {
    let clock = Instant::now();
    let (bytes, result) = attempt_dump(stream, runner);
    let result = result.map(|()| None);
    let mut record = StepRecord::of(step, &result, clock.elapsed());
    record.dumped = Some((stream.name.clone(), bytes)).filter(|_| !runner.is_dry_run());
    records.push(record);
    if result.is_ok() && !runner.is_dry_run() {
        log::info!(
            "dump {}: {bytes} bytes in {}",
            stream.name,
            crate::engine::process::humane(clock.elapsed())
        );
    }
    result.map(|_| ())
}

/// Streams a dump and checks it: how many bytes the dump tool wrote, and how it ended.
fn attempt_dump(stream: &crate::contract::step::DumpStream, runner: &Runner) -> (u64, Result<(), StepError>) {
    let runner = runner.clone().with_step_timeout(stream.timeout, "the dump's timeout");
    let sinks: Vec<&crate::contract::step::Command> =
        stream.compress.iter().chain([&stream.writer]).collect();
    let keep = crate::contract::end_check::EndCheck::TAIL;
    let streamed = match runner.stream(&stream.source, &sinks, keep) {
        Ok(streamed) => streamed,
        Err(stopped) => return (stopped.bytes, Err(stopped.error.into())),
    };
    if runner.is_dry_run() {
        return (0, Ok(()));
    }
    let judged = stream.check.judge(&streamed.head, &streamed.tail).map_err(|why| StepError::Dump {
        name: stream.name.clone(),
        why,
        bytes: streamed.bytes,
    });
    (streamed.bytes, judged)
}

/// Runs a step once; what it transferred, when it reports that. A command step with `on_start`
/// is started through [`Runner::run_watched`].
pub(crate) fn attempt_step(
    step: &Step,
    runner: &Runner,
    on_start: Option<process::OnStart<'_>>,
) -> Result<Option<crate::contract::step::Transfer>, StepError> {
    // A destructive step proves its target first, every time: `lvremove` only a snapshot of
    // the job's own volume.
    if let Some(probe) = step.present.as_ref().filter(|p| p.expect.is_some()) {
        let output = runner.run(&probe.query)?;
        let shown = output.stdout().map_err(|too_long| StepError::Expand {
            command: probe.query.to_string(),
            message: too_long.to_string(),
        })?;
        if !runner.is_dry_run() && !probe.matches(shown) {
            return Err(StepError::NotOurs {
                query: probe.query.to_string(),
                expected: probe.expect.as_deref().unwrap_or_default().join(" "),
                found: shown.split_whitespace().collect::<Vec<_>>().join(" "),
            });
        }
    }
    match &step.action {
        Action::Run(command) => match on_start
            .map_or_else(|| runner.run(command), |f| runner.run_watched(command, f))
        {
            Ok(output) => {
                Ok(step.statistics.filter(|_| !runner.is_dry_run()).map(|read| read(output.shown_stdout())))
            }
            Err(ref error)
                if crate::engine::process::counts_as_success(&step.tolerated, error, &step.name) =>
            {
                Ok(None)
            }
            Err(error) => Err(error.into()),
        },
        Action::RefuseIf { command, reason } => match runner.run(command) {
            Ok(_) if runner.is_dry_run() => Ok(None),
            Ok(_) => Err(StepError::Refused { command: command.to_string(), reason: reason.clone() }),
            Err(ProcessError::Exited { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        },
        Action::Dump(stream) => attempt_dump(stream, runner).1.map(|()| None),
        // Its judgement is the plan's: the pipeline runs it (`retention::run`).
        Action::Retention(listing) => Err(StepError::Expand {
            command: listing.to_string(),
            message: "a retention step runs only in its job's pipeline".into(),
        }),
        // The pipeline runs a spot check with the backup's start; elsewhere it is live.
        Action::Verify(sides) => Ok(crate::engine::verify::attempt(sides, runner, None).map(|_| None)?),
        Action::Gather { queries, expand } => gather(step, queries, expand, runner),
        Action::Dynamic { query, expand } => {
            let output = runner.run(query)?;
            if runner.is_dry_run() {
                return Ok(None);
            }
            let commands = output
                .stdout()
                .map_err(|too_long| too_long.to_string())
                .and_then(|printed| expand(printed).map_err(|err| err.to_string()))
                .map_err(|message| StepError::Expand { command: query.to_string(), message })?;
            declared(step, query, commands.iter())?;
            let errors: Vec<ProcessError> =
                commands.iter().filter_map(|command| runner.run(command).err()).collect();
            let mut errors = errors.into_iter();
            match (errors.next(), errors.next()) {
                (None, _) => Ok(None),
                (Some(only), None) => Err(only.into()),
                (Some(first), Some(second)) => {
                    Err(StepError::Several([first, second].into_iter().chain(errors).collect()))
                }
            }
        }
    }
}

/// Refuses a remote command the step does not declare: what `ari authorize` lets through a
/// host's filter is what the step may expand to. `query` names the step's query in the error.
fn declared<'a>(
    step: &Step,
    query: &Command,
    mut commands: impl Iterator<Item = &'a Command>,
) -> Result<(), StepError> {
    let undeclared = commands.find(|command| {
        !command.host.is_local()
            && !step.may_run.iter().any(|pattern| {
                pattern.host == command.host && pattern.matches(&crate::contract::step::remote_line(command))
            })
    });
    match undeclared {
        None => Ok(()),
        Some(undeclared) => Err(StepError::Expand {
            command: query.to_string(),
            message: format!(
                "it expanded to `{undeclared}`, which is none of the commands the step declares it may run there"
            ),
        }),
    }
}

/// A gathering step: its queries, then what they derive, in order, ending at the first failure;
/// what its streams carried is its transfer.
fn gather(
    step: &Step,
    queries: &[Command],
    expand: &crate::contract::step::Gather,
    runner: &Runner,
) -> Result<Option<crate::contract::step::Transfer>, StepError> {
    let mut outputs = Vec::with_capacity(queries.len());
    for query in queries {
        outputs.push((query, runner.run(query)?));
    }
    if runner.is_dry_run() {
        return Ok(None);
    }
    let mut printed = Vec::with_capacity(outputs.len());
    for (query, output) in &outputs {
        let text = output.stdout().map_err(|too_long| StepError::Expand {
            command: query.to_string(),
            message: too_long.to_string(),
        })?;
        printed.push(text);
    }
    // Named by the step, not by its queries (whole scripts, which would bury the message).
    let named = || format!("the queries of step `{}`", step.name);
    let work =
        expand(&printed).map_err(|err| StepError::Expand { command: named(), message: err.to_string() })?;
    declared(step, &queries[0], work.iter().flat_map(|work| work.commands()))?;
    let mut streamed: Option<u64> = None;
    for work in &work {
        match work {
            crate::contract::step::Work::Run(command) => {
                runner.run(command)?;
            }
            crate::contract::step::Work::Stream(stages) => {
                let [source, sinks @ ..] = stages.as_slice() else { continue };
                if sinks.is_empty() {
                    return Err(StepError::Expand {
                        command: source.to_string(),
                        message: "a stream needs a command that reads it".into(),
                    });
                }
                let sinks: Vec<&Command> = sinks.iter().collect();
                let bytes =
                    runner.stream(source, &sinks, 0).map_err(|stopped| StepError::from(stopped.error))?;
                streamed = Some(streamed.unwrap_or(0).saturating_add(bytes.bytes));
            }
        }
    }
    Ok(streamed.map(|bytes| crate::contract::step::Transfer::new(None, Some(bytes))))
}
