#!/bin/sh
# Runs once inside the freshly debootstrapped root (chroot, /proc mounted) to turn it into the
# SELinux guest's image. Per-lab secrets (SSH host key, audit key) are not here: QEMU passes them
# at boot (fw_cfg) and walguard-fw-cfg-keys.service installs them. Labelling the files is done
# after this script, by setfiles against the policy's file_contexts.
set -eu

# Audit login, archive mount point (the unlabelled disk /dev/vdb is mounted over it at boot),
# PostgreSQL role: the same as on the nspawn hosts (lab/image/files).
sh /usr/local/lib/walguard-lab/audit-host.sh

systemctl enable systemd-networkd.service ssh.service postgresql.service auditd.service \
  walguard-fw-cfg-keys.service
# Nobody reads a VGA console: keep the serial one (QEMU writes it to the lab's console.log).
systemctl mask getty@tty1.service

# Let sshd_t forward PostgreSQL's socket for the audit (what a bank installs for walguard).
# -n: the policy store is changed offline, nothing is loaded into a kernel here.
semodule -n -i /usr/local/share/walguard/walguard-ssh-pgsocket.cil

# Labelled at build time: the first boot must not relabel and reboot.
rm -f /.autorelabel

# The guest has no route out: make apt (never needed at run time) fail fast rather than hang.
rm -f /etc/apt/sources.list.d/*.sources
: > /etc/apt/sources.list
apt-get clean
rm -rf /var/lib/apt/lists/*
