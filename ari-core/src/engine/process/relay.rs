//! ari's place in a stream: what the source writes is read by ari and written to the first
//! sink, counted, and its first and last bytes kept for the format's check, in fixed memory
//! (one buffer, and `keep` bytes of each end).
//!
//! The bytes pass through ari's memory on purpose. Moving them pipe to pipe in the kernel
//! (`splice`, with `tee` into a scratch pipe to see the end) was tried and dropped: a pipe holds
//! a fixed number of buffers, `tee` makes the source's partly filled buffers unmergeable, and a
//! source of many small writes then filled the scratch pipe's buffers while it held a few bytes,
//! so `tee` blocked where nothing could wake it (an outside review, D2's R1). A `read` or a
//! `write` on a pipe ends when the process at its other end does, which ari can always bring
//! about.

use std::io::{self, Read as _, Write as _};

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

/// How much ari reads at a time, and the size it asks for each pipe of a stream.
pub(super) const CHUNK: usize = 1 << 20;

/// Hands everything `from` gives to `to` until `from`'s end, keeping `keep` bytes of each end.
pub(crate) fn relay(mut from: io::PipeReader, mut to: io::PipeWriter, keep: usize) -> Relayed {
    let mut streamed = Streamed::default();
    let mut buffer = vec![0u8; CHUNK];
    let mut end = Vec::new();
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => return finish(streamed, end, None, false),
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return finish(streamed, end, Some(err), false),
        };
        let chunk = &buffer[..read];
        if streamed.head.len() < keep {
            let room = keep - streamed.head.len();
            streamed.head.extend_from_slice(&chunk[..room.min(read)]);
        }
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
            return finish(streamed, end, Some(err), true);
        }
    }
}

/// The relay's end, `end` being the stream's last bytes (at most `keep`).
fn finish(mut streamed: Streamed, end: Vec<u8>, error: Option<io::Error>, sink_gone: bool) -> Relayed {
    streamed.tail = end;
    Relayed { streamed, error, sink_gone }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `data` through a relay, written by a thread in `pieces`-byte writes, read by another
    /// in whole; the relay's result and what came out.
    fn through(data: &[u8], pieces: usize, keep: usize) -> (Streamed, Vec<u8>) {
        let (from_read, mut from_write) = io::pipe().unwrap();
        let (mut to_read, to_write) = io::pipe().unwrap();
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
        let relayed = relay(from_read, to_write, keep);
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
            {
                let (streamed, out) = through(&data, pieces, keep);
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
