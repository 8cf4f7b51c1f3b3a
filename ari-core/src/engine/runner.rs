//! The runner of one job's commands: each command's argv from the run's remote session, its
//! limits (`command_timeout`, `job_timeout`), the flags that stop it, and dry runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::contract::ssh::Ssh;
use crate::contract::step::Command;
use crate::engine::process::{self, Deadline, OnStart, Output, ProcessError, Reach};
use crate::engine::remote::Session;

/// Runs the commands of one job: for real, or only logging them in a dry run.
#[derive(Debug, Clone)]
pub struct Runner {
    session: Arc<Session>,
    dry_run: bool,
    cancel: Arc<AtomicBool>,
    abort: Arc<AtomicBool>,
    command_timeout: Option<Duration>,
    /// A limit of its own for the commands of one step, named in errors (`verify_timeout`).
    step_timeout: Option<(Duration, &'static str)>,
    job_deadline: Option<Deadline>,
}

impl Runner {
    /// A runner that reaches remote hosts with `ssh`, a connection per command.
    pub fn new(ssh: Ssh, dry_run: bool) -> Runner {
        Runner {
            session: Arc::new(Session::plain(ssh)),
            dry_run,
            cancel: Arc::new(AtomicBool::new(false)),
            abort: Arc::new(AtomicBool::new(false)),
            command_timeout: None,
            step_timeout: None,
            job_deadline: None,
        }
    }

    /// The same runner, reaching remote hosts through `session` (the job's shared connections).
    pub fn with_session(mut self, session: Arc<Session>) -> Runner {
        self.session = session;
        self
    }

    /// The same runner, whose cleanup is stopped once `flag` is set (by a third signal).
    pub fn with_abort(mut self, flag: Arc<AtomicBool>) -> Runner {
        self.abort = flag;
        self
    }

    /// The same runner, stopping its running command once `flag` is set (by a signal handler).
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Runner {
        self.cancel = flag;
        self
    }

    /// The same runner, killing any command that runs longer than `limit` (`command_timeout`).
    pub fn with_command_timeout(mut self, limit: Option<Duration>) -> Runner {
        self.command_timeout = limit;
        self
    }

    /// The same runner, killing any command that runs longer than `limit` (named `setting` in
    /// errors) or its own `command_timeout`, whichever is shorter.
    pub(crate) fn with_step_timeout(mut self, limit: Duration, setting: &'static str) -> Runner {
        self.step_timeout = Some((limit, setting));
        self
    }

    /// The same runner, killing whatever runs once `limit` from now has passed (`job_timeout`).
    pub fn with_job_timeout(mut self, limit: Option<Duration>) -> Runner {
        self.job_deadline = limit.map(|limit| Deadline::after(limit, "job_timeout"));
        self
    }

    /// The runner for cleanup: no job deadline (cleanup runs after it), and stopped only by the
    /// abort flag (the third signal), not by the flag that stopped the job.
    pub fn for_cleanup(&self) -> Runner {
        Runner { cancel: self.abort.clone(), job_deadline: None, ..self.clone() }
    }

    /// Whether the job's deadline has passed.
    pub fn job_expired(&self) -> Option<String> {
        self.job_deadline.as_ref().filter(|d| Instant::now() >= d.at).map(|d| d.limit.clone())
    }

    /// Whether commands are only logged.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Whether ari was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Runs `command` to completion (or logs it in a dry run); success is exit status 0.
    pub fn run(&self, command: &Command) -> Result<Output, ProcessError> {
        self.run_gated(command, None)
    }

    /// Runs `command` as [`Runner::run`] does, but holds the process it starts before it
    /// executes anything, until `on_start`, told the process's pid, has returned: what
    /// `on_start` records about the process (its repair in the ledger) is there before the
    /// process can do anything. An error from `on_start` ends the process at that point, and the
    /// command fails to start. A process held there ends by itself when ari dies.
    pub fn run_watched(&self, command: &Command, on_start: OnStart<'_>) -> Result<Output, ProcessError> {
        self.run_gated(command, Some(on_start))
    }

    fn run_gated(&self, command: &Command, on_start: Option<OnStart<'_>>) -> Result<Output, ProcessError> {
        let argv = self.session.argv(command);
        if self.dry_run {
            log::info!("dry run, not running on {}: {}", command.host, process::shown_argv(&argv));
            return Ok(Output::default());
        }
        log::debug!("run_command on {}: {}", command.host, process::shown_argv(&argv));
        let deadline = self.deadline();
        // The hosts this command reaches: their shared connections come up first, and a
        // stopped command is stopped there too.
        let destinations = self.session.destinations_of(command, &argv);
        if !destinations.is_empty() {
            self.session.connect(&destinations, &self.cancel);
        }
        let nonces = if destinations.is_empty() { Vec::new() } else { self.session.by_nonce() };
        let stop_groups = |groups: &[(String, u32)]| self.session.stop_groups(groups);
        let reach = Reach { destinations, nonces, sudo: self.session.ssh().sudo, stop_groups: &stop_groups };
        process::execute(command, &argv, &self.cancel, deadline, Some(reach), on_start)
    }

    /// The deadline of a command started now: the shorter of its own limit (`command_timeout`,
    /// or the step's) and what is left of the job's.
    fn deadline(&self) -> Option<Deadline> {
        let own = match (self.command_timeout, self.step_timeout) {
            (Some(command), Some((step, _))) if command <= step => {
                Some(Deadline::after(command, "command_timeout"))
            }
            (_, Some((step, setting))) => Some(Deadline::after(step, setting)),
            (command, None) => command.map(|limit| Deadline::after(limit, "command_timeout")),
        };
        match (own, &self.job_deadline) {
            (Some(own), Some(job)) if job.at < own.at => Some(job.clone()),
            (Some(own), _) => Some(own),
            (None, job) => job.clone(),
        }
    }

    /// Streams `source`'s output through ari into `sinks`, each the next one's input
    /// (`process::stream`), under this runner's limits; `keep` is how many of the stream's
    /// first and last bytes come back. A dry run logs each command and runs none.
    pub(crate) fn stream(
        &self,
        source: &Command,
        sinks: &[&Command],
        keep: usize,
    ) -> Result<process::stream::Streamed, process::stream::Stopped> {
        let stages: Vec<process::stream::Stage<'_>> = std::iter::once(source)
            .chain(sinks.iter().copied())
            .map(|command| process::stream::Stage { command, argv: self.session.argv(command) })
            .collect();
        for stage in &stages {
            let shown = process::shown_argv(&stage.argv);
            if self.dry_run {
                log::info!("dry run, not running on {}: {shown}", stage.command.host);
            } else {
                log::debug!("run_command on {}: {shown}", stage.command.host);
            }
        }
        if self.dry_run {
            return Ok(process::stream::Streamed::default());
        }
        let mut destinations: Vec<String> = Vec::new();
        for stage in &stages {
            for destination in self.session.destinations_of(stage.command, &stage.argv) {
                if !destinations.contains(&destination) {
                    destinations.push(destination);
                }
            }
        }
        if !destinations.is_empty() {
            self.session.connect(&destinations, &self.cancel);
        }
        let nonces = if destinations.is_empty() { Vec::new() } else { self.session.by_nonce() };
        let stop_groups = |groups: &[(String, u32)]| self.session.stop_groups(groups);
        let reach = Reach { destinations, nonces, sudo: self.session.ssh().sudo, stop_groups: &stop_groups };
        process::stream::stream(&stages[0], &stages[1..], &self.cancel, self.deadline(), Some(reach), keep)
    }
}
