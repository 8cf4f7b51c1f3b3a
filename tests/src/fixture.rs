//! A throwaway ari installation for one test: a global config, a jobs directory, a state
//! directory and a backup store in a temp dir, and an `ari` command that uses them.
//!
//! Nothing here touches `/etc/ari-backup` or `/var/lib/ari-backup`: every test names its own
//! config with `--config`, and the config points every directory into the temp dir.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

use crate::tools::ari_bin;

/// A temp dir holding `ari-backup.conf.yaml`, `jobs.d/`, `state/` and `store/`.
pub struct Fixture {
    dir: TempDir,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    /// A fresh fixture with a config that points every directory into it.
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new().prefix("ari-test-").tempdir().expect("create temp dir");
        for sub in ["jobs.d", "state", "store"] {
            fs::create_dir_all(dir.path().join(sub)).expect("create fixture dirs");
        }
        let fixture = Fixture { dir };
        fixture.write_config("");
        fixture
    }

    /// The fixture's root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `text` with the fixture's root written as `FIXTURE`, for snapshots of output that names
    /// the fixture's directories (a job's control sockets under its state_dir).
    pub fn redacted(&self, text: &str) -> String {
        text.replace(&self.root().display().to_string(), "FIXTURE")
    }

    /// The same for a JSON value.
    pub fn redacted_json(&self, value: &serde_json::Value) -> serde_json::Value {
        serde_json::from_str(&self.redacted(&value.to_string())).expect("redacted JSON")
    }

    /// A path inside the fixture.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// A path inside the fixture, as a string for YAML.
    pub fn p(&self, relative: &str) -> String {
        self.path(relative).to_string_lossy().into_owned()
    }

    /// The global config file.
    pub fn config_path(&self) -> PathBuf {
        self.path("ari-backup.conf.yaml")
    }

    /// Writes the global config: the fixture's directories, then `extra` YAML lines.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "backup_store_path: {}\nstate_dir: {}\njobs_dir: {}\n{extra}",
            self.p("store"),
            self.p("state"),
            self.p("jobs.d")
        );
        fs::write(self.config_path(), text).expect("write config");
    }

    /// Writes a job file into `jobs.d` and returns its path.
    pub fn write_job(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.path("jobs.d").join(name);
        fs::write(&path, yaml).expect("write job");
        path
    }

    /// Writes files (relative path, contents) under `relative` and returns that directory.
    pub fn make_tree(&self, relative: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.path(relative);
        for (name, contents) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().expect("file has a parent")).expect("create dirs");
            fs::write(&path, contents).expect("write file");
        }
        fs::create_dir_all(&root).expect("create tree root");
        root
    }

    /// Writes an executable script and returns its path.
    pub fn write_script(&self, relative: &str, body: &str) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().expect("script has a parent")).expect("create dirs");
        fs::write(&path, body).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        path
    }

    /// `ari plan JOB --json`, which must succeed, as JSON.
    #[track_caller]
    pub fn plan_json(&self, job: &Path) -> serde_json::Value {
        let out = crate::run(self.ari().arg("plan").arg(job).arg("--json"));
        assert_exit(&out, 0);
        serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("plan --json is no JSON object: {e}\n{}", stdout(&out)))
    }

    /// `ari --config CONFIG`, with stdin closed and `ARI_CONFIG` removed.
    pub fn ari(&self) -> Command {
        let mut command = Command::new(ari_bin());
        command.arg("--config").arg(self.config_path());
        command.env_remove("ARI_CONFIG").stdin(Stdio::null());
        command
    }
}

/// Runs a bad job together with a good one that would leave a marker: ari must exit 2 before
/// anything runs, and its errors must hold each of `expected` (`FILE` stands for the bad job's
/// path).
#[track_caller]
pub fn assert_refused(name: &str, job: &str, expected: &[&str]) {
    let fx = Fixture::new();
    let bad = fx.write_job(name, job);
    let marker = fx.path("good-job-ran");
    let good =
        fx.write_job("good.yaml", &format!("backend: command\ncommand: [touch, {}]\n", marker.display()));
    let out = crate::run(fx.ari().arg("run").arg(&good).arg(&bad));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{name}: exit code, stderr:\n{err}");
    for fragment in expected {
        let fragment = fragment.replace("FILE", &bad.display().to_string());
        assert!(err.contains(&fragment), "{name}: `{fragment}` not in:\n{err}");
    }
    assert!(err.contains("nothing ran"), "{name}: {err}");
    assert!(!marker.exists(), "{name}: a command ran despite the error");
}

/// Asserts a finished command's exit code, showing its stdout and stderr otherwise.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(out), stderr(out));
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every regular file under `root` (relative path → contents), skipping directories named in
/// `skip` (such as `rdiff-backup-data`).
pub fn read_tree(root: &Path, skip: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !skip.contains(&name.as_str()) {
                    stack.push(path);
                }
            } else {
                let relative = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                files.insert(relative, fs::read(&path).expect("read file"));
            }
        }
    }
    files
}

/// Every entry under `root` with its size and modification time, to prove nothing changed.
pub fn fingerprint(root: &Path) -> BTreeMap<String, (bool, u64, std::time::SystemTime)> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(list) = fs::read_dir(&dir) else { continue };
        for entry in list.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("stat");
            let relative = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
            entries.insert(relative, (meta.is_dir(), meta.len(), meta.modified().expect("mtime")));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    entries
}
