//! Finding job files (a path, or a name in `jobs_dir`), and turning them into plans, with every
//! error collected before anything runs.

use std::path::{Path, PathBuf};

use ari_core::engine_api::plan::JobPlan;
use ari_core::job::{default_label, Job};
use ari_core::settings::Layer;

/// Suffixes of files that editors and package managers leave beside a config file.
const LEFTOVERS: &[&str] = &[
    "~",
    ".swp",
    ".swo",
    ".bak",
    ".orig",
    ".tmp",
    ".old",
    ".dpkg-old",
    ".dpkg-dist",
    ".dpkg-new",
    ".dpkg-tmp",
    ".dpkg-bak",
    ".rpmnew",
    ".rpmsave",
    ".rpmorig",
    ".ucf-old",
    ".ucf-new",
    ".ucf-dist",
];

/// An entry of `jobs_dir`: a job, or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A job file.
    Enabled(PathBuf),
    /// Not a job, and why.
    Skipped(PathBuf, &'static str),
}

/// Whether a name is one `run-parts` runs: letters, digits, `_` and `-` only.
fn run_parts_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Classifies one file of `jobs_dir` by its name and type.
pub fn classify(path: &Path) -> Entry {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let skipped = |reason| Entry::Skipped(path.to_path_buf(), reason);
    if name.starts_with('.') {
        return skipped("hidden: a leading dot disables a job");
    }
    if LEFTOVERS.iter().any(|suffix| name.ends_with(suffix)) || (name.starts_with('#') && name.ends_with('#'))
    {
        return skipped("an editor or package-manager leftover");
    }
    if !path.is_file() {
        return skipped("not a regular file");
    }
    if run_parts_name(&name) || name.ends_with(".yaml") || name.ends_with(".yml") {
        Entry::Enabled(path.to_path_buf())
    } else {
        skipped("a name run-parts would not run, and not ending in .yaml or .yml")
    }
}

/// Every entry of `jobs_dir`, sorted by name.
pub fn scan(jobs_dir: &Path) -> Result<Vec<Entry>, String> {
    let entries = std::fs::read_dir(jobs_dir)
        .map_err(|err| format!("jobs_dir: cannot read {}: {err}", jobs_dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|entry| entry.path()).collect();
    paths.sort();
    Ok(paths.iter().map(|p| classify(p)).collect())
}

/// The job files of `jobs_dir`, sorted by name.
pub fn discover(jobs_dir: &Path) -> Result<Vec<PathBuf>, String> {
    Ok(scan(jobs_dir)?
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::Enabled(path) => Some(path),
            Entry::Skipped(..) => None,
        })
        .collect())
}

/// The file of a job named on the command line: a path, or a name in `jobs_dir` (the file name
/// with or without `.yaml`/`.yml`, or the label).
pub fn resolve(name: &str, jobs_dir: &Path) -> Result<PathBuf, String> {
    let as_path = Path::new(name);
    if name.contains('/') || as_path.is_file() {
        return if as_path.is_file() {
            Ok(as_path.to_path_buf())
        } else {
            Err(format!("{}: no such job file", ari_core::kinds::shown(name)))
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
    // A name from the command line is shown as every value in an error: escaped and cut.
    let shown = ari_core::kinds::shown(name);
    Err(format!(
        "no job `{shown}` in {} (looked for {shown}, {shown}.yaml, {shown}.yml and the labels of its jobs){}",
        jobs_dir.display(),
        ari_core::error::did_you_mean(name, labels.iter().map(String::as_str))
    ))
}

/// Loads and plans each job file on its own: a plan, or the job's errors. Two files with the
/// same label are both errors, each naming the other.
pub fn plan_each(
    paths: &[PathBuf],
    global: &Layer,
    command_line: &Layer,
) -> Vec<(PathBuf, Result<JobPlan, String>)> {
    let mut results: Vec<(PathBuf, Result<JobPlan, String>)> = paths
        .iter()
        .map(|path| {
            let plan = Job::load(path)
                .and_then(|job| JobPlan::build(job, global, command_line, Some(crate::DEFAULT_BACKEND)))
                .map_err(|e| e.to_string());
            (path.clone(), plan)
        })
        .collect();
    // A file named twice (`ari run web web`) is one job run twice, not two jobs.
    let mut by_label: std::collections::BTreeMap<String, std::collections::BTreeSet<PathBuf>> =
        std::collections::BTreeMap::new();
    for (path, plan) in &results {
        if let Ok(plan) = plan {
            by_label.entry(plan.label().to_string()).or_default().insert(path.clone());
        }
    }
    for (path, plan) in results.iter_mut() {
        let Ok(ok) = plan else { continue };
        let files = &by_label[ok.label()];
        if files.len() > 1 {
            let others: Vec<String> =
                files.iter().filter(|f| *f != path).map(|f| f.display().to_string()).collect();
            *plan = Err(format!(
                "{}: label `{}` is also the label of {}; labels must be unique",
                path.display(),
                ok.label(),
                others.join(", ")
            ));
        }
    }
    results
}

/// Loads and plans each named job: the plans, and every error of every job.
pub fn plan_names(
    names: &[String],
    jobs_dir: &Path,
    global: &Layer,
    command_line: &Layer,
) -> (Vec<JobPlan>, Vec<String>) {
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for name in names {
        match resolve(name, jobs_dir) {
            Ok(path) => paths.push(path),
            Err(err) => errors.push(err),
        }
    }
    let mut plans = Vec::new();
    for (_, planned) in plan_each(&paths, global, command_line) {
        match planned {
            Ok(plan) => plans.push(plan),
            // A job file's errors, one a line (ari-core reports them all at once): each is a
            // problem of its own.
            Err(err) => errors.extend(err.lines().map(String::from)),
        }
    }
    (plans, errors)
}

/// Loads and plans each named job; every error of every job is returned together.
pub fn plan_all(
    names: &[String],
    jobs_dir: &Path,
    global: &Layer,
    command_line: &Layer,
) -> Result<Vec<JobPlan>, Vec<String>> {
    let (plans, errors) = plan_names(names, jobs_dir, global, command_line);
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_rules() {
        let dir = tempfile::tempdir().unwrap();
        let check = |name: &str, expected: Option<&str>| {
            let path = dir.path().join(name);
            if name.ends_with('/') {
                std::fs::create_dir_all(&path).unwrap();
            } else {
                std::fs::write(&path, "include: [/etc]\n").unwrap();
            }
            let got = match classify(&path) {
                Entry::Enabled(_) => None,
                Entry::Skipped(_, reason) => Some(reason),
            };
            assert_eq!(got, expected, "{name}");
        };
        check("web", None);
        check("web-1_b", None);
        check("db.yaml", None);
        check("db.yml", None);
        check(".web.yaml", Some("hidden: a leading dot disables a job"));
        check("web.yaml~", Some("an editor or package-manager leftover"));
        check("web.yaml.swp", Some("an editor or package-manager leftover"));
        check("web.yaml.dpkg-old", Some("an editor or package-manager leftover"));
        check("web.yaml.dpkg-dist", Some("an editor or package-manager leftover"));
        check("web.rpmnew", Some("an editor or package-manager leftover"));
        check("#web#", Some("an editor or package-manager leftover"));
        check("web.conf", Some("a name run-parts would not run, and not ending in .yaml or .yml"));
        check("subdir/", Some("not a regular file"));
    }
}
