//! ari's place in a stream: what the source writes is handed to the first sink, counted, and
//! its first and last bytes kept for the format's check, in fixed memory.
//!
//! The start is read into ari (`keep` bytes). The rest moves from pipe to pipe in the kernel
//! (`splice`), without a copy through ari: before each move, `tee` duplicates the chunk into a
//! scratch pipe, which is cut back to its newest `keep` bytes before the next (the older ones go
//! to /dev/null, again by `splice`), so that at the end the stream's last bytes are there to
//! read. The scratch pipe holds twice what the source's can, so a `tee` always fits. Where that
//! cannot work (a kernel that refuses, a scratch pipe the kernel will not make that large), the
//! bytes are read and written as by any copy.

use std::fs::File;
use std::io::{self, Read as _, Write as _};

use rustix::pipe::{fcntl_getpipe_size, fcntl_setpipe_size, splice, tee, SpliceFlags};

/// What went through a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Streamed {
    /// Its size.
    pub(crate) bytes: u64,
    /// Its first bytes (at most `keep`).
    pub(crate) head: Vec<u8>,
    /// Its last bytes (at most `keep`).
    pub(crate) tail: Vec<u8>,
}

/// How a relay ended: what went through, the error that ended it early, and whether that error
/// was the sink's (it stopped reading).
pub(crate) struct Relayed {
    pub(crate) streamed: Streamed,
    pub(crate) error: Option<io::Error>,
    pub(crate) sink_gone: bool,
}

/// How much a read or a move takes at a time.
const CHUNK: usize = 1 << 20;

/// Hands everything `from` gives to `to` until `from`'s end, keeping `keep` bytes of each end.
pub(crate) fn relay(from: io::PipeReader, to: io::PipeWriter, keep: usize) -> Relayed {
    relay_by(from, to, keep, true)
}

/// [`relay`], moving the bytes by the kernel when `kernel` and it can.
fn relay_by(mut from: io::PipeReader, mut to: io::PipeWriter, keep: usize, kernel: bool) -> Relayed {
    let mut streamed = Streamed::default();
    // The start, read: it is the head.
    let mut buffer = vec![0u8; keep.max(1)];
    while streamed.head.len() < keep {
        let room = keep - streamed.head.len();
        match from.read(&mut buffer[..room]) {
            Ok(0) => return finish(streamed, Vec::new(), None, false, keep),
            Ok(read) => {
                streamed.bytes += read as u64;
                streamed.head.extend_from_slice(&buffer[..read]);
                if let Err(err) = to.write_all(&buffer[..read]) {
                    return finish(streamed, Vec::new(), Some(err), true, keep);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return finish(streamed, Vec::new(), Some(err), false, keep),
        }
    }
    match Scratch::new(&from).filter(|_| kernel) {
        Some(scratch) => moved(from, to, scratch, streamed, keep),
        None => copied(from, to, streamed, keep),
    }
}

/// The scratch pipe that keeps the stream's newest bytes, and /dev/null for what is older.
struct Scratch {
    read: io::PipeReader,
    write: io::PipeWriter,
    null: File,
}

impl Scratch {
    /// A scratch pipe that can hold two of `from`'s fills, or none when the kernel gives less.
    fn new(from: &io::PipeReader) -> Option<Scratch> {
        let (read, write) = io::pipe().ok()?;
        let wanted = 2 * fcntl_getpipe_size(from).ok()?;
        let got = fcntl_setpipe_size(&write, wanted).ok()?;
        let null = File::options().write(true).open("/dev/null").ok()?;
        (got >= wanted).then_some(Scratch { read, write, null })
    }
}

/// The rest of the stream, moved by the kernel.
fn moved(
    from: io::PipeReader,
    to: io::PipeWriter,
    mut scratch: Scratch,
    mut streamed: Streamed,
    keep: usize,
) -> Relayed {
    // What the scratch pipe holds: at most `keep` bytes before each `tee`, the newest.
    let mut held = 0usize;
    loop {
        if held > keep {
            if let Err(err) = drain(&scratch, held - keep) {
                return finish(streamed, Vec::new(), Some(err), false, keep);
            }
            held = keep;
        }
        let teed = match retry(|| tee(&from, &scratch.write, CHUNK, SpliceFlags::empty())) {
            Ok(0) => break,
            Ok(teed) => teed,
            Err(err) => return finish(streamed, Vec::new(), Some(err), false, keep),
        };
        let mut left = teed;
        while left > 0 {
            match retry(|| splice(&from, None, &to, None, left, SpliceFlags::MOVE)) {
                Ok(0) => {
                    let err = io::Error::other("the stream's source ended while ari moved it");
                    return finish(streamed, Vec::new(), Some(err), false, keep);
                }
                Ok(moved) => left -= moved,
                Err(err) => {
                    let gone = err.kind() == io::ErrorKind::BrokenPipe;
                    return finish(streamed, Vec::new(), Some(err), gone, keep);
                }
            }
        }
        streamed.bytes += teed as u64;
        held += teed;
    }
    drop(scratch.write);
    let mut end = Vec::with_capacity(held);
    if let Err(err) = scratch.read.read_to_end(&mut end) {
        return finish(streamed, Vec::new(), Some(err), false, keep);
    }
    drop(to);
    finish(streamed, end, None, false, keep)
}

/// Drops `bytes` from the front of the scratch pipe into /dev/null.
fn drain(scratch: &Scratch, mut bytes: usize) -> io::Result<()> {
    while bytes > 0 {
        match retry(|| splice(&scratch.read, None, &scratch.null, None, bytes, SpliceFlags::MOVE))? {
            0 => return Err(io::Error::other("the scratch pipe ended early")),
            moved => bytes -= moved,
        }
    }
    Ok(())
}

/// The rest of the stream, read and written.
fn copied(mut from: io::PipeReader, mut to: io::PipeWriter, mut streamed: Streamed, keep: usize) -> Relayed {
    let mut buffer = vec![0u8; CHUNK];
    let mut end = Vec::new();
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => return finish(streamed, end, None, false, keep),
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return finish(streamed, end, Some(err), false, keep),
        };
        let chunk = &buffer[..read];
        streamed.bytes += read as u64;
        // The last `keep` bytes, copying no more of a long chunk than that.
        if read >= keep {
            end.clear();
            end.extend_from_slice(&chunk[read - keep..]);
        } else {
            end.extend_from_slice(chunk);
            let excess = end.len().saturating_sub(keep);
            end.drain(..excess);
        }
        if let Err(err) = to.write_all(chunk) {
            return finish(streamed, end, Some(err), true, keep);
        }
    }
}

/// The relay's end: the tail is the last `keep` bytes of the head and what came after it.
fn finish(
    mut streamed: Streamed,
    after_head: Vec<u8>,
    error: Option<io::Error>,
    sink_gone: bool,
    keep: usize,
) -> Relayed {
    let mut tail = if after_head.len() >= keep { Vec::new() } else { streamed.head.clone() };
    tail.extend_from_slice(&after_head);
    let excess = tail.len().saturating_sub(keep);
    tail.drain(..excess);
    streamed.tail = tail;
    Relayed { streamed, error, sink_gone }
}

/// `call`, again while a signal interrupts it.
fn retry(mut call: impl FnMut() -> rustix::io::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(rustix::io::Errno::INTR) => continue,
            result => return result.map_err(io::Error::from),
        }
    }
}

/// Whether `fd` is a pipe the kernel can move pages into (for the tests).
#[cfg(test)]
fn is_pipe(fd: impl std::os::fd::AsFd) -> bool {
    fcntl_getpipe_size(fd).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `data` through a relay, written by a thread in `pieces`-byte writes, read by another
    /// in whole; the relay's result and what came out.
    fn through(data: &[u8], pieces: usize, keep: usize, kernel: bool) -> (Streamed, Vec<u8>) {
        let (from_read, mut from_write) = io::pipe().unwrap();
        let (mut to_read, to_write) = io::pipe().unwrap();
        assert!(is_pipe(&from_read));
        assert!(Scratch::new(&from_read).is_some(), "the kernel makes the scratch pipe");
        let owned = data.to_vec();
        let writer = std::thread::spawn(move || {
            for piece in owned.chunks(pieces.max(1)) {
                from_write.write_all(piece).unwrap();
            }
        });
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            to_read.read_to_end(&mut out).unwrap();
            out
        });
        let relayed = relay_by(from_read, to_write, keep, kernel);
        writer.join().unwrap();
        assert!(relayed.error.is_none(), "{:?}", relayed.error);
        (relayed.streamed, reader.join().unwrap())
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn everything_arrives_and_both_ends_are_kept_whatever_the_sizes() {
        let keep = 4096;
        for (len, pieces) in [
            (0, 1),
            (1, 1),
            (4095, 7),
            (4096, 4096),
            (4097, 1000),
            (8191, 3),
            (65_536, 65_536),
            (1 << 20, 1 << 16),
            ((3 << 20) + 17, 1 << 20),
            ((5 << 20) + 3, 333),
        ] {
            let data = pseudo_random(len, len as u64 + 1);
            for kernel in [true, false] {
                let (streamed, out) = through(&data, pieces, keep, kernel);
                assert_eq!(out.len(), data.len(), "{len} in {pieces}-byte writes");
                assert!(out == data, "{len} in {pieces}-byte writes: the bytes differ");
                assert_eq!(streamed.bytes, len as u64);
                assert_eq!(streamed.head, data[..len.min(keep)]);
                assert_eq!(
                    streamed.tail,
                    data[len.saturating_sub(keep)..],
                    "{len} in {pieces}-byte writes: the tail"
                );
            }
        }
    }

    #[test]
    fn a_sink_that_stops_reading_ends_the_relay_as_the_sinks_doing() {
        let (from_read, mut from_write) = io::pipe().unwrap();
        let (to_read, to_write) = io::pipe().unwrap();
        drop(to_read);
        let writer = std::thread::spawn(move || {
            let _ = from_write.write_all(&vec![7u8; 3 << 20]);
        });
        let relayed = relay(from_read, to_write, 4096);
        assert!(relayed.sink_gone, "{:?}", relayed.error);
        drop(relayed);
        writer.join().unwrap();
    }
}
