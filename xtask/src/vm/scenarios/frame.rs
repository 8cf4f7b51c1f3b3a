//! A crafted rdiff-backup frame, whose code runs while the server unpickles it, against the
//! real systemd-run confinement: sent to an unconfined `rdiff-backup server` it does every one
//! of its attempts (files, sockets, signals, a program, an unconfined unit, a sysctl, io_uring,
//! the keyring); sent through the filter as the host's allowed server line it does none.

use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::process::{Command, Stdio};

use super::fixture::field;
use crate::vm::machine::Vm;

/// A crafted rdiff-backup frame (its code runs while the server unpickles it) against the real
/// systemd-run confinement, through the filter (`user`'s filtered key, `options`): sent to an
/// unconfined `rdiff-backup server` directly it does every one of `FRAME_ATTEMPTS`, among them
/// starting an unconfined unit through systemd's bus; sent as the host's allowed server line it
/// runs, reads /etc/shadow, and does none of them; and the unit is gone afterwards.
pub(super) fn assert_a_crafted_frame_is_contained(
    vm: &Vm,
    host: &serde_json::Value,
    options: &[String],
    user: &str,
) -> Result<()> {
    let line = host["allowed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .find(|l| l.contains("systemd-run") && l.contains("rdiff-backup server"))
        .with_context(|| format!("no confined rdiff-backup server line among the allowed commands: {host}"))?
        .to_string();

    let (dir, frame) = frame_targets(vm)?;
    let mut control = vm.ssh("rdiff-backup server --restrict-path /srv --restrict-mode read-only");
    let file = tempfile::NamedTempFile::new()?;
    fs::write(file.path(), &frame)?;
    let out = control.stdin(fs::File::open(file.path())?).output().context("start ssh")?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let done = frame_done(vm, &dir, &said)?;
    ensure!(
        said.contains("ari-frame: ran as uid 0, read /etc/shadow (root...)") && done == FRAME_ATTEMPTS,
        "the frame against an unconfined server in the guest did {done:?} of {FRAME_ATTEMPTS:?}: {said}"
    );
    println!("  a crafted frame against `rdiff-backup server` in the guest: {}", done.join(", "));

    let (dir, frame) = frame_targets(vm)?;
    fs::write(file.path(), &frame)?;
    let out = Command::new("ssh")
        .args(["-F", "/dev/null"])
        .args(options)
        .args(["-o", "ControlPath=none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .args(["-p", &vm.port.to_string(), &format!("{user}@127.0.0.1"), &line])
        .stdin(fs::File::open(file.path())?)
        .output()
        .context("start ssh")?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let done = frame_done(vm, &dir, &said)?;
    let units = vm.run("systemctl list-units --all --no-legend --plain 'ari-rdiff-*' | wc -l")?;
    ensure!(
        said.contains("ari-frame: ran as uid 0, read /etc/shadow (root...)")
            && done.is_empty()
            && units.trim() == "0",
        "the frame through the filter to the confined line did {done:?} (units left: {}): {said}",
        units.trim()
    );
    println!("  the same frame through the filter as {user}, to the allowed line: it ran and read /etc/shadow, and did none of it; no unit left");
    Ok(())
}

/// What a crafted rdiff-backup frame's code tries in the guest (`FRAME_CODE`), each with what
/// shows that it happened: a marker written, a TCP and a unix listener reached, the OOM score of
/// a process of root's changed, another one killed, a program's marker written, an unconfined unit started through systemd's bus
/// (its marker written), a sysctl changed; and, as the code reports them, an io_uring and a key
/// in root's user keyring.
const FRAME_ATTEMPTS: [&str; 10] =
    ["write", "tcp", "unix", "oom", "kill", "program", "escape", "sysctl", "io_uring", "keyring"];

/// The code of the crafted frame: `DIR`, `PORT`, `VICTIM` and `OOMED` are filled in. It reads
/// /etc/shadow's first name (what the key can still do) and reports every attempt on stderr.
const FRAME_CODE: &str = r#"import ctypes, os, socket, subprocess, sys
d, results = "DIR", []
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, action):
    try:
        action()
        results.append(name + "=done")
    except BaseException as err:
        results.append(name + "=" + type(err).__name__)
def write():
    open(d + "/marker", "w").write("written by a crafted rdiff-backup frame\n")
def tcp():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.close()
def unix():
    s = socket.socket(socket.AF_UNIX)
    s.connect(d + "/sock")
    s.close()
def oom():
    open("/proc/OOMED/oom_score_adj", "w").write("1000")
def kill():
    os.kill(VICTIM, 9)
def program():
    subprocess.run(["/bin/sh", "-c", "echo ran > " + d + "/program-ran"], check=True, stderr=subprocess.DEVNULL)
def escape():
    subprocess.run(["systemd-run", "--wait", "--quiet", "--collect", "touch", d + "/escaped"], check=True, stderr=subprocess.DEVNULL)
def sysctl():
    open("/proc/sys/kernel/domainname", "w").write("ari-frame")
def io_uring():
    fd = libc.syscall(425, 4, ctypes.create_string_buffer(120))
    if fd < 0:
        raise PermissionError(ctypes.get_errno(), "io_uring_setup")
    os.close(fd)
def keyring():
    if libc.syscall(248, b"user", b"ari-frame", b"x", 1, -4) < 0:
        raise PermissionError(ctypes.get_errno(), "add_key")
read = open("/etc/shadow").readline().split(":")[0]
for name in ["write", "tcp", "unix", "oom", "kill", "program", "escape", "sysctl", "io_uring", "keyring"]:
    attempt(name, globals()[name])
sys.stderr.write("ari-frame: ran as uid %d, read /etc/shadow (%s...): %s\n" % (os.getuid(), read, " ".join(results)))
sys.stderr.flush()
"#;

/// The guest's listeners of a frame's attempt, in `DIR`: they listen on 127.0.0.1 and on
/// `DIR/sock`, write the TCP port to `DIR/port`, and accept nothing until a line arrives on the
/// FIFO `DIR/ask`; then they write to `DIR/answer` which of them has a connection waiting, and
/// end. So whether the frame reached one is read once its server has ended, without a race.
const FRAME_LISTENERS: &str = r#"import os, socket, sys
d = sys.argv[1]
tcp = socket.socket()
tcp.bind(("127.0.0.1", 0))
tcp.listen(8)
unix = socket.socket(socket.AF_UNIX)
unix.bind(d + "/sock")
unix.listen(8)
os.mkfifo(d + "/ask")
open(d + "/port.new", "w").write(str(tcp.getsockname()[1]))
os.rename(d + "/port.new", d + "/port")
open(d + "/ask").readline()
reached = []
for name, s in [("tcp", tcp), ("unix", unix)]:
    s.setblocking(False)
    try:
        s.accept()
        reached.append(name)
    except BlockingIOError:
        pass
open(d + "/answer", "w").write(" ".join(reached) + "\n")
"#;

/// Sets up the targets of a frame's attempts in a fresh directory of the guest: the listeners,
/// a `sleep` of root's to kill; returns the directory and the frame, built on the host
/// (python3's pickle, with rdiff-backup's header: `o`, a request number, seven bytes of length).
fn frame_targets(vm: &Vm) -> Result<(String, Vec<u8>)> {
    let setup = vm.run(&format!(
        "set -e; d=$(mktemp -d /var/tmp/ari-frame-XXXXXX); cat > $d/listen.py <<'EOF'\n{FRAME_LISTENERS}EOF\n\
         nohup python3 $d/listen.py $d >/dev/null 2>&1 & echo $! > $d/listener.pid\n\
         nohup sleep 600 >/dev/null 2>&1 & echo $! > $d/victim.pid\n\
         nohup sleep 600 >/dev/null 2>&1 & echo $! > $d/oomed.pid\n\
         i=0; while [ ! -s $d/port ]; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.1; done\n\
         echo \"$d $(cat $d/port) $(cat $d/victim.pid) $(cat $d/oomed.pid)\""
    ))?;
    let words: Vec<&str> = setup.split_whitespace().collect();
    let [dir, port, victim, oomed] = words[..] else { bail!("the frame's targets in the guest: {setup:?}") };
    let code = FRAME_CODE
        .replace("DIR", dir)
        .replace("PORT", port)
        .replace("VICTIM", victim)
        .replace("OOMED", oomed);
    let builder = "import pickle, sys\nclass Payload:\n    def __reduce__(self):\n        return (exec, (sys.argv[1], {}))\ndata = pickle.dumps(Payload(), protocol=4)\nsys.stdout.buffer.write(b'o' + bytes([1]) + len(data).to_bytes(7, 'big') + data)\n";
    let out = Command::new("python3").args(["-c", builder, &code]).stdin(Stdio::null()).output()?;
    ensure!(
        out.status.success(),
        "python3 could not build the frame: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((dir.to_string(), out.stdout))
}

/// Which of `FRAME_ATTEMPTS` the frame's code achieved, found in the guest (the reported ones
/// from `said`, the server's stderr), and the targets cleaned up: the listeners answered and
/// ended, the victim stopped, the directory removed, the domain name put back.
fn frame_done(vm: &Vm, dir: &str, said: &str) -> Result<Vec<&'static str>> {
    let found = vm.run(&format!(
        "d={dir}; echo ask > $d/ask; i=0; while [ ! -s $d/answer ]; do i=$((i+1)); [ $i -lt 300 ] || break; sleep 0.1; done\n\
         echo \"reached: $(cat $d/answer)\"\n\
         for f in marker program-ran escaped; do [ -e $d/$f ] && echo \"present: $f\"; done\n\
         kill -0 $(cat $d/victim.pid) 2>/dev/null && echo 'victim: alive'\n\
         echo \"oom: $(cat /proc/$(cat $d/oomed.pid)/oom_score_adj)\"\n\
         echo \"domainname: $(cat /proc/sys/kernel/domainname)\"\n\
         kill $(cat $d/victim.pid) $(cat $d/oomed.pid) 2>/dev/null; echo '(none)' > /proc/sys/kernel/domainname; rm -rf $d; true"
    ))?;
    let reached = field(&found, "reached");
    let present: Vec<&str> = found.lines().filter_map(|l| l.strip_prefix("present: ")).collect();
    let mut done = Vec::new();
    for attempt in FRAME_ATTEMPTS {
        let happened = match attempt {
            "write" => present.contains(&"marker"),
            "program" => present.contains(&"program-ran"),
            "escape" => present.contains(&"escaped"),
            "tcp" | "unix" => reached.split_whitespace().any(|r| r == attempt),
            "kill" => field(&found, "victim") != "alive",
            "oom" => field(&found, "oom") == "1000",
            "sysctl" => field(&found, "domainname") == "ari-frame",
            _ => said.contains(&format!(" {attempt}=done")),
        };
        if happened {
            done.push(attempt);
        }
    }
    Ok(done)
}
