//! Unit-testing a plugin's steps: a job file's text, parsed and layered as ari does it, and the
//! context a plugin builds its steps from, without running anything.
//!
//! ```
//! use ari_core::testkit::TestJob;
//!
//! let job = TestJob::parse("include: [/etc]\nremote_user: backup\n");
//! assert_eq!(job.context().job().include, ["/etc"]);
//! assert_eq!(job.context().ssh().remote_user(), Some("backup"));
//! ```

use std::path::Path;

use crate::contract::error::ConfigError;
use crate::contract::job::Job;
use crate::contract::plugin::{self, Facts, JobContext, Provided, SnapshotSource};
use crate::contract::settings::{Layer, Settings, Source};
use crate::contract::step::Step;
use crate::engine::config::GlobalConfig;
use crate::engine::plan::JobPlan;

/// The path test jobs are read as.
const JOB_PATH: &str = "/etc/ari-backup/jobs.d/test.yaml";
/// The path test configs are read as.
const CONFIG_PATH: &str = "/etc/ari-backup/ari-backup.conf.yaml";

/// A job of a test, with its settings and its snapshot source.
pub struct TestJob {
    job: Job,
    config: Layer,
    settings: Settings,
    facts: Facts,
    source: Option<&'static dyn SnapshotSource>,
    provided: Provided,
}

impl TestJob {
    /// The job file `yaml`; panics with ari's error when ari would refuse it.
    pub fn parse(yaml: &str) -> TestJob {
        TestJob::try_parse_at(JOB_PATH, yaml).unwrap_or_else(|err| panic!("{err}"))
    }

    /// The job file `yaml` read as `path` (which gives the job its default label, and errors
    /// their file), or ari's error about it.
    pub fn try_parse_at(path: &str, yaml: &str) -> Result<TestJob, ConfigError> {
        let job = Job::parse(Path::new(path), yaml)?;
        let config = Layer::new(Source::Config(CONFIG_PATH.into()));
        let settings = job.settings_under(&config, &Layer::new(Source::CommandLine));
        let source = job.snapshot.as_deref().and_then(plugin::source);
        let provided = provided(&job, &settings);
        Ok(TestJob { job, config, settings, facts: Facts::new(), source, provided })
    }

    /// The same job under the global config `yaml`; panics when ari would refuse it.
    pub fn with_config(mut self, yaml: &str) -> TestJob {
        self.config = GlobalConfig::parse(Path::new(CONFIG_PATH), yaml).unwrap_or_else(|err| panic!("{err}"));
        self.settings = self.job.settings_under(&self.config, &Layer::new(Source::CommandLine));
        self.provided = provided(&self.job, &self.settings);
        self
    }

    /// The same job with `source` as its snapshot source (a test double, say), in `context()`;
    /// `steps()` builds from the registered plugins only.
    pub fn with_snapshot_source(mut self, source: &'static dyn SnapshotSource) -> TestJob {
        self.source = Some(source);
        self
    }

    /// The context a plugin gets for this job.
    pub fn context(&self) -> JobContext<'_> {
        JobContext::new(&self.job, &self.settings, self.source, &self.facts, &self.provided)
    }

    /// Every step of the job in the order a fully successful run takes them, cleanup
    /// included, as `ari plan` builds them from the registered plugins (probe included), or
    /// ari's error about the job. The job must name its backend.
    pub fn steps(&self) -> Result<Vec<Step>, ConfigError> {
        let plan = JobPlan::build(self.job.clone(), &self.config, &Layer::new(Source::CommandLine), None)?;
        Ok(plan.steps().into_iter().cloned().collect())
    }
}

/// What the engine would hand the job's contexts: its ssh wrapper's path (no program's version,
/// and the context has no facts: a test sets what a probe would choose, `rdiff_backup_cli: new`).
fn provided(job: &Job, settings: &Settings) -> Provided {
    let state_dir = settings.get(&crate::contract::core_settings::STATE_DIR);
    let ssh_wrapper =
        crate::engine::remote::wrapper_path(&state_dir, &job.label).to_string_lossy().into_owned();
    Provided { ssh_wrapper, ..Provided::default() }
}

/// Runs a local `command` as the pipeline runs a step's (stdin from `/dev/null`, its own
/// process group): for a plugin's tests of what a command does, such as a repair's presence
/// query against a store laid out by the test. Its exit status (0: it succeeded), or why it did
/// not run or end by exiting (not found, killed by a signal), with its output.
pub fn run(command: &crate::contract::step::Command) -> Result<i32, String> {
    use crate::engine::process::ProcessError;
    use crate::engine::runner::Runner;
    match Runner::new(crate::contract::ssh::Ssh::new("ssh"), false).run(command) {
        Ok(_) => Ok(0),
        Err(ProcessError::Exited { code, .. }) => Ok(code),
        Err(err) => Err(err.to_string()),
    }
}

/// The words ari puts before every remote command it runs: the remote wrapper, with the
/// marker line that carries `nonce` (a plan shows `NONCE`), or, without one, the watcher alone
/// (what goes before a command that a tool on one host starts on another).
#[doc(hidden)]
pub fn remote_wrapper(nonce: Option<&str>) -> String {
    crate::contract::ssh::prefix(nonce)
}
