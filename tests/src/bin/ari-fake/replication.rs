//! The fake `zfs send`, `zfs recv`, `zfs hold`, `zfs release` and `zfs holds`: replication
//! of a dataset's snapshots to another dataset of the same state, through the stream and
//! resume token of `tests::fakes::stream`, with OpenZFS 2.1's refusals and messages.
//!
//! A send and a receive run at once, joined by a pipe, so neither holds the state
//! directory's lock while it waits on the pipe: a send reads the state under the lock, then
//! writes without it ([`streaming`], then [`Streaming::run`]); a receive takes the lock
//! only for the moments it checks or changes the state: once its stream's header is in,
//! and as each snapshot's payload is in.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use tests::fakes::stream::{nice_bytes, ResumeToken, StreamHeader, PAYLOAD_BYTE, STREAM_END};
use tests::fakes::{self, pool_of, State, ZfsSnapshot};

use super::{no_dataset, now, Op, Options, Outcome};

/// The options of the one `zfs recv` form ari uses, in its order, between the optional
/// `-s` and the optional `-F`.
const RECEIVE_OPTIONS: [&str; 7] = ["-u", "-o", "readonly=on", "-o", "canmount=noauto", "-x", "mountpoint"];

/// How much a send writes before it flushes: small enough that a rate limiter between the
/// two sides (`pv -L`) paces the stream.
const CHUNK: usize = 64 * 1024;

/// The longest header line a receive reads before it calls the stream invalid.
const MAX_HEADER: u64 = 1 << 20;

/// What `zfs send` sends.
#[derive(Debug)]
pub(crate) enum Send {
    /// `zfs send [-w] DATASET@TO`; with `-I`, `from` is the whole name of a snapshot of the
    /// same dataset.
    Snapshots { raw: bool, from: Option<String>, to: String },
    /// `zfs send -t TOKEN`.
    Resume { token: String },
}

/// `zfs recv [-s] -u -o readonly=on -o canmount=noauto -x mountpoint [-F] DATASET`.
#[derive(Debug)]
pub(crate) struct Receive {
    dataset: String,
    resumable: bool,
    force: bool,
}

/// `zfs send` in one of its forms: `[-w] [-I FROM] DATASET@TO`, `-t TOKEN`, `-nvt TOKEN`.
pub(crate) fn parse_send(args: &[String]) -> Result<Op, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["-t", token] => return Ok(Op::ZfsSend(Send::Resume { token: (*token).to_owned() })),
        ["-nvt", token] => return Ok(Op::ZfsSendDryRun { token: (*token).to_owned() }),
        _ => {}
    }
    let mut options = Options::parse(args, &["-w"], &["-I"])?;
    let raw = options.flags.contains("-w");
    let from = options.values.remove("-I");
    let [to] = options.positionals()?;
    let Some((dataset, _)) = split_snapshot(&to) else {
        return Err(format!("zfs send takes one DATASET@SNAPSHOT, got {to:?}"));
    };
    let from = match from {
        None => None,
        Some(from) => {
            // `-I @FROM` abbreviates `-I DATASET@FROM`.
            let whole = if from.starts_with('@') { format!("{dataset}{from}") } else { from.clone() };
            match split_snapshot(&whole) {
                Some((from_dataset, _)) if from_dataset == dataset => Some(whole),
                _ => return Err(format!("-I takes @FROM or {dataset}@FROM, got {from:?}")),
            }
        }
    };
    Ok(Op::ZfsSend(Send::Snapshots { raw, from, to }))
}

/// `zfs recv` in ari's one form, or `zfs recv -A DATASET`.
pub(crate) fn parse_recv(args: &[String]) -> Result<Op, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if let ["-A", dataset] = words.as_slice() {
        return Ok(Op::ZfsRecvAbort { dataset: dataset_name(dataset)? });
    }
    let (resumable, rest) = match words.split_first() {
        Some((&"-s", rest)) => (true, rest),
        _ => (false, words.as_slice()),
    };
    let (force, dataset) = match rest.strip_prefix(&RECEIVE_OPTIONS[..]) {
        Some(["-F", dataset]) => (true, dataset),
        Some([dataset]) => (false, dataset),
        _ => {
            return Err(format!(
                "the fake zfs recv takes only [-s] {} [-F] DATASET, or -A DATASET",
                RECEIVE_OPTIONS.join(" ")
            ))
        }
    };
    Ok(Op::ZfsRecv(Receive { dataset: dataset_name(dataset)?, resumable, force }))
}

/// `zfs hold TAG SNAPSHOT` and `zfs release TAG SNAPSHOT`: the tag and the snapshot.
pub(crate) fn parse_hold(args: &[String]) -> Result<(String, String), String> {
    let [tag, name] = Options::parse(args, &[], &[])?.positionals()?;
    if split_snapshot(&name).is_none() {
        return Err(format!("a hold is placed on one DATASET@SNAPSHOT, got {name:?}"));
    }
    Ok((tag, name))
}

/// `zfs holds -H SNAPSHOT`: the snapshot.
pub(crate) fn parse_holds(args: &[String]) -> Result<String, String> {
    let options = Options::parse(args, &["-H"], &[])?;
    options.flag("-H")?;
    let [name] = options.positionals()?;
    if split_snapshot(&name).is_none() {
        return Err(format!("zfs holds takes one DATASET@SNAPSHOT, got {name:?}"));
    }
    Ok(name)
}

fn split_snapshot(name: &str) -> Option<(&str, &str)> {
    name.split_once('@').filter(|(dataset, snapshot)| {
        !dataset.is_empty() && !dataset.starts_with('-') && !snapshot.is_empty() && !snapshot.contains('@')
    })
}

fn dataset_name(name: &str) -> Result<String, String> {
    if name.is_empty() || name.starts_with('-') || name.contains('@') {
        return Err(format!("expected a dataset, got {name:?}"));
    }
    Ok(name.to_owned())
}

/// The snapshot `name`, if it exists.
fn find<'a>(state: &'a State, name: &str) -> Option<&'a ZfsSnapshot> {
    state.zfs_snapshots.iter().find(|snapshot| snapshot.name == name)
}

/// The snapshots of `dataset`, oldest (by `createtxg`) first.
pub(crate) fn snapshots_of<'a>(state: &'a State, dataset: &str) -> Vec<&'a ZfsSnapshot> {
    let mut snapshots: Vec<&ZfsSnapshot> = state
        .zfs_snapshots
        .iter()
        .filter(|snapshot| snapshot.name.split_once('@').is_some_and(|(of, _)| of == dataset))
        .collect();
    snapshots.sort_by_key(|snapshot| snapshot.createtxg);
    snapshots
}

/// Whether `name` exists; a pool's root exists when any dataset of it does.
fn dataset_exists(state: &State, name: &str) -> bool {
    state.datasets.contains(name)
        || (!name.contains('/') && state.datasets.iter().any(|dataset| pool_of(dataset) == name))
}

/// `zfs hold TAG SNAPSHOT`.
pub(crate) fn hold(state: &mut State, tag: &str, name: &str) -> Outcome {
    let (dataset, _) = name.split_once('@').expect("checked by parse");
    if !state.datasets.contains(dataset) {
        return no_dataset(dataset);
    }
    let at = now(state);
    let fail = |reason: &str| Outcome::fail(1, format!("cannot hold snapshot '{name}': {reason}"));
    match state.zfs_snapshots.iter_mut().find(|snapshot| snapshot.name == name) {
        None => fail("dataset does not exist"),
        Some(snapshot) if snapshot.holds.contains_key(tag) => fail("tag already exists on this dataset"),
        Some(snapshot) => {
            snapshot.holds.insert(tag.to_owned(), at);
            Outcome::ok("")
        }
    }
}

/// `zfs release TAG SNAPSHOT`.
pub(crate) fn release(state: &mut State, tag: &str, name: &str) -> Outcome {
    let (dataset, _) = name.split_once('@').expect("checked by parse");
    if !state.datasets.contains(dataset) {
        return no_dataset(dataset);
    }
    let fail =
        |reason: &str| Outcome::fail(1, format!("cannot release hold from snapshot '{name}': {reason}"));
    match state.zfs_snapshots.iter_mut().find(|snapshot| snapshot.name == name) {
        None => fail("dataset does not exist"),
        Some(snapshot) => match snapshot.holds.remove(tag) {
            Some(_) => Outcome::ok(""),
            None => fail("no such tag on this dataset"),
        },
    }
}

/// `zfs holds -H SNAPSHOT`: `SNAPSHOT\tTAG\tTIME` per hold, by tag, the time as OpenZFS
/// prints it (`%a %b %e %H:%M %Y`), in UTC where OpenZFS uses the local zone.
pub(crate) fn holds(state: &State, name: &str) -> io::Result<Outcome> {
    let Some(snapshot) = find(state, name) else {
        return Ok(Outcome::fail(
            1,
            format!("cannot open '{name}': dataset does not exist\nno datasets available"),
        ));
    };
    let mut text = String::new();
    for (tag, at) in &snapshot.holds {
        let when = jiff::Timestamp::from_second(*at)
            .map_err(io::Error::other)?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%a %b %e %H:%M %Y")
            .to_string();
        text.push_str(&format!("{name}\t{tag}\t{when}\n"));
    }
    Ok(Outcome::ok(text))
}

/// `zfs send -nvt TOKEN`: the token's contents and the size of what `zfs send -t` would
/// send, on stdout, as OpenZFS prints them for a dry run.
pub(crate) fn dry_run(state: &State, token: &str) -> Outcome {
    let (token, header) = match resume(state, token) {
        Ok(resumed) => resumed,
        Err(refused) => return refused,
    };
    let to = &token.toname;
    let size = nice_bytes(header.stream_len());
    let what = match header.from_guid {
        Some(_) => {
            let (dataset, _) = to.split_once('@').expect("checked by resume");
            let from = snapshots_of(state, dataset)
                .into_iter()
                .find(|snapshot| Some(snapshot.guid) == header.from_guid)
                .expect("checked by resume");
            format!("send from {} to {to}", from.name)
        }
        None => format!("full send of {to}"),
    };
    Outcome::ok(format!("{}{what} estimated size is {size}\n", token.contents()))
}

/// `zfs recv -A DATASET`: drops a partial receive's state, and the dataset itself when the
/// partial receive was a full stream's, which created it.
pub(crate) fn abort(state: &mut State, dataset: &str) -> Outcome {
    if !state.datasets.contains(dataset) {
        // zfs then prints its usage and exits 2.
        return Outcome::fail(2, format!("cannot open '{dataset}': dataset does not exist"));
    }
    let Some(token) = state.resume_tokens.remove(dataset) else {
        return Outcome::fail(1, format!("'{dataset}' does not have any resumable receive state to abort"));
    };
    let full = ResumeToken::decode(&token).is_ok_and(|token| token.fromguid.is_none());
    if full && snapshots_of(state, dataset).is_empty() {
        state.datasets.remove(dataset);
        state.dataset_properties.remove(dataset);
    }
    Outcome::ok("")
}

/// A call's work on a pipe, done without the state directory's lock.
pub(crate) enum Streaming<'a> {
    /// Writes this stream to stdout.
    Send(StreamHeader),
    /// Reads a stream from stdin.
    Receive(&'a Receive),
}

/// The streaming work of `op`, if it is a send or a receive: for a send, the stream that
/// the state allows, or its refusal.
pub(crate) fn streaming<'a>(op: &'a Op, state: &State) -> Option<Result<Streaming<'a>, Outcome>> {
    match op {
        Op::ZfsSend(send) => Some(plan_send(send, state).map(Streaming::Send)),
        Op::ZfsRecv(receive) => Some(Ok(Streaming::Receive(receive))),
        _ => None,
    }
}

impl Streaming<'_> {
    /// Does the work; `dir` is the state directory, whose lock this takes only briefly.
    pub(crate) fn run(&self, dir: &Path) -> io::Result<Outcome> {
        match self {
            Streaming::Send(header) => Ok(write_stream(header)),
            Streaming::Receive(receive) => receive_stream(dir, receive),
        }
    }
}

/// The stream of `send`, as the state stands, or OpenZFS's refusal (which writes nothing).
fn plan_send(send: &Send, state: &State) -> Result<StreamHeader, Outcome> {
    let (raw, from, to) = match send {
        Send::Resume { token } => return resume(state, token).map(|(_, header)| header),
        Send::Snapshots { raw, from, to } => (*raw, from, to),
    };
    let (dataset, _) = to.split_once('@').expect("checked by parse");
    let Some(from) = from else {
        let snapshot = find(state, to).ok_or_else(|| no_dataset(to))?;
        return Ok(header(state, dataset, raw, None, vec![snapshot], None));
    };
    if !state.datasets.contains(dataset) {
        return Err(no_dataset(dataset));
    }
    let to_snapshot = find(state, to).ok_or_else(|| no_dataset(to))?;
    // OpenZFS 2.1's `-I` path warns in these words, and exits 1.
    let Some(from_snapshot) = find(state, from) else {
        return Err(Outcome::fail(
            1,
            format!("WARNING: could not send {to}:\nincremental source ({from}) does not exist"),
        ));
    };
    if from_snapshot.createtxg >= to_snapshot.createtxg {
        return Err(Outcome::fail(
            1,
            format!("WARNING: could not send {to}:\nincremental source ({from}) is not earlier than it"),
        ));
    }
    let between = snapshots_of(state, dataset)
        .into_iter()
        .filter(|snapshot| {
            (from_snapshot.createtxg + 1..=to_snapshot.createtxg).contains(&snapshot.createtxg)
        })
        .collect();
    Ok(header(state, dataset, raw, Some(from_snapshot.guid), between, None))
}

fn header(
    state: &State,
    dataset: &str,
    raw: bool,
    from_guid: Option<u64>,
    snapshots: Vec<&ZfsSnapshot>,
    resume_bytes: Option<u64>,
) -> StreamHeader {
    StreamHeader {
        dataset: dataset.to_owned(),
        raw,
        from_guid,
        snapshots: snapshots
            .into_iter()
            .map(|snapshot| tests::fakes::stream::StreamSnapshot {
                name: snapshot.name.split_once('@').map_or("", |(_, name)| name).to_owned(),
                guid: snapshot.guid,
                creation: snapshot.creation,
            })
            .collect(),
        payload_bytes: state.send_payload_bytes,
        resume_bytes,
    }
}

/// The token `text` and the stream that resumes it, or OpenZFS's refusal: `zfs send -t`
/// fails with status 255 (zfs returns libzfs's -1 from `main`).
fn resume(state: &State, text: &str) -> Result<(ResumeToken, StreamHeader), Outcome> {
    let fail = |reason: String| Outcome::fail(255, format!("cannot resume send: {reason}"));
    let token = ResumeToken::decode(text).map_err(fail)?;
    let Some((dataset, _)) = split_snapshot(&token.toname) else {
        return Err(fail("resume token is corrupt".to_owned()));
    };
    let snapshots = snapshots_of(state, dataset);
    let by_guid = |guid: u64| snapshots.iter().copied().find(|snapshot| snapshot.guid == guid);
    let Some(to) = by_guid(token.toguid) else {
        let reason = match find(state, &token.toname) {
            Some(_) => format!("'{}' is no longer the same snapshot used in the initial send", token.toname),
            None => format!("'{}' used in the initial send no longer exists", token.toname),
        };
        return Err(fail(reason));
    };
    if let Some(fromguid) = token.fromguid {
        if by_guid(fromguid).is_none() {
            return Err(fail(format!("incremental source {fromguid:#x} no longer exists")));
        }
    }
    let header = header(state, dataset, token.rawok, token.fromguid, vec![to], Some(token.bytes));
    Ok((token, header))
}

/// Writes the stream of `header` to stdout, flushing each chunk.
fn write_stream(header: &StreamHeader) -> Outcome {
    let mut sending = 0;
    let mut write = || -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(header.line().as_bytes())?;
        out.flush()?;
        let chunk = vec![PAYLOAD_BYTE; CHUNK];
        for index in 0..header.snapshots.len() {
            sending = index;
            let mut left = header.payload_of(index);
            while left > 0 {
                let length = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                out.write_all(&chunk[..length])?;
                out.flush()?;
                left -= length as u64;
            }
        }
        out.write_all(format!("{STREAM_END}\n").as_bytes())?;
        out.flush()
    };
    match write() {
        Ok(()) => Outcome::ok(""),
        Err(err) => {
            let name = format!("{}@{}", header.dataset, header.snapshots[sending].name);
            let reason = match err.kind() {
                io::ErrorKind::BrokenPipe => "Broken pipe".to_owned(),
                _ => err.to_string(),
            };
            Outcome::fail(1, format!("warning: cannot send '{name}': {reason}"))
        }
    }
}

/// Reads a stream from stdin into `receive.dataset`: see the module documentation.
fn receive_stream(dir: &Path, receive: &Receive) -> io::Result<Outcome> {
    let mut input = BufReader::new(io::stdin().lock());
    let mut line = Vec::new();
    (&mut input).take(MAX_HEADER).read_until(b'\n', &mut line)?;
    if line.pop() != Some(b'\n') {
        return Ok(Outcome::fail(1, "cannot receive: failed to read from stream"));
    }
    let header = match String::from_utf8(line).ok().as_deref().and_then(StreamHeader::parse) {
        Some(header) if !header.snapshots.is_empty() => header,
        _ => return Ok(Outcome::fail(1, "cannot receive: invalid stream (bad magic number)")),
    };
    {
        let _lock = fakes::lock(dir)?;
        let mut state = fakes::read_state(dir)?;
        // A refused receive changes nothing, whatever `begin` did before it refused.
        if let Err(refused) = begin(&mut state, receive, &header) {
            return Ok(refused);
        }
        fakes::write_state(dir, &state)?;
    }
    let count = header.snapshots.len();
    for index in 0..count {
        let wanted = header.payload_of(index);
        let got = read_payload(&mut input, wanted)?;
        let complete = got == Some(wanted) && (index + 1 < count || read_end(&mut input)?);
        let failed = update(dir, |state| {
            if complete {
                commit(state, receive, &header, index);
                return None;
            }
            let before = if index == 0 { header.resume_bytes.unwrap_or(0) } else { 0 };
            let token = token(&header, index, before + got.unwrap_or(0));
            Some(cut(state, receive, &header, index, token, got.is_none()))
        })?;
        if let Some(failed) = failed {
            return Ok(failed);
        }
    }
    Ok(Outcome::ok(""))
}

/// Runs `change` on the state under the lock, and writes the state back.
fn update<T>(dir: &Path, change: impl FnOnce(&mut State) -> T) -> io::Result<T> {
    let _lock = fakes::lock(dir)?;
    let mut state = fakes::read_state(dir)?;
    let result = change(&mut state);
    fakes::write_state(dir, &state)?;
    Ok(result)
}

/// Reads up to `wanted` payload bytes: how many came before the end of the stream, or
/// `None` when one was not a payload byte (a stream damaged on the way).
fn read_payload(input: &mut impl Read, wanted: u64) -> io::Result<Option<u64>> {
    let mut buffer = vec![0; CHUNK];
    let mut got = 0;
    while got < wanted {
        let want = usize::try_from(wanted - got).unwrap_or(CHUNK).min(CHUNK);
        let read = match input.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if buffer[..read].iter().any(|byte| *byte != PAYLOAD_BYTE) {
            return Ok(None);
        }
        got += read as u64;
    }
    Ok(Some(got))
}

/// Whether the stream's trailer comes next.
fn read_end(input: &mut impl BufRead) -> io::Result<bool> {
    let mut line = Vec::new();
    input.take(STREAM_END.len() as u64 + 1).read_until(b'\n', &mut line)?;
    Ok(line == format!("{STREAM_END}\n").as_bytes())
}

/// The resume token of a receive of the snapshot at `index` in `header`, `bytes` of whose
/// payload are in.
fn token(header: &StreamHeader, index: usize, bytes: u64) -> ResumeToken {
    let snapshot = &header.snapshots[index];
    ResumeToken {
        fromguid: header.source_of(index),
        object: 1,
        offset: bytes,
        bytes,
        toguid: snapshot.guid,
        toname: format!("{}@{}", header.dataset, snapshot.name),
        rawok: header.raw,
    }
}

/// How OpenZFS's messages about the snapshot at `index` begin.
fn receiving(header: &StreamHeader, index: usize) -> &'static str {
    match (index, header.resume_bytes, header.source_of(index)) {
        (0, Some(_), _) => "cannot receive resume stream",
        (_, _, None) => "cannot receive new filesystem stream",
        (_, _, Some(_)) => "cannot receive incremental stream",
    }
}

/// Checks that the receive may start, as OpenZFS does once it has a stream's first
/// record, and prepares the dataset: with `-s`, the resume token is set from here on.
fn begin(state: &mut State, receive: &Receive, header: &StreamHeader) -> Result<(), Outcome> {
    let dataset = receive.dataset.as_str();
    let prefix = receiving(header, 0);
    let fail = |reason: String| Err(Outcome::fail(1, format!("{prefix}: {reason}")));
    let exists = state.datasets.contains(dataset);
    let partial =
        || format!("destination {dataset} contains partially-complete state from \"zfs receive -s\".");
    if let Some(done) = header.resume_bytes {
        if !exists {
            return fail(format!("destination '{dataset}' does not exist"));
        }
        let first = &header.snapshots[0];
        let resumes =
            state.resume_tokens.get(dataset).and_then(|text| ResumeToken::decode(text).ok()).is_some_and(
                |token| {
                    token.toguid == first.guid && token.fromguid == header.from_guid && token.bytes == done
                },
            );
        if !resumes {
            // OpenZFS's kernel refuses it with EINVAL, which zfs explains only under -s.
            return fail(match receive.resumable {
                true => "kernel modules must be upgraded to receive this stream.".to_owned(),
                false => "invalid stream".to_owned(),
            });
        }
    } else if header.from_guid.is_none() {
        if exists {
            if !receive.force {
                return fail(format!("destination '{dataset}' exists\nmust specify -F to overwrite it"));
            }
            if state.resume_tokens.contains_key(dataset) {
                return fail(partial());
            }
            if let Some(first) = snapshots_of(state, dataset).first() {
                return fail(format!(
                    "destination has snapshots (eg. {})\nmust destroy them to overwrite it",
                    first.name
                ));
            }
        } else {
            let Some((parent, _)) = dataset.rsplit_once('/') else {
                return fail(format!("destination '{dataset}' does not exist"));
            };
            if !dataset_exists(state, parent) {
                return Err(Outcome::fail(
                    1,
                    format!(
                        "cannot open '{parent}': dataset does not exist\n{prefix}: unable to restore to destination"
                    ),
                ));
            }
        }
        if receive.resumable {
            // A full receive creates the dataset first; OpenZFS keeps it, inconsistent and
            // without snapshots, when the stream breaks.
            state.datasets.insert(dataset.to_owned());
        }
        state.dataset_properties.remove(dataset);
    } else {
        if !exists {
            return fail(format!("destination '{dataset}' does not exist"));
        }
        if state.resume_tokens.contains_key(dataset) {
            return fail(partial());
        }
        let mine = snapshots_of(state, dataset);
        let Some(base) = mine.iter().position(|snapshot| Some(snapshot.guid) == header.from_guid) else {
            return fail(format!("most recent snapshot of {dataset} does not\nmatch incremental source"));
        };
        let later: Vec<String> = mine[base + 1..].iter().map(|snapshot| snapshot.name.clone()).collect();
        if !later.is_empty() {
            if !receive.force {
                return fail(format!("destination {dataset} has been modified\nsince most recent snapshot"));
            }
            if mine[base + 1..].iter().any(|snapshot| !snapshot.holds.is_empty()) {
                return fail("dataset is busy".to_owned());
            }
            // -F rolls the destination back to the incremental source.
            state.zfs_snapshots.retain(|snapshot| !later.contains(&snapshot.name));
        }
    }
    if let Some(taken) = header
        .snapshots
        .iter()
        .map(|snapshot| format!("{dataset}@{}", snapshot.name))
        .find(|name| find(state, name).is_some())
    {
        return Err(Outcome::fail(1, format!("cannot restore to {taken}: destination already exists")));
    }
    if state.datasets.contains(dataset) {
        set_received_properties(state, dataset, header.raw);
    }
    if receive.resumable {
        let done = header.resume_bytes.unwrap_or(0);
        state.resume_tokens.insert(dataset.to_owned(), token(header, 0, done).encode());
    }
    Ok(())
}

/// What `-o readonly=on -o canmount=noauto` and a raw stream leave on the dataset.
fn set_received_properties(state: &mut State, dataset: &str, raw: bool) {
    let properties = state.dataset_properties.entry(dataset.to_owned()).or_default();
    properties.insert("readonly".to_owned(), "on".to_owned());
    properties.insert("canmount".to_owned(), "noauto".to_owned());
    if raw {
        properties.insert("received_raw".to_owned(), "yes".to_owned());
    }
}

/// The snapshot at `index` is all in: it exists from now on, with the sender's GUID and
/// creation time and the next `createtxg` of the receiving pool.
fn commit(state: &mut State, receive: &Receive, header: &StreamHeader, index: usize) {
    let dataset = receive.dataset.as_str();
    state.datasets.insert(dataset.to_owned());
    set_received_properties(state, dataset, header.raw);
    let sent = &header.snapshots[index];
    let createtxg = state.next_txg(dataset);
    state.zfs_snapshots.push(ZfsSnapshot {
        name: format!("{dataset}@{}", sent.name),
        creation: sent.creation,
        guid: sent.guid,
        createtxg,
        ..ZfsSnapshot::default()
    });
    state.resume_tokens.remove(dataset);
    if receive.resumable && index + 1 < header.snapshots.len() {
        state.resume_tokens.insert(dataset.to_owned(), token(header, index + 1, 0).encode());
    }
}

/// The stream ended, or went bad, inside the snapshot at `index`: with `-s` its token
/// stays, saying how much is in; without, nothing of it stays.
fn cut(
    state: &mut State,
    receive: &Receive,
    header: &StreamHeader,
    index: usize,
    token: ResumeToken,
    damaged: bool,
) -> Outcome {
    let dataset = receive.dataset.as_str();
    let prefix = receiving(header, index);
    let reason = if damaged { "checksum mismatch" } else { "incomplete stream" };
    if !receive.resumable {
        return Outcome::fail(1, format!("{prefix}: {reason}"));
    }
    let token = token.encode();
    state.resume_tokens.insert(dataset.to_owned(), token.clone());
    Outcome::fail(
        1,
        format!(
            "{prefix}: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\n\
             A resuming stream can be generated on the sending system by running:\n    zfs send -t {token}"
        ),
    )
}
