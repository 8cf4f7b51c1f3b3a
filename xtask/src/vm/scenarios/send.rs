//! The zfs-send backend against real ZFS: the guest is both the sender and the receiver, in two
//! pools of file vdevs made for each scenario (`sendsrc` and `sendrcv`), and ari on the host
//! pulls the stream through itself as it would between two machines. What arrives is proven by
//! GUID and byte for byte against the sender's `.zfs/snapshot`; the holds on the sender, the
//! resume token of a cut receive, the sender's own expiry of a held base, a diverged receiver
//! and the ssh filter's resume script are each checked against what real `zfs` says. Every
//! scenario destroys its pools at the end; the runner's reset does it after a failure
//! (`remove_pools`).

use anyhow::{ensure, Context, Result};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::filter::{
    filter_refusals, fresh_key, journal, only_key, refused_in, remove_filter, FILTER_KEY_COMMENT, FILTER_PATH,
};
use super::fixture::{assert_no_ledger, field, history, Ctx, Fixture};
use super::zfs::old_snapshots;
use crate::vm::machine::Vm;

/// The sending dataset, at a mount point of its own (the receiver must never take it).
const SOURCE: &str = "sendsrc/data";
const SOURCE_MOUNT: &str = "/srv/send-src";
/// The receiving dataset; its parent is the receiving pool.
const RECEIVED: &str = "sendrcv/data";
/// The lines of a job whose stream of 4 MiB (16 s at 256 KiB/s) `job_timeout` cuts: ten seconds,
/// since under TCG the checks and listings before the stream take about four, and a job cut
/// before its stream started leaves nothing to resume.
const CUT: &str = "bwlimit: 256K\njob_timeout: 10s\n";
/// The passphrase file of the encrypted dataset (scenario 2).
const KEY_FILE: &str = "/root/ari-send.key";

/// The guest script that makes both pools, each on a 128 MiB file vdev.
const POOLS: &str = "set -e\ntruncate -s 128M /var/tmp/ari-send-src /var/tmp/ari-send-rcv\n\
zpool create -f -m /sendsrc sendsrc /var/tmp/ari-send-src\nzpool create -f -m /sendrcv sendrcv /var/tmp/ari-send-rcv\n";

/// The guest script that destroys what a scenario of this family made: both pools, their
/// vdevs, the passphrase file, the directory of the zfs job's source. The runner's reset runs
/// it too.
pub(super) fn remove_pools() -> String {
    format!(
        "for p in sendsrc sendrcv; do ! zpool list -H -o name $p >/dev/null 2>&1 || zpool destroy -f $p; done\n\
         rm -f /var/tmp/ari-send-src /var/tmp/ari-send-rcv {KEY_FILE}\nrm -rf /srv/send-keep\nrmdir {SOURCE_MOUNT} 2>/dev/null || true\n"
    )
}

/// The text of a zfs-send job from `source` into `received`, both in the guest, expiring
/// after 30 days (so that every snapshot a scenario makes today stays); `extra` lines after.
fn send_job(label: &str, source: &str, received: &str, extra: &str) -> String {
    format!(
        "label: {label}\nbackend: zfs-send\nsource_hostname: 127.0.0.1\nsource_dataset: {source}\nzfs_hostname: 127.0.0.1\ndataset_name: {received}\nsnapshot_expiration_days: 30\n{extra}"
    )
}

/// Makes the pools and the sending dataset with a few files (a text file, a random blob, a
/// directory, a symlink), runs `body`, and destroys the pools whatever happened.
fn with_pools(vm: &Vm, body: impl FnOnce() -> Result<()>) -> Result<()> {
    let made = vm.run(&format!(
        "{POOLS}zfs create -o mountpoint={SOURCE_MOUNT} {SOURCE}\ncd {SOURCE_MOUNT}\necho one > a.txt\n\
         head -c 1048576 /dev/urandom > blob.bin\nmkdir -p sub/deeper\necho b > sub/b.txt\n\
         echo deep > sub/deeper/c.txt\nln -s a.txt link\nsync"
    ));
    let result = made.and_then(|_| body());
    let removed = vm.run(&remove_pools());
    result?;
    removed.context("destroying the scenario's pools")?;
    let left = vm.run("zpool list -H -o name")?;
    ensure!(left.trim() == "tank", "pools left after the scenario: {left:?}");
    println!("  both pools destroyed; only tank is left");
    Ok(())
}

/// The snapshot names (after `@`) of `dataset` itself, oldest first.
fn snapshots(vm: &Vm, dataset: &str) -> Result<Vec<String>> {
    Ok(vm
        .run(&format!("zfs list -H -t snapshot -o name -s createtxg -d 1 {dataset}"))?
        .lines()
        .filter_map(|l| l.split_once('@').map(|(_, name)| name.to_string()))
        .collect())
}

/// `zfs get -H -p -o value PROPERTY NAME`, trimmed.
fn prop(vm: &Vm, name: &str, property: &str) -> Result<String> {
    Ok(vm.run(&format!("zfs get -H -p -o value {property} {name}"))?.trim().to_string())
}

/// Fails unless each of `names` has the same GUID on both sides.
fn assert_same_guids(vm: &Vm, source: &str, received: &str, names: &[&str]) -> Result<()> {
    for name in names {
        let (sent, got) = (
            prop(vm, &format!("{source}@{name}"), "guid")?,
            prop(vm, &format!("{received}@{name}"), "guid")?,
        );
        ensure!(
            sent == got && !sent.is_empty(),
            "{received}@{name} has GUID {got:?}, {source}@{name} {sent:?}"
        );
    }
    println!("  GUIDs equal on both sides: {}", names.join(", "));
    Ok(())
}

/// Every directory, symlink and file under `dir` (relative), files with their SHA-256.
fn tree(vm: &Vm, dir: &str) -> Result<String> {
    vm.run(&format!(
        "set -e\ncd {dir}\nexport LC_ALL=C\nfind . -mindepth 1 -type d | sort | sed 's/^/d /'\n\
         find . -type l | sort | while IFS= read -r l; do echo \"l $l -> $(readlink \"$l\")\"; done\n\
         find . -type f -print0 | sort -z | xargs -0 -r sha256sum"
    ))
}

/// Mounts `dataset` (its own mount point; `canmount=noauto` lets an explicit mount through),
/// runs `body`, and unmounts it whatever happened.
fn mounted<T>(vm: &Vm, dataset: &str, body: impl FnOnce() -> Result<T>) -> Result<T> {
    vm.run(&format!("zfs mount {dataset}"))?;
    let result = body();
    let unmounted = vm.run(&format!("zfs unmount {dataset}"));
    let value = result?;
    unmounted?;
    Ok(value)
}

/// Fails unless each of `names` holds the same files on both sides (the receiving dataset
/// mounted for the comparison, and unmounted after).
fn assert_same_files(vm: &Vm, source: &str, received: &str, names: &[&str]) -> Result<()> {
    let (from, to) = (prop(vm, source, "mountpoint")?, prop(vm, received, "mountpoint")?);
    mounted(vm, received, || {
        for name in names {
            let sent = tree(vm, &format!("{from}/.zfs/snapshot/{name}"))?;
            let got = tree(vm, &format!("{to}/.zfs/snapshot/{name}"))?;
            ensure!(
                sent == got && sent.lines().count() >= 2,
                "{received}@{name} holds\n{got}\n{source}@{name} holds\n{sent}"
            );
        }
        Ok(())
    })?;
    println!("  files byte-equal (sha256sum) on both sides: {}", names.join(", "));
    Ok(())
}

/// The received dataset is read-only, never mounted by itself, not mounted, and not at the
/// sender's mount point.
fn assert_received_safely(vm: &Vm, source: &str, received: &str) -> Result<()> {
    let got: Vec<String> = ["readonly", "canmount", "mounted", "mountpoint"]
        .iter()
        .map(|p| prop(vm, received, p))
        .collect::<Result<_>>()?;
    let sender = prop(vm, source, "mountpoint")?;
    ensure!(
        got[..3] == ["on", "noauto", "no"] && got[3] != sender && got[3] == format!("/{received}"),
        "{received}: readonly, canmount, mounted, mountpoint are {got:?} (the sender's mount point {sender})"
    );
    println!("  {received}: readonly=on, canmount=noauto, not mounted, at {} (not {sender})", got[3]);
    Ok(())
}

/// The holds on `dataset`'s snapshots: (snapshot name after `@`, tag).
fn holds(vm: &Vm, dataset: &str) -> Result<Vec<(String, String)>> {
    let listing = vm.run(&format!(
        "zfs list -H -t snapshot -o name -d 1 {dataset} | while IFS= read -r s; do zfs holds -H \"$s\"; done"
    ))?;
    Ok(listing
        .lines()
        .filter_map(|l| {
            let mut fields = l.split('\t');
            let (name, tag) = (fields.next()?, fields.next()?);
            Some((name.split_once('@')?.1.to_string(), tag.to_string()))
        })
        .collect())
}

/// Fails unless the job's tag holds exactly `newest` on the sender.
fn assert_held_only(vm: &Vm, dataset: &str, tag: &str, newest: &str) -> Result<()> {
    let got = holds(vm, dataset)?;
    ensure!(
        got == [(newest.to_string(), tag.to_string())],
        "the holds on {dataset}'s snapshots are {got:?}, expected only `{tag}` on {newest}"
    );
    println!("  zfs holds: `{tag}` on {dataset}@{newest} only");
    Ok(())
}

/// The commands a `--debug` run started (not its queries) that start with `what`, as the
/// guest or this machine ran them: a remote one without ari's ssh and process-group wrapper.
fn ran<'a>(log: &'a str, what: &str) -> Vec<&'a str> {
    log.lines().filter_map(started).filter(|command| command.starts_with(what)).collect()
}

/// The command of a `run_command on HOST: ...` line of a `--debug` log: on this machine as it
/// is; on a remote host the part after the wrapper that reports and stops its process group
/// (`...; trap '...' EXIT; COMMAND'`).
fn started(line: &str) -> Option<&str> {
    let (_, command) = line.split_once("run_command on ")?.1.split_once(": ")?;
    match command.rsplit_once(" EXIT; ") {
        Some((_, remote)) => Some(remote.strip_suffix('\'').unwrap_or(remote)),
        None => Some(command),
    }
}

/// `ari run JOB --debug`, which must exit `code`; its stderr.
fn run(ctx: &Ctx, fx: &Fixture, job: &str, code: i32) -> Result<String> {
    fx.ari_expect(ctx, &["run", job, "--debug"], code)
}

/// `zfs send` and `zfs recv` processes in the guest, once there are none or after 10 s (the
/// guest's side of a stopped stream ends a moment after ari's).
fn leftover_streams(vm: &Vm) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = vm.run("ps -eo pid,args | grep -E 'zfs (send|recv|receive)' | grep -v grep || true")?;
        if left.trim().is_empty() || Instant::now() > deadline {
            return Ok(left);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// (1) A first run sends the sender's prefixed snapshot whole; the receiver has it (same GUID),
/// read-only, never mounted, not at the sender's mount point, with the same files. After
/// changed, added and deleted files and two more snapshots, the next run sends both (`-I`, the
/// intermediate too), the files of each are byte-equal, and the job's hold moved to the newest.
/// `ari history --json` lists the receiver's snapshots; a run with nothing new sends nothing;
/// `snapshots: take` makes a new snapshot on the sender and sends it.
pub(super) fn full_then_incremental(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "send-full";
    let tag = format!("ari-send-{label}");
    with_pools(vm, || {
        vm.run(&format!("zfs snapshot {SOURCE}@ari-backup-1 && zfs snapshot {SOURCE}@manual-1"))?;
        let fx = Fixture::new(ctx)?;
        let job = fx.job(label, &send_job(label, SOURCE, RECEIVED, ""))?.display().to_string();
        let log = run(ctx, &fx, &job, 0)?;
        let sent = ran(&log, "zfs send");
        ensure!(sent == [format!("zfs send {SOURCE}@ari-backup-1")], "the first run's sends: {sent:?}");
        ensure!(
            snapshots(vm, RECEIVED)? == ["ari-backup-1"],
            "the receiver has {:?}",
            snapshots(vm, RECEIVED)?
        );
        println!("  first run: a full send of {SOURCE}@ari-backup-1 (manual-1, unprefixed, not sent)");
        assert_same_guids(vm, SOURCE, RECEIVED, &["ari-backup-1"])?;
        assert_received_safely(vm, SOURCE, RECEIVED)?;
        assert_same_files(vm, SOURCE, RECEIVED, &["ari-backup-1"])?;
        assert_held_only(vm, SOURCE, &tag, "ari-backup-1")?;

        vm.run(&format!(
            "set -e\ncd {SOURCE_MOUNT}\necho two >> a.txt\nrm sub/b.txt\necho added > sub/added.txt\nsync\n\
             zfs snapshot {SOURCE}@ari-backup-2\nhead -c 300000 /dev/urandom > blob.bin\nrm -r sub/deeper\n\
             echo new > new.txt\nsync\nzfs snapshot {SOURCE}@ari-backup-3"
        ))?;
        let log = run(ctx, &fx, &job, 0)?;
        let sent = ran(&log, "zfs send");
        ensure!(
            sent == [format!("zfs send -I {SOURCE}@ari-backup-1 {SOURCE}@ari-backup-3")],
            "the second run's sends: {sent:?}"
        );
        let got = snapshots(vm, RECEIVED)?;
        ensure!(
            got == ["ari-backup-1", "manual-1", "ari-backup-2", "ari-backup-3"],
            "after the incremental run the receiver has {got:?}"
        );
        println!("  second run: zfs send -I ari-backup-1 ari-backup-3; the receiver has {got:?} (-I brings the intermediate ones)");
        let all = ["ari-backup-1", "ari-backup-2", "ari-backup-3"];
        assert_same_guids(vm, SOURCE, RECEIVED, &all)?;
        assert_same_files(vm, SOURCE, RECEIVED, &all)?;
        assert_held_only(vm, SOURCE, &tag, "ari-backup-3")?;
        assert_received_safely(vm, SOURCE, RECEIVED)?;

        // Snapshots made within one second have equal times, and ari orders those by the
        // listing, not by createtxg: the order is checked by time only.
        let listed: Vec<(String, i64)> =
            history(ctx, &fx, label)?.into_iter().map(|b| (b.name, b.time)).collect();
        let mut zfs: Vec<(String, i64)> = vm
            .run(&format!("zfs list -H -p -t snapshot -o name,creation -d 1 {RECEIVED}"))?
            .lines()
            .filter_map(|l| {
                let (name, creation) = l.split_once('\t')?;
                Some((name.split_once('@')?.1.to_string(), creation.trim().parse().ok()?))
            })
            .collect();
        let mut got = listed.clone();
        got.sort();
        zfs.sort();
        ensure!(
            got == zfs && listed.windows(2).all(|pair| pair[0].1 >= pair[1].1),
            "ari history --json lists {listed:?}; zfs list has {zfs:?}"
        );
        println!("  ari history --json lists the receiver's snapshots with zfs's creation times, newest first: {listed:?}");

        let before: Vec<String> =
            all.iter().map(|n| prop(vm, &format!("{RECEIVED}@{n}"), "guid")).collect::<Result<_>>()?;
        let log = run(ctx, &fx, &job, 0)?;
        let streams: Vec<&str> = ran(&log, "zfs send").into_iter().chain(ran(&log, "zfs recv")).collect();
        let holds_moved: Vec<&str> =
            ran(&log, "zfs hold").into_iter().chain(ran(&log, "zfs release")).collect();
        ensure!(
            streams.is_empty() && holds_moved.is_empty(),
            "a run with nothing new ran {streams:?} {holds_moved:?}"
        );
        let after: Vec<String> =
            all.iter().map(|n| prop(vm, &format!("{RECEIVED}@{n}"), "guid")).collect::<Result<_>>()?;
        ensure!(
            before == after && snapshots(vm, RECEIVED)?.len() == 4,
            "a run with nothing new changed the receiver"
        );
        println!("  a run with nothing new: exit 0, no zfs send, recv, hold or release");

        let job =
            fx.job(label, &send_job(label, SOURCE, RECEIVED, "snapshots: take\n"))?.display().to_string();
        vm.run(&format!("echo taken > {SOURCE_MOUNT}/taken.txt && sync"))?;
        run(ctx, &fx, &job, 0)?;
        let sender = snapshots(vm, SOURCE)?;
        let taken: Vec<&String> =
            sender.iter().filter(|s| s.starts_with("ari-backup-") && !all.contains(&s.as_str())).collect();
        ensure!(taken.len() == 1, "snapshots: take left the sender with {sender:?}");
        let taken = taken[0].as_str();
        ensure!(
            snapshots(vm, RECEIVED)?.last().map(String::as_str) == Some(taken),
            "the receiver has {:?}, not the taken {taken} last",
            snapshots(vm, RECEIVED)?
        );
        assert_same_guids(vm, SOURCE, RECEIVED, &[taken])?;
        assert_same_files(vm, SOURCE, RECEIVED, &[taken])?;
        assert_held_only(vm, SOURCE, &tag, taken)?;
        println!("  snapshots: take made {SOURCE}@{taken} and sent it");
        assert_no_ledger(&fx, label)
    })
}

/// (2) An encrypted dataset sent raw (`raw_send: true`) arrives encrypted: the receiver has no
/// key (`keystatus` unavailable) and reads the data only once the key is loaded; the first send
/// and an incremental one, byte-compared then.
pub(super) fn raw_encrypted(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "send-raw";
    let (source, received) = ("sendsrc/secret", "sendrcv/secret");
    with_pools(vm, || {
        vm.run(&format!(
            "set -e\nprintf '%s' ari-send-passphrase > {KEY_FILE}\n\
             zfs create -o encryption=on -o keyformat=passphrase -o keylocation=file://{KEY_FILE} {source}\n\
             cd /{source}\nhead -c 524288 /dev/urandom > secret.bin\nmkdir d\necho hidden > d/note.txt\nsync\n\
             zfs snapshot {source}@ari-backup-1"
        ))?;
        let fx = Fixture::new(ctx)?;
        let job =
            fx.job(label, &send_job(label, source, received, "raw_send: true\n"))?.display().to_string();
        let log = run(ctx, &fx, &job, 0)?;
        let sent = ran(&log, "zfs send");
        ensure!(sent == [format!("zfs send -w {source}@ari-backup-1")], "the raw run's sends: {sent:?}");
        vm.run(&format!("echo more >> /{source}/d/note.txt && sync && zfs snapshot {source}@ari-backup-2"))?;
        run(ctx, &fx, &job, 0)?;
        ensure!(
            snapshots(vm, received)? == ["ari-backup-1", "ari-backup-2"],
            "the receiver has {:?}",
            snapshots(vm, received)?
        );
        assert_same_guids(vm, source, received, &["ari-backup-1", "ari-backup-2"])?;
        let (encryption, keystatus) = (prop(vm, received, "encryption")?, prop(vm, received, "keystatus")?);
        ensure!(
            encryption != "off" && keystatus == "unavailable",
            "{received}: encryption {encryption}, keystatus {keystatus}"
        );
        assert_received_safely(vm, source, received)?;
        let unreadable = vm.run_status(&format!("zfs mount {received}"));
        ensure!(!unreadable, "{received} mounted without its key");
        println!("  {received} arrived encrypted ({encryption}), keystatus unavailable: not mountable without the key");
        vm.run(&format!("zfs load-key -L file://{KEY_FILE} {received}"))?;
        let compared = assert_same_files(vm, source, received, &["ari-backup-1", "ari-backup-2"]);
        vm.run(&format!("zfs unload-key {received}"))?;
        compared?;
        println!("  with the key loaded (zfs load-key -L), its data is the sender's");
        assert_no_ledger(&fx, label)
    })
}

/// (3) A first send through `bwlimit: 256K` cut by `job_timeout: 10s`: the run fails, the
/// receiver keeps a resume token, no `zfs send` or `zfs recv` is left in the guest; the next run
/// (no limit, no timeout) resumes from the token and completes, the data byte-equal and the
/// received dataset as safe as after a send in one go. Ten seconds, not four: see `CUT`.
pub(super) fn cut_and_resumed(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "send-resume";
    with_pools(vm, || {
        vm.run(&format!(
            "set -e\nhead -c 4194304 /dev/urandom > {SOURCE_MOUNT}/payload.bin\nsync\nzfs snapshot {SOURCE}@ari-backup-1"
        ))?;
        let fx = Fixture::new(ctx)?;
        let limited = send_job(label, SOURCE, RECEIVED, CUT);
        let job = fx.job(label, &limited)?.display().to_string();
        let started = Instant::now();
        let log = run(ctx, &fx, &job, 1)?;
        ensure!(
            log.lines().any(|l| l.contains("[ERROR]") && l.contains("job_timeout")),
            "the run did not fail by job_timeout:\n{log}"
        );
        ensure!(
            ran(&log, "pv -q -L 262144") == ["pv -q -L 262144"],
            "the stream did not run through pv -L 262144:\n{log}"
        );
        println!(
            "  cut by job_timeout after {:.1} s (exit 1), streaming through pv -q -L 262144",
            started.elapsed().as_secs_f64()
        );
        let left = leftover_streams(vm)?;
        ensure!(left.trim().is_empty(), "zfs processes left in the guest after the cut: {left}");
        let token = prop(vm, RECEIVED, "receive_resume_token")?;
        ensure!(token != "-" && !token.is_empty(), "{RECEIVED} has no resume token after the cut: {token:?}");
        println!(
            "  {RECEIVED} holds a resume token ({}...), no zfs send/recv left in the guest",
            &token[..token.len().min(24)]
        );

        let job = fx.job(label, &send_job(label, SOURCE, RECEIVED, ""))?.display().to_string();
        let log = run(ctx, &fx, &job, 0)?;
        let resumed = ran(&log, "zfs send -t ");
        ensure!(
            resumed.len() == 1,
            "the next run did not resume from the token: {:?}",
            ran(&log, "zfs send")
        );
        let token = prop(vm, RECEIVED, "receive_resume_token")?;
        ensure!(token == "-", "{RECEIVED} still has a resume token after the resume: {token}");
        ensure!(
            snapshots(vm, RECEIVED)? == ["ari-backup-1"],
            "the receiver has {:?}",
            snapshots(vm, RECEIVED)?
        );
        println!("  the next run resumed (zfs send -t TOKEN); the token is gone");
        assert_same_guids(vm, SOURCE, RECEIVED, &["ari-backup-1"])?;
        assert_same_files(vm, SOURCE, RECEIVED, &["ari-backup-1"])?;
        assert_received_safely(vm, SOURCE, RECEIVED)?;
        assert_held_only(vm, SOURCE, &format!("ari-send-{label}"), "ari-backup-1")?;
        assert_no_ledger(&fx, label)
    })
}

/// (4) The sender's own zfs job (expiry after a day) and a zfs-send job of the same dataset:
/// old prefixed snapshots (made by setting the guest's clock back) are sent and the newest of
/// them held; a newer one is made after. `ari plan --preview` of the zfs job shows the sent base
/// kept as `held` while the older ones go; a run of the zfs job, whose expiry is the sender's,
/// destroys exactly those and keeps the held base, and so does `ari prune` after it (ari prunes
/// only for a job with a recorded run); the next zfs-send run sends incrementally from the held
/// base and moves the hold. The snapshots are made in the order of their dates: a receiver
/// whose dates go back in the order it received them is not expired.
pub(super) fn held_base_survives_expiry(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let (label, zfs_label) = ("send-held", "send-held-source");
    let tag = format!("ari-send-{label}");
    with_pools(vm, || {
        old_snapshots(
            vm,
            &[
                (5, &format!("{SOURCE}@ari-backup-old-5d")),
                (4, &format!("{SOURCE}@ari-backup-old-4d")),
                (3, &format!("{SOURCE}@ari-backup-old-3d")),
            ],
        )?;
        vm.run("mkdir -p /srv/send-keep && echo keep > /srv/send-keep/file")?;
        let fx = Fixture::new(ctx)?;
        let job = fx.job(label, &send_job(label, SOURCE, RECEIVED, ""))?.display().to_string();
        run(ctx, &fx, &job, 0)?;
        let old = ["ari-backup-old-5d", "ari-backup-old-4d", "ari-backup-old-3d"];
        ensure!(snapshots(vm, RECEIVED)? == old, "the receiver has {:?}", snapshots(vm, RECEIVED)?);
        assert_held_only(vm, SOURCE, &tag, "ari-backup-old-3d")?;

        vm.run(&format!(
            "echo newer > {SOURCE_MOUNT}/newer.txt && sync && zfs snapshot {SOURCE}@ari-backup-new"
        ))?;
        let zfs_job = fx
            .job(
                zfs_label,
                &format!(
                    "label: {zfs_label}\nsource_hostname: 127.0.0.1\ninclude: [/srv/send-keep]\nbackend: zfs\nrsync_dst: {SOURCE_MOUNT}\nzfs_hostname: 127.0.0.1\ndataset_name: {SOURCE}\nsnapshot_expiration_days: 1\n"
                ),
            )?
            .display()
            .to_string();
        fx.ari_expect(ctx, &["plan", &zfs_job, "--preview"], 0)?;
        let preview = fx.stdout();
        let verdict = |name: &str| -> String {
            preview
                .lines()
                .find(|l| l.split_whitespace().any(|w| w == name))
                .and_then(|l| l.split_once(name))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let verdicts: Vec<(&str, String)> =
            ["ari-backup-new", "ari-backup-old-3d", "ari-backup-old-4d", "ari-backup-old-5d"]
                .into_iter()
                .map(|n| (n, verdict(n)))
                .collect();
        ensure!(
            verdicts[0].1.starts_with("keep:")
                && verdicts[1].1 == "keep: held"
                && verdicts[2].1 == "destroy"
                && verdicts[3].1 == "destroy",
            "the zfs job's preview judges {verdicts:?}:\n{preview}"
        );
        println!(
            "  ari plan --preview of the sender's zfs job: old-3d `keep: held`, old-4d and old-5d `destroy`"
        );
        fx.ari_expect(ctx, &["run", &zfs_job], 0)?;
        let left = snapshots(vm, SOURCE)?;
        let made: Vec<&String> =
            left.iter().filter(|s| !s.contains("old") && *s != "ari-backup-new").collect();
        ensure!(
            made.len() == 1 && left == ["ari-backup-old-3d", "ari-backup-new", made[0].as_str()],
            "after the zfs job's run (its expiry) the sender has {left:?}"
        );
        let made = made[0].clone();
        println!("  the zfs job's run made {made}; its expiry destroyed old-5d and old-4d and kept the held old-3d");
        fx.ari_expect(ctx, &["prune", &zfs_job], 0)?;
        ensure!(snapshots(vm, SOURCE)? == left, "ari prune changed the sender: {:?}", snapshots(vm, SOURCE)?);
        println!("  ari prune of the zfs job, with its run recorded: the held old-3d kept");

        let log = run(ctx, &fx, &job, 0)?;
        let sent = ran(&log, "zfs send");
        ensure!(
            sent == [format!("zfs send -I {SOURCE}@ari-backup-old-3d {SOURCE}@{made}")],
            "the run after the sender's expiry sent {sent:?}"
        );
        assert_same_guids(vm, SOURCE, RECEIVED, &["ari-backup-old-3d", "ari-backup-new", made.as_str()])?;
        assert_same_files(vm, SOURCE, RECEIVED, &[made.as_str()])?;
        assert_held_only(vm, SOURCE, &tag, &made)?;
        println!("  the next zfs-send run: -I from the held old-3d to {made}; the hold moved to it");
        assert_no_ledger(&fx, label)?;
        assert_no_ledger(&fx, zfs_label)
    })
}

/// (5) A snapshot made on the receiver after a successful run: the next run is refused with what
/// to do (naming force_receive) and the receiver is left as it was; with `force_receive: true`
/// and a new sender snapshot, the run rolls the receiver back and sends it.
pub(super) fn diverged_refused(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "send-diverged";
    with_pools(vm, || {
        vm.run(&format!("zfs snapshot {SOURCE}@ari-backup-1"))?;
        let fx = Fixture::new(ctx)?;
        let job = fx.job(label, &send_job(label, SOURCE, RECEIVED, ""))?.display().to_string();
        run(ctx, &fx, &job, 0)?;
        vm.run(&format!("zfs snapshot {RECEIVED}@local"))?;
        let before = snapshots(vm, RECEIVED)?;
        ensure!(before == ["ari-backup-1", "local"], "the receiver has {before:?}");
        let stderr = run(ctx, &fx, &job, 1)?;
        ensure!(
            stderr.contains("after `ari-backup-1`")
                && stderr.contains("(local)")
                && stderr.contains("force_receive"),
            "the refusal does not say what to do: {stderr}"
        );
        ensure!(snapshots(vm, RECEIVED)? == before, "a refused run changed the receiver");
        ensure!(ran(&stderr, "zfs send").is_empty(), "a refused run sent: {:?}", ran(&stderr, "zfs send"));
        let said = stderr.lines().find(|l| l.contains("force_receive")).unwrap_or_default();
        println!(
            "  a receiver with a snapshot of its own: exit 1, nothing sent, receiver unchanged: {}",
            said.trim()
        );

        vm.run(&format!("echo two > {SOURCE_MOUNT}/two.txt && sync && zfs snapshot {SOURCE}@ari-backup-2"))?;
        let forced =
            fx.job(label, &send_job(label, SOURCE, RECEIVED, "force_receive: true\n"))?.display().to_string();
        let log = run(ctx, &fx, &forced, 0)?;
        ensure!(
            ran(&log, "zfs recv").iter().any(|l| l.ends_with(&format!(" -F {RECEIVED}"))),
            "force_receive did not receive with -F: {:?}",
            ran(&log, "zfs recv")
        );
        let after = snapshots(vm, RECEIVED)?;
        ensure!(after == ["ari-backup-1", "ari-backup-2"], "after force_receive the receiver has {after:?}");
        assert_same_guids(vm, SOURCE, RECEIVED, &["ari-backup-1", "ari-backup-2"])?;
        assert_same_files(vm, SOURCE, RECEIVED, &["ari-backup-2"])?;
        println!(
            "  force_receive: zfs recv -F rolled the receiver back (local gone) and received ari-backup-2"
        );
        assert_no_ledger(&fx, label)
    })
}

/// Forges a resume token (`python3 -c FORGE TOKEN NAME=VALUE...`): TOKEN with the named 64-bit
/// numbers of its payload (a packed native nvlist: a 12-byte header, then pairs of 16-byte
/// headers, the name padded to 8 bytes, the value) set to VALUE, recompressed, with the
/// checksum `zfs` checks (the first word of a fletcher4 over the compressed payload: the sum of
/// its little-endian 32-bit words). Anyone holding the filtered key can do the same.
const FORGE: &str = r#"import struct, sys, zlib
token, changes = sys.argv[1], dict(arg.split("=") for arg in sys.argv[2:])
_, _, length, payload = token.split("-")
packed = bytearray(zlib.decompress(bytes.fromhex(payload)))
assert len(packed) == int(length, 16) and packed[:2] == b"\x00\x01", "not a little-endian native nvlist"
at = 12
while struct.unpack_from("<i", packed, at)[0]:
    size, name_size = struct.unpack_from("<iH", packed, at)
    name = packed[at + 16 : at + 15 + name_size].decode()
    if name in changes:
        assert struct.unpack_from("<i", packed, at + 12)[0] == 8, name + " is not a uint64"
        struct.pack_into("<Q", packed, at + 16 + (name_size + 7) // 8 * 8, int(changes.pop(name)))
    at += size
assert not changes, changes
data = zlib.compress(bytes(packed))
checksum = sum(struct.unpack("<%dI" % (len(data) // 4), data[: len(data) // 4 * 4])) % (1 << 64)
print("1-%x-%x-%s" % (checksum, len(packed), data.hex()))
"#;

/// A token of the job's own dataset (a real partial receive of `SOURCE@ari-backup-3`) whose
/// `toguid` is forged to that of `sendsrc/other@ari-backup-1` (and its place to the stream's
/// start, an object the other dataset has): its `toname` is one the resume
/// script lets through, but `zfs send -t` finds the snapshot it sends by `toguid`, anywhere in
/// the pool. Through the filtered key it is refused, with nothing sent; the token as it was
/// streams (the positive control).
fn assert_a_forged_token_is_refused(vm: &Vm, options: &[String]) -> Result<()> {
    let report = vm.run(&format!(
        "set -e\n{{ zfs send {SOURCE}@ari-backup-3 | head -c 100000 | zfs recv -s sendrcv/partial-own; }} 2>/dev/null || true\n\
         echo \"token: $(zfs get -H -p -o value receive_resume_token sendrcv/partial-own)\"\n\
         echo \"other: $(zfs get -H -p -o value guid sendsrc/other@ari-backup-1)\""
    ))?;
    let (token, other) = (field(&report, "token"), field(&report, "other"));
    ensure!(
        token.len() > 8 && token != "-",
        "no token from the cut receive into sendrcv/partial-own: {report}"
    );
    let out = Command::new("python3")
        .args(["-c", FORGE, &token, &format!("toguid={other}"), "object=0", "offset=0", "bytes=0"])
        .stdin(Stdio::null())
        .output()
        .context("start python3")?;
    ensure!(out.status.success(), "forging the token: {}", String::from_utf8_lossy(&out.stderr));
    let forged = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let shown = vm.run(&format!("zfs send -nvPt {forged} 2>&1 | grep -E '^(full|[[:space:]]*toname)'"))?;
    ensure!(
        shown.contains(&format!("toname = {SOURCE}@ari-backup-3"))
            && shown.contains("full\tsendsrc/other@ari-backup-1"),
        "the forged token is not what it should be: zfs send -nvPt says {shown:?}"
    );
    println!("  forged token: zfs send -nvPt names toname {SOURCE}@ari-backup-3 but sends sendsrc/other@ari-backup-1");
    let out = filtered_ssh(vm, options, &format!("zfs send -t {forged}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && out.stdout.is_empty() && stderr.contains("ari-zfs-resume: refused"),
        "`zfs send -t FORGED` with the filtered key: {}, {} bytes out (a stream of sendsrc/other), stderr {stderr}",
        out.status,
        out.stdout.len()
    );
    println!("  the forged token with the filtered key: {}, nothing sent: {}", out.status, stderr.trim());
    let out = filtered_ssh(vm, options, &format!("zfs send -t {token}"))?;
    ensure!(
        out.status.success() && out.stdout.len() > 100_000,
        "`zfs send -t TOKEN` of the job's own dataset with the filtered key: {}, {} bytes, {}",
        out.status,
        out.stdout.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("  the same token unforged: streams {} bytes of {SOURCE}@ari-backup-3", out.stdout.len());
    Ok(())
}

/// `ssh ... root@127.0.0.1 COMMAND` with `options` (the filtered key, no shared connection).
fn filtered_ssh(vm: &Vm, options: &[String], command: &str) -> Result<Output> {
    Command::new("ssh")
        .args(["-F", "/dev/null"])
        .args(options)
        .args(["-o", "ControlPath=none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .args(["-p", &vm.port.to_string(), "root@127.0.0.1", command])
        .stdin(Stdio::null())
        .output()
        .context("start ssh")
}

/// (6) The filter of `ari authorize --install` for the zfs-send job, on a key of the scenario's
/// own: a full run, an incremental one, one cut by job_timeout and its resume, all through the
/// filter with nothing refused; then through the same key a `zfs destroy` is refused (126) and
/// the snapshot stays, and a resume with the real token of another dataset's partial receive is
/// refused by the resume script, with nothing sent.
pub(super) fn through_the_filter(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let label = "send-filtered";
    let fx = Fixture::without_config()?;
    let (key, public) = fresh_key(&fx, FILTER_KEY_COMMENT)?;
    let options = only_key(&vm.ssh_options(), &key);
    fx.write_config(ctx, &options, &format!("ssh_filter_path: {FILTER_PATH}\n"))?;
    let since = vm.run("date +%s")?.trim().to_string();
    vm.run(&format!("printf '%s\\n' '{public}' >> /root/.ssh/authorized_keys"))?;
    let result = with_pools(vm, || {
        vm.run(&format!("zfs snapshot {SOURCE}@ari-backup-1"))?;
        let job = fx.job(label, &send_job(label, SOURCE, RECEIVED, ""))?.display().to_string();
        let public_file = fx.p("id_ed25519.pub");
        fx.ari_expect(ctx, &["authorize", "--host", "127.0.0.1", "--key", &public_file, "--install"], 0)?;
        println!("  ari authorize --install: the filter installed for {label}");
        let unrefused = |job: &str, code: i32| -> Result<String> {
            let log = run(ctx, &fx, job, code)?;
            let refused = refused_in(&log);
            ensure!(refused.is_empty(), "the filter refused commands of the run:\n{}", refused.join("\n"));
            Ok(log)
        };
        unrefused(&job, 0)?;
        vm.run(&format!("echo two > {SOURCE_MOUNT}/two.txt && sync && zfs snapshot {SOURCE}@ari-backup-2"))?;
        unrefused(&job, 0)?;
        ensure!(
            snapshots(vm, RECEIVED)? == ["ari-backup-1", "ari-backup-2"],
            "through the filter the receiver has {:?}",
            snapshots(vm, RECEIVED)?
        );
        println!("  through the filter: a full run, then an incremental one");

        vm.run(&format!(
            "head -c 4194304 /dev/urandom > {SOURCE_MOUNT}/payload.bin && sync && zfs snapshot {SOURCE}@ari-backup-3"
        ))?;
        let limited = fx.job(label, &send_job(label, SOURCE, RECEIVED, CUT))?.display().to_string();
        unrefused(&limited, 1)?;
        let token = prop(vm, RECEIVED, "receive_resume_token")?;
        ensure!(token != "-", "no resume token after the cut through the filter");
        let left = leftover_streams(vm)?;
        ensure!(left.trim().is_empty(), "zfs processes left in the guest after the cut: {left}");
        let job = fx.job(label, &send_job(label, SOURCE, RECEIVED, ""))?.display().to_string();
        let log = unrefused(&job, 0)?;
        ensure!(ran(&log, "zfs send -t ").len() == 1, "the run after the cut did not resume");
        ensure!(
            prop(vm, RECEIVED, "receive_resume_token")? == "-",
            "the token is still there after the resume"
        );
        assert_same_guids(vm, SOURCE, RECEIVED, &["ari-backup-1", "ari-backup-2", "ari-backup-3"])?;
        assert_same_files(vm, SOURCE, RECEIVED, &["ari-backup-3"])?;
        println!("  through the filter: cut by job_timeout, then resumed by the filter's resume script");
        let refused = journal(vm, &since, "-t ari-filter")?;
        let refused = filter_refusals(&refused);
        ensure!(refused.is_empty(), "the filter refused commands of the job:\n{}", refused.join("\n"));
        println!("  journalctl -t ari-filter: nothing refused");

        let out = filtered_ssh(vm, &options, &format!("zfs destroy {SOURCE}@ari-backup-1"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(126) && stderr.contains("ari-filter: refused"),
            "`zfs destroy {SOURCE}@ari-backup-1` with the filtered key: {}, {stderr}",
            out.status
        );
        ensure!(
            snapshots(vm, SOURCE)?.contains(&"ari-backup-1".to_string()),
            "{SOURCE}@ari-backup-1 is gone after the refused destroy"
        );
        println!("  zfs destroy {SOURCE}@ari-backup-1 with the filtered key: exit 126, the snapshot stays");

        // A real token of another dataset's partial receive: a stream cut after 100000 bytes.
        let other = vm.run(
            "set -e\nzfs create sendsrc/other\nhead -c 1048576 /dev/urandom > /sendsrc/other/x.bin\nsync\n\
             zfs snapshot sendsrc/other@ari-backup-1\n\
             zfs send sendsrc/other@ari-backup-1 | head -c 100000 | zfs recv -s sendrcv/partial 2>/dev/null || true\n\
             zfs get -H -p -o value receive_resume_token sendrcv/partial",
        )?;
        let other = other.trim();
        ensure!(
            other.len() > 8 && other != "-",
            "no token from the cut receive into sendrcv/partial: {other:?}"
        );
        let out = filtered_ssh(vm, &options, &format!("zfs send -t {other}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && out.stdout.is_empty() && stderr.contains("ari-zfs-resume: refused"),
            "`zfs send -t TOKEN` of sendsrc/other with the filtered key: {}, {} bytes out, stderr {stderr}",
            out.status,
            out.stdout.len()
        );
        println!(
            "  zfs send -t with another dataset's token: {}, nothing sent: {}",
            out.status,
            stderr.lines().next().unwrap_or_default()
        );
        assert_a_forged_token_is_refused(vm, &options)?;
        assert_no_ledger(&fx, label)
    });
    let removed = vm.run(&format!(
        "{}! grep -q ' {FILTER_KEY_COMMENT}$' /root/.ssh/authorized_keys && ! test -e {FILTER_PATH}",
        remove_filter()
    ));
    result?;
    removed.context("removing the scenario's key line and filter from the guest")?;
    println!("  the key's line and the filter removed from the guest");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, expected: Option<&str>) {
        assert_eq!(started(line), expected, "{line}");
    }

    #[test]
    fn the_commands_a_debug_log_started_are_read_without_the_ssh_wrapper() {
        check(
            "ari (x) [DEBUG] runner.rs:167 run_command on 127.0.0.1: /usr/bin/ssh -p 1 root@127.0.0.1 'echo ari-remote-pgid a $$ >&2; (while kill -0 $PPID 2>/dev/null; do sleep 1; done) & ari_watch=$!; trap '\\''kill $ari_watch 2>/dev/null'\\'' EXIT; zfs send -I a@b a@c'",
            Some("zfs send -I a@b a@c"),
        );
        check(
            "ari (x) [DEBUG] runner.rs:167 run_command on localhost: pv -q -L 262144",
            Some("pv -q -L 262144"),
        );
        check("ari (x) [DEBUG] process.rs:306 query: zfs list", None);
        let log = "a run_command on localhost: pv -q -L 1\nb run_command on h: ssh 'x EXIT; zfs recv -F d'\n";
        assert_eq!(ran(log, "zfs recv"), ["zfs recv -F d"]);
        assert_eq!(ran(log, "zfs send"), Vec::<&str>::new());
    }
}
