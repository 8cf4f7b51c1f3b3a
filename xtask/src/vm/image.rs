//! The guest image: Debian bookworm with LVM, ZFS, rdiff-backup, rsync, sshd and sudo, built by
//! `build-image.sh` (embedded here) into the fixed cache directory `/var/cache/ari-vm`, which is
//! shared by every session and CI run on one machine. Building takes 11 to 13 minutes on 2
//! cores (most of it the zfs-dkms build), so the image is reused while the recipe that made it
//! is unchanged: the SHA-256 of the script and the package lists is stored next to the image,
//! and a different hash (or a missing file) means a rebuild. The host tools the build and the
//! guest need (qemu, qemu-img, debootstrap) are installed here too.

use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cache::{lock_cache, CACHE_DIR};
use super::instance::running_guests;
use crate::{deps, shell};

/// The build script, run with bash. Part of the recipe hash.
const BUILD_SCRIPT: &str = include_str!("build-image.sh");

/// What debootstrap installs into the guest: the kernel and udev to boot, sshd to be reached,
/// and the tools ari drives on a source host (lvm2, mount and mountpoint from util-linux,
/// rdiff-backup, rsync), and sudo, for a non-root remote user with `remote_sudo`. python3 is
/// rdiff-backup's interpreter, listed for clarity. dbus: rdiff-backup's server runs in a
/// transient unit, and `systemd-run --pipe --wait` asks systemd for it over the system bus.
const BASE_PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "linux-image-amd64",
    "lvm2",
    "rdiff-backup",
    "rsync",
    "openssh-server",
    "util-linux",
    "iproute2",
    "e2fsprogs",
    "kmod",
    "procps",
    "python3",
    "sudo",
    "dbus",
];

/// Installed in the chroot once the guest's kernel is known (the script adds its headers):
/// zfs-dkms builds zfs.ko for that kernel on this host, since the guest has no network.
const ZFS_PACKAGES: &[&str] = &["zfs-dkms", "zfsutils-linux"];

/// Host binaries the build and the VM need, with their Debian packages.
const HOST_TOOLS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-img", "qemu-utils"),
    // Absolute: /usr/sbin may be missing from a non-login PATH.
    ("/usr/sbin/debootstrap", "debootstrap"),
    ("/usr/sbin/mkfs.ext4", "e2fsprogs"),
    ("sha256sum", "coreutils"),
];

/// The cached image's files.
#[derive(Debug, Clone)]
pub struct Image {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub root: PathBuf,
    /// The private key whose public half is in the guest root's authorized_keys.
    pub key: PathBuf,
    /// The recipe hash the image was built from; the saved VM state is keyed by it.
    pub hash: String,
}

impl Image {
    fn at(dir: &Path, hash: String) -> Image {
        Image {
            dir: dir.to_path_buf(),
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.img"),
            root: dir.join("root.qcow2"),
            key: dir.join("id_ed25519"),
            hash,
        }
    }

    fn hash_file(&self) -> PathBuf {
        self.dir.join("recipe.sha256")
    }

    /// Every file present and the stored hash equal to the recipe's.
    fn is_current(&self) -> bool {
        let files = [&self.kernel, &self.initrd, &self.root, &self.key, &self.key.with_extension("pub")];
        files.iter().all(|f| f.is_file())
            && fs::read_to_string(self.hash_file()).is_ok_and(|stored| stored.trim() == self.hash)
    }
}

/// Returns the cached image, building it first when it is missing, its recipe changed, or
/// `force` is set. Installs the host tools first either way: booting needs qemu too.
pub fn ensure(force: bool) -> Result<Image> {
    ensure_host_tools()?;
    let _lock = lock_cache()?;
    let image = Image::at(Path::new(CACHE_DIR), recipe_hash()?);
    if image.is_current() && !force {
        println!("reusing the image in {CACHE_DIR} (recipe {})", &image.hash[..12]);
        return Ok(image);
    }
    println!(
        "building the image in {CACHE_DIR} (recipe {}): 11 to 13 minutes on 2 cores, mostly the zfs-dkms build",
        &image.hash[..12]
    );
    let running = running_guests();
    if !running.is_empty() {
        let names: Vec<String> = running.iter().map(|p| p.display().to_string()).collect();
        bail!("the image must be rebuilt, but guests run on it ({}); stop them first", names.join(", "));
    }
    if !is_root() {
        bail!("building the VM image needs root (debootstrap, chroot, mount); run `cargo xtask vm build` as root");
    }
    build(&image)?;
    Ok(image)
}

/// The recipe: the script and both package lists, in a form where any change shows.
fn recipe_text() -> String {
    format!(
        "{BUILD_SCRIPT}\nbase packages: {}\nzfs packages: {}\n",
        BASE_PACKAGES.join(","),
        ZFS_PACKAGES.join(" ")
    )
}

fn recipe_hash() -> Result<String> {
    sha256(recipe_text().as_bytes())
}

/// SHA-256 of `data` in hex, through coreutils' sha256sum (no hashing crate in the workspace).
pub fn sha256(data: &[u8]) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("start sha256sum")?;
    child.stdin.take().context("sha256sum stdin")?.write_all(data).context("write to sha256sum")?;
    let out = child.wait_with_output().context("wait for sha256sum")?;
    if !out.status.success() {
        bail!("sha256sum failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let hash = text.split_whitespace().next().unwrap_or_default();
    if hash.len() != 64 {
        bail!("sha256sum printed `{}`", text.trim());
    }
    Ok(hash.to_string())
}

/// Installs qemu, qemu-img and debootstrap when one is missing (as root, with apt-get).
///
/// These machines come with qemu-utils from bookworm-backports (10.x), whose package `Breaks`
/// bookworm's qemu-system-common (7.2): both must come from the same release, so qemu-utils is
/// pinned to the version of qemu-system-x86 being installed, which may be a downgrade.
pub fn ensure_host_tools() -> Result<()> {
    deps::ensure()?;
    let missing: Vec<&str> = HOST_TOOLS
        .iter()
        .filter(|(binary, _)| deps::find_binary(binary).is_none())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing for the VM tier: {}", missing.join(" "));
    if !is_root() {
        bail!("missing packages for the VM tier: {}; install them as root with apt-get", missing.join(" "));
    }
    shell::run(Command::new("apt-get").args(["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    let mut packages: Vec<String> =
        missing.iter().filter(|p| !p.starts_with("qemu-")).map(|p| p.to_string()).collect();
    if missing.iter().any(|p| p.starts_with("qemu-")) {
        let version = candidate_version("qemu-system-x86")?;
        packages.push(format!("qemu-system-x86={version}"));
        packages.push(format!("qemu-utils={version}"));
    }
    shell::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", "--allow-downgrades"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    for (binary, package) in HOST_TOOLS {
        if deps::find_binary(binary).is_none() {
            bail!("`{binary}` still missing after installing {package}");
        }
    }
    Ok(())
}

/// The version apt would install of `package` (`apt-cache policy`'s Candidate line).
fn candidate_version(package: &str) -> Result<String> {
    let policy = shell::output(Command::new("apt-cache").args(["policy", package]))?;
    policy
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v != "(none)")
        .with_context(|| format!("apt has no candidate for {package}"))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

/// Runs the build script. The stored hash goes first and comes back last, so an interrupted
/// build is never mistaken for a good image; the script's long output goes to `build.log`,
/// of which only the step lines are shown (and the tail, on failure).
fn build(image: &Image) -> Result<()> {
    let started = Instant::now();
    let _ = fs::remove_file(image.hash_file());
    // A saved VM state belongs to the image it was saved from.
    let _ = fs::remove_dir_all(image.dir.join("saved"));
    for file in [&image.kernel, &image.initrd, &image.root] {
        let _ = fs::remove_file(file);
    }
    if !image.key.is_file() || !image.key.with_extension("pub").is_file() {
        let _ = fs::remove_file(&image.key);
        let _ = fs::remove_file(image.key.with_extension("pub"));
        shell::run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "ari-vm", "-f"])
                .arg(&image.key),
        )?;
    }
    let script = image.dir.join("build-image.sh");
    fs::write(&script, BUILD_SCRIPT).with_context(|| format!("write {}", script.display()))?;
    let log_path = image.dir.join("build.log");
    let log = File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;
    println!("$ bash {} (full output in {})", script.display(), log_path.display());
    let mut child = Command::new("bash")
        .arg(&script)
        .env("OUT", &image.dir)
        .env("BUILD", image.dir.join("build"))
        .env("KEY", &image.key)
        .env("BASE_PACKAGES", BASE_PACKAGES.join(","))
        .env("ZFS_PACKAGES", ZFS_PACKAGES.join(" "))
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("start the image build script")?;
    // Follow the log and echo the script's step lines, so a build of many minutes shows progress.
    let mut reader = File::open(&log_path)?;
    let mut pending = String::new();
    let status = loop {
        let done = child.try_wait()?;
        let mut chunk = String::new();
        reader.read_to_string(&mut chunk).ok();
        pending.push_str(&chunk);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if line.starts_with("--- ") {
                print!("{line}");
            }
        }
        if let Some(status) = done {
            break status;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if !status.success() {
        println!("last lines of {}:", log_path.display());
        print!("{}", tail(&log_path, 40));
        bail!("the image build failed ({status}); see {}", log_path.display());
    }
    if !image.kernel.is_file() || !image.initrd.is_file() || !image.root.is_file() {
        bail!("the image build succeeded but left no image in {}", image.dir.display());
    }
    fs::write(image.hash_file(), format!("{}\n", image.hash))?;
    println!("image built in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The last `lines` lines of a (possibly large) text file; empty when it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else { return String::new() };
    // Only the end matters; a console or build log can be megabytes.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_hash_covers_the_script_and_both_package_lists() {
        let text = recipe_text();
        assert!(text.contains(BUILD_SCRIPT));
        assert!(text.contains("lvm2,rdiff-backup"));
        assert!(text.contains("zfs-dkms zfsutils-linux"));
        let hash = sha256(text.as_bytes()).unwrap();
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, sha256(b"another recipe").unwrap());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&path, 2), "b\nc\n");
        assert_eq!(tail(&dir.path().join("missing"), 2), "");
    }
}
