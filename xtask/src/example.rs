//! The example third-party backend, `examples/ari-restic` (the crate docs/writing-a-backend.md
//! walks through), proved from outside: `cargo xtask test` builds it as a third party would (its
//! own workspace and Cargo.lock, ari's crates as path dependencies), checks its formatting and
//! lints, runs its unit tests, and then makes real backups with its `ari-restic` binary into a
//! local restic repository: two runs, a run that must fail and leave the repository as it was,
//! and a run whose `forget --prune` must drop the older snapshots; each backup is restored with
//! restic and compared with the source byte for byte.
//!
//! The example builds into the workspace's target directory: it shares the crates that resolve
//! to the same versions and features (ari-core itself gets other features of serde and friends
//! from our dev-dependencies, so it is built twice either way), and `target/` stays the one thing
//! to clean. Its binary is `ari-restic`, so it never replaces the workspace's `ari`.

use crate::shell;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The example's manifest, relative to the workspace root.
const MANIFEST: &str = "examples/ari-restic/Cargo.toml";

/// The job's label, and so the tag of its snapshots (`ari:LABEL`).
const LABEL: &str = "example";

/// `cargo ARGS --manifest-path examples/ari-restic/Cargo.toml`, building into our target dir.
fn cargo(args: &[&str]) -> Command {
    let mut cmd = shell::cargo();
    cmd.args(args).args(["--manifest-path", MANIFEST]).env("CARGO_TARGET_DIR", shell::target_dir());
    cmd
}

/// Formatting, clippy, the build of its binary and its unit tests.
pub fn build_and_unit_test() -> Result<()> {
    shell::run(cargo(&["fmt"]).args(["--", "--check"]))?;
    // `--locked`: its Cargo.lock is the one committed, so a dependency that drifted (ari's
    // own version, a crate ari-cli took on) fails here instead of rewriting the file.
    shell::run(cargo(&["clippy", "--locked", "--all-targets"]).args(["--", "-D", "warnings"]))?;
    shell::run(&mut cargo(&["build", "--locked"]))?;
    shell::run(&mut cargo(&["test", "--locked"]))
}

/// One scenario's files, all in a temporary directory.
struct Scenario {
    root: PathBuf,
    source: PathBuf,
    repository: PathBuf,
    password_file: PathBuf,
    config: PathBuf,
    job: PathBuf,
    ari: PathBuf,
}

impl Scenario {
    /// `restic -r REPOSITORY --password-file FILE ARGS`, with its cache in the scenario.
    fn restic(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("restic");
        cmd.arg("-r").arg(&self.repository).arg("--password-file").arg(&self.password_file).args(args);
        cmd.env("RESTIC_CACHE_DIR", self.root.join("restic-cache"));
        cmd
    }

    /// `ari-restic ARGS --config CONFIG` (restic, which it starts, inherits the cache setting).
    fn ari(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ari);
        cmd.args(args).arg("--config").arg(&self.config);
        cmd.env("RESTIC_CACHE_DIR", self.root.join("restic-cache"));
        cmd
    }

    /// `ari-restic run JOB ARGS`, which must exit with `code`.
    fn run_job(&self, job: &Path, args: &[&str], code: i32) -> Result<String> {
        let mut cmd = self.ari(&["run"]);
        cmd.arg(job).args(args);
        let shown = shell::display(&cmd);
        println!("$ {shown}");
        let out = cmd.output().with_context(|| format!("could not start `{shown}`"))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        print!("{stderr}");
        ensure!(out.status.code() == Some(code), "`{shown}` exited with {}, not {code}", out.status);
        println!("exit {code}, as expected");
        Ok(stderr)
    }

    /// The repository's snapshots, oldest first, as their ids.
    fn snapshots(&self) -> Result<Vec<String>> {
        let json = shell::output(&mut self.restic(&["snapshots", "--json"]))?;
        let list: serde_json::Value = serde_json::from_str(&json).context("restic snapshots --json")?;
        let source = self.source.to_str().context("source path")?;
        let mut ids = Vec::new();
        for snapshot in list.as_array().context("restic snapshots --json: not a list")? {
            let tags = snapshot["tags"].as_array().cloned().unwrap_or_default();
            ensure!(
                tags == [format!("ari:{LABEL}")],
                "snapshot {snapshot} lacks exactly the tag ari:{LABEL}"
            );
            ensure!(
                snapshot["paths"] == serde_json::json!([source]),
                "snapshot {snapshot} is not of {source}"
            );
            ids.push(snapshot["id"].as_str().context("a snapshot without an id")?.to_string());
        }
        println!(
            "{} snapshot(s): {}",
            ids.len(),
            ids.iter().map(|id| &id[..8]).collect::<Vec<_>>().join(" ")
        );
        Ok(ids)
    }

    /// Restores `snapshot` into a new directory and compares it with the source as the job
    /// backs it up (without what it excludes).
    fn restore_and_compare(&self, snapshot: &str, name: &str) -> Result<()> {
        let target = self.root.join(name);
        let mut restore = self.restic(&["restore", snapshot, "--target"]);
        shell::run(restore.arg(&target))?;
        // restic restores each path under its absolute path.
        let restored = target.join(self.source.strip_prefix("/")?);
        let mut expected = tree(&self.source)?;
        expected.retain(|path, _| !path.starts_with("cache") && !path.to_string_lossy().ends_with(".tmp"));
        compare(&expected, &tree(&restored)?)?;
        println!("{} entries restored from {snapshot}, identical to the source", expected.len());
        Ok(())
    }
}

/// The real backups, restores and failures with the example's binary.
pub fn scenario() -> Result<()> {
    ensure!(
        crate::deps::find_binary("restic").is_some(),
        "restic is not installed: apt-get install restic (or cargo xtask deps)"
    );
    let dir = tempfile::Builder::new().prefix("ari-restic-example-").tempdir()?;
    let root = dir.path().to_path_buf();
    let s = Scenario {
        source: root.join("source"),
        repository: root.join("repository"),
        password_file: root.join("restic.pw"),
        config: root.join("ari-backup.conf.yaml"),
        job: root.join("jobs.d/example.yaml"),
        ari: shell::target_dir().join("debug/ari-restic"),
        root,
    };
    println!("scenario in {}", s.root.display());
    ensure!(s.ari.is_file(), "{} is not built", s.ari.display());

    write_source(&s.source)?;
    write(&s.password_file, "correct horse battery staple\n")?;
    fs::set_permissions(&s.password_file, fs::Permissions::from_mode(0o600))?;
    shell::run(&mut s.restic(&["init"]))?;
    write(
        &s.config,
        &format!(
            "state_dir: {}\nrestic_repository: {}\nrestic_password_file: {}\n",
            yaml(&s.root.join("state"))?,
            yaml(&s.repository)?,
            yaml(&s.password_file)?
        ),
    )?;
    // keep_last 2 keeps both backups of the same day; the third run asks for 1.
    let job = |include: &str| -> Result<String> {
        Ok(format!(
            "label: {LABEL}\nbackend: restic\ninclude: [{include}]\nexclude: [{}, '*.tmp']\nrestic_keep_last: 2\n",
            yaml(&s.source.join("cache"))?
        ))
    };
    write(&s.job, &job(&yaml(&s.source)?)?)?;
    println!("job {}:\n{}", s.job.display(), fs::read_to_string(&s.job)?);

    let backends = shell::output(&mut s.ari(&["backends"]))?;
    ensure!(
        backends.lines().any(|line| line.contains("restic")),
        "ari-restic backends lists no restic:\n{backends}"
    );
    shell::run(s.ari(&["check"]).arg(&s.job))?;

    shell::header("example: first backup");
    s.run_job(&s.job, &[], 0)?;
    let first = s.snapshots()?;
    ensure!(first.len() == 1, "one backup, but {} snapshots", first.len());
    s.restore_and_compare("latest", "restore-1")?;

    shell::header("example: change the source, second backup");
    change_source(&s.source)?;
    s.run_job(&s.job, &[], 0)?;
    let second = s.snapshots()?;
    ensure!(second.len() == 2 && second[0] == first[0], "keep_last 2 must keep both backups: {second:?}");
    s.restore_and_compare("latest", "restore-2")?;

    shell::header("example: a failing backup runs no forget");
    // The same job, with a missing include: the backup is refused, so its forget (which would
    // keep only 1 snapshot) must not run.
    let missing = s.root.join("jobs.d/missing.yaml");
    write(&missing, &job(&format!("{}, {}", yaml(&s.source)?, yaml(&s.root.join("no-such-dir"))?))?)?;
    let stderr = s.run_job(&missing, &["--restic-keep-last", "1"], 1)?;
    ensure!(stderr.contains("does not exist"), "the failed run does not say why:\n{stderr}");
    ensure!(s.snapshots()? == second, "a failed backup changed the repository");

    shell::header("example: third backup, forget --prune keeps only the newest");
    s.run_job(&s.job, &["--restic-keep-last", "1"], 0)?;
    let third = s.snapshots()?;
    ensure!(
        third.len() == 1 && !second.contains(&third[0]),
        "forget --keep-last 1 must leave only the new snapshot: {third:?} after {second:?}"
    );
    s.restore_and_compare("latest", "restore-3")?;
    shell::run(&mut s.restic(&["check"]))?;
    Ok(())
}

/// A source tree with what a restore can get wrong: binary data, an empty file, an empty
/// directory, odd names, an executable, a symlink; and what the job excludes.
fn write_source(source: &Path) -> Result<()> {
    let binary: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 256) as u8).collect();
    write_bytes(&source.join("data/blob.bin"), &binary)?;
    write(&source.join("data/empty"), "")?;
    write(&source.join("etc/hosts.conf"), "127.0.0.1 localhost\n")?;
    write(&source.join("docs/a b/ünïcode ☃.txt"), "a name with spaces and more\n")?;
    write(&source.join("bin/tool.sh"), "#!/bin/sh\necho tool\n")?;
    fs::set_permissions(source.join("bin/tool.sh"), fs::Permissions::from_mode(0o755))?;
    fs::create_dir_all(source.join("empty-dir"))?;
    symlink("a b/ünïcode ☃.txt", source.join("docs/latest"))?;
    write(&source.join("cache/thumbnails.db"), "excluded by its path\n")?;
    write(&source.join("docs/draft.tmp"), "excluded by the pattern *.tmp\n")?;
    Ok(())
}

/// Changes a file in its middle (same size), adds one and removes one.
fn change_source(source: &Path) -> Result<()> {
    let blob = source.join("data/blob.bin");
    let mut bytes = fs::read(&blob)?;
    bytes[30_000..30_010].copy_from_slice(b"CHANGED!!!");
    write_bytes(&blob, &bytes)?;
    write(&source.join("etc/new.conf"), "added before the second backup\n")?;
    fs::remove_file(source.join("etc/hosts.conf"))?;
    Ok(())
}

/// What a tree holds, for comparing: each entry's kind, permission bits and contents (a
/// file's bytes, a symlink's target).
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File { mode: u32, bytes: Vec<u8> },
    Dir { mode: u32 },
    Symlink { target: PathBuf },
}

/// Every entry below `root` (not `root` itself), by its path relative to it.
fn tree(root: &Path) -> Result<BTreeMap<PathBuf, Entry>> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = item?.path();
            let meta = fs::symlink_metadata(&path)?;
            let mode = meta.permissions().mode() & 0o7777;
            let entry = if meta.file_type().is_symlink() {
                Entry::Symlink { target: fs::read_link(&path)? }
            } else if meta.is_dir() {
                stack.push(path.clone());
                Entry::Dir { mode }
            } else {
                Entry::File { mode, bytes: fs::read(&path)? }
            };
            entries.insert(path.strip_prefix(root)?.to_path_buf(), entry);
        }
    }
    Ok(entries)
}

/// Fails with every difference between two trees.
fn compare(expected: &BTreeMap<PathBuf, Entry>, actual: &BTreeMap<PathBuf, Entry>) -> Result<()> {
    let mut differences = Vec::new();
    for (path, entry) in expected {
        match actual.get(path) {
            None => differences.push(format!("missing: {}", path.display())),
            Some(found) if found != entry => differences.push(format!("differs: {}", path.display())),
            Some(_) => {}
        }
    }
    differences.extend(
        actual
            .keys()
            .filter(|path| !expected.contains_key(*path))
            .map(|p| format!("unexpected: {}", p.display())),
    );
    if !differences.is_empty() {
        bail!("the restore differs from the source:\n  {}", differences.join("\n  "));
    }
    Ok(())
}

/// A path as a YAML double-quoted scalar (JSON string syntax is YAML).
fn yaml(path: &Path) -> Result<String> {
    Ok(serde_json::to_string(path.to_str().context("a path that is not UTF-8")?)?)
}

fn write(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_finds_every_difference() {
        let dir = tempfile::tempdir().unwrap();
        write_source(dir.path()).unwrap();
        let original = tree(dir.path()).unwrap();
        assert!(compare(&original, &tree(dir.path()).unwrap()).is_ok());
        assert_eq!(original[Path::new("docs/latest")], Entry::Symlink { target: "a b/ünïcode ☃.txt".into() });
        assert!(matches!(original[Path::new("empty-dir")], Entry::Dir { .. }));

        change_source(dir.path()).unwrap();
        let message = compare(&original, &tree(dir.path()).unwrap()).unwrap_err().to_string();
        for line in ["missing: etc/hosts.conf", "differs: data/blob.bin", "unexpected: etc/new.conf"] {
            assert!(message.contains(line), "`{line}` not in {message}");
        }

        let changed = tree(dir.path()).unwrap();
        fs::set_permissions(dir.path().join("bin/tool.sh"), fs::Permissions::from_mode(0o644)).unwrap();
        let message = compare(&changed, &tree(dir.path()).unwrap()).unwrap_err().to_string();
        assert_eq!(message, "the restore differs from the source:\n  differs: bin/tool.sh");
    }
}
