//! Attacks on the zfs-send backend and on the filter `ari authorize` makes for its sender: what
//! ari's key can run on the sender (the filter run as sshd runs it, with `SSH_ORIGINAL_COMMAND`,
//! with and without `remote_sudo`), the handover of `zfs send -t TOKEN` to the script that
//! decodes the token, and hostile output of the sender and the receiver (listing lines, holds
//! lines, resume tokens) in runs of `ari run` through that filter. Each test passes when ari
//! holds; the ones that fail are findings (see each test's comment).
//!
//! The sender and the receiver share the fakes' state: `tank/...` is the sender's pool,
//! `vault/...` the receiver's.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::PathBuf;
use std::process::{Command, Output};

use tests::fakes::stream::{ResumeToken, StreamHeader, StreamSnapshot, STREAM_END};
use tests::worlds::{held_by, snapshot_guid as guid, snapshots_of as names};
use tests::{assert_exit, run, stderr, stdout, Sshd, World};

const SOURCE: &str = "tank/web";
const RECEIVER: &str = "vault/web";
const SECRET: &str = "tank/secret@s";
const TAG: &str = "ari-send-web";
const DAY: i64 = 86_400;

/// A sender reached through the harness's sshd with the filter `ari authorize` made for the job
/// `web` installed as the key's forced command; the receiver is the backup server.
struct Rig {
    world: World,
    /// Kept for the key's `authorized_keys` line and the server's life.
    _sshd: Sshd,
    job: PathBuf,
    filter: PathBuf,
    sudo: bool,
    /// The command lines the filter allows exactly.
    allowed: Vec<String>,
}

impl Rig {
    /// With `remote_sudo: sudo` (a fake `sudo` that takes `-n --`, logs and runs), the sender's
    /// snapshots `ari-backup-1`, `manual`, `ari-backup-2` of tank/web, a dataset tank/secret
    /// with `s` and a child tank/web/child with `ari-backup-1`, and the job's `extra` lines.
    fn new(sudo: bool, extra: &str) -> Rig {
        let world = World::new();
        let (logger_dir, _) = world.fake_logger_and_sudo();
        let sshd = Sshd::builder().path_prefix(world.fakes.bin_dir()).path_prefix(&logger_dir).start();
        world.write_config(&format!(
            "{}ssh_filter_path: {}\nremote_sudo: {sudo}\n",
            sshd.config_yaml(),
            world.fx.p("ssh-filter")
        ));
        world.fakes.add_dataset(SOURCE);
        world.fakes.add_dataset("tank/secret");
        world.fakes.add_dataset("tank/web/child");
        world.fakes.add_dataset("vault");
        let now = now();
        for (i, name) in ["ari-backup-1", "manual", "ari-backup-2"].iter().enumerate() {
            world.fakes.add_zfs_snapshot(&format!("{SOURCE}@{name}"), now - (3 - i as i64) * DAY);
        }
        world.fakes.add_zfs_snapshot(SECRET, now - 5 * DAY);
        world.fakes.add_zfs_snapshot("tank/web/child@ari-backup-1", now - 5 * DAY);
        let job = world.fx.write_job(
            "web.yaml",
            &format!(
                "label: web\nbackend: zfs-send\nsource_hostname: {}\nsource_dataset: {SOURCE}\ndataset_name: {RECEIVER}\nzfs_keep: {{daily: 30}}\n{extra}",
                sshd.host_alias()
            ),
        );
        let key = format!("{}.pub", sshd.client_key_path().display());
        let out = run(world.ari().args(["authorize", "--host", sshd.host_alias(), "--key", &key, "--json"]));
        assert_exit(&out, 0);
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let entry = json["hosts"][0].clone();
        let filter = PathBuf::from(entry["filter_path"].as_str().unwrap());
        std::fs::write(&filter, entry["filter"].as_str().unwrap()).unwrap();
        std::fs::set_permissions(&filter, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let line = entry["authorized_keys_line"].as_str().unwrap();
        sshd.set_key_options(line.split_once(' ').unwrap().0);
        let allowed =
            entry["allowed"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
        Rig { world, _sshd: sshd, job, filter, sudo, allowed }
    }

    /// `body` as ari sends it: through sudo as one text in a subshell under `remote_sudo`.
    fn wrapped(&self, body: &str) -> String {
        if self.sudo {
            format!("sudo -n -- /bin/sh -c '( exec {} )'", body.replace('\'', "'\\''"))
        } else {
            body.to_string()
        }
    }

    /// The installed filter run as sshd runs a forced command, with `line` as the client's
    /// command, on the sshd's PATH (the fakes, the logger, the fake sudo). No ssh: the filter
    /// sees exactly `line`.
    fn filter(&self, line: &str) -> Output {
        let path = format!(
            "{}:{}:{}",
            self.world.fakes.bin_dir().display(),
            self.world.fx.p("logger-bin"),
            std::env::var("PATH").unwrap_or_default()
        );
        run(Command::new("/bin/sh")
            .arg(&self.filter)
            .env("SSH_ORIGINAL_COMMAND", line)
            .env("PATH", path)
            .stdin(std::process::Stdio::null()))
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(self.world.fx.path("logged")).unwrap_or_default()
    }

    /// Every `zfs` call so far, as its arguments joined.
    fn zfs_calls(&self) -> Vec<String> {
        zfs_calls(&self.world)
    }
}

/// `ari run JOB` at once: zfs-send names backups by the second, so ari waits for the next
/// second after a run that ended in this one, which it reads from the job's history; the
/// attacks here need no history.
fn run_now(world: &World, job: &std::path::Path) -> Output {
    let _ = std::fs::remove_file(world.fx.path("state/history/web.json"));
    world.run(job)
}

fn zfs_calls(world: &World) -> Vec<String> {
    world.fakes.calls_of("zfs").into_iter().map(|call| call.args.join(" ")).collect()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The sender's snapshots that the job's tag holds.
fn held(world: &World) -> Vec<String> {
    held_by(world, SOURCE, TAG)
}

/// A full send's resume token for `toname`, whose snapshot has `toguid`, in the fake's format.
fn token(toname: &str, toguid: u64) -> String {
    ResumeToken {
        fromguid: None,
        object: 1,
        offset: 0,
        bytes: 0,
        toguid,
        toname: toname.into(),
        rawok: false,
    }
    .encode()
}

/// One line of the sender's listing (`name,guid,createtxg,creation,userrefs`).
fn listing_line(
    name: &str,
    guid: impl std::fmt::Display,
    txg: impl std::fmt::Display,
    creation: i64,
) -> String {
    format!("{name}\t{guid}\t{txg}\t{creation}\t0\n")
}

/// The sender's real listing of tank/web, as the fake prints it.
fn real_listing(world: &World) -> String {
    world
        .fakes
        .state()
        .zfs_snapshots
        .iter()
        .filter(|s| s.name.starts_with(&format!("{SOURCE}@")))
        .map(|s| format!("{}\t{}\t{}\t{}\t{}\n", s.name, s.guid, s.createtxg, s.creation, s.holds.len()))
        .collect()
}

fn clear_faults(world: &World) {
    let _lock = tests::fakes::lock(world.fakes.dir()).unwrap();
    tests::fakes::write_faults(world.fakes.dir(), &[]).unwrap();
}

/// Bodies that the sender's filter must refuse for the job `web` (existing snapshots, not
/// raw, no force): another dataset, options, a changed shape, shell syntax, other subcommands.
const REFUSED: &[&str] = &[
    // Another dataset, a child, a clone's origin, the abbreviated and bookmark forms.
    "zfs send tank/secret@s",
    "zfs send tank/web/child@ari-backup-1",
    "zfs send -I tank/secret@s tank/web@ari-backup-2",
    "zfs send -I tank/web@ari-backup-1 tank/secret@s",
    "zfs send -I tank/web@ari-backup-1 tank/web/child@ari-backup-1",
    "zfs send -I @ari-backup-1 tank/web@ari-backup-2",
    "zfs send -I tank/web#bookmark tank/web@ari-backup-2",
    "zfs send -i tank/web@ari-backup-1 tank/web@ari-backup-2",
    // Not a prefixed snapshot, or the dataset itself.
    "zfs send tank/web@manual",
    "zfs send tank/web",
    "zfs send tank/web@ari-backup-",
    "zfs send -I tank/web@ari-backup-1 tank/web@manual",
    // Options: before, between, after the names (zfs's getopt permutes), and raw for a job
    // that is not.
    "zfs send -R tank/web@ari-backup-1",
    "zfs send -p tank/web@ari-backup-1",
    "zfs send -b tank/web@ari-backup-1",
    "zfs send -w tank/web@ari-backup-1",
    "zfs send -v tank/web@ari-backup-1",
    "zfs send tank/web@ari-backup-1 -R",
    "zfs send -I tank/web@ari-backup-1 -R tank/web@ari-backup-2",
    "zfs send -I tank/web@ari-backup-1 tank/web@ari-backup-2 -R",
    "zfs send -R -I tank/web@ari-backup-1 tank/web@ari-backup-2",
    "zfs send -I tank/web@ari-backup-1 tank/web@ari-backup-2 tank/secret@s",
    "zfs send tank/web@ari-backup-1 tank/secret@s",
    // Whitespace: tabs, doubled spaces, a newline, a trailing space, a leading one.
    "zfs send\ttank/web@ari-backup-1",
    "zfs  send tank/web@ari-backup-1",
    "zfs send -I tank/web@ari-backup-1  tank/web@ari-backup-2",
    "zfs send -I tank/web@ari-backup-1\ttank/web@ari-backup-2",
    "zfs send tank/web@ari-backup-1\nid",
    "zfs send tank/web@ari-backup-1 ",
    " zfs send tank/web@ari-backup-1",
    // Shell syntax in or after a part.
    "zfs send tank/web@ari-backup-1;id",
    "zfs send tank/web@ari-backup-1 ; id",
    "zfs send tank/web@ari-backup-$(id)",
    "zfs send tank/web@ari-backup-`id`",
    "zfs send 'tank/web@ari-backup-1'",
    "zfs send tank/web@ari-backup-1 | zfs recv vault/x",
    "zfs send tank/web@ari-backup-1 > /tmp/x",
    "zfs send -I tank/web@ari-backup-1 tank/web@ari-backup-2&&id",
    "zfs send -I tank/web@ari-backup-1$(id) tank/web@ari-backup-2",
    "zfs send -I tank/web@a\"b tank/web@ari-backup-2",
    // Resume tokens: characters outside [0-9a-f-], a second word, an empty one.
    "zfs send -t 1-abc;id",
    "zfs send -t 1-abc id",
    "zfs send -t 1-ABC",
    "zfs send -t $(id)",
    "zfs send -t ",
    "zfs send -t 1-abc -v",
    "zfs send -nvt 1-abc",
    // Holds: another tag, another dataset, recursive, options.
    "zfs hold other tank/web@ari-backup-1",
    "zfs hold ari-send-web tank/web@manual",
    "zfs hold ari-send-web tank/secret@s",
    "zfs hold -r ari-send-web tank/web@ari-backup-1",
    "zfs hold ari-send-web tank/web@ari-backup-1 tank/secret@s",
    "zfs release other tank/web@ari-backup-1",
    "zfs release -r ari-send-web tank/web@ari-backup-1",
    "zfs release ari-send-web tank/secret@s",
    "zfs holds -H tank/secret@s",
    // What the sender's key may never run.
    "zfs destroy tank/web@ari-backup-1",
    "zfs destroy -r tank/web",
    "zfs recv tank/web",
    "zfs recv -F tank/web",
    "zfs rollback tank/web@ari-backup-1",
    "zfs snapshot tank/web@ari-backup-9",
    "zfs rename tank/web@manual tank/web@ari-backup-9",
    "zfs set readonly=off tank/web",
    "zfs list -H -p -t snapshot -o name,guid,createtxg,creation,userrefs -d 1 tank/secret",
];

/// Under `remote_sudo` or not: the job runs through the filter, and every body of [`REFUSED`] is
/// refused (126), logged, and reaches no zfs or sudo; the listing script of another dataset
/// too. Held: every attack.
fn the_filter_lets_the_job_through_and_refuses_the_rest(sudo: bool) {
    let rig = Rig::new(sudo, "");
    let out = run_now(&rig.world, &rig.job);
    assert_eq!(out.status.code(), Some(0), "{}\nrefused:\n{}", stderr(&out), rig.logged());
    assert_eq!(names(&rig.world, RECEIVER), ["ari-backup-1", "manual", "ari-backup-2"]);
    assert_eq!(held(&rig.world), ["ari-backup-2"]);
    assert_eq!(rig.logged(), "", "nothing of the job's was refused");

    // What the job does pass, as the attacker sends it: a prefixed snapshot whole, an
    // incremental from any of the dataset's snapshots, a hold of a prefixed snapshot and a
    // release of any with the tag.
    for body in [
        "zfs send tank/web@ari-backup-1",
        "zfs send -I tank/web@manual tank/web@ari-backup-2",
        "zfs hold ari-send-web tank/web@ari-backup-1",
        "zfs release ari-send-web tank/web@ari-backup-1",
    ] {
        let out = rig.filter(&rig.wrapped(body));
        assert_exit(&out, 0);
    }

    let sudo_log = rig.world.fx.path("sudo-log");
    for body in REFUSED {
        let calls = rig.zfs_calls().len();
        let sudo_runs = std::fs::read_to_string(&sudo_log).unwrap_or_default();
        let line = rig.wrapped(body);
        let out = rig.filter(&line);
        assert_eq!(
            out.status.code(),
            Some(126),
            "{body:?} was not refused:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(stderr(&out).contains("ari-filter: refused"), "{body:?}: {}", stderr(&out));
        assert_eq!(rig.zfs_calls().len(), calls, "{body:?} reached zfs: {:?}", rig.zfs_calls());
        assert_eq!(
            std::fs::read_to_string(&sudo_log).unwrap_or_default(),
            sudo_runs,
            "{body:?} reached sudo"
        );
        assert!(rig.logged().contains(&format!("not a command of the jobs: {line}")), "{body:?} not logged");
    }
    // Under remote_sudo, the body without sudo, sudo around another command, sudo's other forms.
    if sudo {
        for line in [
            "zfs send tank/web@ari-backup-1",
            "sudo -n -- zfs send tank/web@ari-backup-1",
            "sudo -n -- /bin/sh -c '( exec zfs send tank/secret@s )'",
            "sudo -n -- /bin/sh -c '( exec zfs send tank/web@ari-backup-1 ); id'",
            "sudo -n -- /bin/sh -c '( exec zfs send tank/web@ari-backup-1 )' ; id",
            "sudo -n -- /bin/sh -c '( exec zfs send -t 1-ab )'x",
            "sudo -n -- sh -c 't=1' ari-zfs-resume tank/web ari-backup-",
            "ARI_ZFS_RESUME_TOKEN=1-ab sudo -n -- sh -c 'exec zfs send -t \"$ARI_ZFS_RESUME_TOKEN\"'",
        ] {
            let out = rig.filter(line);
            assert_eq!(out.status.code(), Some(126), "{line:?}: {}", stderr(&out));
        }
    }
    // The listing script, as allowed, then with another dataset or more after it.
    let listing = rig.allowed.iter().find(|line| line.contains("ari-zfs-send tank/web")).unwrap().clone();
    assert_exit(&rig.filter(&listing), 0);
    for tail in ["tank/secret", "tank/web tank/secret", "tank/web;id", "tank/web/child", "tank"] {
        let line = listing.replace("ari-zfs-send tank/web", &format!("ari-zfs-send {tail}"));
        let out = rig.filter(&line);
        assert_eq!(out.status.code(), Some(126), "{tail:?}: {}", stderr(&out));
    }
    rig.world.fakes.assert_no_unexpected_calls();
}

#[test]
fn the_filter_lets_the_job_through_and_refuses_the_rest_as_root() {
    the_filter_lets_the_job_through_and_refuses_the_rest(false);
}

#[test]
fn the_filter_lets_the_job_through_and_refuses_the_rest_under_remote_sudo() {
    the_filter_lets_the_job_through_and_refuses_the_rest(true);
}

/// The sends (`zfs send ...`, dry runs left out) the fakes ran.
fn real_sends(world: &World) -> Vec<String> {
    zfs_calls(world).into_iter().filter(|c| c.starts_with("send ") && !c.starts_with("send -nvt")).collect()
}

/// `zfs send -t TOKEN` with ari's key: the filter hands it to the script that decodes the
/// token. A token of the job's own prefixed snapshot resumes; one of another dataset, a child,
/// an unprefixed snapshot, a name with odd characters, or a decoding with two `toname` lines
/// sends nothing (exit 3). Held: every attack.
fn resume_tokens_of_anything_but_a_prefixed_snapshot_are_refused(sudo: bool) {
    let rig = Rig::new(sudo, "");
    let world = &rig.world;
    let resume = |token: &str| rig.filter(&rig.wrapped(&format!("zfs send -t {token}")));

    let ours = token("tank/web@ari-backup-1", guid(world, "tank/web@ari-backup-1"));
    let out = resume(&ours);
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("ARI-FAKE-ZFS-STREAM "), "{}", stdout(&out));
    assert_eq!(real_sends(world), [format!("send -t {ours}")]);

    let refused = [
        ("another dataset", token(SECRET, guid(world, SECRET))),
        ("a child", token("tank/web/child@ari-backup-1", guid(world, "tank/web/child@ari-backup-1"))),
        ("an unprefixed snapshot", token("tank/web@manual", guid(world, "tank/web@manual"))),
        // The fake finds the snapshot by its GUID in the dataset: these names print as given.
        ("a name with a space", token("tank/web@ari-backup-1 x", guid(world, "tank/web@ari-backup-1"))),
        (
            "a name with a newline",
            token("tank/web@ari-backup-1\n\ttoname = x", guid(world, "tank/web@ari-backup-1")),
        ),
        (
            "a name with shell syntax",
            token("tank/web@ari-backup-$(id)", guid(world, "tank/web@ari-backup-1")),
        ),
        ("the prefix alone", token("tank/web@ari-backup-", guid(world, "tank/web@ari-backup-1"))),
        ("a snapshot that is gone", token("tank/web@ari-backup-7", 77)),
        ("a corrupt token", format!("{}0", &ours[..ours.len() - 1])),
        ("no token at all", "1-0-0-".to_string()),
        ("dashes only", "---".to_string()),
        ("an option in hex", "-e".to_string()),
    ];
    for (what, token) in &refused {
        let out = resume(token);
        assert_eq!(out.status.code(), Some(3), "{what}: {}{}", stdout(&out), stderr(&out));
        assert_eq!(stdout(&out), "", "{what}: nothing sent");
        assert_eq!(real_sends(world).len(), 1, "{what}: {:?}", real_sends(world));
    }

    // Decodings that zfs itself would not print, made by the fake on demand: two `toname`
    // lines in either order, one with trailing text, a `toname` only on stderr-like noise.
    let faked = token("tank/web@ari-backup-2", guid(world, "tank/web@ari-backup-2"));
    for printed in [
        "\ttoname = tank/web@ari-backup-2\n\ttoname = tank/secret@s\n",
        "\ttoname = tank/secret@s\n\ttoname = tank/web@ari-backup-2\n",
        "\ttoname = tank/web@ari-backup-2 tank/secret@s\n",
        "\ttoname = tank/web@ari-backup-2/../secret@s\n",
        "\ttoname = tank/web@ari-backup-2\r\n",
        "\ttoname= tank/web@ari-backup-2\n",
        "\ttoname = \n",
        "",
    ] {
        clear_faults(world);
        world.fakes.output_matching("zfs", &format!("-nvt {faked}"), printed);
        let out = resume(&faked);
        assert_eq!(out.status.code(), Some(3), "{printed:?}: {}{}", stdout(&out), stderr(&out));
        assert_eq!(real_sends(world).len(), 1, "{printed:?}: {:?}", real_sends(world));
    }
    world.fakes.assert_no_unexpected_calls();
}

#[test]
fn resume_tokens_of_anything_but_a_prefixed_snapshot_are_refused_as_root() {
    resume_tokens_of_anything_but_a_prefixed_snapshot_are_refused(false);
}

#[test]
fn resume_tokens_of_anything_but_a_prefixed_snapshot_are_refused_under_remote_sudo() {
    resume_tokens_of_anything_but_a_prefixed_snapshot_are_refused(true);
}

/// FINDING: OpenZFS's `zfs send -t` does not send the snapshot the token's `toname` names: it
/// looks up the token's `toguid`, starting in toname's dataset and then in ever larger parts of
/// the hierarchy, up to the whole pool (lib/libzfs/libzfs_sendrecv.c,
/// `zfs_send_resume_impl_cb_impl`: `guid_to_name(hdl, toname, toguid, B_FALSE, name)`, then
/// `lzc_send_resume_redacted(zhp->zfs_name, ...)`; `guid_to_name_redact_snaps` chops toname at
/// `@`, then at each `/`, and walks each parent's children). `zfs send -nvt` prints the token's
/// contents (toname as the token says it) and then what it would really send: `full send of
/// NAME estimated size is ...` with the resolved NAME. The script `send::RESUME` reads only the
/// `toname` line, so a token whose toname is `DATASET@PREFIX...` and whose toguid is the GUID
/// of a snapshot of any other dataset of the pool passes it, and `zfs send -t` sends that
/// other snapshot to the key's holder.
///
/// The fake resolves a token within its toname's dataset only, so it is told here to answer as
/// OpenZFS does for such a token: the dry run's text and the stream of tank/secret@s.
#[test]
fn a_token_naming_the_dataset_with_another_datasets_guid_is_refused() {
    let rig = Rig::new(false, "");
    let world = &rig.world;
    let secret_guid = guid(world, SECRET);
    let forged = token("tank/web@ari-backup-1", secret_guid);
    let contents = ResumeToken::decode(&forged).unwrap().contents();
    world.fakes.output_matching(
        "zfs",
        &format!("send -nvt {forged}"),
        &format!("{contents}full send of {SECRET} estimated size is 512B\n"),
    );
    let stream = StreamHeader {
        dataset: "tank/secret".into(),
        raw: false,
        from_guid: None,
        snapshots: vec![StreamSnapshot { name: "s".into(), guid: secret_guid, creation: now() }],
        payload_bytes: 0,
        resume_bytes: Some(0),
    };
    world.fakes.output_matching(
        "zfs",
        &format!("send -t {forged}"),
        &format!("{}{STREAM_END}\n", stream.line()),
    );
    let out = rig.filter(&format!("zfs send -t {forged}"));
    assert!(
        !stdout(&out).contains("tank/secret"),
        "the key received a stream of tank/secret through a token that names tank/web@ari-backup-1 (exit {:?}): {}",
        out.status.code(),
        stdout(&out)
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(real_sends(world).is_empty(), "{:?}", real_sends(world));
}

/// What a run that must change nothing left: it failed, ran no receive, moved no hold, and
/// the receiver and the holds are as they were.
#[track_caller]
fn assert_nothing_moved(world: &World, what: &str, out: &Output, before: &(Vec<String>, Vec<String>, usize)) {
    assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
    let calls = zfs_calls(world);
    let new = &calls[before.2..];
    assert!(
        !new.iter().any(|c| c.starts_with("recv") || c.starts_with("hold ") || c.starts_with("release")),
        "{what}: {new:?}"
    );
    assert_eq!((names(world, RECEIVER), held(world)), (before.0.clone(), before.1.clone()), "{what}");
    assert!(!world.fx.path("pwned").exists(), "{what}: an injected command ran");
}

fn snapshot_of_state(world: &World) -> (Vec<String>, Vec<String>, usize) {
    (names(world, RECEIVER), held(world), zfs_calls(world).len())
}

/// A sender that prints names with shell syntax, a space and an option, a second `@` or a `/`,
/// as its newest prefixed snapshot or as a held one, through the filter: ari runs nothing
/// undeclared (it refuses the expansion before anything of it runs), receives nothing and
/// moves no hold; lines of other datasets and other tags' holds are left alone. Held: every
/// attack.
#[test]
fn hostile_sender_names_make_ari_run_nothing_undeclared() {
    let rig = Rig::new(false, "");
    let world = &rig.world;
    let pwned = world.fx.p("pwned");
    let real = real_listing(world);
    let (txg, creation) = (1_000_000, now() - 3600);
    let listed = |name: &str| format!("{real}{}", listing_line(name, 9, txg, creation));
    let cases: Vec<(&str, String)> = vec![
        ("a `;` command", listed(&format!("tank/web@ari-backup-9;touch {pwned}"))),
        ("a `$()` and a backtick", listed(&format!("tank/web@ari-backup-9$(touch {pwned})`touch {pwned}`"))),
        ("a space and an option", listed("tank/web@ari-backup-9 -R")),
        ("a second @ and a /", listed("tank/web@ari-backup-9@x/../../secret@s")),
    ];
    for (what, printed) in &cases {
        clear_faults(world);
        world.fakes.output_matching("zfs", "userrefs -d 1 tank/web", printed);
        world.fakes.output_matching(
            "zfs",
            "holds -H tank/web@manual",
            &format!("tank/web@ari-backup-1;touch {pwned}\t{TAG}\tMon Dec  7 10:00 2026\n"),
        );
        let before = snapshot_of_state(world);
        let out = run_now(world, &rig.job);
        assert_nothing_moved(world, what, &out, &before);
        assert!(stderr(&out).contains("none of the commands the step declares"), "{what}: {}", stderr(&out));
        assert!(
            !zfs_calls(world)[before.2..].iter().any(|c| c.starts_with("send ")),
            "{what}: sent {:?}",
            &zfs_calls(world)[before.2..]
        );
    }
    assert_eq!(rig.logged(), "", "ari refused them itself: nothing reached the filter");

    // Lines of other datasets (another, a child, one whose name starts with the dataset's) and
    // holds of other tags and datasets are left alone: the run sends tank/web's, holds its
    // newest, and releases nothing of anyone else's.
    clear_faults(world);
    let mut printed = manual_held(&real);
    for (name, guid) in [
        ("tank/secret@ari-backup-99", 99),
        ("tank/web/child@ari-backup-98", 98),
        ("tank/webx@ari-backup-97", 97),
    ] {
        printed.push_str(&listing_line(name, guid, txg, creation));
    }
    world.fakes.output_matching("zfs", "userrefs -d 1 tank/web", &printed);
    world.fakes.output_matching(
        "zfs",
        "holds -H tank/web@manual",
        &format!("tank/secret@s\t{TAG}\tMon Dec  7 10:00 2026\ntank/web@manual\tsyncoid\tMon Dec  7 10:00 2026\ntank/webx@ari-backup-1\t{TAG}\tMon Dec  7 10:00 2026\ntank/web/child@ari-backup-1\t{TAG}\tMon Dec  7 10:00 2026\n"),
    );
    let out = run_now(world, &rig.job);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names(world, RECEIVER), ["ari-backup-1", "manual", "ari-backup-2"]);
    assert_eq!(held(world), ["ari-backup-2"]);
    let moves: Vec<String> = zfs_calls(world)
        .into_iter()
        .filter(|c| c.starts_with("hold ") || c.starts_with("release "))
        .collect();
    assert_eq!(moves, [format!("hold {TAG} tank/web@ari-backup-2")]);
    assert!(
        real_sends(world)
            .iter()
            .all(|s| !s.contains("secret") && !s.contains("child") && !s.contains("webx")),
        "{:?}",
        real_sends(world)
    );
    assert_eq!(rig.logged(), "");
    world.fakes.assert_no_unexpected_calls();
    // A held name with a `;` command, which the listing does not name: no release is ever of
    // it (a hold counts only for a listed snapshot), and nothing injected runs.
    clear_faults(world);
    world.fakes.output_matching("zfs", "userrefs -d 1 tank/web", &manual_held(&real_listing(world)));
    world.fakes.output_matching(
        "zfs",
        "holds -H tank/web@manual",
        &format!("tank/web@ari-backup-1;touch {pwned}\t{TAG}\tMon Dec  7 10:00 2026\n"),
    );
    let before = zfs_calls(world).len();
    let out = run_now(world, &rig.job);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !zfs_calls(world)[before..].iter().any(|c| c.starts_with("release ")),
        "a release of an unlisted name: {:?}",
        &zfs_calls(world)[before..]
    );
    assert!(!world.fx.path("pwned").exists(), "an injected command ran");
}

/// `listing` with `tank/web@manual` held once (userrefs 1), so that the listing script asks
/// `zfs holds -H` of it.
fn manual_held(listing: &str) -> String {
    listing
        .lines()
        .map(|l| match l.strip_prefix("tank/web@manual\t").and_then(|_| l.strip_suffix("\t0")) {
            Some(head) => format!("{head}\t1\n"),
            None => format!("{l}\n"),
        })
        .collect()
}

/// A local world with the sender's dataset and `snapshots` (one a day, the newest yesterday)
/// and the job `web` with `extra` lines; the receiver's parent exists.
fn local_world(snapshots: &[&str], extra: &str) -> (World, PathBuf) {
    let world = World::new();
    world.fakes.add_dataset(SOURCE);
    world.fakes.add_dataset("vault");
    let now = now();
    for (i, name) in snapshots.iter().enumerate() {
        world.fakes.add_zfs_snapshot(&format!("{SOURCE}@{name}"), now - (snapshots.len() - i) as i64 * DAY);
    }
    let job = world.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs-send\nsource_hostname: localhost\nsource_dataset: {SOURCE}\ndataset_name: {RECEIVER}\nzfs_keep: {{daily: 30}}\n{extra}"
        ),
    );
    (world, job)
}

/// Listings that do not parse, or hold two snapshots of one GUID, are refused whole: nothing
/// sent, nothing received, no hold moved. Held: every one.
#[test]
fn malformed_sender_listings_are_refused_whole() {
    let (world, job) = local_world(&["ari-backup-1", "ari-backup-2"], "");
    let real = real_listing(&world);
    let (txg, creation) = (1_000_000, now() - 3600);
    let two = guid(&world, "tank/web@ari-backup-2");
    let line = |text: &str| format!("{real}{text}\n");
    let cases = [
        ("a duplicate GUID", line(&format!("tank/web@ari-backup-9\t{two}\t{txg}\t{creation}\t0"))),
        ("a negative GUID", line(&format!("tank/web@ari-backup-9\t-9\t{txg}\t{creation}\t0"))),
        (
            "a GUID past u64",
            line(&format!("tank/web@ari-backup-9\t18446744073709551616\t{txg}\t{creation}\t0")),
        ),
        ("a negative createtxg", line(&format!("tank/web@ari-backup-9\t9\t-1\t{creation}\t0"))),
        ("a creation past i64", line(&format!("tank/web@ari-backup-9\t9\t{txg}\t9223372036854775808\t0"))),
        ("a negative creation", line(&format!("tank/web@ari-backup-9\t9\t{txg}\t-1\t0"))),
        ("a negative userrefs", line(&format!("tank/web@ari-backup-9\t9\t{txg}\t{creation}\t-1"))),
        ("four fields", line(&format!("tank/web@ari-backup-9\t9\t{txg}\t{creation}"))),
        ("six fields", line(&format!("tank/web@ari-backup-9\t9\t{txg}\t{creation}\t0\tx"))),
        ("no @", line(&format!("tank/web\t9\t{txg}\t{creation}\t0"))),
        ("an error as text", line("cannot open 'tank/web': permission denied")),
        (
            "a hold line with a tab in its tag",
            line(&format!("tank/web@ari-backup-1\t{TAG}\tx\tMon Dec  7 10:00 2026")),
        ),
    ];
    for (what, printed) in &cases {
        clear_faults(&world);
        world.fakes.output_matching("zfs", "userrefs -d 1 tank/web", printed);
        let before = snapshot_of_state(&world);
        let out = run_now(&world, &job);
        assert_nothing_moved(&world, what, &out, &before);
        assert!(
            !zfs_calls(&world)[before.2..].iter().any(|c| c.starts_with("send ")),
            "{what}: {:?}",
            &zfs_calls(&world)[before.2..]
        );
    }
}

/// A receiver whose listing is hostile (a token with shell syntax, upper case or nothing, a
/// token of another dataset or of an unprefixed snapshot, duplicate GUIDs, `absent` for a
/// dataset that exists), and transfers that fail on either side or whose hold fails: ari
/// runs nothing undeclared, overwrites nothing, moves no hold before a receive succeeded, and
/// reports each as a failure. Held: every attack.
#[test]
fn hostile_receivers_and_failed_transfers_never_move_a_hold() {
    let rig = Rig::new(false, "");
    let world = &rig.world;
    assert_exit(&run_now(world, &rig.job), 0);
    world.fakes.add_zfs_snapshot("tank/web@ari-backup-3", now() - 3600);
    let pwned = world.fx.p("pwned");
    let unchanged = |what: &str, out: &Output, before: &(Vec<String>, Vec<String>, usize)| {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
        let new = zfs_calls(world)[before.2..].to_vec();
        assert!(!new.iter().any(|c| c.starts_with("hold ") || c.starts_with("release ")), "{what}: {new:?}");
        assert!(!new.iter().any(|c| c.starts_with("send -t")), "{what}: {new:?}");
        assert_eq!((names(world, RECEIVER), held(world)), (before.0.clone(), before.1.clone()), "{what}");
        assert!(!std::path::Path::new(&pwned).exists(), "{what}");
    };

    let tokens = [
        ("a token with shell syntax", format!("1-abc;touch {pwned}\n")),
        ("a token in upper case", "1-ABC\n".to_string()),
        ("an empty token", "\n".to_string()),
        ("a token with a space", "1-abc 2-def\n".to_string()),
        ("a token of another dataset", format!("{}\n", token(SECRET, guid(world, SECRET)))),
        (
            "a token of an unprefixed snapshot",
            format!("{}\n", token("tank/web@manual", guid(world, "tank/web@manual"))),
        ),
    ];
    for (what, printed) in &tokens {
        clear_faults(world);
        world.fakes.output_matching("zfs", "receive_resume_token vault/web", printed);
        let before = snapshot_of_state(world);
        let out = run_now(world, &rig.job);
        unchanged(what, &out, &before);
    }
    // The filter's script refused the two tokens of the wrong snapshots; ari refused the rest.
    assert_eq!(rig.logged(), "");

    // The receiver lists two snapshots of one GUID.
    clear_faults(world);
    let two = guid(world, "vault/web@ari-backup-2");
    world.fakes.output_matching(
        "zfs",
        "guid,createtxg,creation,userrefs -d 1 vault/web",
        &format!("vault/web@ari-backup-2\t{two}\t1\t1\t0\nvault/web@x\t{two}\t2\t2\t0\n"),
    );
    let before = snapshot_of_state(world);
    unchanged("duplicate GUIDs on the receiver", &run_now(world, &rig.job), &before);

    // The receiver says `absent` for a dataset that exists: the full send into it is refused
    // by zfs recv (no -F), and nothing of the receiver is overwritten.
    clear_faults(world);
    world.fakes.fail_matching(
        "zfs",
        "list -H -o name vault/web",
        1,
        "cannot open 'vault/web': dataset does not exist",
    );
    let before = snapshot_of_state(world);
    let out = run_now(world, &rig.job);
    unchanged("an existing receiver that says it is absent", &out, &before);
    assert!(
        !zfs_calls(world)[before.2..].iter().any(|c| c.starts_with("recv") && c.contains("-F")),
        "{:?}",
        &zfs_calls(world)[before.2..]
    );

    // The receive fails; the send fails; the hold fails after the receive succeeded.
    for (what, args, stderr_text) in [
        ("the receive fails", "recv -s", "cannot receive incremental stream: out of space"),
        ("the send fails", "send -I", "warning: cannot send 'tank/web@ari-backup-3': Input/output error"),
    ] {
        clear_faults(world);
        world.fakes.fail_matching("zfs", args, 1, stderr_text);
        let before = snapshot_of_state(world);
        let out = run_now(world, &rig.job);
        unchanged(what, &out, &before);
    }
    clear_faults(world);
    world.fakes.fail_matching("zfs", "hold ", 1, "cannot hold snapshot: permission denied");
    let out = run_now(world, &rig.job);
    assert_eq!(out.status.code(), Some(1), "the hold fails: {}", stderr(&out));
    assert_eq!(names(world, RECEIVER), ["ari-backup-1", "manual", "ari-backup-2", "ari-backup-3"]);
    assert_eq!(held(world), ["ari-backup-2"], "no release after a hold that failed");
    assert!(!zfs_calls(world).iter().any(|c| c.starts_with("release ")));

    // Once nothing fails, the hold moves.
    clear_faults(world);
    assert_exit(&run_now(world, &rig.job), 0);
    assert_eq!(held(world), ["ari-backup-3"]);
    assert_eq!(rig.logged(), "");
}

/// FINDING: a received snapshot keeps the `creation` its stream carries (OpenZFS's
/// dmu_recv.c sets the new snapshot's creation from `drr_creation_time`), and the receiver's
/// expiry judges received snapshots by it (`keeping_their_times`). A compromised sender (root
/// there: a clock set back before `zfs snapshot`, or a crafted stream) dates new prefixed
/// snapshots into the periods the receiver's history already fills, later within each than
/// the real one: the next run receives them (an ordinary `-I`, no `force_receive`), and the
/// receiver's own expiry then destroys every real snapshot of those periods. The off-site copy's
/// history is gone after one run of a sender that an attacker controls.
#[test]
fn a_sender_cannot_date_snapshots_so_that_the_receivers_expiry_destroys_its_history() {
    let (world, job) = local_world(&[], "");
    std::fs::write(
        &job,
        std::fs::read_to_string(&job).unwrap().replace("zfs_keep: {daily: 30}", "zfs_keep: {daily: 3}"),
    )
    .unwrap();
    let day_start = |days_ago: i64| (now() / DAY - days_ago) * DAY;
    for days_ago in [3, 2, 1] {
        world
            .fakes
            .add_zfs_snapshot(&format!("{SOURCE}@ari-backup-real-{days_ago}"), day_start(days_ago) + 3600);
    }
    let out = run(world.ari().env("TZ", "UTC").arg("run").arg(&job));
    assert_exit(&out, 0);
    let real = ["ari-backup-real-3", "ari-backup-real-2", "ari-backup-real-1"];
    assert_eq!(names(&world, RECEIVER), real);

    // The attacker's snapshots: made after the real ones, dated an hour after each.
    for days_ago in [3, 2, 1] {
        world
            .fakes
            .add_zfs_snapshot(&format!("{SOURCE}@ari-backup-forged-{days_ago}"), day_start(days_ago) + 7200);
    }
    let _ = std::fs::remove_file(world.fx.path("state/history/web.json"));
    let out = run(world.ari().env("TZ", "UTC").arg("run").arg(&job));
    // The receive itself succeeds (the data is the sender's to send); the receiver's expiry sees
    // dates that go back in the order it received them, destroys nothing and fails the run.
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("ari-backup-forged-3 was received after vault/web@ari-backup-real-1"),
        "{}",
        stderr(&out)
    );
    let kept = names(&world, RECEIVER);
    assert!(
        real.iter().all(|name| kept.iter().any(|k| k == name)),
        "the receiver's expiry destroyed its real history after a sender dated new snapshots into its periods: it keeps {kept:?}\n{}",
        stdout(&out)
    );
}

/// `ari run JOB` with a `zfs` first on PATH that prints `listing` for the receiver's listing
/// of its snapshots and hands every other call to the fakes: a listing too long to keep in the
/// fakes' fault rules, which they read at every call. (The receiver's: the sender's listing
/// script reads its listing line by line in sh, which takes seconds for 200,000 lines.)
fn run_with_listing(world: &World, job: &std::path::Path, listing: &str) -> Output {
    std::fs::write(world.fx.path("listing"), listing).unwrap();
    world.fx.write_script(
        "listing-bin/zfs",
        &format!(
            "#!/bin/sh\ncase \"$*\" in *'guid,createtxg,creation,userrefs -d 1 vault/web') exec cat {} ;; esac\nexec {} \"$@\"\n",
            world.fx.p("listing"),
            world.fakes.bin_dir().join("zfs").display()
        ),
    );
    let path = format!("{}:{}", world.fx.p("listing-bin"), world.fakes.path_env().to_string_lossy());
    let _ = std::fs::remove_file(world.fx.path("state/history/web.json"));
    run(world.ari().env("PATH", path).arg("run").arg(job))
}

/// The receiver's listing of vault/web, as the fake prints it.
fn receiver_listing(world: &World) -> String {
    world
        .fakes
        .state()
        .zfs_snapshots
        .iter()
        .filter(|s| s.name.starts_with(&format!("{RECEIVER}@")))
        .map(|s| format!("{}\t{}\t{}\t{}\t{}\n", s.name, s.guid, s.createtxg, s.creation, s.holds.len()))
        .collect()
}

/// A receiver that lists 200,000 more snapshots (of its own, which the sender does not have,
/// older than the common one), and one whose listing is longer than ari keeps of an output
/// (16 MiB): the first is read and planned (the common base found among them, only what is
/// new sent), the second is refused whole, never read with a hole. Held.
#[test]
fn a_listing_of_200000_lines_is_planned_and_one_past_what_ari_keeps_is_refused() {
    let (world, job) = local_world(&["ari-backup-1", "ari-backup-2"], "");
    assert_exit(&run_now(&world, &job), 0);
    world.fakes.add_zfs_snapshot("tank/web@ari-backup-3", now() - 3600);
    let creation = now() - 10 * DAY;
    let junk = |count: u64| -> String {
        (0..count).map(|i| listing_line(&format!("vault/web@junk-{i}"), 1_000_000 + i, 0, creation)).collect()
    };
    let out = run_with_listing(&world, &job, &format!("{}{}", junk(200_000), receiver_listing(&world)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names(&world, RECEIVER), ["ari-backup-1", "ari-backup-2", "ari-backup-3"]);
    assert_eq!(real_sends(&world).last().unwrap(), "send -I tank/web@ari-backup-2 tank/web@ari-backup-3");

    world.fakes.add_zfs_snapshot("tank/web@ari-backup-4", now() - 60);
    let listing = format!("{}{}", junk(400_000), receiver_listing(&world));
    assert!(listing.len() > 16 << 20, "{}", listing.len());
    let before = snapshot_of_state(&world);
    let out = run_with_listing(&world, &job, &listing);
    assert_nothing_moved(&world, "a listing past what ari keeps", &out, &before);
    assert!(stderr(&out).contains("more than the 16 MiB of output ari reads"), "{}", stderr(&out));
}
