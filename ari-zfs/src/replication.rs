//! What a `zfs send` replication transfers, and which holds it moves, from the two sides'
//! listings: pure functions, so that every case is a table test. (Issue 22's backend builds
//! its steps on these; nothing here runs a command.)
//!
//! A snapshot is known by its GUID, not its name: a snapshot renamed on either side is still the
//! same snapshot, and two snapshots of the same name with different GUIDs are different ones
//! (a receiver that diverged). The newest snapshot the receiver has whose GUID the sender also
//! has is the common base; an incremental send starts there, with `-I` so that every
//! intermediate prefixed snapshot arrives. A receiver with snapshots after that base, or with
//! snapshots but no common one, has diverged: it is reported with what to do, never overwritten.
//!
//! Holds keep the base on the sender: after a receive of `to` succeeded, `to` is held with the
//! job's tag and every other snapshot that carries the tag is released, so that neither side's
//! expiry can destroy the base of the next incremental send.

use std::fmt;

/// One snapshot of a dataset, as `zfs list -H -p -t snapshot -o name,guid,createtxg,creation,userrefs
/// -d 1 DATASET` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its name after `@`.
    pub name: String,
    /// Its GUID: the same snapshot has the same GUID on every pool it was sent to.
    pub guid: u64,
    /// The transaction group it was created in: its order on its own pool.
    pub createtxg: u64,
    /// Its `creation`, seconds since the epoch.
    pub creation: i64,
    /// How many holds it has (any tag).
    pub userrefs: u64,
}

/// The columns the listing must give, in order.
pub const LISTING_COLUMNS: &str = "name,guid,createtxg,creation,userrefs";

/// Reads a listing of `dataset`'s snapshots into snapshots of the dataset itself (a child's are
/// left out), ordered by `createtxg`. A line that is not exactly five tab-separated fields of the
/// expected kinds is an error naming it: a transfer is never planned from a listing half read.
pub fn read_listing(listing: &str, dataset: &str) -> Result<Vec<Snapshot>, String> {
    let mut snapshots = Vec::new();
    for (i, line) in listing.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, guid, createtxg, creation, userrefs] = fields[..] else {
            return Err(format!(
                "line {}: expected {LISTING_COLUMNS} separated by tabs, found `{line}`",
                i + 1
            ));
        };
        let number = |what: &str, text: &str| -> Result<u64, String> {
            text.parse::<u64>().map_err(|_| format!("line {}: {what} `{text}` is not a whole number", i + 1))
        };
        let Some((owner, snapshot)) = name.split_once('@') else {
            return Err(format!("line {}: `{name}` is not a snapshot name", i + 1));
        };
        if owner != dataset {
            continue;
        }
        let creation = i64::try_from(number("creation", creation)?)
            .map_err(|_| format!("line {}: creation `{creation}` is out of range", i + 1))?;
        snapshots.push(Snapshot {
            name: snapshot.to_string(),
            guid: number("guid", guid)?,
            createtxg: number("createtxg", createtxg)?,
            creation,
            userrefs: number("userrefs", userrefs)?,
        });
    }
    snapshots.sort_by_key(|s| s.createtxg);
    let mut guids: Vec<u64> = snapshots.iter().map(|s| s.guid).collect();
    guids.sort_unstable();
    if let Some(twice) = guids.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("two snapshots of {dataset} have the GUID {}", twice[0]));
    }
    Ok(snapshots)
}

/// One `zfs send`: of a whole snapshot, or from a base to a later snapshot with every prefixed
/// one between (`-I`). Names are the sender's, after `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    /// `zfs send DATASET@SNAPSHOT`: the first send, which the receiver creates its dataset from.
    Full(String),
    /// `zfs send -I DATASET@FROM DATASET@TO`.
    Incremental {
        /// The common base.
        from: String,
        /// The sender's newest prefixed snapshot.
        to: String,
    },
}

/// What a run of a replication job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The receiver already holds the sender's newest prefixed snapshot (its name on the sender).
    UpToDate(String),
    /// These transfers, in order.
    Send(Vec<Transfer>),
    /// The sender has no snapshot with the prefix: nothing to send.
    NothingToSend,
}

/// Why a replication cannot go on without the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diverged {
    /// The receiver has snapshots, none of which the sender has (by GUID).
    NoCommonSnapshot {
        /// The receiver's newest snapshot.
        newest: String,
    },
    /// The receiver has snapshots after the common base that the sender does not have.
    SnapshotsAfterTheBase {
        /// The common base, by the receiver's name.
        base: String,
        /// The receiver's snapshots after it, oldest first.
        after: Vec<String>,
    },
    /// The sender's newest prefixed snapshot is older than the common base: the sender's
    /// history went back (a rollback), or its prefixed snapshots were destroyed.
    SenderBehind {
        /// The common base, by the sender's name.
        base: String,
    },
}

impl fmt::Display for Diverged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diverged::NoCommonSnapshot { newest } => write!(
                f,
                "the receiving dataset has snapshots (the newest `{newest}`), none of which the sender has: it is not a copy of this sender's dataset; receive into a new dataset, or destroy the receiving dataset if it is expendable"
            ),
            Diverged::SnapshotsAfterTheBase { base, after } => write!(
                f,
                "the receiving dataset has {} snapshot(s) after `{base}`, the newest one the sender also has ({}): something other than this job wrote to it; destroy them on the receiver (`zfs destroy`) or set force_receive to let `zfs recv -F` destroy them",
                after.len(),
                after.join(", ")
            ),
            Diverged::SenderBehind { base } => write!(
                f,
                "the sender's newest prefixed snapshot is older than `{base}`, which the receiver already has: was the sending dataset rolled back?"
            ),
        }
    }
}

/// What to send, from the sender's and the receiver's snapshots (each ordered by `createtxg`, as
/// [`read_listing`] gives them); only the sender's snapshots whose name starts with `prefix` are
/// sent.
pub fn plan(sender: &[Snapshot], receiver: &[Snapshot], prefix: &str) -> Result<Plan, Diverged> {
    let ours: Vec<&Snapshot> = sender.iter().filter(|s| s.name.starts_with(prefix)).collect();
    let base = receiver
        .iter()
        .enumerate()
        .rev()
        .find_map(|(at, theirs)| Some((at, sender.iter().find(|s| s.guid == theirs.guid)?)));
    let Some((at, base)) = base else {
        if let Some(newest) = receiver.last() {
            return Err(Diverged::NoCommonSnapshot { newest: newest.name.clone() });
        }
        let (Some(oldest), Some(newest)) = (ours.first(), ours.last()) else {
            return Ok(Plan::NothingToSend);
        };
        let mut transfers = vec![Transfer::Full(oldest.name.clone())];
        if oldest.guid != newest.guid {
            transfers.push(Transfer::Incremental { from: oldest.name.clone(), to: newest.name.clone() });
        }
        return Ok(Plan::Send(transfers));
    };
    let after: Vec<String> = receiver[at + 1..].iter().map(|s| s.name.clone()).collect();
    if !after.is_empty() {
        return Err(Diverged::SnapshotsAfterTheBase { base: receiver[at].name.clone(), after });
    }
    let Some(newest) = ours.last() else { return Ok(Plan::NothingToSend) };
    if newest.createtxg < base.createtxg {
        return Err(Diverged::SenderBehind { base: base.name.clone() });
    }
    if newest.guid == base.guid || newest.createtxg == base.createtxg {
        return Ok(Plan::UpToDate(base.name.clone()));
    }
    Ok(Plan::Send(vec![Transfer::Incremental { from: base.name.clone(), to: newest.name.clone() }]))
}

/// The holds to move on the sender once a receive of `base` succeeded: hold `base` with the
/// job's tag unless it has it, then release the tag from every other snapshot that has it
/// (`held`: the sender's snapshots that carry the job's tag, as `zfs holds` lists them).
/// Releasing comes second, so that the chain is held at every moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldMoves {
    /// The snapshot to hold, if not held yet.
    pub hold: Option<String>,
    /// The snapshots to release, after the hold.
    pub release: Vec<String>,
}

/// See [`HoldMoves`].
pub fn hold_moves(base: &str, held: &[String]) -> HoldMoves {
    HoldMoves {
        hold: (!held.iter().any(|name| name == base)).then(|| base.to_string()),
        release: held.iter().filter(|name| *name != base).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATASET: &str = "tank/data";

    /// Snapshots named by `names`, each `name:guid`, created in this order.
    fn snaps(names: &[(&str, u64)]) -> Vec<Snapshot> {
        names
            .iter()
            .enumerate()
            .map(|(i, (name, guid))| Snapshot {
                name: name.to_string(),
                guid: *guid,
                createtxg: 100 + i as u64 * 10,
                creation: 1_700_000_000 + i as i64 * 3600,
                userrefs: 0,
            })
            .collect()
    }

    fn full(name: &str) -> Transfer {
        Transfer::Full(name.into())
    }

    fn inc(from: &str, to: &str) -> Transfer {
        Transfer::Incremental { from: from.into(), to: to.into() }
    }

    #[test]
    fn listings_are_read_strictly_and_ordered_by_createtxg() {
        let listing = "tank/data@ari-2\t22\t300\t1700000300\t1\n\
                       tank/data/child@ari-1\t99\t150\t1700000100\t0\n\
                       tank/data@ari-1\t11\t200\t1700000200\t0\n";
        let read = read_listing(listing, DATASET).unwrap();
        let names: Vec<&str> = read.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ari-1", "ari-2"]);
        assert_eq!(
            read[1],
            Snapshot { name: "ari-2".into(), guid: 22, createtxg: 300, creation: 1_700_000_300, userrefs: 1 }
        );
        for (bad, why) in [
            ("tank/data@a\t1\t2\t3\n", "expected name,guid,createtxg,creation,userrefs"),
            ("tank/data@a\t1\t2\t3\t4\t5\n", "expected"),
            ("tank/data@a\t-1\t2\t3\t4\n", "guid `-1`"),
            ("tank/data@a\t1\t2\t3\t\n", "userrefs ``"),
            ("tank/data@a\t1\t2\t99999999999999999999\t0\n", "creation"),
            ("tank/data\t1\t2\t3\t4\n", "is not a snapshot name"),
            ("tank/data@a\t7\t2\t3\t0\ntank/data@b\t7\t3\t4\t0\n", "have the GUID 7"),
        ] {
            let err = read_listing(bad, DATASET).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert_eq!(read_listing("", DATASET).unwrap(), []);
    }

    #[test]
    fn what_each_state_of_the_two_sides_sends() {
        let sender = snaps(&[("manual", 1), ("ari-1", 2), ("other", 3), ("ari-2", 4), ("ari-3", 5)]);
        let table: Vec<(&str, Vec<Snapshot>, Result<Plan, Diverged>)> = vec![
            (
                "an empty receiver gets the oldest prefixed snapshot whole, then every later one",
                vec![],
                Ok(Plan::Send(vec![full("ari-1"), inc("ari-1", "ari-3")])),
            ),
            (
                "a receiver at the sender's newest is up to date",
                snaps(&[("ari-1", 2), ("ari-3", 5)]),
                Ok(Plan::UpToDate("ari-3".into())),
            ),
            (
                "a receiver behind gets -I from its newest common snapshot",
                snaps(&[("ari-1", 2), ("ari-2", 4)]),
                Ok(Plan::Send(vec![inc("ari-2", "ari-3")])),
            ),
            (
                "the common base is found by GUID, whatever the receiver called it",
                snaps(&[("renamed", 4)]),
                Ok(Plan::Send(vec![inc("ari-2", "ari-3")])),
            ),
            (
                "a base without the prefix (another tool's) still serves as the base",
                snaps(&[("other", 3)]),
                Ok(Plan::Send(vec![inc("other", "ari-3")])),
            ),
            (
                "the same name with another GUID is no common snapshot",
                snaps(&[("ari-3", 77)]),
                Err(Diverged::NoCommonSnapshot { newest: "ari-3".into() }),
            ),
            (
                "a receiver with snapshots after the base has diverged",
                snaps(&[("ari-1", 2), ("local-1", 50), ("local-2", 51)]),
                Err(Diverged::SnapshotsAfterTheBase {
                    base: "ari-1".into(),
                    after: vec!["local-1".into(), "local-2".into()],
                }),
            ),
        ];
        for (case, receiver, expected) in table {
            assert_eq!(plan(&sender, &receiver, "ari-"), expected, "{case}");
        }
    }

    #[test]
    fn a_sender_with_nothing_to_send_or_behind_the_receiver() {
        let receiver = snaps(&[("ari-1", 2), ("ari-2", 4)]);
        // No prefixed snapshot on the sender at all.
        assert_eq!(plan(&snaps(&[("manual", 1)]), &[], "ari-"), Ok(Plan::NothingToSend));
        assert_eq!(
            plan(&snaps(&[("manual", 1), ("ari-2", 4)]), &receiver[1..], "zz-"),
            Ok(Plan::NothingToSend)
        );
        // The sender's only prefixed snapshot is older than the base (a rollback and a renamed
        // base): never sent backwards.
        let mut sender = snaps(&[("ari-1", 2), ("base", 4)]);
        sender[1].name = "kept-by-hand".into();
        assert_eq!(
            plan(&sender, &receiver, "ari-"),
            Err(Diverged::SenderBehind { base: "kept-by-hand".into() })
        );
        // One snapshot, first send: a full send and nothing after.
        assert_eq!(plan(&snaps(&[("ari-1", 2)]), &[], "ari-"), Ok(Plan::Send(vec![full("ari-1")])));
    }

    #[test]
    fn every_divergence_says_what_to_do() {
        let messages = [
            Diverged::NoCommonSnapshot { newest: "x".into() }.to_string(),
            Diverged::SnapshotsAfterTheBase { base: "b".into(), after: vec!["l".into()] }.to_string(),
            Diverged::SenderBehind { base: "b".into() }.to_string(),
        ];
        assert!(messages[0].contains("receive into a new dataset"));
        assert!(
            messages[1].contains("force_receive")
                && messages[1].contains("`b`")
                && messages[1].contains("(l)")
        );
        assert!(messages[2].contains("rolled back"));
    }

    #[test]
    fn holds_move_to_the_new_base_and_are_released_after() {
        let held = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(hold_moves("ari-3", &[]), HoldMoves { hold: Some("ari-3".into()), release: vec![] });
        assert_eq!(
            hold_moves("ari-3", &held(&["ari-1", "ari-2"])),
            HoldMoves { hold: Some("ari-3".into()), release: held(&["ari-1", "ari-2"]) }
        );
        // Already held (a run that crashed between hold and release): only the release is left.
        assert_eq!(
            hold_moves("ari-3", &held(&["ari-2", "ari-3"])),
            HoldMoves { hold: None, release: held(&["ari-2"]) }
        );
        assert_eq!(hold_moves("ari-3", &held(&["ari-3"])), HoldMoves { hold: None, release: vec![] });
    }
}

/// Properties over generated histories: a receiver that holds some of the sender's prefixed
/// snapshots is never taken for diverged, is sent exactly what it lacks after its newest one,
/// and a planned send never goes backwards.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn config() -> Config {
        Config {
            cases: 2000,
            rng_seed: RngSeed::Fixed(0x00a1_5e4d_0000_0022),
            failure_persistence: None,
            ..Config::default()
        }
    }

    /// A sender's history: each snapshot prefixed or not, in creation order, GUIDs distinct.
    fn history() -> impl Strategy<Value = Vec<Snapshot>> {
        prop::collection::vec(any::<bool>(), 0..30).prop_map(|prefixed| {
            prefixed
                .iter()
                .enumerate()
                .map(|(i, ours)| Snapshot {
                    name: format!("{}{i}", if *ours { "ari-" } else { "hand-" }),
                    guid: 1000 + i as u64 * 7,
                    createtxg: 10 + i as u64 * 3,
                    creation: 1_700_000_000 + i as i64,
                    userrefs: 0,
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn a_receiver_with_some_of_the_senders_prefixed_snapshots_gets_the_rest(
            sender in history(),
            picks in prop::collection::vec(any::<bool>(), 30),
        ) {
            let ours: Vec<&Snapshot> = sender.iter().filter(|s| s.name.starts_with("ari-")).collect();
            // What an earlier run left: some of the prefixed snapshots, in order, as received
            // (the receiver's own createtxg differs; its names too, for some).
            let receiver: Vec<Snapshot> = ours
                .iter()
                .zip(&picks)
                .filter(|(_, pick)| **pick)
                .enumerate()
                .map(|(i, (s, _))| Snapshot {
                    name: if i % 2 == 0 { s.name.clone() } else { format!("renamed-{i}") },
                    createtxg: 5 + i as u64,
                    ..(*s).clone()
                })
                .collect();
            let planned = plan(&sender, &receiver, "ari-");
            let newest = ours.last();
            match (receiver.last(), newest) {
                (_, None) => prop_assert_eq!(planned, Ok(Plan::NothingToSend)),
                (None, Some(newest)) => {
                    let oldest = ours[0];
                    let mut expected = vec![Transfer::Full(oldest.name.clone())];
                    if oldest.guid != newest.guid {
                        expected.push(Transfer::Incremental { from: oldest.name.clone(), to: newest.name.clone() });
                    }
                    prop_assert_eq!(planned, Ok(Plan::Send(expected)));
                }
                (Some(last), Some(newest)) => {
                    let base = sender.iter().find(|s| s.guid == last.guid).unwrap();
                    if base.guid == newest.guid {
                        prop_assert_eq!(planned, Ok(Plan::UpToDate(base.name.clone())));
                    } else {
                        prop_assert!(base.createtxg < newest.createtxg);
                        prop_assert_eq!(
                            planned,
                            Ok(Plan::Send(vec![Transfer::Incremental { from: base.name.clone(), to: newest.name.clone() }]))
                        );
                    }
                }
            }
        }

        #[test]
        fn any_listing_is_read_or_refused_without_a_panic(listing in "(tank/data(/c)?@[a-z0-9-]{0,4}\t[0-9-]{0,3}\t[0-9]{0,3}\t[0-9]{0,3}\t[0-9]{0,2}\n){0,6}") {
            if let Ok(read) = read_listing(&listing, "tank/data") {
                prop_assert!(read.windows(2).all(|pair| pair[0].createtxg <= pair[1].createtxg));
            }
        }
    }
}
