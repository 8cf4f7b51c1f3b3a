//! The job pipeline: a job's steps as one plan, and the one function that runs a plan.
//!
//! Order: `pre` → snapshot → `after_snapshot` → main → cleanup (the undo of every snapshot step
//! that succeeded, in reverse order) → the backend's post steps → `post`. The first failure
//! before cleanup stops the steps before cleanup; every cleanup and post step runs whatever
//! happened before it, and all their errors are collected. `ari plan` prints the same plan that
//! [`run`] executes.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::contract::core_settings::{RETRY_BACKUP, SSH_CONNECTION_SHARING, STATE_DIR};
use crate::contract::error::ConfigError;
use crate::contract::job::{HookCommand, Job};
use crate::contract::plugin::{self, Directory, Facts, JobContext, Provided, Tool};
use crate::contract::settings::{Layer, Settings};
use crate::contract::step::{Action, Command, Host, Outcome, Phase, Step};
use crate::engine::exit;
use crate::engine::ledger::Ledger;
use crate::engine::process::{self, ProcessError, Ssh};
use crate::engine::remote::{self, Connections};
use crate::engine::runner::Runner;
use crate::engine::tool_version;

/// Everything a job will do, built before anything runs.
#[derive(Debug)]
pub struct JobPlan {
    /// The job.
    pub job: Job,
    /// The backend that runs it.
    pub backend: &'static str,
    /// Its effective settings.
    pub settings: Settings,
    /// How its commands reach remote hosts.
    pub ssh: Ssh,
    /// Its connections to them: shared or not, and the ssh wrapper its tools use.
    pub connections: Connections,
    /// The job's `pre` commands.
    pub pre: Vec<Step>,
    /// Snapshot creation and mounting, each step with its undo.
    pub snapshot: Vec<Step>,
    /// The job's `after_snapshot` commands.
    pub after_snapshot: Vec<Step>,
    /// The backup.
    pub main: Vec<Step>,
    /// The backend's post steps (after success only).
    pub backend_post: Vec<Step>,
    /// The job's `post` commands.
    pub post: Vec<Step>,
    /// Local programs the plan needs.
    pub tools: Vec<Tool>,
    /// Local directories that must exist.
    pub directories: Vec<Directory>,
    /// How `ari history` lists the backups the store holds, when the backend can.
    pub history: Option<plugin::HistoryQuery>,
    /// What the backend's probe found, for hooks asked after planning (`restore`).
    pub facts: Facts,
    /// What the engine found for the job's contexts (its ssh wrapper, the probed versions).
    provided: Provided,
}

impl JobPlan {
    /// Resolves the job's settings over `global` and under `command_line`, checks the job with
    /// its plugins, and builds every step; a job that names no backend gets `default_backend`.
    pub fn build(
        job: Job,
        global: &Layer,
        command_line: &Layer,
        default_backend: Option<&str>,
    ) -> Result<JobPlan, ConfigError> {
        let settings = job.settings_under(global, command_line);
        let name = match (&job.backend, default_backend) {
            (Some(name), _) => name.as_str(),
            (None, Some(default)) => default,
            (None, None) => return Err(ConfigError::in_file(&job.path, "backend: the job names no backend")),
        };
        let backend = plugin::backend(name)
            .ok_or_else(|| job.error_at("backend", format!("unknown backend `{name}`")))?;
        job.check_owners(backend.name())?;
        let source = match &job.snapshot {
            Some(name) => Some(plugin::source(name).ok_or_else(|| {
                ConfigError::in_file(&job.path, format!("snapshot: unknown snapshot source `{name}`"))
            })?),
            None => None,
        };
        // The probe phase: what the steps depend on that only the system can tell.
        let nothing = Facts::new();
        let mut provided = Provided {
            ssh_wrapper: remote::wrapper_path(&settings.get(&STATE_DIR), &job.label)
                .to_string_lossy()
                .into_owned(),
            ..Provided::default()
        };
        let asking = JobContext::new(&job, &settings, source, &nothing, &provided);
        provided.versions = backend
            .probed_versions(&asking)
            .into_iter()
            .map(|program| {
                let version = probed_version(&program, &settings.get(&STATE_DIR));
                (program, version)
            })
            .collect();
        let probing = JobContext::new(&job, &settings, source, &nothing, &provided);
        let mut facts = Facts::new();
        facts.extend(backend.probe(&probing)?);
        let ctx = JobContext::new(&job, &settings, source, &facts, &provided);
        let mut tools = Vec::new();
        if let Some(source) = source {
            source.check(&ctx)?;
            tools.extend(source.tools(&ctx));
        }
        backend.check(&ctx)?;
        tools.extend(backend.tools(&ctx));
        let directories = backend.directories(&ctx);
        let history = backend.history(&ctx)?;
        let snapshot = match source {
            Some(source) => source.steps(&ctx)?,
            None => Vec::new(),
        };
        let mut main = backend.main_steps(&ctx)?;
        if settings.get(&RETRY_BACKUP) {
            main = main.into_iter().map(|step| step.retry(ctx.cleanup_retry())).collect();
        }
        // Backend post steps run only after success (and after each other: see `run`), and
        // the plan says so, whatever the plugin set.
        let backend_post: Vec<Step> = backend
            .post_steps(&ctx)?
            .into_iter()
            .map(|step| step.when(crate::contract::step::When::Success))
            .collect();
        let pre = hook_steps(Phase::Pre, &job.pre);
        let after_snapshot = hook_steps(Phase::AfterSnapshot, &job.after_snapshot);
        let post = hook_steps(Phase::Post, &job.post);
        let ssh = Ssh::from_settings(&settings);
        let connections = Connections::new(ssh.clone(), &settings.get(&STATE_DIR), &job.label, false, []);
        let mut plan = JobPlan {
            job,
            backend: backend.name(),
            settings,
            ssh,
            connections,
            pre,
            snapshot,
            after_snapshot,
            main,
            backend_post,
            post,
            tools,
            directories,
            history,
            facts,
            provided,
        };
        // Every host the job touches is reached over ssh: its own steps', and the source that
        // rdiff-backup or rsync reach with their own ssh.
        let hosts = plan.hosts();
        if hosts.iter().any(|host| !Host::named(host).is_local()) {
            plan.tools.push(Tool::new("ssh_path", plan.ssh.path.clone()));
        }
        plan.connections = Connections::new(
            plan.ssh.clone(),
            &plan.state_dir(),
            plan.label(),
            plan.settings.get(&SSH_CONNECTION_SHARING),
            hosts.iter().map(String::as_str),
        );
        plan.check_repairs()?;
        plan.check_command_lines()?;
        Ok(plan)
    }

    /// Refuses repairs the engine cannot keep its promise for (`Step::repaired_by`): only a
    /// snapshot or main step that runs a command on the backup server can be repaired (its
    /// process is the one whose end ari proves), and each repair is a command there with a
    /// presence query.
    fn check_repairs(&self) -> Result<(), ConfigError> {
        let refuse = |step: &Step, why: &str| {
            Err(ConfigError::in_file(
                &self.job.path,
                format!("the {} backend's step `{}` cannot be repaired: {why}", self.backend, step.name),
            ))
        };
        for step in self.steps() {
            if step.repairs.is_empty() {
                continue;
            }
            if !matches!(step.phase, Phase::Snapshot | Phase::Main) {
                return refuse(step, "only snapshot and main steps may declare repairs");
            }
            if !matches!(&step.action, Action::Run(command) if command.host.is_local()) {
                return refuse(
                    step,
                    "it does not run one command on the backup server, whose end ari could prove",
                );
            }
            for repair in &step.repairs {
                if !matches!(&repair.action, Action::Run(command) if command.host.is_local()) {
                    return refuse(
                        step,
                        &format!("its repair `{}` is not one command on the backup server", repair.name),
                    );
                }
                if !repair.present.as_ref().is_some_and(|probe| probe.query.host.is_local()) {
                    return refuse(
                        step,
                        &format!("its repair `{}` has no presence query on the backup server", repair.name),
                    );
                }
            }
        }
        Ok(())
    }

    /// The job's label.
    pub fn label(&self) -> &str {
        &self.job.label
    }

    /// How the backend copies what `request` asks for out of its store; `None` when it cannot.
    pub fn restore(&self, request: &plugin::RestoreRequest) -> Result<Option<plugin::Restore>, ConfigError> {
        let Some(backend) = plugin::backend(self.backend) else { return Ok(None) };
        let source = self.job.snapshot.as_deref().and_then(plugin::source);
        let ctx = JobContext::new(&self.job, &self.settings, source, &self.facts, &self.provided);
        backend.restore(&ctx, request)
    }

    /// Refuses a plan with a command line longer than the system takes (a million includes),
    /// which would otherwise fail at run time, after the `pre` commands ran.
    fn check_command_lines(&self) -> Result<(), ConfigError> {
        let repairs = self.steps().into_iter().flat_map(|step| &step.repairs);
        for step in self.steps().into_iter().chain(repairs) {
            let probe = step.present.as_ref().map(|probe| &probe.query);
            for command in std::iter::once(step.action.command()).chain(probe) {
                let argv = self.connections.argv(command, crate::engine::remote::PLAN_NONCE);
                if let Err(why) = process::fits_command_line(&argv) {
                    return Err(ConfigError::in_file(
                        &self.job.path,
                        format!(
                            "the command of step `{}` would be {why}; back up fewer paths, or use patterns (`/srv/**`) instead of long lists",
                            step.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every step in the order a fully successful run takes them, cleanup included.
    pub fn steps(&self) -> Vec<&Step> {
        let mut steps: Vec<&Step> = Vec::new();
        steps.extend(&self.pre);
        steps.extend(&self.snapshot);
        steps.extend(&self.after_snapshot);
        steps.extend(&self.main);
        steps.extend(self.snapshot.iter().rev().filter_map(|s| s.undo.as_deref()));
        steps.extend(&self.backend_post);
        steps.extend(&self.post);
        steps
    }

    /// The plan as the JSON object `ari plan --json` prints (its format is in DESIGN.md).
    pub fn to_json(&self) -> serde_json::Value {
        let steps: Vec<serde_json::Value> =
            self.steps().iter().map(|s| step_json(s, &self.connections)).collect();
        serde_json::json!({
            "job": self.job.label,
            "backend": self.backend,
            "steps": steps,
            "connections": self.connections.to_json(),
        })
    }

    /// Every host the job touches: its source host, and every remote host its steps run on
    /// (a ZFS host, a hook's host). The backup server itself counts only as a source.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts = std::collections::BTreeSet::new();
        hosts.insert(self.job.source_hostname.clone());
        for step in self.steps() {
            if let Host::Remote(host) = &step.action.command().host {
                hosts.insert(host.clone());
            }
        }
        hosts.into_iter().collect()
    }

    /// The directory of ari's own state for this job's settings.
    pub fn state_dir(&self) -> String {
        self.settings.get(&STATE_DIR)
    }
}

/// The first line `program --version` prints (cached in `state_dir`), `None` when the program is
/// not found: what `JobContext::tool_version` answers.
fn probed_version(program: &str, state_dir: &str) -> Result<Option<String>, String> {
    let Ok(resolved) = process::resolve_program(program) else { return Ok(None) };
    tool_version::tool_version(&resolved, &["--version"], Path::new(state_dir))
        .map(Some)
        .map_err(|err| err.to_string())
}

fn hook_steps(phase: Phase, hooks: &[HookCommand]) -> Vec<Step> {
    hooks
        .iter()
        .enumerate()
        .map(|(i, hook)| {
            let command = Command { host: Host::named(&hook.host), program: hook.program.clone() };
            Step::run(phase, format!("{}[{i}]", phase.as_str()), command).when(hook.when)
        })
        .collect()
}

fn step_json(step: &Step, connections: &Connections) -> serde_json::Value {
    let command = step.action.command();
    let mut object = serde_json::Map::new();
    object.insert("phase".into(), step.phase.as_str().into());
    object.insert("name".into(), step.name.clone().into());
    object.insert("when".into(), step.when.as_str().into());
    object.insert("host".into(), command.host.to_string().into());
    match &command.program {
        crate::contract::step::Program::Argv(argv) => object.insert("argv".into(), argv.clone().into()),
        crate::contract::step::Program::Shell(script) => object.insert("shell".into(), script.clone().into()),
    };
    object.insert("local_argv".into(), connections.argv(command, crate::engine::remote::PLAN_NONCE).into());
    match &step.action {
        Action::RefuseIf { reason, .. } => {
            object.insert("refuse_if_success".into(), reason.clone().into());
        }
        Action::Dynamic { .. } => {
            object.insert("dynamic".into(), true.into());
            if let Some(pattern) = &step.shows {
                object.insert("then".into(), pattern.clone().into());
            }
        }
        Action::Run(_) => {}
    }
    if let Some(probe) = step.present.as_ref().filter(|p| p.expect.is_some()) {
        // A destructive step's proof runs before it: part of what `run` executes.
        let mut proof = serde_json::Map::new();
        match &probe.query.program {
            crate::contract::step::Program::Argv(argv) => proof.insert("argv".into(), argv.clone().into()),
            crate::contract::step::Program::Shell(script) => {
                proof.insert("shell".into(), script.clone().into())
            }
        };
        proof.insert("expect".into(), probe.expect.clone().unwrap_or_default().into());
        object.insert("proof".into(), serde_json::Value::Object(proof));
    }
    if step.retry.max_retries > 0 {
        object.insert("retries".into(), step.retry.max_retries.into());
        object.insert("retry_interval_seconds".into(), step.retry.interval.as_secs().into());
    }
    if !step.repairs.is_empty() {
        object.insert("repairs".into(), step.repairs.iter().map(repair_json).collect::<Vec<_>>().into());
    }
    serde_json::Value::Object(object)
}

/// A repair as the plan shows it: what runs, and the query that must succeed first. It runs
/// only when its step does not end normally, once the step's process has ended.
fn repair_json(repair: &Step) -> serde_json::Value {
    let program = |command: &Command| {
        let mut object = serde_json::Map::new();
        object.insert("host".into(), command.host.to_string().into());
        match &command.program {
            crate::contract::step::Program::Argv(argv) => object.insert("argv".into(), argv.clone().into()),
            crate::contract::step::Program::Shell(script) => {
                object.insert("shell".into(), script.clone().into())
            }
        };
        object
    };
    let mut object = serde_json::Map::new();
    object.insert("name".into(), repair.name.clone().into());
    object.extend(program(repair.action.command()));
    if let Some(probe) = &repair.present {
        object.insert("only_while".into(), serde_json::Value::Object(program(&probe.query)));
    }
    serde_json::Value::Object(object)
}

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
    fn interrupted(phase: Phase, when: String) -> StepFailure {
        StepFailure { step: String::new(), phase, error: StepError::Interrupted { when }, removes: None }
    }

    /// Whether the failure is of no step: an interrupt between steps.
    pub fn is_between_steps(&self) -> bool {
        self.step.is_empty()
    }
}

/// When an interrupt came that stopped no step: after the last step that ran, if one did.
fn between_steps(last: Option<&Step>) -> String {
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
        }
    }
}

/// The result of a job.
#[derive(Debug)]
pub struct JobReport {
    /// The job's label.
    pub label: String,
    /// The outcome of the steps up to the main step.
    pub outcome: Outcome,
    /// The failure that stopped the job before cleanup, if any.
    pub failure: Option<StepFailure>,
    /// Every cleanup step that failed even after its retries: something may be left behind.
    pub cleanup_failures: Vec<StepFailure>,
    /// Every post step that failed.
    pub post_failures: Vec<StepFailure>,
    /// What each step did, in order.
    pub records: Vec<StepRecord>,
    /// When the job started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
}

impl JobReport {
    /// The exit code this job alone would give: 3 when cleanup failed, 1 when anything else
    /// failed, 0 when everything succeeded.
    pub fn exit_code(&self) -> i32 {
        if !self.cleanup_failures.is_empty() {
            exit::CLEANUP_FAILED
        } else if self.failure.is_some() || !self.post_failures.is_empty() {
            exit::JOB_FAILED
        } else {
            exit::SUCCESS
        }
    }

    /// What the job's backup steps transferred, as far as their tools said.
    pub fn transfer(&self) -> crate::contract::step::Transfer {
        self.records
            .iter()
            .filter_map(|r| r.transfer)
            .fold(crate::contract::step::Transfer::default(), |sum, t| sum + t)
    }

    /// The report as JSON, for the run report in `state_dir/reports`.
    pub fn to_json(&self) -> serde_json::Value {
        let seconds =
            |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let failure = |f: &StepFailure| {
            serde_json::json!({
                "step": f.step, "phase": f.phase.as_str(), "error": f.error.to_string(), "left_behind": f.removes,
            })
        };
        let steps: Vec<serde_json::Value> = self
            .records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "step": r.step, "phase": r.phase.as_str(), "host": r.host, "command": r.command,
                    "ok": r.error.is_none(), "error": r.error, "duration_seconds": r.duration.as_secs_f64(),
                })
            })
            .collect();
        serde_json::json!({
            "job": self.label,
            "outcome": match self.outcome { Outcome::Success => "success", _ => "failure" },
            "exit": self.exit_code(),
            "start": seconds(self.started),
            "end": seconds(self.started + self.duration),
            "duration_seconds": self.duration.as_secs_f64(),
            "failure": self.failure.as_ref().map(failure),
            "cleanup_failures": self.cleanup_failures.iter().map(failure).collect::<Vec<_>>(),
            "post_failures": self.post_failures.iter().map(failure).collect::<Vec<_>>(),
            "steps": steps,
        })
    }
}

/// An undo waiting for the cleanup phase: its step, its ledger entry, and whether it runs only
/// while what it removes is still there (its step was stopped midway, so it may or may not have
/// made it).
struct PendingUndo<'a> {
    step: &'a Step,
    entry: u64,
    conditional: bool,
}

/// Runs a plan: the only place that decides what runs after what. Before a step that makes
/// something runs, its undo is recorded in `ledger`; once undone, the entry goes.
pub fn run(plan: &JobPlan, runner: &Runner, ledger: &mut Ledger) -> JobReport {
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut records = Vec::new();
    let mut failure = None;
    let mut undo: Vec<PendingUndo> = Vec::new();
    // Repairs that failed, or a ledger that could not drop a repair: left behind, as cleanup's.
    let mut repair_failures = Vec::new();
    // The last step that ran and succeeded, for an interrupt that comes between steps.
    let mut last_done: Option<&Step> = None;

    log::info!("started{}", if runner.is_dry_run() { " (dry run)" } else { "" });
    'steps: for (message, steps) in [
        ("processing pre-job hooks", &plan.pre),
        ("creating snapshots", &plan.snapshot),
        ("processing after-snapshot hooks", &plan.after_snapshot),
        ("data backup started", &plan.main),
    ] {
        if !steps.is_empty() {
            log::info!("{message}");
        }
        for step in steps {
            if runner.is_cancelled() {
                failure = Some(StepFailure::interrupted(step.phase, between_steps(last_done)));
                break 'steps;
            }
            if let Some(limit) = runner.job_expired() {
                failure = Some(StepFailure::new(step, StepError::JobTimeout { limit }));
                break 'steps;
            }
            let entry = match step.undo.as_deref().map(|u| ledger.record(u)).transpose() {
                Ok(entry) => entry,
                Err(source) => {
                    failure = Some(StepFailure::new(step, StepError::Ledger { source }));
                    break 'steps;
                }
            };
            let result = if step.repairs.is_empty() {
                run_step(step, runner, &mut records)
            } else {
                crate::engine::repair::run_repaired(step, runner, ledger, &mut records, &mut repair_failures)
            };
            if let (Some(step), Some(entry)) = (step.undo.as_deref(), entry) {
                match &result {
                    Ok(()) => undo.push(PendingUndo { step, entry, conditional: false }),
                    // Stopped midway: it may have made its thing, so undo it if it is there.
                    Err(StepError::Process(
                        ProcessError::Interrupted { .. } | ProcessError::TimedOut { .. },
                    )) => undo.push(PendingUndo { step, entry, conditional: true }),
                    // It failed: it made nothing.
                    Err(_) => {
                        if let Err(err) = ledger.remove(entry) {
                            log::warn!("cannot update the ledger: {err}");
                        }
                    }
                }
            }
            if let Err(error) = result {
                failure = Some(StepFailure::new(step, error));
                break 'steps;
            }
            last_done = Some(step);
        }
    }
    if failure.is_none() {
        log::info!("data backup complete");
    }

    // Cleanup and post steps run even after an interrupt or past the job's deadline: their
    // runner is stopped only by the abort flag (a third signal).
    let finisher = runner.for_cleanup();
    let mut cleanup_failures = repair_failures;
    if !undo.is_empty() {
        log::info!("cleaning up snapshots");
    }
    for pending in undo.into_iter().rev() {
        let step = pending.step;
        if finisher.is_cancelled() {
            cleanup_failures.push(StepFailure::new(step, StepError::Aborted));
            continue;
        }
        let result = if pending.conditional {
            undo_if_present(step, &finisher, &mut records)
        } else {
            run_step(step, &finisher, &mut records)
        };
        match result {
            Ok(()) => {
                if let Err(source) = ledger.remove(pending.entry) {
                    cleanup_failures.push(StepFailure::new(step, StepError::Ledger { source }));
                }
            }
            Err(error) => cleanup_failures.push(StepFailure::new(step, error)),
        }
    }
    // A signal during cleanup did not stop it, but the job was interrupted all the same: the
    // post steps run as after a failure, and the job fails.
    if failure.is_none() && runner.is_cancelled() {
        failure = Some(StepFailure::interrupted(
            Phase::Cleanup,
            "during cleanup, after the backup succeeded".into(),
        ));
    }
    let outcome = if failure.is_none() { Outcome::Success } else { Outcome::Failure };
    let mut post_failures = Vec::new();
    log::info!("processing post-job hooks");
    // The backend's post steps are a chain, whatever `when` a plugin gave them: each runs only
    // after a successful backup and every backend post step before it (no expiry after a
    // failed `zfs snapshot`). The job's own `post` commands then run by their `when`.
    let mut chain_holds = outcome == Outcome::Success;
    for step in &plan.backend_post {
        if finisher.is_cancelled() {
            log::debug!("skipping {}: cleanup was aborted", step.name);
            continue;
        }
        if !chain_holds {
            log::info!(
                "skipping {}: it runs only after a successful backup and backend post steps",
                step.name
            );
            continue;
        }
        if let Err(error) = run_step(step, &finisher, &mut records) {
            post_failures.push(StepFailure::new(step, error));
            chain_holds = false;
        }
    }
    for step in &plan.post {
        if finisher.is_cancelled() {
            log::debug!("skipping {}: cleanup was aborted", step.name);
            continue;
        }
        if !step.when.applies(outcome) {
            log::debug!("skipping {} (when: {}, outcome: {outcome:?})", step.name, step.when.as_str());
            continue;
        }
        if let Err(error) = run_step(step, &finisher, &mut records) {
            post_failures.push(StepFailure::new(step, error));
        }
    }
    // A signal during the post steps did not stop them (they may restart what `pre` stopped),
    // but the job was interrupted: it fails.
    if failure.is_none() && runner.is_cancelled() {
        failure = Some(StepFailure::interrupted(
            Phase::Post,
            "during the post steps, after the backup succeeded".into(),
        ));
    }
    log::info!("stopped");
    JobReport {
        label: plan.job.label.clone(),
        outcome,
        failure,
        cleanup_failures,
        post_failures,
        records,
        started,
        duration: clock.elapsed(),
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

/// What recovering a ledger did.
#[derive(Debug)]
pub struct Recovery {
    /// Entries undone (or found already gone).
    pub undone: Vec<String>,
    /// Entries whose undo failed; they stay in the ledger.
    pub failures: Vec<StepFailure>,
}

/// Undoes what a ledger records, newest first, each only while its thing is still there;
/// undone entries leave the ledger, failed ones stay for the next try.
pub fn recover(ledger: &mut Ledger, runner: &Runner) -> Recovery {
    let mut recovery = Recovery { undone: Vec::new(), failures: Vec::new() };
    let mut records = Vec::new();
    let entries: Vec<_> = ledger.entries().to_vec();
    // The process of a repair that still runs: the crashed run is not over, so nothing older
    // than it is undone under it (a snapshot it still reads).
    let mut running: Option<String> = None;
    for entry in entries.iter().rev() {
        let step = entry.step();
        if runner.is_cancelled() {
            recovery.failures.push(StepFailure::new(&step, StepError::Aborted));
            continue;
        }
        if let Some(process) = &running {
            recovery.failures.push(StepFailure::new(&step, StepError::HeldBack { process: process.clone() }));
            continue;
        }
        match crate::engine::repair::repair_or_undo(entry, runner, &mut records) {
            Ok(()) => match ledger.remove(entry.id) {
                Ok(()) => recovery.undone.push(step.name.clone()),
                Err(source) => recovery.failures.push(StepFailure::new(&step, StepError::Ledger { source })),
            },
            Err(error) => {
                if let StepError::StillRunning { process, .. } = &error {
                    running = Some(process.clone());
                }
                recovery.failures.push(StepFailure::new(&step, error));
            }
        }
    }
    recovery
}

fn run_step(step: &Step, runner: &Runner, records: &mut Vec<StepRecord>) -> Result<(), StepError> {
    let clock = Instant::now();
    let mut attempt = 0;
    let result = loop {
        let result = attempt_step(step, runner, None);
        match result {
            Err(ref error) if attempt < step.retry.max_retries && !runner.is_cancelled() => {
                attempt += 1;
                log::warn!(
                    "{} failed, retry {attempt} of {} in {}s: {error}",
                    step.name,
                    step.retry.max_retries,
                    step.retry.interval.as_secs()
                );
                std::thread::sleep(step.retry.interval);
            }
            result => break result,
        }
    };
    records.push(StepRecord::of(step, &result, clock.elapsed()));
    result.map(|_| ())
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
        Action::Dynamic { query, expand } => {
            let output = runner.run(query)?;
            if runner.is_dry_run() {
                return Ok(None);
            }
            let commands = output
                .stdout()
                .map_err(|too_long| too_long.to_string())
                .and_then(|printed| expand(printed))
                .map_err(|message| StepError::Expand { command: query.to_string(), message })?;
            // A remote command the step does not declare never runs: what `ari authorize` lets
            // through a host's filter is what the step may expand to.
            if let Some(undeclared) = commands.iter().find(|command| {
                !command.host.is_local()
                    && !step.may_run.iter().any(|pattern| {
                        pattern.host == command.host
                            && pattern.matches(&crate::contract::step::remote_line(command))
                    })
            }) {
                return Err(StepError::Expand {
                    command: query.to_string(),
                    message: format!(
                        "it expanded to `{undeclared}`, which is none of the commands the step declares it may run there"
                    ),
                });
            }
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

/// A local program or directory a job needs that is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The job's label.
    pub label: String,
    /// The setting that names what is missing.
    pub setting: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {}: {}: {}", self.label, self.setting, self.problem)
    }
}

/// Every local program and directory that the plans need and that cannot be found.
pub fn missing_tools<'a>(plans: impl IntoIterator<Item = &'a JobPlan>) -> Vec<Missing> {
    let mut missing = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for plan in plans {
        let label = || plan.job.label.clone();
        for tool in &plan.tools {
            if !seen.insert(tool.program.clone()) {
                continue;
            }
            if let Err(error) = process::resolve_program(&tool.program) {
                missing.push(Missing { label: label(), setting: tool.setting, problem: error.to_string() });
            }
        }
        for directory in &plan.directories {
            // A store that a thousand jobs share is missing once.
            if !seen.insert(directory.path.clone()) {
                continue;
            }
            let problem = match std::fs::metadata(&directory.path) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => format!("`{}` is not a directory", directory.path),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    format!("`{}` does not exist: create it (mkdir -p {})", directory.path, directory.path)
                }
                Err(err) => format!("cannot use `{}`: {err}", directory.path),
            };
            missing.push(Missing { label: label(), setting: directory.setting, problem });
        }
    }
    missing
}
