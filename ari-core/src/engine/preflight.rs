//! Before the first job starts: every local program and directory the planned jobs need.

use crate::engine::plan::JobPlan;
use crate::engine::process::{self};

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
