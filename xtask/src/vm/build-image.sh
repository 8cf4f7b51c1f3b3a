#!/bin/bash
# Builds the guest image of `cargo xtask vm`: Debian bookworm with LVM, ZFS (zfs-dkms, built in a
# chroot on this host because the guest has no network), rdiff-backup, rsync and sshd, booted
# by qemu with an external kernel and initrd. It follows shared/reference/vm-recipe.md, which
# was tested on this kind of machine. xtask embeds this file, runs it with bash, and hashes its
# text together with the package lists: a change to either rebuilds the image.
#
# Inputs (environment, set by xtask): OUT, the cache directory that receives vmlinuz,
# initrd.img and root.qcow2; BUILD, a scratch directory for the root tree and the raw image;
# KEY, the ssh key whose public half root's authorized_keys gets; BASE_PACKAGES, the comma
# separated packages debootstrap installs; ZFS_PACKAGES, the space separated packages
# installed in the chroot once the kernel is known (linux-headers-$KVER is added here).
set -euo pipefail
: "${OUT:?}" "${BUILD:?}" "${KEY:?}" "${BASE_PACKAGES:?}" "${ZFS_PACKAGES:?}"
R=$BUILD/rootfs
export DEBIAN_FRONTEND=noninteractive

# The Debian mirror this host already uses (the only registry reachable here), or the default.
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# The chroot's /proc, /sys and /dev must never outlive this script: a later `rm -rf` of the
# root tree would otherwise walk into the host's /dev. Called at the start too, for a build
# that was killed before its trap could run.
umount_chroot() {
  local m
  for m in dev sys proc; do
    if mountpoint -q "$R/$m" 2>/dev/null; then
      umount "$R/$m" 2>/dev/null || umount -l "$R/$m" || true
    fi
  done
}
trap umount_chroot EXIT
# A signal ends the script through `exit`, so the EXIT trap runs for it too.
trap 'exit 130' INT TERM HUP

step() { echo "--- $(date +%T) $*"; }

umount_chroot
rm -rf --one-file-system "$BUILD"
mkdir -p "$BUILD"

step "debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase --components=main,contrib --include="$BASE_PACKAGES" \
  bookworm "$R" "$MIRROR"
KVER=$(ls "$R/lib/modules")
step "guest kernel $KVER"

# Services must not start inside the chroot (they would run on the host's kernel).
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"

mount -t proc proc "$R/proc"
mount -t sysfs sys "$R/sys"
mount --bind /dev "$R/dev"
step "zfs-dkms in the chroot (the DKMS build of zfs.ko takes minutes)"
chroot "$R" apt-get update -q
# shellcheck disable=SC2086 # ZFS_PACKAGES is a word list on purpose
chroot "$R" apt-get install -y -q --no-install-recommends "linux-headers-$KVER" $ZFS_PACKAGES
# DKMS prints errors about the host's kernel and still builds for the guest's; only the module
# itself says whether it worked.
if ! test -f "$R/lib/modules/$KVER/updates/dkms/zfs.ko"; then
  echo "zfs.ko was not built for $KVER (see the DKMS output above)" >&2
  exit 1
fi
chroot "$R" apt-get clean
umount_chroot
rm -f "$R/usr/sbin/policy-rc.d"

step "configuring the guest"
echo vmtest > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vmtest\n' > "$R/etc/hosts"
echo '/dev/vda / ext4 defaults 0 1' > "$R/etc/fstab"
mkdir -p "$R/etc/systemd/network"
printf '[Match]\nName=e*\n[Network]\nDHCP=yes\n' > "$R/etc/systemd/network/20-wired.network"
chroot "$R" systemctl enable systemd-networkd
chroot "$R" systemctl mask systemd-networkd-wait-online.service apt-daily.timer \
  apt-daily-upgrade.timer e2scrub_reap.service
install -d -m700 "$R/root/.ssh"
install -m600 "$KEY.pub" "$R/root/.ssh/authorized_keys"
chroot "$R" passwd -d root
echo 'UseDNS no' >> "$R/etc/ssh/sshd_config"

step "image files"
cp "$R/boot/vmlinuz-$KVER" "$BUILD/vmlinuz"
cp "$R/boot/initrd.img-$KVER" "$BUILD/initrd.img"
truncate -s 4G "$BUILD/root.raw"
mkfs.ext4 -q -F -L root -d "$R" "$BUILD/root.raw"
qemu-img convert -c -O qcow2 "$BUILD/root.raw" "$BUILD/root.qcow2"
# Same filesystem, so each move is atomic: OUT never holds a half-written file.
mv "$BUILD/vmlinuz" "$BUILD/initrd.img" "$BUILD/root.qcow2" "$OUT/"
rm -rf --one-file-system "$BUILD"
step "image ready in $OUT"
