//! The filter and sudoers drop-in of `remote_sudo`, as a non-root user the scenario creates:
//! `ari authorize --installer` piped to `sh` as root in the guest, the jobs of the filter
//! scenario run with nothing refused by the filter or by sudo and nothing left running, a
//! command outside the plans refused by the filter and one outside the drop-in by sudo.

use anyhow::{ensure, Context, Result};
use std::fs;
use std::time::{Duration, Instant};

use super::filter::{
    allowed, assert_refused_outside_the_plans, assert_rsync_is_confined, filter_refusals, fresh_key, journal,
    only_key, remove_filter, FilteredJobs, FILTER_PATH, PUSHED_DATASET,
};
use super::fixture::{field, Ctx, Fixture};
use super::frame::assert_a_crafted_frame_is_contained;
use crate::vm::machine::Vm;

/// j. The same two jobs as (i), as a non-root remote user through the filter and sudo
/// (`remote_sudo`): the user is created in the guest, `ari authorize --installer` is piped to
/// `sh` as root there (the admin's way), installing the sudoers drop-in (checked by visudo),
/// the filter and the key's line in the user's own authorized_keys; the jobs run with nothing
/// refused by the filter or by sudo and nothing of theirs left running; a command outside the
/// plans is refused by the filter (126), and one outside the drop-in by sudo. The user, its
/// home, the drop-in and the filter are removed at the end, and by `reset_guest` after a
/// failure.
pub(super) fn sudo_filtered_jobs(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let fx = Fixture::without_config()?;
    let (key, public) = fresh_key(&fx, SUDO_KEY_COMMENT)?;
    let options = only_key(&vm.ssh_options(), &key);
    fx.write_config_as(
        ctx,
        SUDO_USER,
        &options,
        &format!("remote_sudo: true\nssh_filter_path: {FILTER_PATH}\n"),
    )?;
    let since = vm.run("date +%s")?.trim().to_string();
    let home = format!("/home/{SUDO_USER}");
    let result = (|| {
        let passwd = vm.run(&format!("useradd -m -s /bin/sh {SUDO_USER} && getent passwd {SUDO_USER}"))?;
        println!("  user made: {}", passwd.trim());
        let jobs = FilteredJobs::new(vm, &fx, false)?;
        let public_file = fx.p("id_ed25519.pub");
        let authorize = ["authorize", "--host", "127.0.0.1", "--key", &public_file];
        let host = jobs.authorize_json(ctx, &fx, &authorize)?;
        let sudoers = host["sudoers"].as_str().with_context(|| format!("no sudoers drop-in in {host}"))?;
        let rules = sudoers
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("Defaults") && !l.trim().is_empty())
            .count();
        ensure!(
            sudoers.lines().any(|l| l == "Defaults!@rrsync@ env_keep += \"SSH_ORIGINAL_COMMAND\""),
            "the drop-in keeps no SSH_ORIGINAL_COMMAND for rrsync: {sudoers}"
        );
        let lines: Vec<&str> =
            host["allowed"].as_array().into_iter().flatten().filter_map(|l| l.as_str()).collect();
        ensure!(
            host["destination"] == format!("{SUDO_USER}@127.0.0.1")
                && lines.iter().all(|l| l.starts_with("sudo -n -- ") || l.starts_with("getent passwd ") || *l == "rrsync -help")
                && rules + 2 == allowed(&host, "allowed") + allowed(&host, "allowed_patterns"),
            "ari authorize --json under remote_sudo: expected {SUDO_USER}@127.0.0.1, every line through `sudo -n --` but the login shell's query and rrsync's probe, and a rule per command but those: {host}"
        );
        println!("  the sudoers drop-in has {rules} rules, one per command (the login shell's `getent passwd` and `rrsync -help` need none)");

        fx.ari_expect(ctx, &[&authorize[..], &["--installer"]].concat(), 0)?;
        let installer = fx.path("installer.sh");
        fs::write(&installer, fx.stdout())?;
        println!("$ ari authorize ... --installer | ssh root@guest sh");
        let mut install = vm.ssh("sh");
        install.stdin(fs::File::open(&installer)?);
        let out = install.output().context("start ssh")?;
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let keys = format!("{home}/.ssh/authorized_keys");
        ensure!(
            out.status.success()
                && stdout.lines().any(|l| l == format!("ari: installed {SUDO_DROP_IN}"))
                && stdout.lines().any(|l| {
                    l.starts_with(&format!("ari: installed {FILTER_PATH} (sha256 "))
                        && l.ends_with(&format!(") and the key's line in {keys}"))
                }),
            "the installer, run as root in the guest: {}, stdout {stdout:?}, stderr {stderr:?}",
            out.status
        );
        for line in stdout.lines() {
            println!("  {line}");
        }
        let report = vm.run(&format!(
            "echo \"dir: $(stat -c '%U %a' {home}/.ssh)\"\n\
             echo \"keys: $(stat -c '%U %a' {keys})\"\n\
             echo \"drop-in: $(stat -c '%U %a' {SUDO_DROP_IN})\"\n\
             echo \"filter: $(stat -c '%U %a' {FILTER_PATH})\"\n\
             echo \"rules: $(grep -c '^{SUDO_USER} ALL=(root) NOPASSWD: /' {SUDO_DROP_IN})\"\n\
             echo \"unfilled: $(grep -c 'NOPASSWD: @' {SUDO_DROP_IN})\"\n\
             echo \"visudo: $(visudo -c >/dev/null 2>&1 && echo ok)\"\n\
             echo \"groups: $(stat -c '%G' {home}/.ssh {keys} | xargs)\""
        ))?;
        let key_line = vm.run(&format!("cat {keys}"))?;
        let expected = [
            ("dir", format!("{SUDO_USER} 700")),
            ("keys", format!("{SUDO_USER} 600")),
            ("drop-in", "root 440".to_string()),
            ("filter", "root 755".to_string()),
            ("rules", rules.to_string()),
            ("unfilled", "0".to_string()),
            ("visudo", "ok".to_string()),
        ];
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(name, value)| field(&report, name) != *value)
            .map(|(name, value)| format!("{name} is `{}`, expected `{value}`", field(&report, name)))
            .collect();
        ensure!(wrong.is_empty(), "after the installer: {}\n{report}", wrong.join("; "));
        ensure!(
            key_line == format!("restrict,command=\"{FILTER_PATH}\" {public}\n"),
            "{keys} holds {key_line:?}, expected only the key's restrict line"
        );
        println!(
            "  {keys} (the user's, 0600; .ssh 0700; groups {}) holds exactly the key's restrict line; {SUDO_DROP_IN} root 0440, {rules} rules with the guest's paths, visudo -c ok",
            field(&report, "groups")
        );

        jobs.run(ctx, &fx)?;
        let refused = journal(vm, &since, "-t ari-filter")?;
        let refused = filter_refusals(&refused);
        let logged = journal(vm, &since, "_COMM=sudo")?;
        let denied: Vec<&str> =
            logged.lines().filter(|l| SUDO_DENIALS.iter().any(|d| l.contains(d))).collect();
        ensure!(
            refused.is_empty() && denied.is_empty(),
            "commands of the jobs were refused; by the filter:\n{}\nby sudo:\n{}",
            refused.join("\n"),
            denied.join("\n")
        );
        let ran = logged
            .lines()
            .filter(|l| l.starts_with(&format!("{SUDO_USER} : ")) && l.contains("COMMAND="))
            .count();
        println!("  journalctl -t ari-filter: nothing refused; _COMM=sudo: {ran} commands of {SUDO_USER} run as root, none refused");
        assert_rsync_is_confined(vm, &fx, &options, SUDO_USER, &home)?;
        assert_a_crafted_frame_is_contained(vm, &host, &options, SUDO_USER)?;
        // sshd ends a session's processes a moment after its connection closes.
        let deadline = Instant::now() + Duration::from_secs(10);
        let left = loop {
            let left = sudo_processes(vm)?;
            if left.is_empty() || Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        ensure!(left.is_empty(), "processes of the jobs are left in the guest:\n{}", left.join("\n"));
        println!("  no process of {SUDO_USER}, sudo, rdiff-backup or rsync left in the guest");

        assert_refused_outside_the_plans(vm, &options, SUDO_USER, &since)?;
        // sudo refuses it without logging it (`refused_in`); what it says is the proof.
        let out = vm.run(&format!(
            "cd / && su -s /bin/sh {SUDO_USER} -c 'sudo -n /usr/bin/id' 2>&1; echo \"exit=$?\""
        ))?;
        ensure!(
            out.lines().any(|l| l == "sudo: a password is required")
                && out.ends_with("\nexit=1\n")
                && !out.contains("uid="),
            "sudo -n /usr/bin/id as {SUDO_USER}, which the drop-in does not allow: {out:?} (expected sudo's refusal, exit 1)"
        );
        println!("  sudo -n /usr/bin/id as {SUDO_USER}: refused, exit 1: sudo: a password is required");
        jobs.assert_clean(vm, &fx)
    })();
    let removed = vm.run(&format!(
        "{}{}zfs list -H -o name tank/backups/zfs-lvm >/dev/null 2>&1 && zfs destroy -r tank/backups/zfs-lvm\n\
         ! zfs list -H -o name {PUSHED_DATASET} >/dev/null 2>&1 || zfs destroy -r {PUSHED_DATASET}\n{}",
        remove_sudo_user(),
        remove_filter(),
        sudo_leftovers()
    ));
    result?;
    let left =
        field(&removed.context("removing the scenario's user, drop-in and filter from the guest")?, "left");
    ensure!(left.is_empty(), "left in the guest after the cleanup: {left}");
    println!("  the user, its home, the drop-in and the filter removed from the guest");
    Ok(())
}

/// The non-root remote user of the sudo scenario, which it creates in the guest.
const SUDO_USER: &str = "ari-backup";

/// The comment of the sudo scenario's own key.
const SUDO_KEY_COMMENT: &str = "ari-vm-sudo-scenario";

/// The sudoers drop-in that the installer writes for `SUDO_USER` (`/etc/sudoers.d/ari-USER`).
const SUDO_DROP_IN: &str = "/etc/sudoers.d/ari-ari-backup";

/// What sudo logs when it refuses a command: the lines of a refusal in its journal (not of a
/// refused `sudo -n`, which sudo does not log: `refused_in`).
const SUDO_DENIALS: &[&str] = &[
    "command not allowed",
    "a password is required",
    "incorrect password",
    "NOT in sudoers",
    "authentication failure",
];

/// The guest script that removes what the sudo scenario adds there (the user, its home with
/// the key's line, every drop-in of ari), except the filter (`remove_filter`).
pub(super) fn remove_sudo_user() -> String {
    format!(
        "if id -u {SUDO_USER} >/dev/null 2>&1; then userdel -f -r {SUDO_USER} >/dev/null 2>&1 || true; fi\n\
         rm -rf --one-file-system /home/{SUDO_USER}\n\
         rm -f /etc/sudoers.d/ari-*\n"
    )
}

/// The guest script that prints `left:` and whatever of the sudo scenario is still there.
fn sudo_leftovers() -> String {
    format!(
        "left=''\n\
         if id -u {SUDO_USER} >/dev/null 2>&1; then left=\"$left user {SUDO_USER}\"; fi\n\
         if [ -e /home/{SUDO_USER} ]; then left=\"$left /home/{SUDO_USER}\"; fi\n\
         for f in /etc/sudoers.d/ari-*; do if [ -e \"$f\" ]; then left=\"$left $f\"; fi; done\n\
         if [ -e {FILTER_PATH} ]; then left=\"$left {FILTER_PATH}\"; fi\n\
         echo \"left:$left\"\n"
    )
}

/// The processes in the guest that a job under sudo may leave (`left_by_sudo_jobs`).
fn sudo_processes(vm: &Vm) -> Result<Vec<String>> {
    Ok(left_by_sudo_jobs(&vm.run("ps -eo pid=,ruser:20=,user:20=,args=")?))
}

/// The lines of `ps -eo pid=,ruser=,user=,args=` that a job under sudo may have left: a process
/// of `SUDO_USER` (its real or effective user), sudo, rdiff-backup's server or rsync; not the
/// `ps` itself.
fn left_by_sudo_jobs(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let args = words.get(3..).map(|a| a.join(" ")).unwrap_or_default();
            !args.starts_with("ps -eo")
                && (words.get(1..3).is_some_and(|users| users.contains(&SUDO_USER))
                    || args.starts_with("sudo ")
                    || args.contains("rdiff-backup server")
                    || args.contains("rsync"))
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::filter::refused_in;
    use super::*;

    #[test]
    fn the_sudo_scenario_finds_what_its_jobs_left_running_and_what_its_cleanup_left() {
        let listing = "    1 root                 root                 /sbin/init\n\
                       412 ari-backup           root                 sudo -n -- /bin/sh -c sleep 120\n\
                       413 root                 root                 sleep 120\n\
                       420 ari-backup           ari-backup           sh -c echo ari-remote-pgid\n\
                       430 root                 root                 rsync --server -logDtpre.iLsfxCIvu . /tank\n\
                       440 root                 root                 /usr/bin/python3 /usr/bin/rdiff-backup server\n\
                       450 root                 root                 ps -eo pid=,ruser:20=,user:20=,args=\n\
                       460 root                 root                 sshd: root@notty\n";
        let left: Vec<String> = left_by_sudo_jobs(listing);
        let pids: Vec<&str> = left.iter().filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(pids, ["412", "420", "430", "440"]);
        assert!(left_by_sudo_jobs("    1 root root /sbin/init\n").is_empty());
        assert!(remove_sudo_user().contains("userdel -f -r ari-backup"));
        assert!(sudo_leftovers().contains("for f in /etc/sudoers.d/ari-*;"));
        assert_eq!(
            refused_in("ari (x) [DEBUG] stderr: sudo: a password is required\nari (x) [DEBUG] stderr: ari-remote-pgid\nari (x) [DEBUG] stderr: ari-filter: refused (not a command of the jobs): ...\nari (x) [DEBUG] stdout: \techo \"ari-filter: refused ($1): ...\" >&2\n"),
            ["ari (x) [DEBUG] stderr: sudo: a password is required", "ari (x) [DEBUG] stderr: ari-filter: refused (not a command of the jobs): ..."]
        );
        assert_eq!(
            filter_refusals("refused for root from 10.0.2.2: not a command of the jobs: ari-filter-self-test\nrefused for root from 10.0.2.2: not a command of the jobs: id\n"),
            ["refused for root from 10.0.2.2: not a command of the jobs: id"]
        );
    }
}
