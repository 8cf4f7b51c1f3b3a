//! The job file's own keys and what each means: one text for ari-job(5) (`manual.rs`) and for
//! the JSON Schema of job files (`schema.rs`), so that the two say the same.

/// The job file's own keys (ari_core::job::JOB_KEYS, in its order) and what each means.
pub const JOB_KEY_HELP: &[(&str, &str)] = &[
    ("label", "the job's name in logs and the last part of its backup's path; default: the file name without .yaml/.yml"),
    ("backend", "a registered backend (ari backends lists them); default: rdiff"),
    ("source_hostname", "the host whose files are backed up; localhost is the backup server, any other is reached over ssh"),
    ("include", "what to back up: absolute paths or rdiff-backup patterns starting with *, as on the source host"),
    ("exclude", "what not to back up, in the same form"),
    ("snapshot", "a snapshot source (lvm): the backup reads a frozen, crash-consistent view"),
    ("volumes", "for snapshot: lvm, a list of {name: vg/lv, mount_point: /path, mount_options: ro}"),
    ("pre", "commands run in order before any snapshot; the first failure stops the job"),
    ("after_snapshot", "commands run once the snapshots are mounted, before the backup"),
    ("post", "commands run after everything else, each as its when says (always, success, failure)"),
    ("dumps", "database dumps streamed from their host into the store after pre, before any snapshot: {name, type: postgresql|mysql|mongodb|sqlite, database, path, globals} or {name, command}, with host, container, container_engine, run_as, options, compress (none|zstd), timeout (docs/jobs.md)"),
];
