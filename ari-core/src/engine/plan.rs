//! A job's plan: its steps from the plugins and its hooks, the tools and directories it needs,
//! and how `ari plan` shows it; built once, checked whole before anything runs.

use std::path::Path;

use crate::contract::core_settings::{RETRY_BACKUP, SSH_CONNECTION_SHARING, STATE_DIR};
use crate::contract::error::ConfigError;
use crate::contract::job::{HookCommand, Job};
use crate::contract::plugin::{self, Directory, Facts, JobContext, PluginError, Provided, Tool};
use crate::contract::settings::{Layer, Settings};
use crate::contract::step::{Action, Command, Host, Phase, Program, Step, When};
use crate::engine::process::{self, Ssh};
use crate::engine::remote::{self, Connections};
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
    /// The capacity check's steps (the store's space, its pool's health), before `pre`.
    pub capacity: Vec<Step>,
    /// How the backend reads its store's capacity, which the capacity steps run.
    pub(crate) capacity_query: Option<crate::contract::capacity::CapacityQuery>,
    /// The job's `pre` commands.
    pub pre: Vec<Step>,
    /// The job's database dumps, streamed into the store after `pre`, before any snapshot.
    pub dumps: Vec<Step>,
    /// Snapshot creation and mounting, each step with its undo.
    pub snapshot: Vec<Step>,
    /// The job's `after_snapshot` commands.
    pub after_snapshot: Vec<Step>,
    /// The backup.
    pub main: Vec<Step>,
    /// The spot check (`verify_sample`), after the backup and before cleanup.
    pub verify: Vec<Step>,
    /// The backend's post steps (after success only).
    pub backend_post: Vec<Step>,
    /// What judges and destroys in the retention step among `backend_post`, if the backend has
    /// one (see `engine::retention`).
    pub(crate) retention: Option<crate::contract::plugin::Retention>,
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
    /// How the job's dumps come back out of the store, when it has dumps and its backend says.
    pub(crate) dumps_kept: Option<crate::contract::dump_store::Kept>,
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
        let capacity_query = backend.capacity(&ctx)?;
        let capacity = capacity_query.as_ref().map(crate::engine::capacity::steps).unwrap_or_default();
        // Every cleanup step is retried by the cleanup policy (max_retries, retry_interval),
        // whatever the plugin set: undoing what a snapshot made must not give up at a hiccup.
        let snapshot: Vec<Step> = match source {
            Some(source) => source.steps(&ctx)?,
            None => Vec::new(),
        }
        .into_iter()
        .map(|mut step| {
            step.undo = step.undo.map(|undo| Box::new(undo.retry(ctx.cleanup_retry())));
            step
        })
        .collect();
        let mut main = backend.main_steps(&ctx)?;
        if settings.get(&RETRY_BACKUP) {
            main = main.into_iter().map(|step| step.retry(ctx.cleanup_retry())).collect();
        }
        let verify: Vec<Step> = crate::engine::verify::step(
            &job,
            &settings,
            backend,
            // Asked only of a job that verifies: a backend may refuse what the check cannot follow.
            if settings.get(&crate::contract::core_settings::VERIFY_SAMPLE).is_some() {
                backend.sample(&ctx)?
            } else {
                None
            },
            ctx.snapshot_root().as_deref(),
        )?
        .into_iter()
        .collect();
        // Backend post steps run only after success (and after each other: see `run`), and
        // the plan says so, whatever the plugin set.
        // The engine's retention step comes last, from what the backend judges.
        let retention = backend.retention(&ctx)?;
        let backend_post: Vec<Step> = backend
            .post_steps(&ctx)?
            .into_iter()
            .chain(retention.as_ref().map(crate::engine::retention::step))
            .map(|step| step.when(crate::contract::step::When::Success))
            .collect();
        let (dumps, dumps_kept) = if job.dumps.is_empty() {
            (Vec::new(), None)
        } else {
            let store = backend
                .dump_store(&ctx)?
                .ok_or_else(|| crate::engine::dumps::no_store(&job, backend.name()))?;
            tools.extend(crate::engine::dumps::tools(&job));
            let kept = store.kept.clone();
            (crate::engine::dumps::steps(&job, &settings, store), kept)
        };
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
            capacity,
            capacity_query,
            pre,
            dumps,
            snapshot,
            after_snapshot,
            main,
            verify,
            backend_post,
            retention,
            post,
            tools,
            directories,
            history,
            facts,
            provided,
            dumps_kept,
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
            if !matches!(step.phase, Phase::Snapshot | Phase::Dump | Phase::Main) {
                return refuse(step, "only snapshot, dump and main steps may declare repairs");
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

    /// Asks the job's backend `ask` with the job's context, as the plan was built (the facts its
    /// probe found): for the hooks called after planning (`restore`, the spot checks). `None`
    /// when the backend is not linked.
    fn ask_backend<T>(&self, ask: impl FnOnce(&dyn plugin::BackupBackend, &JobContext) -> T) -> Option<T> {
        let backend = plugin::backend(self.backend)?;
        let source = self.job.snapshot.as_deref().and_then(plugin::source);
        Some(ask(backend, &JobContext::new(&self.job, &self.settings, source, &self.facts, &self.provided)))
    }

    /// How the backend copies what `request` asks for out of its store; `None` when it cannot.
    pub fn restore(&self, request: &plugin::RestoreRequest) -> Result<Option<plugin::Restore>, ConfigError> {
        self.ask_backend(|backend, ctx| backend.restore(ctx, request)).unwrap_or(Ok(None))
    }

    /// The two sides of a live check of the job's store against its host (`ari verify`).
    pub(crate) fn live_verify(&self) -> Result<crate::contract::step::VerifySides, ConfigError> {
        self.ask_backend(|backend, ctx| {
            crate::engine::verify::live(&self.job, &self.settings, backend, backend.sample(ctx)?)
        })
        .unwrap_or_else(|| Err(self.job.error_at("backend", format!("unknown backend `{}`", self.backend))))
    }

    /// Reads and judges the store's capacity as a run would, for `ari check`; none when the
    /// backend reads none.
    pub fn check_capacity(
        &self,
        runner: &crate::engine::runner::Runner,
    ) -> Option<crate::engine::capacity::CapacityShown> {
        let query = self.capacity_query.as_ref()?;
        let hint = self.space_hint();
        let checked = crate::engine::capacity::check(
            query,
            &self.capacity,
            &self.settings,
            hint.as_deref(),
            runner,
            &mut Vec::new(),
        );
        Some(checked.into())
    }

    /// What an admin can do about a store too full to run the job: apply its retention now,
    /// when it has one.
    pub(crate) fn space_hint(&self) -> Option<String> {
        if self.backend_post.is_empty() {
            return None;
        }
        let job = crate::contract::quote::shell_quote(&self.job.path.to_string_lossy()).into_owned();
        Some(format!(
            "`ari prune --dry-run --force {job}` shows what the job's retention would destroy now, and \
             `ari prune --force {job}` destroys it, which may free enough; --force overrides the guard after \
             a failed run and the stale guard (keep_when_stale)"
        ))
    }

    /// Whether every command of the capacity check runs on the backup server.
    pub fn capacity_is_local(&self) -> bool {
        self.capacity.iter().all(|step| step.action.command().host.is_local())
    }

    /// The backend's checks of the whole store (`ari verify --full`), given the backups it holds.
    pub(crate) fn store_checks(
        &self,
        backups: &[plugin::StoredBackup],
    ) -> Result<Vec<crate::contract::sample::StoreCheck>, ConfigError> {
        self.ask_backend(|backend, ctx| backend.store_checks(ctx, backups)).unwrap_or(Ok(Vec::new()))
    }

    /// A runner for the read-only queries that a command runs outside a job's run (`ari check`'s
    /// capacity, a retention preview): a connection per command, and bounded as a run is, by
    /// `command_timeout` and `job_timeout`, and without `command_timeout` by
    /// [`process::QUERY_TIMEOUT`] each (a
    /// suspended pool's `zpool status`, a hung NFS store, must not hold `ari check`).
    pub fn query_runner(&self) -> crate::engine::runner::Runner {
        use crate::contract::core_settings::{COMMAND_TIMEOUT, JOB_TIMEOUT};
        let each = self.settings.get(&COMMAND_TIMEOUT).unwrap_or(process::QUERY_TIMEOUT);
        crate::engine::runner::Runner::new(self.ssh.clone(), false)
            .with_command_timeout(Some(each))
            .with_job_timeout(self.settings.get(&JOB_TIMEOUT))
    }

    /// The retention the engine judges and applies after the backend's post steps, if any.
    pub(crate) fn retention(&self) -> Option<&crate::contract::plugin::Retention> {
        self.retention.as_ref()
    }

    /// Refuses a plan with a command line longer than the system takes (a million includes),
    /// which would otherwise fail at run time, after the `pre` commands ran.
    fn check_command_lines(&self) -> Result<(), ConfigError> {
        let repairs = self.steps().into_iter().flat_map(|step| &step.repairs);
        for step in self.steps().into_iter().chain(repairs) {
            let probe = step.present.as_ref().map(|probe| &probe.query);
            // A spot check's store side too: it runs after the backup, where a refusal is late.
            let others: Vec<&Command> = match &step.action {
                Action::Verify(sides) => vec![&sides.store],
                Action::Dump(stream) => vec![&stream.writer],
                Action::Gather { queries, .. } => queries.iter().skip(1).collect(),
                _ => Vec::new(),
            };
            for command in std::iter::once(step.action.command()).chain(probe).chain(others) {
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
        steps.extend(&self.capacity);
        steps.extend(&self.pre);
        steps.extend(&self.dumps);
        steps.extend(&self.snapshot);
        steps.extend(&self.after_snapshot);
        steps.extend(&self.main);
        steps.extend(&self.verify);
        steps.extend(self.snapshot.iter().rev().filter_map(|s| s.undo.as_deref()));
        steps.extend(&self.backend_post);
        steps.extend(&self.post);
        steps
    }

    /// The plan as `ari plan` prints it for a person.
    pub fn render(&self) -> String {
        let mut out = format!(
            "job {} (backend {}, source {}{})\n",
            self.label(),
            self.backend,
            self.job.source_hostname,
            self.job.snapshot.as_deref().map(|s| format!(", snapshot {s}")).unwrap_or_default()
        );
        for (i, step) in self.steps().iter().enumerate() {
            let command = step.action.command();
            let when = match step.when {
                When::Always => String::new(),
                when => format!(" [when {}]", when.as_str()),
            };
            let text = shown_program(&command.program);
            out.push_str(&format!(
                "{:>3}. {:<14} {} on {}{when}\n",
                i + 1,
                step.phase.as_str(),
                step.name,
                command.host
            ));
            out.push_str(&format!("       {text}\n"));
            match &step.action {
                Action::RefuseIf { reason, .. } => {
                    out.push_str(&format!("       (stops the job if it succeeds: {reason})\n"))
                }
                Action::Verify(sides) => {
                    out.push_str(&format!(
                        "       (compared with, on {}: {})\n",
                        sides.store.host,
                        shown_program(&sides.store.program)
                    ));
                }
                Action::Dump(stream) => {
                    if let Some(compress) = &stream.compress {
                        out.push_str(&format!(
                            "       (through, on {}: {})\n",
                            compress.host,
                            shown_program(&compress.program)
                        ));
                    }
                    out.push_str(&format!(
                        "       (into, on {}: {})\n",
                        stream.writer.host,
                        shown_program(&stream.writer.program)
                    ));
                }
                Action::Gather { queries, .. } => {
                    for query in &queries[1..] {
                        out.push_str(&format!(
                            "       (and, on {}: {})\n",
                            query.host,
                            shown_program(&query.program)
                        ));
                    }
                    out.push_str("       (dynamic: the commands that follow depend on their outputs)\n");
                    if let Some(pattern) = &step.shows {
                        out.push_str(&format!(
                            "       (then: {})\n",
                            crate::contract::kinds::escaped(pattern)
                        ));
                    }
                }
                Action::Dynamic { .. } | Action::Retention(_) => {
                    out.push_str("       (dynamic: the commands that follow depend on its output)\n");
                    if let Some(pattern) = &step.shows {
                        out.push_str(&format!(
                            "       (then: {})\n",
                            crate::contract::kinds::escaped(pattern)
                        ));
                    }
                }
                _ => {}
            }
            if let Some(probe) = step.present.as_ref() {
                if let (Program::Argv(argv), Some(expect)) = (&probe.query.program, &probe.expect) {
                    out.push_str(&format!(
                        "       (runs only after `{}` shows `{}`)\n",
                        crate::contract::quote::shell_join(argv),
                        expect.join(" ")
                    ));
                }
            }
            for repair in &step.repairs {
                let only_while = repair
                    .present
                    .as_ref()
                    .map(|probe| format!(", only while `{}` succeeds", shown_program(&probe.query.program)));
                out.push_str(&format!(
                    "       (if it does not end normally, once its process has ended: {}: {}{})\n",
                    repair.name,
                    shown_program(&repair.action.command().program),
                    only_while.unwrap_or_default()
                ));
            }
            if step.retry.max_retries > 0 {
                out.push_str(&format!(
                    "       (retried up to {} times, {}s apart)\n",
                    step.retry.max_retries,
                    step.retry.interval.as_secs()
                ));
            }
        }
        out.push_str(&self.connections.render());
        out
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
fn probed_version(program: &str, state_dir: &str) -> Result<Option<String>, PluginError> {
    let Ok(resolved) = process::resolve_program(program) else { return Ok(None) };
    tool_version::tool_version(&resolved, &["--version"], Path::new(state_dir))
        .map(Some)
        .map_err(|err| PluginError::new(err.to_string()))
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

/// A command's program as the plan shows it, control characters escaped.
fn shown_program(program: &Program) -> String {
    match program {
        Program::Argv(argv) => crate::contract::kinds::escaped(&crate::contract::quote::shell_join(argv)),
        Program::Shell(script) => format!("sh: {}", crate::contract::kinds::escaped(script)),
    }
}
