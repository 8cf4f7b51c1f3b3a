//! `cargo xtask deb`: the Debian package, `target/deb/ari_VERSION_amd64.deb`, built with
//! `dpkg-deb` from a staged tree, then checked with `lintian`.
//!
//! dpkg-deb rather than cargo-deb: the tree holds files generated from ari itself (man pages,
//! completions, schemas) and paths rewritten for the package (`/usr/bin/ari` in the units),
//! which a staged tree says plainly and cargo-deb would need a build script for; and dpkg-deb,
//! dpkg-shlibdeps and lintian are Debian's own tools, with nothing to install from crates.io.
//!
//! What it holds: the stripped binary; a commented `/etc/ari-backup/ari-backup.conf.yaml`
//! (a conffile) and an empty `jobs.d`; the systemd service and timer (installed, not enabled);
//! the cron script under `/usr/share/ari-backup/cron/` (disabled until copied to
//! `/etc/cron.daily`); man pages; bash, zsh and fish completions; the JSON Schemas, alert rules
//! and dashboard; the docs; and `/var/lib/ari-backup`, mode 0700.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::shell;

/// The package's name.
const NAME: &str = "ari";

/// The commented global config the package installs.
const CONFIG: &str = "# /etc/ari-backup/ari-backup.conf.yaml: the global config of ari, the layer of settings
# between the defaults and the job files (see ari-settings(5), or `ari settings`).
# yaml-language-server: $schema=/usr/share/ari-backup/schema/ari-config.schema.json
#
# Every key is optional; the values below are the defaults.
#
# Where the backups go: a job's backup is BACKUP_STORE_PATH/LABEL (rdiff backend).
# backup_store_path: /srv/backup-store
#
# The jobs: one YAML file per job (see ari-job(5)); a leading dot disables one.
# jobs_dir: /etc/ari-backup/jobs.d
#
# How ari reaches the hosts. Unset, ssh's own configuration (~/.ssh/config) decides.
# remote_user: root
# ssh_port: 22
# ssh_options: [-F, /etc/ari-backup/ssh_config]
#
# How many jobs `ari run-all` runs at once, and per host.
# max_concurrent_jobs: 1
# max_jobs_per_host: 1
#
# Monitoring: Prometheus metrics for node_exporter's textfile collector, and a ping URL.
# metrics_file: /var/lib/prometheus/node-exporter/ari.prom
# ping_url: https://hc-ping.com/YOUR-UUID
";

/// What lintian finds that is no fault of the package, each with why.
const LINTIAN_OVERRIDES: &str = "\
# libyaml-rs, which parses ari's YAML, is a Rust translation of libyaml, not a copy of the C
# library; lintian recognises libyaml's strings in it.
ari: embedded-library libyaml [usr/bin/ari]
# ari's state (locks, ledgers of what a crashed run left, reports) is root's alone.
ari: non-standard-dir-perm 0700 != 0755 [var/lib/ari-backup/]
";

/// Builds the package and checks it with lintian; returns its path.
pub fn build() -> Result<PathBuf> {
    crate::deps::ensure_packages(&[
        ("dpkg-deb", "dpkg"),
        ("dpkg-shlibdeps", "dpkg-dev"),
        ("lintian", "lintian"),
    ])?;
    shell::header("build ari (release)");
    shell::run(shell::cargo().args(["build", "--release", "-p", "ari-cli"]))?;
    let version = env!("CARGO_PKG_VERSION");
    let out = shell::target_dir().join("deb");
    let stage = out.join(format!("{NAME}_{version}_amd64"));
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("remove {}", stage.display()))?;
    }
    shell::header("stage the package");
    stage_tree(&stage)?;
    let depends = shlib_depends(&stage.join("usr/bin/ari"))?;
    write_control(&stage, version, &depends)?;
    let deb = out.join(format!("{NAME}_{version}_amd64.deb"));
    shell::run(
        Command::new("dpkg-deb").args(["--root-owner-group", "-Zxz", "--build"]).arg(&stage).arg(&deb),
    )?;
    shell::header("lintian");
    // Errors fail the build; warnings and notes are shown.
    shell::run(
        Command::new("lintian").args(["--fail-on", "error", "--info", "--no-tag-display-limit"]).arg(&deb),
    )?;
    verify(&deb)?;
    let size = fs::metadata(&deb)?.len();
    println!("{}: {} KiB, lintian reports no errors", deb.display(), size / 1024);
    Ok(deb)
}

/// Fails unless the package holds what it promises, with the modes it promises.
fn verify(deb: &Path) -> Result<()> {
    let listing = shell::output(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    let entry = |path: &str| {
        listing.lines().find(|l| l.ends_with(&format!(" ./{path}")) || l.contains(&format!(" ./{path} ")))
    };
    let mut expected: Vec<(String, &str)> = vec![
        ("usr/bin/ari".into(), "-rwxr-xr-x"),
        ("etc/ari-backup/ari-backup.conf.yaml".into(), "-rw-r--r--"),
        ("etc/ari-backup/jobs.d/".into(), "drwxr-xr-x"),
        ("var/lib/ari-backup/".into(), "drwx------"),
        ("lib/systemd/system/ari-backup.service".into(), "-rw-r--r--"),
        ("lib/systemd/system/ari-backup.timer".into(), "-rw-r--r--"),
        ("usr/share/ari-backup/cron/ari-backup".into(), "-rwxr-xr-x"),
        ("usr/share/bash-completion/completions/ari".into(), "-rw-r--r--"),
        ("usr/share/zsh/vendor-completions/_ari".into(), "-rw-r--r--"),
        ("usr/share/fish/vendor_completions.d/ari.fish".into(), "-rw-r--r--"),
        ("usr/share/ari-backup/schema/ari-job.schema.json".into(), "-rw-r--r--"),
        ("usr/share/doc/ari/copyright".into(), "-rw-r--r--"),
    ];
    for page in ari_cli::manual::pages() {
        let section = page.name.rsplit('.').next().unwrap_or("1");
        expected.push((format!("usr/share/man/man{section}/{}.gz", page.name), "-rw-r--r--"));
    }
    for (path, mode) in &expected {
        let line = entry(path).with_context(|| format!("the package lacks /{path}"))?;
        if !line.starts_with(mode) || !line.contains("root/root") {
            bail!("/{path} is `{line}` in the package, expected {mode} root/root");
        }
    }
    let conffiles = shell::output(Command::new("dpkg-deb").arg("--info").arg(deb).arg("conffiles"))?;
    if conffiles.trim() != "/etc/ari-backup/ari-backup.conf.yaml" {
        bail!("the conffiles are `{conffiles}`");
    }
    println!("the package holds {} checked paths, with their modes", expected.len());
    Ok(())
}

fn stage_tree(stage: &Path) -> Result<()> {
    let root = shell::workspace_root();
    let release = shell::target_dir().join("release/ari");
    let bin = stage.join("usr/bin/ari");
    copy(&release, &bin, 0o755)?;
    shell::run(
        Command::new("strip")
            .args(["--strip-unneeded", "--remove-section=.comment", "--remove-section=.note"])
            .arg(&bin),
    )?;

    write(&stage.join("etc/ari-backup/ari-backup.conf.yaml"), CONFIG, 0o644)?;
    make_dir(&stage.join("etc/ari-backup/jobs.d"), 0o755)?;
    make_dir(&stage.join("var/lib/ari-backup"), 0o700)?;

    // The units and the cron script name the installed binary.
    let installed = |text: String| text.replace("/usr/local/bin/ari", "/usr/bin/ari");
    for unit in ["ari-backup.service", "ari-backup.timer"] {
        let text = read(&root.join("dist/systemd").join(unit))?;
        write(&stage.join("lib/systemd/system").join(unit), &installed(text), 0o644)?;
    }
    if !read(&stage.join("lib/systemd/system/ari-backup.service"))?
        .contains("\nExecStart=/usr/bin/ari run-all\n")
    {
        bail!("the packaged ari-backup.service does not run /usr/bin/ari run-all");
    }
    let cron = read(&root.join("dist/cron/ari-backup"))?;
    write(&stage.join("usr/share/ari-backup/cron/ari-backup"), &installed(cron), 0o755)?;
    for (from, to) in [
        ("dist/schema/ari-job.schema.json", "usr/share/ari-backup/schema/ari-job.schema.json"),
        ("dist/schema/ari-config.schema.json", "usr/share/ari-backup/schema/ari-config.schema.json"),
        ("dist/prometheus/ari-alerts.yml", "usr/share/ari-backup/prometheus/ari-alerts.yml"),
        ("dist/grafana/ari-dashboard.json", "usr/share/ari-backup/grafana/ari-dashboard.json"),
    ] {
        copy(&root.join(from), &stage.join(to), 0o644)?;
    }

    for page in ari_cli::manual::pages() {
        let section = page.name.rsplit('.').next().unwrap_or("1");
        let path = stage.join(format!("usr/share/man/man{section}/{}.gz", page.name));
        write_gzip(&path, page.text.as_bytes())?;
    }
    for completion in ari_cli::manual::completions() {
        let path = match completion.name.as_str() {
            "ari.bash" => "usr/share/bash-completion/completions/ari",
            "_ari" => "usr/share/zsh/vendor-completions/_ari",
            _ => "usr/share/fish/vendor_completions.d/ari.fish",
        };
        write(&stage.join(path), &completion.text, 0o644)?;
    }

    let doc = stage.join("usr/share/doc").join(NAME);
    write(&doc.join("copyright"), &copyright(), 0o644)?;
    // A native package (no Debian revision): its changelog is changelog.gz.
    write_gzip(&doc.join("changelog.gz"), changelog().as_bytes())?;
    write(&stage.join("usr/share/lintian/overrides").join(NAME), LINTIAN_OVERRIDES, 0o644)?;
    copy(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    copy(&root.join("dist/README.md"), &doc.join("scheduling.md"), 0o644)?;
    for entry in fs::read_dir(root.join("docs"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") {
            copy(&path, &doc.join("docs").join(path.file_name().unwrap_or_default()), 0o644)?;
        }
    }
    Ok(())
}

/// The package's library dependencies, as dpkg-shlibdeps finds them for the binary.
fn shlib_depends(binary: &Path) -> Result<String> {
    let work = tempfile::tempdir()?;
    // dpkg-shlibdeps wants to run in a source package: a debian/control is enough.
    fs::create_dir_all(work.path().join("debian"))?;
    fs::write(
        work.path().join("debian/control"),
        format!("Source: {NAME}\n\nPackage: {NAME}\nArchitecture: amd64\n"),
    )?;
    let out = shell::output(Command::new("dpkg-shlibdeps").arg("-O").arg(binary).current_dir(work.path()))?;
    let depends = out
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .context("dpkg-shlibdeps printed no shlibs:Depends")?;
    Ok(depends.trim().to_string())
}

fn write_control(stage: &Path, version: &str, shlibs: &str) -> Result<()> {
    let size_kib = dir_size(stage)? / 1024;
    let control = format!(
        "Package: {NAME}\n\
         Version: {version}\n\
         Architecture: amd64\n\
         Maintainer: ari maintainers <ari@example.invalid>\n\
         Installed-Size: {size_kib}\n\
         Depends: {shlibs}, openssh-client\n\
         Recommends: rdiff-backup, rsync\n\
         Suggests: lvm2, zfsutils-linux, prometheus-node-exporter, zstd\n\
         Section: admin\n\
         Priority: optional\n\
         Homepage: https://example.invalid/ari\n\
         Description: pull backups of many hosts to one server over ssh\n \
         ari runs backup jobs from a central backup server: rdiff-backup increments or\n \
         rsync into ZFS datasets with snapshot history, from LVM snapshots for\n \
         crash-consistent sources, with commands before and after (database dumps)\n \
         on the server or on the host. Nothing is installed on the hosts but the\n \
         backup tool. Jobs run in parallel from systemd or cron, log to syslog, and\n \
         clean up every snapshot they make, even after a crash (ari recover).\n"
    );
    let debian = stage.join("DEBIAN");
    write(&debian.join("control"), &control, 0o644)?;
    write(&debian.join("conffiles"), "/etc/ari-backup/ari-backup.conf.yaml\n", 0o644)?;
    write(&debian.join("md5sums"), &md5sums(stage)?, 0o644)
}

/// `md5sum` of every file but DEBIAN/, as dpkg expects them.
fn md5sums(stage: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect_files(stage, &mut files)?;
    files.retain(|f| !f.starts_with(stage.join("DEBIAN")));
    files.sort();
    let relative: Vec<String> =
        files.iter().map(|f| f.strip_prefix(stage).unwrap_or(f).display().to_string()).collect();
    let out = shell::output(Command::new("md5sum").args(&relative).current_dir(stage))?;
    Ok(out)
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    Ok(files.iter().filter_map(|f| fs::metadata(f).ok()).map(|m| m.len()).sum())
}

fn copyright() -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: {NAME}\n\
         Source: https://example.invalid/ari\n\n\
         Files: *\n\
         Copyright: 2024-2026 the ari authors\n\
         License: GPL-2+\n \
         This program is free software; you can redistribute it and/or modify it under the\n \
         terms of the GNU General Public License as published by the Free Software\n \
         Foundation; either version 2 of the License, or (at your option) any later version.\n \
         .\n \
         On Debian systems, the full text of the GNU General Public License version 2 can be\n \
         found in the file `/usr/share/common-licenses/GPL-2'.\n"
    )
}

fn changelog() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "{NAME} ({version}) unstable; urgency=medium\n\n  \
         * Package of ari {version}, built by `cargo xtask deb`.\n\n \
         -- ari maintainers <ari@example.invalid>  Tue, 01 Dec 2026 00:00:00 +0000\n"
    )
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}

fn make_dir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("create {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    write_bytes(path, text.as_bytes(), mode)
}

fn write_bytes(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        make_dir(parent, 0o755)?;
    }
    fs::write(path, bytes).with_context(|| format!("write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("read {}", from.display()))?;
    write_bytes(to, &bytes, mode)
}

/// Writes `bytes` gzipped at the highest level without a timestamp (`gzip -9n`), as Debian
/// wants man pages and changelogs.
fn write_gzip(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut child = Command::new("gzip")
        .args(["-9n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("run gzip")?;
    child.stdin.take().context("gzip's stdin")?.write_all(bytes)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("gzip failed for {}", path.display());
    }
    write_bytes(path, &out.stdout, 0o644)
}
