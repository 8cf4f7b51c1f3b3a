//! A process a test started and looks at while it runs: its stdout and stderr are read as
//! they come, so that it never blocks on a full pipe and the test can wait for a line (that a run
//! waits for a lock, that it got a signal) before it acts.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

/// A process (ari, mostly) this test started, with its stdout and stderr read as they come.
pub struct Running {
    /// The process; the test waits for it, kills it and reaps it.
    pub child: Child,
    stdout: Capture,
    stderr: Capture,
}

impl Running {
    /// Starts `command` with its stdout and stderr piped to threads that read them.
    pub fn start(command: &mut Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {}: {err}", crate::describe(command)));
        let stdout = Capture::of(child.stdout.take().expect("piped stdout"));
        let stderr = Capture::of(child.stderr.take().expect("piped stderr"));
        Running { child, stdout, stderr }
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.text()
    }

    /// What it wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.text()
    }

    /// Sends `signal` to it, which must still run.
    #[allow(unsafe_code)]
    pub fn signal(&mut self, signal: libc::c_int) {
        assert!(
            self.child.try_wait().expect("poll ari").is_none(),
            "ari exited before it got signal {signal}"
        );
        let pid = libc::pid_t::try_from(self.child.id()).expect("a PID fits in pid_t");
        // SAFETY: kill(2) takes plain integers and touches no memory of ours. The PID is that of
        // our own child, which has not been reaped (try_wait just found it running, and nothing
        // else waits for it), so it cannot name another process.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal}) failed: {}", std::io::Error::last_os_error());
    }

    /// Its output, once it has exited with `status`.
    pub fn output(&mut self, status: ExitStatus) -> Output {
        Output { status, stdout: self.stdout.finish(), stderr: self.stderr.finish() }
    }

    /// Waits for it to exit (for as long as that takes, like [`crate::run`]) and returns its
    /// output.
    pub fn wait(mut self) -> Output {
        let status = self.child.wait().expect("reap a child process");
        self.output(status)
    }
}

/// A pipe read to its end by a thread, so that the child never blocks on a full pipe and the
/// test can look at what came so far.
struct Capture {
    text: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Capture {
    fn of(mut pipe: impl Read + Send + 'static) -> Capture {
        let text = Arc::new(Mutex::new(Vec::new()));
        let (tell, done) = mpsc::channel();
        let sink = Arc::clone(&text);
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                sink.lock().expect("capture lock").extend_from_slice(&buffer[..n]);
            }
            let _ = tell.send(());
        });
        Capture { text, done }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().expect("capture lock")).into_owned()
    }

    /// Everything, once the pipe is closed; a process that inherited it and lingers (none should)
    /// gets a bounded wait, not an endless one.
    fn finish(&self) -> Vec<u8> {
        let _ = self.done.recv_timeout(crate::wait::WAIT_LIMIT);
        self.text.lock().expect("capture lock").clone()
    }
}
