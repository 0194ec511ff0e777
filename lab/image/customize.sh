#!/bin/sh
# Finishes the base image: runs once per build, with the new root file system as $1.
set -eu
root="$1"

# Host CA certificates copied in by the builder (the machine's egress may need them for HTTPS).
chroot "$root" update-ca-certificates >/dev/null

# systemd in a container: no consoles, no udev, no hardware clocks.
chroot "$root" systemctl mask --quiet \
  getty@tty1.service console-getty.service serial-getty@.service \
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-hwdb-update.service \
  systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
  systemd-remount-fs.service systemd-firstboot.service systemd-timesyncd.service 2>/dev/null || true

# Each host makes its own SSH host keys on first boot; the image carries none. Ed25519 and ECDSA only:
# RSA keys take seconds each, and a dozen hosts booting at once on two cores wait for them.
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat > "$root/etc/systemd/system/ssh.service.d/host-keys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'for t in ed25519 ecdsa; do f=/etc/ssh/ssh_host_$${t}_key; [ -e $$f ] || ssh-keygen -q -t $$t -N "" -f $$f; done'
ExecStartPre=/usr/sbin/sshd -t
UNIT
cat > "$root/etc/ssh/sshd_config.d/10-host-keys.conf" <<'SSHD'
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
SSHD
chroot "$root" systemctl enable --quiet ssh.service
install -d -m 0700 "$root/root/.ssh"

# A fresh machine id per container.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# Keep downloaded packages: the lab mounts a cache over /var/cache/apt/archives.
cat > "$root/etc/apt/apt.conf.d/20keep-downloads" <<'APT'
APT::Keep-Downloaded-Packages "true";
Binary::apt::APT::Keep-Downloaded-Packages "true";
APT

# As Debian's own container images do: no translated package descriptions in the package lists (33 of
# their 84 MB, which every host would download, unpack and index), and no fsync after each file dpkg
# unpacks (a lab host that crashes mid-install is made again, not repaired).
cat > "$root/etc/apt/apt.conf.d/20no-languages" <<'APT'
Acquire::Languages "none";
APT
echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/20unsafe-io"

# The image says what it is.
printf 'shared-estate lab base image (Debian %s)\n' "$(cat "$root/etc/debian_version")" > "$root/etc/se-base"
