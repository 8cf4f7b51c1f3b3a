//! The restic backend: its checks, its tools, the backup and the forget step.

use ari_core::prelude::*;

use crate::settings::*;

/// The restic backend, registered as `restic`.
pub struct ResticBackend;

register_backend!(ResticBackend);

/// `restic -r REPOSITORY --password-file FILE`, the start of every restic command.
fn restic(job: &JobContext) -> Result<Vec<String>, ConfigError> {
    let repository = job.require(&RESTIC_REPOSITORY)?;
    let password_file = job.require(&RESTIC_PASSWORD_FILE)?;
    Ok(vec![job.get(&RESTIC_PATH), "-r".into(), repository, "--password-file".into(), password_file])
}

/// The tag of the job's snapshots. `forget` looks at no other, so jobs can share a repository.
fn tag(job: &JobContext) -> String {
    format!("ari:{}", job.job().label)
}

/// What restic reads: the includes, inside the snapshot source's frozen view when the job has
/// one (the whole view when it includes nothing).
fn paths(job: &JobContext) -> Vec<String> {
    let include = &job.job().include;
    match job.snapshot_root() {
        Some(root) if include.is_empty() => vec![root],
        Some(root) => include.iter().map(|path| join_path(&root, path)).collect(),
        None => include.clone(),
    }
}

/// The `--exclude` options. restic matches an absolute pattern against the paths it reads, so
/// it moves into the frozen view with the includes; a relative one (`*.tmp`) matches anywhere.
fn excludes(job: &JobContext) -> Vec<String> {
    let root = job.snapshot_root();
    let exclude = |pattern: &String| match &root {
        Some(root) if pattern.starts_with('/') => join_path(root, pattern),
        _ => pattern.clone(),
    };
    job.job().exclude.iter().map(|pattern| format!("--exclude={}", exclude(pattern))).collect()
}

/// The policy of `restic forget`; a keep of 0 is left out, as restic reads it as unset.
fn keep_options(job: &JobContext) -> Vec<String> {
    let keeps = [
        ("--keep-last", job.get(&RESTIC_KEEP_LAST)),
        ("--keep-daily", job.get(&RESTIC_KEEP_DAILY)),
        ("--keep-weekly", job.get(&RESTIC_KEEP_WEEKLY)),
        ("--keep-monthly", job.get(&RESTIC_KEEP_MONTHLY)),
    ];
    keeps
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .flat_map(|(option, n)| [option.to_string(), n.to_string()])
        .collect()
}

impl BackupBackend for ResticBackend {
    fn name(&self) -> &'static str {
        "restic"
    }

    fn summary(&self) -> &'static str {
        "restic backup on the source host, then restic forget --prune"
    }

    fn check(&self, job: &JobContext) -> Result<(), ConfigError> {
        // Each setting was checked by its kind when it was read; here, what the job's own
        // keys must be for restic, and what spans several settings.
        restic(job)?;
        for (i, path) in job.job().include.iter().enumerate() {
            kinds::PATH.check(path).map_err(|why| {
                job.error_at(&format!("include[{i}]"), format!("`{}` {why}", kinds::shown(path)))
            })?;
        }
        for (i, pattern) in job.job().exclude.iter().enumerate() {
            if pattern.split('/').any(|part| part == "." || part == "..") {
                return Err(job.error_at(
                    &format!("exclude[{i}]"),
                    format!("`{}`: restic patterns have no `.` or `..` parts", kinds::shown(pattern)),
                ));
            }
        }
        if job.job().include.is_empty() && job.snapshot_root().is_none() {
            return Err(job.error_at("include", "the restic backend needs at least one path to back up"));
        }
        if keep_options(job).is_empty() {
            return Err(job.error_at(
                "restic_keep_daily",
                "restic_keep_last, _daily, _weekly and _monthly are all 0, which leaves restic forget no policy; keep at least one",
            ));
        }
        Ok(())
    }

    fn tools(&self, job: &JobContext) -> Vec<Tool> {
        // On a remote source host the commands run over ssh, which ari-core adds itself.
        if !job.source_host().is_local() {
            return Vec::new();
        }
        vec![Tool::new("restic_path", job.get(&RESTIC_PATH)), Tool::new("include", "test")]
    }

    fn main_steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        let host = job.source_host();
        // restic skips a path that does not exist, and still exits 0 when another one does.
        let mut steps: Vec<Step> = paths(job)
            .into_iter()
            .map(|path| {
                let reason = format!("`{path}` does not exist on {host}, and restic would skip it");
                let missing = Command::argv(host.clone(), ["test", "!", "-e", &path]);
                Step::refuse_if(Phase::Main, "restic include exists", missing, reason)
            })
            .collect();
        let mut argv = restic(job)?;
        argv.extend(["backup".into(), "--tag".into(), tag(job)]);
        argv.extend(excludes(job));
        argv.push("--".into());
        argv.extend(paths(job));
        steps.push(Step::run(Phase::Main, "restic backup", Command::argv(host, argv)));
        Ok(steps)
    }

    fn post_steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        // The engine runs it only after a successful backup, whatever `when` it carries.
        let mut argv = restic(job)?;
        argv.extend(["forget".into(), "--prune".into(), "--tag".into(), tag(job)]);
        argv.extend(keep_options(job));
        Ok(vec![Step::run(Phase::Post, "restic forget", Command::argv(job.source_host(), argv))])
    }
}
