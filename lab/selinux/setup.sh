#!/bin/sh
# Runs once inside the freshly debootstrapped root (chroot, /proc mounted) to turn it into the
# SELinux guest's image. Per-lab secrets (SSH host key, audit key) are not here: QEMU passes them
# at boot (fw_cfg) and walguard-fw-cfg-keys.service installs them. Labelling the files is done
# after this script, by setfiles against the policy's file_contexts.
set -eu

# Host keys are per lab: never ship one in the image.
rm -f /etc/ssh/ssh_host_*

# The audit login, exactly as on the other lab hosts: key-only SSH, NOPASSWD sudo.
useradd --create-home --shell /bin/bash walguard
install -d -m 0700 -o walguard -g walguard /home/walguard/.ssh
printf 'walguard ALL=(ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/walguard
chmod 0440 /etc/sudoers.d/walguard

# The archive mount point; the unlabelled archive disk (/dev/vdb) is mounted over it at boot.
install -d -m 0750 -o postgres -g postgres /pg_archive

# PostgreSQL role for the audit user: peer auth on the local socket, read-only monitoring rights.
su postgres -s /bin/sh -c '/usr/lib/postgresql/15/bin/postgres --single -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf postgres' <<'SQL' >/dev/null
CREATE ROLE walguard LOGIN IN ROLE pg_monitor;
-- walguard's opt-in --active-probe switches WAL and watches the segment reach the archive.
GRANT EXECUTE ON FUNCTION pg_switch_wal() TO walguard;
SQL

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
