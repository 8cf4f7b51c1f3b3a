//! One running guest: qemu under TCG (KVM does not work on these machines) with a throwaway
//! overlay on the cached image and two blank 2 GiB disks (vdb for LVM, vdc for ZFS), ssh
//! forwarded to a free port on 127.0.0.1, the serial console in a log file.
//!
//! A cold boot takes about 25 s; qemu's saved VM state (`savevm`, then `-loadvm`) brings that
//! to about 3 s. So the first boot of an image saves its state in `CACHE_DIR/saved` (keyed by
//! the image's recipe hash, qemu's version and the machine's options, since `-loadvm` needs the
//! same machine), and later boots copy those disks and load it. A boot from the saved state that
//! does not reach ssh is reported, the saved state deleted, and the guest cold booted instead.
//!
//! qemu is always our child: `test` waits on its `Child`; `up` leaves it running and records
//! its PID in its instance's state file (`instance.rs`, which also stops a recorded guest) so
//! that `ssh` and `down` find it. An ssh master connection (also our child, recorded the same
//! way) lets every later ssh, ari's included, skip the key exchange, which costs about a second
//! under TCG.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::cache::{self, CACHE_DIR};
use super::image::{self, Image};
use super::instance::{is_ours, remove_dir, signal, Instance, State};
use crate::shell;

/// Bound on a cold boot until ssh answers: about 25 s measured under TCG, far more when the
/// machine is busy (a parallel build), so the bound is generous.
const COLD_BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on a boot from the saved state (about 3 s measured).
const SAVED_BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// The name of qemu's internal snapshot holding the booted guest.
const SAVED_TAG: &str = "ready";
/// The guest's disks, in the order qemu gets them (vda, vdb, vdc), with their sizes when blank.
const DISKS: &[(&str, Option<&str>)] =
    &[("root.qcow2", None), ("lvm.qcow2", Some("2G")), ("zfs.qcow2", Some("2G"))];

/// A booted guest, reachable over ssh as root on 127.0.0.1:`port`.
#[derive(Debug)]
pub struct Vm {
    pub port: u16,
    pub key: PathBuf,
    /// The ssh master's socket: `-o ControlPath=` makes an ssh use the open connection.
    pub control: PathBuf,
    instance: Instance,
    qemu: Child,
    master: Option<Child>,
}

/// Boots a guest of `image` in `instance`'s directory, from the saved state when there is a
/// good one, and saves one after a cold boot when there is none.
pub fn boot(image: &Image, instance: &Instance) -> Result<Vm> {
    // Holding the cache lock while booting: saving the state must not race another boot.
    let _lock = cache::lock_cache()?;
    let started = Instant::now();
    let saved = SavedState::new(image)?;
    // A saved state that failed to load is not saved again in the same boot: the cold boot
    // that follows is enough, and the next run tries saving afresh.
    let mut may_save = true;
    if saved.is_valid() {
        match boot_from_saved(image, instance, &saved) {
            Ok(vm) => return finish(vm, instance, started, "from the saved state"),
            Err(err) => {
                // Reported loudly: a saved state that stops working is worth knowing about.
                println!("warning: booting from the saved state failed, cold booting instead: {err:#}");
                saved.remove();
                may_save = false;
            }
        }
    }
    let vm = cold_boot(image, instance)?;
    println!("cold boot reached ssh in {:.1} s", started.elapsed().as_secs_f64());
    if !may_save {
        return finish(vm, instance, started, "cold");
    }
    if let Err(err) = save_state(vm, instance, &saved) {
        println!("warning: could not save the VM state (later boots will be cold): {err:#}");
        saved.remove();
        let vm = cold_boot(image, instance)?;
        return finish(vm, instance, started, "cold");
    }
    match boot_from_saved(image, instance, &saved) {
        Ok(vm) => finish(vm, instance, started, "cold, saved, then from the saved state"),
        Err(err) => {
            println!("warning: the state just saved does not boot, cold booting instead: {err:#}");
            saved.remove();
            let vm = cold_boot(image, instance)?;
            finish(vm, instance, started, "cold")
        }
    }
}

/// The common end of a boot: the guest's clock, the ssh master, the state file.
fn finish(mut vm: Vm, instance: &Instance, started: Instant, how: &str) -> Result<Vm> {
    let result = (|| {
        vm.set_clock()?;
        vm.start_master()?;
        instance.write_state(&vm.state())
    })();
    if let Err(err) = result {
        let _ = vm.stop();
        return Err(err);
    }
    println!("guest up on 127.0.0.1:{} in {:.1} s ({how})", vm.port, started.elapsed().as_secs_f64());
    Ok(vm)
}

fn cold_boot(image: &Image, instance: &Instance) -> Result<Vm> {
    fresh_dir(&instance.dir)?;
    for (name, size) in DISKS {
        let path = instance.dir.join(name);
        let mut cmd = Command::new("qemu-img");
        cmd.args(["create", "-q", "-f", "qcow2"]);
        match size {
            // The root disk is a throwaway overlay on the cached image.
            None => cmd.arg("-b").arg(&image.root).args(["-F", "qcow2"]).arg(&path),
            Some(size) => cmd.arg(&path).arg(size),
        };
        shell::run(&mut cmd)?;
    }
    start(image, instance, None, COLD_BOOT_TIMEOUT)
}

fn boot_from_saved(image: &Image, instance: &Instance, saved: &SavedState) -> Result<Vm> {
    fresh_dir(&instance.dir)?;
    for (name, _) in DISKS {
        // cp keeps the files sparse: the root disk holds the 300 MiB of saved RAM.
        shell::run(
            Command::new("cp")
                .args(["--sparse=always", "--reflink=auto"])
                .arg(saved.dir.join(name))
                .arg(instance.dir.join(name)),
        )?;
    }
    start(image, instance, Some(SAVED_TAG), SAVED_BOOT_TIMEOUT)
}

/// The options that make up the machine; a saved state only loads into the same machine.
fn machine_args(image: &Image) -> Vec<String> {
    let mut args: Vec<String> = [
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "1024",
        "-smp",
        "2",
        "-no-reboot",
        "-display",
        "none",
        "-monitor",
        "none",
        "-append",
        "root=/dev/vda rw console=ttyS0 net.ifnames=0",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["-kernel".into(), image.kernel.display().to_string()]);
    args.extend(["-initrd".into(), image.initrd.display().to_string()]);
    args
}

/// Starts qemu on a free port and waits for ssh. Errors carry the console's last lines.
fn start(image: &Image, instance: &Instance, loadvm: Option<&str>, timeout: Duration) -> Result<Vm> {
    let console = instance.dir.join("console.log");
    let port = free_port()?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(machine_args(image));
    for (name, _) in DISKS {
        cmd.arg("-drive").arg(format!("file={},if=virtio,format=qcow2", instance.dir.join(name).display()));
    }
    cmd.args(["-netdev", &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22")]);
    cmd.args(["-device", "virtio-net-pci,netdev=n0"]);
    cmd.arg("-serial").arg(format!("file:{}", console.display()));
    cmd.arg("-qmp").arg(format!("unix:{},server=on,wait=off", instance.dir.join("qmp.sock").display()));
    if let Some(tag) = loadvm {
        cmd.args(["-loadvm", tag]);
    }
    let qemu_log = fs::File::create(instance.dir.join("qemu.log"))?;
    cmd.stdin(Stdio::null()).stdout(qemu_log.try_clone()?).stderr(qemu_log);
    if instance.detached {
        cmd.process_group(0);
    }
    println!("$ {}", shell::display(&cmd));
    let qemu = cmd.spawn().context("start qemu-system-x86_64")?;
    let pid = qemu.id();
    let mut vm = Vm {
        port,
        key: image.key.clone(),
        control: instance.dir.join("ssh.sock"),
        instance: instance.clone(),
        qemu,
        master: None,
    };
    // Recorded at once, so that a `down` (or the next test run) can stop a guest whose boot
    // was interrupted.
    instance.write_state(&vm.state())?;
    match vm.wait_for_ssh(timeout) {
        Ok(()) => Ok(vm),
        Err(err) => {
            let qemu_log = fs::read_to_string(instance.dir.join("qemu.log")).unwrap_or_default();
            let _ = vm.stop();
            bail!(
                "{err:#} (qemu pid {pid}); qemu said:\n{qemu_log}\nlast lines of the console ({}):\n{}",
                console.display(),
                image::tail(&console, 40)
            )
        }
    }
}

/// A port that was free a moment ago. qemu binds it right after; a race with another process
/// shows as qemu failing to start, which the caller reports.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// After a cold boot: waits until systemd has finished starting everything (so the saved guest
/// is idle), saves the state, quits qemu and keeps its disks in the saved-state directory.
fn save_state(mut vm: Vm, instance: &Instance, saved: &SavedState) -> Result<()> {
    let started = Instant::now();
    // `is-system-running --wait` exits non-zero for "degraded", which is fine here.
    let _ = vm.run_status("timeout 120 systemctl is-system-running --wait");
    let qmp_path = instance.dir.join("qmp.sock");
    let result = (|| {
        let mut qmp = Qmp::connect(&qmp_path)?;
        let out = qmp.hmp(&format!("savevm {SAVED_TAG}"))?;
        if !out.trim().is_empty() {
            bail!("savevm said: {}", out.trim());
        }
        let list = qmp.hmp("info snapshots")?;
        if !list.contains(SAVED_TAG) {
            bail!("savevm left no snapshot `{SAVED_TAG}`: {list}");
        }
        qmp.quit()
    })();
    if let Err(err) = result {
        let _ = vm.stop();
        return Err(err);
    }
    // quit makes qemu exit by itself; wait for it so its disks are closed.
    if vm.wait_exit(Duration::from_secs(30)).is_none() {
        let _ = vm.stop();
        bail!("qemu did not exit after `quit`");
    }
    fresh_dir(&saved.dir)?;
    for (name, _) in DISKS {
        fs::rename(instance.dir.join(name), saved.dir.join(name))
            .with_context(|| format!("move {name} into {}", saved.dir.display()))?;
    }
    fs::write(saved.dir.join("key"), &saved.key)?;
    remove_dir(&instance.dir)?;
    println!("saved the booted guest in {} ({:.1} s)", saved.dir.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// The saved VM state: the three disks of a guest quit right after `savevm`, and the key
/// (image, qemu version, machine options) they were saved with.
struct SavedState {
    dir: PathBuf,
    key: String,
}

impl SavedState {
    fn new(image: &Image) -> Result<SavedState> {
        let version = shell::output(Command::new("qemu-system-x86_64").arg("--version"))?;
        let key = image::sha256(
            format!(
                "{}\n{}\n{}",
                image.hash,
                version.lines().next().unwrap_or_default(),
                machine_args(image).join(" ")
            )
            .as_bytes(),
        )?;
        Ok(SavedState { dir: Path::new(CACHE_DIR).join("saved"), key })
    }

    fn is_valid(&self) -> bool {
        DISKS.iter().all(|(name, _)| self.dir.join(name).is_file())
            && fs::read_to_string(self.dir.join("key")).is_ok_and(|k| k == self.key)
    }

    fn remove(&self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Vm {
    fn state(&self) -> State {
        State {
            pid: self.qemu.id(),
            port: self.port,
            key: self.key.clone(),
            dir: self.instance.dir.clone(),
            control: self.control.clone(),
            master_pid: self.master.as_ref().map(|m| m.id()),
        }
    }

    /// ssh options that reach the guest, for ari's `ssh_options` and rdiff-backup's and
    /// rsync's ssh alike (everything but the port and the destination).
    pub fn ssh_options(&self) -> Vec<String> {
        ssh_options(&self.key, &self.control)
    }

    /// `ssh ... root@127.0.0.1 SCRIPT`: the guest runs SCRIPT with root's shell (bash).
    pub fn ssh(&self, script: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.ssh_options())
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-p",
                &self.port.to_string(),
                "root@127.0.0.1",
            ])
            .arg(script)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs SCRIPT in the guest and returns its stdout; fails with its output on a non-zero exit.
    pub fn run(&self, script: &str) -> Result<String> {
        let out = self.ssh(script).output().context("start ssh")?;
        if !out.status.success() {
            bail!(
                "in the guest, `{}` failed ({}):\n{}{}",
                script.trim(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs SCRIPT in the guest and returns only whether it exited 0 (for probes).
    pub fn run_status(&self, script: &str) -> bool {
        self.ssh(script).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    fn wait_for_ssh(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.qemu.try_wait()? {
                bail!("qemu exited ({status}) before ssh answered");
            }
            let mut probe = self.ssh("true");
            probe.args(["-o", "ConnectTimeout=2"]);
            if probe.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("ssh to the guest did not answer within {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Sets the guest's clock to the host's: a guest loaded from the saved state wakes up at
    /// the time of the save, and ZFS snapshot times and names must agree with ari's clock.
    pub fn set_clock(&self) -> Result<()> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        self.run(&format!("date -s @{now} >/dev/null"))?;
        Ok(())
    }

    /// Starts the ssh master connection (our child) and waits until it accepts sessions.
    fn start_master(&mut self) -> Result<()> {
        let log = fs::File::create(self.instance.dir.join("ssh-master.log"))?;
        let mut cmd = Command::new("ssh");
        cmd.args(self.ssh_options())
            .args(["-M", "-N", "-o", "ControlPersist=no", "-o", "BatchMode=yes"])
            .args(["-o", "ServerAliveInterval=15", "-p", &self.port.to_string(), "root@127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if self.instance.detached {
            cmd.process_group(0);
        }
        self.master = Some(cmd.spawn().context("start the ssh master connection")?);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let check = Command::new("ssh")
                .args(self.ssh_options())
                .args(["-O", "check", "-p", &self.port.to_string(), "root@127.0.0.1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if check.is_ok_and(|s| s.success()) {
                return Ok(());
            }
            if let Some(master) = &mut self.master {
                if let Some(status) = master.try_wait()? {
                    bail!("the ssh master connection exited ({status})");
                }
            }
            if Instant::now() > deadline {
                bail!("the ssh master connection did not come up within 20 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits up to `timeout` for qemu to exit by itself.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.qemu.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Leaves the guest running after this command (for `up`). The state file stays.
    pub fn detach(self) {
        // Dropping a `Child` neither kills nor waits: qemu and the master go on.
    }

    /// Stops the ssh master and qemu (SIGTERM, then SIGKILL), waits for both, and removes the
    /// instance's directory with its overlays.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut master) = self.master.take() {
            stop_child(&mut master, Duration::from_secs(5))?;
        }
        let started = Instant::now();
        stop_child(&mut self.qemu, Duration::from_secs(15))?;
        remove_dir(&self.instance.dir)?;
        println!("guest stopped in {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// ssh options for the guest: its key, no host key checks (every image has new host keys, and
/// ports are reused), quiet, and the master connection's socket when it exists.
fn ssh_options(key: &Path, control: &Path) -> Vec<String> {
    vec![
        "-i".into(),
        key.display().to_string(),
        "-o".into(),
        "StrictHostKeyChecking=no".into(),
        "-o".into(),
        "UserKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
        "-o".into(),
        format!("ControlPath={}", control.display()),
    ]
}

/// `cargo xtask vm ssh`: a command (or, without one, an interactive shell) in the `up` guest.
pub fn interactive_ssh(state: &State, command: &[String]) -> Result<ExitStatus> {
    if !is_ours(state.pid, &state.dir) {
        bail!("the guest recorded in {} is not running; `cargo xtask vm up` starts one", state.dir.display());
    }
    let mut cmd = Command::new("ssh");
    cmd.args(ssh_options(&state.key, &state.control)).args(["-p", &state.port.to_string()]);
    if command.is_empty() {
        cmd.arg("-t");
    }
    cmd.arg("root@127.0.0.1").args(command);
    cmd.status().context("start ssh")
}

/// SIGTERM, then SIGKILL after `grace`, and wait: for a child of ours.
fn stop_child(child: &mut Child, grace: Duration) -> Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    signal(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    child.wait().context("wait for a stopped child")?;
    Ok(())
}

fn fresh_dir(dir: &Path) -> Result<()> {
    remove_dir(dir)?;
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))
}

/// A minimal QMP client: qemu's JSON monitor, one object per line, with asynchronous events
/// mixed in, which are skipped.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn connect(path: &Path) -> Result<Qmp> {
        let stream = UnixStream::connect(path).with_context(|| format!("connect to {}", path.display()))?;
        // savevm of 1 GiB under TCG takes a few seconds; a minute means something is wrong.
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut qmp = Qmp { reader: BufReader::new(stream.try_clone()?), writer: stream };
        let greeting = qmp.read()?;
        if greeting.get("QMP").is_none() {
            bail!("not a QMP greeting: {greeting}");
        }
        qmp.execute(json!({"execute": "qmp_capabilities"}))?;
        Ok(qmp)
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("qemu closed the QMP socket");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP sent `{}`", line.trim()))
    }

    fn execute(&mut self, command: Value) -> Result<Value> {
        writeln!(self.writer, "{command}")?;
        loop {
            let reply = self.read()?;
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                bail!("QMP {command}: {err}");
            }
        }
    }

    /// A human monitor command; returns what it printed (errors are printed, not returned).
    fn hmp(&mut self, line: &str) -> Result<String> {
        let ret =
            self.execute(json!({"execute": "human-monitor-command", "arguments": {"command-line": line}}))?;
        Ok(ret.as_str().unwrap_or_default().to_string())
    }

    fn quit(&mut self) -> Result<()> {
        // qemu may close the socket before or after answering; both mean it is quitting.
        let _ = self.execute(json!({"execute": "quit"}));
        Ok(())
    }
}
