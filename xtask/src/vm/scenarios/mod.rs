//! The real-tool scenarios: the `ari` binary on the host backs up the guest as a remote host
//! (`source_hostname: 127.0.0.1` on the forwarded port, as root with the image's key), so every
//! `lvcreate`, `mount`, `umount`, `lvremove`, `zfs` and `rsync` of a job runs for real in the
//! guest. The host tests prove the same paths against stateful fakes; these prove that the
//! commands ari builds do what the fakes pretend they do.
//!
//! The guest is prepared once per boot (`PREPARE`): two ext4 logical volumes on /dev/vdb,
//! vg0/data at /srv/data and vg0/db at /srv/data/db (a volume inside another, as a database
//! under a root volume is), and a pool `tank` with a dataset `tank/backups` on /dev/vdc, and a
//! mark of this run in /run. Before each scenario the runner checks that the guest answering is
//! that prepared one (`check_prepared`), so an unprepared guest fails with what it holds instead
//! of with a scenario's first missing file. Each scenario asserts that it left nothing behind
//! (`lvs`, `findmnt`, the mount directory), and the runner then resets the guest anyway, so that
//! one failure cannot fail the scenarios after it.
//!
//! This file is the runner: the list of scenarios, their selection, the guest's preparation and
//! reset. The scenarios live in a file per family: `lvm` (rdiff-backup of LVM snapshots, and
//! failures that leave nothing), `zfs` (the zfs backend over LVM, with history and restore),
//! `crash` (the crash ledger), `timeout` (`job_timeout` mid-transfer), `package` (the .deb
//! through its systemd unit), `filter` (the ssh filter of `ari authorize --install`, with
//! rrsync's confinement), `frame` (a crafted rdiff-backup frame against the confinement) and
//! `sudo` (the filter and sudoers as a non-root user), `verify` (the spot check in real LVM and
//! ZFS snapshots, and honest faults that fail it), `send` (the zfs-send backend between two
//! pools of the guest: full and incremental sends, a raw send of an encrypted dataset, a cut
//! receive resumed, a held base through the sender's expiry, a diverged receiver, the filter's
//! resume script). What they share (the context, the host
//! fixture, job texts, the clean-guest checks) is in `fixture`; no family uses this file, so
//! the runner can name them all without an import circle.

mod crash;
mod filter;
mod fixture;
mod frame;
mod lvm;
mod package;
mod send;
mod sudo;
mod timeout;
mod verify;
mod zfs;

use anyhow::{bail, ensure, Result};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::machine::Vm;
use crate::shell;
use fixture::{field, Ctx, MOUNT_ROOT};

/// How many scenarios passed and failed.
#[derive(Debug, Default)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

/// A named scenario: a function that returns an error naming what did not hold.
struct Scenario {
    name: &'static str,
    run: fn(&Ctx) -> Result<()>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "lvm_rdiff_backs_up_the_snapshot_not_the_changed_origin",
        run: lvm::lvm_rdiff_crash_consistent,
    },
    Scenario { name: "lvm_failures_leave_nothing_behind", run: lvm::lvm_failures_leave_nothing },
    Scenario { name: "zfs_over_lvm_snapshots_and_expires_by_real_creation_times", run: zfs::zfs_over_lvm },
    Scenario {
        name: "zfs_keep_thins_real_snapshots_by_their_creation_times_and_prune_applies_a_tighter_policy",
        run: zfs::zfs_keep,
    },
    Scenario {
        name: "zfs_capacity_warns_of_a_degraded_mirror_and_refuses_an_unavailable_pool_and_a_full_quota_before_pre",
        run: zfs::zfs_capacity,
    },
    Scenario { name: "crash_ledger_recover_undoes_real_snapshots_and_mounts", run: crash::crash_ledger },
    Scenario {
        name: "verify_lvm_rdiff_spot_check_reads_the_snapshot_and_fails_on_a_flipped_byte",
        run: verify::lvm_rdiff_verify,
    },
    Scenario {
        name: "verify_lvm_zfs_spot_check_reads_the_zfs_snapshot_and_fails_on_a_file_rsync_did_not_send",
        run: verify::lvm_zfs_verify,
    },
    Scenario {
        name: "job_timeout_mid_transfer_lvm_rdiff_unmounts_on_the_first_try",
        run: timeout::job_timeout_lvm_rdiff,
    },
    Scenario {
        name: "job_timeout_mid_transfer_lvm_rsync_zfs_unmounts_on_the_first_try",
        run: timeout::job_timeout_lvm_zfs,
    },
    Scenario { name: PACKAGE_SCENARIO, run: package::package_through_systemd },
    Scenario {
        name: "ssh_filter_of_authorize_install_lets_the_lvm_and_zfs_jobs_through_and_refuses_the_rest",
        run: filter::filtered_jobs,
    },
    Scenario {
        name: "ssh_filter_and_sudoers_of_authorize_installer_let_a_non_root_user_run_the_lvm_and_zfs_jobs_and_refuse_the_rest",
        run: sudo::sudo_filtered_jobs,
    },
    Scenario {
        name: "zfs_send_pulls_full_then_incremental_sends_byte_equal_and_holds_only_the_newest",
        run: send::full_then_incremental,
    },
    Scenario {
        name: "zfs_send_raw_of_an_encrypted_dataset_arrives_encrypted_and_reads_with_the_key",
        run: send::raw_encrypted,
    },
    Scenario {
        name: "zfs_send_cut_by_job_timeout_leaves_a_resume_token_and_the_next_run_resumes",
        run: send::cut_and_resumed,
    },
    Scenario {
        name: "zfs_send_held_base_survives_the_senders_zfs_expiry_and_the_next_send_is_incremental",
        run: send::held_base_survives_expiry,
    },
    Scenario {
        name: "zfs_send_refuses_a_diverged_receiver_and_force_receive_rolls_it_back",
        run: send::diverged_refused,
    },
    Scenario {
        name: "zfs_send_through_the_authorize_filter_resumes_and_refuses_a_destroy_and_another_datasets_token",
        run: send::through_the_filter,
    },
];

/// The scenario that installs the Debian package in the guest (`vm test` builds it first).
pub const PACKAGE_SCENARIO: &str = "deb_package_installs_and_backs_up_through_its_systemd_unit";

/// The guest's volumes, pool and data, made once per boot.
const PREPARE: &str = r#"set -euo pipefail
pvcreate -q /dev/vdb
vgcreate -q vg0 /dev/vdb
lvcreate -q -y -L 400M -n data vg0
lvcreate -q -y -L 200M -n db vg0
mkfs.ext4 -q /dev/vg0/data
mkfs.ext4 -q /dev/vg0/db
mkdir -p /srv/data
mount /dev/vg0/data /srv/data
mkdir -p /srv/data/db
mount /dev/vg0/db /srv/data/db
mkdir -p /srv/data/etc
echo 'x=1' > /srv/data/etc/app.conf
head -c 4194304 /dev/urandom > /srv/data/blob.bin
modprobe zfs
zpool create -f -m /tank tank /dev/vdc
zfs create tank/backups
sync
"#;

/// Where the preparation leaves the run's mark (`mark`). /run is a tmpfs, so the mark lasts
/// exactly as long as the boot that was prepared.
const MARK_FILE: &str = "/run/ari-vm-prepared";

/// The mount points of `PREPARE`, each with the source and type mounted exactly there, as
/// `check_prepared`'s report shows them.
const PREPARED_MOUNTS: &[(&str, &str)] =
    &[("/srv/data", "/dev/mapper/vg0-data ext4"), ("/srv/data/db", "/dev/mapper/vg0-db ext4")];

/// The scenarios whose names contain one of `filters` (all when there is none); a filter that
/// selects nothing is an error, so that a typo cannot pass as an empty, green run.
pub fn select(filters: &[String]) -> Result<Vec<&'static str>> {
    let selected: Vec<&'static str> = SCENARIOS
        .iter()
        .map(|s| s.name)
        .filter(|name| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        bail!("no scenario matches {filters:?}; the scenarios are: {}", names.join(", "));
    }
    Ok(selected)
}

/// Prepares the guest, runs the `selected` scenarios one after another, and counts them. A
/// guest that cannot be prepared fails every scenario; a scenario that finds the guest no longer
/// prepared fails without running.
pub fn run_all(vm: &Vm, ari: &Path, deb: Option<&Path>, selected: &[&str]) -> Summary {
    let selected: Vec<&Scenario> = SCENARIOS.iter().filter(|s| selected.contains(&s.name)).collect();
    let mut summary = Summary::default();
    shell::header("preparing the guest: LVM on /dev/vdb, ZFS on /dev/vdc");
    let started = Instant::now();
    let mark = mark();
    let prepared =
        vm.run(&format!("{PREPARE}echo {mark} > {MARK_FILE}\n")).and_then(|_| check_prepared(vm, &mark));
    if let Err(err) = prepared {
        println!("FAILED to prepare the guest: {err:#}");
        summary.failed = selected.len();
        return summary;
    }
    println!("prepared in {:.1} s", started.elapsed().as_secs_f64());
    let ctx = Ctx { vm, ari, deb };
    for scenario in selected {
        shell::header(&format!("scenario {}", scenario.name));
        let started = Instant::now();
        let result = check_prepared(vm, &mark).and_then(|()| (scenario.run)(&ctx));
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                summary.passed += 1;
                println!("PASS {} ({secs:.1} s)", scenario.name);
            }
            Err(err) => {
                summary.failed += 1;
                println!("FAIL {} ({secs:.1} s): {err:#}", scenario.name);
            }
        }
        if let Err(err) = reset_guest(vm) {
            println!("warning: could not reset the guest after {}: {err:#}", scenario.name);
        }
    }
    summary
}

/// This run's mark for the guest it prepares: the xtask's PID and the time, which no other run
/// and no earlier boot can have written.
fn mark() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("ari-vm-{}-{nanos}", std::process::id())
}

/// Fails unless the guest answering is the one this run prepared and still has its volumes and
/// dataset mounted where `PREPARE` put them; the error says what the guest has instead.
fn check_prepared(vm: &Vm, mark: &str) -> Result<()> {
    let mut script = format!("echo \"mark: $(cat {MARK_FILE} 2>/dev/null)\"\n");
    for (point, _) in PREPARED_MOUNTS {
        script += &format!("echo \"{point}: $(findmnt -n -o SOURCE,FSTYPE --mountpoint {point} | xargs)\"\n");
    }
    // Not xargs for zfs's output: its errors quote names, and xargs parses quotes.
    script += r#"echo "tank/backups: $(zfs list -H -o mounted,mountpoint tank/backups 2>&1 | tr '\t\n' '  ')"
echo "findmnt: $(findmnt -rn -o TARGET,SOURCE,FSTYPE | grep -E '^/(srv|tank)' | paste -sd ';')"
echo "lsblk: $(lsblk -rn -o NAME,TYPE,MOUNTPOINT 2>&1 | sed 's/ *$//' | paste -sd ';')"
"#;
    prepared(&vm.run(&script)?, mark)
}

/// The verdict of `check_prepared` on the guest's report (`name: value` lines).
fn prepared(report: &str, mark: &str) -> Result<()> {
    let mut problems = Vec::new();
    let found = field(report, "mark");
    if found.is_empty() {
        problems.push(format!(
            "{MARK_FILE} is missing (this run wrote `{mark}` there): another guest answered, or this one rebooted"
        ));
    } else if found != mark {
        problems.push(format!(
            "{MARK_FILE} holds `{found}`, not this run's `{mark}`: another run's guest answered"
        ));
    }
    for (point, expected) in PREPARED_MOUNTS {
        match field(report, point) {
            found if found == *expected => {}
            found if found.is_empty() => problems.push(format!("{point} is not a mount point")),
            found => problems.push(format!("{point} has `{found}` mounted, expected `{expected}`")),
        }
    }
    let dataset = field(report, "tank/backups");
    if dataset != "yes /tank/backups" {
        problems.push(format!("tank/backups is not mounted at /tank/backups (zfs list: `{dataset}`)"));
    }
    let mounts = field(report, "findmnt");
    ensure!(
        problems.is_empty(),
        "the guest is not prepared: {} (findmnt under /srv and /tank: {}; lsblk: {})",
        problems.join("; "),
        if mounts.is_empty() { "nothing" } else { &mounts },
        field(report, "lsblk")
    );
    Ok(())
}

/// Undoes whatever a failed scenario may have left (mounts and snapshots under `MOUNT_ROOT`, the
/// scenario datasets, the zfs-send scenarios' pools, the filter scenarios' key, filter, user and
/// sudoers drop-in, a clock set back), so the next scenario starts clean. Passing scenarios have already proven themselves
/// clean, so this finds nothing after them.
fn reset_guest(vm: &Vm) -> Result<()> {
    vm.run(&format!("{}{}{}", sudo::remove_sudo_user(), filter::remove_filter(), send::remove_pools()))?;
    vm.run(
        &r#"for m in $(findmnt -rn -o TARGET | grep '^MOUNT_ROOT/' | sort -r); do umount "$m" || umount -l "$m"; done
for lv in $(lvs --noheadings -o lv_name,origin vg0 | awk '$2 != "" {print $1}'); do lvremove -f -q "vg0/$lv"; done
for d in MOUNT_ROOT/*; do [ -e "$d" ] && rm -rf --one-file-system "$d"; done
rm -rf /tmp/ari-vm-planted
dpkg -s ari >/dev/null 2>&1 && dpkg --purge ari >/dev/null; rm -rf /srv/store /root/ari.deb
rm -f /srv/data/big.bin /srv/data/db/added.dat
zfs list -H -o name tank/backups/zfs-lvm >/dev/null 2>&1 && zfs destroy -r tank/backups/zfs-lvm
rm -f /run/ari-vm-sleep.pid
true"#
            .replace("MOUNT_ROOT", MOUNT_ROOT),
    )?;
    vm.set_clock()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_by_name_and_a_filter_matching_nothing_is_an_error() {
        assert_eq!(select(&[]).unwrap().len(), SCENARIOS.len());
        assert_eq!(
            select(&["crash".into()]).unwrap(),
            ["crash_ledger_recover_undoes_real_snapshots_and_mounts"]
        );
        assert_eq!(select(&["zfs_over".into(), "backs_up_the_snapshot".into()]).unwrap().len(), 2);
        // Both filter scenarios, as `cargo xtask vm test ssh_filter` runs them.
        assert_eq!(select(&["ssh_filter".into()]).unwrap().len(), 2);
        // The zfs-send family, as `cargo xtask vm test zfs_send` runs it.
        assert_eq!(select(&["zfs_send".into()]).unwrap().len(), 6);
        assert!(select(&["no-such-scenario".into()]).is_err());
    }

    /// The report of a guest as `PREPARE` leaves it, with `changes` (name, value) applied.
    fn report(changes: &[(&str, &str)]) -> String {
        let mut fields = [
            ("mark", "ari-vm-1-2"),
            ("/srv/data", "/dev/mapper/vg0-data ext4"),
            ("/srv/data/db", "/dev/mapper/vg0-db ext4"),
            ("tank/backups", "yes /tank/backups"),
            (
                "findmnt",
                "/srv/data /dev/mapper/vg0-data ext4;/srv/data/db /dev/mapper/vg0-db ext4;/tank tank zfs",
            ),
            ("lsblk", "vda disk /;vdb disk;vdc disk"),
        ];
        for (name, value) in changes {
            fields.iter_mut().find(|(n, _)| n == name).expect("a field of the report").1 = value;
        }
        fields.iter().map(|(name, value)| format!("{name}: {value}\n")).collect()
    }

    fn check(changes: &[(&str, &str)], expected: &str) {
        let got = match prepared(&report(changes), "ari-vm-1-2") {
            Ok(()) => "ok".to_string(),
            Err(err) => err.to_string(),
        };
        assert_eq!(got, expected, "changes {changes:?}");
    }

    #[test]
    fn an_unprepared_guest_is_reported_with_what_it_has() {
        check(&[], "ok");
        // The guest of another run, booted from the saved state and not prepared yet.
        check(
            &[
                ("mark", ""),
                ("/srv/data", ""),
                ("/srv/data/db", ""),
                ("tank/backups", "cannot open 'tank/backups': dataset does not exist"),
                ("findmnt", ""),
                ("lsblk", "vda disk /;vdb disk;vdc disk"),
            ],
            "the guest is not prepared: /run/ari-vm-prepared is missing (this run wrote `ari-vm-1-2` there): \
             another guest answered, or this one rebooted; /srv/data is not a mount point; /srv/data/db is not a \
             mount point; tank/backups is not mounted at /tank/backups (zfs list: `cannot open 'tank/backups': \
             dataset does not exist`) (findmnt under /srv and /tank: nothing; lsblk: vda disk /;vdb disk;vdc disk)",
        );
        check(
            &[("mark", "ari-vm-7-8")],
            "the guest is not prepared: /run/ari-vm-prepared holds `ari-vm-7-8`, not this run's `ari-vm-1-2`: \
             another run's guest answered (findmnt under /srv and /tank: /srv/data /dev/mapper/vg0-data \
             ext4;/srv/data/db /dev/mapper/vg0-db ext4;/tank tank zfs; lsblk: vda disk /;vdb disk;vdc disk)",
        );
        check(
            &[("/srv/data/db", "/dev/mapper/vg0-db-ari_backup ext4"), ("findmnt", "/srv/data /dev/mapper/vg0-data ext4")],
            "the guest is not prepared: /srv/data/db has `/dev/mapper/vg0-db-ari_backup ext4` mounted, expected \
             `/dev/mapper/vg0-db ext4` (findmnt under /srv and /tank: /srv/data /dev/mapper/vg0-data ext4; lsblk: \
             vda disk /;vdb disk;vdc disk)",
        );
        check(
            &[("tank/backups", "no /tank/backups")],
            "the guest is not prepared: tank/backups is not mounted at /tank/backups (zfs list: `no /tank/backups`) \
             (findmnt under /srv and /tank: /srv/data /dev/mapper/vg0-data ext4;/srv/data/db /dev/mapper/vg0-db \
             ext4;/tank tank zfs; lsblk: vda disk /;vdb disk;vdc disk)",
        );
    }
}
