//! A running command's output: each pipe read by a thread of its own, of which ari keeps the
//! first [`OUTPUT_HEAD`] and the last [`OUTPUT_TAIL`] bytes, and on stderr the remote wrapper's
//! marker lines taken out and kept as the command's remote process groups.

use std::io::{self, BufRead as _, Read as _};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::contract::ssh::MARKER;

/// How much of a stream of a command's output ari keeps from its start: more than any listing
/// ari reads (`zfs list` of a dataset with a hundred thousand snapshots is 7 MiB). Past it, only
/// the stream's end is kept, so that a host printing without end costs ari no more than this.
pub(crate) const OUTPUT_HEAD: usize = 16 << 20;
/// How much of the end of a stream longer than [`OUTPUT_HEAD`] ari keeps: its last lines, for an
/// error or a summary a tool prints at its end.
pub(crate) const OUTPUT_TAIL: usize = 64 << 10;

/// What ari keeps of one output stream: its first `head` bytes, then its last `tail` bytes.
#[derive(Debug)]
pub(crate) struct Kept {
    head: Vec<u8>,
    tail: Vec<u8>,
    omitted: u64,
    limits: (usize, usize),
}

impl Kept {
    pub(crate) fn new(head: usize, tail: usize) -> Kept {
        Kept { head: Vec::new(), tail: Vec::new(), omitted: 0, limits: (head, tail) }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let (head, tail) = self.limits;
        let (first, rest) = bytes.split_at(head.saturating_sub(self.head.len()).min(bytes.len()));
        self.head.extend_from_slice(first);
        self.tail.extend_from_slice(rest);
        // Cut back only when the end has grown to twice its size, so each byte moves once.
        if self.tail.len() > 2 * tail {
            let cut = self.tail.len() - tail;
            self.tail.drain(..cut);
            self.omitted += cut as u64;
        }
    }

    /// All the bytes there were, when none was left out and they are not UTF-8 (which
    /// [`Kept::text`] shows with replacement characters): for a reader whose fields are bytes,
    /// such as file names.
    fn raw_if_not_text(&self) -> Option<Vec<u8>> {
        if self.omitted > 0 || self.tail.len() > self.limits.1 {
            return None;
        }
        let mut all = self.head.clone();
        all.extend_from_slice(&self.tail);
        std::str::from_utf8(&all).is_err().then_some(all)
    }

    /// The text kept, and how many bytes were left out of it.
    pub(crate) fn text(&mut self) -> (String, u64) {
        let (_, tail) = self.limits;
        if self.tail.len() > tail {
            let cut = self.tail.len() - tail;
            self.tail.drain(..cut);
            self.omitted += cut as u64;
        }
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.omitted > 0 {
            text.push_str(&format!("\n[ari: {} bytes of output left out here]\n", self.omitted));
        }
        text.push_str(&String::from_utf8_lossy(&self.tail));
        (text, self.omitted)
    }
}

/// The longest line ari's remote wrapper prints (a marker: nonce and process group id), with
/// room to spare; a longer line is read in pieces of this size, none of them a marker.
const MARKER_LINE: u64 = 256;

/// One of a running command's output pipes, read by a thread of its own into memory (what
/// [`Kept`] keeps of it). On stderr, the lines of ari's remote wrapper that carry one of
/// `nonces` are taken out and kept as the remote process groups of the command.
pub(crate) struct Capture {
    bytes: Arc<Mutex<Kept>>,
    groups: Arc<Mutex<Vec<(String, u32)>>>,
    ended: mpsc::Receiver<()>,
}

impl Capture {
    /// Reads `pipe` until its end; `nonces` are `(nonce, destination)`.
    pub(crate) fn start(pipe: io::PipeReader, nonces: Vec<(String, String)>) -> Capture {
        Capture::keeping(pipe, nonces, Kept::new(OUTPUT_HEAD, OUTPUT_TAIL))
    }

    pub(crate) fn keeping(
        pipe: impl io::Read + Send + 'static,
        nonces: Vec<(String, String)>,
        kept: Kept,
    ) -> Capture {
        let bytes = Arc::new(Mutex::new(kept));
        let groups = Arc::new(Mutex::new(Vec::new()));
        let (end, ended) = mpsc::channel();
        let (into, found) = (Arc::clone(&bytes), Arc::clone(&groups));
        std::thread::spawn(move || {
            if nonces.is_empty() {
                let mut pipe = pipe;
                let mut chunk = [0u8; 8192];
                while let Ok(read @ 1..) = pipe.read(&mut chunk) {
                    lock(&into).push(&chunk[..read]);
                }
            } else {
                let mut pipe = io::BufReader::new(pipe);
                let mut line = Vec::new();
                // A marker is a whole line: a piece of a longer one never counts as one.
                let mut at_line_start = true;
                while (&mut pipe).take(MARKER_LINE).read_until(b'\n', &mut line).is_ok_and(|read| read > 0) {
                    // Ended by a newline, or the pipe's end: not cut off at MARKER_LINE.
                    let ended = line.ends_with(b"\n") || (line.len() as u64) < MARKER_LINE;
                    let whole = at_line_start && ended;
                    at_line_start = ended;
                    let marker = std::str::from_utf8(&line).ok().filter(|_| whole).and_then(parse_marker);
                    match marker.and_then(|(nonce, pgid)| {
                        nonces.iter().find(|(n, _)| n == nonce).map(|(_, dest)| (dest.clone(), pgid))
                    }) {
                        Some(group) => lock(&found).push(group),
                        None => lock(&into).push(&line),
                    }
                    line.clear();
                }
            }
            let _ = end.send(());
        });
        Capture { bytes, groups, ended }
    }

    /// The remote process groups reported so far, waiting up to `grace` for a first one.
    pub(crate) fn groups(&self, grace: Duration) -> Vec<(String, u32)> {
        let until = Instant::now() + grace;
        while lock(&self.groups).is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        lock(&self.groups).clone()
    }

    /// What was kept, once the pipe ended or `grace` passed, and how many bytes were left out.
    pub(crate) fn finish(self, grace: Duration) -> (String, u64) {
        let (text, omitted, _) = self.finish_raw(grace);
        (text, omitted)
    }

    /// As [`Capture::finish`], with the bytes themselves when they are whole and not UTF-8.
    pub(crate) fn finish_raw(self, grace: Duration) -> (String, u64, Option<Vec<u8>>) {
        let _ = self.ended.recv_timeout(grace);
        let mut kept = lock(&self.bytes);
        let raw = kept.raw_if_not_text();
        let (text, omitted) = kept.text();
        (text, omitted, raw)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Parses the line that the remote wrapper prints: `(nonce, pgid)`. A group id of 0 or 1 (which
/// `kill` reads as "this group" and "every process") is never one of a command's.
pub(super) fn parse_marker(line: &str) -> Option<(&str, u32)> {
    let mut words = line.trim_end_matches(['\r', '\n']).split(' ');
    if words.next() != Some(MARKER) {
        return None;
    }
    let nonce = words.next()?;
    let pgid: u32 = words.next()?.parse().ok()?;
    (words.next().is_none() && pgid > 1).then_some((nonce, pgid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_only_as_written() {
        assert_eq!(parse_marker("ari-remote-pgid 0123abcd 4242\n"), Some(("0123abcd", 4242)));
        assert_eq!(parse_marker("ari-remote-pgid x 1"), None, "group 1 is every process");
        assert_eq!(parse_marker("ari-remote-pgid x 0"), None);
        assert_eq!(parse_marker("ari-remote-pgid x -5"), None);
        assert_eq!(parse_marker("ari-remote-pgid x 12 extra"), None);
        assert_eq!(parse_marker("something ari-remote-pgid x 12"), None);
    }

    #[test]
    fn an_output_keeps_its_start_and_its_end_and_counts_what_it_left_out() {
        let kept = |chunks: &[&str]| {
            let mut kept = Kept::new(4, 3);
            chunks.iter().for_each(|chunk| kept.push(chunk.as_bytes()));
            kept.text()
        };
        assert_eq!(kept(&[]), (String::new(), 0));
        assert_eq!(kept(&["abcdefg"]), ("abcdefg".into(), 0), "start and end meet: all of it");
        assert_eq!(kept(&["ab", "cd", "efg"]), ("abcdefg".into(), 0));
        assert_eq!(kept(&["abcdefgh"]), ("abcd\n[ari: 1 bytes of output left out here]\nfgh".into(), 1));
        assert_eq!(
            kept(&["abc", &"x".repeat(1000), "yz"]),
            ("abcx\n[ari: 998 bytes of output left out here]\nxyz".into(), 998)
        );
    }

    #[test]
    fn markers_are_whole_lines_and_a_line_without_end_costs_no_more_than_the_limit() {
        let nonce = "0123456789abcdef".to_string();
        let marker = format!("{} {nonce} 4242\n", crate::contract::ssh::MARKER);
        // A marker hidden past MARKER_LINE in a long line is part of that line, not a marker.
        let hidden = format!("{}{marker}", "y".repeat(MARKER_LINE as usize));
        let endless = "z".repeat(5000);
        let text = format!("before\n{marker}{hidden}{endless}");
        let capture = Capture::keeping(
            io::Cursor::new(text.into_bytes()),
            vec![(nonce, "backup@db".into())],
            Kept::new(600, 100),
        );
        capture.ended.recv_timeout(Duration::from_secs(10)).expect("the whole text is read");
        let groups = lock(&capture.groups).clone();
        let (kept, omitted) = capture.finish(Duration::ZERO);
        assert_eq!(groups, [("backup@db".to_string(), 4242)], "only the whole line is a marker");
        // What is not a marker is kept as it came, the marker line taken out.
        let rest = format!("before\n{hidden}{endless}");
        assert!(kept.starts_with(&rest[..600]), "{kept}");
        assert!(kept.ends_with(&format!(" left out here]\n{}", "z".repeat(100))), "{kept}");
        assert_eq!(omitted, (rest.len() - 600 - 100) as u64);
    }
}
