//! A stream through processes: a dump tool's standard output, read by ari (which counts it and
//! keeps its first and last bytes for the format's check, in fixed memory), handed to the
//! stages that follow (a compressor, the writer), each the next one's input. Every stage is a
//! process of its own, in a group of its own that ends when ari dies, and each one's exit
//! status is read on its own: the stream succeeds only when every stage exited 0, and a failure
//! names the stage that caused it (the writer, when it stopped reading; else the first).
//!
//! ari sits in the stream rather than joining the stages with one `pipe` so that the stream's
//! size and ends are known without reading the stored file again, and so that no stage takes
//! the end of its input for the end of a dump before ari has every status: the writer only
//! writes a temporary name, which a step of its own renames once this returned success.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::capture::Capture;
use super::group::{own_group, stop_group, POLL};
use super::relay::CHUNK;
use super::{failure, spawn_error, Deadline, ProcessError, Reach, MARKER_GRACE, OUTPUT_GRACE};
use crate::contract::step::Command;

/// One stage of a stream: the command, and the argv it became.
pub(crate) struct Stage<'a> {
    pub(crate) command: &'a Command,
    pub(crate) argv: Vec<String>,
}

pub(crate) use super::relay::Streamed;

/// A stream that did not succeed: why, and how many bytes had gone through it by then.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub(crate) error: ProcessError,
    pub(crate) bytes: u64,
}

/// A stream that could not start (a pipe, a stage): nothing went through it. A sink already
/// started sees its input end and exits; what it wrote is only ever a temporary name.
impl From<ProcessError> for Stopped {
    fn from(error: ProcessError) -> Stopped {
        Stopped { error, bytes: 0 }
    }
}

/// Asks for a pipe of [`CHUNK`] bytes (the kernel's default of 64 KiB costs a context switch
/// per 64 KiB); a kernel that gives less (`pipe-max-size`, a user's
/// `pipe-user-pages-soft`) leaves the default, which only costs speed.
fn widened<F: std::os::fd::AsFd>(end: F) -> F {
    let _ = rustix::pipe::fcntl_setpipe_size(&end, CHUNK);
    end
}

/// A started stage: its process and what it prints on stderr.
struct Running<'a> {
    stage: &'a Stage<'a>,
    handle: duct::Handle,
    stderr: Capture,
    stdout: Option<Capture>,
}

/// Runs `source` with its output through ari into `sinks` (a compressor, then the writer;
/// the last one's output is kept as any command's), to the end of every stage, the deadline
/// or `cancel`; `keep` is how many of the stream's first and last bytes come back.
pub(crate) fn stream(
    source: &Stage<'_>,
    sinks: &[Stage<'_>],
    cancel: &AtomicBool,
    deadline: Option<Deadline>,
    reach: Option<Reach<'_>>,
    keep: usize,
) -> Result<Streamed, Stopped> {
    let sudo = reach.as_ref().is_some_and(|reach| reach.sudo);
    let reach = reach.filter(|reach| !reach.destinations.is_empty());
    let destinations: Vec<String> =
        reach.as_ref().map(|reach| reach.destinations.clone()).unwrap_or_default();
    let nonces = reach.as_ref().map(|reach| reach.nonces.clone()).unwrap_or_default();
    let describe = || source.command.to_string();

    // The sinks first, from the last: each one writes into the input of the one after it.
    let mut running: Vec<Running<'_>> = Vec::new();
    let (last_read, mut output) = io::pipe().map_err(|err| spawn_error(&source.argv, err))?;
    let mut last_read = Some(last_read);
    for stage in sinks.iter().rev() {
        let (input_read, input_write) = io::pipe().map_err(|err| spawn_error(&stage.argv, err))?;
        let input_read = widened(input_read);
        let (stderr_read, stderr_write) = io::pipe().map_err(|err| spawn_error(&stage.argv, err))?;
        let handle = match start(stage, Some(input_read), output, stderr_write) {
            Ok(handle) => handle,
            Err(err) => {
                stop_all(&running, &reach);
                return Err(Stopped::from(err));
            }
        };
        let stdout = last_read.take().map(|read| Capture::start(read, Vec::new()));
        running.push(Running { stage, handle, stderr: Capture::start(stderr_read, nonces.clone()), stdout });
        output = input_write;
    }
    running.reverse();
    let feed = output;

    // The source, whose output ari reads.
    let (from_source, source_output) = io::pipe().map_err(|err| spawn_error(&source.argv, err))?;
    let from_source = widened(from_source);
    let (stderr_read, stderr_write) = io::pipe().map_err(|err| spawn_error(&source.argv, err))?;
    let handle = match start(source, None, source_output, stderr_write) {
        Ok(handle) => handle,
        Err(err) => {
            drop(feed);
            stop_all(&running, &reach);
            return Err(Stopped::from(err));
        }
    };
    running.insert(
        0,
        Running { stage: source, handle, stderr: Capture::start(stderr_read, nonces), stdout: None },
    );

    // ari's part: hand on, count, keep the ends. A sink that stops reading ends it.
    // Its end comes through a channel, and is waited for only so long (OUTPUT_GRACE): a process
    // that left the source's group and still holds its output must not hold the job.
    let (relay_done, relay_end) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = relay_done.send(super::relay::relay(from_source, feed, keep));
    });
    let bytes_so_far = || relay_end.recv_timeout(OUTPUT_GRACE).map_or(0, |relayed| relayed.streamed.bytes);

    // Wait for every stage, looking at the flag and the deadline in between.
    let mut statuses: Vec<Option<std::process::ExitStatus>> = vec![None; running.len()];
    loop {
        for (i, stage) in running.iter().enumerate() {
            if statuses[i].is_none() {
                match stage.handle.try_wait() {
                    Ok(Some(output)) => statuses[i] = Some(output.status),
                    Ok(None) => {}
                    Err(source) => {
                        stop_all(&running, &reach);
                        let bytes = bytes_so_far();
                        let error = ProcessError::Wait { command: stage.stage.command.to_string(), source };
                        return Err(Stopped { error, bytes });
                    }
                }
            }
        }
        if statuses.iter().all(Option::is_some) {
            break;
        }
        if cancel.load(Ordering::SeqCst) {
            log::debug!("{} was interrupted: stopping it", describe());
            stop_all(&running, &reach);
            let bytes = bytes_so_far();
            return Err(Stopped { error: ProcessError::Interrupted { command: describe() }, bytes });
        }
        if let Some(deadline) = deadline.as_ref().filter(|d| Instant::now() >= d.at) {
            log::debug!("{} reached {}: stopping it", describe(), deadline.limit);
            stop_all(&running, &reach);
            let bytes = bytes_so_far();
            let error = ProcessError::TimedOut { command: describe(), limit: deadline.limit.clone() };
            return Err(Stopped { error, bytes });
        }
        std::thread::sleep(POLL);
    }
    let Ok(relayed) = relay_end.recv_timeout(OUTPUT_GRACE) else {
        let source = io::Error::other("a process it started still holds its output after every stage ended");
        return Err(Stopped { error: ProcessError::Wait { command: describe(), source }, bytes: 0 });
    };
    let (streamed, copy_error, sink_gone) = (relayed.streamed, relayed.error, relayed.sink_gone);
    let mut failures: Vec<(usize, bool, ProcessError)> = Vec::new();
    for (i, (stage, status)) in running.into_iter().zip(statuses).enumerate() {
        let status = status.expect("every stage ended");
        let (stderr, _) = stage.stderr.finish(OUTPUT_GRACE);
        let stdout = stage.stdout.map(|out| out.finish(OUTPUT_GRACE).0).unwrap_or_default();
        for line in stderr.lines() {
            log::debug!("stderr: {line}");
        }
        if !status.success() {
            failures.push((
                i,
                broken_pipe(status),
                failure(stage.stage.command, status, stdout, stderr, &destinations, sudo),
            ));
        }
    }
    // A stage that died of a broken pipe (SIGPIPE, or a shell's 141) died because a stage after
    // it stopped reading: that stage's failure is the cause, whichever ended first.
    if failures.iter().any(|(_, piped, _)| !piped) {
        failures.retain(|(_, piped, _)| !piped);
    }
    let mut failures: Vec<(usize, ProcessError)> = failures.into_iter().map(|(i, _, f)| (i, f)).collect();
    // A sink that stopped reading before the end and still exited 0 (the source then dies of
    // the broken pipe): the sink is what failed.
    if sink_gone && !failures.iter().any(|(i, _)| *i > 0) {
        let error = ProcessError::Wait {
            command: sinks[0].command.to_string(),
            source: io::Error::other("it stopped reading the stream before its end"),
        };
        return Err(Stopped { error, bytes: streamed.bytes });
    }
    // The source's failure explains the rest, unless a sink stopped reading first.
    let sink_failed = failures.iter().position(|(i, _)| *i > 0).filter(|_| sink_gone);
    let blamed = match sink_failed {
        Some(at) => Some(failures.swap_remove(at).1),
        None => failures.into_iter().next().map(|(_, failure)| failure),
    };
    if let Some(failure) = blamed {
        return Err(Stopped { error: failure, bytes: streamed.bytes });
    }
    if let Some(source) = copy_error {
        return Err(Stopped {
            error: ProcessError::Wait { command: describe(), source },
            bytes: streamed.bytes,
        });
    }
    Ok(streamed)
}

/// Whether a stage ended of a broken pipe: killed by SIGPIPE, or a shell's exit 141 for it.
fn broken_pipe(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGPIPE) || status.code() == Some(128 + libc::SIGPIPE)
}

/// Starts `stage` in a group of its own with these standard streams (stdin `/dev/null` when
/// none). The expression, which holds the pipes' ends too, is gone when this returns: a pipe
/// ends when the processes that hold it have closed it.
fn start(
    stage: &Stage<'_>,
    stdin: Option<io::PipeReader>,
    stdout: io::PipeWriter,
    stderr: io::PipeWriter,
) -> Result<duct::Handle, ProcessError> {
    #[allow(clippy::disallowed_methods)] // this module is the one process spawner
    let expression = own_group(duct::cmd(&stage.argv[0], &stage.argv[1..]));
    let expression = match stdin {
        Some(stdin) => expression.stdin_file(stdin),
        None => expression.stdin_null(),
    };
    expression
        .stdout_file(stdout)
        .stderr_file(stderr)
        .unchecked()
        .start()
        .map_err(|err| spawn_error(&stage.argv, err))
}

/// Stops every started stage, on its hosts first.
fn stop_all(running: &[Running<'_>], reach: &Option<Reach<'_>>) {
    if let Some(reach) = reach {
        let groups: Vec<(String, u32)> =
            running.iter().flat_map(|stage| stage.stderr.groups(MARKER_GRACE)).collect();
        (reach.stop_groups)(&groups);
    }
    for stage in running {
        stop_group(&stage.handle);
    }
}
