#!/bin/sh
# What every lab host image has in common, run by each image's setup.sh inside its chroot: no
# shipped SSH host key, the audit login, the archive mount point and the audit's PostgreSQL role.
set -eu

# Host keys are per host (or per lab): never ship one in a shared image.
rm -f /etc/ssh/ssh_host_*

# The audit login: a non-root user with key-only SSH and sudo, as the bank's audit account would be.
useradd --create-home --shell /bin/bash walguard
install -d -m 0700 -o walguard -g walguard /home/walguard/.ssh
printf 'walguard ALL=(ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/walguard
chmod 0440 /etc/sudoers.d/walguard

# The dedicated archive mount point; the archive volume is mounted over it.
install -d -m 0750 -o postgres -g postgres /pg_archive

# PostgreSQL role for the audit user: peer auth on the local socket, read-only monitoring rights.
# Single-user mode needs no running server (and no systemd) inside the chroot.
su postgres -s /bin/sh -c '/usr/lib/postgresql/15/bin/postgres --single -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf postgres' <<'SQL' >/dev/null
CREATE ROLE walguard LOGIN IN ROLE pg_monitor;
-- walguard's opt-in --active-probe switches WAL and watches the segment reach the archive.
GRANT EXECUTE ON FUNCTION pg_switch_wal() TO walguard;
SQL
