#!/bin/sh
# Runs once inside the freshly debootstrapped root (chroot, /proc mounted) to turn it into the
# SELinux guest's image. Per-lab secrets (SSH host key, audit key, TLS certificate) are not here:
# QEMU passes them at boot (fw_cfg) and walguard-fw-cfg-keys.service installs them. Labelling the
# files is done after this script, by setfiles against the policy's file_contexts.
set -eu

# Audit login, archive mount point (the unlabelled disk /dev/vdb is mounted over it at boot),
# PostgreSQL role: the same as on the nspawn hosts (lab/image/files).
sh /usr/local/lib/walguard-lab/audit-host.sh

# zone-a (the application zone) may connect with a password, as on the nspawn hosts; zone-b is
# refused by the firewall (the lab's shared nftables.conf).
printf '# zone-a (application zone) may connect with a password\nhost all all 10.231.1.0/24 scram-sha-256\n' \
  >> /etc/postgresql/15/main/pg_hba.conf
# Where walguard-fw-cfg-keys.service puts the server certificate from the lab CA.
install -d -m 0755 /etc/walguard-lab/tls

# PostgreSQL listens on the lab address: it starts once networkd has configured it (the shared
# postgresql@.service.d drop-in orders it after network-online.target).
systemctl enable systemd-networkd.service systemd-networkd-wait-online.service ssh.service \
  postgresql.service auditd.service nftables.service chrony.service walguard-fw-cfg-keys.service
# Nobody reads a VGA console: keep the serial one (QEMU writes it to the lab's console.log).
systemctl mask getty@tty1.service

# Let sshd_t forward PostgreSQL's socket for the audit (what a bank installs for walguard), and
# systemd-tmpfiles stat the two directories the reference policy hides from it (each module says
# why). -n: the policy store is changed offline, nothing is loaded into a kernel here.
semodule -n -i /usr/local/share/walguard/walguard-ssh-pgsocket.cil \
  /usr/local/share/walguard/walguard-lab-tmpfiles.cil

# The audit user's systemd user manager lingers, as on the nspawn hosts: a login then does not
# start one (about a second of the emulated CPU per SSH login, the audit's included).
install -d /var/lib/systemd/linger
touch /var/lib/systemd/linger/walguard

# Labelled at build time: the first boot must not relabel and reboot.
rm -f /.autorelabel

# The guest has no route out: make apt (never needed at run time) fail fast rather than hang.
rm -f /etc/apt/sources.list.d/*.sources
: > /etc/apt/sources.list
apt-get clean
rm -rf /var/lib/apt/lists/*
