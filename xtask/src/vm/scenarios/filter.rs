//! The ssh filter of `ari authorize --install`, in the guest, on a key of the scenario's own:
//! the LVM+rdiff job, the zfs-over-LVM job and a zfs job that pushes into the guest through its
//! rrsync run through it with nothing refused; an attacker's rsync with the filtered key stays
//! confined to the pushed job's destination; a command outside the plans is refused and logged.
//! The jobs and checks here serve the sudo scenario too.

use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fixture::{assert_clean, assert_no_ledger, history, read, Ctx, Fixture};
use super::frame::assert_a_crafted_frame_is_contained;
use super::lvm::{assert_mirror_is_the_snapshot, lvm_rdiff_job, RDIFF_ORIGIN};
use super::zfs::{old_snapshots, zfs_lvm_job, zfs_snapshots};
use crate::shell;
use crate::vm::machine::Vm;

/// i. `ari authorize --install` in the guest, for a key of the scenario's own (the harness's
/// key must stay unfiltered, or the runner could not reset the guest): the LVM+rdiff job of (a)
/// and the zfs-over-LVM job of (c), with the expiry of an old snapshot, run through the filter
/// against the real tools with nothing refused; `ari check --connect` finds the filter up to
/// date; a command outside the plans is refused (126) and logged to the guest's journal. The
/// key's line and the filter are removed at the end, and by `reset_guest` after a failure.
pub(super) fn filtered_jobs(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let fx = Fixture::without_config()?;
    let (key, public) = fresh_key(&fx, FILTER_KEY_COMMENT)?;
    let options = only_key(&vm.ssh_options(), &key);
    fx.write_config(ctx, &options, &format!("ssh_filter_path: {FILTER_PATH}\n"))?;
    let since = vm.run("date +%s")?.trim().to_string();
    vm.run(&format!("printf '%s\\n' '{public}' >> /root/.ssh/authorized_keys"))?;
    let result = (|| {
        let jobs = FilteredJobs::new(vm, &fx, true)?;
        let public_file = fx.p("id_ed25519.pub");
        let authorize = ["authorize", "--host", "127.0.0.1", "--key", &public_file];
        let host = jobs.authorize_json(ctx, &fx, &authorize)?;
        fx.ari_expect(ctx, &[&authorize[..], &["--install"]].concat(), 0)?;
        let out = fx.stdout();
        ensure!(
            out.contains("ari: installed") && out.contains("lets ari's key run its"),
            "ari authorize --install printed {out:?}"
        );
        let line = vm.run(&format!(
            "grep -F ' {FILTER_KEY_COMMENT}' /root/.ssh/authorized_keys; stat -c %a {FILTER_PATH}"
        ))?;
        ensure!(
            line == format!("restrict,command=\"{FILTER_PATH}\" {public}\n755\n"),
            "after the install, the key's line and the filter's mode are {line:?}"
        );
        println!("  installed: {FILTER_PATH} 0755, the key's line restrict,command=...");

        jobs.run(ctx, &fx)?;
        let refused = journal(vm, &since, "-t ari-filter")?;
        let refused = filter_refusals(&refused);
        ensure!(refused.is_empty(), "the filter refused commands of the jobs:\n{}", refused.join("\n"));
        println!("  journalctl -t ari-filter: nothing refused");
        assert_rsync_is_confined(vm, &fx, &options, "root", "/root")?;
        assert_a_crafted_frame_is_contained(vm, &host, &options, "root")?;
        assert_refused_outside_the_plans(vm, &options, "root", &since)?;
        jobs.assert_clean(vm, &fx)
    })();
    let removed = vm.run(&format!(
        "{}zfs list -H -o name tank/backups/zfs-lvm >/dev/null 2>&1 && zfs destroy -r tank/backups/zfs-lvm\n\
         ! zfs list -H -o name {PUSHED_DATASET} >/dev/null 2>&1 || zfs destroy -r {PUSHED_DATASET}\n\
         ! grep -q ' {FILTER_KEY_COMMENT}$' /root/.ssh/authorized_keys && ! test -e {FILTER_PATH}",
        remove_filter()
    ));
    result?;
    removed.context("removing the scenario's key line and filter from the guest")?;
    println!("  the key's line and the filter removed from the guest");
    Ok(())
}

/// The comment of the filter scenario's own key, by which its line in root's authorized_keys
/// is found (plain, or as `ari authorize --install` rewrote it) and removed.
pub(super) const FILTER_KEY_COMMENT: &str = "ari-vm-filter-scenario";

/// Where the filter scenario installs the filter in the guest (`ssh_filter_path`).
pub(super) const FILTER_PATH: &str = "/usr/local/lib/ari-backup/ssh-filter";

/// The guest script that removes what the filter scenario adds there: its key's line (the
/// harness's own line stays), the filter and what the installer may have left beside them.
pub(super) fn remove_filter() -> String {
    format!(
        "sed -i '/ {FILTER_KEY_COMMENT}$/d' /root/.ssh/authorized_keys\n\
         rm -f {FILTER_PATH} {FILTER_PATH}.ari-new /root/.ssh/authorized_keys.ari-new\n\
         rmdir {} 2>/dev/null || true\n",
        Path::new(FILTER_PATH).parent().map(|d| d.display().to_string()).unwrap_or_default()
    )
}

/// The guest's ssh options (`Vm::ssh_options`, pairs of words) with `key` as the only identity
/// instead of the harness's, and without the harness master's ControlPath: a connection shared
/// with that master logged in with the harness's key, which no filter restricts.
pub(super) fn only_key(options: &[String], key: &str) -> Vec<String> {
    let mut kept: Vec<String> = ["-i", key, "-o", "IdentitiesOnly=yes"].map(String::from).into();
    for pair in options.chunks(2) {
        match pair {
            [flag, _] if flag == "-i" => {}
            [flag, value] if flag == "-o" && value.to_ascii_lowercase().starts_with("controlpath=") => {}
            _ => kept.extend_from_slice(pair),
        }
    }
    kept
}

/// A fresh ed25519 key in the fixture (`id_ed25519`, its comment `comment`): the private key's
/// path and the public key's line.
pub(super) fn fresh_key(fx: &Fixture, comment: &str) -> Result<(String, String)> {
    let key = fx.p("id_ed25519");
    shell::run(
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &key]),
    )?;
    let public = read(&fx.path("id_ed25519.pub"))?.trim().to_string();
    Ok((key, public))
}

/// The jobs of the filter scenarios: the LVM+rdiff job of (a) and the zfs-over-LVM job of (c),
/// whose dataset holds a snapshot five days old for its expiry.
pub(super) struct FilteredJobs {
    rdiff: &'static str,
    zfs: &'static str,
    dataset: &'static str,
    /// The old snapshot, which the zfs job's run must expire.
    old: String,
    rdiff_job: String,
    zfs_job: String,
    /// A zfs job whose source is the backup server itself: its rsync pushes into the guest's
    /// dataset through the filter, which hands the server to the guest's rrsync (3.2.7).
    pushed: &'static str,
    pushed_job: String,
    /// Whether the rdiff and zfs jobs verify.
    verify: bool,
}

/// The dataset the pushed job writes into, and a file its source holds.
pub(super) const PUSHED_DATASET: &str = "tank/backups/pushed";
const PUSHED_FILE: (&str, &str) = ("pushed-src/etc/pushed.conf", "pushed through rrsync\n");

impl FilteredJobs {
    /// Prepares the guest for them (the dataset, the origins' content, the old snapshot) and
    /// writes their files into the fixture.
    /// With `verify`, the rdiff and zfs-over-LVM jobs also run their spot check of every file
    /// through the filter (not under `remote_sudo`, whose rules cannot hold its line).
    pub(super) fn new(vm: &Vm, fx: &Fixture, verify: bool) -> Result<FilteredJobs> {
        let (rdiff, zfs, dataset) = ("lvm-rdiff-filtered", "zfs-lvm-filtered", "tank/backups/zfs-lvm");
        vm.run(&format!("zfs create {dataset} && {RDIFF_ORIGIN}"))?;
        let old = format!("{dataset}@ari-backup-old-5d");
        old_snapshots(vm, &[(5, &old)])?;
        let verifying = if verify { "verify_sample: 100%\n" } else { "" };
        let rdiff_job = fx.job(rdiff, &format!("{}{verifying}", lvm_rdiff_job(rdiff)))?.display().to_string();
        let zfs_job =
            fx.job(zfs, &zfs_lvm_job(zfs, dataset, "%Y-%m-%d--%H%M%S", verifying))?.display().to_string();
        let pushed = "zfs-pushed-filtered";
        vm.run(&format!("zfs create {PUSHED_DATASET}"))?;
        let (file, content) = PUSHED_FILE;
        std::fs::create_dir_all(fx.path(file).parent().context("the pushed file's directory")?)?;
        std::fs::write(fx.path(file), content)?;
        let pushed_job = fx
            .job(
                pushed,
                &format!(
                    "label: {pushed}\nbackend: zfs\ninclude: [{}]\nrsync_dst: 127.0.0.1:/{PUSHED_DATASET}\nzfs_hostname: 127.0.0.1\ndataset_name: {PUSHED_DATASET}\nsnapshot_expiration_days: 1\n",
                    fx.p("pushed-src")
                ),
            )?
            .display()
            .to_string();
        Ok(FilteredJobs { rdiff, zfs, dataset, old, rdiff_job, zfs_job, pushed, pushed_job, verify })
    }

    /// `ari authorize --host 127.0.0.1 --key KEY.pub --json`, which must name one host with both
    /// jobs; that host's part of the JSON, its allowed commands counted.
    pub(super) fn authorize_json(
        &self,
        ctx: &Ctx,
        fx: &Fixture,
        authorize: &[&str],
    ) -> Result<serde_json::Value> {
        fx.ari_expect(ctx, &[authorize, &["--json"]].concat(), 0)?;
        let json: serde_json::Value = serde_json::from_str(&fx.stdout())
            .with_context(|| format!("ari authorize --json printed {:?}", fx.stdout()))?;
        let host = json["hosts"][0].clone();
        ensure!(
            json["hosts"].as_array().map_or(0, Vec::len) == 1
                && host["jobs"] == serde_json::json!([self.rdiff, self.zfs, self.pushed]),
            "ari authorize --json: expected one host with the three jobs: {json}"
        );
        println!(
            "  the filter lets {} commands through: {} exact lines, {} patterns",
            allowed(&host, "allowed") + allowed(&host, "allowed_patterns"),
            allowed(&host, "allowed"),
            allowed(&host, "allowed_patterns")
        );
        Ok(host)
    }

    /// Both jobs through the filter against the real tools: the rdiff mirror holds the
    /// snapshots, the zfs job's files arrive, its new snapshot is made and the old one expired,
    /// `ari history` lists the new one, and `ari check --connect` finds the filter up to date.
    /// Each runs with `--debug`, whose log holds every remote command's output, in which
    /// neither the filter nor sudo may have refused anything (`refused_in`).
    pub(super) fn run(&self, ctx: &Ctx, fx: &Fixture) -> Result<()> {
        let (vm, dataset, old) = (ctx.vm, self.dataset, &self.old);
        let unrefused = |args: &[&str]| -> Result<()> {
            let stderr = fx.ari_expect(ctx, args, 0)?;
            let refused = refused_in(&stderr);
            ensure!(
                refused.is_empty(),
                "`ari {}` was refused commands:\n{}",
                args.join(" "),
                refused.join("\n")
            );
            Ok(())
        };
        unrefused(&["run", &self.rdiff_job, "--debug"])?;
        assert_mirror_is_the_snapshot(vm, fx, self.rdiff)?;
        unrefused(&["run", &self.zfs_job, "--debug"])?;
        let arrived = vm.run(&format!("cat /{dataset}/srv/data/state.txt"))?;
        let snapshots = zfs_snapshots(vm, dataset)?;
        ensure!(
            arrived == "changed-after-snapshot\n"
                && snapshots.len() == 1
                && snapshots[0].starts_with(&format!("{dataset}@ari-backup-")),
            "the zfs job through the filter: state.txt {arrived:?}, snapshots {snapshots:?} (expected one new, {old} expired)"
        );
        ensure!(
            history(ctx, fx, self.zfs)?.len() == 1,
            "ari history of {} does not list its one snapshot",
            self.zfs
        );
        println!("  both jobs ran through the filter: the rdiff mirror holds the snapshots, {} made, {old} expired; ari history lists it", snapshots[0]);
        unrefused(&["run", &self.pushed_job, "--debug"])?;
        let (file, content) = PUSHED_FILE;
        let arrived = vm.run(&format!("cat /{PUSHED_DATASET}{}", fx.p(file)))?;
        let snapshots = zfs_snapshots(vm, PUSHED_DATASET)?;
        ensure!(
            arrived == content && snapshots.len() == 1,
            "the pushed job through the filter and rrsync: {file} {arrived:?}, snapshots {snapshots:?}"
        );
        println!(
            "  the pushed job's rsync ran through the filter and the guest's rrsync: {file} arrived, {} made",
            snapshots[0]
        );
        unrefused(&["check", "--connect", "--debug"])?;
        ensure!(fx.stdout().contains("ok: ssh filter"), "ari check --connect printed {:?}", fx.stdout());
        println!("  ari check --connect: ok: ssh filter; no refusal in the --debug output of the three");
        Ok(())
    }

    /// Neither job left a ledger, a snapshot or a mount.
    pub(super) fn assert_clean(&self, vm: &Vm, fx: &Fixture) -> Result<()> {
        if self.verify {
            for label in [self.rdiff, self.zfs] {
                super::verify::assert_verified(fx, label)?;
            }
        }
        for label in [self.rdiff, self.zfs, self.pushed] {
            assert_no_ledger(fx, label)?;
            assert_clean(vm, label)?;
        }
        Ok(())
    }
}

/// Options of ari-zfs's allow-list (ari-zfs/src/rrsync.rs) that go together, those the client
/// sends to the server as long options among them.
const RSYNC_OPTIONS_BATCH: &[&str] = &[
    "-aHAXxSUEmOJ",
    "--delete-delay",
    "--numeric-ids",
    "--partial",
    "--mkpath",
    "--fsync",
    "--open-noatime",
    "--preallocate",
    "--munge-links",
    "--safe-links",
    "--size-only",
    "--force",
    "--ignore-errors",
    "--delete-excluded",
    "--super",
    "--no-implied-dirs",
    "--itemize-changes",
    "--compress-level=3",
    "--bwlimit=100M",
    "--timeout=30",
    "--max-delete=1000",
    "--max-size=1G",
    "--min-size=1",
    "--modify-window=1",
    "--block-size=4096",
    "--skip-compress=gz",
    "--checksum-choice=md5",
    "--info=stats2",
];

/// The filtered key (`options`, as `user`, whose home is `home`) used by an attacker's own rsync
/// against the pushed job's destination, with server options that write outside it on a plain
/// rsync server: a log file in the login's home (`.bashrc`, which bash runs at every login), a
/// backup dir and a log file above it, and a read (`--sender`). The guest's rrsync (3.2.7)
/// keeps the log file inside the destination and refuses the rest; the home's `.bashrc` and
/// what is above the destination stay as they were, and nothing is read out.
pub(super) fn assert_rsync_is_confined(
    vm: &Vm,
    fx: &Fixture,
    options: &[String],
    user: &str,
    home: &str,
) -> Result<()> {
    let before = vm.run(&format!("touch {home}/.bashrc; sha256sum {home}/.bashrc; ls -a /tank/backups"))?;
    let ssh = ["ssh", "-F", "/dev/null"]
        .into_iter()
        .map(String::from)
        .chain(options.iter().cloned())
        .chain(["-o", "ControlPath=none", "-o", "BatchMode=yes", "-p"].map(String::from))
        .chain([vm.port.to_string()])
        .map(|word| crate::shell::quote(std::ffi::OsStr::new(&word)))
        .collect::<Vec<_>>()
        .join(" ");
    let dst = format!("{user}@127.0.0.1:/{PUSHED_DATASET}");
    let stolen = fx.path("stolen");
    std::fs::create_dir_all(&stolen)?;
    let src = format!("{}/", fx.p("pushed-src"));
    let rsync_path: &[&str] = if user == "root" { &[] } else { &["--rsync-path=sudo -n -- rsync"] };
    // First what a job may give (rsync_options): the guest's rrsync 3.2.7 takes the options that
    // the client sends as long ones, where its tables differ from 3.5.0's, all at once.
    let out = Command::new("rsync")
        .args(["-e", &ssh])
        .args(rsync_path)
        .args(RSYNC_OPTIONS_BATCH)
        .args([src.as_str(), dst.as_str()])
        .stdin(Stdio::null())
        .output()
        .context("start rsync")?;
    ensure!(
        out.status.success(),
        "rsync with options a job may give, through the filter to the guest's rrsync: {}, {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "  rsync with {} of the options a job may give: through the filter and rrsync 3.2.7",
        RSYNC_OPTIONS_BATCH.len()
    );
    let attacks: [&[&str]; 4] = [
        &["-a", "-M--log-file=.bashrc", &src, &dst],
        &["-a", "-M--log-file=../x", &src, &dst],
        &["-ab", "--backup-dir=..", &src, &dst],
        &["-a", &format!("{user}@127.0.0.1:/etc/hostname"), &format!("{}/", stolen.display())],
    ];
    for args in attacks {
        let out = Command::new("rsync")
            .args(["-e", &ssh])
            .args(rsync_path)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("start rsync")?;
        println!(
            "  rsync {}: exit {:?}: {}",
            args[..args.len() - 2].join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or_default()
        );
    }
    let after = vm.run(&format!("sha256sum {home}/.bashrc; ls -a /tank/backups"))?;
    let stolen_any = std::fs::read_dir(&stolen)?.next().is_some();
    let confined = vm.run(&format!("test -f /{PUSHED_DATASET}/.bashrc && echo inside || echo absent"))?;
    ensure!(
        before == after && !stolen_any,
        "rsync with the filtered key reached outside /{PUSHED_DATASET}: before {before:?}, after {after:?}, read out: {stolen_any}"
    );
    println!("  rsync's server options with the filtered key: {home}/.bashrc and /tank/backups unchanged, nothing read out; the log file is {} the destination", confined.trim());
    Ok(())
}

/// The lines of an `ari --debug` log where a remote command's output says the filter or sudo
/// refused it. sudo logs nothing when it refuses `sudo -n` (it stops at "a password is
/// required", before its log), and a refused probe (`mountpoint -q`, `test -d`) exits 1 as a
/// "no" would, so this output is the only place such a refusal shows.
pub(super) fn refused_in(log: &str) -> Vec<&str> {
    // Their stderr only: `ari check --connect` reads the filter back, whose text holds its message.
    log.lines().filter(|l| l.contains("stderr: sudo:") || l.contains("stderr: ari-filter: refused")).collect()
}

/// How many entries the list `key` of `ari authorize --json`'s host has.
pub(super) fn allowed(host: &serde_json::Value, key: &str) -> usize {
    host[key].as_array().map_or(0, Vec::len)
}

/// The guest's journal since `since` (epoch seconds) as journalctl's `selector` chooses it,
/// messages only.
pub(super) fn journal(vm: &Vm, since: &str, selector: &str) -> Result<String> {
    vm.run(&format!("journalctl -q --no-pager -o cat {selector} --since @{since}"))
}

/// The same, once a line satisfies `found` (journald may take a moment), or after 10 s.
fn journal_with(vm: &Vm, since: &str, selector: &str, found: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = journal(vm, since, selector)?;
        if logged.lines().any(&found) || Instant::now() > deadline {
            return Ok(logged);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The filter's journal lines (`-t ari-filter`) that refused a command: all but the installer's
/// own test of the filter, which it refuses on purpose.
pub(super) fn filter_refusals(logged: &str) -> Vec<&str> {
    logged.lines().filter(|l| !l.ends_with(": ari-filter-self-test")).collect()
}

/// `id` through the filtered key (`options`, as `user`) is refused with 126, and logged to the
/// guest's journal since `since`.
pub(super) fn assert_refused_outside_the_plans(
    vm: &Vm,
    options: &[String],
    user: &str,
    since: &str,
) -> Result<()> {
    let out = Command::new("ssh")
        .args(["-F", "/dev/null"])
        .args(options)
        .args(["-o", "ControlPath=none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .args(["-p", &vm.port.to_string(), &format!("{user}@127.0.0.1"), "id"])
        .stdin(Stdio::null())
        .output()
        .context("start ssh")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(126) && stderr.contains("ari-filter: refused") && out.stdout.is_empty(),
        "`id` with the filtered key: {} (expected 126), stdout {:?}, stderr {stderr:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let refused = |l: &str| l.ends_with(": not a command of the jobs: id");
    let logged = journal_with(vm, since, "-t ari-filter", refused)?;
    ensure!(logged.lines().any(refused), "the refused `id` is not in the guest's journal:\n{logged}");
    println!("  `id` with the filtered key: exit 126, logged: {}", logged.lines().last().unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filtered_key_replaces_the_harness_key_and_its_shared_connection() {
        let harness: Vec<String> = [
            "-i",
            "/var/cache/ari-vm/id_ed25519",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "ControlPath=/x/ssh.sock",
            "-o",
            "LogLevel=ERROR",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            only_key(&harness, "/tmp/k"),
            [
                "-i",
                "/tmp/k",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "LogLevel=ERROR"
            ]
        );
        assert!(remove_filter().contains("rmdir /usr/local/lib/ari-backup "));
    }
}
