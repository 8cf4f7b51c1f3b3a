//! Finding job files (a path, or a name in `jobs_dir`), and turning them into plans, with every
//! error collected before anything runs.

use std::path::{Path, PathBuf};

use ari_core::job::{default_label, Job};
use ari_core::pipeline::JobPlan;
use ari_core::settings::Layer;

/// The job files in `jobs_dir` that a run of all jobs would consider: regular files whose names
/// run-parts accepts or that end in `.yaml`/`.yml`, without hidden files, sorted by name.
pub fn discover(jobs_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(jobs_dir)
        .map_err(|err| format!("jobs_dir: cannot read {}: {err}", jobs_dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let run_parts =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            let yaml = !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"));
            run_parts || yaml
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// The file of a job named on the command line: a path, or a name in `jobs_dir` (the file name
/// with or without `.yaml`/`.yml`, or the label).
pub fn resolve(name: &str, jobs_dir: &Path) -> Result<PathBuf, String> {
    let as_path = Path::new(name);
    if name.contains('/') || as_path.is_file() {
        return if as_path.is_file() {
            Ok(as_path.to_path_buf())
        } else {
            Err(format!("{name}: no such job file"))
        };
    }
    for candidate in [name.to_string(), format!("{name}.yaml"), format!("{name}.yml")] {
        let path = jobs_dir.join(candidate);
        if path.is_file() {
            return Ok(path);
        }
    }
    let known = discover(jobs_dir).unwrap_or_default();
    for path in &known {
        let label = Job::load(path).map(|job| job.label).unwrap_or_else(|_| default_label(path));
        if label == name {
            return Ok(path.clone());
        }
    }
    let labels: Vec<String> = known.iter().map(|p| default_label(p)).collect();
    Err(format!(
        "no job `{name}` in {} (looked for {name}, {name}.yaml, {name}.yml and the labels of its jobs){}",
        jobs_dir.display(),
        ari_core::error::did_you_mean(name, labels.iter().map(String::as_str))
    ))
}

/// Loads and plans each named job; every error of every job is returned together.
pub fn plan_all(
    names: &[String],
    jobs_dir: &Path,
    global: &Layer,
    command_line: &Layer,
) -> Result<Vec<JobPlan>, Vec<String>> {
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        let planned = resolve(name, jobs_dir).and_then(|path| {
            Job::load(&path)
                .and_then(|job| JobPlan::build(job, global, command_line))
                .map_err(|err| err.to_string())
        });
        match planned {
            Ok(plan) => plans.push(plan),
            Err(err) => errors.push(err),
        }
    }
    let mut labels = std::collections::BTreeMap::new();
    for plan in &plans {
        if let Some(other) = labels.insert(plan.label().to_string(), plan.job.path.clone()) {
            if other != plan.job.path {
                errors.push(format!(
                    "label `{}` is used by both {} and {}",
                    plan.label(),
                    other.display(),
                    plan.job.path.display()
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}
