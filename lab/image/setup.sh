#!/bin/sh
# Runs once inside the freshly debootstrapped root (chroot) to turn it into a lab host base image.
# Everything host-specific (hostname, address, SSH host key, audit user key) is added per host later,
# in the host's copy-on-write layer, so this image can be shared read-only by every host.
set -eu

# Host keys are per host: never ship one in the shared base.
rm -f /etc/ssh/ssh_host_*

# The audit login: a non-root user with key-only SSH and sudo, as the bank's audit account would be.
useradd --create-home --shell /bin/bash walguard
install -d -m 0700 -o walguard -g walguard /home/walguard/.ssh
printf 'walguard ALL=(ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/walguard
chmod 0440 /etc/sudoers.d/walguard

# The dedicated archive mount point; the volume itself is mounted over it per host.
install -d -m 0750 -o postgres -g postgres /pg_archive

# PostgreSQL role for the audit user: peer auth on the local socket, read-only monitoring rights.
# Single-user mode needs no running server (and no systemd) inside the chroot.
su postgres -s /bin/sh -c '/usr/lib/postgresql/15/bin/postgres --single -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf postgres' <<'SQL' >/dev/null
CREATE ROLE walguard LOGIN IN ROLE pg_monitor;
-- walguard's opt-in --active-probe switches WAL and watches the segment reach the archive.
GRANT EXECUTE ON FUNCTION pg_switch_wal() TO walguard;
SQL

# Units: networkd configures host0; nftables loads the zone rules; auditd is absent (no kernel audit).
systemctl enable systemd-networkd.service systemd-networkd-wait-online.service nftables.service ssh.service postgresql.service
systemctl mask systemd-resolved.service 2>/dev/null || true
# No getty on a container console nobody reads.
systemctl mask console-getty.service getty@tty1.service 2>/dev/null || true

# Lab hosts have no route out: make apt (never needed at run time) fail fast rather than hang.
rm -f /etc/apt/sources.list.d/*.sources
: > /etc/apt/sources.list
apt-get clean
rm -rf /var/lib/apt/lists/*
