//! A stand-in for systemd's `systemd-run` and `systemctl`, first on the harness sshd's PATH
//! (tests/src/sshd.rs): this machine runs no systemd, and a remote rdiff job starts
//! rdiff-backup's server through `systemd-run` (ari-rdiff's `confine.rs`). It is no
//! pass-through: it runs the command contained as the properties ari's line names, by the means
//! this machine has (mount, network and IPC namespaces, read-only mounts, a capability bounding
//! set, no_new_privs and a seccomp filter), so that the attack tests test containment.
//!
//! It pins ari's line: an option or a property it does not know is refused (exit 99), and each
//! property it knows takes effect only when the line names it, so that a property dropped from
//! ari's line is a guarantee gone here too. What it cannot mirror exactly is said in
//! ARCHITECTURE.md: the system-call allow-list `@system-service` is approximated by refusing
//! the groups outside it that matter (mounting, modules, raw I/O, the clock, reboot, swap),
//! and the VM tier runs the real systemd.
//!
//! `ari-standin-systemd --state DIR run ARGS...` is `systemd-run ARGS...`: it takes the unit's
//! name (`--unit`), starts the command in a session of its own (as systemd starts a unit outside
//! the caller's process group), records its process id in `DIR/units/NAME.service`, waits for
//! it and exits with its status. `ari-standin-systemd --state DIR ctl stop NAME.service` is
//! `systemctl stop`: SIGTERM to the unit's process group, then waits until it is gone (SIGKILL
//! after ten seconds). Every call is appended to `DIR/calls`.

#![allow(clippy::disallowed_methods)] // a test tool: it runs what it is told, directly
#![allow(unsafe_code)] // the namespace, mount, capability and seccomp calls are libc's

use std::ffi::CString;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The properties the stand-in knows, exactly as ari's line spells them, but for the list of a
/// refusing `SystemCallFilter=~...`, whose items it knows one by one ([`REFUSABLE`]).
const KNOWN: &[&str] = &[
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    "ReadOnlyPaths=/proc",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "PrivateDevices=yes",
    "PrivateNetwork=yes",
    "PrivateIPC=yes",
    "CapabilityBoundingSet=CAP_DAC_READ_SEARCH",
    "NoNewPrivileges=yes",
    "RestrictNamespaces=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallErrorNumber=EPERM",
];

/// The items of `SystemCallFilter=~ITEM ITEM...` the stand-in knows: each takes effect as the
/// property `SystemCallFilter=~ITEM` of its own.
const REFUSABLE: &[&str] = &[
    "SystemCallFilter=~@privileged",
    "SystemCallFilter=~@resources",
    "SystemCallFilter=~@keyring",
    "SystemCallFilter=~@debug",
    "SystemCallFilter=~@aio",
    "SystemCallFilter=~socket",
    "SystemCallFilter=~kill",
    "SystemCallFilter=~tkill",
    "SystemCallFilter=~tgkill",
    "SystemCallFilter=~rt_sigqueueinfo",
    "SystemCallFilter=~rt_tgsigqueueinfo",
    "SystemCallFilter=~pidfd_send_signal",
    "SystemCallFilter=~prlimit64",
];

/// The PATH systemd gives a service (Debian 12, merged /usr).
const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

/// The exit status for a line the stand-in refuses or cannot carry out: the tests' fakes use
/// 99 for a call no test planned.
const REFUSED: i32 = 99;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (state, rest) = match args.as_slice() {
        [flag, state, rest @ ..] if flag == "--state" => (PathBuf::from(state), rest),
        _ => fail("usage: ari-standin-systemd --state DIR run|ctl ARGS..."),
    };
    let _ = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("calls"))
        .and_then(|mut calls| writeln!(calls, "{}", rest.join(" ")));
    let code = match rest {
        [mode, args @ ..] if mode == "run" => run(&state, args),
        [mode, args @ ..] if mode == "ctl" => ctl(&state, args),
        _ => fail("usage: ari-standin-systemd --state DIR run|ctl ARGS..."),
    };
    std::process::exit(code);
}

fn fail(why: &str) -> ! {
    eprintln!("stand-in systemd: {why}");
    std::process::exit(REFUSED);
}

/// What a `systemd-run` line asked for.
struct Line {
    unit: Option<String>,
    properties: Vec<&'static str>,
    command: Vec<String>,
}

impl Line {
    fn has(&self, property: &str) -> bool {
        self.properties.contains(&property)
    }
}

fn parse(args: &[String]) -> Line {
    let (mut pipe, mut wait) = (false, false);
    let mut line = Line { unit: None, properties: Vec::new(), command: Vec::new() };
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--quiet" | "--collect" | "--service-type=exec" => {}
            "--pipe" => pipe = true,
            "--wait" => wait = true,
            "-p" => {
                let value = words.next().map(String::as_str).unwrap_or_default();
                let unknown =
                    || fail(&format!("systemd-run: a property the stand-in does not know: {value:?}"));
                if let Some(list) = value.strip_prefix("SystemCallFilter=~") {
                    for item in list.split(' ') {
                        let property = format!("SystemCallFilter=~{item}");
                        match REFUSABLE.iter().find(|known| **known == property) {
                            Some(known) => line.properties.push(known),
                            None => unknown(),
                        }
                    }
                } else {
                    match KNOWN.iter().find(|known| **known == value) {
                        Some(known) => line.properties.push(known),
                        None => unknown(),
                    }
                }
            }
            "--" => {
                line.command = words.cloned().collect();
                break;
            }
            other => match other.strip_prefix("--unit=") {
                Some(name)
                    if !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
                {
                    line.unit = Some(format!("{name}.service"));
                }
                _ => fail(&format!("systemd-run: an option the stand-in does not know: {other:?}")),
            },
        }
    }
    if !(pipe && wait) {
        fail("systemd-run: the stand-in runs a unit only with --pipe --wait");
    }
    if line.command.is_empty() {
        fail("systemd-run: no command after --");
    }
    line
}

/// `systemd-run`: the command in a unit of its own, contained as the line's properties say.
fn run(state: &Path, args: &[String]) -> i32 {
    let line = parse(args);
    // systemd-run finds the program on the caller's PATH, before anything starts.
    let Some(program) = find_program(&line.command[0]) else {
        eprintln!("Failed to find executable {}: No such file or directory", line.command[0]);
        return 1;
    };
    let units = state.join("units");
    let _ = fs::create_dir_all(&units);
    let unit = line.unit.clone().unwrap_or_else(|| format!("run-u{}.service", std::process::id()));
    let record = units.join(&unit);
    if record.exists() {
        eprintln!(
            "Failed to start transient service unit: Unit {unit} was already loaded or has a fragment file."
        );
        return 1;
    }
    let (go_read, go_write) = pipe_pair();
    // SAFETY: the child runs only async-signal-safe work until it execs, or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        fail(&format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        unsafe { libc::close(go_write) };
        // Wait until the unit is recorded, so that `systemctl stop` finds it from the start.
        let mut byte = [0u8];
        unsafe { libc::read(go_read, byte.as_mut_ptr().cast(), 1) };
        unsafe { libc::close(go_read) };
        if let Err(err) = contain(&line) {
            eprintln!("stand-in systemd-run: {err}");
            unsafe { libc::_exit(REFUSED) };
        }
        let err = exec(&program, &line.command);
        eprintln!("stand-in systemd-run: exec {}: {err}", program.display());
        unsafe { libc::_exit(REFUSED) };
    }
    unsafe { libc::close(go_read) };
    if let Err(err) = fs::write(&record, pid.to_string()) {
        fail(&format!("record {}: {err}", record.display()));
    }
    unsafe {
        libc::write(go_write, [1u8].as_ptr().cast(), 1);
        libc::close(go_write);
    }
    let mut status = 0;
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    let _ = fs::remove_file(&record);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    }
}

/// `systemctl stop NAME.service`: SIGTERM to the unit's processes, then waits until they are
/// gone (SIGKILL after ten seconds), as systemd's stop job does.
fn ctl(state: &Path, args: &[String]) -> i32 {
    let [verb, unit] = args else { fail("systemctl: the stand-in knows only `stop NAME.service`") };
    if verb != "stop" || !unit.ends_with(".service") || unit.contains('/') {
        fail("systemctl: the stand-in knows only `stop NAME.service`");
    }
    let record = state.join("units").join(unit);
    let Some(pid) = fs::read_to_string(&record).ok().and_then(|text| text.trim().parse::<i32>().ok()) else {
        eprintln!("Failed to stop {unit}: Unit {unit} not loaded.");
        return 5;
    };
    // The unit's command leads a session and process group of its own.
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(10);
    while running(pid) {
        if Instant::now() >= until {
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = fs::remove_file(&record);
    0
}

/// Whether `pid` runs: a zombie (whose parent, the stand-in's `run`, was killed) does not.
fn running(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        let c = CString::new(candidate.as_os_str().as_bytes()).unwrap_or_default();
        unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
    })
}

fn pipe_pair() -> (i32, i32) {
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        fail(&format!("pipe: {}", io::Error::last_os_error()));
    }
    (fds[0], fds[1])
}

fn exec(program: &Path, command: &[String]) -> io::Error {
    let path = CString::new(program.as_os_str().as_bytes()).unwrap_or_default();
    let argv: Vec<CString> = command.iter().map(|a| CString::new(a.as_bytes()).unwrap_or_default()).collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let env = [CString::new(format!("PATH={SERVICE_PATH}")).unwrap_or_default()];
    let env_ptrs = [env[0].as_ptr(), std::ptr::null()];
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

fn check(what: &str, result: libc::c_long) -> io::Result<()> {
    if result < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("{what}: {err}")));
    }
    Ok(())
}

fn c_path(path: &str) -> CString {
    CString::new(path).unwrap_or_default()
}

/// The unit's sandbox, in the child before it execs the command.
fn contain(line: &Line) -> io::Result<()> {
    check("setsid", unsafe { libc::setsid() }.into())?;
    let mut flags = libc::CLONE_NEWNS;
    if line.has("PrivateNetwork=yes") {
        flags |= libc::CLONE_NEWNET;
    }
    if line.has("PrivateIPC=yes") {
        flags |= libc::CLONE_NEWIPC;
    }
    check(
        "unshare (the stand-in needs root, as the harness's sshd logs in as the test's user)",
        unsafe { libc::unshare(flags) }.into(),
    )?;
    // Mounts of the host still reach the unit (a snapshot mounted later), none goes back.
    check(
        "make / a slave",
        unsafe {
            libc::mount(
                std::ptr::null(),
                c_path("/").as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            )
        }
        .into(),
    )?;
    // The devices a private /dev keeps, opened (in the unit's mount namespace, where a bind
    // mount must find its source) before a tmpfs hides them.
    let devices: Vec<(&str, i32)> = if line.has("PrivateDevices=yes") {
        ["null", "zero", "full", "random", "urandom", "tty"]
            .iter()
            .map(|name| {
                let path = c_path(&format!("/dev/{name}"));
                (*name, unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })
            })
            .filter(|(_, fd)| *fd >= 0)
            .collect()
    } else {
        Vec::new()
    };
    let mounts = mount_table()?;
    if line.has("ProtectSystem=strict") {
        set_read_only("/", true)?;
        // The API file systems stay as they were; PrivateDevices, ProtectKernelTunables and
        // ProtectControlGroups below deal with them.
        for (point, writable) in &mounts {
            let api = ["/dev", "/proc", "/sys"]
                .iter()
                .any(|api| point == api || point.starts_with(&format!("{api}/")));
            if api && *writable {
                let _ = set_attr(point, false, 0, MOUNT_ATTR_RDONLY);
            }
        }
    }
    if line.has("ProtectHome=read-only") {
        for dir in ["/home", "/root", "/run/user"] {
            if Path::new(dir).is_dir() {
                bind_read_only(dir)?;
            }
        }
    }
    if !devices.is_empty() {
        private_dev(&devices)?;
    }
    if line.has("ProtectKernelTunables=yes") {
        for path in [
            "/proc/sys",
            "/proc/sysrq-trigger",
            "/proc/irq",
            "/proc/bus",
            "/proc/fs",
            "/proc/acpi",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/sys",
        ] {
            if Path::new(path).exists() {
                bind_read_only(path)?;
            }
        }
    }
    if line.has("ProtectControlGroups=yes") && Path::new("/sys/fs/cgroup").exists() {
        bind_read_only("/sys/fs/cgroup")?;
    }
    if line.has("ReadOnlyPaths=/proc") {
        bind_read_only("/proc")?;
    }
    if line.has("CapabilityBoundingSet=CAP_DAC_READ_SEARCH") {
        drop_capabilities()?;
    }
    if line.has("NoNewPrivileges=yes") {
        check("no_new_privs", unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())?;
    }
    seccomp::install(line)
}

/// `MOUNT_ATTR_RDONLY` of mount_setattr(2).
const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `AT_RECURSIVE` of mount_setattr(2).
const AT_RECURSIVE: u32 = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn set_attr(path: &str, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    check(&format!("mount_setattr {path}"), unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path(path).as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

fn set_read_only(path: &str, recursive: bool) -> io::Result<()> {
    set_attr(path, recursive, MOUNT_ATTR_RDONLY, 0)
}

/// `path` bound onto itself and made read-only with everything under it, as systemd does for a
/// directory or file it protects.
fn bind_read_only(path: &str) -> io::Result<()> {
    let c = c_path(path);
    check(
        &format!("bind {path}"),
        unsafe {
            libc::mount(
                c.as_ptr(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            )
        }
        .into(),
    )?;
    set_read_only(path, true)
}

/// Each mount point, and whether it is mounted read-write, from /proc/self/mountinfo.
fn mount_table() -> io::Result<Vec<(String, bool)>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let point = fields.nth(4)?;
            let options = fields.next()?;
            Some((unescape(point), options.split(',').any(|o| o == "rw")))
        })
        .collect())
}

/// A mountinfo path: spaces, tabs, newlines and backslashes are octal escapes there.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A /dev of its own: a tmpfs with the pseudo devices bound in from the host's.
fn private_dev(devices: &[(&str, i32)]) -> io::Result<()> {
    check(
        "mount a tmpfs on /dev",
        unsafe {
            libc::mount(
                c_path("tmpfs").as_ptr(),
                c_path("/dev").as_ptr(),
                c_path("tmpfs").as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                c_path("mode=0755").as_ptr().cast(),
            )
        }
        .into(),
    )?;
    for (name, fd) in devices {
        let target = format!("/dev/{name}");
        fs::OpenOptions::new().create_new(true).write(true).mode(0o666).open(&target)?;
        check(
            &format!("bind {target}"),
            unsafe {
                libc::mount(
                    c_path(&format!("/proc/self/fd/{fd}")).as_ptr(),
                    c_path(&target).as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            }
            .into(),
        )?;
        unsafe { libc::close(*fd) };
    }
    fs::create_dir("/dev/shm")?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, format!("/dev/{name}"))?;
    }
    Ok(())
}

/// CAP_DAC_READ_SEARCH's number.
const CAP_DAC_READ_SEARCH: u64 = 2;

/// Root's user id with no capability but CAP_DAC_READ_SEARCH once the command is executed:
/// every other capability leaves the bounding set, the inheritable and ambient sets are emptied.
fn drop_capabilities() -> io::Result<()> {
    let last: u64 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")?.trim().parse().unwrap_or(40);
    for cap in 0..=last {
        if cap != CAP_DAC_READ_SEARCH {
            check(
                &format!("drop capability {cap}"),
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }.into(),
            )?;
        }
    }
    check(
        "clear the ambient capabilities",
        unsafe {
            libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0)
        }
        .into(),
    )?;
    // capget/capset, version 3: keep the effective and permitted sets (the exec narrows them to
    // the bounding set), empty the inheritable one.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header { version: 0x2008_0522, pid: 0 };
    let mut data = [Data::default(); 2];
    check("capget", unsafe {
        libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr())
    })?;
    for d in &mut data {
        d.inheritable = 0;
    }
    check("capset", unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) })
}

/// The system-call filter of the line's `SystemCallFilter=`, `SystemCallArchitectures=` and
/// `RestrictNamespaces=`, which systemd enforces with seccomp.
#[cfg(target_arch = "x86_64")]
mod seccomp {
    use super::{check, Line};
    use libc::*;
    use std::io;

    /// AUDIT_ARCH_X86_64.
    const ARCH: u32 = 0xC000_003E;
    /// System calls of the x32 ABI have this bit in their number.
    const X32: u32 = 0x4000_0000;
    /// The CLONE_NEW* flags of clone(2)'s first argument.
    const NAMESPACES: u32 = 0x7E02_0000;

    /// What each property refuses, as whole system calls.
    fn refused(property: &str) -> &'static [c_long] {
        match property {
            // The groups outside @system-service that matter: mounting, modules, raw I/O, the
            // clock, reboot, swap (systemd's allow-list refuses every call outside it).
            "SystemCallFilter=@system-service" => &[
                SYS_mount,
                SYS_umount2,
                SYS_pivot_root,
                SYS_fsopen,
                SYS_fsmount,
                SYS_fsconfig,
                SYS_fspick,
                SYS_move_mount,
                SYS_open_tree,
                SYS_mount_setattr,
                SYS_init_module,
                SYS_finit_module,
                SYS_delete_module,
                SYS_iopl,
                SYS_ioperm,
                SYS_settimeofday,
                SYS_clock_settime,
                SYS_clock_adjtime,
                SYS_adjtimex,
                SYS_reboot,
                SYS_kexec_load,
                SYS_kexec_file_load,
                SYS_swapon,
                SYS_swapoff,
                SYS_modify_ldt,
            ],
            "SystemCallFilter=~@privileged" => &[
                SYS_open_by_handle_at,
                SYS_chroot,
                SYS_pivot_root,
                SYS_acct,
                SYS_bpf,
                SYS_capset,
                SYS_setuid,
                SYS_setreuid,
                SYS_setresuid,
                SYS_setfsuid,
                SYS_setgroups,
                SYS_sethostname,
                SYS_setdomainname,
                SYS_quotactl,
                SYS_fanotify_init,
                SYS_fanotify_mark,
                SYS_vhangup,
                SYS_chown,
                SYS_fchown,
                SYS_lchown,
                SYS_fchownat,
                SYS__sysctl,
                SYS_nfsservctl,
            ],
            "SystemCallFilter=~@resources" => &[
                SYS_setrlimit,
                SYS_setpriority,
                SYS_sched_setscheduler,
                SYS_sched_setparam,
                SYS_sched_setattr,
                SYS_sched_setaffinity,
                SYS_set_mempolicy,
                SYS_mbind,
                SYS_migrate_pages,
                SYS_move_pages,
                SYS_ioprio_set,
            ],
            "SystemCallFilter=~@keyring" => &[SYS_add_key, SYS_keyctl, SYS_request_key],
            "SystemCallFilter=~@debug" => &[
                SYS_ptrace,
                SYS_process_vm_readv,
                SYS_process_vm_writev,
                SYS_pidfd_getfd,
                SYS_perf_event_open,
                SYS_lookup_dcookie,
            ],
            // 333: io_pgetevents, which libc does not name.
            "SystemCallFilter=~@aio" => &[
                SYS_io_setup,
                SYS_io_destroy,
                SYS_io_submit,
                SYS_io_cancel,
                SYS_io_getevents,
                333,
                SYS_io_uring_setup,
                SYS_io_uring_enter,
                SYS_io_uring_register,
            ],
            "SystemCallFilter=~socket" => &[SYS_socket],
            "SystemCallFilter=~kill" => &[SYS_kill],
            "SystemCallFilter=~tkill" => &[SYS_tkill],
            "SystemCallFilter=~tgkill" => &[SYS_tgkill],
            "SystemCallFilter=~rt_sigqueueinfo" => &[SYS_rt_sigqueueinfo],
            "SystemCallFilter=~rt_tgsigqueueinfo" => &[SYS_rt_tgsigqueueinfo],
            "SystemCallFilter=~pidfd_send_signal" => &[SYS_pidfd_send_signal],
            "SystemCallFilter=~prlimit64" => &[SYS_prlimit64],
            "RestrictNamespaces=yes" => &[SYS_unshare, SYS_setns],
            _ => &[],
        }
    }

    fn stmt(code: u32, k: u32) -> sock_filter {
        sock_filter { code: code as u16, jt: 0, jf: 0, k }
    }

    fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
        sock_filter { code: code as u16, jt, jf, k }
    }

    /// A filter that answers each refused call with `errno` (or kills the process, as systemd
    /// does without `SystemCallErrorNumber=`) and lets the rest through.
    pub fn install(line: &Line) -> io::Result<()> {
        let errno = if line.has("SystemCallErrorNumber=EPERM") { Some(EPERM as u32) } else { None };
        let deny = match errno {
            Some(errno) => SECCOMP_RET_ERRNO | errno,
            None => SECCOMP_RET_KILL_PROCESS,
        };
        let mut calls: Vec<c_long> =
            line.properties.iter().flat_map(|p| refused(p).iter().copied()).collect();
        calls.sort_unstable();
        calls.dedup();
        let native = line.has("SystemCallArchitectures=native");
        let namespaces = line.has("RestrictNamespaces=yes");
        if calls.is_empty() && !native && !namespaces {
            return Ok(());
        }
        // Instructions that jump to the end: `DENY` is patched to the refusing return.
        let mut program: Vec<sock_filter> = Vec::new();
        let nr = 0u32;
        let arch = 4u32;
        let arg = |i: u32| 16 + 8 * i;
        let ld = BPF_LD | BPF_W | BPF_ABS;
        let mut to_deny: Vec<usize> = Vec::new();
        program.push(stmt(ld, arch));
        if native {
            // Another architecture's calls: refused.
            program.push(jump(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0));
            to_deny.push(program.len());
            program.push(stmt(BPF_JMP | BPF_JA, 0));
        }
        program.push(stmt(ld, nr));
        if native {
            program.push(jump(BPF_JMP | BPF_JSET | BPF_K, X32, 0, 1));
            to_deny.push(program.len());
            program.push(stmt(BPF_JMP | BPF_JA, 0));
        }
        for call in &calls {
            program.push(jump(BPF_JMP | BPF_JEQ | BPF_K, *call as u32, 0, 1));
            to_deny.push(program.len());
            program.push(stmt(BPF_JMP | BPF_JA, 0));
        }
        if namespaces {
            // clone3's flags are behind a pointer: ENOSYS makes the C library use clone.
            program.push(jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3 as u32, 0, 1));
            program.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS as u32));
            program.push(jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone as u32, 0, 4));
            program.push(stmt(ld, arg(0)));
            program.push(jump(BPF_JMP | BPF_JSET | BPF_K, NAMESPACES, 0, 1));
            to_deny.push(program.len());
            program.push(stmt(BPF_JMP | BPF_JA, 0));
            program.push(stmt(ld, nr));
        }
        program.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        let deny_at = program.len();
        program.push(stmt(BPF_RET | BPF_K, deny));
        for at in to_deny {
            program[at].k = (deny_at - at - 1) as u32;
        }
        let prog = sock_fprog { len: program.len() as u16, filter: program.as_mut_ptr() };
        check(
            "install the seccomp filter",
            unsafe {
                prctl(
                    PR_SET_SECCOMP,
                    SECCOMP_MODE_FILTER as c_ulong,
                    &prog as *const sock_fprog as c_ulong,
                    0,
                    0,
                )
            }
            .into(),
        )
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod seccomp {
    use super::Line;
    use std::io;

    pub fn install(_line: &Line) -> io::Result<()> {
        Err(io::Error::other("the stand-in's seccomp filter knows x86_64 only; add this architecture's"))
    }
}
