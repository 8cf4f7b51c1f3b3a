//! The Debian package in the guest, as an admin installs it: `dpkg -i`, a job in
//! `/etc/ari-backup/jobs.d` run by the installed systemd unit, its lines in the unit's journal,
//! the backup in the store, nothing left; then `dpkg --purge`.

use anyhow::{ensure, Context, Result};
use std::fs;

use super::fixture::{assert_clean, Ctx};

/// h. The Debian package in the guest, as an admin installs it: `dpkg -i`, the timer installed
/// but not enabled, `/var/lib/ari-backup` 0700; a job of the guest's own LVM volume in
/// `/etc/ari-backup/jobs.d`, run by `systemctl start ari-backup.service` (the installed unit,
/// `/usr/bin/ari run-all`); its lines in the unit's journal, the backup in the store, nothing
/// left; then `dpkg --purge`.
pub(super) fn package_through_systemd(ctx: &Ctx) -> Result<()> {
    let vm = ctx.vm;
    let deb = ctx.deb.context("the Debian package was not built for this run")?;
    let mut copy = vm.ssh("cat > /root/ari.deb");
    copy.stdin(fs::File::open(deb).with_context(|| format!("open {}", deb.display()))?);
    ensure!(copy.status()?.success(), "could not copy {} into the guest", deb.display());
    let installed = vm.run(
        "dpkg -i /root/ari.deb >/dev/null && ari --version && stat -c %a /var/lib/ari-backup && (systemctl is-enabled ari-backup.timer || true)",
    )?;
    ensure!(
        installed.contains(&format!("ari {}", env!("CARGO_PKG_VERSION")))
            && installed.lines().any(|l| l == "700")
            && installed.lines().any(|l| l == "disabled"),
        "after dpkg -i: {installed:?} (expected the version, /var/lib/ari-backup 700, the timer disabled)"
    );
    println!("  installed: /usr/bin/ari, /var/lib/ari-backup 0700, the timer not enabled");
    let result = (|| {
        vm.run(
            "mkdir -p /srv/store && printf 'backup_store_path: /srv/store\n' > /etc/ari-backup/ari-backup.conf.yaml && \
             printf 'label: local\nsnapshot: lvm\nsnapshot_size: 100M\nvolumes: [{name: vg0/data, mount_point: /srv/data}]\ninclude: [/srv/data/etc]\n' > /etc/ari-backup/jobs.d/local.yaml",
        )?;
        let started = vm.run("systemctl start ari-backup.service; echo \"exit=$?\"; systemctl show -p Result --value ari-backup.service")?;
        let journal = vm.run("journalctl -u ari-backup.service --no-pager -o cat")?;
        ensure!(
            started.contains("exit=0") && started.lines().any(|l| l == "success"),
            "systemctl start ari-backup.service: {started:?}; journal:\n{journal}"
        );
        ensure!(
            journal.lines().any(|l| l.contains("(local) [INFO]") && l.contains("job succeeded")),
            "the unit's journal has no line of the job:\n{journal}"
        );
        let backup = vm.run("cat /srv/store/local/srv/data/etc/app.conf")?;
        ensure!(backup == "x=1\n", "the backup holds {backup:?}");
        println!("  systemctl start ari-backup.service: success, the job's lines in its journal, the backup in the store");
        assert_clean(vm, "local")
    })();
    vm.run(
        "dpkg --purge ari >/dev/null; rm -rf /srv/store /var/lib/ari-backup /etc/ari-backup /root/ari.deb",
    )?;
    result
}
