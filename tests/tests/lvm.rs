//! LVM snapshots with the stateful fakes (this kernel has no device-mapper): rdiff-backup over
//! one and several volumes, local and through ssh, and every step failing in turn. After every
//! scenario the fakes' state shows no snapshot and no mount left, and no mount directory is
//! left, except where a cleanup step itself kept failing: then ari exits 3 and names what is left.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::rdiff::rdiff_backup;
use tests::worlds::root_volume_calls;
use tests::{assert_exit, read_tree, run, stderr, Sshd, World};

/// The LVM world ([`World::lvm`]: `vg0/root` with /etc and /srv/data as a mount point,
/// `vg1/data` with what /srv/data holds), with `max_retries: 2`.
fn world() -> World {
    rdiff_backup();
    let lvm = World::lvm();
    lvm.write_config("max_retries: 2\n");
    lvm
}

/// A job over both volumes (the data one mounted with options) on `host`.
fn two_volume_job(lvm: &World, host: &str, extra: &str) -> PathBuf {
    lvm.fx.write_job(
        "db.yaml",
        &format!(
            "label: db\nsource_hostname: {host}\nsnapshot: lvm\nvolumes:\n  - {{name: vg0/root, mount_point: /}}\n  - {{name: vg1/data, mount_point: /srv/data, mount_options: \"ro,noatime\"}}\ninclude: [/etc, /srv/data]\n{extra}"
        ),
    )
}

/// A fake tool run directly, as another program on the host would.
fn fake(lvm: &World, tool: &str) -> Command {
    Command::new(lvm.fakes.bin_dir().join(tool))
}

#[test]
fn one_volume_locally_backs_up_the_snapshot_and_cleans_up() {
    let lvm = world();
    let job = lvm.fx.write_job(
        "root.yaml",
        "label: root\nsnapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\n",
    );
    let out = lvm.run(&job);
    assert_exit(&out, 0);
    let mirror = lvm.fx.path("store/root/etc");
    assert_eq!(
        read_tree(&mirror, &[]),
        read_tree(&lvm.fx.path("origin-root/etc"), &[]),
        "the snapshot's /etc was backed up"
    );
    assert_eq!(lvm.tools_called(), root_volume_calls(&lvm.fx.p("mnt/root")));
    lvm.assert_clean();
}

#[test]
fn two_volumes_with_mount_options_locally() {
    let lvm = world();
    let job = two_volume_job(&lvm, "localhost", "");
    let out = lvm.run(&job);
    assert_exit(&out, 0);
    assert_eq!(
        read_tree(&lvm.fx.path("store/db/srv/data"), &[]),
        read_tree(&lvm.fx.path("origin-data"), &[])
    );
    assert_eq!(read_tree(&lvm.fx.path("store/db/etc"), &[]), read_tree(&lvm.fx.path("origin-root/etc"), &[]));
    let base = lvm.fx.p("mnt/db");
    let calls = lvm.tools_called();
    assert!(
        calls.contains(&format!("mount -o ro,noatime /dev/vg1/data-ari_backup {base}/srv/data")),
        "{calls:#?}"
    );
    let order: Vec<&str> = calls
        .iter()
        .map(|c| c.as_str())
        .filter(|c| c.starts_with("umount") || c.starts_with("lvremove"))
        .collect();
    assert_eq!(
        order,
        [
            "umount /dev/vg1/data-ari_backup",
            "umount /dev/vg0/root-ari_backup",
            "lvremove -f vg1/data-ari_backup",
            "lvremove -f vg0/root-ari_backup"
        ],
        "unmounted in reverse order, then removed"
    );
    lvm.assert_clean();
}

#[test]
fn two_volumes_on_a_remote_host() {
    let lvm = world();
    let sshd = Sshd::builder().path_prefix(lvm.fakes.bin_dir()).start();
    lvm.write_config(&sshd.config_yaml());
    let job = two_volume_job(&lvm, sshd.host_alias(), "");
    let out = lvm.run(&job);
    assert_exit(&out, 0);
    assert_eq!(
        read_tree(&lvm.fx.path("store/db/srv/data"), &[]),
        read_tree(&lvm.fx.path("origin-data"), &[])
    );
    assert!(lvm.fakes.calls_of("lvcreate").len() == 2 && lvm.fakes.calls_of("lvremove").len() == 2);
    lvm.assert_clean();
}

#[test]
fn after_snapshot_commands_run_once_everything_is_mounted() {
    let lvm = world();
    let log = lvm.fx.p("after.log");
    let job = two_volume_job(
        &lvm,
        "localhost",
        &format!("after_snapshot:\n  - command: \"ls {} > {log}\"\n", lvm.fx.p("mnt/db/srv/data/db")),
    );
    assert_exit(&lvm.run(&job), 0);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "log\ntable.ibd\n", "the second snapshot was mounted");
    lvm.assert_clean();
}

#[test]
fn lvcreate_of_the_second_volume_fails() {
    let lvm = world();
    lvm.fakes.fail("lvcreate", &[2], 5, "  Insufficient free space: 256 extents needed");
    let out = lvm.run(&two_volume_job(&lvm, "localhost", ""));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("snapshot step lvcreate vg1/data-ari_backup failed"), "{}", stderr(&out));
    assert!(stderr(&out).contains("Insufficient free space"), "{}", stderr(&out));
    assert!(lvm.fakes.calls_of("mount").is_empty(), "nothing is mounted after a failed lvcreate");
    assert_eq!(lvm.fakes.calls_of("lvremove").len(), 1, "only the snapshot that exists is removed");
    lvm.assert_clean();
}

#[test]
fn mount_of_the_first_volume_fails() {
    let lvm = world();
    lvm.fakes.fail("mount", &[1], 32, "mount: wrong fs type, bad option, bad superblock");
    let out = lvm.run(&two_volume_job(&lvm, "localhost", ""));
    assert_exit(&out, 1);
    assert!(lvm.fakes.calls_of("umount").is_empty());
    assert_eq!(lvm.fakes.calls_of("lvremove").len(), 2);
    lvm.assert_clean();
}

#[test]
fn mount_of_the_second_volume_fails() {
    let lvm = world();
    lvm.fakes.fail("mount", &[2], 32, "mount: wrong fs type, bad option, bad superblock");
    let out = lvm.run(&two_volume_job(&lvm, "localhost", ""));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("wrong fs type, bad option"), "{}", stderr(&out));
    assert_eq!(lvm.fakes.calls_of("umount").len(), 1, "the first volume is unmounted");
    lvm.assert_clean();
}

/// `mount -o` runs as root: an option that is not one of those that only restrict the mount
/// (`loop`, `X-mount.mkdir`, `bind`, a typo) is refused when the job is read, at its line.
#[test]
fn a_mount_option_that_does_more_than_restrict_is_refused_before_anything_runs() {
    let lvm = world();
    for (options, why) in [
        ("ro,bogus", "holds `bogus`, which is none ari knows to only restrict a mount"),
        ("ro,loop", "holds `loop`, which makes mount read a file or another place than the snapshot"),
        ("X-mount.mkdir", "`X-mount.mkdir` makes directories"),
        ("bind", "makes mount do something else than mount the snapshot"),
        ("ro,exec", "holds `exec`, which widens what the mount allows"),
    ] {
        let job = lvm.fx.write_job(
            "db.yaml",
            &format!("label: db\nsnapshot: lvm\nvolumes:\n  - {{name: vg0/root, mount_point: /}}\n  - {{name: vg1/data, mount_point: /srv/data, mount_options: \"{options}\"}}\ninclude: [/etc]\n"),
        );
        for command in ["check", "run"] {
            let out = run(lvm.ari().arg(command).arg(&job));
            assert_exit(&out, 2);
            // `ari check` reports on stdout, `ari run` on stderr.
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
            assert!(
                said.contains(&format!("db.yaml:5:61: volumes[1].mount_options: `{options}` "))
                    && said.contains(why),
                "{command} {options}: {said}"
            );
        }
    }
    assert!(lvm.fakes.calls().is_empty(), "nothing ran: {:?}", lvm.tools_called());
    lvm.assert_clean();
}

#[test]
fn the_backup_itself_fails() {
    let lvm = world();
    std::fs::write(lvm.fx.path("store/db"), "a file where the repository should be").unwrap();
    let marker = lvm.fx.p("failure-hook-ran");
    let out = lvm.run(&two_volume_job(
        &lvm,
        "localhost",
        &format!("post:\n  - command: [touch, {marker}]\n    when: failure\n"),
    ));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("main step rdiff-backup failed"), "{}", stderr(&out));
    assert!(Path::new(&marker).exists());
    lvm.assert_clean();
}

#[test]
fn umount_failing_twice_then_succeeding_is_retried_to_success() {
    let lvm = world();
    lvm.fakes.fail("umount", &[1, 2], 32, "umount: target is busy.");
    let out = lvm.run(&two_volume_job(&lvm, "localhost", ""));
    assert_exit(&out, 0);
    assert_eq!(lvm.fakes.calls_of("umount").len(), 4, "two failures, then both volumes");
    lvm.assert_clean();
}

#[test]
fn umount_always_failing_exits_3_and_names_what_is_left() {
    let lvm = world();
    let base = lvm.fx.p("mnt/db");
    lvm.fakes.fail_matching("umount", "/dev/vg1/data-ari_backup", 32, "umount: target is busy.");
    let out = lvm.run(&two_volume_job(&lvm, "localhost", ""));
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "left behind: mount of /dev/vg1/data-ari_backup at {base}/srv/data on localhost"
        )),
        "{err}"
    );
    assert!(err.contains("left behind: snapshot vg1/data-ari_backup on localhost"), "{err}");
    assert_eq!(
        lvm.fakes.calls_of("umount").len(),
        3 + 1,
        "three tries of the busy one, then the root volume"
    );
    // Every other cleanup step still ran: the root volume is unmounted and its snapshot removed.
    assert_eq!(lvm.fakes.mounts(), [format!("{base}/srv/data")]);
    assert_eq!(lvm.fakes.snapshots(), ["vg1/data-ari_backup"]);
    lvm.fakes.assert_no_unexpected_calls();
}

#[test]
fn lvremove_failing_exits_3_and_names_the_snapshot() {
    let lvm = world();
    lvm.fakes.fail_matching("lvremove", "vg0/root", 5, "  Logical volume vg0/root-ari_backup in use.");
    let out = lvm.run(&two_volume_job(&lvm, "localhost", ""));
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("left behind: snapshot vg0/root-ari_backup on localhost"),
        "{}",
        stderr(&out)
    );
    assert_eq!(lvm.fakes.snapshots(), ["vg0/root-ari_backup"]);
    assert!(lvm.fakes.mounts().is_empty());
}

#[test]
fn a_target_that_is_already_a_mount_point_is_refused() {
    let lvm = world();
    // Something else is mounted where the snapshot would go.
    let base = lvm.fx.path("mnt/db");
    std::fs::create_dir_all(&base).unwrap();
    lvm.fakes.add_volume("vg9/other", &lvm.fx.path("origin-data"));
    run(fake(&lvm, "mount").args(["/dev/vg9/other"]).arg(&base));
    let out = lvm.run(&two_volume_job(&lvm, "localhost", ""));
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!("{} is already a mount point on localhost", base.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(lvm.fakes.calls_of("mount").len(), 1, "ari mounted nothing over it");
    assert_eq!(lvm.fakes.snapshots(), Vec::<String>::new(), "its snapshots were removed");
}

#[test]
fn lvremove_refuses_a_volume_that_lvs_does_not_show_as_the_jobs_snapshot() {
    let lvm = world();
    let job = lvm.fx.write_job(
        "root.yaml",
        "label: root\nsnapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\n",
    );
    // `lvs` shows the snapshot's name without an origin, as it would show an origin volume:
    // on every try (max_retries 2).
    lvm.fakes.output("lvs", &[1, 2, 3], "  vg0 root-ari_backup \n");
    let out = lvm.run(&job);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("refused: `lvs --noheadings -o vg_name,lv_name,origin vg0/root-ari_backup` on localhost shows `vg0 root-ari_backup`, not `vg0 root-ari_backup root`, so its target is not what ari made; left behind: snapshot vg0/root-ari_backup on localhost"),
        "{err}"
    );
    assert!(lvm.fakes.calls_of("lvremove").is_empty(), "lvremove ran without its proof");
    assert_eq!(lvm.fakes.snapshots(), ["vg0/root-ari_backup"], "nothing was removed");
    // Once lvs tells the truth, recovery removes the snapshot it proves.
    let out = run(lvm.ari().arg("recover").arg("root"));
    assert_exit(&out, 0);
    assert!(lvm.fakes.snapshots().is_empty(), "{}", stderr(&out));
}
