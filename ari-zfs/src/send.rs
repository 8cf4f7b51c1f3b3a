//! The zfs-send backend: ari on the receiving server pulls a dataset's snapshots from the
//! sending host with `zfs send`, through ssh and ari, into a dataset of its own (or one on
//! `zfs_hostname`), and keeps the base of the next incremental send held on the sender.
//!
//! A run: with `snapshots: take`, a new prefixed snapshot on the sender; then a receive that an
//! earlier run left partial is resumed from its token; then both sides are listed, the plan of
//! module replication says what to send (the first send whole, later ones `-I` from the newest
//! snapshot both have, by GUID), each transfer streams `zfs send | [pv -L] | zfs recv`, and
//! once the last succeeded the job's hold moves to what the receiver now has. Expiry on the
//! receiver is the zfs backend's; the sender's own expiry (an ari zfs job) keeps held snapshots.
//!
//! Nothing the sender's key may run destroys or receives there: `zfs send` of the job's dataset
//! (from any of its snapshots to a prefixed one), `zfs hold`/`release` with the job's tag, the
//! listing, and a resume that the host's filter hands to a script which decodes the token and
//! refuses one for another dataset (SECURITY.md).

use ari_core::core_settings::BWLIMIT;
use ari_core::plugin::{BackupBackend, HistoryQuery, JobContext, PluginError, Retention, StoredBackup, Tool};
use ari_core::sample::StoreCheck;
use ari_core::step::{Chars, Command, CommandPattern, Handover, Host, Phase, Step, Work};
use ari_core::ConfigError;

use crate::backend::{history_query, pool_check, retention_listed_by, rules, snapshot_step};
use crate::names::{check_hold_tag, ZFS_NAME};
use crate::replication::{
    hold_moves, plan, read_listing, Diverged, Plan, Snapshot, Transfer, LISTING_COLUMNS,
};
use crate::send_settings::*;
use crate::settings::{
    DATASET_NAME, RSYNC_DST, RSYNC_OPTIONS, RSYNC_PATH, ZFS_HOSTNAME, ZFS_SNAPSHOT_PREFIX,
};

/// The zfs send replication backend, registered as `zfs-send`.
pub struct ZfsSendBackend;

ari_core::register_backend!(ZfsSendBackend);

/// The characters of a receive resume token (`1-e604ea4bf-e0-789c63...`).
pub const RESUME_TOKEN: Chars = Chars::new("a zfs receive resume token", "0-9a-f-");

/// The variable in which a host's filter hands a resume token to [`RESUME`].
pub const RESUME_VARIABLE: &str = "ARI_ZFS_RESUME_TOKEN";

/// What a sender's filter runs for `zfs send -t TOKEN` (`$1` the job's dataset, `$2` its
/// prefix, the token in [`RESUME_VARIABLE`]): a token names its own snapshot, which no pattern
/// can bound, so the script asks zfs what the token would send (`zfs send -nvt`, which sends
/// nothing) and resumes only a send of one of the dataset's own prefixed snapshots.
///
/// The token's `toname` alone proves nothing: `zfs send -t` finds the snapshot it sends by the
/// token's `toguid`, searching from `toname`'s dataset up through the whole pool, and anyone
/// can write a token (its checksum is a plain fletcher4 of the payload). So the snapshot that
/// `toname` names must also have the GUID `toguid` (zfs prints it as `0x` and lowercase hex).
/// Lines an extra pair of a forged token adds to zfs's printout make `toname` or `toguid` more
/// than one line, which the character checks refuse.
pub const RESUME: &str = r#"t=${ARI_ZFS_RESUME_TOKEN-}; case $t in ''|*[!0-9a-f-]*) echo "ari-zfs-resume: refused: no token" >&2; exit 3;; esac; d=$(zfs send -nvt "$t" 2>&1) || { printf '%s\n' "$d" >&2; exit 3; }; n=$(printf '%s\n' "$d" | sed -n 's/^[[:space:]]*toname = //p'); g=$(printf '%s\n' "$d" | sed -n 's/^[[:space:]]*toguid = 0x//p'); case $n in "$1@$2"?*) ;; *) n= ;; esac; case ${n#"$1@"}/$g in /* | */ | */*[!0-9a-f]* | *[!A-Za-z0-9_.:-]*/*) echo "ari-zfs-resume: refused: not a token of one snapshot $1@$2..." >&2; exit 3;; esac; [ "$(printf '%x' "$(zfs get -H -p -o value guid "$n")")" = "$g" ] || { echo "ari-zfs-resume: refused: the token resumes 0x$g, not $n" >&2; exit 3; }; exec zfs send -t "$t""#;

/// Lists the sender's snapshots (`$1` the dataset), then the holds of each that has any, as
/// `zfs holds -H` prints them: one query, so that the plan and the holds are of one moment.
const SENDER_LISTING: &str = r#"l=$(zfs list -H -p -t snapshot -o name,guid,createtxg,creation,userrefs -d 1 "$1") || exit 3; [ -z "$l" ] || printf '%s\n' "$l"; tab=$(printf '\t'); printf '%s\n' "$l" | while IFS=$tab read -r n g t c u; do [ -z "$n" ] || [ "$u" = 0 ] || zfs holds -H "$n" || exit 3; done"#;

/// Lists the receiving dataset (`$1`): `absent` when it does not exist (and its parent does),
/// else `token<TAB>TOKEN` (`-` when no receive is partial), then its snapshots.
const RECEIVER_LISTING: &str = r#"if zfs list -H -o name "$1" >/dev/null 2>&1; then t=$(zfs get -H -p -o value receive_resume_token "$1") || exit 3; printf 'token\t%s\n' "$t"; zfs list -H -p -t snapshot -o name,guid,createtxg,creation,userrefs -d 1 "$1" || exit 3; else zfs list -H -o name "${1%/*}" >/dev/null || exit 3; echo absent; fi"#;

/// The receiving dataset's snapshots with their creation and holds, as the zfs backend's expiry
/// reads them (`$1` the dataset); nothing while the dataset does not exist (and its parent
/// does, else it fails).
const RECEIVER_EXPIRY_LISTING: &str = r#"if zfs list -H -o name "$1" >/dev/null 2>&1; then exec zfs list -H -p -t snapshot -o name,guid,createtxg,creation,userrefs -d 1 "$1"; fi; zfs list -H -o name "${1%/*}" >/dev/null"#;

/// The receiving dataset's snapshots, from [`RECEIVER_EXPIRY_LISTING`], as the zfs backend's
/// expiry reads them: refused when their dates go back in the order the receiver made them (by
/// more than an hour). A received snapshot keeps the date its stream carries, which the sender
/// writes: a sender that dates new snapshots before those the receiver has (a clock set back, or
/// a forged stream) would make expiry here keep the new and destroy the real history, so
/// expiry destroys nothing until an admin looks.
fn dated_in_order(printed: &str, dataset: &str) -> Result<String, String> {
    let snapshots = read_listing(printed, dataset)?;
    let mut newest: Option<&Snapshot> = None;
    for snapshot in &snapshots {
        if let Some(before) =
            newest.filter(|before| snapshot.creation < before.creation - ari_core::plugin::CLOCK_SLACK)
        {
            return Err(format!(
                "{dataset}@{} was received after {dataset}@{} but is dated {} earlier: the sender's clock went back, or it dates its snapshots falsely; expiry destroys nothing here until the out-of-order snapshots are looked at (and destroyed by hand if they are not real)",
                snapshot.name,
                before.name,
                ari_core::kinds::shown(&format!("{}s", before.creation - snapshot.creation))
            ));
        }
        if newest.is_none_or(|before| snapshot.creation > before.creation) {
            newest = Some(snapshot);
        }
    }
    Ok(snapshots.iter().map(|s| format!("{dataset}@{}\t{}\t{}\n", s.name, s.creation, s.userrefs)).collect())
}

/// The job's settings, checked.
#[derive(Clone)]
struct Replica {
    sender: Host,
    source: String,
    receiver: Host,
    dataset: String,
    prefix: String,
    tag: String,
    raw: bool,
    force: bool,
    bwlimit: Option<u64>,
}

fn replica(job: &JobContext) -> Result<Replica, ConfigError> {
    let tag = job.get(&HOLD_TAG_SETTING).unwrap_or_else(|| format!("ari-send-{}", job.job().label));
    check_hold_tag(&tag).map_err(|why| job.error_at("hold_tag", format!("`{tag}` {why}")))?;
    Ok(Replica {
        sender: job.source_host(),
        source: job.require(&SOURCE_DATASET)?,
        receiver: job.get(&ZFS_HOSTNAME).map(|host| Host::named(&host)).unwrap_or(Host::Local),
        dataset: job.require(&DATASET_NAME)?,
        prefix: job.get(&ZFS_SNAPSHOT_PREFIX),
        tag,
        raw: job.get(&RAW_SEND),
        force: job.get(&FORCE_RECEIVE),
        bwlimit: job.get(&BWLIMIT).map(|limit| limit.bytes()),
    })
}

impl Replica {
    /// The parent of the receiving dataset (check() proves it has one).
    fn parent(&self) -> &str {
        self.dataset.rsplit_once('/').map_or(self.dataset.as_str(), |(parent, _)| parent)
    }

    fn sender_listing(&self) -> Command {
        Command::argv(self.sender.clone(), ["sh", "-c", SENDER_LISTING, "ari-zfs-send", &self.source])
    }

    fn receiver_listing(&self) -> Command {
        Command::argv(self.receiver.clone(), ["sh", "-c", RECEIVER_LISTING, "ari-zfs-recv", &self.dataset])
    }

    /// `zfs recv` into the dataset: resumable (`-s`), never mounted (`-u`, `canmount=noauto`),
    /// read-only, and never at the sender's mount point (`-x mountpoint`); `-F` only when
    /// `force_receive` says so and `force` asks.
    fn receive(&self, force: bool) -> Command {
        let mut argv = vec!["zfs", "recv", "-s", "-u", "-o", "readonly=on", "-o", "canmount=noauto"];
        argv.extend(["-x", "mountpoint"]);
        if force {
            argv.push("-F");
        }
        argv.push(&self.dataset);
        Command::argv(self.receiver.clone(), argv)
    }

    /// `zfs send` of a transfer, on the sender.
    fn send(&self, transfer: &Transfer) -> Command {
        let mut argv = vec!["zfs".to_string(), "send".to_string()];
        if self.raw {
            argv.push("-w".to_string());
        }
        match transfer {
            Transfer::Full(name) => argv.push(format!("{}@{name}", self.source)),
            Transfer::Incremental { from, to } => argv.extend([
                "-I".to_string(),
                format!("{}@{from}", self.source),
                format!("{}@{to}", self.source),
            ]),
        }
        Command::argv(self.sender.clone(), argv)
    }

    /// A stream from `send` into the receiver, through `pv -L` when `bwlimit` is set.
    fn stream(&self, send: Command, force: bool) -> Work {
        let mut stages = vec![send];
        if let Some(limit) = self.bwlimit {
            stages.push(Command::argv(Host::Local, ["pv", "-q", "-L", &limit.to_string()]));
        }
        stages.push(self.receive(force));
        Work::Stream(stages)
    }

    /// `zfs recv -A`: gives up the receiving dataset's partial receive.
    fn abort_receive(&self) -> Command {
        Command::argv(self.receiver.clone(), ["zfs", "recv", "-A", &self.dataset])
    }

    fn hold(&self, name: &str) -> Command {
        Command::argv(self.sender.clone(), ["zfs", "hold", &self.tag, &format!("{}@{name}", self.source)])
    }

    fn release(&self, name: &str) -> Command {
        Command::argv(self.sender.clone(), ["zfs", "release", &self.tag, &format!("{}@{name}", self.source)])
    }

    /// Every command line the job may run on the sender and the receiver beyond its queries.
    fn patterns(&self) -> Vec<CommandPattern> {
        let (source, prefix) = (&self.source, &self.prefix);
        let raw: &[&str] = if self.raw { &["-w"] } else { &[] };
        let full: Vec<String> = ["zfs", "send"]
            .iter()
            .chain(raw)
            .map(|w| w.to_string())
            .chain([format!("{source}@{prefix}")])
            .collect();
        let incremental: Vec<String> = ["zfs", "send"]
            .iter()
            .chain(raw)
            .map(|w| w.to_string())
            .chain(["-I".to_string(), format!("{source}@{{}}"), format!("{source}@{prefix}{{}}")])
            .collect();
        let (of_source, ours) = (format!("{source}@"), format!("{source}@{prefix}"));
        // What a run holds is always what it sent last, a prefixed snapshot: the key cannot pin
        // the sender's other snapshots. A release may be of any snapshot of the dataset: it
        // only ever removes the job's own tag (one a changed prefix left behind too).
        let mut patterns = vec![
            CommandPattern::argv_then(self.sender.clone(), full, ZFS_NAME),
            CommandPattern::argv_parts(self.sender.clone(), incremental, ZFS_NAME),
            CommandPattern::argv_then(self.sender.clone(), ["zfs", "hold", &self.tag, &ours], ZFS_NAME),
            CommandPattern::argv_then(
                self.sender.clone(),
                ["zfs", "release", &self.tag, &of_source],
                ZFS_NAME,
            ),
        ];
        if self.raw {
            // A raw job never resumes (see main_steps): it gives up the partial receive.
            let abort = ari_core::step::remote_line(&self.abort_receive());
            patterns.push(CommandPattern::exact(self.receiver.clone(), abort));
        } else {
            patterns.push(
                CommandPattern::with_variable(self.sender.clone(), "zfs send -t {}", RESUME_TOKEN).handed_to(
                    Handover::new(
                        ["sh", "-c", RESUME, "ari-zfs-resume", source.as_str(), prefix.as_str()],
                        RESUME_VARIABLE,
                        "{}",
                    ),
                ),
            );
        }
        for force in [false, true].into_iter().filter(|force| !force || self.force) {
            let line = ari_core::step::remote_line(&self.receive(force));
            patterns.push(CommandPattern::exact(self.receiver.clone(), line));
        }
        patterns
    }
}

/// What the receiver's listing says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Receiver {
    /// The dataset does not exist (its parent does).
    Absent,
    /// It exists: its resume token, if a receive is partial, and its snapshots.
    Present { token: Option<String>, snapshots: Vec<Snapshot> },
}

fn read_receiver(printed: &str, dataset: &str) -> Result<Receiver, String> {
    let (first, rest) = printed.split_once('\n').unwrap_or((printed, ""));
    if first == "absent" && rest.trim().is_empty() {
        return Ok(Receiver::Absent);
    }
    let Some(token) = first.strip_prefix("token\t") else {
        return Err(format!("`{}` is not the receiver's listing", ari_core::kinds::shown(first)));
    };
    let token = match token {
        "-" => None,
        token if !token.is_empty() && token.chars().all(|c| RESUME_TOKEN.contains(c)) => {
            Some(token.to_string())
        }
        other => return Err(format!("`{}` is no receive resume token", ari_core::kinds::shown(other))),
    };
    Ok(Receiver::Present { token, snapshots: read_listing(rest, dataset)? })
}

/// The sender's listing and those of its snapshots that the job's tag holds (names after `@`;
/// a hold line of a snapshot the listing does not name is ignored, so that a release is only
/// ever of a snapshot the sender listed).
fn read_sender(printed: &str, dataset: &str, tag: &str) -> Result<(Vec<Snapshot>, Vec<String>), String> {
    let mut listing = String::new();
    let mut held = Vec::new();
    for line in printed.lines().filter(|line| !line.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[..] {
            [_, _, _, _, _] => {
                listing.push_str(line);
                listing.push('\n');
            }
            [name, hold, _] => {
                let snapshot = name.strip_prefix(dataset).and_then(|rest| rest.strip_prefix('@'));
                if let (Some(snapshot), true) = (snapshot, hold == tag) {
                    held.push(snapshot.to_string());
                }
            }
            _ => {
                return Err(format!(
                    "`{}` is neither a snapshot ({LISTING_COLUMNS}) nor a hold as zfs holds -H prints it",
                    ari_core::kinds::shown(line)
                ))
            }
        }
    }
    let snapshots = read_listing(&listing, dataset)?;
    held.retain(|name| snapshots.iter().any(|s| s.name == *name));
    Ok((snapshots, held))
}

impl BackupBackend for ZfsSendBackend {
    fn name(&self) -> &'static str {
        "zfs-send"
    }

    fn summary(&self) -> &'static str {
        "zfs send of a dataset's snapshots from the source host into a ZFS dataset here (or on zfs_hostname), resumable, the base of the next send held on the sender"
    }

    fn names_backups_by_the_second(&self) -> bool {
        true
    }

    /// Its name makes it of zfs's family: a job of it may set zfs's settings, and those it does
    /// not read are refused here.
    fn check(&self, job: &JobContext) -> Result<(), ConfigError> {
        let replica = replica(job)?;
        rules(job)?;
        for (name, set) in [
            ("rsync_dst", job.set_in_the_job_file(&RSYNC_DST)),
            ("rsync_options", job.set_in_the_job_file(&RSYNC_OPTIONS)),
            ("rsync_path", job.set_in_the_job_file(&RSYNC_PATH)),
        ] {
            if set {
                return Err(job.error_at(
                    name,
                    "the zfs-send backend sends snapshots with zfs send, not rsync: drop it",
                ));
            }
        }
        if !replica.dataset.contains('/') {
            return Err(job.error_at(
                "dataset_name",
                format!(
                    "`{}` is a pool: zfs-send receives into a dataset under one, POOL/PATH",
                    replica.dataset
                ),
            ));
        }
        if replica.sender == replica.receiver && replica.source == replica.dataset {
            return Err(job.error_at("dataset_name", "is source_dataset itself, on the same host"));
        }
        let job_keys = &job.job();
        if !job_keys.include.is_empty() {
            return Err(job.error_at("include", "zfs-send sends whole datasets: drop include"));
        }
        if !job_keys.exclude.is_empty() {
            return Err(job.error_at("exclude", "zfs-send sends whole datasets: drop exclude"));
        }
        if job_keys.snapshot.is_some() {
            return Err(job.error_at("snapshot", "zfs-send sends ZFS snapshots itself: drop snapshot"));
        }
        Ok(())
    }

    fn tools(&self, job: &JobContext) -> Vec<Tool> {
        let mut tools = Vec::new();
        if job.get(&BWLIMIT).is_some() {
            tools.push(Tool::new("bwlimit", "pv"));
        }
        let receiver_here = job.get(&ZFS_HOSTNAME).is_none_or(|host| Host::named(&host).is_local());
        if job.source_host().is_local() || receiver_here {
            tools.push(Tool::new("dataset_name", "zfs"));
        }
        // The capacity check reads the receiving pool's health with `zpool status`.
        if receiver_here {
            tools.push(Tool::new("dataset_name", "zpool"));
        }
        tools
    }

    /// The receiving dataset's parent (the dataset itself does not exist before the first
    /// send), and its pool's health.
    fn capacity(&self, job: &JobContext) -> Result<Option<ari_core::capacity::CapacityQuery>, ConfigError> {
        let replica = replica(job)?;
        Ok(Some(crate::capacity::query(replica.receiver.clone(), replica.parent())))
    }

    fn main_steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        let replica = replica(job)?;
        let mut steps = Vec::new();
        if job.get(&SNAPSHOTS) == "take" {
            steps.push(snapshot_step(job, replica.sender.clone(), &replica.source));
        }
        let patterns = replica.patterns();
        let with_patterns = |step: Step| patterns.iter().cloned().fold(step, Step::may_run);

        // A receive an earlier run left partial is resumed first: until it is, the receiving
        // dataset takes no other stream.
        let resume = {
            let replica = replica.clone();
            move |printed: &[&str]| -> Result<Vec<Work>, PluginError> {
                match read_receiver(printed[0], &replica.dataset)? {
                    // A raw job's partial receive is given up and sent again: the filter cannot
                    // tell a raw token from one that sends the dataset's plaintext (zfs send -t
                    // takes its flags from the token, and a token is anyone's to write).
                    Receiver::Present { token: Some(_), .. } if replica.raw => {
                        Ok(vec![Work::Run(replica.abort_receive())])
                    }
                    Receiver::Present { token: Some(token), .. } => {
                        let send = Command::argv(replica.sender.clone(), ["zfs", "send", "-t", &token]);
                        Ok(vec![replica.stream(send, false)])
                    }
                    _ => Ok(Vec::new()),
                }
            }
        };
        steps.push(
            with_patterns(Step::gathering(
                Phase::Main,
                "zfs receive resume",
                vec![replica.receiver_listing()],
                resume,
            ))
            .showing(format!("zfs send -t TOKEN | zfs recv -s ... {}", replica.dataset)),
        );

        let send = {
            let replica = replica.clone();
            move |printed: &[&str]| -> Result<Vec<Work>, PluginError> {
                replicate(&replica, printed[0], printed[1])
            }
        };
        let shown = format!(
            "zfs send {}-I {}@BASE {}@{}... | zfs recv -s -u ... {}; zfs hold {} ...; zfs release {} ...",
            if replica.raw { "-w " } else { "" },
            replica.source,
            replica.source,
            replica.prefix,
            replica.dataset,
            replica.tag,
            replica.tag
        );
        steps.push(
            with_patterns(Step::gathering(
                Phase::Main,
                "zfs send",
                vec![replica.sender_listing(), replica.receiver_listing()],
                send,
            ))
            .showing(shown),
        );
        Ok(steps)
    }

    fn history(&self, job: &JobContext) -> Result<Option<HistoryQuery>, ConfigError> {
        let replica = replica(job)?;
        Ok(Some(history_query(replica.receiver, &replica.dataset)))
    }

    fn store_checks(
        &self,
        job: &JobContext,
        _backups: &[StoredBackup],
    ) -> Result<Vec<StoreCheck>, ConfigError> {
        let replica = replica(job)?;
        Ok(vec![pool_check(job, replica.receiver, &replica.dataset)])
    }

    /// The receiving dataset's expiry; listed by a query that prints nothing while the dataset
    /// does not exist (before the first send), so that a first run judges nothing rather than
    /// warning that the store could not be listed.
    fn retention(&self, job: &JobContext) -> Result<Option<Retention>, ConfigError> {
        let replica = replica(job)?;
        let listing = Command::argv(
            replica.receiver.clone(),
            ["sh", "-c", RECEIVER_EXPIRY_LISTING, "ari-zfs-recv", &replica.dataset],
        );
        // A received snapshot keeps the sender's creation.
        retention_listed_by(job, replica.receiver, &replica.dataset, listing, dated_in_order)
            .map(|retention| Some(retention.keeping_their_times()))
    }
}

/// What a run sends, from the two listings, and the hold moves once it succeeded.
fn replicate(replica: &Replica, sender: &str, receiver: &str) -> Result<Vec<Work>, PluginError> {
    let (ours, held) = read_sender(sender, &replica.source, &replica.tag)?;
    let theirs = match read_receiver(receiver, &replica.dataset)? {
        Receiver::Absent => Vec::new(),
        Receiver::Present { token: Some(_), .. } => {
            return Err(PluginError::new(format!(
                "{} holds a partial receive that was not resumed; to give it up: zfs recv -A {}",
                replica.dataset, replica.dataset
            )))
        }
        Receiver::Present { token: None, snapshots } => snapshots,
    };
    // Only a receiver with snapshots after the common base is rolled back (`-F`), by the one
    // incremental stream from that base.
    let mut force = false;
    let planned = match plan(&ours, &theirs, &replica.prefix) {
        Ok(planned) => planned,
        Err(Diverged::SnapshotsAfterTheBase { base, .. }) if replica.force => {
            force = true;
            let base_guid = theirs.iter().find(|s| s.name == base).map(|s| s.guid);
            let from =
                ours.iter().find(|s| Some(s.guid) == base_guid).map(|s| s.name.clone()).unwrap_or(base);
            let newest = ours.iter().rev().find(|s| s.name.starts_with(&replica.prefix));
            match newest {
                Some(newest) if newest.name != from => {
                    Plan::Send(vec![Transfer::Incremental { from, to: newest.name.clone() }])
                }
                _ => {
                    return Err(PluginError::new(format!(
                        "{}: force_receive is set, but the sender has no snapshot after the common one `{from}` to roll the receiver back to",
                        replica.dataset
                    )))
                }
            }
        }
        Err(diverged) => return Err(PluginError::new(format!("{}: {diverged}", replica.dataset))),
    };
    let mut work = Vec::new();
    let base = match planned {
        Plan::NothingToSend => {
            return Err(PluginError::new(format!(
                "{} has no snapshot {}@{}...: nothing to send (is zfs_snapshot_prefix the sender's?)",
                replica.source, replica.source, replica.prefix
            )))
        }
        Plan::UpToDate(base) => base,
        Plan::Send(transfers) => {
            let base = match transfers.last() {
                Some(Transfer::Full(name)) | Some(Transfer::Incremental { to: name, .. }) => name.clone(),
                None => return Err(PluginError::new("an empty plan")),
            };
            for transfer in &transfers {
                work.push(replica.stream(replica.send(transfer), force));
            }
            base
        }
    };
    let moves = hold_moves(&base, &held);
    work.extend(moves.hold.iter().map(|name| Work::Run(replica.hold(name))));
    work.extend(moves.release.iter().map(|name| Work::Run(replica.release(name))));
    Ok(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica() -> Replica {
        Replica {
            sender: Host::named("backup"),
            source: "tank/web".into(),
            receiver: Host::Local,
            dataset: "vault/web".into(),
            prefix: "ari-".into(),
            tag: "ari-send-web".into(),
            raw: false,
            force: false,
            bwlimit: None,
        }
    }

    /// The argv of each command of each work, joined.
    fn shown(work: &[Work]) -> Vec<String> {
        work.iter()
            .map(|work| {
                work.commands().iter().map(ari_core::step::remote_line).collect::<Vec<_>>().join(" | ")
            })
            .collect()
    }

    const SENDER: &str = "tank/web@ari-1\t11\t100\t1700000000\t1\n\
                          tank/web@manual\t12\t110\t1700000100\t0\n\
                          tank/web@ari-2\t13\t120\t1700000200\t0\n\
                          tank/web@ari-1\tari-send-web\tTue Dec  8 10:00 2026\n";

    #[test]
    fn the_first_run_sends_whole_then_holds_what_arrived() {
        let work = replicate(&replica(), "tank/web@ari-1\t11\t100\t1700000000\t0\n", "absent\n").unwrap();
        assert_eq!(
            shown(&work),
            [
                "zfs send tank/web@ari-1 | zfs recv -s -u -o readonly=on -o canmount=noauto -x mountpoint vault/web",
                "zfs hold ari-send-web tank/web@ari-1",
            ]
        );
    }

    #[test]
    fn a_later_run_sends_incrementally_and_moves_the_hold_after() {
        let receiver = "token\t-\nvault/web@ari-1\t11\t5\t1700000000\t0\n";
        let mut limited = replica();
        limited.bwlimit = Some(1 << 20);
        limited.raw = true;
        let work = replicate(&limited, SENDER, receiver).unwrap();
        assert_eq!(
            shown(&work),
            [
                "zfs send -w -I tank/web@ari-1 tank/web@ari-2 | pv -q -L 1048576 | zfs recv -s -u -o readonly=on -o canmount=noauto -x mountpoint vault/web",
                "zfs hold ari-send-web tank/web@ari-2",
                "zfs release ari-send-web tank/web@ari-1",
            ]
        );
    }

    #[test]
    fn an_up_to_date_receiver_gets_nothing_and_the_hold_stays() {
        let receiver = "token\t-\nvault/web@ari-2\t13\t5\t1700000200\t0\n";
        let sender = SENDER.replace("tank/web@ari-1\tari-send-web", "tank/web@ari-2\tari-send-web");
        assert_eq!(shown(&replicate(&replica(), &sender, receiver).unwrap()), Vec::<String>::new());
        // A hold line of a snapshot the listing does not name is no release's target.
        let ghost = format!("{sender}tank/web@ghost\tari-send-web\tTue Dec  8 10:00 2026\n");
        assert_eq!(shown(&replicate(&replica(), &ghost, receiver).unwrap()), Vec::<String>::new());
        // Another tool's hold is never released.
        let other = SENDER.replace("ari-send-web", "syncoid");
        assert_eq!(
            shown(&replicate(&replica(), &other, receiver).unwrap()),
            ["zfs hold ari-send-web tank/web@ari-2"]
        );
    }

    #[test]
    fn a_diverged_receiver_is_refused_unless_force_receive() {
        let receiver =
            "token\t-\nvault/web@ari-1\t11\t5\t1700000000\t0\nvault/web@local\t99\t6\t1700000100\t0\n";
        let err = replicate(&replica(), SENDER, receiver).unwrap_err().to_string();
        assert!(err.contains("after `ari-1`") && err.contains("force_receive"), "{err}");
        let mut forced = replica();
        forced.force = true;
        let work = replicate(&forced, SENDER, receiver).unwrap();
        assert!(shown(&work)[0].ends_with("-x mountpoint -F vault/web"), "{work:?}");
        let stranger = "token\t-\nvault/web@ari-2\t77\t5\t1700000200\t0\n";
        let err = replicate(&forced, SENDER, stranger).unwrap_err().to_string();
        assert!(err.contains("none of which the sender has"), "{err}");
    }

    #[test]
    fn a_partial_receive_is_resumed_first_and_never_overwritten() {
        let receiver = "token\t1-abc-de-789c\nvault/web@ari-1\t11\t5\t1700000000\t0\n";
        let err = replicate(&replica(), SENDER, receiver).unwrap_err().to_string();
        assert!(err.contains("zfs recv -A vault/web"), "{err}");
        assert_eq!(
            read_receiver(receiver, "vault/web").unwrap(),
            Receiver::Present {
                token: Some("1-abc-de-789c".into()),
                snapshots: read_listing("vault/web@ari-1\t11\t5\t1700000000\t0\n", "vault/web").unwrap()
            }
        );
        for bad in ["token\t1-abc;id\n", "token\t\n", "nothing\n", "absent\nvault/web@x\t1\t2\t3\t0\n"] {
            assert!(read_receiver(bad, "vault/web").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_receiver_whose_dates_go_back_in_the_order_it_received_them_is_not_expired() {
        let day = 86_400;
        let listing = |rows: &[(&str, u64, i64)]| -> String {
            rows.iter()
                .map(|(name, txg, creation)| format!("vault/web@{name}\t{txg}\t{txg}\t{creation}\t0\n"))
                .collect()
        };
        let honest = listing(&[
            ("ari-1", 10, 1_700_000_000),
            ("ari-2", 20, 1_700_000_000 + day),
            ("ari-3", 30, 1_700_000_000 + day - 600),
        ]);
        assert_eq!(
            dated_in_order(&honest, "vault/web").unwrap(),
            "vault/web@ari-1\t1700000000\t0\nvault/web@ari-2\t1700086400\t0\nvault/web@ari-3\t1700085800\t0\n",
            "ten minutes back is a clock's jitter"
        );
        let forged = listing(&[
            ("ari-real-1", 10, 1_700_000_000 + 2 * day),
            ("ari-forged-3", 20, 1_700_000_000 + 3600),
        ]);
        let err = dated_in_order(&forged, "vault/web").unwrap_err();
        assert!(err.contains("ari-forged-3 was received after vault/web@ari-real-1"), "{err}");
        assert!(dated_in_order("vault/web@x\t1\t2\n", "vault/web").is_err(), "a listing of other columns");
    }

    #[test]
    fn every_command_a_plan_runs_on_the_sender_matches_its_patterns() {
        let mut replica = replica();
        replica.raw = true;
        replica.force = true;
        let receiver_host = Host::named("vault");
        replica.receiver = receiver_host;
        let patterns = replica.patterns();
        let allowed = |command: &Command| {
            patterns
                .iter()
                .any(|p| p.host() == command.host() && p.allows(&ari_core::step::remote_line(command)))
        };
        let work = replicate(&replica, SENDER, "token\t-\nvault/web@ari-1\t11\t5\t1700000000\t0\n").unwrap();
        for command in work.iter().flat_map(|w| w.commands()) {
            assert!(command.host().is_local() || allowed(command), "{command}");
        }
        let resume = Command::argv(replica.sender.clone(), ["zfs", "send", "-t", "1-abc-789c"]);
        assert!(!allowed(&resume), "a raw job never resumes: a token cannot be bound to a raw send");
        replica.raw = false;
        assert!(
            replica.patterns().iter().any(|p| p.allows("zfs send -t 1-abc-789c")),
            "a job that is not raw does"
        );
        for line in [
            "zfs send -w -I tank/web@ari-1 tank/other@ari-2",
            "zfs send -w tank/web@manual",
            "zfs destroy tank/web@ari-1",
            "zfs recv vault/web",
            "zfs release other tank/web@ari-1",
            "zfs send -t 1-abc;id",
        ] {
            let command = Command::shell(replica.sender.clone(), line);
            assert!(!allowed(&command), "{line}");
        }
    }
}
