//! `ari run-all [--wait]`: every enabled job of jobs_dir, in parallel, as fast as the jobs
//! allow: at most `max_concurrent_jobs` at once and `max_jobs_per_host` per host, longest
//! expected first (ari-core's `schedule`). Every job is checked before any starts; an invalid one
//! is reported and skipped, the others run. One failing job never stops the others.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use ari_core::core_settings::{DEBUG, DRY_RUN, MAX_CONCURRENT_JOBS, MAX_JOBS_PER_HOST, SUMMARY};
use ari_core::engine_api::exit;
use ari_core::engine_api::history::History;
use ari_core::engine_api::job_run::{self, JobRun, StopFlags};
use ari_core::engine_api::lock::Lock;
use ari_core::engine_api::log_context::set_job_label;
use ari_core::engine_api::plan::JobPlan;
use ari_core::engine_api::process::humane;
use ari_core::engine_api::report;
use ari_core::engine_api::schedule::{self, Candidate};

use ari_core::error::chain;
use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{usage_errors, Context, Exec};
use super::run::{present, write_report};
use super::settings::table;
use super::signals;
use crate::jobs;

/// How one job of the run ended.
struct Finished {
    code: i32,
    duration: Duration,
    json: serde_json::Value,
}

/// Runs the jobs that ari-core's scheduling loop admits, each on a thread of `scope`.
struct Threads<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    plans: &'env [JobPlan],
    candidates: &'env [Candidate],
    stop: &'env StopFlags,
    done: mpsc::Sender<(usize, Finished)>,
    results: mpsc::Receiver<(usize, Finished)>,
    running: Vec<usize>,
    finished: &'env mut [Option<Finished>],
    progress: &'env Progress,
}

impl schedule::Executor for Threads<'_, '_> {
    fn start(&mut self, index: usize) {
        self.running.push(index);
        self.progress.update(self.candidates, &self.running, self.finished);
        let (plan, stop, done) = (&self.plans[index], self.stop.clone(), self.done.clone());
        self.scope.spawn(move || {
            set_job_label(Some(plan.label()));
            let pings = crate::ping::Pings::start(plan, plan.settings.get(&DRY_RUN));
            let job = job_run::run_job(plan, &stop, false);
            present(plan, &job);
            // A dry run writes no report: keep nothing of the job's but its exit code.
            let json = if plan.settings.get(&DRY_RUN) { serde_json::Value::Null } else { job.to_json(plan) };
            let code = job.exit_code();
            let _ = done.send((index, Finished { code, duration: job.duration, json }));
            // After the job's slot is free: the next job does not wait for its ping.
            if let Some(pings) = pings {
                pings.finish(code);
            }
            set_job_label(None);
        });
    }

    fn wait(&mut self) -> usize {
        // The sender lives in self, so the channel cannot close while a job runs.
        let (index, result) = self.results.recv().expect("a running job reports its end");
        self.running.retain(|&i| i != index);
        self.finished[index] = Some(result);
        self.progress.update(self.candidates, &self.running, self.finished);
        index
    }

    fn stopping(&self) -> bool {
        self.stop.is_interrupted()
    }
}

pub fn cli() -> Command {
    Command::new("run-all").about("run every enabled job of jobs_dir in parallel (the cron entry point)").arg(
        Arg::new("wait")
            .long("wait")
            .action(ArgAction::SetTrue)
            .help("wait for a run-all that is already running, instead of exiting"),
    )
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let wait = matches.get_flag("wait");
    Ok(Exec::with_config(move |context| run_all(context, wait)))
}

fn run_all(context: &Context, wait: bool) -> i32 {
    let started = SystemTime::now();
    let clock = Instant::now();
    let state_dir = context.state_dir();
    let dry_run = context.base.get(&DRY_RUN);
    let _lock = if dry_run {
        None
    } else {
        match Lock::acquire(&state_dir, "run-all", "ari run-all", wait) {
            Ok(lock) => Some(lock),
            Err(err) => {
                log::error!("{}", chain(&err));
                return exit::JOB_FAILED;
            }
        }
    };
    let paths = match jobs::discover(&context.jobs_dir()) {
        Ok(paths) => paths,
        Err(err) => return usage_errors(&[err]),
    };
    let mut plans: Vec<JobPlan> = Vec::new();
    let mut invalid: Vec<(PathBuf, String)> = Vec::new();
    for (path, planned) in jobs::plan_each(&paths, &context.config.layer, &context.command_line) {
        match planned {
            Ok(plan) => {
                let missing = ari_core::engine_api::preflight::missing_tools(std::slice::from_ref(&plan));
                if missing.is_empty() {
                    plans.push(plan);
                } else {
                    let errors: Vec<String> =
                        missing.iter().map(|m| format!("{}: {}", m.setting, m.problem)).collect();
                    invalid.push((path, format!("job {}: {}", plan.label(), errors.join("; "))));
                }
            }
            Err(err) => invalid.push((path, err)),
        }
    }
    for (path, err) in &invalid {
        log::error!("{err}");
        log::error!("skipping {}: it is invalid; the other jobs run", path.display());
    }
    let stop = match signals::install() {
        Ok(stop) => stop,
        Err(err) => return usage_errors(&[format!("cannot install signal handlers: {err}")]),
    };
    let candidates: Vec<Candidate> = plans
        .iter()
        .map(|plan| Candidate {
            label: plan.label().to_string(),
            hosts: plan.hosts(),
            expected: expected_duration(plan),
        })
        .collect();
    let slots = context.base.get(&MAX_CONCURRENT_JOBS).max(1) as usize;
    let per_host = context.base.get(&MAX_JOBS_PER_HOST).max(1);
    let progress = Progress::new(plans.len(), !context.base.get(&DEBUG));

    let mut finished: Vec<Option<Finished>> = (0..plans.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let (done, results) = mpsc::channel();
        let mut threads = Threads {
            scope,
            plans: &plans,
            candidates: &candidates,
            stop: &stop,
            done,
            results,
            running: Vec::new(),
            finished: &mut finished,
            progress: &progress,
        };
        schedule::run(&candidates, slots, per_host, &mut threads);
    });
    progress.finish();

    let mut code = exit::SUCCESS;
    let mut jobs_json = Vec::new();
    let mut rows = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        match &finished[index] {
            Some(done) => {
                code = exit::worst(code, done.code);
                jobs_json.push(done.json.clone());
                rows.push([
                    plan.label().to_string(),
                    outcome(done.code).into(),
                    done.code.to_string(),
                    humane_secs(done.duration),
                ]);
            }
            None => {
                // Interrupted before it could start.
                code = exit::worst(code, exit::JOB_FAILED);
                log::error!("job {} did not start: ari was interrupted", plan.label());
                jobs_json.push(JobRun::not_started().to_json(plan));
                rows.push([
                    plan.label().to_string(),
                    "not started".into(),
                    exit::JOB_FAILED.to_string(),
                    "-".into(),
                ]);
            }
        }
    }
    let mut invalid_json = Vec::new();
    for (path, err) in &invalid {
        code = exit::worst(code, exit::USAGE);
        invalid_json.push(report::Invalid { file: path.display().to_string(), error: err.to_string() });
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        rows.push([name, "invalid".into(), exit::USAGE.to_string(), "-".into()]);
    }
    if !dry_run {
        let limits =
            report::RunAllLimits { max_concurrent_jobs: slots as u64, max_jobs_per_host: per_host as u64 };
        write_report(context, "run-all", started, code, jobs_json, invalid_json, Some(limits));
    }
    let show = match context.base.get(&SUMMARY).as_str() {
        "always" => true,
        "never" => false,
        _ => code != exit::SUCCESS,
    };
    if show {
        let failed = rows.iter().filter(|r| r[2] != "0").count();
        let mut text = table(&["JOB", "OUTCOME", "EXIT", "DURATION"], &rows);
        text.push_str(&format!(
            "{} jobs, {} failed; wall time {}\n",
            rows.len(),
            failed,
            humane_secs(clock.elapsed())
        ));
        print!("{text}");
    }
    code
}

fn outcome(code: i32) -> &'static str {
    match code {
        exit::SUCCESS => "success",
        exit::JOB_FAILED => "failed",
        exit::USAGE => "invalid",
        exit::CLEANUP_FAILED => "cleanup failed",
        _ => "failed",
    }
}

/// A duration to a tenth of a second, as a person writes it.
fn humane_secs(duration: Duration) -> String {
    humane(Duration::from_millis(duration.as_millis() as u64 / 100 * 100))
}

/// The live display on a terminal: jobs running, done, failed, elapsed. Nothing under cron.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(total: usize, allowed: bool) -> Progress {
        if !allowed || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} done {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar: Some(bar) }
    }

    fn update(&self, candidates: &[Candidate], running: &[usize], finished: &[Option<Finished>]) {
        let Some(bar) = &self.bar else { return };
        let done = finished.iter().flatten().count();
        let failed = finished.iter().flatten().filter(|f| f.code != exit::SUCCESS).count();
        let names: Vec<&str> = running.iter().map(|&i| candidates[i].label.as_str()).collect();
        bar.set_position(done as u64);
        bar.set_message(format!("| {failed} failed | running: {}", names.join(", ")));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A job's expected duration for the order of run-all, from its history; a history that cannot
/// be read is a warning here (the job's run moves a corrupt one aside and says so), and the job
/// is ordered as a new one.
fn expected_duration(plan: &JobPlan) -> Option<f64> {
    match History::read(&PathBuf::from(plan.state_dir()), plan.label()) {
        Ok(history) => history.expected_duration(),
        Err(err) => {
            log::warn!("ordering job {} as a new one: {}", plan.label(), chain(&err));
            None
        }
    }
}
