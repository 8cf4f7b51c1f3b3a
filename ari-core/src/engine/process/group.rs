//! Process groups: every command ari starts runs in a group of its own (so that stopping it stops
//! everything it started) that ends when ari dies, optionally held at a gate until what ari
//! records about it is on disk; and stopping such a group, SIGTERM then SIGKILL.

use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, RawFd};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// How often a waiting runner looks at its cancel flag.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// How long a stopped command gets to exit after SIGTERM before it gets SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);

/// What `Runner::run_watched` calls with the started process's pid before it may execute.
pub(crate) type OnStart<'a> = &'a mut (dyn FnMut(u32) -> io::Result<()> + Send);

/// `expression` in its own process group, so that stopping it stops everything it started, and
/// sent SIGTERM when ari dies (even by SIGKILL): an ssh left running would keep its remote
/// command running.
#[allow(unsafe_code)]
pub(crate) fn own_group(expression: duct::Expression) -> duct::Expression {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    expression.before_spawn(move |child| {
        child.process_group(0);
        // SAFETY: the hook runs in the forked child before exec, and calls only prctl and
        // getppid, which are async-signal-safe and touch no memory of the parent's.
        unsafe {
            child.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // ari died between fork and prctl: the signal would never come.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        Ok(())
    })
}

/// The byte that lets a process held at its gate go on; any other, or the gate's end, stops it.
const GATE_OPEN: u8 = b'g';
/// The byte that stops it.
const GATE_SHUT: u8 = b's';
/// How often a process held at its gate looks whether ari is still there.
const GATE_POLL_MS: libc::c_int = 100;

/// The pipes between ari and a process held at its gate, as the forked child sees them: it
/// reports its pid on one and waits for a byte on the other.
#[derive(Debug, Clone, Copy)]
struct GateFds {
    report_read: RawFd,
    report_write: RawFd,
    gate_read: RawFd,
    gate_write: RawFd,
}

/// Starts `expression` held at a gate: the forked child writes its pid to ari and waits,
/// before it executes the program, until ari answers. A thread of ari's reads the pid, calls
/// `on_start` and answers with its outcome, while this thread is blocked in the spawn (which
/// returns only once the child has executed the program, or failed to).
#[allow(unsafe_code)]
pub(crate) fn start_gated(expression: &duct::Expression, on_start: OnStart<'_>) -> io::Result<duct::Handle> {
    let (report_read, report_write) = io::pipe()?;
    let (gate_read, gate_write) = io::pipe()?;
    // The child gets its standard streams on 0, 1 and 2 before the gate: a pipe end there (ari
    // started with one closed) would be replaced, so each end moves above them.
    let (mut report_read, report_write) = (above_stdio(report_read)?, above_stdio(report_write)?);
    let (gate_read, mut gate_write) = (above_stdio(gate_read)?, above_stdio(gate_write)?);
    let fds = GateFds {
        report_read: report_read.as_raw_fd(),
        report_write: report_write.as_raw_fd(),
        gate_read: gate_read.as_raw_fd(),
        gate_write: gate_write.as_raw_fd(),
    };
    let parent = std::process::id();
    let gated = expression.before_spawn(move |child| {
        // SAFETY: the hook runs in the forked child before exec and makes only
        // async-signal-safe calls (close, getpid, write, poll, read, getppid) on descriptors
        // the child inherited; it touches no memory of the parent's.
        unsafe {
            child.pre_exec(move || wait_at_gate(fds, parent));
        }
        Ok(())
    });
    std::thread::scope(|scope| {
        let watcher = scope.spawn(move || -> io::Result<()> {
            let mut pid = [0u8; 4];
            // The end of the pipe before a pid: no child reached the gate.
            report_read.read_exact(&mut pid)?;
            let recorded = on_start(u32::from_ne_bytes(pid));
            let answer = if recorded.is_ok() { GATE_OPEN } else { GATE_SHUT };
            // A child that is gone cannot be told; the spawn then says how it ended.
            let _ = gate_write.write_all(&[answer]);
            recorded
        });
        let started = gated.start();
        // ari's own copies of the child's ends: once they are closed, a watcher still waiting
        // for a pid sees the pipe end (the fork failed) instead of waiting forever.
        drop(report_write);
        drop(gate_read);
        let watched = watcher.join().unwrap_or_else(|_| Err(io::Error::other("the gate's watcher panicked")));
        match (started, watched) {
            (Ok(handle), _) => Ok(handle),
            // What `on_start` said is why the child never ran.
            (Err(_), Err(recorded)) if recorded.kind() != io::ErrorKind::UnexpectedEof => Err(recorded),
            (Err(spawned), _) => Err(spawned),
        }
    })
}

/// `end`, or a copy of it on a descriptor above 2 when it is on 0, 1 or 2 (a copy is made with
/// `F_DUPFD_CLOEXEC` from 3 up).
fn above_stdio<T: std::os::fd::AsFd + From<std::os::fd::OwnedFd>>(end: T) -> io::Result<T> {
    if end.as_fd().as_raw_fd() > 2 {
        return Ok(end);
    }
    Ok(T::from(end.as_fd().try_clone_to_owned()?))
}

/// The forked child's side of the gate: report its pid, then wait for ari's answer, looking
/// every 100 ms whether ari is still its parent (ari killed meanwhile never answers).
#[allow(unsafe_code)]
fn wait_at_gate(fds: GateFds, parent: u32) -> io::Result<()> {
    let interrupted = || io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
    // SAFETY: close, getpid, write, poll, read and getppid are async-signal-safe, take plain
    // integers and buffers on this stack, and act only on the descriptors named.
    unsafe {
        // The child's copies of ari's ends: the gate's end must reach the child when ari dies.
        libc::close(fds.report_read);
        libc::close(fds.gate_write);
        let pid = libc::getpid().to_ne_bytes();
        let mut written = 0;
        while written < pid.len() {
            let n = libc::write(fds.report_write, pid[written..].as_ptr().cast(), pid.len() - written);
            match n {
                1.. => written += n as usize,
                _ if interrupted() => {}
                _ => return Err(io::Error::last_os_error()),
            }
        }
        libc::close(fds.report_write);
        loop {
            let mut poll = libc::pollfd { fd: fds.gate_read, events: libc::POLLIN, revents: 0 };
            if libc::poll(&mut poll, 1, GATE_POLL_MS) > 0 {
                let mut byte = 0u8;
                match libc::read(fds.gate_read, (&raw mut byte).cast(), 1) {
                    1 if byte == GATE_OPEN => return Ok(()),
                    -1 if interrupted() => continue,
                    _ => return Err(io::Error::from_raw_os_error(libc::ECANCELED)),
                }
            }
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
    }
}

/// Stops a running command's whole process group: SIGTERM, then SIGKILL after a grace period.
pub(crate) fn stop_group(handle: &duct::Handle) {
    let Some(pid) = handle.pids().first().copied() else { return };
    let group = pid as i32;
    signal_group(group, libc::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = handle.wait_timeout(POLL) {
            return;
        }
    }
    signal_group(group, libc::SIGKILL);
    let _ = handle.wait();
}

#[allow(unsafe_code)]
fn signal_group(group: i32, signal: i32) {
    // SAFETY: kill(2) takes plain integers and has no memory effects; a negative pid names the
    // process group that this module created for the child (process_group(0) above).
    let _ = unsafe { libc::kill(-group, signal) };
}
