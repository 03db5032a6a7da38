#!/bin/sh
# Runs once inside the freshly debootstrapped root (chroot) to turn it into a lab host base image.
# Everything host-specific (hostname, address, SSH host key, audit user key) is added per host later,
# in the host's copy-on-write layer, so this image can be shared read-only by every host.
set -eu

# Audit login, archive mount point, PostgreSQL role: the same on every lab image.
sh /usr/local/lib/walguard-lab/audit-host.sh

# Streaming replication between lab hosts (the standby-of-db1 scenario): a REPLICATION role whose
# password is made once per image build and shared by every host (they all boot from this image),
# kept in a pgpass file only root and postgres can read; pg_hba lets it in from the lab bridge's
# host subnet (10.231.0.0/24) only. The firewall (nftables.conf) already opens 5432 to that subnet.
pw=$(tr -d '-' < /proc/sys/kernel/random/uuid)
install -d -m 0750 -o root -g postgres /etc/walguard-lab
umask 077
printf '*:*:*:replicator:%s\n' "$pw" > /etc/walguard-lab/replication.pgpass
umask 022
chown postgres:postgres /etc/walguard-lab/replication.pgpass
chmod 0600 /etc/walguard-lab/replication.pgpass
su postgres -s /bin/sh -c '/usr/lib/postgresql/15/bin/postgres --single -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf postgres' <<SQL >/dev/null
CREATE ROLE replicator LOGIN REPLICATION PASSWORD '$pw';
SQL
printf '# lab hosts (10.231.0.0/24) may stream WAL as the replication role, with its password\nhost replication replicator 10.231.0.0/24 scram-sha-256\n' >> /etc/postgresql/15/main/pg_hba.conf

# Units: networkd configures host0; nftables loads the zone rules; auditd is absent (no kernel audit).
systemctl enable systemd-networkd.service systemd-networkd-wait-online.service nftables.service ssh.service postgresql.service chrony.service
systemctl mask systemd-resolved.service 2>/dev/null || true
# The audit user's systemd user manager lingers. Without it, every audit's logout stops
# user@UID.service, and under nspawn that stop waits out its whole timeout (the kernel refuses
# the cgroup kill: "Failed to kill control group ... Input/output error"); a login during that
# wait blocks in pam_systemd, sshd stops answering, and the audit's connection times out.
install -d /var/lib/systemd/linger
touch /var/lib/systemd/linger/walguard
# No getty on a container console nobody reads.
systemctl mask console-getty.service getty@tty1.service 2>/dev/null || true

# Lab hosts have no route out: make apt (never needed at run time) fail fast rather than hang.
rm -f /etc/apt/sources.list.d/*.sources
: > /etc/apt/sources.list
apt-get clean
rm -rf /var/lib/apt/lists/*
