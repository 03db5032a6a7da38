#!/bin/bash
# breaks: nothing: the host archives with the real pgBackRest (Debian's 2.45) instead of
#   test -f || cp. /etc/pgbackrest.conf defines the stanza main (pg1-path
#   /var/lib/postgresql/15/main) with its repository on the archive volume
#   (repo1-path=/pg_archive/pgbackrest, owned by postgres); stanza-create, then
#   archive_command = 'pgbackrest --stanza=main archive-push %p' and a reload, then a WAL switch,
#   then a full backup into the repository (as the stanza's backup job would take it).
# observe: SHOW archive_command is 'pgbackrest --stanza=main archive-push %p'; failed_count is 0;
#   the last archived segment is in /pg_archive/pgbackrest/archive/main/15-1/ (as NAME-SHA1.gz);
#   `sudo -u postgres pgbackrest --stanza=main check` exits 0; `pgbackrest --stanza=main info`
#   lists one full backup, status ok. The old segments stay in /pg_archive.
set -euo pipefail
q() { runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
cat > /etc/pgbackrest.conf <<'CONF'
# walguard lab: pgBackRest archives into a repository on the dedicated archive volume.
[global]
repo1-path=/pg_archive/pgbackrest
log-level-console=warn
log-level-file=info

[main]
pg1-path=/var/lib/postgresql/15/main
CONF
chown postgres:postgres /etc/pgbackrest.conf
chmod 0640 /etc/pgbackrest.conf
install -d -o postgres -g postgres -m 0750 /pg_archive/pgbackrest
runuser -u postgres -- pgbackrest --stanza=main stanza-create
q "ALTER SYSTEM SET archive_command = 'pgbackrest --stanza=main archive-push %p'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
# The archiver rereads its configuration on the reload's SIGHUP: give it a moment.
sleep 1
before=$(q "SELECT archived_count FROM pg_stat_archiver")
q "SELECT txid_current()" >/dev/null
last=$(q "SELECT pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 100); do
  [ "$(q "SELECT archived_count FROM pg_stat_archiver")" -gt "$before" ] && break
  sleep 0.1
done
if ! find /pg_archive/pgbackrest/archive/main -name "$last-*" | grep -q .; then
  echo "pgBackRest did not archive $last" >&2
  exit 1
fi
runuser -u postgres -- pgbackrest --stanza=main check
echo "archived $last through pgBackRest"
# A base backup in the repository (WG-RST-001 with walguard_base_backup_source: pgbackrest);
# --start-fast: an immediate checkpoint rather than waiting for the next one.
runuser -u postgres -- pgbackrest --stanza=main --type=full --start-fast backup
echo "took a full backup through pgBackRest"
