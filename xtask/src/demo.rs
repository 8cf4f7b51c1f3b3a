//! `cargo xtask demo`: a real backup a new user can watch. It builds ari,
//! writes a small sample tree plus a global config and one rdiff job under
//! target/demo/, runs the job, changes a file and adds one, runs it again,
//! and then shows what ended up in the store, rdiff-backup's list of
//! increments, the commands to explore and restore by hand, and `ari plan`.
//! Everything lives under target/demo/ and is recreated on each run, so the
//! demo never touches anything outside the build directory.

use crate::{deps, shell};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Sample files, relative to the source tree. Ordinary-looking names so the
/// store listing reads like a real home directory.
const SAMPLE_FILES: &[&str] = &[
    "README.txt",
    "docs/guide.txt",
    "docs/faq.txt",
    "docs/todo.txt",
    "docs/notes/2024-01-15.txt",
    "docs/notes/2024-02-03.txt",
    "docs/notes/2024-03-21.txt",
    "projects/website/index.html",
    "projects/website/about.html",
    "projects/website/style.css",
    "projects/scripts/README.txt",
    "projects/scripts/report.sh",
    "projects/scripts/cleanup.sh",
    "recipes/bread.txt",
    "recipes/soup.txt",
    "recipes/pancakes.txt",
    "letters/2023/landlord.txt",
    "letters/2024/bank.txt",
    "letters/2024/insurance.txt",
    "music/playlist.m3u",
];

/// Files under cache/, which the job excludes: they must not show up in the
/// store, which demonstrates `exclude`.
const CACHE_FILES: &[&str] = &["cache/thumbnails-1.tmp", "cache/thumbnails-2.tmp", "cache/session.tmp"];

/// The file changed between the two runs, and the one added.
const CHANGED_FILE: &str = "docs/todo.txt";
const ADDED_FILE: &str = "docs/new-idea.txt";
/// The demo job's label, by which the commands the demo runs and prints name it.
const DEMO_LABEL: &str = "demo";

/// Paths of one demo setup, all absolute so printed commands work anywhere.
struct Demo {
    root: PathBuf,
    source: PathBuf,
    store: PathBuf,
    config: PathBuf,
    job: PathBuf,
    ari: PathBuf,
}

impl Demo {
    /// `ari --config CONF <args>`.
    fn ari(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ari);
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    /// `ari --config CONF run JOB`: the job's backup for real.
    fn run_job(&self) -> Command {
        let mut cmd = self.ari(&["run"]);
        cmd.arg(&self.job);
        cmd
    }

    /// The rdiff-backup repository of the demo job: <store>/<label>.
    fn repository(&self) -> PathBuf {
        self.store.join(DEMO_LABEL)
    }

    /// The metrics file every real run rewrites (`metrics_file`).
    fn metrics(&self) -> PathBuf {
        self.root.join("ari.prom")
    }
}

pub fn run() -> Result<()> {
    // The demo backs up a local tree with rdiff-backup, and needs nothing else of the tests'.
    shell::header("system tools");
    deps::ensure_packages(&[("rdiff-backup", "rdiff-backup")])?;

    shell::header("build ari");
    shell::run(shell::cargo().args(["build", "-p", "ari-cli"]))?;

    let target = shell::target_dir();
    let root = target.join("demo");
    let demo = Demo {
        source: root.join("source"),
        store: root.join("store"),
        config: root.join("ari-backup.conf.yaml"),
        job: root.join("jobs.d/demo.yaml"),
        ari: target.join("debug/ari"),
        root,
    };

    shell::header(&format!("sample data in {}", demo.root.display()));
    setup(&demo)?;
    println!(
        "source tree: {} ({} files, plus {} in cache/ which the job excludes)",
        demo.source.display(),
        SAMPLE_FILES.len(),
        CACHE_FILES.len()
    );
    println!("\nglobal config {}:", demo.config.display());
    print_file(&demo.config)?;
    println!("\njob file {}:", demo.job.display());
    print_file(&demo.job)?;

    shell::header("first backup: a full mirror");
    shell::run(&mut demo.run_job())?;
    let first_done = SystemTime::now();

    shell::header(&format!("change {CHANGED_FILE}, add {ADDED_FILE}"));
    // rdiff-backup refuses a second session within the same second as the
    // previous one, and its change detection looks at whole-second mtimes.
    shell::wait_for_next_second(first_done);
    change_source(&demo.source)?;
    println!("appended a line to {CHANGED_FILE}, created {ADDED_FILE}");

    shell::header("second backup: an increment");
    shell::run(&mut demo.run_job())?;

    shell::header(&format!("the store: {}", demo.repository().display()));
    print_tree(&demo.repository(), "")?;

    shell::header("rdiff-backup's increments");
    list_increments(&demo.repository())?;

    shell::header("ari history: the backups the store holds, newest first");
    // By the job's label, found in jobs_dir, as the hints at the end print it.
    shell::run(&mut demo.ari(&["history", DEMO_LABEL]))?;

    shell::header(&format!("ari restore: {CHANGED_FILE} as the first backup held it (--at 1B)"));
    let changed = demo.source.join(CHANGED_FILE);
    let restored_dir = demo.root.join("restored");
    let mut restore = demo.ari(&["restore", DEMO_LABEL]);
    restore.arg(&changed);
    restore.args(["--at", "1B", "--to"]).arg(&restored_dir);
    shell::run(&mut restore)?;
    let restored = restored_dir.join(changed.strip_prefix("/").unwrap_or(&changed));
    let (now, then) = (fs::read_to_string(&changed)?, fs::read_to_string(&restored)?);
    if !now.starts_with(&then) || now == then {
        bail!("the restored {} is not {CHANGED_FILE} as the first backup held it", restored.display());
    }
    println!("{} lacks the line the second backup added:", restored.display());
    for line in now[then.len()..].lines() {
        println!("    {line}");
    }

    shell::header(&format!("the metrics file for Prometheus: {}", demo.metrics().display()));
    print_file(&demo.metrics())?;

    shell::header("ari plan: what `ari run` executes for this job");
    // Global options may follow the subcommand; shown that way here.
    let mut plan = Command::new(&demo.ari);
    plan.arg("plan").arg(&demo.job).arg("--config").arg(&demo.config);
    shell::run(&mut plan)?;

    shell::header("try it yourself");
    print_hints(&demo);
    Ok(())
}

/// Recreates target/demo with the sample tree, the config and the job file.
fn setup(demo: &Demo) -> Result<()> {
    if demo.root.exists() {
        fs::remove_dir_all(&demo.root)
            .with_context(|| format!("removing the old {}", demo.root.display()))?;
    }
    for (index, rel) in SAMPLE_FILES.iter().chain(CACHE_FILES).enumerate() {
        write_file(&demo.source.join(rel), &sample_contents(rel, index))?;
    }

    // The store stands for the admin's backup disk, which exists before any
    // job is written; a user following the demo would have made it, so we do
    // too. The state directory is left to ari, which owns it.
    fs::create_dir_all(&demo.store)?;

    let jobs_dir = demo.job.parent().expect("the job file is in jobs.d");
    write_file(
        &demo.config,
        &config_text(&demo.store, jobs_dir, &demo.root.join("state"), &demo.metrics())?,
    )?;
    write_file(&demo.job, &job_text(&demo.source)?)?;
    // Executable, so that the shebang line works: `./demo.yaml` runs the job.
    set_mode(&demo.job, 0o755)?;
    Ok(())
}

/// The schema line of a demo file: the repository's copy of a schema ari ships.
fn schema_line(which: ari_cli::schema::Which) -> String {
    let path = crate::shell::workspace_root().join("dist/schema").join(ari_cli::schema::file_name(which));
    format!("# yaml-language-server: $schema={}\n", path.display())
}

/// The demo's global config: its jobs_dir holds the demo job, so that the commands the demo
/// prints name the job by its label, as an admin would.
fn config_text(store: &Path, jobs_dir: &Path, state: &Path, metrics: &Path) -> Result<String> {
    Ok(format!(
        "{}backup_store_path: {}\njobs_dir: {}\nstate_dir: {}\nmetrics_file: {}\n",
        schema_line(ari_cli::schema::Which::Config),
        yaml_string(store)?,
        yaml_string(jobs_dir)?,
        yaml_string(state)?,
        yaml_string(metrics)?
    ))
}

/// The demo's job file.
fn job_text(source: &Path) -> Result<String> {
    Ok(format!(
        "#!/usr/bin/env -S ari run\n{}\
         label: {DEMO_LABEL}\n\
         backend: rdiff\n\
         source_hostname: localhost\n\
         include: [{}]\n\
         exclude: [{}]\n",
        schema_line(ari_cli::schema::Which::Job),
        yaml_string(source)?,
        yaml_string(&source.join("cache"))?
    ))
}

/// Deterministic, human-readable contents of varying length.
fn sample_contents(rel: &str, index: usize) -> String {
    let mut text = format!("This is {rel}, a sample file of the ari demo.\n");
    for line in 1..=(3 + index * 7 % 20) {
        text.push_str(&format!("line {line} of {rel}\n"));
    }
    text
}

fn change_source(source: &Path) -> Result<()> {
    let changed = source.join(CHANGED_FILE);
    let mut text = fs::read_to_string(&changed)?;
    text.push_str("- try restoring an older version of this file\n");
    fs::write(&changed, text)?;
    write_file(&source.join(ADDED_FILE), "A file that only exists since the second backup.\n")
}

/// Lists the repository like `tree`, but summarises rdiff-backup-data, whose
/// internals (metadata, increments) mean nothing to a new user.
fn print_tree(dir: &Path, indent: &str) -> Result<()> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if name == "rdiff-backup-data" {
                let count = fs::read_dir(&path)?.count();
                println!("{indent}{name}/  (rdiff-backup's metadata and increments, {count} entries)");
            } else {
                // Include paths are mirrored under their absolute path, so
                // the tree starts with a chain of single-child directories
                // (home/user/...); print such a chain on one line.
                let (shown, inner) = collapse_chain(&path)?;
                println!("{indent}{name}{shown}/");
                print_tree(&inner, &format!("{indent}    "))?;
            }
        } else {
            println!("{indent}{name}  ({} bytes)", entry.metadata()?.len());
        }
    }
    Ok(())
}

/// Follows `dir` down while it holds exactly one entry that is a directory;
/// returns the names passed ("/a/b") and the directory reached.
fn collapse_chain(dir: &Path) -> Result<(String, PathBuf)> {
    let mut shown = String::new();
    let mut current = dir.to_path_buf();
    loop {
        let entries = fs::read_dir(&current)?.collect::<std::io::Result<Vec<_>>>()?;
        match entries.as_slice() {
            [only] if only.file_type()?.is_dir() => {
                shown.push('/');
                shown.push_str(&only.file_name().to_string_lossy());
                current = only.path();
            }
            _ => return Ok((shown, current)),
        }
    }
}

/// Current rdiff-backup has `list increments`; older releases only the
/// legacy `--list-increments` option, so fall back to that.
fn list_increments(repository: &Path) -> Result<()> {
    let modern = shell::run(Command::new("rdiff-backup").args(["list", "increments"]).arg(repository));
    if modern.is_ok() {
        return Ok(());
    }
    println!("(retrying with the legacy command line of older rdiff-backup)");
    shell::run(Command::new("rdiff-backup").arg("--list-increments").arg(repository))
}

/// Prints the commands for exploring the backup by hand, with real paths.
fn print_hints(demo: &Demo) {
    let repo = demo.repository();
    let q = |p: &Path| shell::quote(p.as_os_str());
    // Where the changed file sits inside the repository depends on how the
    // backend lays out include paths; look rather than assume.
    let in_store = find_in_store(&repo, &demo.source, CHANGED_FILE)
        .map(|p| q(&p))
        .unwrap_or_else(|| format!("{}/<path of {CHANGED_FILE} in the store>", q(&repo)));
    let restored = q(&demo.root.join("todo.txt.restored"));
    let ari = |args: &str| format!("{} --config {} {args}", q(&demo.ari), q(&demo.config));
    println!(
        "List the job's backups:\n    {history}\n\
         Restore {CHANGED_FILE} as of any of them, into a directory of your choice:\n    \
         {restore}\n\
         Or with rdiff-backup itself (1B = one backup ago):\n    \
         rdiff-backup list increments {in_store}\n    \
         rdiff-backup restore --at 1B {in_store} {restored}\n    \
         diff {restored} {changed}\n\
         Run the job again, or see what it would run:\n    {run}\n    {dry}\n\
         Compare every file of the source with the store (docs/verify.md):\n    {verify}\n\
         The demo lives in {root}; `cargo xtask demo` recreates it.",
        history = ari(&format!("history {DEMO_LABEL}")),
        restore = ari(&format!(
            "restore {DEMO_LABEL} {} --at 1B --to {}",
            q(&demo.source.join(CHANGED_FILE)),
            q(&demo.root.join("my-restore"))
        )),
        changed = q(&demo.source.join(CHANGED_FILE)),
        run = shell::display(&demo.run_job()),
        dry = shell::display(demo.run_job().arg("--dry-run")),
        verify = ari(&format!("verify {DEMO_LABEL} --sample 100%")),
        root = q(&demo.root),
    );
}

/// The mirror copy of `rel` (a path inside the source tree) in the
/// repository: either under the source's absolute path (rdiff-backup run on
/// `/` with include filters, as ari-backup does) or directly under the
/// repository.
fn find_in_store(repo: &Path, source: &Path, rel: &str) -> Option<PathBuf> {
    let under_abs = repo.join(source.strip_prefix("/").unwrap_or(source)).join(rel);
    [under_abs, repo.join(rel)].into_iter().find(|candidate| candidate.is_file())
}

/// A path as a YAML double-quoted scalar; JSON string syntax is valid YAML,
/// and quoting keeps odd characters in the checkout path from breaking it.
fn yaml_string(path: &Path) -> Result<String> {
    let Some(text) = path.to_str() else {
        bail!("{} is not valid UTF-8", path.display());
    };
    Ok(serde_json::to_string(text)?)
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

fn print_file(path: &Path) -> Result<()> {
    let text = fs::read_to_string(path)?;
    for line in text.lines() {
        println!("    {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_tree_has_about_twenty_files_and_a_cache() {
        assert_eq!(SAMPLE_FILES.len(), 20);
        assert!(CACHE_FILES.iter().all(|f| f.starts_with("cache/")));
        assert!(SAMPLE_FILES.contains(&CHANGED_FILE));
        assert!(!SAMPLE_FILES.contains(&ADDED_FILE));
    }

    /// The demo's files validate against the schemas ari ships (checked with Debian's
    /// python3-jsonschema, as ari-cli's schema tests do).
    #[test]
    #[allow(clippy::disallowed_methods)] // a test runs python3 on what the demo writes
    fn the_demo_files_validate_against_the_schemas() {
        use ari_cli::schema::{schema, Which};
        use std::io::Write as _;
        let source = Path::new("/tmp/ari-demo/source");
        for (which, text) in [
            (Which::Job, job_text(source).unwrap()),
            (
                Which::Config,
                config_text(
                    Path::new("/tmp/s"),
                    Path::new("/tmp/j"),
                    Path::new("/tmp/t"),
                    Path::new("/tmp/m.prom"),
                )
                .unwrap(),
            ),
        ] {
            assert!(text.contains(&schema_line(which)), "{text}");
            let instance: serde_json::Value = serde_yaml::from_str(&text).unwrap();
            let input = serde_json::json!({"schema": schema(which), "instance": instance});
            let mut child = std::process::Command::new("/usr/bin/python3")
                .args(["-c", "import json, sys, jsonschema\nd = json.load(sys.stdin)\njsonschema.validate(d['instance'], d['schema'])"])
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run /usr/bin/python3 (apt-get install -y python3-jsonschema)");
            child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
        }
    }

    #[test]
    fn yaml_string_quotes_paths() {
        assert_eq!(yaml_string(Path::new("/a b/c\"d")).unwrap(), r#""/a b/c\"d""#);
    }
}
